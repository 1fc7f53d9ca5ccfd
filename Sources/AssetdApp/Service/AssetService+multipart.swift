public import AssetStore
import Foundation
import Hashing
public import Logging
public import S3Client

/// What start-upload asks for, parsed and authorized by the route.
public struct UploadRequest: Sendable {
    public var workspaceID: Int64
    /// The type the client declares (any case or alias); resolved against the allowed list.
    public var fileType: String
    public var fileName: String?
    public var fileSize: Int64?
    /// Set for a new version of this asset.
    public var assetID: Int64?

    public init(workspaceID: Int64, fileType: String, fileName: String?, fileSize: Int64?, assetID: Int64?) {
        self.workspaceID = workspaceID
        self.fileType = fileType
        self.fileName = fileName
        self.fileSize = fileSize
        self.assetID = assetID
    }
}

/// A multipart upload just started.
public struct StartedUpload: Sendable, Equatable {
    public var uploadID: String
    public var assetID: Int64
    /// The key the object will have once complete.
    public var key: String
    public var partSize: Int64?
    /// The version it makes, for a new version.
    public var version: Int?
}

/// A multipart upload completed (or found completed by a retry).
public struct UploadCompletion: Sendable, Equatable {
    public var location: String?
    public var key: String
    public var etag: String?
    public var version: Int?
}

/// One part of a complete-upload request.
public typealias CompletedPart = (partNumber: Int, etag: String)

/// The browser's multipart upload: start, part URLs, complete, abort. The browser PUTs
/// parts straight to S3 with presigned URLs.
extension AssetService {
    static let mebibyte: Int64 = 1024 * 1024
    static let minimumPartSize: Int64 = 5 * mebibyte
    public static let maxParts: Int64 = 10_000

    /// The smallest part size of at least 5 MiB, in whole MiB, that fits `fileSize` in 10,000 parts.
    static func partSize(for fileSize: Int64) -> Int64 {
        let perPart = (fileSize + maxParts - 1) / maxParts
        let wholeMiB = (perPart + mebibyte - 1) / mebibyte * mebibyte
        return max(minimumPartSize, wholeMiB)
    }

    /// Starts a multipart upload: a new asset, or a new version of a ready one. A failure
    /// leaves no record, and no upload in S3 that a record does not name.
    public func startUpload(_ request: UploadRequest, logger: Logger) throws -> StartedUpload {
        guard let (fileType, fileExtension) = configuration.mediaTypes.resolve(request.fileType) else {
            throw AssetError.refusedContent("fileType \(request.fileType) is not allowed; allowed: \(configuration.mediaTypes.allowed.sorted().joined(separator: ", ")).")
        }
        var partSize: Int64?
        if let size = request.fileSize {
            let limit = min(configuration.maxUploadBytes, Configuration.s3MaxObjectBytes)
            guard size <= limit else { throw AssetError.tooLarge("fileSize \(size) is over the limit of \(limit) bytes.") }
            partSize = Self.partSize(for: size)
        }
        if let assetID = request.assetID {
            return try startVersionUpload(of: asset(assetID, in: request.workspaceID), request, fileType: fileType,
                                          fileExtension: fileExtension, partSize: partSize, logger: logger)
        }
        let asset = try records.createAsset(
            NewAsset(workspaceID: request.workspaceID, fileType: fileType, fileExtension: fileExtension, fileName: request.fileName,
                     size: request.fileSize),
            status: .pending, now: now())
        let uploadID: String
        do {
            uploadID = try objects.createMultipartUpload(key: asset.key, contentType: fileType, metadata: metadata(asset))
        } catch {
            // Nothing in S3 but, after a timeout, perhaps an upload with no parts: the
            // bucket's lifecycle rule aborts it.
            try? records.discardPendingAsset(id: asset.id)
            throw error
        }
        do {
            _ = try records.createUpload(uploadID: uploadID, asset: asset, fileSize: request.fileSize, partSize: partSize, now: now())
        } catch {
            try? objects.abortMultipartUpload(key: asset.key, uploadID: uploadID)
            try? records.discardPendingAsset(id: asset.id)
            throw error
        }
        logger.info("upload started", metadata: ["asset": "\(asset.id)", "workspace": "\(asset.workspaceID)", "key": "\(asset.key)"])
        return StartedUpload(uploadID: uploadID, assetID: asset.id, key: asset.key, partSize: partSize, version: nil)
    }

