import AssetStore
public import Foundation
import Logging
import S3Client

/// What no request could finish, brought back into agreement with the bucket: after a
/// crash (kill -9, power loss), an S3 call that never answered, a client that never came
/// back. The reconciler runs `repair` on a schedule; each fix logs one line.
///
/// What it settles:
/// - a direct upload left pending (no request is storing it any more): ready when its
///   object is there with the recorded size and ETag, else the record is discarded and
///   whatever is at its key deleted;
/// - a multipart upload pending for longer than ASSETD_PENDING_UPLOAD_TTL: aborted in S3,
///   and it and its asset marked expired;
/// - a delete that stopped midway (`deleting`): finished;
/// - a new version whose switch stopped midway: finished when its bytes are there whole and
///   checked, else undone (its staged bytes deleted, the current version left as it was);
/// - a deleted asset's versions prefix, listed once more after the delete, once a new
///   version's PutObject that raced it has landed or given up: whatever is there is deleted.
///
/// It assumes, like the upload cache, that one assetd process owns the database: a direct
/// upload in flight in this process is skipped by id, and so is an asset it is moving.
extension AssetService {
    /// Counts of what one pass fixed, for tests and the log.
    public struct Repairs: Equatable, Sendable {
        public var directReady = 0
        public var directDiscarded = 0
        public var uploadsExpired = 0
        public var deletesFinished = 0
        public var versionsFinished = 0
        public var versionsUndone = 0
        /// Deleted assets under whose versions prefix a sweep still found objects.
        public var orphansSwept = 0
        public var failures = 0
    }

    /// One pass over the work lists: records last changed before `settledBefore` (younger
    /// ones may still belong to a request), uploads started before `expireBefore`, and
    /// assets deleted before `sweepBefore`.
    public func repair(settledBefore: Date, expireBefore: Date, sweepBefore: Date) -> Repairs {
        var repairs = Repairs()
        do {
            for asset in try records.pendingDirectAssets(updatedBefore: settledBefore, limit: 500) where !isDirectUploadInFlight(asset.id) {
                settleDirectUpload(asset, &repairs)
            }
            for upload in try records.pendingUploads(startedBefore: expireBefore, limit: 500) {
                expire(upload, &repairs)
            }
            for asset in try records.deletingAssets(updatedBefore: settledBefore, limit: 500) where !isInMotion(asset.id) {
                finishInterruptedDelete(asset, &repairs)
            }
            for change in try records.versionSwitches(createdBefore: settledBefore, limit: 500)
            where !isInMotion(change.assetID) && !isDirectUploadInFlight(change.assetID) {
                settleVersionSwitch(change, &repairs)
            }
            for asset in try records.deletedAssetsToSweep(deletedBefore: sweepBefore, limit: 500) {
                sweep(asset, &repairs)
            }
        } catch {
            repairs.failures += 1
            logger.error("repairs: the database failed", metadata: ["error": "\(error)"])
        }
        return repairs
    }

    private func settleDirectUpload(_ asset: AssetRecord, _ repairs: inout Repairs) {
        do {
            let info = try objects.headObject(key: asset.key)
            if let info, let size = asset.size, Self.isRecordedObject(info, size: size, etag: asset.etag) {
                if let ready = try records.markAssetReady(id: asset.id, size: size, etag: info.etag, sha256: nil, thumbnail: .none,
                                                          now: now()) {
                    repairs.directReady += 1
                    logger.notice("reconciler: a direct upload left pending has its whole object; marked ready", metadata: [
                        "asset": "\(asset.id)", "key": "\(asset.key)",
                    ])
                    didBecomeReady(ready, logger: logger)
                }
                return
            }
            if info != nil { try objects.deleteObjects(keys: [asset.key]) }
            if try records.discardPendingAsset(id: asset.id) {
                repairs.directDiscarded += 1
                logger.notice("reconciler: a direct upload left pending has no complete object; discarded", metadata: [
                    "asset": "\(asset.id)", "key": "\(asset.key)", "object": "\(info == nil ? "absent" : "partial or different; deleted")",
                ])
            }
        } catch {
            repairs.failures += 1
            logger.warning("reconciler: could not settle a pending direct upload", metadata: ["asset": "\(asset.id)", "error": "\(error)"])
        }
    }

