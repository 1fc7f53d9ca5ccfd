import MediaInfo
import struct Foundation.Date

/// Rows to records, as `SQLiteRecordStore`'s Rows.swift: every column of a table read one
/// way, and a value no case knows throws `RecordStoreError.corruptRecord`.
extension PostgresRecordStore {
    /// The same columns, in the same order, as `SQLiteRecordStore.assetColumns`.
    static let assetColumns = SQLiteRecordStore.assetColumns

    static let uploadColumns = """
        upload_id, asset_id, workspace_id, key, file_size, part_size, status, parts_digest, location, etag, created_at, \
        version, file_type, file_name
        """

    static let versionSwitchColumns = """
        asset_id, workspace_id, version, staging_key, new_key, file_type, file_name, size, etag, state, created_at
        """

    static let versionColumns = "asset_id, version, key, file_type, file_name, size, etag, created_at"

    /// The clock all hosts share, in the unit times are stored in.
    static let databaseNow = "extract(epoch FROM clock_timestamp())::double precision"

    static func rounded(_ date: Date) -> Date { SQLiteRecordStore.rounded(date) }

    static func asset(from row: PGRow) throws -> AssetRecord {
        try AssetRecord(
            id: row.int64(0) ?? 0, workspaceID: row.int64(1) ?? 0, key: row.string(2) ?? "", fileName: row.string(3),
            fileType: row.string(4) ?? "", size: row.int64(5), etag: row.string(6), sha256: row.string(7),
            status: decodeStored(row.string(8), table: "asset", column: "status"),
            thumbnailStatus: decodeStored(row.string(9), table: "asset", column: "thumbnail_status"),
            createdAt: Date(timeIntervalSince1970: row.double(10) ?? 0),
            updatedAt: Date(timeIntervalSince1970: row.double(11) ?? 0),
            currentVersion: row.int(12) ?? 1,
            versionCreatedAt: row.double(13).map(Date.init(timeIntervalSince1970:)),
            title: row.string(14), tags: SQLiteRecordStore.storedTags(row.string(15)),
            media: media(from: row, etag: row.string(6)))
    }

    /// The media columns (16 on) of a row of `assetColumns`, when recorded for `etag`.
    static func media(from row: PGRow, etag: String?) -> MediaMetadata? {
        guard let recorded = row.string(16), recorded == etag else { return nil }
        return MediaMetadata(width: row.int(17), height: row.int(18), durationSeconds: row.double(19), pages: row.int(20),
                             takenAt: row.string(21), cameraMake: row.string(22), cameraModel: row.string(23),
                             gpsLatitude: row.double(24), gpsLongitude: row.double(25))
    }

    /// The number of columns in `assetColumns`: a column selected after them is at this index.
    static let assetColumnCount = SQLiteRecordStore.assetColumnCount

    static func upload(from row: PGRow) throws -> UploadRecord {
        try UploadRecord(
            uploadID: row.string(0) ?? "", assetID: row.int64(1) ?? 0, workspaceID: row.int64(2) ?? 0, key: row.string(3) ?? "",
            fileSize: row.int64(4), partSize: row.int64(5),
            status: decodeStored(row.string(6), table: "upload", column: "status"), partsDigest: row.string(7),
            location: row.string(8), etag: row.string(9), createdAt: Date(timeIntervalSince1970: row.double(10) ?? 0),
            version: row.int(11), fileType: row.string(12), fileName: row.string(13))
    }

    static func versionSwitch(from row: PGRow) throws -> VersionSwitch {
        try VersionSwitch(
            assetID: row.int64(0) ?? 0, workspaceID: row.int64(1) ?? 0, version: row.int(2) ?? 0, stagingKey: row.string(3) ?? "",
            newKey: row.string(4) ?? "", fileType: row.string(5) ?? "", fileName: row.string(6), size: row.int64(7) ?? 0,
            etag: row.string(8) ?? "", state: decodeStored(row.string(9), table: "version_switch", column: "state"),
            createdAt: Date(timeIntervalSince1970: row.double(10) ?? 0))
    }

    static func version(from row: PGRow) -> AssetVersionRecord {
        AssetVersionRecord(
            assetID: row.int64(0) ?? 0, version: row.int(1) ?? 0, key: row.string(2) ?? "", fileType: row.string(3) ?? "",
            fileName: row.string(4), size: row.int64(5), etag: row.string(6), createdAt: Date(timeIntervalSince1970: row.double(7) ?? 0))
    }
}