    /// The upload a part-URL request names, if it still takes parts.
    public func pendingUpload(_ uploadID: String, asset assetID: Int64, in workspaceID: Int64) throws -> UploadRecord {
        let upload = try upload(uploadID, asset: assetID, in: workspaceID)
        if upload.status != .pending {
            // Off the hot path: a deleted asset's uploads are not found, like the asset itself.
            _ = try asset(assetID, in: workspaceID)
        }
        try Self.requirePending(upload)
        return upload
    }

    /// The parts S3 holds for a pending upload.
    public func listParts(of upload: UploadRecord) throws -> [S3Client.Part] {
        do {
            return try objects.listParts(key: upload.key, uploadID: upload.uploadID)
        } catch let error as S3Error where error.uploadIsGone {
            throw AssetError.conflict("The upload no longer exists in S3 (aborted or expired).")
        }
    }

    /// Completes a multipart upload. The order of its steps, and who wins a race:
    /// 1. The upload and its asset are read; a deleted asset is not found, an aborted or
    ///    expired upload a conflict, a completed one answers as before (the same parts).
    /// 2. CompleteMultipartUpload, once, with a long deadline (never retried blindly). If S3
    ///    says the upload is gone, S3 may have finished it already (an answer lost to a
    ///    timeout or a crash, or a retry racing): HeadObject, and an object whose ETag is
    ///    the multipart ETag of these parts counts as completed.
    ///    Before it, each part's ETag is checked against the MD5 its URL was signed for
    ///    (`checkSignedParts`); after it, the object's ETag against the parts' (`checkObjectETag`).
    /// 3. The size and content check (`checkCompleted`).
    /// 4. The compare-and-set pending -> completed/ready. If an abort or a delete won it
    ///    meanwhile, the object just made is deleted and the answer is a conflict (or not found).
    public func completeUpload(_ uploadID: String, asset assetID: Int64, in workspaceID: Int64, parts: [CompletedPart],
                               logger: Logger) throws -> UploadCompletion {
        let digest = Self.digest(parts)
        let asset = try asset(assetID, in: workspaceID)
        let upload = try upload(uploadID, asset: asset.id, in: workspaceID)
        switch upload.status {
        case .completed: return try completion(of: upload, digest: digest, logger: logger)
        case .aborted: throw AssetError.conflict("Upload \(uploadID) was aborted; start a new upload.")
        case .expired: throw AssetError.conflict("Upload \(uploadID) expired; start a new upload.")
        case .rejected: throw AssetError.conflict("Upload \(uploadID) was refused by its content or size check; start a new upload.")
        case .pending: break
        }
        // Each part's ETag against the MD5 signed for it, before S3 builds anything.
        try checkSignedParts(upload, parts)

        var location = objects.objectURL(key: upload.key)
        let etag: String
        let size: Int64
        do {
            let completed = try objects.completeMultipartUpload(key: upload.key, uploadID: uploadID, parts: parts)
            Faults.point("complete-s3-done")
            location = completed.location
            guard let info = try objects.headObject(key: upload.key) else {
                // Gone already: a delete that raced this complete removed it.
                if try records.asset(id: assetID, workspaceID: workspaceID)?.status.isGone ?? true {
                    throw AssetError.notFound("Asset \(assetID) was deleted while its upload was being completed.")
                }
                throw S3Error.malformed("the completed object \(upload.key) cannot be found")
            }
            etag = completed.etag.isEmpty ? info.etag : completed.etag
            size = Int64(info.size)
        } catch let error as S3Error where error.uploadIsGone {
            // Completed a moment ago by another request, or by S3 after our answer was lost?
            if let again = try records.upload(uploadID: uploadID, assetID: assetID, workspaceID: workspaceID), again.status == .completed {
                return try completion(of: again, digest: digest, logger: logger)
            }
            guard let info = try objects.headObject(key: upload.key), isCompletedObject(info, of: parts) else {
                throw AssetError.conflict("The upload no longer exists in S3 (aborted or expired).")
            }
            logger.notice("complete-upload recovered: S3 had completed it already", metadata: ["upload": "\(uploadID)", "key": "\(upload.key)"])
            etag = info.etag
            size = Int64(info.size)
        } catch let error as S3Error where [.invalidPart, .invalidPartOrder, .entityTooSmall].contains(error.code) {
            if case .service(let code, _, let message, _) = error {
                throw AssetError.invalid("parts: S3 refused the parts (\(code): \(message)).")
            }
            throw error
        }

        // The object's ETag must add up to the parts' MD5s (refused and deleted otherwise).
        try checkObjectETag(upload, parts: parts, etag: etag, logger: logger)
        let checking = ContinuousClock.now
        try checkCompleted(upload, declaredType: upload.fileType ?? asset.fileType, size: size, logger: logger)
        var logger = logger
        // On the "asset ready" line: what the content check (one ranged GET) cost.
        logger[metadataKey: "check_ms"] = "\((ContinuousClock.now - checking).milliseconds)"
        if let version = upload.version {
            return try completeVersion(version, of: asset, upload: upload, digest: digest, location: location, etag: etag, size: size,
                                       logger: logger)
        }
        if let ready = try records.completeUpload(uploadID: uploadID, partsDigest: digest, location: location, etag: etag, size: size,
                                                  thumbnail: .none, now: now()) {
            didBecomeReady(ready, logger: logger)
            return UploadCompletion(location: location, key: upload.key, etag: etag, version: nil)
        }
        return try lostCompletion(of: upload, digest: digest, logger: logger)
    }

