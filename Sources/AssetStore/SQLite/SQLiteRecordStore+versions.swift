public import struct Foundation.Date
import GRDB

/// Versions: the archive of earlier versions, and the switch that makes a new version
/// current. A switch is recorded before the first S3 call that stores or moves the new
/// bytes, and removed in the transaction that records the new version as current, so
/// that after a crash the reconciler can finish or undo whatever is recorded.
extension SQLiteRecordStore {
    /// The archived versions of an asset (not the current one), oldest first.
    public func versions(assetID: Int64) throws -> [AssetVersionRecord] {
        try versions(assetIDs: [assetID])[assetID] ?? []
    }

    /// The archived versions of several assets at once (one query for a page of assets).
    public func versions(assetIDs: [Int64]) throws -> [Int64: [AssetVersionRecord]] {
        guard !assetIDs.isEmpty else { return [:] }
        return try run {
            try pool.read { db in
                let marks = Array(repeating: "?", count: assetIDs.count).joined(separator: ",")
                let rows = try Row.fetchAll(db, sql: "SELECT * FROM asset_version WHERE asset_id IN (\(marks)) ORDER BY asset_id, version",
                                            arguments: StatementArguments(assetIDs))
                var out: [Int64: [AssetVersionRecord]] = [:]
                for row in rows {
                    let record = Self.version(from: row)
                    out[record.assetID, default: []].append(record)
                }
                return out
            }
        }
    }

    /// Whether `assetID` may take a new version now: ready, with no pending upload and no
    /// version switch in progress. Run inside the transaction that records the new version.
    static func checkVersionable(_ db: GRDB.Database, assetID: Int64, version: Int) throws {
        guard let row = try Row.fetchOne(db, sql: "SELECT status, current_version FROM asset WHERE id = ?", arguments: [assetID]) else {
            throw VersionConflict.notReady(.deleted)
        }
        let status: AssetStatus = try Self.storedCase(row, "status", table: "asset")
        guard status == .ready else { throw VersionConflict.notReady(status) }
        // The number was read before an S3 call: another version may have come in since.
        guard row["current_version"] == version - 1 else { throw VersionConflict.busy }
        let busy = try Bool.fetchOne(db, sql: """
            SELECT EXISTS (SELECT 1 FROM upload WHERE asset_id = ?1 AND status = 'pending')
                OR EXISTS (SELECT 1 FROM version_switch WHERE asset_id = ?1)
            """, arguments: [assetID]) ?? false
        if busy { throw VersionConflict.busy }
    }

    /// A directly uploaded new version: the switch is recorded (state `uploading`) before
    /// its PutObject. Throws `VersionConflict` when the asset is not ready or is busy.
    public func beginDirectVersion(_ change: VersionSwitch) throws -> VersionSwitch {
        try run {
            try pool.write { db in
                try Self.checkVersionable(db, assetID: change.assetID, version: change.version)
                try Self.insert(change, db)
                return change
            }
        }
    }

    /// uploading -> stored, once the direct upload's PutObject has answered.
    @discardableResult
    public func markVersionStored(assetID: Int64, etag: String) throws -> Bool {
        try run {
            try pool.write { db in
                try db.execute(sql: "UPDATE version_switch SET state = 'stored', etag = ? WHERE asset_id = ? AND state = 'uploading'",
                               arguments: [etag, assetID])
                return db.changesCount == 1
            }
        }
    }

