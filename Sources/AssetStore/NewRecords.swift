import Foundation

// The records a store returns for what it has just inserted, built in one place for both
// stores (SQLite and PostgreSQL): a field added to a record is then set once, not in every
// store's copy.

extension AssetRecord {
    /// A new asset `id` as inserted from `new`: no object checked yet (sha256), no
    /// thumbnail, created and updated at `now` (as stored: `SQLiteRecordStore.rounded`).
    static func inserted(id: Int64, key: String, from new: NewAsset, status: AssetStatus, now: Date) -> AssetRecord {
        let stored = SQLiteRecordStore.rounded(now)
        return AssetRecord(
            id: id, workspaceID: new.workspaceID, key: key, fileName: new.fileName, fileType: new.fileType,
            size: new.size, etag: new.etag, sha256: nil, status: status, thumbnailStatus: .none,
            createdAt: stored, updatedAt: stored)
    }
}

extension UploadRecord {
    /// A new pending multipart upload of `asset` into `key` (the asset's own, or a new
    /// version's staging key with its `version`, `fileType` and `fileName`), created at
    /// `now` as stored.
    static func inserted(
        uploadID: String, asset: AssetRecord, key: String, fileSize: Int64?, partSize: Int64?, now: Date,
        version: Int? = nil, fileType: String? = nil, fileName: String? = nil
    ) -> UploadRecord {
        UploadRecord(
            uploadID: uploadID, assetID: asset.id, workspaceID: asset.workspaceID, key: key, fileSize: fileSize,
            partSize: partSize, status: .pending, partsDigest: nil, location: nil, etag: nil,
            createdAt: SQLiteRecordStore.rounded(now), version: version, fileType: fileType, fileName: fileName)
    }
}
