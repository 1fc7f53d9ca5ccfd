public import struct Foundation.Date
import GRDB

// Multipart uploads: their records, the hot lookup (UploadCache, ThreadReaders), and the
// compare-and-sets that end them.
extension SQLiteRecordStore {
    public func createUpload(uploadID: String, asset: AssetRecord, fileSize: Int64?, partSize: Int64?, now: Date) throws -> UploadRecord {
        try run {
            try pool.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO upload (upload_id, asset_id, workspace_id, key, file_size, part_size, status, created_at, updated_at)
                        VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)
                        """,
                    arguments: [uploadID, asset.id, asset.workspaceID, asset.key, fileSize, partSize,
                                now.timeIntervalSince1970, now.timeIntervalSince1970])
            }
            return UploadRecord.inserted(uploadID: uploadID, asset: asset, key: asset.key, fileSize: fileSize, partSize: partSize, now: now)
        }
    }

    /// Records the multipart upload of version `version` of a ready asset, whose parts go to
    /// `stagingKey`. Throws `VersionConflict` (and records nothing) when the asset is not
    /// ready or is busy with another upload.
    public func createVersionUpload(
        uploadID: String, asset: AssetRecord, version: Int, stagingKey: String, fileType: String, fileName: String?,
        fileSize: Int64?, partSize: Int64?, now: Date
    ) throws -> UploadRecord {
        try run {
            try pool.write { db in
                try Self.checkVersionable(db, assetID: asset.id, version: version)
                try db.execute(
                    sql: """
                        INSERT INTO upload (upload_id, asset_id, workspace_id, key, file_size, part_size, status, created_at, updated_at,
                                            version, file_type, file_name)
                        VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)
                        """,
                    arguments: [uploadID, asset.id, asset.workspaceID, stagingKey, fileSize, partSize,
                                now.timeIntervalSince1970, now.timeIntervalSince1970, version, fileType, fileName])
                return UploadRecord.inserted(uploadID: uploadID, asset: asset, key: stagingKey, fileSize: fileSize, partSize: partSize,
                                             now: now, version: version, fileType: fileType, fileName: fileName)
            }
        }
    }

    /// The upload `uploadID` if it belongs to asset `assetID` in `workspaceID`; nil otherwise.
    /// On the hot path (every presign): pending uploads come from memory (UploadCache); the
    /// others from the calling thread's own read-only connection and prepared statement
    /// (ThreadReaders), outside GRDB's pool.
    public func upload(uploadID: String, assetID: Int64, workspaceID: Int64) throws -> UploadRecord? {
        try uploads.upload(uploadID, assetID: assetID, workspaceID: workspaceID) {
            try readers.reader().upload(uploadID: uploadID, assetID: assetID, workspaceID: workspaceID)
        }
    }

    /// upload pending -> completed and asset pending -> ready, in one transaction; returns
    /// the ready asset. Returns nil (and changes nothing) when either had moved on: the
    /// upload aborted or completed by another request, or the asset being deleted.
    public func completeUpload(
        uploadID: String, partsDigest: String, location: String, etag: String, size: Int64,
        thumbnail: ThumbnailStatus, now: Date
    ) throws -> AssetRecord? {
        // After the commit, never before: see UploadCache.
        defer { uploads.invalidate(uploadID: uploadID) }
        return try run {
            do {
                return try pool.write { db in
                guard try Self.markUploadCompleted(db, uploadID: uploadID, partsDigest: partsDigest, location: location,
                                                   etag: etag, now: now) else { return nil }
                try db.execute(
                    sql: """
                        UPDATE asset SET status = 'ready', size = ?, etag = ?, thumbnail_status = ?, updated_at = ?, version_created_at = ?
                        WHERE id = (SELECT asset_id FROM upload WHERE upload_id = ?) AND status = 'pending'
                        """,
                    arguments: [size, etag, thumbnail.rawValue, now.timeIntervalSince1970, now.timeIntervalSince1970, uploadID])
                // The asset left pending (a delete began): undo the upload's change too.
                guard db.changesCount == 1 else { throw Rollback() }
                guard let ready = try Row.fetchOne(db, sql: "SELECT \(Self.assetColumns) FROM asset WHERE id = (SELECT asset_id FROM upload WHERE upload_id = ?)",
                                                   arguments: [uploadID]).map(Self.asset(from:)) else { return nil }
                try Self.recordEvent(db, .assetReady, asset: ready, now: now)
                return ready
                }
            } catch is Rollback {
                return nil
            }
        }
    }

    /// The compare-and-set upload pending -> completed, inside a write; false when it lost.
    static func markUploadCompleted(_ db: GRDB.Database, uploadID: String, partsDigest: String, location: String, etag: String,
                                    now: Date) throws -> Bool {
        try db.execute(
            sql: """
                UPDATE upload SET status = 'completed', parts_digest = ?, location = ?, etag = ?, updated_at = ?
                WHERE upload_id = ? AND status = 'pending'
                """,
            arguments: [partsDigest, location, etag, now.timeIntervalSince1970, uploadID])
        guard db.changesCount == 1 else { return false }
        try deleteSignedPartMD5s(db, uploadID: uploadID)
        return true
    }

    /// The MD5s signed for an upload's parts serve only while it is pending: they go in
    /// the same transaction that ends it, so the table holds pending uploads' parts alone.
    static func deleteSignedPartMD5s(_ db: GRDB.Database, uploadID: String) throws {
        try db.execute(sql: "DELETE FROM upload_part_md5 WHERE upload_id = ?", arguments: [uploadID])
    }

    /// Marks a pending upload aborted, and its asset too while it has no object.
    /// Returns the upload's status after the call (nil: no such upload).
    public func abortUpload(uploadID: String, now: Date) throws -> UploadStatus? {
        defer { uploads.invalidate(uploadID: uploadID) }
        return try run {
            try pool.write { db in
                try Self.endPendingUpload(db, uploadID: uploadID, as: .aborted, now: now)
                return try String.fetchOne(db, sql: "SELECT status FROM upload WHERE upload_id = ?", arguments: [uploadID])
                    .map { try decodeStored($0, table: "upload", column: "status") }
            }
        }
    }

    /// upload pending -> expired and asset pending -> expired: an upload that never
    /// completed within ASSETD_PENDING_UPLOAD_TTL, aborted in S3 by the reconciler.
    @discardableResult
    public func expireUpload(uploadID: String, now: Date) throws -> Bool {
        defer { uploads.invalidate(uploadID: uploadID) }
        return try run {
            try pool.write { db in try Self.endPendingUpload(db, uploadID: uploadID, as: .expired, now: now) }
        }
    }

    /// The compare-and-set that ends a pending upload: upload pending -> `status`, and, for
    /// a first upload, its asset pending -> the same status (a new version's asset is ready
    /// and stays so). False, and nothing changed, when the upload was no longer pending.
    @discardableResult
    static func endPendingUpload(_ db: GRDB.Database, uploadID: String, as status: UploadStatus, now: Date) throws -> Bool {
        try db.execute(sql: "UPDATE upload SET status = ?, updated_at = ? WHERE upload_id = ? AND status = 'pending'",
                       arguments: [status.rawValue, now.timeIntervalSince1970, uploadID])
        guard db.changesCount == 1 else { return false }
        try deleteSignedPartMD5s(db, uploadID: uploadID)
        try db.execute(
            sql: """
                UPDATE asset SET status = ?, updated_at = ?
                WHERE id = (SELECT asset_id FROM upload WHERE upload_id = ? AND version IS NULL) AND status = 'pending'
                """,
            arguments: [status.rawValue, now.timeIntervalSince1970, uploadID])
        return true
    }

    /// A completed upload whose content or size check failed: upload pending -> rejected,
    /// and for a first upload its asset pending -> rejected. A new version's asset stays
    /// as it was. False when the upload was no longer pending.
    @discardableResult
    public func rejectUpload(uploadID: String, now: Date) throws -> Bool {
        defer { uploads.invalidate(uploadID: uploadID) }
        return try run {
            try pool.write { db in try Self.endPendingUpload(db, uploadID: uploadID, as: .rejected, now: now) }
        }
    }

    /// Records the MD5 (lower-case hex) that each part URL was signed for, the last one
    /// signed winning, in one transaction. A compare-and-set on the upload: nothing is
    /// recorded, and false returned, unless it is still pending, so no URL of an upload
    /// that completed or ended can leave a record behind.
    public func recordSignedPartMD5s(uploadID: String, md5s: [(partNumber: Int, md5: String)], now: Date) throws -> Bool {
        try run {
            try pool.write { db in
                guard try Bool.fetchOne(db, sql: "SELECT status = 'pending' FROM upload WHERE upload_id = ?", arguments: [uploadID]) == true else {
                    return false
                }
                let statement = try db.cachedStatement(sql: """
                    INSERT INTO upload_part_md5 (upload_id, part_number, md5, signed_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT (upload_id, part_number) DO UPDATE SET md5 = excluded.md5, signed_at = excluded.signed_at
                    """)
                for (partNumber, md5) in md5s {
                    try statement.execute(arguments: [uploadID, partNumber, md5, now.timeIntervalSince1970])
                }
                return true
            }
        }
    }

    /// The MD5 (lower-case hex) each part of an upload was last signed for, by part number.
    public func signedPartMD5s(uploadID: String) throws -> [Int: String] {
        try run {
            try pool.read { db in
                var md5s: [Int: String] = [:]
                let rows = try Row.fetchCursor(db, sql: "SELECT part_number, md5 FROM upload_part_md5 WHERE upload_id = ?", arguments: [uploadID])
                while let row = try rows.next() { md5s[row[0]] = row[1] }
                return md5s
            }
        }
    }
}
