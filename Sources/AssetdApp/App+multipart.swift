import AssetStore
import FastCGIServer
import Foundation
import Hashing
import JSON
import S3Client

/// The multipart upload routes: the browser PUTs parts straight to S3 with presigned URLs.
extension App {
    static let mebibyte: Int64 = 1024 * 1024
    static let minimumPartSize: Int64 = 5 * mebibyte
    static let maxParts: Int64 = 10_000
    static let maxURLsAtOnce = 100

    /// The smallest part size of at least 5 MiB, in whole MiB, that fits `fileSize` in 10,000 parts.
    static func partSize(for fileSize: Int64) -> Int64 {
        let perPart = (fileSize + maxParts - 1) / maxParts
        let wholeMiB = (perPart + mebibyte - 1) / mebibyte * mebibyte
        return max(minimumPartSize, wholeMiB)
    }

    @Sendable func startUpload(_ request: Request, _ principal: Principal) throws -> Response {
        let query = request.query
        let workspaceID = try workspace(query["workspaceId"], principal)
        guard let claimed = query["fileType"], !claimed.isEmpty else { throw HTTPError(.badRequest, "fileType is required.") }
        guard let (fileType, fileExtension) = configuration.mediaTypes.resolve(claimed) else {
            throw HTTPError(.unsupportedMediaType, "fileType \(claimed) is not allowed; allowed: \(configuration.mediaTypes.allowed.sorted().joined(separator: ", ")).")
        }
        var fileSize: Int64?
        var partSize: Int64?
        if let text = query["fileSize"] {
            guard let size = Input.parseID(Substring(text)) else { throw HTTPError(.badRequest, "fileSize must be a positive integer (bytes).") }
            let limit = min(configuration.maxUploadBytes, Configuration.s3MaxObjectBytes)
            guard size <= limit else { throw HTTPError(.payloadTooLarge, "fileSize \(size) is over the limit of \(limit) bytes.") }
            fileSize = size
            partSize = Self.partSize(for: size)
        }
        let fileName = try Input.fileName(query["fileName"])
        if let assetText = query["assetId"] {
            return try startVersionUpload(request, workspaceID: workspaceID, assetText: assetText, fileType: fileType, fileExtension: fileExtension,
                                          fileName: fileName, fileSize: fileSize, partSize: partSize)
        }

        let asset = try database.createAsset(
            NewAsset(workspaceID: workspaceID, fileType: fileType, fileExtension: fileExtension, fileName: fileName, size: fileSize),
            now: now())
        let uploadID: String
        do {
            uploadID = try store.createMultipartUpload(key: asset.key, contentType: fileType, metadata: metadata(asset))
        } catch {
            // Nothing in S3 but, after a timeout, perhaps an upload with no parts: the
            // bucket's lifecycle rule aborts it.
            try? database.discardPendingAsset(id: asset.id)
            throw error
        }
        do {
            _ = try database.createUpload(uploadID: uploadID, asset: asset, fileSize: fileSize, partSize: partSize, now: now())
        } catch {
            try? store.abortMultipartUpload(key: asset.key, uploadID: uploadID)
            try? database.discardPendingAsset(id: asset.id)
            throw error
        }
        request.logger.info("upload started", metadata: ["asset": "\(asset.id)", "workspace": "\(workspaceID)", "key": "\(asset.key)"])
        var members: [JSONValue.Member] = [.init("uploadId", .string(uploadID)), .init("assetId", .string(String(asset.id))), .init("key", .string(asset.key))]
        if let partSize { members.append(.init("partSize", .int64(partSize))) }
        return .json(.object(members))
    }

    /// The upload a part-URL request names, checked: workspace, asset, upload, still pending.
    private func pendingUpload(_ request: Request, _ principal: Principal) throws -> UploadRecord {
        let query = request.query
        let workspaceID = try workspace(query["workspaceId"], principal)
        let assetID = try Input.id(query["assetId"], field: "assetId")
        let uploadID = try Input.token(query["UploadId"] ?? query["uploadId"], field: "UploadId")
        let upload = try upload(uploadID, asset: assetID, in: workspaceID)
        if upload.status != .pending {
            // Off the hot path: a deleted asset's uploads answer 404 like the asset itself.
            _ = try asset(assetID, in: workspaceID)
        }
        try requirePending(upload)
        return upload
    }

    func partURL(_ upload: UploadRecord, _ partNumber: Int) -> String {
        presign("PUT", key: upload.key, query: [("partNumber", String(partNumber)), ("uploadId", upload.uploadID)],
                expires: configuration.presignExpires)
    }

