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
        let version = try Input.integer(query["version"], field: "version", in: 1...Int64(Int32.max)).map(Int.init)
        let disposition = query["disposition"]
        guard disposition == nil || disposition == "attachment" || disposition == "inline" else {
            throw HTTPError(.badRequest, "disposition must be attachment or inline.")
        }
        let asset = try asset(assetID, in: workspaceID)
        guard asset.status == .ready else {
            throw HTTPError(.conflict, "Asset \(assetID) has no stored file yet (status \(asset.status.rawValue)).")
        }
        var key = asset.key
        var recordedName = asset.fileName
        if let version, version != asset.currentVersion {
            guard let archived = try database.versions(assetID: asset.id).first(where: { $0.version == version }) else {
                throw HTTPError(.notFound, "Asset \(assetID) has no version \(version).")
            }
            key = archived.key
            recordedName = archived.fileName ?? asset.fileName
        }
        var presignQuery: [(String, String)] = []
        if let disposition {
            var named = asset
            named.fileName = recordedName
            let name = Self.downloadName(named, version: version, fileExtension: AssetKeys.fileExtension(of: key))
            presignQuery.append(("response-content-disposition", Self.contentDisposition(disposition, fileName: name)))
        }
        return .json(["url": .string(presign("GET", key: key, query: presignQuery, expires: Int(expires))), "expiresIn": .int64(expires)])
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
        // Not while a new version's objects are being moved (nor a second delete).
        let started = try exclusively(asset.id) { () throws -> Bool in
            switch try database.beginDelete(id: asset.id, now: now()) {
            case nil, .alreadyDeleted?:
                return false
            case .deleting(let record, let uploads, let keys)?:
                Faults.point("delete-begun")
                try finishDelete(record, uploads: uploads, keys: keys)
                return true
            }
        }
        guard started else { return .json(["success": true]) }
        request.logger.info("asset deleted", metadata: ["asset": "\(asset.id)", "key": "\(asset.key)"])
        return .json(["success": true])
    }

    /// The S3 half of a delete that `beginDelete` recorded: abort the asset's uploads,
    /// delete every key it recorded and whatever else is under its versions prefix
    /// (DeleteObjects, 1,000 keys a call), then mark it deleted. Safe to run again after a
    /// failure: nothing is marked deleted while an object may remain.
    func finishDelete(_ asset: AssetRecord, uploads: [UploadRecord], keys: [String]) throws {
        for upload in uploads {
            do {
                try store.abortMultipartUpload(key: upload.key, uploadID: upload.uploadID)
            } catch let error as S3Error where error.isNoSuchUpload {}
        }
        var all = keys
        let recorded = Set(keys)
        all += try store.listKeys(prefix: AssetKeys.versionsPrefix(workspaceID: asset.workspaceID, assetID: asset.id), limit: 100_000)
            .filter { !recorded.contains($0) }
        var start = 0
        while start < all.count {
            try store.deleteObjects(keys: Array(all[start..<min(start + 1000, all.count)]))
            start += 1000
        }
        try database.markDeleted(id: asset.id, now: now())
    }

    @Sendable func getAsset(_ request: Request, _ principal: Principal) throws -> Response {
        let workspaceID = try workspace(request.query["workspaceId"], principal)
        let assetID = try Input.id(request.parameters["assetId"], field: "assetId")
        let asset = try asset(assetID, in: workspaceID)
        return .json(["asset": json(asset, versions: try database.versions(assetID: asset.id))])
    }

    @Sendable func listAssets(_ request: Request, _ principal: Principal) throws -> Response {
        let query = request.query
        let workspaceID = try workspace(query["workspaceId"], principal)
        let limit = try Input.integer(query["limit"], field: "limit", in: 1...200) ?? 50
        let cursor = try query["cursor"].map { try Input.id($0, field: "cursor") }
        let assets = try database.assets(workspaceID: workspaceID, limit: Int(limit), before: cursor)
        let next: JSONValue = assets.count == Int(limit) ? .string(String(assets.last!.id)) : .null
        let versions = try database.versions(assetIDs: assets.map(\.id))
        return .json(["assets": .array(assets.map { json($0, versions: versions[$0.id] ?? []) }), "next": next])
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
            "versions": .array(versions),
            "createdAt": .string(asset.createdAt.formatted(.iso8601)),
        ]
    }
}
