public import AssetStore
import Foundation
import Hashing
public import Logging
import S3Client

/// A direct upload as the route received it: the file spooled and digested, its first
/// bytes kept for libmagic.
struct DirectUpload {
    let spool: SpoolFile
    /// The file's first `AssetService.contentCheckBytes`, as they arrived.
    let head: [UInt8]
    let fileName: String?
    let sha256Hex: String
    let md5: [UInt8]
}

/// POST /api/assets/upload: a small file, checked by its content (libmagic) and stored
/// with PutObject, as a new asset or a new version of one.
extension AssetService {
    /// Stores a direct upload in `workspaceID`: a new asset, or a new version of `assetID`.
    /// Returns the ready record.
    func storeDirectUpload(_ upload: DirectUpload, in workspaceID: Int64, asVersionOf assetID: Int64?, logger: Logger) throws -> AssetRecord {
        let target = try assetID.map { try asset($0, in: workspaceID) }
        guard upload.spool.size > 0 else { throw AssetError.invalid("file is empty.") }
        // The same 64 KiB the multipart path's content check reads back from S3 (reading
        // the spool instead made libmagic read up to its limit of the file).
        let detected = try detectType(of: upload.head)
        guard let (fileType, fileExtension) = configuration.mediaTypes.resolve(detected) else {
            throw AssetError.refusedContent("The file's content is \(detected), which is not allowed; allowed: \(configuration.mediaTypes.allowed.sorted().joined(separator: ", ")).")
        }
        let started = ContinuousClock.now
        let record: AssetRecord
        if let target {
            record = try storeDirectVersion(upload, of: target, fileType: fileType, fileExtension: fileExtension, logger: logger)
        } else {
            record = try storeNewAsset(upload, in: workspaceID, fileType: fileType, fileExtension: fileExtension, logger: logger)
        }
        var logger = logger
        logger[metadataKey: "store_ms"] = "\((ContinuousClock.now - started).milliseconds)"
        return didBecomeReady(record, logger: logger)
    }

    /// Records the asset, stores its object, marks it ready. The order, and what each
    /// failure leaves:
    /// 1. The record, pending, with the size and MD5 the object must have (the `etag`
    ///    field: the ETag without SSE-KMS, the `md5` metadata with it). A crash
    ///    from here on leaves a pending record that the repairs settle: ready if the
    ///    object is there and complete, else discarded and its key deleted.
    /// 2. PutObject. A clear refusal discards the record. No answer (timeout, reset) is
    ///    ambiguous: the object may have landed, so HeadObject decides, and what landed is
    ///    deleted before the record is discarded; when S3 cannot even say, the record stays
    ///    pending for the repairs.
    /// 3. The compare-and-set pending -> ready. A delete that began meanwhile wins: the
    ///    object is deleted, and the answer is a conflict.
    private func storeNewAsset(_ upload: DirectUpload, in workspaceID: Int64, fileType: String, fileExtension: String,
                               logger: Logger) throws -> AssetRecord {
        let expectedETag = Encoding.hex(upload.md5)
        let size = Int64(upload.spool.size)
        let asset = try records.createAsset(
            NewAsset(workspaceID: workspaceID, fileType: fileType, fileExtension: fileExtension, fileName: upload.fileName,
                     size: size, etag: expectedETag),
            status: .pending, now: now())
        return try directUpload(asset.id) {
            Faults.point("direct-upload-recorded")
            let etag: String
            do {
                etag = try objects.putObject(key: asset.key, file: upload.spool.descriptor, size: upload.spool.size, contentType: fileType,
                                             metadata: directUploadMetadata(asset, md5: upload.md5), sha256Hex: upload.sha256Hex,
                                             md5: upload.md5)
            } catch let error as S3Error where error.isAmbiguous {
                settleAmbiguousPut(asset, logger: logger)
                throw error
            } catch {
                try? records.discardPendingAsset(id: asset.id)
                throw error
            }
            Faults.point("direct-upload-stored")
            let ready: AssetRecord?
            do {
                ready = try records.markAssetReady(id: asset.id, size: size, etag: etag.isEmpty ? expectedETag : etag,
                                                   sha256: upload.sha256Hex, thumbnail: .none, now: now())
            } catch {
                // The object must not outlive a record that was never written.
                try? objects.deleteObjects(keys: [asset.key])
                try? records.discardPendingAsset(id: asset.id)
                throw error
            }
            guard let ready else {
                // A delete won the race: it answered 200, so nothing may remain.
                try objects.deleteObjects(keys: [asset.key])
                logger.notice("direct upload lost to a delete; its object was deleted", metadata: ["asset": "\(asset.id)", "key": "\(asset.key)"])
                throw AssetError.conflict("Asset \(asset.id) was deleted while it was being uploaded.")
            }
            return ready
        }
    }

    /// After a PutObject that got no answer: delete whatever landed, then discard the
    /// record. If S3 cannot be asked either, the record stays pending for the repairs.
    private func settleAmbiguousPut(_ asset: AssetRecord, logger: Logger) {
        do {
            if try objects.headObject(key: asset.key) != nil {
                try objects.deleteObjects(keys: [asset.key])
                logger.notice("an unanswered PutObject had landed; deleted", metadata: ["key": "\(asset.key)"])
            }
            try records.discardPendingAsset(id: asset.id)
        } catch {
            logger.warning("an unanswered PutObject could not be settled; the reconciler will", metadata: [
                "asset": "\(asset.id)", "key": "\(asset.key)", "error": "\(error)",
            ])
        }
    }
}