    @Sendable func uploadPartURL(_ request: Request, _ principal: Principal) throws -> Response {
        let partText = request.query["PartNumber"] ?? request.query["partNumber"]
        guard partText != nil else { throw HTTPError(.badRequest, "PartNumber is required.") }
        let partNumber = try Input.integer(partText, field: "PartNumber", in: 1...Self.maxParts)!
        let upload = try pendingUpload(request, principal)
        return .json(["url": .string(partURL(upload, Int(partNumber))), "expiresIn": .int(configuration.presignExpires)])
    }

    @Sendable func uploadPartURLs(_ request: Request, _ principal: Principal) throws -> Response {
        let numbers = try Input.partNumbers(request.query["partNumbers"], field: "partNumbers", max: Self.maxURLsAtOnce)
        let upload = try pendingUpload(request, principal)
        let urls: [JSONValue] = numbers.map { ["partNumber": .int($0), "url": .string(partURL(upload, $0))] }
        return .json(["urls": .array(urls), "expiresIn": .int(configuration.presignExpires)])
    }

    @Sendable func listParts(_ request: Request, _ principal: Principal) throws -> Response {
        let upload = try pendingUpload(request, principal)
        let parts: [S3Client.Part]
        do {
            parts = try store.listParts(key: upload.key, uploadID: upload.uploadID)
        } catch let error as S3Error where error.isNoSuchUpload {
            throw HTTPError(.conflict, "The upload no longer exists in S3 (aborted or expired).")
        }
        let list: [JSONValue] = parts.map { ["PartNumber": .int($0.partNumber), "ETag": .string($0.etag), "Size": .int($0.size)] }
        return .json(["parts": .array(list)])
    }

