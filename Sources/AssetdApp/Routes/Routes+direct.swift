import AssetStore
import FastCGIServer
import FormData
import Foundation
import JSON

/// POST /api/assets/upload: a small file in multipart/form-data, streamed to a spool file
/// with its digests, then handed to the service.
extension Routes {
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
        let started = ContinuousClock.now
        let (form, upload) = try receive(request, boundary: boundary, limit: limit)

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
        let assetID = try assetText.map { try Input.id($0, field: "assetId") }
        // On the "asset ready" line: receiving, hashing and parsing the form.
        request.logger[metadataKey: "receive_ms"] = "\((ContinuousClock.now - started).milliseconds)"
        let record = try service.storeDirectUpload(upload, in: workspaceID, asVersionOf: assetID, logger: request.logger)
        // A new asset has no earlier versions: no query for them.
        let versions = assetID == nil ? [] : try service.versions(of: record)
        return .json(["asset": json(record, versions: versions)])
    }

    /// Reads the form into a spool file, with its digests.
    private func receive(_ request: Request, boundary: String, limit: Int64) throws -> (UploadForm, DirectUpload) {
        do {
            let spool = try SpoolFile(directory: configuration.tmpDirectory, expectedSize: request.contentLength)
            var form = UploadForm(spool: spool, limit: limit)
            var parser = try MultipartParser(boundary: boundary)
            var chunk = [UInt8](repeating: 0, count: Self.readChunk)
            while true {
                let n = try chunk.withUnsafeMutableBytes { try request.body.read(into: $0) }
                if n == 0 { break }
                try chunk.withUnsafeBytes { try parser.feed(UnsafeRawBufferPointer(rebasing: $0[0..<n]), to: &form) }
            }
            try parser.finish()
            let digests = form.sawFile && spool.size > 0 ? try spool.digests() : (sha256Hex: "", md5: [])
            return (form, DirectUpload(spool: spool, head: form.head, fileName: form.fileName, sha256Hex: digests.sha256Hex, md5: digests.md5))
        } catch let error as MultipartError {
            throw HTTPError(.badRequest, error.description)
        } catch let error as SpoolError {
            logger.error("spool failed", metadata: ["error": "\(error)"])
            throw HTTPError(.internalServerError, "The upload could not be spooled; the details are in the server log.")
        }
    }

    /// GET /api/assets/upload/authorize: nginx's auth_request before it reads a direct
    /// upload's body, so that a request without a valid token, or for a workspace outside
    /// it, is refused at once instead of after megabytes. The refusal's message travels
    /// back in X-Assetd-Error (JSON-escaped), for nginx's JSON error page.
    @Sendable func authorizeDirectUpload(_ request: Request) throws -> Response {
        do {
            let principal = try request.headers.withValue("authorization") { try verifier.verify(authorizationBytes: $0, now: service.now()) }
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
}

/// Collects the form: the one `file` part into the spool, the `workspaceId` and `assetId`
/// fields, and nothing else (other fields are read and dropped).
struct UploadForm: MultipartHandler {
    let spool: SpoolFile
    let limit: Int64
    private(set) var sawFile = false
    /// The file's first `AssetService.contentCheckBytes`, for libmagic.
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
        head.reserveCapacity(AssetService.contentCheckBytes)
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
            if head.count < AssetService.contentCheckBytes {
                head.append(contentsOf: bytes.prefix(AssetService.contentCheckBytes - head.count))
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
