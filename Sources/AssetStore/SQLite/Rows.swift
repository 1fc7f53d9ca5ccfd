import MediaInfo
import struct Foundation.Date
import GRDB

/// The case of `Value` that a stored value names. Fail-closed: a value no case has (a
/// status a newer assetd wrote, a hand edit, a damaged page) throws
/// `RecordStoreError.corruptRecord` naming where it is, and is never read as a default.
func decodeStored<Value: RawRepresentable>(_ raw: String?, table: String, column: String) throws -> Value where Value.RawValue == String {
    guard let raw, let value = Value(rawValue: raw) else {
        throw RecordStoreError.corruptRecord(table: table, column: column, value: raw ?? "NULL")
    }
    return value
}

/// Rows to records: every column of a table, read one way for all queries. They throw
/// `RecordStoreError.corruptRecord` on a value they do not know.
extension SQLiteRecordStore {
    /// `decodeStored` for a column of a GRDB row, whatever the value's storage class.
    static func storedCase<Value: RawRepresentable>(_ row: Row, _ column: String, table: String) throws -> Value where Value.RawValue == String {
        try storedCase(row[column] as DatabaseValue, column, table: table)
    }

    /// `decodeStored` for the column at `index` (named `column` in the error).
    static func storedCase<Value: RawRepresentable>(_ row: Row, at index: Int, _ column: String, table: String) throws -> Value
    where Value.RawValue == String {
        try storedCase(row[index] as DatabaseValue, column, table: table)
    }

    private static func storedCase<Value: RawRepresentable>(_ value: DatabaseValue, _ column: String, table: String) throws -> Value
    where Value.RawValue == String {
        let raw = value.isNull ? nil : (String.fromDatabaseValue(value) ?? value.description)
        return try decodeStored(raw, table: table, column: column)
    }

    /// The asset columns every query of assets selects, in the order `asset(from:)` reads
    /// them: by index, since GRDB's lookup by name lowercases each name on each row (a
    /// sixth of a listing's instructions under callgrind).
    static let assetColumns = """
        asset.id, asset.workspace_id, asset.key, asset.file_name, asset.file_type, asset.size, asset.etag, asset.sha256, \
        asset.status, asset.thumbnail_status, asset.created_at, asset.updated_at, asset.current_version, asset.version_created_at, \
        asset.title, asset.tags, \
        asset.media_etag, asset.media_width, asset.media_height, asset.media_duration_s, asset.media_pages, asset.media_taken_at, \
        asset.media_camera_make, asset.media_camera_model, asset.media_gps_latitude, asset.media_gps_longitude
        """

    static func rounded(_ date: Date) -> Date {
        Date(timeIntervalSince1970: date.timeIntervalSince1970)
    }

    /// A nullable column, read without GRDB's generic path for an Optional (which looks
    /// Optional's metadata up at run time: about 1,000 instructions a column a row, a fifth
    /// of a listing once the media columns came): a NULL check, then the specialized read.
    @inline(__always)
    static func nullable<Value: DatabaseValueConvertible & StatementColumnConvertible>(_ row: Row, _ index: Int) -> Value? {
        row.hasNull(atIndex: index) ? nil : (row[index] as Value)
    }

    /// An asset from a row of `assetColumns`.
    static func asset(from row: Row) throws -> AssetRecord {
        try AssetRecord(
            id: row[0], workspaceID: row[1], key: row[2], fileName: nullable(row, 3), fileType: row[4], size: nullable(row, 5),
            etag: nullable(row, 6), sha256: nullable(row, 7),
            status: storedCase(row, at: 8, "status", table: "asset"),
            thumbnailStatus: storedCase(row, at: 9, "thumbnail_status", table: "asset"),
            createdAt: Date(timeIntervalSince1970: row[10]),
            updatedAt: Date(timeIntervalSince1970: row[11]),
            currentVersion: nullable(row, 12) ?? 1,
            versionCreatedAt: (nullable(row, 13) as Double?).map(Date.init(timeIntervalSince1970:)),
            title: nullable(row, 14), tags: storedTags(nullable(row, 15)),
            media: media(from: row, etag: nullable(row, 6)))
    }

    /// The media columns (16 on) of a row of `assetColumns`, when recorded for `etag`.
    static func media(from row: Row, etag: String?) -> MediaMetadata? {
        guard let recorded: String = nullable(row, 16), recorded == etag else { return nil }
        return MediaMetadata(width: nullable(row, 17), height: nullable(row, 18), durationSeconds: nullable(row, 19), pages: nullable(row, 20),
                             takenAt: nullable(row, 21), cameraMake: nullable(row, 22), cameraModel: nullable(row, 23),
                             gpsLatitude: nullable(row, 24), gpsLongitude: nullable(row, 25))
    }

    /// Tags are stored as one text, joined by line feeds (a tag holds no control
    /// character): the word and trigram tables index that column as it is.
    static func storedTags(_ text: String?) -> [String] {
        guard let text, !text.isEmpty else { return [] }
        return text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    }

    static func storedText(of tags: [String]) -> String { tags.joined(separator: "\n") }

    static func upload(from row: Row) throws -> UploadRecord {
        try UploadRecord(
            uploadID: row["upload_id"], assetID: row["asset_id"], workspaceID: row["workspace_id"], key: row["key"],
            fileSize: row["file_size"], partSize: row["part_size"],
            status: storedCase(row, "status", table: "upload"), partsDigest: row["parts_digest"],
            location: row["location"], etag: row["etag"], createdAt: Date(timeIntervalSince1970: row["created_at"]),
            version: row["version"], fileType: row["file_type"], fileName: row["file_name"])
    }

    static func versionSwitch(from row: Row) throws -> VersionSwitch {
        try VersionSwitch(
            assetID: row["asset_id"], workspaceID: row["workspace_id"], version: row["version"], stagingKey: row["staging_key"],
            newKey: row["new_key"], fileType: row["file_type"], fileName: row["file_name"], size: row["size"], etag: row["etag"],
            state: storedCase(row, "state", table: "version_switch"), createdAt: Date(timeIntervalSince1970: row["created_at"]))
    }

    static func version(from row: Row) -> AssetVersionRecord {
        AssetVersionRecord(
            assetID: row["asset_id"], version: row["version"], key: row["key"], fileType: row["file_type"], fileName: row["file_name"],
            size: row["size"], etag: row["etag"], createdAt: Date(timeIntervalSince1970: row["created_at"]))
    }
}
