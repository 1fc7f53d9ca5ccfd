import AssetStore
import Foundation
import Logging
import S3Client

/// Brings records and the bucket back into agreement after what no request could finish:
/// a crash (kill -9, power loss), an S3 call that never answered, a client that never came
/// back. It runs once at start-up and then every ASSETD_RECONCILE_INTERVAL seconds, on a
/// thread of its own, and logs one line per fix.
///
/// What it settles:
/// - a direct upload left pending (no request is storing it any more): ready when its
///   object is there with the recorded size and ETag, else the record is discarded and
///   whatever is at its key deleted;
/// - a multipart upload pending for longer than ASSETD_PENDING_UPLOAD_TTL: aborted in S3,
///   and it and its asset marked expired;
/// - a delete that stopped midway (`deleting`): finished;
/// - a new version whose switch stopped midway: finished when its bytes are there whole and
///   checked, else undone (its staged bytes deleted, the current version left as it was).
///
/// It assumes, like the upload cache, that one assetd process owns the database: a direct
/// upload in flight in this process is skipped by id, and records younger than `grace`
/// are left to the requests that are still working on them.
final class Reconciler: Sendable {
    let app: App
    let interval: Duration
    /// How old a record must be before a periodic pass touches it. At start-up no request
    /// of this process can own a record, so the first pass takes every one.
    let grace: Duration

    /// When this process started: a record older than that cannot belong to a live
    /// request of it, which is what the start-up pass relies on.
    let processStarted: Date

    init(app: App, interval: Duration, grace: Duration = .seconds(120)) {
        self.app = app
        self.interval = interval
        self.grace = grace
        self.processStarted = app.now()
    }

    /// Starts the passes on their own thread: the first at once, then one per interval.
    func start() {
        let thread = Thread { [self] in
            var first = true
            while true {
                pass(startUp: first)
                first = false
                Thread.sleep(forTimeInterval: Double(interval.components.seconds))
            }
        }
        thread.name = "reconciler"
        thread.start()
    }

    /// Counts of what one pass fixed, for tests and the log.
    struct Fixes: Equatable {
        var directReady = 0
        var directDiscarded = 0
        var uploadsExpired = 0
        var deletesFinished = 0
        var versionsFinished = 0
        var versionsUndone = 0
        var failures = 0
    }

    @discardableResult
    func pass(startUp: Bool = false) -> Fixes {
        var fixes = Fixes()
        let now = app.now()
        // At start-up: whatever this process's requests cannot own yet, however young; later,
        // only what no request has touched for the grace period.
        let settledBefore = startUp ? processStarted : now.addingTimeInterval(-Double(grace.components.seconds))
        let logger = app.logger
        do {
            for asset in try app.database.pendingDirectAssets(updatedBefore: settledBefore) {
                if app.directUploadsInFlight.read({ $0.contains(asset.id) }) { continue }
                settleDirectUpload(asset, fixes: &fixes)
            }
            let ttlAgo = now.addingTimeInterval(-Double(app.configuration.pendingUploadTTL))
            for upload in try app.database.pendingUploads(startedBefore: ttlAgo) {
                expire(upload, fixes: &fixes)
            }
            for asset in try app.database.deletingAssets(updatedBefore: settledBefore) where !app.isInMotion(asset.id) {
                finishDelete(asset, fixes: &fixes)
            }
            for change in try app.database.versionSwitches(createdBefore: settledBefore) where !app.isInMotion(change.assetID) {
                if app.directUploadsInFlight.read({ $0.contains(change.assetID) }) { continue }
                settleVersionSwitch(change, fixes: &fixes)
            }
        } catch {
            fixes.failures += 1
            logger.error("reconciler: the database failed; next pass in \(interval)", metadata: ["error": "\(error)"])
        }
        if fixes != Fixes() {
            logger.info("reconciler pass done", metadata: [
                "direct_ready": "\(fixes.directReady)", "direct_discarded": "\(fixes.directDiscarded)",
                "uploads_expired": "\(fixes.uploadsExpired)", "deletes_finished": "\(fixes.deletesFinished)",
                "versions_finished": "\(fixes.versionsFinished)", "versions_undone": "\(fixes.versionsUndone)",
                "failures": "\(fixes.failures)",
            ])
        }
        return fixes
    }

