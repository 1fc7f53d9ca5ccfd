import AssetStore
import Foundation
public import Logging
import S3Client

/// Deleting an asset: every object it ever had, then its record.
extension AssetService {
    /// Deletes an asset of the workspace. The asset is marked `deleting` before the first
    /// S3 call (pending uploads aborted in the same transaction), then its uploads are
    /// aborted and its objects deleted in S3, then it is marked deleted. A delete that fails
    /// midway throws and is finished by a repeated delete or by the repairs; meanwhile the
    /// asset is not found. Deleting a deleted asset succeeds.
    public func deleteAsset(_ assetID: Int64, in workspaceID: Int64, logger: Logger) throws {
        guard let asset = try records.asset(id: assetID, workspaceID: workspaceID) else {
            throw AssetError.notFound("Asset \(assetID) was not found in workspace \(workspaceID).")
        }
        if asset.status == .deleted { return }
        // Not while a new version's objects are being moved (nor a second delete).
        let deleted = try exclusively(asset.id) { () throws -> Bool in
            switch try records.beginDelete(id: asset.id, now: now()) {
            case nil, .alreadyDeleted?:
                return false
            case .deleting(let record, let uploads, let keys)?:
                Faults.point("delete-begun")
                try removeEverything(of: record, uploads: uploads, keys: keys)
                return true
            }
        }
        if deleted { logger.info("asset deleted", metadata: ["asset": "\(asset.id)", "key": "\(asset.key)"]) }
    }

    /// The S3 half of a delete that `beginDelete` recorded: abort the asset's uploads,
    /// delete every key it recorded and whatever else is under its versions prefix, then
    /// mark it deleted. Safe to run again after a failure: nothing is marked deleted while
    /// an object may remain.
    func removeEverything(of asset: AssetRecord, uploads: [UploadRecord], keys: [String]) throws {
        for upload in uploads {
            do {
                try objects.abortMultipartUpload(key: upload.key, uploadID: upload.uploadID)
            } catch let error as S3Error where error.uploadIsGone {}
        }
        let recorded = Set(keys)
        let unrecorded = try objects.listKeys(prefix: AssetKeys.versionsPrefix(workspaceID: asset.workspaceID, assetID: asset.id),
                                              limit: 100_000)
            .filter { !recorded.contains($0) }
        try objects.deleteObjects(keys: keys + unrecorded)
        try records.markDeleted(id: asset.id, now: now())
    }
}
