public import AssetStore
import Foundation
import Hashing
public import Logging
import S3Client

/// New versions of an asset.
///
/// A new version's bytes never go to the current key directly. They are uploaded (multipart
/// or direct) to the version's own archive key, `{ws}/versions/{id}/v{N}.{ext}`, checked
/// there, and only then switched in (`switchVersion`), so that a refused or half-finished
/// version never replaces the current one.
extension AssetService {
    /// A multipart upload of a new version of a ready asset; a conflict while another
    /// upload of it is pending.
    func startVersionUpload(of asset: AssetRecord, _ request: UploadRequest, fileType: String, fileExtension: String,
                            partSize: Int64?, logger: Logger) throws -> StartedUpload {
        guard asset.status == .ready else {
            throw AssetError.conflict("Asset \(asset.id) has no stored file to follow yet (status \(asset.status.rawValue)).")
        }
        let version = asset.currentVersion + 1
        let stagingKey = AssetKeys.version(workspaceID: asset.workspaceID, assetID: asset.id, version: version, fileExtension: fileExtension)
        let uploadID = try objects.createMultipartUpload(key: stagingKey, contentType: fileType, metadata: metadata(asset))
        do {
            _ = try records.createVersionUpload(uploadID: uploadID, asset: asset, version: version, stagingKey: stagingKey,
                                                fileType: fileType, fileName: request.fileName, fileSize: request.fileSize,
                                                partSize: partSize, now: now())
        } catch {
            try? objects.abortMultipartUpload(key: stagingKey, uploadID: uploadID)
            throw Self.versionError(error, assetID: asset.id)
        }
        logger.info("version upload started", metadata: ["asset": "\(asset.id)", "version": "\(version)", "key": "\(stagingKey)"])
        let finalKey = AssetKeys.original(workspaceID: asset.workspaceID, assetID: asset.id, fileExtension: fileExtension)
        return StartedUpload(uploadID: uploadID, assetID: asset.id, key: finalKey, partSize: partSize, version: version)
    }

    /// A checked multipart upload of a new version: the switch recorded with the upload's
    /// completion, then carried out.
    func completeVersion(_ version: Int, of asset: AssetRecord, upload: UploadRecord, digest: String, location: String, etag: String,
                         size: Int64, logger: Logger) throws -> UploadCompletion {
        let change = VersionSwitch(
            assetID: asset.id, workspaceID: asset.workspaceID, version: version, stagingKey: upload.key,
            newKey: AssetKeys.original(workspaceID: asset.workspaceID, assetID: asset.id, fileExtension: AssetKeys.fileExtension(of: upload.key)),
            fileType: upload.fileType ?? asset.fileType, fileName: upload.fileName, size: size, etag: etag, state: .stored, createdAt: now())
        guard let recorded = try records.completeVersionUpload(uploadID: upload.uploadID, partsDigest: digest, location: location,
                                                               change: change, now: now())
        else {
            return try lostCompletion(of: upload, digest: digest, logger: logger)
        }
        Faults.point("version-recorded")
        guard let current = try switchVersion(recorded, logger: logger) else {
            throw AssetError.notFound("Asset \(asset.id) was deleted while its new version was being completed.")
        }
        didBecomeReady(current, logger: logger)
        return UploadCompletion(location: objects.objectURL(key: current.key), key: current.key, etag: etag, version: version)
    }

    /// The domain error for a version that cannot start now.
    static func versionError(_ error: any Error, assetID: Int64) -> any Error {
        switch error as? VersionConflict {
        case .busy?:
            return AssetError.conflict("Asset \(assetID) has an upload in progress; complete or abort it first.")
        case .notReady(let status)?:
            if status.isGone { return AssetError.notFound("Asset \(assetID) was not found.") }
            return AssetError.conflict("Asset \(assetID) has no stored file to follow yet (status \(status.rawValue)).")
        case nil:
            return error
        }
    }

    /// Makes a checked new version current, holding the asset. Each step is safe to
    /// repeat, so that a repair can run this again after a crash at any point:
    /// 1. archive: the current object is copied to `versions/{id}/v{N}.{ext}`, unless that
    ///    key exists already (a previous run got that far);
    /// 2. promote: the new bytes are copied from their staging key to
    ///    `digital_assets/{id}.{ext}`, while the staging key exists;
    /// 3. tidy: the staging key is deleted, and the old current key when the extension
    ///    changed;
    /// 4. record: one transaction archives version N, makes N+1 current and drops the switch.
    /// Nil when the asset moved on meanwhile (deleted): the switch is then undone.
    func switchVersion(_ change: VersionSwitch, logger: Logger) throws -> AssetRecord? {
        try exclusively(change.assetID) { try carryOut(change, logger: logger) }
    }

