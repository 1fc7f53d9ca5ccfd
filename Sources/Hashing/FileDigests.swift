import Foundation
import Glibc

/// Digests of a file that is still being written, each computed on a thread of its own
/// that reads back what the writer has added so far (from the page cache).
///
/// MD5 runs at about 750 MB/s and SHA-256 at 1.7 GB/s on one core here: computed inline,
/// they took longer than receiving a 25 MB upload. With them on their own threads the
/// writer only writes, and the digests are ready a moment after the last byte.
///
/// The writer calls `advance(to:)` after each write and `finish()` once at the end;
/// `cancel()` (or deinit) stops the threads, which must end before the descriptor closes.
public final class FileDigests: @unchecked Sendable {
    private let descriptor: Int32
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var written = 0
    private var announced = 0  // `written` when the threads were last woken
    private var closed = false
    private var cancelled = false
    private var results: [[UInt8]?]
    private var failure: String?
    private var running: Int

    /// How much each thread reads back at a time.
    static let chunk = 256 * 1024

    /// Digests whose thread could not be started; `finish()` computes them itself.
    private var unstarted: [(Digest.Algorithm, Int)] = []

    public convenience init(descriptor: Int32, algorithms: [Digest.Algorithm]) {
        self.init(descriptor: descriptor, algorithms: algorithms, threads: true)
    }

    /// `threads: false` (for tests) starts none, as when the process has no more threads.
    init(descriptor: Int32, algorithms: [Digest.Algorithm], threads: Bool) {
        self.descriptor = descriptor
        results = Array(repeating: nil, count: algorithms.count)
        running = algorithms.count
        for (index, algorithm) in algorithms.enumerated()
        where !(threads && Self.spawn({ [self] in follow(algorithm, index) })) {
            unstarted.append((algorithm, index))
        }
    }

    /// Starts `body` on a detached thread of its own; false when none could be made.
    private static func spawn(_ body: @escaping @Sendable () -> Void) -> Bool {
        final class Job: @unchecked Sendable {
            let body: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        let job = Unmanaged.passRetained(Job(body)).toOpaque()
        var thread = pthread_t()
        let started = pthread_create(&thread, nil, { context in
            Unmanaged<Job>.fromOpaque(context!).takeRetainedValue().body()
            return nil
        }, job)
        guard started == 0 else {
            Unmanaged<Job>.fromOpaque(job).release()
            return false
        }
        pthread_detach(thread)
        return true
    }

    deinit { cancel() }

    /// The file now holds `size` bytes. The threads are woken once a `chunk` more is
    /// there (or at `finish`), not after every write: a wake-up for each 64 KiB that the
    /// writer adds cost more than the hashing on a machine with few cores.
    public func advance(to size: Int) {
        condition.lock()
        written = size
        if size - announced >= Self.chunk {
            announced = size
            condition.broadcast()
        }
        condition.unlock()
    }

    /// Waits for every digest of the file's `size` bytes, in the order of `algorithms`.
    public func finish() throws -> [[UInt8]] {
        condition.lock()
        closed = true
        condition.broadcast()
        let late = unstarted
        unstarted = []
        condition.unlock()
        // Without a thread of its own (the process is out of threads), a digest is
        // computed here, over the whole file, now that it is complete.
        for (algorithm, index) in late { follow(algorithm, index) }
        condition.lock()
        defer { condition.unlock() }
        while running > 0 { condition.wait() }
        if let failure { throw FileDigestError(description: failure) }
        return results.map { $0 ?? [] }
    }

    /// Stops the threads and waits for them; the digests are dropped.
    public func cancel() {
        condition.lock()
        cancelled = true
        closed = true
        running -= unstarted.count
        unstarted = []
        condition.broadcast()
        while running > 0 { condition.wait() }
        condition.unlock()
    }

    private func follow(_ algorithm: Digest.Algorithm, _ index: Int) {
        let digest = Digest(algorithm)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.chunk, alignment: 16)
        defer { buffer.deallocate() }
        var offset = 0
        var error: String?
        loop: while true {
            condition.lock()
            while written == offset && !closed { condition.wait() }
            let limit = written, stop = cancelled || (closed && written == offset)
            condition.unlock()
            if stop { break }
            while offset < limit {
                let n = pread(descriptor, buffer.baseAddress, min(Self.chunk, limit - offset), off_t(offset))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    error = "cannot read the spool file back for its digest: \(n < 0 ? String(cString: strerror(errno)) : "it is shorter than written")"
                    break loop
                }
                digest.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                offset += n
            }
        }
        let result = error == nil ? digest.finalize() : nil
        condition.lock()
        results[index] = result
        if let error, failure == nil { failure = error }
        running -= 1
        condition.broadcast()
        condition.unlock()
    }
}

public struct FileDigestError: Error, CustomStringConvertible {
    public let description: String
}
