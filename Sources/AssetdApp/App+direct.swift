import AssetStore
import FastCGIServer
import FormData
import Foundation
import JSON
import S3Client
import Hashing

/// POST /api/assets/upload: a small file in multipart/form-data, streamed to a spool file,
/// checked by its content (libmagic), stored with PutObject.
extension App {
    /// Room for the form's own bytes (boundaries, headers, other fields) beyond the file.
    static let formOverhead: Int64 = 1024 * 1024
    static let readChunk = 64 * 1024

    @Sendable func directUpload(_ request: Request, _ principal: Principal) throws -> Response {
        // Cheap refusals first, before a byte of the body is read.
        let queryWorkspace = try request.query["workspaceId"].map { try workspace($0, principal) }
        guard let boundary = MultipartParser.boundary(contentType: request.headers["content-type"]) else {
            throw HTTPError(.badRequest, "Content-Type must be multipart/form-data with a boundary.")
        }
        let limit = configuration.maxDirectUploadBytes
        if let length = request.contentLength, Int64(length) > limit + Self.formOverhead {
            throw HTTPError(.payloadTooLarge, "The file is larger than \(limit) bytes; use the multipart upload routes.")
        }

        let spool: SpoolFile
        do {
            spool = try SpoolFile(directory: configuration.tmpDirectory, expectedSize: request.contentLength)
        } catch {
            throw spoolFailed(error)
        }
        let clock = ContinuousClock()
        let started = clock.now
        var form = UploadForm(spool: spool, limit: limit)
        do {
            var parser = try MultipartParser(boundary: boundary)
            var chunk = [UInt8](repeating: 0, count: Self.readChunk)
            while true {
                let n = try chunk.withUnsafeMutableBytes { try request.body.read(into: $0) }
                if n == 0 { break }
                try chunk.withUnsafeBytes { try parser.feed(UnsafeRawBufferPointer(rebasing: $0[0..<n]), to: &form) }
            }
            try parser.finish()
        } catch let error as MultipartError {
            throw HTTPError(.badRequest, error.description)
        } catch let error as SpoolError {
            throw spoolFailed(error)
        }

        let workspaceID: Int64
        switch (queryWorkspace, form.workspaceID) {
        case (let query?, let field?):
            guard Input.parseID(Substring(field)) == query else {
                throw HTTPError(.badRequest, "workspaceId differs between the query and the form.")
            }
            workspaceID = query
        case (let query?, nil): workspaceID = query
        case (nil, let field): workspaceID = try workspace(field, principal)
        }
        guard form.sawFile else { throw HTTPError(.badRequest, "file is required: send it as the form field 'file'.") }
        // A new version of an asset: `assetId` in the query or the form (the same if both).
        let assetText: String?
        switch (request.query["assetId"], form.assetID) {
        case (let query?, let field?):
            guard Input.parseID(Substring(query)) != nil, Input.parseID(Substring(query)) == Input.parseID(Substring(field)) else {
                throw HTTPError(.badRequest, "assetId differs between the query and the form.")
            }
            assetText = query
        case (let query, let field): assetText = query ?? field
        }
        let target = try assetText.map { try asset(Input.id($0, field: "assetId"), in: workspaceID) }
        guard spool.size > 0 else { throw HTTPError(.badRequest, "file is empty.") }

        let detected: String
        do {
            // The file's first bytes, kept as they arrived: the same 64 KiB the multipart
            // path's content check reads back from S3 (reading the spool instead made
            // libmagic read up to its limit of the file: 0.7 ms for 1 MB, against 0.04).
            detected = try form.head.withUnsafeBytes { try detector.mimeType(of: $0) }
        } catch {
            logger.error("content detection failed", metadata: ["error": "\(error)"])
            throw HTTPError(.internalServerError, "The file's type could not be detected; the details are in the server log.")
        }
        guard let (fileType, fileExtension) = configuration.mediaTypes.resolve(detected) else {
            throw HTTPError(.unsupportedMediaType, "The file's content is \(detected), which is not allowed; allowed: \(configuration.mediaTypes.allowed.sorted().joined(separator: ", ")).")
        }

        let digests: (sha256Hex: String, md5: [UInt8])
        do {
            digests = try spool.digests()
        } catch {
            throw spoolFailed(error)
        }
        let received = clock.now
        let record: AssetRecord
        if let target {
            record = try storeDirectVersion(spool, asset: target, fileType: fileType, fileExtension: fileExtension,
                                            fileName: form.fileName, digests: digests, request: request)
        } else {
            record = try store(spool, workspaceID: workspaceID, fileType: fileType, fileExtension: fileExtension,
                               fileName: form.fileName, digests: digests, request: request)
        }
        // Where the time went, on the "asset ready" line: receiving, hashing and checking
        // the form, then storing it in S3.
        request.logger[metadataKey: "receive_ms"] = "\(AccessLog.milliseconds(received - started))"
        request.logger[metadataKey: "store_ms"] = "\(AccessLog.milliseconds(clock.now - received))"
        assetBecameReady(record, logger: request.logger)
        // A new asset has no earlier versions: no query for them.
        let versions = target == nil ? [] : try database.versions(assetID: record.id)
        return .json(["asset": json(record, versions: versions)])
    }
}