    private func carryOut(_ change: VersionSwitch, logger: Logger) throws -> AssetRecord? {
        guard let asset = try records.asset(id: change.assetID, workspaceID: change.workspaceID),
              asset.status == .ready, asset.currentVersion == change.version - 1
        else {
            // Never delete a key that the record still calls a version; but a deleted
            // asset's keys all go, even when its delete dropped the switch first.
            let discarded = try records.discardVersionSwitch(assetID: change.assetID, version: change.version)
            let gone = try records.asset(id: change.assetID, workspaceID: change.workspaceID)?.status.isGone ?? true
            let archived = try records.versions(assetID: change.assetID).contains { $0.key == change.stagingKey }
            if gone || (discarded && !archived) {
                try objects.deleteObjects(keys: [change.stagingKey])
            }
            return nil
        }
        let archiveKey = AssetKeys.version(workspaceID: asset.workspaceID, assetID: asset.id, version: asset.currentVersion,
                                           fileExtension: asset.fileExtension)
        // Archived already by an earlier run of this switch (the same size), or not yet.
        if try objects.headObject(key: archiveKey).map({ Int64($0.size) != asset.size }) ?? true {
            try objects.copy(from: asset.key, to: archiveKey, size: asset.size ?? 0, contentType: asset.fileType, metadata: metadata(asset))
        }
        Faults.point("version-archived")
        if try objects.headObject(key: change.stagingKey) != nil {
            try objects.copy(from: change.stagingKey, to: change.newKey, size: change.size, contentType: change.fileType,
                             metadata: metadata(asset))
        }
        Faults.point("version-promoted")
        var stale = [change.stagingKey]
        if change.newKey != asset.key { stale.append(asset.key) }
        try objects.deleteObjects(keys: stale)
        guard let current = try records.recordVersionSwitched(change, archiveKey: archiveKey, now: now()) else {
            // The asset moved on (deleted) while its objects were moved: none may stay.
            if try records.asset(id: asset.id, workspaceID: asset.workspaceID)?.status.isGone ?? true {
                try objects.deleteObjects(keys: [change.newKey, archiveKey, change.stagingKey])
            }
            return nil
        }
        logger.info("version switched in", metadata: ["asset": "\(asset.id)", "version": "\(change.version)", "key": "\(change.newKey)"])
        return current
    }

    /// A direct upload of a new version: the switch is recorded before the PutObject to
    /// the staging key, then the bytes are stored and switched in.
    func storeDirectVersion(_ upload: DirectUpload, of asset: AssetRecord, fileType: String, fileExtension: String,
                            logger: Logger) throws -> AssetRecord {
        let version = asset.currentVersion + 1
        let change = VersionSwitch(
            assetID: asset.id, workspaceID: asset.workspaceID, version: version,
            stagingKey: AssetKeys.version(workspaceID: asset.workspaceID, assetID: asset.id, version: version, fileExtension: fileExtension),
            newKey: AssetKeys.original(workspaceID: asset.workspaceID, assetID: asset.id, fileExtension: fileExtension),
            fileType: fileType, fileName: upload.fileName, size: Int64(upload.spool.size), etag: Encoding.hex(upload.md5),
            state: .uploading, createdAt: now())
        do {
            _ = try records.beginDirectVersion(change)
        } catch {
            throw Self.versionError(error, assetID: asset.id)
        }
        let etag: String = try directUpload(asset.id) {
            do {
                return try objects.putObject(key: change.stagingKey, file: upload.spool.descriptor, size: upload.spool.size,
                                             contentType: fileType, metadata: directUploadMetadata(asset, md5: upload.md5),
                                             sha256Hex: upload.sha256Hex, md5: upload.md5)
            } catch let error as S3Error where error.isAmbiguous {
                // The repairs settle it: the bytes are there whole, or they are deleted.
                logger.warning("an unanswered PutObject of a new version is left to the reconciler", metadata: ["key": "\(change.stagingKey)"])
                throw error
            } catch {
                try? records.discardVersionSwitch(assetID: asset.id, version: version)
                throw error
            }
        }
        var stored = change
        stored.state = .stored
        stored.etag = etag.isEmpty ? change.etag : etag
        /// After a delete that raced the PutObject (it may have listed the keys before these
        /// bytes landed): what landed is ours to remove.
        func removeIfDeleted() throws {
            guard try records.asset(id: asset.id, workspaceID: asset.workspaceID)?.status.isGone ?? true else { return }
            try objects.deleteObjects(keys: [change.stagingKey])
            throw AssetError.notFound("Asset \(asset.id) was deleted while its new version was being stored.")
        }
        // Not `uploading` any more: a delete dropped the switch, or a repair took it over.
        guard try records.markVersionStored(assetID: asset.id, etag: stored.etag) else {
            try removeIfDeleted()
            return try self.asset(asset.id, in: asset.workspaceID)
        }
        let current: AssetRecord?
        do {
            current = try switchVersion(stored, logger: logger)
        } catch AssetError.conflict(let message, let retryAfter) {
            // Held by a delete, or by a repair of this same switch.
            try removeIfDeleted()
            throw AssetError.conflict(message, retryAfter: retryAfter)
        }
        guard let current else {
            throw AssetError.conflict("Asset \(asset.id) was deleted while its new version was being stored.")
        }
        return current
    }
}
