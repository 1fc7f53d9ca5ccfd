public import struct Foundation.Date
import GRDB

// The reconciler's work lists: records left mid-way by a crash or a failed S3 call.
extension SQLiteRecordStore {
    /// Directly uploaded assets (no multipart upload) still pending since before `before`:
    /// a crash or an unanswered PutObject left them between the record and the object.
    public func pendingDirectAssets(updatedBefore before: Date, limit: Int) throws -> [AssetRecord] {
        try run {
            try pool.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT \(Self.assetColumns) FROM asset WHERE status = 'pending' AND updated_at < ?
                    AND NOT EXISTS (SELECT 1 FROM upload WHERE upload.asset_id = asset.id)
                    ORDER BY id LIMIT ?
                    """, arguments: [before.timeIntervalSince1970, limit]).map(Self.asset(from:))
            }
        }
    }

    /// Multipart uploads still pending that were started before `before`.
    public func pendingUploads(startedBefore before: Date, limit: Int) throws -> [UploadRecord] {
        try run {
            try pool.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM upload WHERE status = 'pending' AND created_at < ? ORDER BY created_at LIMIT ?",
                                 arguments: [before.timeIntervalSince1970, limit]).map(Self.upload(from:))
            }
        }
    }

    /// How many multipart uploads are pending (for /metrics): a count, not the rows.
    public func pendingUploadCount() throws -> Int {
        try run { try pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM upload WHERE status = 'pending'") ?? 0 } }
    }

    /// Assets whose delete began before `before` and never finished.
    public func deletingAssets(updatedBefore before: Date, limit: Int) throws -> [AssetRecord] {
        try run {
            try pool.read { db in
                try Row.fetchAll(db, sql: "SELECT \(Self.assetColumns) FROM asset WHERE status = 'deleting' AND updated_at < ? ORDER BY id LIMIT ?",
                                 arguments: [before.timeIntervalSince1970, limit]).map(Self.asset(from:))
            }
        }
    }

    /// Switches recorded before `before` (the reconciler's work list).
    public func versionSwitches(createdBefore before: Date, limit: Int) throws -> [VersionSwitch] {
        try run {
            try pool.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM version_switch WHERE created_at < ? ORDER BY asset_id LIMIT ?",
                                 arguments: [before.timeIntervalSince1970, limit]).map(Self.versionSwitch(from:))
            }
        }
    }

    /// Deleted assets whose versions prefix is still to be swept, deleted before `before`.
    public func deletedAssetsToSweep(deletedBefore before: Date, limit: Int) throws -> [AssetRecord] {
        try run {
            try pool.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT \(Self.assetColumns) FROM delete_sweep JOIN asset ON asset.id = delete_sweep.asset_id
                    WHERE delete_sweep.deleted_at < ? ORDER BY delete_sweep.asset_id LIMIT ?
                    """, arguments: [before.timeIntervalSince1970, limit]).map(Self.asset(from:))
            }
        }
    }

    public func markSwept(assetID: Int64) throws {
        try run { try pool.write { db in try db.execute(sql: "DELETE FROM delete_sweep WHERE asset_id = ?", arguments: [assetID]) } }
    }
}
