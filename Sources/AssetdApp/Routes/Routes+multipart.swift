import AssetStore
import FastCGIServer
import JSON

/// The multipart upload routes: the browser PUTs parts straight to S3 with presigned URLs.
extension Routes {
    static let maxURLsAtOnce = 100

    @Sendable func startUpload(_ request: Request, _ principal: Principal) throws -> Response {
        let query = request.query
        let workspaceID = try workspace(query["workspaceId"], principal)
        guard let fileType = query["fileType"], !fileType.isEmpty else { throw HTTPError(.badRequest, "fileType is required.") }
        let fileSize = try query["fileSize"].map { text in
            guard let size = Input.parseID(Substring(text)) else { throw HTTPError(.badRequest, "fileSize must be a positive integer (bytes).") }
            return size
        }
        let fileName = try Input.fileName(query["fileName"])
        let assetID = try query["assetId"].map { try Input.id($0, field: "assetId") }
        let started = try service.startUpload(
            UploadRequest(workspaceID: workspaceID, fileType: fileType, fileName: fileName, fileSize: fileSize, assetID: assetID),
            logger: request.logger)
        var members: [JSONValue.Member] = [
            .init("uploadId", .string(started.uploadID)), .init("assetId", .string(String(started.assetID))), .init("key", .string(started.key)),
        ]
        if let version = started.version { members.append(.init("version", .int(version))) }
        if let partSize = started.partSize { members.append(.init("partSize", .int64(partSize))) }
        return .json(.object(members))
    }

    /// The upload a query names, checked: workspace, asset, upload, still pending. The
    /// upload id's field is the route's own (CONTRACT.md): S3's `UploadId` for the part URLs,
    /// `uploadId` for list-parts; the other spelling is taken too, and errors name `field`.
    /// The pending upload the query names (workspace, asset, upload id), authorized. Takes
    /// the query, not the request: `Request.query` copies the parsed query out each time
    /// (two arrays retained and released), so a route reads it once.
    private func pendingUpload(_ query: QueryParameters, _ principal: Principal, uploadIDField field: UploadIDField) throws -> UploadRecord {
        let workspaceID = try workspace(query.value("workspaceId"), principal)
        let assetID = try Input.id(query.value("assetId"), field: "assetId")
        let uploadID = switch field {
        case .upperCase: try Input.token(query.value("UploadId") ?? query.value("uploadId"), field: "UploadId")
        case .lowerCase: try Input.token(query.value("uploadId") ?? query.value("UploadId"), field: "uploadId")
        }
        return try service.pendingUpload(uploadID, asset: assetID, in: workspaceID)
    }

    /// Which spelling of the upload id a route names first (and in its errors): either is
    /// read. Names as literals, looked up without a String's bytes (`QueryParameters.value`).
    private enum UploadIDField {
        /// `UploadId`, then `uploadId`.
        case upperCase
        /// `uploadId`, then `UploadId`.
        case lowerCase
    }

    /// The `contentMD5` parameter, given at most once; nil when absent.
    private static func contentMD5Text(_ query: QueryParameters) throws -> String? {
        let given = query.values("contentMD5" as StaticString)
        guard given.count <= 1 else { throw HTTPError(.badRequest, "contentMD5 must be given once.") }
        return given.first
    }