    /// The compare-and-set was lost. To a retry of this same complete: its answer. To an
    /// abort or a delete: the object must not outlive them.
    func lostCompletion(of upload: UploadRecord, digest: String, logger: Logger) throws -> UploadCompletion {
        let again = try records.upload(uploadID: upload.uploadID, assetID: upload.assetID, workspaceID: upload.workspaceID)
        if let again, again.status == .completed { return try completion(of: again, digest: digest, logger: logger) }
        do {
            try objects.deleteObjects(keys: [upload.key])
        } catch {
            // The repairs cannot know of it: say so loudly.
            logger.error("an object outlived its aborted upload and could not be deleted", metadata: [
                "key": "\(upload.key)", "error": "\(error)",
            ])
            throw error
        }
        logger.notice("complete-upload lost to an abort or delete; its object was deleted", metadata: [
            "upload": "\(upload.uploadID)", "key": "\(upload.key)",
        ])
        if try records.asset(id: upload.assetID, workspaceID: upload.workspaceID)?.status.isGone ?? true {
            throw AssetError.notFound("Asset \(upload.assetID) was deleted while its upload was being completed.")
        }
        throw AssetError.conflict("Upload \(upload.uploadID) was aborted while it was being completed.")
    }

    /// The answer to a complete of an upload recorded as completed: the same as the first
    /// time for the same parts, a conflict for others.
    private func completion(of upload: UploadRecord, digest: String, logger: Logger) throws -> UploadCompletion {
        guard upload.partsDigest == digest else {
            throw AssetError.conflict("Upload \(upload.uploadID) was already completed with other parts.")
        }
        guard let version = upload.version else {
            return UploadCompletion(location: upload.location, key: upload.key, etag: upload.etag, version: nil)
        }
        // A new version: if its switch was interrupted (a crash), this retry finishes it.
        if let change = try records.versionSwitch(assetID: upload.assetID), change.version == version {
            if let current = try switchVersion(change, logger: logger) { didBecomeReady(current, logger: logger) }
        }
        let key = AssetKeys.original(workspaceID: upload.workspaceID, assetID: upload.assetID,
                                     fileExtension: AssetKeys.fileExtension(of: upload.key))
        return UploadCompletion(location: objects.objectURL(key: key), key: key, etag: upload.etag, version: version)
    }

