import Locking

/// Pending uploads by uploadId, kept in memory for the part-URL routes: a browser asks
/// for a URL per part, so one upload is looked up again and again while it lasts.
///
/// Every change to an upload goes through `SQLiteRecordStore`, which invalidates the entry
/// once its transaction has committed. A generation counter closes the race with a
/// lookup that read the row before that commit: its insert is dropped when any
/// invalidation happened since it began. The cache therefore assumes that one assetd
/// process owns the database file, as the systemd unit runs it; a second process would
/// see another's abort late, and S3 itself would still refuse parts of an aborted upload.
final class UploadCache: Sendable {
    private struct State {
        var entries: [String: UploadRecord] = [:]
        var generation: UInt64 = 0
    }

    private let state = ReadWriteLocked(State())
    private let capacity: Int

    init(capacity: Int = 8192) { self.capacity = capacity }

    /// The cached pending upload, or the generation to pass to `insert` after a read.
    func lookup(_ uploadID: String) -> (record: UploadRecord?, generation: UInt64) {
        state.read { ($0.entries[uploadID], $0.generation) }
    }

    /// Keeps `record` if it is pending and nothing was invalidated since `generation`.
    func insert(_ record: UploadRecord, readAt generation: UInt64) {
        guard record.status == .pending else { return }
        state.write {
            guard $0.generation == generation else { return }
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

    func invalidateAll() {
        state.write {
            $0.generation &+= 1
            $0.entries.removeAll(keepingCapacity: true)
        }
    }

    var count: Int { state.read { $0.entries.count } }
}
