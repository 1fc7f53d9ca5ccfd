import AssetStore
import FastCGIServer
import Foundation
import Hashing
import JSON
import Logging
import S3Client

/// New versions of an asset, and the checks every stored object passes.
///
/// A new version's bytes never go to the current key directly. They are uploaded (multipart
/// or direct) to the version's own archive key, `{ws}/versions/{id}/v{N}.{ext}`, checked
/// there, and only then switched in (`finishVersionSwitch`), so that a refused or
/// half-finished version never replaces the current one.
extension App {
    /// The first 64 KiB of an object decide its type: read back from S3 after a multipart
    /// upload, kept as they arrived on the direct path.
    static let contentCheckBytes = 64 * 1024

    /// GET /s3/start-upload with `assetId`: a multipart upload of a new version of a ready
    /// asset of the workspace. 404 for another workspace's or a deleted asset; 409 while
    /// another upload of it is pending.
    func startVersionUpload(_ request: Request, workspaceID: Int64, assetText: String, fileType: String, fileExtension: String,
                            fileName: String?, fileSize: Int64?, partSize: Int64?) throws -> Response {
        let assetID = try Input.id(assetText, field: "assetId")
        let asset = try asset(assetID, in: workspaceID)
        guard asset.status == .ready else {
            throw HTTPError(.conflict, "Asset \(assetID) has no stored file to follow yet (status \(asset.status.rawValue)).")
        }
        let version = asset.currentVersion + 1
        let stagingKey = AssetKeys.version(workspaceID: workspaceID, assetID: assetID, version: version, fileExtension: fileExtension)
        let uploadID = try store.createMultipartUpload(key: stagingKey, contentType: fileType, metadata: metadata(asset))
        do {
            _ = try database.createVersionUpload(uploadID: uploadID, asset: asset, version: version, stagingKey: stagingKey,
                                                 fileType: fileType, fileName: fileName, fileSize: fileSize, partSize: partSize, now: now())
        } catch {
            try? store.abortMultipartUpload(key: stagingKey, uploadID: uploadID)
            throw Self.versionError(error, assetID: assetID)
        }
        request.logger.info("version upload started", metadata: ["asset": "\(assetID)", "version": "\(version)", "key": "\(stagingKey)"])
        let finalKey = AssetKeys.original(workspaceID: workspaceID, assetID: assetID, fileExtension: fileExtension)
        var members: [JSONValue.Member] = [.init("uploadId", .string(uploadID)), .init("assetId", .string(String(assetID))),
                                           .init("key", .string(finalKey)), .init("version", .int(version))]
        if let partSize { members.append(.init("partSize", .int64(partSize))) }
        return .json(.object(members))
    }

    static func versionError(_ error: any Error, assetID: Int64) -> any Error {
        switch error as? VersionConflict {
        case .busy?:
            return HTTPError(.conflict, "Asset \(assetID) has an upload in progress; complete or abort it first.")
        case .notReady(let status)?:
            if status.isGone { return HTTPError(.notFound, "Asset \(assetID) was not found.") }
            return HTTPError(.conflict, "Asset \(assetID) has no stored file to follow yet (status \(status.rawValue)).")
        case nil:
            return error
        }
    }

