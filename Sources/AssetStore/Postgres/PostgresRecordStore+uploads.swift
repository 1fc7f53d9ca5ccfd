public import struct Foundation.Date

// Multipart uploads: as SQLiteRecordStore+uploads.swift. The presign lookup may come from
// the UploadCache (PostgresRecordStore+uploadCache.swift); every change that ends a pending upload NOTIFYs every host's cache.
extension PostgresRecordStore {
    public func createUpload(uploadID: String, asset: AssetRecord, fileSize: Int64?, partSize: Int64?, now: Date) throws -> UploadRecord {
        try run {
            try pool.with { connection in
                try connection.query("""
                    INSERT INTO upload (upload_id, asset_id, workspace_id, key, file_size, part_size, status, created_at, updated_at)
                    VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7)
                    """, [uploadID, asset.id, asset.workspaceID, asset.key, fileSize, partSize, now.timeIntervalSince1970])
            }
            return UploadRecord.inserted(uploadID: uploadID, asset: asset, key: asset.key, fileSize: fileSize, partSize: partSize, now: now)
        }
    }

    public func createVersionUpload(
        uploadID: String, asset: AssetRecord, version: Int, stagingKey: String, fileType: String, fileName: String?,
        fileSize: Int64?, partSize: Int64?, now: Date
    ) throws -> UploadRecord {
        try run {
            try pool.transaction { connection in
                try Self.checkVersionable(connection, assetID: asset.id, version: version)
                try connection.query("""
                    INSERT INTO upload (upload_id, asset_id, workspace_id, key, file_size, part_size, status, created_at, updated_at,
                                        version, file_type, file_name)
                    VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7, $8, $9, $10)
                    """, [uploadID, asset.id, asset.workspaceID, stagingKey, fileSize, partSize, now.timeIntervalSince1970,
                          version, fileType, fileName])
                return UploadRecord.inserted(uploadID: uploadID, asset: asset, key: stagingKey, fileSize: fileSize, partSize: partSize,
                                             now: now, version: version, fileType: fileType, fileName: fileName)
            }
        }
    }

    /// The hot lookup (every presigned part URL): one prepared statement on a pooled connection.
    public func upload(uploadID: String, assetID: Int64, workspaceID: Int64) throws -> UploadRecord? {
        guard let uploadCache else { return try readUpload(uploadID: uploadID, assetID: assetID, workspaceID: workspaceID) }
        return try uploadCache.upload(uploadID, assetID: assetID, workspaceID: workspaceID) {
            try readUpload(uploadID: uploadID, assetID: assetID, workspaceID: workspaceID)
        }
    }

    private func readUpload(uploadID: String, assetID: Int64, workspaceID: Int64) throws -> UploadRecord? {
        try run {
            try pool.with { connection in
                try connection.query("SELECT \(Self.uploadColumns) FROM upload WHERE upload_id = $1 AND asset_id = $2 AND workspace_id = $3",
                                     [uploadID, assetID, workspaceID]).first.map(Self.upload(from:))
            }
        }
    }

    public func completeUpload(
        uploadID: String, partsDigest: String, location: String, etag: String, size: Int64, thumbnail: ThumbnailStatus, now: Date
    ) throws -> AssetRecord? {
        try run {
            do {
                return try pool.transaction { connection in
                    guard try Self.markUploadCompleted(connection, uploadID: uploadID, partsDigest: partsDigest, location: location,
                                                       etag: etag, now: now) else { return nil }
                    // The asset left pending (a delete began): undo the upload's change too.
                    guard let row = try connection.query("""
                        UPDATE asset SET status = 'ready', size = $1, etag = $2, thumbnail_status = $3, updated_at = $4, version_created_at = $4
                        WHERE id = (SELECT asset_id FROM upload WHERE upload_id = $5) AND status = 'pending'
                        RETURNING \(Self.assetColumns)
                        """, [size, etag, thumbnail.rawValue, now.timeIntervalSince1970, uploadID]).first
                    else { throw Rollback() }
                    let ready = try Self.asset(from: row)
                    try Self.recordEvent(connection, .assetReady, asset: ready, now: now)
                    return ready
                }
            } catch is Rollback {
                return nil
            }
        }
    }

