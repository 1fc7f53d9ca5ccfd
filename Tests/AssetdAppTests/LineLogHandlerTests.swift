import FastCGIServer
import Foundation
import Glibc
import Logging
import Synchronization
import Testing
@testable import AssetdApp

/// The process's own log handler writes what swift-log's StreamLogHandler wrote, byte for
/// byte but the timestamp, so that the log a sysadmin reads keeps its layout.
struct LineLogHandlerTests {
    /// Collects what StreamLogHandler writes.
    final class Collected: TextOutputStream, @unchecked Sendable {
        private let text = Mutex("")
        func write(_ string: String) { text.withLock { $0 += string } }
        var value: String { text.withLock { $0 } }
    }

    /// What `log` writes through a pipe, one event.
    private func written(_ body: (inout Logger) -> Void, metadata: Logger.Metadata = [:]) throws -> String {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        defer { close(fds[0]) }
        var handler = LineLogHandler(label: "assetd", descriptor: fds[1])
        handler.metadata = metadata
        var logger = Logger(label: "assetd", factory: { _ in handler })
        logger.logLevel = .trace
        body(&logger)
        close(fds[1])
        var bytes = [UInt8](repeating: 0, count: 4096)
        let count = read(fds[0], &bytes, bytes.count)
        return String(decoding: bytes.prefix(max(0, count)), as: UTF8.self)
    }

    private func streamWritten(_ body: (inout Logger) -> Void, metadata: Logger.Metadata = [:]) -> String {
        let collected = Collected()
        var handler = StreamLogHandler(label: "assetd", stream: collected, metadataProvider: nil)
        handler.metadata = metadata
        var logger = Logger(label: "assetd", factory: { _ in handler })
        logger.logLevel = .trace
        body(&logger)
        return collected.value
    }

    /// The line without its timestamp (the two handlers may straddle a second).
    private func untimed(_ line: String) -> Substring {
        line.drop(while: { $0 != " " })
    }

    @Test(arguments: [
        Logger.Metadata(),
        ["route": "/s3/get-upload-url", "status": "200", "duration_ms": "0.21", "asset": "17"],
        ["list": .array(["a", "b"]), "map": .dictionary(["k": "v"]), "n": .stringConvertible(42)],
    ])
    func aLineIsLaidOutAsStreamLogHandlerLaidItOut(explicit: Logger.Metadata) throws {
        let log: (inout Logger) -> Void = { $0.info("request", metadata: explicit) }
        let base: Logger.Metadata = ["host": "a1", "route": "overridden"]
        let ours = try written(log, metadata: base)
        let theirs = streamWritten(log, metadata: base)
        #expect(untimed(ours) == untimed(theirs))
        #expect(ours.hasSuffix("request\n"))
    }