    /// The size and content check of a completed multipart object, before it counts: its
    /// size against the declared fileSize and ASSETD_MAX_UPLOAD_BYTES, then libmagic on its
    /// first 64 KiB (one ranged GET) against the declared type. On failure the object is
    /// deleted, the upload recorded as rejected, and the error thrown: 413, 400 (short) or 415.
    func checkCompleted(_ upload: UploadRecord, declaredType: String, size: Int64, request: Request) throws {
        var refusal: HTTPError?
        let limit = min(configuration.maxUploadBytes, Configuration.s3MaxObjectBytes)
        if let declared = upload.fileSize, size != declared {
            refusal = size > declared
                ? HTTPError(.payloadTooLarge, "The upload is \(size) bytes, more than the fileSize of \(declared) declared at start-upload.")
                : HTTPError(.badRequest, "The upload is \(size) bytes, short of the fileSize of \(declared) declared at start-upload.")
        } else if size > limit {
            refusal = HTTPError(.payloadTooLarge, "The upload is \(size) bytes, over the limit of \(limit) bytes.")
        } else {
            let head = try store.getObject(key: upload.key, range: 0...(Self.contentCheckBytes - 1))
            let detected: String
            do {
                detected = try head.withUnsafeBytes { try detector.mimeType(of: $0) }
            } catch {
                logger.error("content detection failed", metadata: ["error": "\(error)"])
                throw HTTPError(.internalServerError, "The file's type could not be detected; the details are in the server log.")
            }
            if configuration.mediaTypes.resolve(detected)?.type != MediaTypes.normalize(declaredType) {
                refusal = HTTPError(.unsupportedMediaType, "The uploaded content is \(detected), not the \(declaredType) declared at start-upload.")
            }
        }
        guard let refusal else { return }
        try store.deleteObjects(keys: [upload.key])
        try database.rejectUpload(uploadID: upload.uploadID, now: now())
        request.logger.notice("completed upload refused; its object was deleted", metadata: [
            "upload": "\(upload.uploadID)", "key": "\(upload.key)", "status": "\(refusal.status.code)",
        ])
        throw refusal
    }

    /// Makes a checked new version current. Each step is safe to repeat, so that the
    /// reconciler can run this again after a crash at any point:
    /// 1. archive: the current object is copied to `versions/{id}/v{N}.{ext}`, unless that
    ///    key exists already (a previous run got that far);
    /// 2. promote: the new bytes are copied from their staging key to
    ///    `digital_assets/{id}.{ext}`, while the staging key exists;
    /// 3. tidy: the staging key is deleted, and the old current key when the extension
    ///    changed;
    /// 4. record: one transaction archives version N, makes N+1 current and drops the switch.
    /// Nil when the asset moved on meanwhile (deleted): the switch is then undone.
    func finishVersionSwitch(_ change: VersionSwitch, logger: Logger) throws -> AssetRecord? {
        try exclusively(change.assetID) { try switchIn(change, logger: logger) }
    }

    private func switchIn(_ change: VersionSwitch, logger: Logger) throws -> AssetRecord? {
        guard let asset = try database.asset(id: change.assetID, workspaceID: change.workspaceID),
              asset.status == .ready, asset.currentVersion == change.version - 1
        else {
            // Never delete a key that the record still calls a version.
            if try database.discardVersionSwitch(assetID: change.assetID, version: change.version),
               try !database.versions(assetID: change.assetID).contains(where: { $0.key == change.stagingKey }) {
                try store.deleteObjects(keys: [change.stagingKey])
            }
            return nil
        }
        let archiveKey = AssetKeys.version(workspaceID: asset.workspaceID, assetID: asset.id, version: asset.currentVersion,
                                           fileExtension: asset.fileExtension)
        // Archived already by an earlier run of this switch (the same size), or not yet.
        if try store.headObject(key: archiveKey).map({ Int64($0.size) != asset.size }) ?? true {
            try store.copy(from: asset.key, to: archiveKey, size: asset.size ?? 0, contentType: asset.fileType, metadata: metadata(asset),
                           partSize: 512 * 1024 * 1024, singleCopyLimit: S3Client.singleCopyLimit)
        }
        Faults.point("version-archived")
        if try store.headObject(key: change.stagingKey) != nil {
            try store.copy(from: change.stagingKey, to: change.newKey, size: change.size, contentType: change.fileType,
                           metadata: metadata(asset), partSize: 512 * 1024 * 1024, singleCopyLimit: S3Client.singleCopyLimit)
        }
        Faults.point("version-promoted")
        var stale = [change.stagingKey]
        if change.newKey != asset.key { stale.append(asset.key) }
        try store.deleteObjects(keys: stale)
        guard let current = try database.recordVersionSwitched(change, archiveKey: archiveKey, now: now()) else {
            // The asset moved on (deleted) while its objects were moved: none may stay.
            if try database.asset(id: asset.id, workspaceID: asset.workspaceID)?.status.isGone ?? true {
                try store.deleteObjects(keys: [change.newKey, archiveKey, change.stagingKey])
            }
            return nil
        }
        logger.info("version switched in", metadata: ["asset": "\(asset.id)", "version": "\(change.version)", "key": "\(change.newKey)"])
        return current
    }

