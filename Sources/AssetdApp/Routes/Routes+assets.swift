import MediaInfo
import AssetStore
import FastCGIServer
import Foundation
import JSON

/// Downloads, deletion and asset records.
extension Routes {
    @Sendable func downloadURL(_ request: Request, _ principal: Principal) throws -> Response {
        let query = request.query
        let workspaceID = try workspace(query["workspaceId"], principal)
        let assetID = try Input.id(query["assetId"], field: "assetId")
        let expires = try Input.integer(query["expiresIn"], field: "expiresIn", in: 1...AssetService.maxExpires) ?? 3600
        let version = try Input.integer(query["version"], field: "version", in: 1...Int64(Int32.max)).map(Int.init)
        let disposition = try query["disposition"].map { text in
            guard let disposition = AssetService.Disposition(rawValue: text) else {
                throw HTTPError(.badRequest, "disposition must be attachment or inline.")
            }
            return disposition
        }
        let url = try service.downloadURL(of: assetID, in: workspaceID, version: version, disposition: disposition, expires: Int(expires))
        return .json(["url": .string(url), "expiresIn": .int64(expires)])
    }

    @Sendable func deleteAsset(_ request: Request, _ principal: Principal) throws -> Response {
        let query = request.query
        let workspaceID = try workspace(query["workspaceId"], principal)
        let assetID = try Input.id(query["assetId"], field: "assetId")
        try service.deleteAsset(assetID, in: workspaceID, logger: request.logger)
        return .json(["success": true])
    }

    @Sendable func getAsset(_ request: Request, _ principal: Principal) throws -> Response {
        let workspaceID = try workspace(request.query["workspaceId"], principal)
        let assetID = try Input.id(request.parameters["assetId"], field: "assetId")
        let asset = try service.asset(assetID, in: workspaceID)
        return .json(["asset": json(asset, versions: try service.versions(of: asset))])
    }

    /// GET /api/assets: filters, sorts, search and keyset pages (docs/API.md, "Search").
    @Sendable func listAssets(_ request: Request, _ principal: Principal) throws -> Response {
        let parameters = request.query
        let workspaceID = try workspace(parameters["workspaceId"], principal)
        var query = try listQuery(parameters, workspaceID: workspaceID)
        if let cursor = parameters["cursor"] { query.after = try cursors.decode(cursor, for: query) }
        let page = try service.assets(query)
        let next: JSONValue = page.count == query.limit ? .string(cursors.encode(page.last!.position, for: query)) : .null
        return .json(["assets": .array(page.map { json($0.asset, versions: $0.versions) }), "next": next])
    }

    /// The query of GET /api/assets, every parameter checked (a 400 names the one refused).
    func listQuery(_ parameters: QueryParameters, workspaceID: Int64) throws -> AssetQuery {
        let limit = try Input.integer(parameters["limit"], field: "limit", in: 1...200) ?? 50
        var text: SearchText?
        if let q = parameters["q"] {
            let limits = AssetService.SearchLimits.self
            guard q.utf8.count <= limits.queryBytes else {
                throw HTTPError(.badRequest, "q is \(q.utf8.count) bytes long; at most \(limits.queryBytes) bytes of UTF-8 are allowed.")
            }
            guard !q.unicodeScalars.contains(where: AssetService.isControl) else {
                throw HTTPError(.badRequest, "q must not contain control characters.")
            }
            text = SearchText(q)
            if let words = text?.words.count, words > limits.queryWords {
                throw HTTPError(.badRequest, "q has \(words) words; at most \(limits.queryWords) are allowed.")
            }
        }
        let kind = try parameters["type"].map { value in
            guard let kind = AssetKind(rawValue: value) else { throw HTTPError(.badRequest, "type must be image, video or pdf.") }
            return kind
        }
        let listable: [AssetStatus] = [.pending, .ready, .rejected, .aborted, .expired]
        let status = try parameters["status"].map { value in
            guard let status = AssetStatus(rawValue: value), listable.contains(status) else {
                throw HTTPError(.badRequest, "status must be one of pending, ready, rejected, aborted, expired.")
            }
            return status
        }
        let sort: AssetSort = try parameters["sort"].map { value in
            guard let sort = AssetSort(rawValue: value), sort != .relevance else {
                throw HTTPError(.badRequest, "sort must be created, name or size.")
            }
            return sort
        } ?? (text == nil ? .created : .relevance)
        let order: ListOrder = try parameters["order"].map { value in
            guard let order = ListOrder(rawValue: value) else { throw HTTPError(.badRequest, "order must be asc or desc.") }
            guard sort != .relevance || order == .descending else {
                throw HTTPError(.badRequest, "order=asc needs a sort (created, name or size): a search without one lists the best matches first.")
            }
            return order
        } ?? (sort == .name ? .ascending : .descending)
        return AssetQuery(workspaceID: workspaceID, text: text, kind: kind, status: status, sort: sort, order: order, limit: Int(limit))
    }

