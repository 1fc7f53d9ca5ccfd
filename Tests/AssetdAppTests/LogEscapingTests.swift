import Logging
import Glibc
import Testing
@testable import AssetdApp

/// What reaches the log: the handler the process installs must not let input start a line.
struct LogEscapingTests {
    /// The lines the process's handler writes for `body`, read back from a pipe.
    private func lines(_ body: (inout Logger) -> Void) throws -> [Substring] {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        defer { close(fds[0]) }
        var logger = Logger(label: "test", factory: { Bootstrap.handler(label: $0, level: "trace", descriptor: fds[1]) })
        body(&logger)
        close(fds[1])
        var bytes = [UInt8](repeating: 0, count: 65536)
        let count = read(fds[0], &bytes, bytes.count)
        return String(decoding: bytes.prefix(max(0, count)), as: UTF8.self).split(separator: "\n")
    }

    @Test func controlCharactersAreEscapedInEveryFieldAtEveryLevel() throws {
        let lines = try lines { logger in
            // A path nginx decoded from %0d%0a, a C1 NEL, an ESC: none may reach the log raw.
            logger[metadataKey: "path"] = "/s3/x\r\nlevel=critical forged"
            logger.debug("request \u{85}next", metadata: ["name\n": .string("a\u{1b}[31m"), "list": .array(["\r"]), "n": "\(7)",
                                                         "del": "\u{7f}\u{9f}\t"])
            logger.critical("plain")
        }
        try #require(lines.count == 2)
        #expect(lines[0].hasSuffix("] request \\u{85}next"))
        #expect(lines[0].contains(" path=/s3/x\\r\\nlevel=critical forged "))
        #expect(lines[0].contains(" name\\n=a\\u{1b}[31m "))
        #expect(lines[0].contains(" list=[\"\\r\"]") || lines[0].contains(" list=[\\r]"))
        #expect(lines[0].contains(" n=7 "))
        #expect(lines[0].contains(" del=\\u{7f}\\u{9f}\\t "))
        #expect(lines[1].hasSuffix("] plain"))
        for line in lines {
            #expect(!line.unicodeScalars.contains { $0.value < 0x20 || (0x7f...0x9f).contains($0.value) })
        }
    }

    @Test func requestIDsKeepOnlyLettersDigitsAndDashes() {
        #expect(AccessLog.safeID("0af7651916cd43dd8448eb211c80319c") == "0af7651916cd43dd8448eb211c80319c")
        #expect(AccessLog.safeID("ab-12\r\nZ<é>`[@") == "ab-12Z")
        #expect(AccessLog.safeID(String(repeating: "a", count: 100)).count == 64)
    }

    /// The table behind the eight-at-a-time check holds `isSafeIDByte` of every byte value,
    /// and the check answers as `allSatisfy` does for every byte value at every position.
    @Test func safeIDTableAndWordCheckEqualThePredicate() {
        #expect(AccessLog.safeIDTable.utf8CodeUnitCount == 256)
        let table = Array(UnsafeBufferPointer(start: AccessLog.safeIDTable.utf8Start, count: 256))
        for value in 0...255 {
            #expect((table[value] == UInt8(ascii: "1")) == AccessLog.isSafeIDByte(UInt8(value)), "byte \(value)")
            for length in [8, 13, 32, 64] {
                for position in stride(from: 0, to: length, by: 3) {
                    var bytes = [UInt8](repeating: UInt8(ascii: "f"), count: length)
                    bytes[position] = UInt8(value)
                    let expected = bytes.allSatisfy(AccessLog.isSafeIDByte)
                    #expect(bytes.withUnsafeBufferPointer(AccessLog.allSafeIDBytes) == expected, "byte \(value) at \(position) of \(length)")
                    if expected {
                        let id = String(decoding: bytes, as: UTF8.self)
                        #expect(AccessLog.safeID(id) == id, "byte \(value) at \(position)")
                    }
                }
            }
        }
    }

    @Test func plainTextPassesAsItIs() {
        #expect(LineLogHandler.escape("café 1/digital_assets/7.jpg") == "café 1/digital_assets/7.jpg")
        // Latin-1 letters lead with C2 too, and are not control characters.
        #expect(LineLogHandler.escape("\u{a9} \u{bf}") == "\u{a9} \u{bf}")
    }
}
