import Foundation
import Glibc
import Synchronization
import Testing
@testable import AssetdApp

/// The access log's buffers (ASSETD_ACCESS_LOG_BUFFER): lines are held, then written whole
/// when a buffer is full, by the flusher within its interval, and by `flush()` at shutdown.
struct AccessLogBufferTests {
    /// A pipe whose read end does not block: `take()` returns what has been written so far.
    final class Pipe: Sendable {
        let readEnd: Int32
        let writeEnd: Int32

        init() throws {
            var fds: [Int32] = [0, 0]
            try #require(pipe(&fds) == 0)
            for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
            readEnd = fds[0]
            writeEnd = fds[1]
        }

        deinit {
            close(readEnd)
            close(writeEnd)
        }

        func take() -> String {
            var out: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65_536)
            while true {
                let n = read(readEnd, &chunk, chunk.count)
                guard n > 0 else { break }
                out += chunk.prefix(n)
            }
            return String(decoding: out, as: UTF8.self)
        }
    }

    private func line(_ text: String) -> (inout [UInt8]) -> Void {
        { $0.append(contentsOf: (text + "\n").utf8) }
    }

    @Test func linesAreHeldUntilTheBufferIsFullThenWrittenWhole() throws {
        let pipe = try Pipe()
        let buffer = AccessLogBuffer(capacity: 100, flushInterval: .seconds(60), shards: 1, descriptor: pipe.writeEnd)
        let forty = String(repeating: "a", count: 39)  // 40 bytes with its newline
        buffer.append(line(forty))
        buffer.append(line(forty))
        #expect(pipe.take() == "")
        // The third would take the buffer to 120 bytes: the two held go out, it stays.
        buffer.append(line(forty.uppercased()))
        #expect(pipe.take() == forty + "\n" + forty + "\n")
        buffer.flush()
        #expect(pipe.take() == forty.uppercased() + "\n")
        buffer.flush()
        #expect(pipe.take() == "")
    }

    @Test func aLineLongerThanTheBufferIsWrittenAtOnce() throws {
        let pipe = try Pipe()
        let buffer = AccessLogBuffer(capacity: 100, flushInterval: .seconds(60), shards: 1, descriptor: pipe.writeEnd)
        buffer.append(line("held"))
        let long = String(repeating: "x", count: 150)
        buffer.append(line(long))
        #expect(pipe.take() == "held\n" + long + "\n")
    }

    @Test func theFlusherWritesAHeldLineWithinItsInterval() throws {
        let pipe = try Pipe()
        let buffer = AccessLogBuffer(capacity: 4096, flushInterval: .milliseconds(200), shards: 2, descriptor: pipe.writeEnd)
        buffer.startFlusher()
        let start = ContinuousClock.now
        buffer.append(line("soon"))
        var text = ""
        while text.isEmpty, ContinuousClock.now - start < .seconds(5) {
            usleep(10_000)
            text = pipe.take()
        }
        #expect(text == "soon\n")
        // One interval, and room for a loaded host to schedule the flusher.
        #expect(ContinuousClock.now - start < .seconds(2))
    }

    @Test func linesOfManyThreadsArriveWholeAndOnce() throws {
        let pipe = try Pipe()
        let buffer = AccessLogBuffer(capacity: 512, flushInterval: .seconds(60), shards: 3, descriptor: pipe.writeEnd)
        let threads = 8, lines = 200
        let collected = Mutex("")
        let reader = Thread {
            // Drain the pipe while the writers fill it (64 KiB would otherwise stall them).
            while true {
                let text = pipe.take()
                let done = collected.withLock { $0 += text; return $0.hasSuffix("end\n") }
                if done { break }
                usleep(1000)
            }
        }
        reader.start()
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            for number in 0..<lines {
                buffer.append(line("thread=\(thread) line=\(number) " + String(repeating: "p", count: number % 40)))
            }
        }
        buffer.flush()
        Array("end\n".utf8).withUnsafeBytes { LineLogHandler.write(line: $0, to: pipe.writeEnd, stallLimit: 100) }
        let start = ContinuousClock.now
        while !collected.withLock({ $0.hasSuffix("end\n") }), ContinuousClock.now - start < .seconds(10) { usleep(1000) }
        let all = collected.withLock { $0 }.split(separator: "\n").dropLast()
        #expect(all.count == threads * lines)
        #expect(Set(all).count == threads * lines)
        for thread in 0..<threads {
            // Each thread's own lines stay in their order.
            let own = all.filter { $0.hasPrefix("thread=\(thread) ") }.map { Int($0.split(separator: " ")[1].dropFirst(5))! }
            #expect(own == Array(0..<lines))
        }
    }
}