    /// A multipart upload of a new version, completed in S3 and checked: upload pending ->
    /// completed and the switch (state `stored`) recorded, in one transaction. Nil when the
    /// upload was no longer pending or the asset no longer ready (an abort or a delete won).
    public func completeVersionUpload(
        uploadID: String, partsDigest: String, location: String, change: VersionSwitch, now: Date
    ) throws -> VersionSwitch? {
        defer { uploads.invalidate(uploadID: uploadID) }
        return try run {
            do {
                return try pool.write { db in
                    guard try Self.markUploadCompleted(db, uploadID: uploadID, partsDigest: partsDigest, location: location,
                                                       etag: change.etag, now: now) else { return nil }
                    guard try Row.fetchOne(db, sql: "SELECT status, current_version FROM asset WHERE id = ?", arguments: [change.assetID])
                            .map({ $0["status"] == "ready" && $0["current_version"] == change.version - 1 }) == true,
                          try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM version_switch WHERE asset_id = ?)", arguments: [change.assetID]) == false
                    else { throw Rollback() }
                    try Self.insert(change, db)
                    return change
                }
            } catch is Rollback {
                return nil
            }
        }
    }

    /// The switch in progress for an asset, if any.
    public func versionSwitch(assetID: Int64) throws -> VersionSwitch? {
        try run {
            try pool.read { db in
                try Row.fetchOne(db, sql: "SELECT * FROM version_switch WHERE asset_id = ?", arguments: [assetID]).map(Self.versionSwitch(from:))
            }
        }
    }

    /// Drops the switch to `version` that will not happen (its bytes never arrived, or were
    /// refused); false when there was no such switch (another run dropped or finished it).
    @discardableResult
    public func discardVersionSwitch(assetID: Int64, version: Int) throws -> Bool {
        try run {
            try pool.write { db in
                try db.execute(sql: "DELETE FROM version_switch WHERE asset_id = ? AND version = ?", arguments: [assetID, version])
                return db.changesCount == 1
            }
        }
    }

    /// The last step of a switch: the current version is archived under `archiveKey`, the
    /// new one becomes current, and the switch is removed, in one transaction. Nil (and
    /// nothing changed) when the asset is no longer ready at the version before this one.
    public func recordVersionSwitched(_ change: VersionSwitch, archiveKey: String, now: Date) throws -> AssetRecord? {
        try run {
            do {
                return try pool.write { db in
                    guard let row = try Row.fetchOne(db, sql: "SELECT \(Self.assetColumns) FROM asset WHERE id = ?", arguments: [change.assetID]) else {
                        throw Rollback()
                    }
                    let current = try Self.asset(from: row)
                    guard current.status == .ready, current.currentVersion == change.version - 1 else { throw Rollback() }
                    try db.execute(
                        sql: """
                            INSERT OR REPLACE INTO asset_version (asset_id, version, key, file_type, file_name, size, etag, created_at)
                            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                            """,
                        arguments: [current.id, current.currentVersion, archiveKey, current.fileType, current.fileName, current.size, current.etag,
                                    (current.versionCreatedAt ?? current.createdAt).timeIntervalSince1970])
                    try db.execute(
                        sql: """
                            UPDATE asset SET key = ?, file_type = ?, file_name = coalesce(?, file_name), size = ?, etag = ?, sha256 = NULL,
                                current_version = ?, version_created_at = ?, thumbnail_status = 'none', thumbnail_reason = NULL,
                                thumbnail_attempts = 0, updated_at = ?
                            WHERE id = ? AND status = 'ready' AND current_version = ?
                            """,
                        arguments: [change.newKey, change.fileType, change.fileName, change.size, change.etag, change.version,
                                    now.timeIntervalSince1970, now.timeIntervalSince1970, current.id, current.currentVersion])
                    guard db.changesCount == 1 else { throw Rollback() }
                    try db.execute(sql: "DELETE FROM version_switch WHERE asset_id = ?", arguments: [current.id])
                    guard let switched = try Self.currentAsset(db, id: current.id) else { throw Rollback() }
                    try Self.recordEvent(db, .assetVersionAdded, asset: switched, now: now,
                                         extra: [.init("previousVersion", .int(current.currentVersion))])
                    return switched
                }
            } catch is Rollback {
                return nil
            }
        }
    }

    private static func insert(_ change: VersionSwitch, _ db: GRDB.Database) throws {
        try db.execute(
            sql: """
                INSERT INTO version_switch (asset_id, workspace_id, version, staging_key, new_key, file_type, file_name, size, etag, state, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [change.assetID, change.workspaceID, change.version, change.stagingKey, change.newKey, change.fileType,
                        change.fileName, change.size, change.etag, change.state.rawValue, change.createdAt.timeIntervalSince1970])
    }
}
