import CSystem
import Foundation
import Synchronization

/// Access-log lines held in memory a worker at a time and written in batches, as nginx's
/// `access_log ... buffer=32k flush=1s` does: the line a request would write with its own
/// `write(2)` goes into its worker's buffer instead, and a buffer is written (one
/// `write(2)`, whole lines only) when the next line would take it past `capacity` bytes,
/// by a flusher thread every `flushInterval`, and by `flush()` at shutdown. So a line
/// reaches the log within `flushInterval` (plus a write), and after SIGTERM's drain.
///
/// Lines of different workers may reach the log out of time order, by up to
/// `flushInterval` (each carries its own timestamp); lines other than the access log's
/// (warnings, errors) are written at once, as before. A process killed with SIGKILL, or
/// one that crashes, loses the lines still held: at most `flushInterval`'s worth.
/// A batch of up to 4096 bytes (PIPE_BUF) is written whole to a pipe (journald's
/// standard error is a stream socket, where Linux keeps a write of that size in one
/// piece too), so the default `capacity` is 4096.
public final class AccessLogBuffer: Sendable {
    let capacity: Int
    let flushInterval: Duration
    private let descriptor: Int32
    private let stallLimit: Int32
    private let shards: [Shard]

    private final class Shard: Sendable {
        let lines = Mutex<[UInt8]>([])
    }

    /// `shards`: one a worker thread (a thread takes `thread slot % shards`, so two
    /// threads only share a lock when there are more threads than shards).
    init(capacity: Int, flushInterval: Duration, shards: Int, descriptor: Int32 = 2, stallLimitMilliseconds: Int32 = 100) {
        precondition(capacity > 0 && shards > 0)
        self.capacity = capacity
        self.flushInterval = flushInterval
        self.descriptor = descriptor
        stallLimit = stallLimitMilliseconds
        self.shards = (0..<shards).map { _ in Shard() }
    }

    /// Appends one line (`build` writes it, newline included) to the calling thread's
    /// buffer; writes what the buffer held first when the line would take it past
    /// `capacity`, and a line longer than `capacity` at once.
    func append(_ build: (inout [UInt8]) -> Void) {
        let shard = shards[Int(assetd_system_thread_slot()) % shards.count]
        shard.lines.withLock { lines in
            if lines.capacity < capacity { lines.reserveCapacity(capacity) }
            let held = lines.count
            build(&lines)
            guard lines.count > capacity else { return }
            if held > 0 {
                lines.withUnsafeBytes { write(UnsafeRawBufferPointer(rebasing: $0[..<held])) }
                lines.removeFirst(held)
            }
            if lines.count > capacity {
                lines.withUnsafeBytes { write($0) }
                lines.removeAll(keepingCapacity: true)
            }
        }
    }

    /// Writes every line held; the flusher calls it each `flushInterval`, and the
    /// shutdown once the requests have drained.
    func flush() {
        for shard in shards {
            shard.lines.withLock { lines in
                guard !lines.isEmpty else { return }
                lines.withUnsafeBytes { write($0) }
                lines.removeAll(keepingCapacity: true)
            }
        }
    }

    /// Starts the thread that flushes every `flushInterval`, for the life of the process.
    func startFlusher() {
        let thread = Thread { [self] in
            while true {
                Thread.sleep(forTimeInterval: Double(flushInterval.components.seconds)
                    + Double(flushInterval.components.attoseconds) / 1e18)
                flush()
            }
        }
        thread.name = "access-log-flush"
        thread.start()
    }

    private func write(_ bytes: UnsafeRawBufferPointer) {
        LineLogHandler.write(line: bytes, to: descriptor, stallLimit: stallLimit)
    }
}