extension App {
    /// Records the asset, stores its object, marks it ready. The order, and what each
    /// failure leaves:
    /// 1. The record, pending, with the size and ETag (MD5) the object must have. A crash
    ///    from here on leaves a pending record that the reconciler settles: ready if the
    ///    object is there and complete, else discarded and its key deleted.
    /// 2. PutObject. A clear refusal discards the record. No answer (timeout, reset) is
    ///    ambiguous: the object may have landed, so HeadObject decides, and what landed is
    ///    deleted before the record is discarded; when S3 cannot even say, the record stays
    ///    pending for the reconciler.
    /// 3. The compare-and-set pending -> ready. A delete that began meanwhile wins: the
    ///    object is deleted, and the answer is 409.
    func store(_ spool: SpoolFile, workspaceID: Int64, fileType: String, fileExtension: String, fileName: String?,
               digests: (sha256Hex: String, md5: [UInt8]), request: Request) throws -> AssetRecord {
        let expectedETag = Encoding.hex(digests.md5)
        let asset = try database.createAsset(
            NewAsset(workspaceID: workspaceID, fileType: fileType, fileExtension: fileExtension, fileName: fileName,
                     size: Int64(spool.size), etag: expectedETag),
            now: now())
        directUploadsInFlight.write { _ = $0.insert(asset.id) }
        defer { directUploadsInFlight.write { _ = $0.remove(asset.id) } }
        Faults.point("direct-upload-recorded")

        let etag: String
        do {
            etag = try store.putObject(key: asset.key, file: spool.descriptor, size: spool.size, contentType: fileType,
                                       metadata: metadata(asset), sha256Hex: digests.sha256Hex, md5: digests.md5, cacheControl: nil)
        } catch let error as S3Error where error.isAmbiguous {
            settleAmbiguousPut(asset, error: error, request: request)
            throw error
        } catch {
            try? database.discardPendingAsset(id: asset.id)
            throw error
        }
        Faults.point("direct-upload-stored")
        let ready: AssetRecord?
        do {
            ready = try database.markAssetReady(id: asset.id, size: Int64(spool.size), etag: etag.isEmpty ? expectedETag : etag,
                                                sha256: digests.sha256Hex, thumbnail: .none, now: now())
        } catch {
            // The object must not outlive a record that was never written.
            try? store.deleteObjects(keys: [asset.key])
            try? database.discardPendingAsset(id: asset.id)
            throw error
        }
        guard let ready else {
            // A delete won the race: it answered 200, so nothing may remain.
            try store.deleteObjects(keys: [asset.key])
            request.logger.notice("direct upload lost to a delete; its object was deleted", metadata: ["asset": "\(asset.id)", "key": "\(asset.key)"])
            throw HTTPError(.conflict, "Asset \(asset.id) was deleted while it was being uploaded.")
        }
        return ready
    }

    /// After a PutObject that got no answer: delete whatever landed, then discard the
    /// record. If S3 cannot be asked either, the record stays pending for the reconciler.
    private func settleAmbiguousPut(_ asset: AssetRecord, error: S3Error, request: Request) {
        do {
            if try store.headObject(key: asset.key) != nil {
                try store.deleteObjects(keys: [asset.key])
                request.logger.notice("an unanswered PutObject had landed; deleted", metadata: ["key": "\(asset.key)"])
            }
            try database.discardPendingAsset(id: asset.id)
        } catch {
            request.logger.warning("an unanswered PutObject could not be settled; the reconciler will", metadata: [
                "asset": "\(asset.id)", "key": "\(asset.key)", "error": "\(error)",
            ])
        }
    }

