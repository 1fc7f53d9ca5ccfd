public import struct Foundation.Date

// Assets: as SQLiteRecordStore+assets.swift. A read-then-write holds the asset's row lock
// (FOR UPDATE) for its transaction, which SQLite's single writer gave for free.
extension PostgresRecordStore {
    public func createAsset(_ new: NewAsset, status: AssetStatus, now: Date) throws -> AssetRecord {
        try run {
            try pool.with { connection in
                // The id first, so that the key (which names it) goes in with the row.
                guard let id = try connection.query("SELECT nextval('asset_id_seq')").first?.int64(0) else {
                    throw RecordStoreError.database("database: nextval gave no id")
                }
                let key = AssetKeys.original(workspaceID: new.workspaceID, assetID: id, fileExtension: new.fileExtension)
                try connection.query("""
                    INSERT INTO asset (id, workspace_id, key, file_name, file_type, size, etag, status, created_at, updated_at)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
                    """, [id, new.workspaceID, key, new.fileName, new.fileType, new.size, new.etag, status.rawValue,
                          now.timeIntervalSince1970])
                return AssetRecord.inserted(id: id, key: key, from: new, status: status, now: now)
            }
        }
    }

    public func asset(id: Int64, workspaceID: Int64) throws -> AssetRecord? {
        try run {
            try pool.with { connection in
                try connection.query("SELECT \(Self.assetColumns) FROM asset WHERE id = $1 AND workspace_id = $2", [id, workspaceID])
                    .first.map(Self.asset(from:))
            }
        }
    }

    @discardableResult
    public func discardPendingAsset(id: Int64) throws -> Bool {
        try run {
            try pool.transaction { connection in
                guard try connection.query("SELECT status FROM asset WHERE id = $1 FOR UPDATE", [id]).first?.string(0)
                        == AssetStatus.pending.rawValue else { return false }
                try connection.query("DELETE FROM upload_part_md5 WHERE upload_id IN (SELECT upload_id FROM upload WHERE asset_id = $1)", [id])
                try connection.query("DELETE FROM upload WHERE asset_id = $1", [id])
                try Self.notifyUploadsChanged(connection, assetID: id)
                try connection.query("DELETE FROM asset WHERE id = $1", [id])
                return true
            }
        }
    }

    public func markAssetReady(id: Int64, size: Int64, etag: String, sha256: String?, thumbnail: ThumbnailStatus, now: Date) throws -> AssetRecord? {
        try run {
            try pool.transaction { connection in
                guard let ready = try connection.query("""
                    UPDATE asset SET status = 'ready', size = $1, etag = $2, sha256 = coalesce($3, sha256), thumbnail_status = $4,
                        updated_at = $5, version_created_at = $5
                    WHERE id = $6 AND status = 'pending'
                    RETURNING \(Self.assetColumns)
                    """, [size, etag, sha256, thumbnail.rawValue, now.timeIntervalSince1970, id]).first.map(Self.asset(from:))
                else { return nil }
                try Self.recordEvent(connection, .assetReady, asset: ready, now: now)
                return ready
            }
        }
    }

    public func beginDelete(id: Int64, now: Date) throws -> DeleteStart? {
        try run {
            try pool.transaction { connection in
                guard let row = try connection.query("SELECT \(Self.assetColumns) FROM asset WHERE id = $1 FOR UPDATE", [id]).first else {
                    return nil
                }
                var asset = try Self.asset(from: row)
                if asset.status == .deleted { return .alreadyDeleted }
                if asset.status != .deleting {
                    let changed = try connection.query("UPDATE asset SET status = 'deleting', updated_at = $1 WHERE id = $2 AND status = $3",
                                                       [now.timeIntervalSince1970, id, asset.status.rawValue]).affectedRows
                    guard changed == 1 else { throw RecordStoreError.database("asset \(id) changed during its delete") }
                    asset.status = .deleting
                }
                try connection.query("UPDATE upload SET status = 'aborted', updated_at = $1 WHERE asset_id = $2 AND status = 'pending'",
                                     [now.timeIntervalSince1970, id])
                try Self.notifyUploadsChanged(connection, assetID: id)
                let open = try connection.query("SELECT \(Self.uploadColumns) FROM upload WHERE asset_id = $1 AND status != 'completed'", [id])
                    .rows.map(Self.upload(from:))
                var keys = [asset.key, AssetKeys.thumbnail(workspaceID: asset.workspaceID, assetID: asset.id)]
                keys += try connection.query("SELECT key FROM asset_version WHERE asset_id = $1 ORDER BY version", [id]).rows.compactMap { $0.string(0) }
                keys += try connection.query("SELECT staging_key FROM version_switch WHERE asset_id = $1", [id]).rows.compactMap { $0.string(0) }
                keys += try connection.query("SELECT new_key FROM version_switch WHERE asset_id = $1", [id]).rows.compactMap { $0.string(0) }
                keys += try connection.query("SELECT key FROM upload WHERE asset_id = $1 AND key != $2", [id, asset.key]).rows.compactMap { $0.string(0) }
                var seen = Set<String>()
                return .deleting(asset, uploads: open, keys: keys.filter { seen.insert($0).inserted })
            }
        }
    }

    @discardableResult
    public func markDeleted(id: Int64, now: Date) throws -> Bool {
        try run {
            try pool.transaction { connection in
                guard try connection.query("UPDATE asset SET status = 'deleted', updated_at = $1 WHERE id = $2 AND status = 'deleting'",
                                           [now.timeIntervalSince1970, id]).affectedRows == 1 else { return false }
                try connection.query("DELETE FROM version_switch WHERE asset_id = $1", [id])
                try connection.query("""
                    INSERT INTO delete_sweep (asset_id, deleted_at) VALUES ($1, $2)
                    ON CONFLICT (asset_id) DO UPDATE SET deleted_at = excluded.deleted_at
                    """, [id, now.timeIntervalSince1970])
                if let deleted = try Self.currentAsset(connection, id: id) {
                    try Self.recordEvent(connection, .assetDeleted, asset: deleted, now: now)
                }
                return true
            }
        }
    }

    public func assets(workspaceID: Int64, limit: Int, before: Int64?) throws -> [AssetRecord] {
        try run {
            try pool.with { connection in
                try connection.query("""
                    SELECT \(Self.assetColumns) FROM asset WHERE workspace_id = $1 AND status NOT IN ('deleting', 'deleted') AND id < $2
                    ORDER BY id DESC LIMIT $3
                    """, [workspaceID, before ?? Int64.max, limit]).rows.map(Self.asset(from:))
            }
        }
    }
}
