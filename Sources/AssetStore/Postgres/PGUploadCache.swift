import Locking

/// Pending uploads by uploadId for the presign route on PostgreSQL (ASSETD_DATABASE_UPLOAD_CACHE),
/// kept right across hosts: every transaction that ends or removes a pending upload sends
/// `pg_notify('assetd_uploads', ...)` before its commit (PostgreSQL delivers it only if
/// the transaction commits), and `PGUploadListener` evicts the entry on every host.
///
/// It serves only while the listener is connected and LISTENing ("live"): when that
/// connection is lost, notifications may be lost with it, so the whole cache is cleared
/// and lookups go to the database until it has reconnected and LISTENs again (then the
/// cache is cleared once more). A generation counter, as in the SQLite `UploadCache`,
/// drops the insert of a lookup that read the row before an eviction it raced with.
///
/// Only `upload(uploadID:assetID:workspaceID:)` (presign) reads it: complete, abort and
/// authorize decide on the row in the database, so a late eviction can at worst sign a
/// part URL that S3 then refuses (the multipart upload is gone).
final class PGUploadCache: Sendable {
    private struct State {
        var entries: [String: UploadRecord] = [:]
        var generation: UInt64 = 0
        var live = false
    }

    private let state = ReadWriteLocked(State())
    private let capacity: Int

    init(capacity: Int = 8192) { self.capacity = capacity }

    /// The cached pending upload (never while the listener is down), and the generation to
    /// pass to `insert` after reading the row.
    func lookup(_ uploadID: String) -> (record: UploadRecord?, generation: UInt64) {
        state.read { ($0.live ? $0.entries[uploadID] : nil, $0.generation) }
    }

    /// Keeps `record` if it is pending, the listener is live and nothing was evicted since `generation`.
    func insert(_ record: UploadRecord, readAt generation: UInt64) {
        guard record.status == .pending else { return }
        state.write {
            guard $0.live, $0.generation == generation else { return }
            // Full: start again rather than track recency; live uploads come back at once.
            if $0.entries.count >= capacity { $0.entries.removeAll(keepingCapacity: true) }
            $0.entries[record.uploadID] = record
        }
    }

    func invalidate(uploadID: String) {
        state.write {
            $0.generation &+= 1
            $0.entries[uploadID] = nil
        }
    }

    /// Every upload of one asset (a delete aborts or removes them all).
    func invalidate(assetID: Int64) {
        state.write {
            $0.generation &+= 1
            $0.entries = $0.entries.filter { $0.value.assetID != assetID }
        }
    }

    /// A payload of the channel: `u:<uploadId>` or `a:<assetId>`; anything else clears all.
    func invalidate(payload: String) {
        if payload.hasPrefix("u:") {
            invalidate(uploadID: String(payload.dropFirst(2)))
        } else if payload.hasPrefix("a:"), let assetID = Int64(payload.dropFirst(2)) {
            invalidate(assetID: assetID)
        } else {
            setLive(nil)
        }
    }

    /// The listener's state: false when its connection is lost (clear, serve nothing), true
    /// once it LISTENs again (clear what was read meanwhile, then serve); nil clears only.
    func setLive(_ live: Bool?) {
        state.write {
            $0.generation &+= 1
            $0.entries.removeAll(keepingCapacity: true)
            if let live { $0.live = live }
        }
    }

    var isLive: Bool { state.read { $0.live } }
    var count: Int { state.read { $0.entries.count } }

    /// What the payloads say: `u:` an upload, `a:` all uploads of an asset.
    static func payload(uploadID: String) -> String { "u:" + uploadID }
    static func payload(assetID: Int64) -> String { "a:\(assetID)" }
}

extension PostgresRecordStore {
    /// The channel of `PGUploadCache`'s evictions.
    static let uploadChannel = "assetd_uploads"

    /// Tells every host's cache (this one's after the commit, see `PGPool.afterCommit`)
    /// that `uploadID` ended or changed; sent by every host whatever its own setting, so
    /// that hosts may differ in ASSETD_DATABASE_UPLOAD_CACHE (a rollout).
    static func notifyUploadChanged(_ connection: PGConnection, uploadID: String) throws {
        try notify(connection, PGUploadCache.payload(uploadID: uploadID))
    }

    /// Every upload of `assetID` ended or was removed (a delete).
    static func notifyUploadsChanged(_ connection: PGConnection, assetID: Int64) throws {
        try notify(connection, PGUploadCache.payload(assetID: assetID))
    }

    private static func notify(_ connection: PGConnection, _ payload: String) throws {
        try connection.query("SELECT pg_notify('\(uploadChannel)', $1)", [payload])
        connection.notified.append(payload)
    }

    /// The presign lookup through the cache: a pending upload from memory while the
    /// listener is live, else the row, kept if pending.
    func cachedUpload(_ cache: PGUploadCache, uploadID: String, assetID: Int64, workspaceID: Int64) throws -> UploadRecord? {
        let (cached, generation) = cache.lookup(uploadID)
        if let cached {
            return cached.assetID == assetID && cached.workspaceID == workspaceID ? cached : nil
        }
        let record = try run {
            try pool.with { connection in
                try connection.query("SELECT \(Self.uploadColumns) FROM upload WHERE upload_id = $1 AND asset_id = $2 AND workspace_id = $3",
                                     [uploadID, assetID, workspaceID]).first.map(Self.upload(from:))
            }
        }
        if let record { cache.insert(record, readAt: generation) }
        return record
    }
}