    /// Aborts a pending upload: S3's abort first, then the compare-and-set pending ->
    /// aborted. If a complete won the race, a conflict and its object stays; if this abort
    /// wins, the complete finds it lost and deletes what it made. Aborting an upload that
    /// is over already (aborted, expired, refused) succeeds.
    public func abortUpload(_ uploadID: String, asset assetID: Int64, in workspaceID: Int64, logger: Logger) throws {
        let asset = try asset(assetID, in: workspaceID)
        let upload = try upload(uploadID, asset: asset.id, in: workspaceID)
        switch upload.status {
        case .aborted, .expired, .rejected: return
        case .completed: throw AssetError.conflict("Upload \(uploadID) is already completed; delete the asset instead.")
        case .pending: break
        }
        do {
            try objects.abortMultipartUpload(key: upload.key, uploadID: uploadID)
        } catch let error as S3Error where error.uploadIsGone {
            // Already gone in S3 (lifecycle rule, a retried abort, or a complete racing this).
        }
        if try records.abortUpload(uploadID: uploadID, now: now()) == .completed {
            throw AssetError.conflict("Upload \(uploadID) is already completed; delete the asset instead.")
        }
        logger.info("upload aborted", metadata: ["asset": "\(assetID)", "key": "\(upload.key)"])
    }

    /// A conflict unless the upload still takes parts.
    static func requirePending(_ upload: UploadRecord) throws {
        switch upload.status {
        case .pending: return
        case .completed: throw AssetError.conflict("Upload \(upload.uploadID) is already completed.")
        case .aborted: throw AssetError.conflict("Upload \(upload.uploadID) was aborted.")
        case .expired: throw AssetError.conflict("Upload \(upload.uploadID) expired; start a new upload.")
        case .rejected: throw AssetError.conflict("Upload \(upload.uploadID) was refused by its content or size check.")
        }
    }

    /// A digest of the parts, so that a retried complete can be told from a different one.
    static func digest(_ parts: [CompletedPart]) -> String {
        var text = ""
        for part in parts { text += "\(part.partNumber):\(part.etag.lowercased())\n" }
        return Encoding.hex(SHA256.hash(text.utf8))
    }

    /// Whether the object at an upload's key, found after S3 said the upload is gone, is
    /// the one CompleteMultipartUpload made of `parts` (an answer lost to a timeout or a
    /// crash). When ETags are MD5s: its ETag is the multipart ETag of the parts' ETags.
    /// Under SSE-KMS neither the parts' ETags nor the object's are MD5s, and nothing S3
    /// returns can be computed from the parts (S3 names no checksum that a browser's
    /// presigned parts did not declare). What remains is enough: the key is written only
    /// by this upload (a pending asset's key, or a version's own staging key), the object
    /// is a multipart object of as many parts as were submitted (ETag `…-N`), and it then
    /// passes the same size and content check as any completed upload.
    func isCompletedObject(_ info: S3Client.ObjectInfo, of parts: [CompletedPart]) -> Bool {
        let etag = Self.unquoted(info.etag).lowercased()
        if let expected = Self.multipartETag(parts), etag == expected { return true }
        guard !encryptionKeepsMD5ETags else { return false }
        return etag.hasSuffix("-\(parts.count)")
    }

    /// The ETag S3 gives an object made by CompleteMultipartUpload: the MD5 of the parts'
    /// binary MD5s, then `-N`. Nil when a part's ETag is not an MD5 (SSE-KMS, some servers).
    static func multipartETag(_ parts: [CompletedPart]) -> String? {
        var joined: [UInt8] = []
        joined.reserveCapacity(parts.count * 16)
        for part in parts {
            guard let md5 = Encoding.decodeHex(part.etag), md5.count == 16 else { return nil }
            joined += md5
        }
        let digest = Digest(.md5)
        digest.update(joined)
        return Encoding.hex(digest.finalize()) + "-\(parts.count)"
    }
}
