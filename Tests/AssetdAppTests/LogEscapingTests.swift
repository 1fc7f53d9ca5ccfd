import Logging
import Synchronization
import Testing
@testable import AssetdApp

/// What reaches the log: the handler the process installs must not let input start a line.
struct LogEscapingTests {
    /// Records what it is asked to write.
    final class Recorder: Sendable {
        let lines = Mutex<[(message: String, metadata: Logger.Metadata)]>([])
    }

    struct RecordingHandler: LogHandler {
        let recorder: Recorder
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String,
                 function: String, line: UInt) {
            var all = self.metadata
            all.merge(metadata ?? [:]) { $1 }
            recorder.lines.withLock { $0.append((message.description, all)) }
        }
    }

    @Test func controlCharactersAreEscapedInEveryFieldAtEveryLevel() throws {
        let recorder = Recorder()
        var logger = Logger(label: "test", factory: { _ in Bootstrap.handler(level: "trace", writingTo: RecordingHandler(recorder: recorder)) })
        // A path nginx decoded from %0d%0a, a C1 NEL, an ESC: none may reach the log raw.
        logger[metadataKey: "path"] = "/s3/x\r\nlevel=critical forged"
        logger.debug("request \u{85}next", metadata: ["name\n": .string("a\u{1b}[31m"), "list": .array(["\r"]), "n": "\(7)"])
        logger.critical("plain")
        let lines = recorder.lines.withLock { $0 }
        try #require(lines.count == 2)
        #expect(lines[0].message == "request \\u{85}next")
        #expect(lines[0].metadata["path"] == .string("/s3/x\\r\\nlevel=critical forged"))
        #expect(lines[0].metadata["name\\n"] == .string("a\\u{1b}[31m"))
        #expect(lines[0].metadata["list"] == .array([.string("\\r")]))
        #expect(lines[0].metadata["n"] == .string("7"))
        #expect(lines[1].message == "plain")
        for line in lines {
            let text = line.message + line.metadata.map { "\($0.key)=\($0.value)" }.joined()
            #expect(!text.unicodeScalars.contains { $0.value < 0x20 || (0x7f...0x9f).contains($0.value) })
        }
    }

    @Test func requestIDsKeepOnlyLettersDigitsAndDashes() {
        #expect(AccessLog.safeID("0af7651916cd43dd8448eb211c80319c") == "0af7651916cd43dd8448eb211c80319c")
        #expect(AccessLog.safeID("ab-12\r\nZ<é>`[@") == "ab-12Z")
        #expect(AccessLog.safeID(String(repeating: "a", count: 100)).count == 64)
    }

    @Test func plainTextPassesAsItIs() {
        #expect(EscapingLogHandler.escape("café 1/digital_assets/7.jpg") == "café 1/digital_assets/7.jpg")
    }
}
