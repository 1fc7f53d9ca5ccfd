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

    @Sendable func listAssets(_ request: Request, _ principal: Principal) throws -> Response {
        let query = request.query
        let workspaceID = try workspace(query["workspaceId"], principal)
        let limit = try Input.integer(query["limit"], field: "limit", in: 1...200) ?? 50
        let cursor = try query["cursor"].map { try Input.id($0, field: "cursor") }
        let page = try service.assets(in: workspaceID, limit: Int(limit), before: cursor)
        let next: JSONValue = page.count == Int(limit) ? .string(String(page.last!.0.id)) : .null
        return .json(["assets": .array(page.map { json($0.0, versions: $0.1) }), "next": next])
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
            "media": Self.mediaJSON(asset.media),
            "thumbnail": ["status": .string(asset.thumbnailStatus.rawValue), "url": .optional(service.thumbnailURL(asset))],
            "versions": .array(versions),
            "createdAt": .string(asset.createdAt.formatted(.iso8601)),
        ]
    }

    /// The asset JSON's `media` object (CONTRACT.md): every field null when unknown; `gps`
    /// is {latitude, longitude} only when recorded (ASSETD_KEEP_GPS=on).
    static func mediaJSON(_ media: MediaMetadata?) -> JSONValue {
        let media = media ?? MediaMetadata()
        func int(_ value: Int?) -> JSONValue { value.map { .int($0) } ?? .null }
        func real(_ value: Double?) -> JSONValue { value.map { .number(String($0)) } ?? .null }
        var gps = JSONValue.null
        if let latitude = media.gpsLatitude, let longitude = media.gpsLongitude {
            gps = ["latitude": real(latitude), "longitude": real(longitude)]
        }
        return [
            "width": int(media.width), "height": int(media.height), "durationSeconds": real(media.durationSeconds),
            "pages": int(media.pages), "takenAt": .optional(media.takenAt), "cameraMake": .optional(media.cameraMake),
            "cameraModel": .optional(media.cameraModel), "gps": gps,
        ]
    }
}