    /// PATCH /api/assets/{assetId}: {title?, tags?}; nothing else in the body.
    @Sendable func describeAsset(_ request: Request, _ principal: Principal) throws -> Response {
        let workspaceID = try workspace(request.query["workspaceId"], principal)
        let assetID = try Input.id(request.parameters["assetId"], field: "assetId")
        guard case .object(let members) = try jsonBody(request) else { throw HTTPError(.badRequest, "The request body must be a JSON object.") }
        var title = FieldEdit<String?>.keep
        var tags = FieldEdit<[String]>.keep
        for member in members {
            switch (member.key, member.value) {
            case ("title", .null): title = .set(nil)
            case ("title", .string(let value)): title = .set(value)
            case ("title", _): throw HTTPError(.badRequest, "title must be a string or null.")
            case ("tags", .null): tags = .set([])
            case ("tags", .array(let values)):
                tags = .set(try values.enumerated().map { index, value in
                    guard case .string(let tag) = value else { throw HTTPError(.badRequest, "tags[\(index)] must be a string.") }
                    return tag
                })
            case ("tags", _): throw HTTPError(.badRequest, "tags must be an array of strings or null.")
            default:
                throw HTTPError(.badRequest, "\(Self.printable(member.key)) is not a field that can be changed; send title and/or tags.")
            }
        }
        guard title != .keep || tags != .keep else { throw HTTPError(.badRequest, "The body must set title or tags.") }
        let asset = try service.describeAsset(assetID, in: workspaceID, title: title, tags: tags)
        return .json(["asset": json(asset, versions: try service.versions(of: asset))])
    }

    /// A client's key, safe to quote in an error: at most 40 characters, no control ones.
    static func printable(_ key: String) -> String {
        let cleaned = String(String.UnicodeScalarView(key.unicodeScalars.filter { !AssetService.isControl($0) }.prefix(40)))
        return "\"" + cleaned + "\""
    }

    /// The JSON form of an asset record (docs/API.md: GET /api/assets/{assetId}), with its
    /// archived `versions` and the current one.
    func json(_ asset: AssetRecord, versions archived: [AssetVersionRecord] = []) -> JSONValue {
        func version(_ number: Int, _ type: String, _ size: Int64?, _ etag: String?, _ created: Date) -> JSONValue {
            ["version": .int(number), "fileType": .string(type), "size": size.map { .int64($0) } ?? .null,
             "etag": .optional(etag), "createdAt": .string(created.formatted(.iso8601))]
        }
        var versions = archived.map { version($0.version, $0.fileType, $0.size, $0.etag, $0.createdAt) }
        if asset.status == .ready {
            versions.append(version(asset.currentVersion, asset.fileType, asset.size, asset.etag, asset.versionCreatedAt ?? asset.createdAt))
        }
        return [
            "id": .string(String(asset.id)),
            "workspaceId": .string(String(asset.workspaceID)),
            "key": .string(asset.key),
            "fileName": .optional(asset.fileName),
            "fileType": .string(asset.fileType),
            "size": asset.size.map { .int64($0) } ?? .null,
            "etag": .optional(asset.etag),
            "status": .string(asset.status.rawValue),
            "title": .optional(asset.title),
            "tags": .array(asset.tags.map { .string($0) }),
            "media": mediaJSON(asset.media),
            "thumbnail": ["status": .string(asset.thumbnailStatus.rawValue), "url": .optional(service.thumbnailURL(asset))],
            "versions": .array(versions),
            "createdAt": .string(asset.createdAt.formatted(.iso8601)),
        ]
    }

    /// The asset JSON's `media` object (CONTRACT.md): every field null when unknown, and
    /// `gps` null unless ASSETD_KEEP_GPS=on, also for coordinates recorded while it was.
    func mediaJSON(_ media: MediaMetadata?) -> JSONValue {
        let media = media ?? MediaMetadata()
        return (configuration.keepGPS ? media : media.withoutGPS).json
    }
}
