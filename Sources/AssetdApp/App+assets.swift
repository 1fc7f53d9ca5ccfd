import AssetStore
import FastCGIServer
import Foundation
import JSON
import S3Client

/// Downloads, deletion and asset records.
extension App {
    static let maxExpires: Int64 = 604_800

    @Sendable func downloadURL(_ request: Request, _ principal: Principal) throws -> Response {
        let query = request.query
        let workspaceID = try workspace(query["workspaceId"], principal)
        let assetID = try Input.id(query["assetId"], field: "assetId")
        let expires = try Input.integer(query["expiresIn"], field: "expiresIn", in: 1...Self.maxExpires) ?? 3600
        let version = try Input.integer(query["version"], field: "version", in: 1...Int64(Int32.max))
        let asset = try asset(assetID, in: workspaceID)
        guard asset.status == .ready else {
            throw HTTPError(.conflict, "Asset \(assetID) has no stored file yet (status \(asset.status.rawValue)).")
        }
        // Version 1 is the original; later versions come with the versions feature.
        if let version, version != 1 {
            throw HTTPError(.notFound, "Asset \(assetID) has no version \(version).")
        }
        return .json(["url": .string(presign("GET", key: asset.key, expires: Int(expires))), "expiresIn": .int64(expires)])
    }

    /// DELETE /s3/delete. The asset is marked `deleting` before the first S3 call (pending
    /// uploads aborted in the same transaction), then its uploads are aborted and its
    /// objects deleted in S3, then it is marked deleted. A delete that fails midway answers
    /// 502 and is finished by a repeated DELETE or by the reconciler; meanwhile the asset
    /// answers 404.
    @Sendable func deleteAsset(_ request: Request, _ principal: Principal) throws -> Response {
        let query = request.query
        let workspaceID = try workspace(query["workspaceId"], principal)
        let assetID = try Input.id(query["assetId"], field: "assetId")
        guard let asset = try database.asset(id: assetID, workspaceID: workspaceID) else {
            throw HTTPError(.notFound, "Asset \(assetID) was not found in workspace \(workspaceID).")
        }
        if asset.status == .deleted { return .json(["success": true]) }
        switch try database.beginDelete(id: asset.id, now: now()) {
        case nil, .alreadyDeleted?:
            return .json(["success": true])
        case .deleting(let record, let uploads)?:
            Faults.point("delete-begun")
            try finishDelete(record, uploads: uploads)
        }
        request.logger.info("asset deleted", metadata: ["asset": "\(asset.id)", "key": "\(asset.key)"])
        return .json(["success": true])
    }

    /// The S3 half of a delete that `beginDelete` recorded: abort the asset's uploads,
    /// delete its objects, then mark it deleted. Safe to run again after a failure.
    func finishDelete(_ asset: AssetRecord, uploads: [UploadRecord]) throws {
        for upload in uploads {
            do {
                try store.abortMultipartUpload(key: upload.key, uploadID: upload.uploadID)
            } catch let error as S3Error where error.isNoSuchUpload {}
        }
        try store.deleteObjects(keys: [asset.key, AssetKeys.thumbnail(workspaceID: asset.workspaceID, assetID: asset.id)])
        try database.finishDelete(id: asset.id, now: now())
    }

    @Sendable func getAsset(_ request: Request, _ principal: Principal) throws -> Response {
        let workspaceID = try workspace(request.query["workspaceId"], principal)
        let assetID = try Input.id(request.parameters["assetId"], field: "assetId")
        return .json(["asset": json(try asset(assetID, in: workspaceID))])
    }

    @Sendable func listAssets(_ request: Request, _ principal: Principal) throws -> Response {
        let query = request.query
        let workspaceID = try workspace(query["workspaceId"], principal)
        let limit = try Input.integer(query["limit"], field: "limit", in: 1...200) ?? 50
        let cursor = try query["cursor"].map { try Input.id($0, field: "cursor") }
        let assets = try database.assets(workspaceID: workspaceID, limit: Int(limit), before: cursor)
        let next: JSONValue = assets.count == Int(limit) ? .string(String(assets.last!.id)) : .null
        return .json(["assets": .array(assets.map(json)), "next": next])
    }

    /// The JSON form of an asset record (CONTRACT.md: GET /api/assets/{assetId}).
    func json(_ asset: AssetRecord) -> JSONValue {
        let thumbnailURL: JSONValue = asset.thumbnailStatus == .ready
            ? .string(presign("GET", key: AssetKeys.thumbnail(workspaceID: asset.workspaceID, assetID: asset.id), expires: configuration.presignExpires))
            : .null
        return [
            "id": .string(String(asset.id)),
            "workspaceId": .string(String(asset.workspaceID)),
            "key": .string(asset.key),
            "fileName": .optional(asset.fileName),
            "fileType": .string(asset.fileType),
            "size": asset.size.map { .int64($0) } ?? .null,
            "etag": .optional(asset.etag),
            "status": .string(asset.status.rawValue),
            "thumbnail": ["status": .string(asset.thumbnailStatus.rawValue), "url": thumbnailURL],
            "versions": [],
            "createdAt": .string(asset.createdAt.formatted(.iso8601)),
        ]
    }
}