    private func settleDirectUpload(_ asset: AssetRecord, fixes: inout Fixes) {
        let logger = app.logger
        do {
            let info = try app.store.headObject(key: asset.key)
            if let info, let size = asset.size, App.isRecordedObject(info, size: size, etag: asset.etag) {
                if let ready = try app.database.markAssetReady(id: asset.id, size: size, etag: info.etag, sha256: nil,
                                                               thumbnail: .none, now: app.now()) {
                    fixes.directReady += 1
                    logger.notice("reconciler: a direct upload left pending has its whole object; marked ready", metadata: [
                        "asset": "\(asset.id)", "key": "\(asset.key)",
                    ])
                    app.assetBecameReady(ready, logger: logger)
                }
                return
            }
            if info != nil { try app.store.deleteObjects(keys: [asset.key]) }
            if try app.database.discardPendingAsset(id: asset.id) {
                fixes.directDiscarded += 1
                logger.notice("reconciler: a direct upload left pending has no complete object; discarded", metadata: [
                    "asset": "\(asset.id)", "key": "\(asset.key)", "object": "\(info == nil ? "absent" : "partial or different; deleted")",
                ])
            }
        } catch {
            fixes.failures += 1
            logger.warning("reconciler: could not settle a pending direct upload", metadata: ["asset": "\(asset.id)", "error": "\(error)"])
        }
    }

    private func expire(_ upload: UploadRecord, fixes: inout Fixes) {
        let logger = app.logger
        do {
            do {
                try app.store.abortMultipartUpload(key: upload.key, uploadID: upload.uploadID)
            } catch let error as S3Error where error.isNoSuchUpload {
                // The lifecycle rule was first, or S3 completed it and the answer was never
                // recorded (a crash, and no retry): then an unchecked object sits at its key.
                let firstUploadPending = try app.database.asset(id: upload.assetID, workspaceID: upload.workspaceID)?.status == .pending
                if upload.version != nil || firstUploadPending, try app.store.headObject(key: upload.key) != nil {
                    try app.store.deleteObjects(keys: [upload.key])
                    logger.notice("reconciler: deleted the unrecorded object of an expired upload", metadata: ["key": "\(upload.key)"])
                }
            }
            if try app.database.expireUpload(uploadID: upload.uploadID, now: app.now()) {
                fixes.uploadsExpired += 1
                logger.notice("reconciler: a multipart upload outlived ASSETD_PENDING_UPLOAD_TTL; aborted and marked expired", metadata: [
                    "asset": "\(upload.assetID)", "upload": "\(upload.uploadID)", "key": "\(upload.key)",
                ])
            }
        } catch {
            fixes.failures += 1
            logger.warning("reconciler: could not expire a multipart upload", metadata: ["upload": "\(upload.uploadID)", "error": "\(error)"])
        }
    }

    private func settleVersionSwitch(_ change: VersionSwitch, fixes: inout Fixes) {
        let logger = app.logger
        do {
            var change = change
            if change.state == .uploading {
                // A direct upload of the version was cut off: are its bytes there, whole?
                let info = try app.store.headObject(key: change.stagingKey)
                guard let info, App.isRecordedObject(info, size: change.size, etag: change.etag) else {
                    if try app.database.discardVersionSwitch(assetID: change.assetID, version: change.version), info != nil {
                        try app.store.deleteObjects(keys: [change.stagingKey])
                    }
                    fixes.versionsUndone += 1
                    logger.notice("reconciler: a new version whose upload was cut off is undone; the current version stays", metadata: [
                        "asset": "\(change.assetID)", "version": "\(change.version)", "key": "\(change.stagingKey)",
                    ])
                    return
                }
                try app.database.markVersionStored(assetID: change.assetID, etag: info.etag)
                change.state = .stored
            }
            if let current = try app.finishVersionSwitch(change, logger: logger) {
                fixes.versionsFinished += 1
                logger.notice("reconciler: finished switching in a new version", metadata: [
                    "asset": "\(change.assetID)", "version": "\(change.version)", "key": "\(current.key)",
                ])
                app.assetBecameReady(current, logger: logger)
            } else {
                fixes.versionsUndone += 1
                logger.notice("reconciler: a new version of an asset that moved on is undone", metadata: ["asset": "\(change.assetID)"])
            }
        } catch {
            fixes.failures += 1
            logger.warning("reconciler: could not settle a new version", metadata: ["asset": "\(change.assetID)", "error": "\(error)"])
        }
    }

    private func finishDelete(_ asset: AssetRecord, fixes: inout Fixes) {
        let logger = app.logger
        do {
            let finished = try app.exclusively(asset.id) { () throws -> Bool in
                guard case .deleting(let record, let uploads, let keys)? = try app.database.beginDelete(id: asset.id, now: app.now()) else {
                    return false
                }
                try app.finishDelete(record, uploads: uploads, keys: keys)
                return true
            }
            guard finished else { return }
            fixes.deletesFinished += 1
            logger.notice("reconciler: finished a delete that had stopped midway", metadata: ["asset": "\(asset.id)", "key": "\(asset.key)"])
        } catch {
            fixes.failures += 1
            logger.warning("reconciler: could not finish a delete", metadata: ["asset": "\(asset.id)", "error": "\(error)"])
        }
    }
}