    private func expire(_ upload: UploadRecord, _ repairs: inout Repairs) {
        do {
            do {
                try objects.abortMultipartUpload(key: upload.key, uploadID: upload.uploadID)
            } catch let error as S3Error where error.uploadIsGone {
                // The lifecycle rule was first, or S3 completed it and the answer was never
                // recorded (a crash, and no retry): then an unchecked object sits at its key.
                let firstUploadPending = try records.asset(id: upload.assetID, workspaceID: upload.workspaceID)?.status == .pending
                if upload.version != nil || firstUploadPending, try objects.headObject(key: upload.key) != nil {
                    try objects.deleteObjects(keys: [upload.key])
                    logger.notice("reconciler: deleted the unrecorded object of an expired upload", metadata: ["key": "\(upload.key)"])
                }
            }
            if try records.expireUpload(uploadID: upload.uploadID, now: now()) {
                repairs.uploadsExpired += 1
                logger.notice("reconciler: a multipart upload outlived ASSETD_PENDING_UPLOAD_TTL; aborted and marked expired", metadata: [
                    "asset": "\(upload.assetID)", "upload": "\(upload.uploadID)", "key": "\(upload.key)",
                ])
            }
        } catch {
            repairs.failures += 1
            logger.warning("reconciler: could not expire a multipart upload", metadata: ["upload": "\(upload.uploadID)", "error": "\(error)"])
        }
    }

    private func settleVersionSwitch(_ change: VersionSwitch, _ repairs: inout Repairs) {
        do {
            var change = change
            if change.state == .uploading {
                // A direct upload of the version was cut off: are its bytes there, whole?
                let info = try objects.headObject(key: change.stagingKey)
                guard let info, Self.isRecordedObject(info, size: change.size, etag: change.etag) else {
                    if try records.discardVersionSwitch(assetID: change.assetID, version: change.version), info != nil {
                        try objects.deleteObjects(keys: [change.stagingKey])
                    }
                    repairs.versionsUndone += 1
                    logger.notice("reconciler: a new version whose upload was cut off is undone; the current version stays", metadata: [
                        "asset": "\(change.assetID)", "version": "\(change.version)", "key": "\(change.stagingKey)",
                    ])
                    return
                }
                try records.markVersionStored(assetID: change.assetID, etag: info.etag)
                change.state = .stored
            }
            if let current = try switchVersion(change, logger: logger) {
                repairs.versionsFinished += 1
                logger.notice("reconciler: finished switching in a new version", metadata: [
                    "asset": "\(change.assetID)", "version": "\(change.version)", "key": "\(current.key)",
                ])
                didBecomeReady(current, logger: logger)
            } else {
                repairs.versionsUndone += 1
                logger.notice("reconciler: a new version of an asset that moved on is undone", metadata: ["asset": "\(change.assetID)"])
            }
        } catch {
            repairs.failures += 1
            logger.warning("reconciler: could not settle a new version", metadata: ["asset": "\(change.assetID)", "error": "\(error)"])
        }
    }

    private func finishInterruptedDelete(_ asset: AssetRecord, _ repairs: inout Repairs) {
        do {
            let finished = try exclusively(asset.id) { () throws -> Bool in
                guard case .deleting(let record, let uploads, let keys)? = try records.beginDelete(id: asset.id, now: now()) else {
                    return false
                }
                try removeEverything(of: record, uploads: uploads, keys: keys)
                return true
            }
            guard finished else { return }
            repairs.deletesFinished += 1
            logger.notice("reconciler: finished a delete that had stopped midway", metadata: ["asset": "\(asset.id)", "key": "\(asset.key)"])
        } catch {
            repairs.failures += 1
            logger.warning("reconciler: could not finish a delete", metadata: ["asset": "\(asset.id)", "error": "\(error)"])
        }
    }

    /// Deletes whatever is under a deleted asset's versions prefix: the bytes of a new
    /// version whose PutObject landed after the delete had listed the prefix.
    private func sweep(_ asset: AssetRecord, _ repairs: inout Repairs) {
        do {
            let keys = try objects.listKeys(prefix: AssetKeys.versionsPrefix(workspaceID: asset.workspaceID, assetID: asset.id),
                                            limit: 100_000)
            if !keys.isEmpty {
                try objects.deleteObjects(keys: keys)
                repairs.orphansSwept += 1
                logger.notice("reconciler: deleted what a new version left after its asset was deleted", metadata: [
                    "asset": "\(asset.id)", "keys": "\(keys.count)",
                ])
            }
            try records.markSwept(assetID: asset.id)
        } catch {
            repairs.failures += 1
            logger.warning("reconciler: could not sweep a deleted asset's versions", metadata: ["asset": "\(asset.id)", "error": "\(error)"])
        }
    }
}