    /// The compare-and-set upload pending -> completed, inside a transaction; false when it lost.
    static func markUploadCompleted(_ connection: PGConnection, uploadID: String, partsDigest: String, location: String, etag: String,
                                    now: Date) throws -> Bool {
        guard try connection.query("""
            UPDATE upload SET status = 'completed', parts_digest = $1, location = $2, etag = $3, updated_at = $4
            WHERE upload_id = $5 AND status = 'pending'
            """, [partsDigest, location, etag, now.timeIntervalSince1970, uploadID]).affectedRows == 1 else { return false }
        try notifyUploadChanged(connection, uploadID: uploadID)
        try connection.query("DELETE FROM upload_part_md5 WHERE upload_id = $1", [uploadID])
        return true
    }

    public func abortUpload(uploadID: String, now: Date) throws -> UploadStatus? {
        try run {
            try pool.transaction { connection in
                try Self.endPendingUpload(connection, uploadID: uploadID, as: .aborted, now: now)
                return try connection.query("SELECT status FROM upload WHERE upload_id = $1", [uploadID]).first
                    .map { try decodeStored($0.string(0), table: "upload", column: "status") }
            }
        }
    }

    @discardableResult
    public func expireUpload(uploadID: String, now: Date) throws -> Bool {
        try run { try pool.transaction { try Self.endPendingUpload($0, uploadID: uploadID, as: .expired, now: now) } }
    }

    @discardableResult
    public func rejectUpload(uploadID: String, now: Date) throws -> Bool {
        try run { try pool.transaction { try Self.endPendingUpload($0, uploadID: uploadID, as: .rejected, now: now) } }
    }

    /// The one compare-and-set that ends a pending upload (abort, expire, reject), as
    /// `SQLiteRecordStore.endPendingUpload`.
    @discardableResult
    static func endPendingUpload(_ connection: PGConnection, uploadID: String, as status: UploadStatus, now: Date) throws -> Bool {
        guard try connection.query("UPDATE upload SET status = $1, updated_at = $2 WHERE upload_id = $3 AND status = 'pending'",
                                   [status.rawValue, now.timeIntervalSince1970, uploadID]).affectedRows == 1 else { return false }
        try notifyUploadChanged(connection, uploadID: uploadID)
        try connection.query("DELETE FROM upload_part_md5 WHERE upload_id = $1", [uploadID])
        try connection.query("""
            UPDATE asset SET status = $1, updated_at = $2
            WHERE id = (SELECT asset_id FROM upload WHERE upload_id = $3 AND version IS NULL) AND status = 'pending'
            """, [status.rawValue, now.timeIntervalSince1970, uploadID])
        return true
    }

    public func recordSignedPartMD5s(uploadID: String, md5s: [(partNumber: Int, md5: String)], now: Date) throws -> Bool {
        try run {
            try pool.transaction { connection in
                // FOR SHARE: an end of the upload (which deletes these rows) waits for this transaction.
                guard try connection.query("SELECT status = 'pending' FROM upload WHERE upload_id = $1 FOR SHARE", [uploadID])
                        .first?.bool(0) == true else { return false }
                for (partNumber, md5) in md5s {
                    try connection.query("""
                        INSERT INTO upload_part_md5 (upload_id, part_number, md5, signed_at) VALUES ($1, $2, $3, $4)
                        ON CONFLICT (upload_id, part_number) DO UPDATE SET md5 = excluded.md5, signed_at = excluded.signed_at
                        """, [uploadID, partNumber, md5, now.timeIntervalSince1970])
                }
                return true
            }
        }
    }

    public func signedPartMD5s(uploadID: String) throws -> [Int: String] {
        try run {
            try pool.with { connection in
                var md5s: [Int: String] = [:]
                for row in try connection.query("SELECT part_number, md5 FROM upload_part_md5 WHERE upload_id = $1", [uploadID]).rows {
                    if let number = row.int(0), let md5 = row.string(1) { md5s[number] = md5 }
                }
                return md5s
            }
        }
    }
}