    /// The parts of a complete-upload body: non-empty, each 1...10000, ascending, unique;
    /// ETags quoted or not.
    static func parts(_ value: JSONValue?) throws -> [(partNumber: Int, etag: String)] {
        guard let list = value?.arrayValue else { throw HTTPError(.badRequest, "parts must be an array of {ETag, PartNumber}.") }
        guard !list.isEmpty else { throw HTTPError(.badRequest, "parts must not be empty.") }
        guard list.count <= Int(maxParts) else { throw HTTPError(.badRequest, "parts may hold at most 10000 parts.") }
        var parts: [(partNumber: Int, etag: String)] = []
        parts.reserveCapacity(list.count)
        for (index, item) in list.enumerated() {
            guard case .number(let text)? = item["PartNumber"], let number = Input.parseID(Substring(text)), number <= maxParts else {
                throw HTTPError(.badRequest, "parts[\(index)].PartNumber must be an integer from 1 to 10000.")
            }
            guard let quoted = item["ETag"]?.stringValue else { throw HTTPError(.badRequest, "parts[\(index)].ETag is required.") }
            let etag = unquoted(quoted)
            guard !etag.isEmpty, etag.utf8.count <= 128, etag.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != 0x22 }) else {
                throw HTTPError(.badRequest, "parts[\(index)].ETag is not a valid ETag.")
            }
            if let last = parts.last, last.partNumber >= Int(number) {
                throw HTTPError(.badRequest, "parts must be in ascending PartNumber order without duplicates (parts[\(index)]).")
            }
            parts.append((Int(number), etag))
        }
        return parts
    }

    static func digest(_ parts: [(partNumber: Int, etag: String)]) -> String {
        var text = ""
        for part in parts { text += "\(part.partNumber):\(part.etag.lowercased())\n" }
        return Encoding.hex(SHA256.hash(text.utf8))
    }

    /// The workspace (checked against the token), asset and upload a JSON body names.
    private func uploadIdentity(_ body: JSONValue, _ principal: Principal) throws -> (workspaceID: Int64, assetID: Int64, uploadID: String) {
        let workspaceID = try Input.id(body["workspaceId"], field: "workspaceId")
        try principal.authorize(workspaceID)
        let assetID = try Input.id(body["assetId"], field: "assetId")
        return (workspaceID, assetID, try Input.token(body["uploadId"]?.stringValue, field: "uploadId"))
    }

    /// The ETag S3 gives an object made by CompleteMultipartUpload: the MD5 of the parts'
    /// binary MD5s, then `-N`. Nil when a part's ETag is not an MD5 (SSE-KMS, some servers).
    static func multipartETag(_ parts: [(partNumber: Int, etag: String)]) -> String? {
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

    /// POST /s3/complete-upload. The order of its steps, and who wins a race:
    /// 1. The upload and its asset are read; a deleted asset is 404, an aborted or expired
    ///    upload 409, a completed one answers as before (the same parts) or 409.
    /// 2. CompleteMultipartUpload, once, with a long deadline (never retried blindly). If S3
    ///    says NoSuchUpload, S3 may have finished it already (an answer lost to a timeout or
    ///    a crash, or a retry racing): HeadObject, and an object whose ETag is the multipart
    ///    ETag of these parts counts as completed.
    /// 3. The compare-and-set pending -> completed/ready. If an abort or a delete won it
    ///    meanwhile, the object just made is deleted and the answer is 409 (or 404).
    @Sendable func completeUpload(_ request: Request, _ principal: Principal) throws -> Response {
        let body = try jsonBody(request)
        let (workspaceID, assetID, uploadID) = try uploadIdentity(body, principal)
        let parts = try Self.parts(body["parts"])
        let digest = Self.digest(parts)
        let asset = try asset(assetID, in: workspaceID)
        let upload = try upload(uploadID, asset: asset.id, in: workspaceID)

        func answer(_ upload: UploadRecord) throws -> Response {
            guard upload.partsDigest == digest else {
                throw HTTPError(.conflict, "Upload \(uploadID) was already completed with other parts.")
            }
            guard let version = upload.version else {
                return .json(["success": true, "location": .optional(upload.location), "key": .string(upload.key), "etag": .optional(upload.etag)])
            }
            // A new version: if its switch was interrupted (a crash), this retry finishes it.
            if let change = try database.versionSwitch(assetID: upload.assetID), change.version == version {
                if let current = try finishVersionSwitch(change, logger: request.logger) { assetBecameReady(current, logger: request.logger) }
            }
            let key = AssetKeys.original(workspaceID: upload.workspaceID, assetID: upload.assetID, fileExtension: AssetKeys.fileExtension(of: upload.key))
            return .json(["success": true, "location": .string(store.objectURL(key: key)), "key": .string(key),
                          "etag": .optional(upload.etag), "version": .int(version)])
        }
        switch upload.status {
        case .completed: return try answer(upload)
        case .aborted: throw HTTPError(.conflict, "Upload \(uploadID) was aborted; start a new upload.")
        case .expired: throw HTTPError(.conflict, "Upload \(uploadID) expired; start a new upload.")
        case .rejected: throw HTTPError(.conflict, "Upload \(uploadID) was refused by its content or size check; start a new upload.")
        case .pending: break
        }

        var location = store.objectURL(key: upload.key)
        let etag: String
        let size: Int64
        do {
            let completed = try store.completeMultipartUpload(key: upload.key, uploadID: uploadID, parts: parts)
            Faults.point("complete-s3-done")
            location = completed.location
            guard let info = try store.headObject(key: upload.key) else {
                // Gone already: a delete that raced this complete removed it.
                if try database.asset(id: assetID, workspaceID: workspaceID)?.status.isGone ?? true {
                    throw HTTPError(.notFound, "Asset \(assetID) was deleted while its upload was being completed.")
                }
                throw HTTPError(.badGateway, "S3 failed: the completed object \(upload.key) cannot be found.")
            }
            etag = completed.etag.isEmpty ? info.etag : completed.etag
            size = Int64(info.size)
        } catch let error as S3Error where error.isNoSuchUpload {
            // Completed a moment ago by another request, or by S3 after our answer was lost?
            if let again = try database.upload(uploadID: uploadID, assetID: assetID, workspaceID: workspaceID), again.status == .completed {
                return try answer(again)
            }
            guard let expected = Self.multipartETag(parts), let info = try store.headObject(key: upload.key),
                  Self.unquoted(info.etag) == expected
            else {
                throw HTTPError(.conflict, "The upload no longer exists in S3 (aborted or expired).")
            }
            request.logger.notice("complete-upload recovered: S3 had completed it already", metadata: ["upload": "\(uploadID)", "key": "\(upload.key)"])
            etag = info.etag
            size = Int64(info.size)
        }

        let checking = ContinuousClock.now
        try checkCompleted(upload, declaredType: upload.fileType ?? asset.fileType, size: size, request: request)
        // On the "asset ready" line: what the content check (one ranged GET) cost.
        request.logger[metadataKey: "check_ms"] = "\(Double((ContinuousClock.now - checking) / .microseconds(1)) / 1000)"
        if let version = upload.version {
            let change = VersionSwitch(
                assetID: asset.id, workspaceID: workspaceID, version: version, stagingKey: upload.key,
                newKey: AssetKeys.original(workspaceID: workspaceID, assetID: asset.id, fileExtension: AssetKeys.fileExtension(of: upload.key)),
                fileType: upload.fileType ?? asset.fileType, fileName: upload.fileName, size: size, etag: etag, state: .stored, createdAt: now())
            if let recorded = try database.completeVersionUpload(uploadID: uploadID, partsDigest: digest, location: location, change: change, now: now()) {
                Faults.point("version-recorded")
                guard let current = try finishVersionSwitch(recorded, logger: request.logger) else {
                    throw HTTPError(.notFound, "Asset \(assetID) was deleted while its new version was being completed.")
                }
                assetBecameReady(current, logger: request.logger)
                return .json(["success": true, "location": .string(store.objectURL(key: current.key)), "key": .string(current.key),
                              "etag": .string(etag), "version": .int(version)])
            }
        } else if let ready = try database.completeUpload(uploadID: uploadID, partsDigest: digest, location: location,
                                                          etag: etag, size: size, thumbnail: .none, now: now()) {
            assetBecameReady(ready, logger: request.logger)
            return .json(["success": true, "location": .string(location), "key": .string(upload.key), "etag": .string(etag)])
        }
        // Lost the compare-and-set. To a retry of this same complete: its answer. To an
        // abort or a delete: the object must not outlive them.
        let again = try database.upload(uploadID: uploadID, assetID: assetID, workspaceID: workspaceID)
        if let again, again.status == .completed { return try answer(again) }
        do {
            try store.deleteObjects(keys: [upload.key])
        } catch {
            // The reconciler cannot know of it: say so loudly.
            request.logger.error("an object outlived its aborted upload and could not be deleted", metadata: [
                "key": "\(upload.key)", "error": "\(error)",
            ])
            throw error
        }
        request.logger.notice("complete-upload lost to an abort or delete; its object was deleted", metadata: ["upload": "\(uploadID)", "key": "\(upload.key)"])
        if try database.asset(id: assetID, workspaceID: workspaceID)?.status.isGone ?? true {
            throw HTTPError(.notFound, "Asset \(assetID) was deleted while its upload was being completed.")
        }
        throw HTTPError(.conflict, "Upload \(uploadID) was aborted while it was being completed.")
    }

    static func unquoted(_ etag: String) -> String {
        etag.count >= 2 && etag.hasPrefix("\"") && etag.hasSuffix("\"") ? String(etag.dropFirst().dropLast()) : etag
    }

    /// Whether the object HeadObject found is the one recorded: its size and ETag (quoted
    /// or not, in any case) are those expected. False when there is no object or no record.
    static func isRecordedObject(_ info: S3Client.ObjectInfo?, size: Int64?, etag: String?) -> Bool {
        guard let info, let size, let etag else { return false }
        return Int64(info.size) == size && unquoted(info.etag).lowercased() == unquoted(etag).lowercased()
    }

    /// POST /s3/abort-upload: S3's abort first, then the compare-and-set pending -> aborted.
    /// If a complete won the race, the answer is 409 and its object stays; if this abort
    /// wins, the complete finds it lost and deletes what it made.
    @Sendable func abortUpload(_ request: Request, _ principal: Principal) throws -> Response {
        let (workspaceID, assetID, uploadID) = try uploadIdentity(try jsonBody(request), principal)
        let asset = try asset(assetID, in: workspaceID)
        let upload = try upload(uploadID, asset: asset.id, in: workspaceID)
        switch upload.status {
        case .aborted, .expired, .rejected: return .json(["success": true])
        case .completed: throw HTTPError(.conflict, "Upload \(uploadID) is already completed; delete the asset instead.")
        case .pending: break
        }
        do {
            try store.abortMultipartUpload(key: upload.key, uploadID: uploadID)
        } catch let error as S3Error where error.isNoSuchUpload {
            // Already gone in S3 (lifecycle rule, a retried abort, or a complete racing this).
        }
        switch try database.abortUpload(uploadID: uploadID, now: now()) {
        case .completed?:
            throw HTTPError(.conflict, "Upload \(uploadID) is already completed; delete the asset instead.")
        default:
            request.logger.info("upload aborted", metadata: ["asset": "\(assetID)", "key": "\(upload.key)"])
            return .json(["success": true])
        }
    }
}