    @Sendable func uploadPartURL(_ request: Request, _ principal: Principal) throws -> Response {
        let query = request.query
        let partText = query.value("PartNumber") ?? query.value("partNumber")
        guard partText != nil else { throw HTTPError(.badRequest, "PartNumber is required.") }
        let partNumber = try Input.integer(partText, field: "PartNumber", in: 1...AssetService.maxParts)!
        let md5 = try Self.contentMD5Text(query).map { try Input.contentMD5(Substring($0)) }
        let upload = try pendingUpload(query, principal, uploadIDField: .upperCase)
        // {"url":"...","expiresIn":N}, as `.json` writes it, the URL signed straight into
        // the body: no String of it, and no scan for JSON escapes when the store says its
        // bytes need none (`ObjectURLs.appendPresignedURL`).
        var body: [UInt8] = []
        body.reserveCapacity(640)
        body.append(#"{"url":""#)
        let urlStart = body.count
        if try service.appendPartURL(upload, part: (Int(partNumber), md5), to: &body) {
            body.append(UInt8(ascii: "\""))
        } else {
            JSONValue.closeString(in: &body, textFrom: urlStart)
        }
        body.append(#","expiresIn":"#)
        Response.appendDecimal(configuration.presignExpires, to: &body)
        body.append(UInt8(ascii: "}"))
        return .json(serialized: body)
    }

    @Sendable func uploadPartURLs(_ request: Request, _ principal: Principal) throws -> Response {
        let partNumbersText = request.query["partNumbers"]
        let numbers = try Input.partNumbers(partNumbersText, field: "partNumbers", max: Self.maxURLsAtOnce)
        var parts: [PartToSign] = numbers.map { ($0, nil) }
        if let list = try Self.contentMD5Text(request.query) {
            // One MD5 a part, in the order partNumbers names them.
            let written = Input.partNumbersAsWritten(partNumbersText ?? "")
            guard written.count == numbers.count else {
                throw HTTPError(.badRequest, "partNumbers must name each part once when contentMD5 is given.")
            }
            let md5s = list.split(separator: ",", omittingEmptySubsequences: false)
            guard md5s.count == written.count else {
                throw HTTPError(.badRequest,
                                "contentMD5 must hold one MD5 for each of the \(written.count) parts of partNumbers, comma-separated in the same order; it holds \(md5s.count).")
            }
            parts = try zip(written, md5s).enumerated().map { index, pair in
                (pair.0, try Input.contentMD5(pair.1, field: "contentMD5[\(index)] (part \(pair.0))"))
            }
            parts.sort { $0.partNumber < $1.partNumber }
        }
        let upload = try pendingUpload(request.query, principal, uploadIDField: .upperCase)
        let urls: [JSONValue] = try service.partURLs(upload, parts: parts).map { ["partNumber": .int($0.partNumber), "url": .string($0.url)] }
        return .json(["urls": .array(urls), "expiresIn": .int(configuration.presignExpires)])
    }

    @Sendable func listParts(_ request: Request, _ principal: Principal) throws -> Response {
        let parts = try service.listParts(of: pendingUpload(request.query, principal, uploadIDField: .lowerCase))
        let list: [JSONValue] = parts.map { ["PartNumber": .int($0.partNumber), "ETag": .string($0.etag), "Size": .int($0.size)] }
        return .json(["parts": .array(list)])
    }

    /// The parts of a complete-upload body: non-empty, each 1...10000, ascending, unique;
    /// ETags quoted or not.
    static func parts(_ value: JSONValue?) throws -> [CompletedPart] {
        guard let list = value?.arrayValue else { throw HTTPError(.badRequest, "parts must be an array of {ETag, PartNumber}.") }
        guard !list.isEmpty else { throw HTTPError(.badRequest, "parts must not be empty.") }
        guard list.count <= Int(AssetService.maxParts) else { throw HTTPError(.badRequest, "parts may hold at most 10000 parts.") }
        var parts: [CompletedPart] = []
        parts.reserveCapacity(list.count)
        for (index, item) in list.enumerated() {
            guard case .number(let text)? = item["PartNumber"], let number = Input.parseID(Substring(text)), number <= AssetService.maxParts else {
                throw HTTPError(.badRequest, "parts[\(index)].PartNumber must be an integer from 1 to 10000.")
            }
            guard let quoted = item["ETag"]?.stringValue else { throw HTTPError(.badRequest, "parts[\(index)].ETag is required.") }
            let etag = AssetService.unquoted(quoted)
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

    /// The workspace (checked against the token), asset and upload a JSON body names.
    private func uploadIdentity(_ body: JSONValue, _ principal: Principal) throws -> (workspaceID: Int64, assetID: Int64, uploadID: String) {
        let workspaceID = try Input.id(body["workspaceId"], field: "workspaceId")
        try principal.authorize(workspaceID)
        let assetID = try Input.id(body["assetId"], field: "assetId")
        return (workspaceID, assetID, try Input.token(body["uploadId"]?.stringValue, field: "uploadId"))
    }

    @Sendable func completeUpload(_ request: Request, _ principal: Principal) throws -> Response {
        let body = try jsonBody(request)
        let (workspaceID, assetID, uploadID) = try uploadIdentity(body, principal)
        let parts = try Self.parts(body["parts"])
        let done = try service.completeUpload(uploadID, asset: assetID, in: workspaceID, parts: parts, logger: request.logger)
        var members: [JSONValue.Member] = [
            .init("success", true), .init("location", .optional(done.location)), .init("key", .string(done.key)), .init("etag", .optional(done.etag)),
        ]
        if let version = done.version { members.append(.init("version", .int(version))) }
        return .json(.object(members))
    }

    @Sendable func abortUpload(_ request: Request, _ principal: Principal) throws -> Response {
        let (workspaceID, assetID, uploadID) = try uploadIdentity(try jsonBody(request), principal)
        try service.abortUpload(uploadID, asset: assetID, in: workspaceID, logger: request.logger)
        return .json(["success": true])
    }
}