    /// A direct upload of a new version: the switch is recorded before the PutObject to
    /// the staging key, then the bytes are stored and switched in.
    func storeDirectVersion(_ spool: SpoolFile, asset: AssetRecord, fileType: String, fileExtension: String, fileName: String?,
                            digests: (sha256Hex: String, md5: [UInt8]), request: Request) throws -> AssetRecord {
        let version = asset.currentVersion + 1
        let change = VersionSwitch(
            assetID: asset.id, workspaceID: asset.workspaceID, version: version,
            stagingKey: AssetKeys.version(workspaceID: asset.workspaceID, assetID: asset.id, version: version, fileExtension: fileExtension),
            newKey: AssetKeys.original(workspaceID: asset.workspaceID, assetID: asset.id, fileExtension: fileExtension),
            fileType: fileType, fileName: fileName, size: Int64(spool.size), etag: Encoding.hex(digests.md5), state: .uploading,
            createdAt: now())
        do {
            _ = try database.beginDirectVersion(change)
        } catch {
            throw Self.versionError(error, assetID: asset.id)
        }
        directUploadsInFlight.write { _ = $0.insert(asset.id) }
        defer { directUploadsInFlight.write { _ = $0.remove(asset.id) } }
        let etag: String
        do {
            etag = try store.putObject(key: change.stagingKey, file: spool.descriptor, size: spool.size, contentType: fileType,
                                       metadata: metadata(asset), sha256Hex: digests.sha256Hex, md5: digests.md5, cacheControl: nil)
        } catch let error as S3Error where error.isAmbiguous {
            // The reconciler settles it: the bytes are there whole, or they are deleted.
            request.logger.warning("an unanswered PutObject of a new version is left to the reconciler", metadata: ["key": "\(change.stagingKey)"])
            throw error
        } catch {
            try? database.discardVersionSwitch(assetID: asset.id, version: version)
            throw error
        }
        try database.markVersionStored(assetID: asset.id, etag: etag.isEmpty ? change.etag : etag)
        var stored = change
        stored.state = .stored
        stored.etag = etag.isEmpty ? change.etag : etag
        guard let current = try finishVersionSwitch(stored, logger: request.logger) else {
            throw HTTPError(.conflict, "Asset \(asset.id) was deleted while its new version was being stored.")
        }
        return current
    }

    /// A `Content-Disposition` value that names `fileName` (RFC 6266), with an ASCII
    /// fallback and the exact name as RFC 5987's `filename*=UTF-8''...`.
    static func contentDisposition(_ type: String, fileName: String) -> String {
        var fallback = ""
        for scalar in fileName.unicodeScalars {
            switch scalar.value {
            case 0x20...0x7e where scalar != "\"" && scalar != "\\" && scalar != "%": fallback.unicodeScalars.append(scalar)
            default: fallback += "_"
            }
        }
        var encoded = ""
        for byte in fileName.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "+"), UInt8(ascii: "-"),
                 UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                encoded += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return "\(type); filename=\"\(fallback)\"; filename*=UTF-8''\(encoded)"
    }

    /// The name a download of version `version` carries: the recorded name, with ` (vN)`
    /// before the extension for an earlier version, and the version's own extension.
    static func downloadName(_ asset: AssetRecord, version: Int?, fileExtension: String) -> String {
        let recorded = asset.fileName ?? "\(asset.id).\(fileExtension)"
        guard let version, version != asset.currentVersion else { return recorded }
        var base = recorded
        if let dot = recorded.lastIndex(of: "."), dot != recorded.startIndex { base = String(recorded[..<dot]) }
        return "\(base) (v\(version)).\(fileExtension)"
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