    @Test func theTimestampIsLocalTimeToTheSecond() throws {
        let line = try written { $0.warning("x") }
        let stamp = String(line.prefix(while: { $0 != " " }))
        // 2026-12-01T05:38:00+0000
        #expect(stamp.count == 24)
        #expect(stamp.utf8.enumerated().allSatisfy { index, byte in
            switch index {
            case 4, 7: byte == UInt8(ascii: "-")
            case 10: byte == UInt8(ascii: "T")
            case 13, 16: byte == UInt8(ascii: ":")
            case 19: byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-")
            default: (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            }
        })
        #expect(line.hasSuffix(" warning assetd: [AssetdAppTests] x\n"))
    }

    @Test func aLineFromEachOfManyThreadsArrivesWhole() throws {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        let (readEnd, writeEnd) = (fds[0], fds[1])
        let handler = LineLogHandler(label: "assetd", descriptor: writeEnd)
        let threads = 8, lines = 200
        let reader = Mutex<[UInt8]>([])
        let done = Atomic(false)
        let drain = Thread {
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = read(readEnd, &buffer, buffer.count)
                if count <= 0 { break }
                reader.withLock { $0.append(contentsOf: buffer.prefix(count)) }
            }
            done.store(true, ordering: .releasing)
        }
        drain.start()
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            let logger = Logger(label: "assetd", factory: { _ in handler })
            for index in 0..<lines {
                logger.info("line", metadata: ["thread": "\(thread)", "index": "\(index)", "pad": "\(String(repeating: "x", count: 100))"])
            }
        }
        close(writeEnd)
        while !done.load(ordering: .acquiring) { usleep(1000) }
        close(readEnd)
        let text = String(decoding: reader.withLock { $0 }, as: UTF8.self)
        let all = text.split(separator: "\n")
        #expect(all.count == threads * lines)
        #expect(all.allSatisfy { $0.hasSuffix("] line") && $0.contains(" index=") && $0.contains(" thread=") })
    }

    /// The access log writes its line straight into bytes when its logger's handler is a
    /// LineLogHandler: the same line, byte for byte but the timestamp, as `logger.info`
    /// with the metadata of `AccessLog.line`, for every field present or absent and for
    /// input that must be escaped or filtered.
    @Test(arguments: [
        ("GET", "/s3/get-upload-url", "workspaceId=1&assetId=42&UploadId=u&PartNumber=7", ["x-request-id": "0af7651916cd43dd8448eb211c80319c"]),
        ("PO\nST", "/x", "", [:]),
        ("GET", "/api/assets/{assetId}", "workspaceId=12345678901234567890123&assetId=x1", ["x-request-id": "ab-12\r\nZ<é>`[@"]),
        ("DELETE", "unmatched", "assetId=7&workspaceId=%0A", ["x-request-id": ""]),
        // The ids read from the query's bytes: escaped digits decoded, `+` a space, the
        // first of a repeated name, a name without `=`, an escaped name.
        ("GET", "/s3/get-upload-url", "workspaceId=%31%32&assetId=4%32", [:]),
        ("GET", "/s3/get-upload-url", "workspaceId=+1&assetId=1+", [:]),
        ("GET", "/s3/get-upload-url", "workspaceId&workspaceId=5&assetId=&assetId=6", [:]),
        ("GET", "/s3/get-upload-url", "workspace%49d=8&asset%49d=9&workspaceId=123456789012345678901", [:]),
    ] as [(String, String, String, [String: String])])
    func theAccessLineIsTheLineLoggerInfoWrites(fields: (String, String, String, [String: String])) throws {
        let (method, route, query, headers) = fields
        let request = Request(method: method, path: "/p", queryString: query, headers: headers)
        let duration = Duration.microseconds(12_345)
        let direct = try written { logger in
            let handler = logger.handler as! LineLogHandler
            handler.writeLine(level: .info, source: AccessLog.source, message: "request") { line in
                AccessLog.appendLine(request, route: route, status: 201, duration: duration, to: &line)
            }
        }
        let viaLogger = try written { logger in
            logger.info("request", metadata: AccessLog.line(request, route: route, status: 201, duration: duration), source: AccessLog.source)
        }
        // The access log's own path: the level, source and message made once (`lineParts`),
        // the thread's spare line buffer reused: a longer line, then this one twice.
        let viaParts = try written { logger in
            let handler = logger.handler as! LineLogHandler
            let parts = handler.lineParts(level: .info, source: AccessLog.source, message: "request")
            handler.writeLine(parts) { $0.append(contentsOf: Array(repeating: UInt8(ascii: "x"), count: 300)) }
            for _ in 0..<2 {
                handler.writeLine(parts) { line in
                    AccessLog.appendLine(request, route: route, status: 201, duration: duration, to: &line)
                }
            }
        }
        let partsLines = viaParts.split(separator: "\n", omittingEmptySubsequences: false).map { untimed(String($0)) + "\n" }
        #expect(partsLines.count == 4 && partsLines[0].hasSuffix(String(repeating: "x", count: 300) + " [AssetdApp] request\n"))
        #expect(untimed(direct) == untimed(viaLogger))
        #expect(partsLines.count == 4 && partsLines[1] == untimed(viaLogger) && partsLines[2] == untimed(viaLogger))
        #expect(direct.hasSuffix(" [AssetdApp] request\n"))
        #expect(direct.contains(" duration_ms=12.345 "))
    }

    /// Milliseconds as bytes are the text `milliseconds` gives.
    @Test(arguments: [0, 1, 999, 1000, 1001, 12_345, 60_000_000, 123_456_789])
    func millisecondsAsBytes(micros: Int64) {
        let duration = Duration.microseconds(micros)
        var bytes: [UInt8] = []
        duration.appendMilliseconds(to: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == duration.milliseconds)
    }
}
