import Locking

/// Pending uploads by uploadId, kept in memory for the part-URL routes: a browser asks for
/// a URL per part, so one upload is looked up again and again while it lasts. Only that
/// lookup (presign, `upload(uploadID:assetID:workspaceID:)`) reads it: complete, abort and
/// authorization decide on the row in the database, so an entry kept too long can at
/// worst sign a part URL that S3 then refuses (the multipart upload is gone).
///
/// Both stores use it; what differs is who evicts, and whether it may serve at all:
/// - SQLite (`SQLiteRecordStore`): one process owns the database file (an exclusive lock
///   on `<db>.lock`), and every change to an upload goes through it, which evicts the
///   entry once its transaction has committed. The gate is open from the start.
/// - PostgreSQL (`PostgresRecordStore`, ASSETD_DATABASE_UPLOAD_CACHE): other hosts end
///   uploads too. Every transaction that ends or removes a pending upload NOTIFYs, and
///   `PGUploadListener` evicts the entry on every host (this host's own, after the commit).
///   The gate (`setLive`) is closed while that listener is not LISTENing, since
///   notifications may be lost then: the cache is cleared and serves and keeps nothing.
///
/// A generation counter closes the race with a lookup that read the row before a commit
/// that ended it: its insert is dropped when any eviction happened since it began.
final class UploadCache: Sendable {
    private struct State {
        var entries: [String: UploadRecord] = [:]
        var generation: UInt64 = 0
        var live: Bool
    }

    private let state: ReadWriteLocked<State>
    private let capacity: Int

    /// `live`: whether it serves from the start (SQLite), or only once `setLive(true)`
    /// says that every change will be heard of (PostgreSQL's listener).
    init(capacity: Int = 8192, live: Bool = true) {
        self.capacity = capacity
        state = ReadWriteLocked(State(live: live))
    }

    /// The cached pending upload (never while the gate is closed), and the generation to
    /// pass to `insert` after reading the row.
    func lookup(_ uploadID: String) -> (record: UploadRecord?, generation: UInt64) {
        state.read { ($0.live ? $0.entries[uploadID] : nil, $0.generation) }
    }

    /// The upload `uploadID` if it belongs to asset `assetID` in `workspaceID`: from memory
    /// when cached, else from `read` (the row), kept if pending and nothing was evicted
    /// since the lookup. The presign path of both stores.
    @inline(__always)
    func upload(_ uploadID: String, assetID: Int64, workspaceID: Int64,
                read: () throws -> UploadRecord?) rethrows -> UploadRecord? {
        let (cached, generation) = lookup(uploadID)
        if let cached {
            return cached.assetID == assetID && cached.workspaceID == workspaceID ? cached : nil
        }
        let record = try read()
        if let record { insert(record, readAt: generation) }
        return record
    }

    /// Keeps `record` if it is pending, the gate is open and nothing was evicted since `generation`.
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

    func invalidateAll() { setLive(nil) }

    /// Opens (true) or closes (false) the gate; either way, and with nil, clears what is
    /// held: on PostgreSQL, false when the listener's connection is lost, true once it
    /// LISTENs again (what was read meanwhile may have missed a notification).
    func setLive(_ live: Bool?) {
        state.write {
            $0.generation &+= 1
            $0.entries.removeAll(keepingCapacity: true)
            if let live { $0.live = live }
        }
    }

    var isLive: Bool { state.read { $0.live } }
    var count: Int { state.read { $0.entries.count } }
}
