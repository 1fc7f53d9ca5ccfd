public import struct Foundation.Date
import GRDB

/// Why the database failed; `description` is for the log, never for the client.
public struct AssetStoreError: Error, Sendable, CustomStringConvertible {
    public let description: String
}

/// Asset and upload records in SQLite (WAL), through GRDB.
///
/// Every method is synchronous and safe to call from any thread: reads run concurrently,
/// writes one at a time. It knows nothing of HTTP or S3.
public final class SQLiteRecordStore: Sendable {
    /// Internal, not private: the extensions in other files (SQLiteRecordStore+thumbnails) use it.
    let pool: DatabasePool
    private let readers: ThreadReaders
    let uploads = UploadCache()

    /// Opens (creating it if needed) the database at `path` and migrates it.
    public init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        configuration.foreignKeysEnabled = true
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(pool)
            readers = ThreadReaders(path: path)
        } catch {
            throw AssetStoreError(description: "cannot open ASSETD_DATABASE \(path): \(error)")
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: assets and uploads") { db in
            try db.execute(sql: """
                CREATE TABLE asset (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    workspace_id INTEGER NOT NULL,
                    key TEXT NOT NULL UNIQUE,
                    file_name TEXT,
                    file_type TEXT NOT NULL,
                    size INTEGER,
                    etag TEXT,
                    sha256 TEXT,
                    status TEXT NOT NULL,
                    thumbnail_status TEXT NOT NULL DEFAULT 'none',
                    created_at REAL NOT NULL,
                    updated_at REAL NOT NULL
                );
                CREATE INDEX asset_by_workspace ON asset(workspace_id, id);
                CREATE TABLE upload (
                    upload_id TEXT PRIMARY KEY,
                    asset_id INTEGER NOT NULL REFERENCES asset(id),
                    workspace_id INTEGER NOT NULL,
                    key TEXT NOT NULL,
                    file_size INTEGER,
                    part_size INTEGER,
                    status TEXT NOT NULL,
                    parts_digest TEXT,
                    location TEXT,
                    etag TEXT,
                    created_at REAL NOT NULL,
                    updated_at REAL NOT NULL
                );
                CREATE INDEX upload_by_asset ON upload(asset_id);
                """)
        }
        migrator.registerMigration("v2: the reconciler's work lists") { db in
            // Small partial indexes: the reconciler reads only records that are mid-way.
            try db.execute(sql: """
                CREATE INDEX asset_unsettled ON asset(status, updated_at) WHERE status IN ('pending', 'deleting');
                CREATE INDEX upload_pending ON upload(created_at) WHERE status = 'pending';
                """)
        }
        migrator.registerMigration("v3: thumbnail tasks") { db in
            // A thumbnail task's state lives on its asset: thumbnail_status (none, pending,
            // ready, failed), why it failed or has none, and how many attempts began.
            // `none` with no reason on a ready asset is a task never queued (a crash came
            // between the two writes); assets stored before this migration get a reason.
            try db.execute(sql: """
                ALTER TABLE asset ADD COLUMN thumbnail_reason TEXT;
                ALTER TABLE asset ADD COLUMN thumbnail_attempts INTEGER NOT NULL DEFAULT 0;
                UPDATE asset SET thumbnail_reason = 'stored before assetd made thumbnails'
                    WHERE thumbnail_status = 'none' AND status != 'pending';
                CREATE INDEX asset_thumbnail_unsettled ON asset(id)
                    WHERE status = 'ready' AND (thumbnail_status = 'pending' OR (thumbnail_status = 'none' AND thumbnail_reason IS NULL));
                """)
        }
        migrator.registerMigration("v4: versions") { db in
            try db.execute(sql: """
                ALTER TABLE asset ADD COLUMN current_version INTEGER NOT NULL DEFAULT 1;
                ALTER TABLE asset ADD COLUMN version_created_at REAL;
                ALTER TABLE upload ADD COLUMN version INTEGER;
                ALTER TABLE upload ADD COLUMN file_type TEXT;
                ALTER TABLE upload ADD COLUMN file_name TEXT;
                CREATE TABLE asset_version (
                    asset_id INTEGER NOT NULL REFERENCES asset(id),
                    version INTEGER NOT NULL,
                    key TEXT NOT NULL,
                    file_type TEXT NOT NULL,
                    file_name TEXT,
                    size INTEGER,
                    etag TEXT,
                    created_at REAL NOT NULL,
                    PRIMARY KEY (asset_id, version)
                );
                CREATE TABLE version_switch (
                    asset_id INTEGER PRIMARY KEY REFERENCES asset(id),
                    workspace_id INTEGER NOT NULL,
                    version INTEGER NOT NULL,
                    staging_key TEXT NOT NULL,
                    new_key TEXT NOT NULL,
                    file_type TEXT NOT NULL,
                    file_name TEXT,
                    size INTEGER NOT NULL,
                    etag TEXT NOT NULL,
                    state TEXT NOT NULL,
                    created_at REAL NOT NULL
                );
                """)
        }
        return migrator
    }

    func run<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as AssetStoreError {
            throw error
        } catch {
            throw AssetStoreError(description: "database: \(error)")
        }
    }

    // MARK: - Assets

    /// Inserts a pending asset; the database picks its id, and its key follows from it.
    public func createAsset(_ new: NewAsset, status: AssetStatus = .pending, now: Date = Date()) throws -> AssetRecord {
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
                return AssetRecord(
                    id: id, workspaceID: new.workspaceID, key: key, fileName: new.fileName, fileType: new.fileType,
                    size: new.size, etag: new.etag, sha256: nil, status: status, thumbnailStatus: .none,
                    createdAt: Self.rounded(now), updatedAt: Self.rounded(now))
            }
        }
    }

    /// The asset `id` if it belongs to `workspaceID`; nil otherwise, whichever workspace it is in.
    public func asset(id: Int64, workspaceID: Int64) throws -> AssetRecord? {
        try run {
            try pool.unsafeReentrantRead { db in
                let statement = try db.cachedStatement(sql: "SELECT * FROM asset WHERE id = ? AND workspace_id = ?")
                return try Row.fetchOne(statement, arguments: [id, workspaceID]).map(Self.asset(from:))
            }
        }
    }

    // Every status change below is a compare-and-set: an UPDATE that names the state it
    // expects, and reports whether it won. The loser of a race compensates (deletes the
    // object it stored, answers 409 or 404) and never overwrites the winner.

    /// Removes a pending asset that never got an object (its S3 call failed), with its
    /// uploads. Returns false, and changes nothing, when it is no longer pending: a delete
    /// that began meanwhile keeps its record, so that a repeated DELETE still succeeds.
    @discardableResult
    public func discardPendingAsset(id: Int64) throws -> Bool {
        defer { uploads.invalidateAll() }
        return try run {
            try pool.write { db in
                guard try String.fetchOne(db, sql: "SELECT status FROM asset WHERE id = ?", arguments: [id]) == AssetStatus.pending.rawValue else {
                    return false
                }
                try db.execute(sql: "DELETE FROM upload WHERE asset_id = ?", arguments: [id])
                try db.execute(sql: "DELETE FROM asset WHERE id = ?", arguments: [id])
                return true
            }
        }
    }

    /// pending -> ready for a directly uploaded asset whose object is stored and complete.
    /// Returns the record as the same transaction left it, or nil when the asset was no
    /// longer pending (deleted meanwhile): then the caller deletes the object it stored.
    public func markAssetReady(id: Int64, size: Int64, etag: String, sha256: String?, thumbnail: ThumbnailStatus, now: Date = Date()) throws -> AssetRecord? {
        try run {
            try pool.write { db in
                try db.execute(
                    sql: """
                        UPDATE asset SET status = 'ready', size = ?, etag = ?, sha256 = coalesce(?, sha256), thumbnail_status = ?,
                            updated_at = ?, version_created_at = ?
                        WHERE id = ? AND status = 'pending'
                        """,
                    arguments: [size, etag, sha256, thumbnail.rawValue, now.timeIntervalSince1970, now.timeIntervalSince1970, id])
                guard db.changesCount == 1 else { return nil }
                return try Row.fetchOne(db, sql: "SELECT * FROM asset WHERE id = ?", arguments: [id]).map(Self.asset(from:))
            }
        }
    }

    /// Any state -> deleting, recorded before the first S3 call. Pending uploads of the
    /// asset become aborted in the same transaction, so that a complete-upload racing the
    /// delete loses its compare-and-set and removes what it made. Nil: no such asset.
    public func beginDelete(id: Int64, now: Date = Date()) throws -> DeleteStart? {
        defer { uploads.invalidateAll() }
        return try run {
            try pool.write { db in
                guard let row = try Row.fetchOne(db, sql: "SELECT * FROM asset WHERE id = ?", arguments: [id]) else { return nil }
                var asset = Self.asset(from: row)
                if asset.status == .deleted { return .alreadyDeleted }
                if asset.status != .deleting {
                    try db.execute(sql: "UPDATE asset SET status = 'deleting', updated_at = ? WHERE id = ? AND status = ?",
                                   arguments: [now.timeIntervalSince1970, id, asset.status.rawValue])
                    guard db.changesCount == 1 else { throw AssetStoreError(description: "asset \(id) changed during its delete") }
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
    public func markDeleted(id: Int64, now: Date = Date()) throws -> Bool {
        try run {
            try pool.write { db in
                try db.execute(sql: "UPDATE asset SET status = 'deleted', updated_at = ? WHERE id = ? AND status = 'deleting'",
                               arguments: [now.timeIntervalSince1970, id])
                guard db.changesCount == 1 else { return false }
                try db.execute(sql: "DELETE FROM version_switch WHERE asset_id = ?", arguments: [id])
                return true
            }
        }
    }

    /// Test support: a delete that stopped after its first step.
    public func markAssetDeleted(id: Int64, now: Date = Date()) throws {
        guard case .deleting? = try beginDelete(id: id, now: now) else { return }
        try markDeleted(id: id, now: now)
    }

    /// Assets of a workspace, newest first, that are not deleted; `before` is the id
    /// the previous page ended with.
    public func assets(workspaceID: Int64, limit: Int, before: Int64?) throws -> [AssetRecord] {
        try run {
            try pool.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT * FROM asset WHERE workspace_id = ? AND status != 'deleted' AND id < ?
                    ORDER BY id DESC LIMIT ?
                    """, arguments: [workspaceID, before ?? Int64.max, limit]).map(Self.asset(from:))
            }
        }
    }

    // MARK: - Uploads

    public func createUpload(uploadID: String, asset: AssetRecord, fileSize: Int64?, partSize: Int64?, now: Date = Date()) throws -> UploadRecord {
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
            return UploadRecord(
                uploadID: uploadID, assetID: asset.id, workspaceID: asset.workspaceID, key: asset.key, fileSize: fileSize,
                partSize: partSize, status: .pending, partsDigest: nil, location: nil, etag: nil, createdAt: Self.rounded(now))
        }
    }

    /// Whether `assetID` may take a new version now: ready, with no pending upload and no
    /// version switch in progress. Run inside the transaction that records the new version.
    static func checkVersionable(_ db: GRDB.Database, assetID: Int64, version: Int) throws {
        guard let row = try Row.fetchOne(db, sql: "SELECT status, current_version FROM asset WHERE id = ?", arguments: [assetID]) else {
            throw VersionConflict.notReady(.deleted)
        }
        let status = AssetStatus(rawValue: row["status"]) ?? .deleted
        guard status == .ready else { throw VersionConflict.notReady(status) }
        // The number was read before an S3 call: another version may have come in since.
        guard row["current_version"] == version - 1 else { throw VersionConflict.busy }
        let busy = try Bool.fetchOne(db, sql: """
            SELECT EXISTS (SELECT 1 FROM upload WHERE asset_id = ?1 AND status = 'pending')
                OR EXISTS (SELECT 1 FROM version_switch WHERE asset_id = ?1)
            """, arguments: [assetID]) ?? false
        if busy { throw VersionConflict.busy }
    }

    /// Records the multipart upload of version `version` of a ready asset, whose parts go to
    /// `stagingKey`. Throws `VersionConflict` (and records nothing) when the asset is not
    /// ready or is busy with another upload.
    public func createVersionUpload(
        uploadID: String, asset: AssetRecord, version: Int, stagingKey: String, fileType: String, fileName: String?,
        fileSize: Int64?, partSize: Int64?, now: Date = Date()
    ) throws -> UploadRecord {
        do {
            return try pool.write { db in
                try Self.checkVersionable(db, assetID: asset.id, version: version)
                try db.execute(
                    sql: """
                        INSERT INTO upload (upload_id, asset_id, workspace_id, key, file_size, part_size, status, created_at, updated_at,
                                            version, file_type, file_name)
                        VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)
                        """,
                    arguments: [uploadID, asset.id, asset.workspaceID, stagingKey, fileSize, partSize,
                                now.timeIntervalSince1970, now.timeIntervalSince1970, version, fileType, fileName])
                return UploadRecord(
                    uploadID: uploadID, assetID: asset.id, workspaceID: asset.workspaceID, key: stagingKey, fileSize: fileSize,
                    partSize: partSize, status: .pending, partsDigest: nil, location: nil, etag: nil, createdAt: Self.rounded(now),
                    version: version, fileType: fileType, fileName: fileName)
            }
        } catch let conflict as VersionConflict {
            throw conflict
        } catch {
            throw AssetStoreError(description: "database: \(error)")
        }
    }

    /// The upload `uploadID` if it belongs to asset `assetID` in `workspaceID`; nil otherwise.
    /// On the hot path (every presign): pending uploads come from memory (UploadCache); the
    /// others from the calling thread's own read-only connection and prepared statement
    /// (ThreadReaders), outside GRDB's pool.
    public func upload(uploadID: String, assetID: Int64, workspaceID: Int64) throws -> UploadRecord? {
        let (cached, generation) = uploads.lookup(uploadID)
        if let cached {
            return cached.assetID == assetID && cached.workspaceID == workspaceID ? cached : nil
        }
        let record = try readers.reader().upload(uploadID: uploadID, assetID: assetID, workspaceID: workspaceID)
        if let record { uploads.insert(record, readAt: generation) }
        return record
    }

    /// How many pending uploads are held in memory (for tests).
    var cachedUploadCount: Int { uploads.count }

    /// upload pending -> completed and asset pending -> ready, in one transaction; returns
    /// the ready asset. Returns nil (and changes nothing) when either had moved on: the
    /// upload aborted or completed by another request, or the asset being deleted.
    public func completeUpload(
        uploadID: String, partsDigest: String, location: String, etag: String, size: Int64,
        thumbnail: ThumbnailStatus, now: Date = Date()
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
                return try Row.fetchOne(db, sql: "SELECT * FROM asset WHERE id = (SELECT asset_id FROM upload WHERE upload_id = ?)",
                                        arguments: [uploadID]).map(Self.asset(from:))
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
        return db.changesCount == 1
    }

    /// Thrown inside a write to roll its transaction back.
    struct Rollback: Error {}

    /// Marks a pending upload aborted, and its asset too while it has no object.
    /// Returns the upload's status after the call (nil: no such upload).
    public func abortUpload(uploadID: String, now: Date = Date()) throws -> UploadStatus? {
        defer { uploads.invalidate(uploadID: uploadID) }
        return try run {
            try pool.write { db in
                try Self.endPendingUpload(db, uploadID: uploadID, as: .aborted, now: now)
                return try String.fetchOne(db, sql: "SELECT status FROM upload WHERE upload_id = ?", arguments: [uploadID])
                    .flatMap(UploadStatus.init(rawValue:))
            }
        }
    }

    /// upload pending -> expired and asset pending -> expired: an upload that never
    /// completed within ASSETD_PENDING_UPLOAD_TTL, aborted in S3 by the reconciler.
    @discardableResult
    public func expireUpload(uploadID: String, now: Date = Date()) throws -> Bool {
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
        try db.execute(
            sql: """
                UPDATE asset SET status = ?, updated_at = ?
                WHERE id = (SELECT asset_id FROM upload WHERE upload_id = ? AND version IS NULL) AND status = 'pending'
                """,
            arguments: [status.rawValue, now.timeIntervalSince1970, uploadID])
        return true
    }

    // MARK: - The reconciler's work lists

    /// Directly uploaded assets (no multipart upload) still pending since before `before`:
    /// a crash or an unanswered PutObject left them between the record and the object.
    public func pendingDirectAssets(updatedBefore before: Date, limit: Int = 500) throws -> [AssetRecord] {
        try run {
            try pool.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT * FROM asset WHERE status = 'pending' AND updated_at < ?
                    AND NOT EXISTS (SELECT 1 FROM upload WHERE upload.asset_id = asset.id)
                    ORDER BY id LIMIT ?
                    """, arguments: [before.timeIntervalSince1970, limit]).map(Self.asset(from:))
            }
        }
    }

    /// Multipart uploads still pending that were started before `before`.
    public func pendingUploads(startedBefore before: Date, limit: Int = 500) throws -> [UploadRecord] {
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
    public func deletingAssets(updatedBefore before: Date, limit: Int = 500) throws -> [AssetRecord] {
        try run {
            try pool.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM asset WHERE status = 'deleting' AND updated_at < ? ORDER BY id LIMIT ?",
                                 arguments: [before.timeIntervalSince1970, limit]).map(Self.asset(from:))
            }
        }
    }

    /// Answers when SQLite does (for /healthz).
    public func ping() throws {
        try run { _ = try pool.read { db in try Int.fetchOne(db, sql: "SELECT 1") } }
    }

    // MARK: - Rows

    static func rounded(_ date: Date) -> Date {
        Date(timeIntervalSince1970: date.timeIntervalSince1970)
    }

    static func asset(from row: Row) -> AssetRecord {
        AssetRecord(
            id: row["id"], workspaceID: row["workspace_id"], key: row["key"], fileName: row["file_name"],
            fileType: row["file_type"], size: row["size"], etag: row["etag"], sha256: row["sha256"],
            status: AssetStatus(rawValue: row["status"]) ?? .pending,
            thumbnailStatus: ThumbnailStatus(rawValue: row["thumbnail_status"]) ?? .none,
            createdAt: Date(timeIntervalSince1970: row["created_at"]),
            updatedAt: Date(timeIntervalSince1970: row["updated_at"]),
            currentVersion: row["current_version"] ?? 1,
            versionCreatedAt: (row["version_created_at"] as Double?).map(Date.init(timeIntervalSince1970:)))
    }

    static func upload(from row: Row) -> UploadRecord {
        UploadRecord(
            uploadID: row["upload_id"], assetID: row["asset_id"], workspaceID: row["workspace_id"], key: row["key"],
            fileSize: row["file_size"], partSize: row["part_size"],
            status: UploadStatus(rawValue: row["status"]) ?? .pending, partsDigest: row["parts_digest"],
            location: row["location"], etag: row["etag"], createdAt: Date(timeIntervalSince1970: row["created_at"]),
            version: row["version"], fileType: row["file_type"], fileName: row["file_name"])
    }
}
