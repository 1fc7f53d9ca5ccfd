public import struct Foundation.Date

// The reconciler's work lists: as SQLiteRecordStore+workLists.swift.
extension PostgresRecordStore {
    public func pendingDirectAssets(updatedBefore before: Date, limit: Int) throws -> [AssetRecord] {
        try run {
            try pool.with { connection in
                try connection.query("""
                    SELECT \(Self.assetColumns) FROM asset WHERE status = 'pending' AND updated_at < $1
                    AND NOT EXISTS (SELECT 1 FROM upload WHERE upload.asset_id = asset.id)
                    ORDER BY id LIMIT $2
                    """, [before.timeIntervalSince1970, limit]).rows.map(Self.asset(from:))
            }
        }
    }

    public func pendingUploads(startedBefore before: Date, limit: Int) throws -> [UploadRecord] {
        try run {
            try pool.with { connection in
                try connection.query("""
                    SELECT \(Self.uploadColumns) FROM upload WHERE status = 'pending' AND created_at < $1 ORDER BY created_at LIMIT $2
                    """, [before.timeIntervalSince1970, limit]).rows.map(Self.upload(from:))
            }
        }
    }

    public func pendingUploadCount() throws -> Int {
        try run { try pool.with { try $0.query("SELECT count(*) FROM upload WHERE status = 'pending'").first?.int(0) ?? 0 } }
    }

    public func deletingAssets(updatedBefore before: Date, limit: Int) throws -> [AssetRecord] {
        try run {
            try pool.with { connection in
                try connection.query("SELECT \(Self.assetColumns) FROM asset WHERE status = 'deleting' AND updated_at < $1 ORDER BY id LIMIT $2",
                                     [before.timeIntervalSince1970, limit]).rows.map(Self.asset(from:))
            }
        }
    }

    public func versionSwitches(createdBefore before: Date, limit: Int) throws -> [VersionSwitch] {
        try run {
            try pool.with { connection in
                try connection.query("""
                    SELECT \(Self.versionSwitchColumns) FROM version_switch WHERE created_at < $1 ORDER BY asset_id LIMIT $2
                    """, [before.timeIntervalSince1970, limit]).rows.map(Self.versionSwitch(from:))
            }
        }
    }

    public func deletedAssetsToSweep(deletedBefore before: Date, limit: Int) throws -> [AssetRecord] {
        try run {
            try pool.with { connection in
                try connection.query("""
                    SELECT \(Self.assetColumns) FROM delete_sweep JOIN asset ON asset.id = delete_sweep.asset_id
                    WHERE delete_sweep.deleted_at < $1 ORDER BY delete_sweep.asset_id LIMIT $2
                    """, [before.timeIntervalSince1970, limit]).rows.map(Self.asset(from:))
            }
        }
    }

    public func markSwept(assetID: Int64) throws {
        try run { try pool.with { try $0.query("DELETE FROM delete_sweep WHERE asset_id = $1", [assetID]) } }
    }
}