    /// GET /api/assets/upload/authorize: nginx's auth_request before it reads a direct
    /// upload's body, so that a request without a valid token, or for a workspace outside
    /// it, is refused at once instead of after megabytes. The refusal's message travels
    /// back in X-Assetd-Error (JSON-escaped), for nginx's JSON error page.
    @Sendable func authorizeDirectUpload(_ request: Request) throws -> Response {
        do {
            let principal = try verifier.verify(authorization: request.headers["authorization"], now: now())
            // Only a well-formed workspace outside the token is refused here; a malformed one
            // passes, for the upload route itself to answer 400 naming it.
            if let text = request.query["workspaceId"], let workspaceID = Input.parseID(Substring(text)) {
                try principal.authorize(workspaceID)
            }
            return .json(["ok": true])
        } catch var error as HTTPError {
            let escaped = JSONValue.string(error.message).serialized().dropFirst().dropLast()
            error.headers.append(("X-Assetd-Error", String(decoding: escaped, as: UTF8.self)))
            throw error
        }
    }

    /// A spool file that could not be made, written or read back: logged, and a 500.
    func spoolFailed(_ error: any Error) -> HTTPError {
        logger.error("spool failed", metadata: ["error": "\(error)"])
        return HTTPError(.internalServerError, "The upload could not be spooled; the details are in the server log.")
    }
}

/// Collects the form: the one `file` part into the spool, the `workspaceId` and `assetId`
/// fields, and nothing else (other fields are read and dropped).
struct UploadForm: MultipartHandler {
    let spool: SpoolFile
    let limit: Int64
    private(set) var sawFile = false
    /// The file's first `App.contentCheckBytes`, for libmagic.
    private(set) var head: [UInt8] = []
    private(set) var fileName: String?
    private(set) var workspaceID: String?
    private(set) var assetID: String?
    private var current: Current = .ignored
    private var field: [UInt8] = []

    private enum Current { case file, workspace, asset, ignored }

    init(spool: SpoolFile, limit: Int64) {
        self.spool = spool
        self.limit = limit
        head.reserveCapacity(App.contentCheckBytes)
    }

    mutating func beginPart(_ headers: PartHeaders) throws {
        switch headers.name {
        case "file":
            guard !sawFile else { throw HTTPError(.badRequest, "Only one file may be uploaded at a time.") }
            sawFile = true
            fileName = try Input.fileName(headers.fileName)
            current = .file
        case "workspaceId":
            guard workspaceID == nil else { throw HTTPError(.badRequest, "workspaceId is given twice in the form.") }
            field = []
            current = .workspace
        case "assetId":
            guard assetID == nil else { throw HTTPError(.badRequest, "assetId is given twice in the form.") }
            field = []
            current = .asset
        default:
            if headers.fileName != nil {
                throw HTTPError(.badRequest, "Unexpected file field '\(headers.name ?? "")': send the file as the field 'file', and only one.")
            }
            current = .ignored
        }
    }

    mutating func partData(_ bytes: UnsafeRawBufferPointer) throws {
        switch current {
        case .file:
            guard Int64(spool.size + bytes.count) <= limit else {
                throw HTTPError(.payloadTooLarge, "The file is larger than \(limit) bytes; use the multipart upload routes.")
            }
            if head.count < App.contentCheckBytes {
                head.append(contentsOf: bytes.prefix(App.contentCheckBytes - head.count))
            }
            try spool.write(bytes)
        case .workspace, .asset:
            guard field.count + bytes.count <= 64 else {
                throw HTTPError(.badRequest, "\(current == .asset ? "assetId" : "workspaceId") must be a positive integer.")
            }
            field.append(contentsOf: bytes)
        case .ignored:
            break
        }
    }

    mutating func endPart() throws {
        if current == .workspace { workspaceID = String(decoding: field, as: UTF8.self) }
        if current == .asset { assetID = String(decoding: field, as: UTF8.self) }
        current = .ignored
    }
}

