import struct Foundation.Date
import GRDB

/// Rows to records: every column of a table, read one way for all queries.
extension SQLiteRecordStore {
    static func rounded(_ date: Date) -> Date {
        Date(timeIntervalSince1970: date.timeIntervalSince1970)
    }

    static func asset(from row: Row) -> AssetRecord {
        AssetRecord(
            id: row["id"], workspaceID: row["workspace_id"], key: row["key"], fileName: row["file_name"],
            fileType: row["file_type"], size: row["size"], etag: row["etag"], sha256: row["sha256"],
            status: AssetStatus(rawValue: row["status"]) ?? .pending,
            thumbnailStatus: ThumbnailStatus(rawValue: row["thumbnail_status"]) ?? .none,
            createdAt: Date(timeIntervalSince1970: row["created_at"]),
            updatedAt: Date(timeIntervalSince1970: row["updated_at"]),
            currentVersion: row["current_version"] ?? 1,
            versionCreatedAt: (row["version_created_at"] as Double?).map(Date.init(timeIntervalSince1970:)))
    }

    static func upload(from row: Row) -> UploadRecord {
        UploadRecord(
            uploadID: row["upload_id"], assetID: row["asset_id"], workspaceID: row["workspace_id"], key: row["key"],
            fileSize: row["file_size"], partSize: row["part_size"],
            status: UploadStatus(rawValue: row["status"]) ?? .pending, partsDigest: row["parts_digest"],
            location: row["location"], etag: row["etag"], createdAt: Date(timeIntervalSince1970: row["created_at"]),
            version: row["version"], fileType: row["file_type"], fileName: row["file_name"])
    }

    static func versionSwitch(from row: Row) -> VersionSwitch {
        VersionSwitch(
            assetID: row["asset_id"], workspaceID: row["workspace_id"], version: row["version"], stagingKey: row["staging_key"],
            newKey: row["new_key"], fileType: row["file_type"], fileName: row["file_name"], size: row["size"], etag: row["etag"],
            state: VersionSwitch.State(rawValue: row["state"]) ?? .stored, createdAt: Date(timeIntervalSince1970: row["created_at"]))
    }

    static func version(from row: Row) -> AssetVersionRecord {
        AssetVersionRecord(
            assetID: row["asset_id"], version: row["version"], key: row["key"], fileType: row["file_type"], fileName: row["file_name"],
            size: row["size"], etag: row["etag"], createdAt: Date(timeIntervalSince1970: row["created_at"]))
    }
}
