public import struct Foundation.Date
import GRDB

// Assets: creation, lookup, the listing, and the status changes of their life.
//
// Every status change is a compare-and-set: an UPDATE that names the state it expects,
// and reports whether it won. The loser of a race compensates (deletes the object it
// stored, answers 409 or 404) and never overwrites the winner.
extension SQLiteRecordStore {
    /// Inserts a pending asset; the database picks its id, and its key follows from it.
    public func createAsset(_ new: NewAsset, status: AssetStatus, now: Date) throws -> AssetRecord {
        try run {
            try pool.write { db in
                // A placeholder key keeps the UNIQUE constraint until the id is known.
                try db.execute(
                    sql: """
                        INSERT INTO asset (workspace_id, key, file_name, file_type, size, etag, status, created_at, updated_at)
                        VALUES (?, 'pending:' || hex(randomblob(16)), ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [new.workspaceID, new.fileName, new.fileType, new.size, new.etag, status.rawValue,
                                now.timeIntervalSince1970, now.timeIntervalSince1970])
                let id = db.lastInsertedRowID
                let key = AssetKeys.original(workspaceID: new.workspaceID, assetID: id, fileExtension: new.fileExtension)
                try db.execute(sql: "UPDATE asset SET key = ? WHERE id = ?", arguments: [key, id])
                return AssetRecord.inserted(id: id, key: key, from: new, status: status, now: now)
            }
        }
    }

    /// The asset `id` if it belongs to `workspaceID`; nil otherwise, whichever workspace it is in.
    public func asset(id: Int64, workspaceID: Int64) throws -> AssetRecord? {
        try run {
            try pool.unsafeReentrantRead { db in
                let statement = try db.cachedStatement(sql: "SELECT \(Self.assetColumns) FROM asset WHERE id = ? AND workspace_id = ?")
                return try Row.fetchOne(statement, arguments: [id, workspaceID]).map(Self.asset(from:))
            }
        }
    }

    /// Removes a pending asset that never got an object (its S3 call failed), with its
    /// uploads. Returns false, and changes nothing, when it is no longer pending: a delete
    /// that began meanwhile keeps its record, so that a repeated DELETE still succeeds.
    @discardableResult
    public func discardPendingAsset(id: Int64) throws -> Bool {
        defer { uploads.invalidate(assetID: id) }
        return try run {
            try pool.write { db in
                guard try String.fetchOne(db, sql: "SELECT status FROM asset WHERE id = ?", arguments: [id]) == AssetStatus.pending.rawValue else {
                    return false
                }
                try db.execute(sql: "DELETE FROM upload_part_md5 WHERE upload_id IN (SELECT upload_id FROM upload WHERE asset_id = ?)",
                               arguments: [id])
                try db.execute(sql: "DELETE FROM upload WHERE asset_id = ?", arguments: [id])
                try db.execute(sql: "DELETE FROM asset WHERE id = ?", arguments: [id])
                return true
            }
        }
    }

    /// pending -> ready for a directly uploaded asset whose object is stored and complete.
    /// Returns the record as the same transaction left it, or nil when the asset was no
    /// longer pending (deleted meanwhile): then the caller deletes the object it stored.
    public func markAssetReady(id: Int64, size: Int64, etag: String, sha256: String?, thumbnail: ThumbnailStatus, now: Date) throws -> AssetRecord? {
        try run {
            try pool.write { db in
                try db.execute(
                    sql: """
                        UPDATE asset SET status = 'ready', size = ?, etag = ?, sha256 = coalesce(?, sha256), thumbnail_status = ?,
                            updated_at = ?, version_created_at = ?
                        WHERE id = ? AND status = 'pending'
                        """,
                    arguments: [size, etag, sha256, thumbnail.rawValue, now.timeIntervalSince1970, now.timeIntervalSince1970, id])
                guard db.changesCount == 1, let ready = try Self.currentAsset(db, id: id) else { return nil }
                try Self.recordEvent(db, .assetReady, asset: ready, now: now)
                return ready
            }
        }
    }

    /// Any state -> deleting, recorded before the first S3 call. Pending uploads of the
    /// asset become aborted in the same transaction, so that a complete-upload racing the
    /// delete loses its compare-and-set and removes what it made. Nil: no such asset.
    public func beginDelete(id: Int64, now: Date) throws -> DeleteStart? {
        defer { uploads.invalidate(assetID: id) }
        return try run {
            try pool.write { db in
                guard let row = try Row.fetchOne(db, sql: "SELECT \(Self.assetColumns) FROM asset WHERE id = ?", arguments: [id]) else { return nil }
                var asset = try Self.asset(from: row)
                if asset.status == .deleted { return .alreadyDeleted }
                if asset.status != .deleting {
                    try db.execute(sql: "UPDATE asset SET status = 'deleting', updated_at = ? WHERE id = ? AND status = ?",
                                   arguments: [now.timeIntervalSince1970, id, asset.status.rawValue])
                    guard db.changesCount == 1 else { throw RecordStoreError.database("asset \(id) changed during its delete") }
                    asset.status = .deleting
                }
                try db.execute(sql: "UPDATE upload SET status = 'aborted', updated_at = ? WHERE asset_id = ? AND status = 'pending'",
                               arguments: [now.timeIntervalSince1970, id])
                let open = try Row.fetchAll(db, sql: "SELECT * FROM upload WHERE asset_id = ? AND status != 'completed'", arguments: [id])
                    .map(Self.upload(from:))
                var keys = [asset.key, AssetKeys.thumbnail(workspaceID: asset.workspaceID, assetID: asset.id)]
                keys += try String.fetchAll(db, sql: "SELECT key FROM asset_version WHERE asset_id = ?", arguments: [id])
                keys += try String.fetchAll(db, sql: "SELECT staging_key FROM version_switch WHERE asset_id = ?", arguments: [id])
                keys += try String.fetchAll(db, sql: "SELECT new_key FROM version_switch WHERE asset_id = ?", arguments: [id])
                keys += try String.fetchAll(db, sql: "SELECT key FROM upload WHERE asset_id = ? AND key != ?", arguments: [id, asset.key])
                var seen = Set<String>()
                return .deleting(asset, uploads: open, keys: keys.filter { seen.insert($0).inserted })
            }
        }
    }

    /// deleting -> deleted, once every object of the asset is gone. False when the asset
    /// was not `deleting` (another request finished the delete first).
    @discardableResult
    public func markDeleted(id: Int64, now: Date) throws -> Bool {
        try run {
            try pool.write { db in
                try db.execute(sql: "UPDATE asset SET status = 'deleted', updated_at = ? WHERE id = ? AND status = 'deleting'",
                               arguments: [now.timeIntervalSince1970, id])
                guard db.changesCount == 1 else { return false }
                try db.execute(sql: "DELETE FROM version_switch WHERE asset_id = ?", arguments: [id])
                try db.execute(sql: "INSERT OR REPLACE INTO delete_sweep (asset_id, deleted_at) VALUES (?, ?)",
                               arguments: [id, now.timeIntervalSince1970])
                if let deleted = try Self.currentAsset(db, id: id) {
                    try Self.recordEvent(db, .assetDeleted, asset: deleted, now: now)
                }
                return true
            }
        }
    }

    /// Assets of a workspace, newest first, neither deleted nor being deleted (both answer
    /// 404 by id, `AssetStatus.isGone`); `before` is the id the previous page ended with.
    public func assets(workspaceID: Int64, limit: Int, before: Int64?) throws -> [AssetRecord] {
        try run {
            try pool.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT \(Self.assetColumns) FROM asset WHERE workspace_id = ? AND status NOT IN ('deleting', 'deleted') AND id < ?
                    ORDER BY id DESC LIMIT ?
                    """, arguments: [workspaceID, before ?? Int64.max, limit]).map(Self.asset(from:))
            }
        }
    }
}
