import Foundation
import Glibc
import Logging
import Synchronization
import Testing
@testable import AssetdApp

/// A log line that `write(2)` takes only in part: on a non-blocking pipe a write longer
/// than the room left goes out in part and then fails with EAGAIN. The line is completed
/// once there is room, or, past the stall limit, given up and ended by the next line.
struct LineLogHandlerPartialWriteTests {
    /// A pipe whose writing end does not block, and a long message (more than the pipe holds).
    private func nonBlockingPipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        try #require(fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK) == 0)
        return (fds[0], fds[1])
    }

    private let message = String(repeating: "m", count: 200_000)

    /// Everything the reading end gives until end of file.
    private func readAll(_ descriptor: Int32) -> [UInt8] {
        var all: [UInt8] = [], buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { return all }
            all.append(contentsOf: buffer.prefix(count))
        }
    }

    @Test func aLineThePipeTakesInPartIsCompletedWhenThereIsRoom() throws {
        let pipe = try nonBlockingPipe()
        defer { close(pipe.read) }
        let received = Mutex<[UInt8]>([])
        let reader = Thread { [self] in
            usleep(50_000)  // the writer fills the pipe and meets EAGAIN first
            let bytes = readAll(pipe.read)
            received.withLock { $0 = bytes }
        }
        reader.start()
        let logger = Logger(label: "assetd", factory: { _ in
            LineLogHandler(label: "assetd", descriptor: pipe.write, stallLimitMilliseconds: 10_000)
        })
        logger.info("\(message)")
        logger.info("after")
        close(pipe.write)
        while reader.isExecuting || !reader.isFinished { usleep(1000) }
        let lines = String(decoding: received.withLock { $0 }, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 3 && lines[2].isEmpty, "two whole lines")
        #expect(lines.first?.hasSuffix("] " + message) == true, "the long line is whole")
        #expect(lines.count > 1 && lines[1].hasSuffix("] after"))
    }

    @Test func aLineThatCannotBeCompletedIsEndedByTheNextOne() throws {
        let pipe = try nonBlockingPipe()
        defer { close(pipe.read) }
        let logger = Logger(label: "assetd", factory: { _ in
            LineLogHandler(label: "assetd", descriptor: pipe.write, stallLimitMilliseconds: 30)
        })
        let clock = ContinuousClock()
        let started = clock.now
        logger.info("\(message)")  // nobody reads: part of it goes, the rest is given up
        #expect(clock.now - started < .seconds(2), "the stall is bounded")
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        let cut = read(pipe.read, &buffer, buffer.count)
        #expect(cut > 0 && cut < message.utf8.count && !buffer.prefix(cut).contains(UInt8(ascii: "\n")), "part of the line went out")
        logger.info("next")
        close(pipe.write)
        let rest = String(decoding: readAll(pipe.read), as: UTF8.self)
        #expect(rest.hasPrefix("\n"), "the cut line is ended before the next one")
        let lines = rest.dropFirst().split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 2 && lines[0].hasSuffix("] next") && lines[1].isEmpty, "the next line is whole: \(rest.prefix(200))")
    }
}
