public import struct Foundation.Date
import JSON

// Versions: as SQLiteRecordStore+versions.swift; the asset's row lock (FOR UPDATE) makes
// each check-then-record one step, as SQLite's single writer did.
extension PostgresRecordStore {
    public func versions(assetID: Int64) throws -> [AssetVersionRecord] {
        try versions(assetIDs: [assetID])[assetID] ?? []
    }

    public func versions(assetIDs: [Int64]) throws -> [Int64: [AssetVersionRecord]] {
        guard !assetIDs.isEmpty else { return [:] }
        return try run {
            try pool.with { connection in
                let ids = "{" + assetIDs.map(String.init).joined(separator: ",") + "}"
                var out: [Int64: [AssetVersionRecord]] = [:]
                for row in try connection.query("""
                    SELECT \(Self.versionColumns) FROM asset_version WHERE asset_id = ANY($1::bigint[]) ORDER BY asset_id, version
                    """, [ids]).rows {
                    let record = Self.version(from: row)
                    out[record.assetID, default: []].append(record)
                }
                return out
            }
        }
    }

    /// As `SQLiteRecordStore.checkVersionable`, holding the asset's row lock until the
    /// transaction ends, so that two hosts cannot both pass it.
    static func checkVersionable(_ connection: PGConnection, assetID: Int64, version: Int) throws {
        guard let row = try connection.query("SELECT status, current_version FROM asset WHERE id = $1 FOR UPDATE", [assetID]).first else {
            throw VersionConflict.notReady(.deleted)
        }
        let status: AssetStatus = try decodeStored(row.string(0), table: "asset", column: "status")
        guard status == .ready else { throw VersionConflict.notReady(status) }
        guard row.int(1) == version - 1 else { throw VersionConflict.busy }
        let busy = try connection.query("""
            SELECT EXISTS (SELECT 1 FROM upload WHERE asset_id = $1 AND status = 'pending')
                OR EXISTS (SELECT 1 FROM version_switch WHERE asset_id = $1)
            """, [assetID]).first?.bool(0) ?? false
        if busy { throw VersionConflict.busy }
    }

    public func beginDirectVersion(_ change: VersionSwitch) throws -> VersionSwitch {
        try run {
            try pool.transaction { connection in
                try Self.checkVersionable(connection, assetID: change.assetID, version: change.version)
                try Self.insert(change, connection)
                return change
            }
        }
    }

    @discardableResult
    public func markVersionStored(assetID: Int64, etag: String) throws -> Bool {
        try run {
            try pool.with { connection in
                try connection.query("UPDATE version_switch SET state = 'stored', etag = $1 WHERE asset_id = $2 AND state = 'uploading'",
                                     [etag, assetID]).affectedRows == 1
            }
        }
    }

    public func completeVersionUpload(
        uploadID: String, partsDigest: String, location: String, change: VersionSwitch, now: Date
    ) throws -> VersionSwitch? {
        try run {
            do {
                return try pool.transaction { connection in
                    guard try Self.markUploadCompleted(connection, uploadID: uploadID, partsDigest: partsDigest, location: location,
                                                       etag: change.etag, now: now) else { return nil }
                    let row = try connection.query("SELECT status, current_version FROM asset WHERE id = $1 FOR UPDATE", [change.assetID]).first
                    guard let row, row.string(0) == "ready", row.int(1) == change.version - 1,
                          try connection.query("SELECT EXISTS (SELECT 1 FROM version_switch WHERE asset_id = $1)", [change.assetID])
                            .first?.bool(0) == false
                    else { throw Rollback() }
                    try Self.insert(change, connection)
                    return change
                }
            } catch is Rollback {
                return nil
            }
        }
    }

    public func versionSwitch(assetID: Int64) throws -> VersionSwitch? {
        try run {
            try pool.with { connection in
                try connection.query("SELECT \(Self.versionSwitchColumns) FROM version_switch WHERE asset_id = $1", [assetID])
                    .first.map(Self.versionSwitch(from:))
            }
        }
    }

    @discardableResult
    public func discardVersionSwitch(assetID: Int64, version: Int) throws -> Bool {
        try run {
            try pool.with { connection in
                try connection.query("DELETE FROM version_switch WHERE asset_id = $1 AND version = $2", [assetID, version]).affectedRows == 1
            }
        }
    }

    public func recordVersionSwitched(_ change: VersionSwitch, archiveKey: String, now: Date) throws -> AssetRecord? {
        try run {
            do {
                return try pool.transaction { connection in
                    guard let row = try connection.query("SELECT \(Self.assetColumns) FROM asset WHERE id = $1 FOR UPDATE", [change.assetID]).first
                    else { throw Rollback() }
                    let current = try Self.asset(from: row)
                    guard current.status == .ready, current.currentVersion == change.version - 1 else { throw Rollback() }
                    try connection.query("""
                        INSERT INTO asset_version (asset_id, version, key, file_type, file_name, size, etag, created_at)
                        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                        ON CONFLICT (asset_id, version) DO UPDATE SET key = excluded.key, file_type = excluded.file_type,
                            file_name = excluded.file_name, size = excluded.size, etag = excluded.etag, created_at = excluded.created_at
                        """, [current.id, current.currentVersion, archiveKey, current.fileType, current.fileName, current.size, current.etag,
                              (current.versionCreatedAt ?? current.createdAt).timeIntervalSince1970])
                    guard let updated = try connection.query("""
                        UPDATE asset SET key = $1, file_type = $2, file_name = coalesce($3, file_name), size = $4, etag = $5, sha256 = NULL,
                            current_version = $6, version_created_at = $7, thumbnail_status = 'none', thumbnail_reason = NULL,
                            thumbnail_attempts = 0, thumbnail_owner = NULL, thumbnail_lease_until = NULL, updated_at = $7
                        WHERE id = $8 AND status = 'ready' AND current_version = $9
                        RETURNING \(Self.assetColumns)
                        """, [change.newKey, change.fileType, change.fileName, change.size, change.etag, change.version,
                              now.timeIntervalSince1970, current.id, current.currentVersion]).first
                    else { throw Rollback() }
                    try connection.query("DELETE FROM version_switch WHERE asset_id = $1", [current.id])
                    let switched = try Self.asset(from: updated)
                    try Self.recordEvent(connection, .assetVersionAdded, asset: switched, now: now,
                                         extra: [.init("previousVersion", .int(current.currentVersion))])
                    return switched
                }
            } catch is Rollback {
                return nil
            }
        }
    }

    private static func insert(_ change: VersionSwitch, _ connection: PGConnection) throws {
        try connection.query("""
            INSERT INTO version_switch (asset_id, workspace_id, version, staging_key, new_key, file_type, file_name, size, etag, state, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            """, [change.assetID, change.workspaceID, change.version, change.stagingKey, change.newKey, change.fileType,
                  change.fileName, change.size, change.etag, change.state.rawValue, change.createdAt.timeIntervalSince1970])
    }
}
