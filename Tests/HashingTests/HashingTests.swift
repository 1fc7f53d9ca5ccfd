import Dispatch
import Foundation
import Glibc
import Testing
@testable import Hashing

struct HashingTests {
    @Test func sha256KnownAnswers() {
        #expect(Encoding.hex(SHA256.hash(Array("".utf8))) == SHA256.emptyHex)
        #expect(Encoding.hex(SHA256.hash(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    /// `writeHex` four bytes at a time against a digit at a time from the table, for every
    /// byte value at every position of a word, and every length from 0 to 40 (the tail).
    @Test func hexFourBytesAtATimeEqualsTheTable() {
        func byTable(_ bytes: [UInt8]) -> String {
            let digits = Array("0123456789abcdef".utf8)
            return String(decoding: bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0x0f)]] }, as: UTF8.self)
        }
        func written(_ bytes: [UInt8]) -> String {
            var out = [UInt8](repeating: 0xee, count: 2 * bytes.count + 8)
            bytes.withUnsafeBytes { raw in out.withUnsafeMutableBufferPointer { Encoding.writeHex(raw: raw, to: $0.baseAddress!) } }
            #expect(out[(2 * bytes.count)...].allSatisfy { $0 == 0xee }, "nothing written past 2n")
            return String(decoding: out[..<(2 * bytes.count)], as: UTF8.self)
        }
        for value in 0...255 {
            for position in 0..<9 {
                var bytes = [UInt8](repeating: UInt8(truncatingIfNeeded: value &* 7 &+ 3), count: 9)
                bytes[position] = UInt8(value)
                #expect(written(bytes) == byTable(bytes))
                #expect(Encoding.hex(bytes) == byTable(bytes))
            }
        }
        for length in 0...40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            #expect(written(bytes) == byTable(bytes))
            var appended: [UInt8] = [0x2a]
            bytes.withUnsafeBytes { Encoding.appendHex(raw: $0, to: &appended) }
            #expect(appended == [0x2a] + Array(byTable(bytes).utf8))
        }
    }

    @Test func streamingEqualsOneShot() {
        let data = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let digest = Digest(.sha256)
        for chunk in stride(from: 0, to: data.count, by: 777) {
            digest.update(data[chunk..<min(chunk + 777, data.count)])
        }
        #expect(digest.finalize() == SHA256.hash(data))
    }

    @Test func md5KnownAnswer() {
        let md5 = Digest(.md5)
        md5.update(Array("The quick brown fox jumps over the lazy dog".utf8))
        #expect(Encoding.hex(md5.finalize()) == "9e107d9d372bb6826bd81d3542a419d6")
    }

    /// RFC 4231 test case 2.
    @Test func hmacRFC4231() {
        let mac = HMAC.sha256(key: Array("Jefe".utf8), message: "what do ya want for nothing?")
        #expect(Encoding.hex(mac) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test func base64RoundTrips() {
        #expect(Encoding.base64(Array("foobar".utf8)) == "Zm9vYmFy")
        #expect(Encoding.base64(Array("fooba".utf8)) == "Zm9vYmE=")
        #expect(Encoding.base64(Array("foob".utf8)) == "Zm9vYg==")
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 97 &+ 250) }
            #expect(Encoding.decodeBase64URL(Substring(Encoding.base64URL(bytes))) == bytes)
        }
        #expect(Encoding.decodeBase64URL("ab=c") == nil)
        #expect(Encoding.decodeBase64URL("a") == nil)
    }

    @Test func constantTimeCompare() {
        #expect(constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!constantTimeEquals([1, 2], [1, 2, 3]))
    }
}

struct HMACKeyTests {
    /// RFC 4231 cases 1, 2 and 6 (a 131-byte key, hashed first), against the one-shot HMAC.
    @Test func preparedKeyMatchesOneShotAndRFC4231() {
        let cases: [([UInt8], [UInt8], String)] = [
            ([UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (Array("Jefe".utf8), Array("what do ya want for nothing?".utf8), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            ([UInt8](repeating: 0xaa, count: 131), Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
             "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        ]
        for (key, message, expected) in cases {
            let prepared = HMACKey(key)
            let mac = message.withUnsafeBytes { prepared.authenticate($0) }
            #expect(Encoding.hex(mac) == expected)
            #expect(mac == HMAC.sha256(key: key, message: message))
            // The prepared states are not consumed: a second message gives its own answer.
            #expect(prepared.authenticate("x") == HMAC.sha256(key: key, message: "x"))
        }
    }
}

/// The digest threads are joined by `finish()` and `cancel()`, which wait on a condition:
/// each such call runs through `bounded`, so that a thread that never ends fails its test
/// instead of hanging the run. The suite's time limit is the second line of defence: it
/// reports, but cannot stop a thread blocked outside Swift concurrency.
@Suite(.timeLimit(.minutes(1)))
struct FileDigestsTests {
    func temporaryFile() -> Int32 {
        var template = Array("/tmp/assetd-digest-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        return fd
    }

    func append(_ bytes: [UInt8], to fd: Int32) {
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        precondition(written == bytes.count, "short write to the test file")
    }

    @Test func followsAFileWhileItIsWritten() throws {
        let fd = temporaryFile()
        defer { close(fd) }
        let digests = FileDigests(descriptor: fd, algorithms: [.sha256, .md5])
        var all: [UInt8] = []
        // Uneven writes, some larger than the threads' read size.
        for (i, length) in [1, 4095, 300_000, 7, 1_048_576, 65_536, 3].enumerated() {
            let chunk = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) }
            append(chunk, to: fd)
            all += chunk
            digests.advance(to: all.count)
        }
        let both = try #require(try bounded { try digests.finish() })
        #expect(both[0] == SHA256.hash(all))
        let md5 = Digest(.md5)
        md5.update(all)
        #expect(both[1] == md5.finalize())
    }

    @Test func anEmptyFileHasTheEmptyDigests() throws {
        let fd = temporaryFile()
        defer { close(fd) }
        let digests = FileDigests(descriptor: fd, algorithms: [.sha256])
        let both = try #require(try bounded { try digests.finish() })
        #expect(both.map(Encoding.hex) == [SHA256.emptyHex])
    }

    @Test func aFileShorterThanAnnouncedIsAnError() throws {
        let fd = temporaryFile()
        defer { close(fd) }
        append([UInt8](repeating: 1, count: 10), to: fd)
        let digests = FileDigests(descriptor: fd, algorithms: [.md5])
        digests.advance(to: 20)
        let outcome = try #require(try bounded { Result { try digests.finish() } })
        #expect(throws: FileDigestError.self) { try outcome.get() }
    }

    /// With no thread to run on, the digests are computed by `finish()` itself.
    @Test func withoutThreadsFinishComputesThem() throws {
        let fd = temporaryFile()
        defer { close(fd) }
        let bytes = (0..<700_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let digests = FileDigests(descriptor: fd, algorithms: [.md5, .sha256], threads: false)
        append(bytes, to: fd)
        digests.advance(to: bytes.count)
        let both = try #require(try bounded { try digests.finish() })
        let md5 = Digest(.md5)
        md5.update(bytes)
        #expect(both == [md5.finalize(), SHA256.hash(bytes)])
        // And cancel does not wait for threads that were never started.
        let unstarted = FileDigests(descriptor: fd, algorithms: [.md5], threads: false)
        #expect(try bounded(5) { unstarted.cancel() } != nil)
    }

    /// `cancel()` ends threads that wait for bytes, and returns only once every one has
    /// ended: `finish()` afterwards finds none running and returns at once.
    @Test func cancelStopsThreadsThatAreWaiting() throws {
        let fd = temporaryFile()
        defer { close(fd) }
        let digests = FileDigests(descriptor: fd, algorithms: [.sha256, .md5])
        digests.advance(to: 0)
        #expect(try bounded { digests.cancel() } != nil)
        #expect(try bounded { digests.cancel() } != nil)  // and again, as deinit will
        #expect(try bounded(5) { try digests.finish() }?.count == 2)
    }

    /// The same for threads that are reading back a file larger than their read size.
    @Test func cancelStopsThreadsThatAreReading() throws {
        let fd = temporaryFile()
        defer { close(fd) }
        let digests = FileDigests(descriptor: fd, algorithms: [.sha256, .md5])
        let bytes = (0..<(8 * FileDigests.chunk + 5)).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        append(bytes, to: fd)
        digests.advance(to: bytes.count)
        #expect(try bounded { digests.cancel() } != nil)
        #expect(try bounded(5) { try digests.finish() }?.count == 2)
    }
}

/// Holds a result across threads; written before the semaphore is signalled, read after.
private final class Outcome<Value: Sendable>: @unchecked Sendable {
    var value: Result<Value, any Error>?
}

/// `body` run on a thread of its own, waited for at most `seconds`: its result, or nil
/// with a recorded issue when it has not returned by then (the thread is left behind).
func bounded<Value: Sendable>(
    _ seconds: Double = 30, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: @escaping @Sendable () throws -> Value
) throws -> Value? {
    let outcome = Outcome<Value>(), done = DispatchSemaphore(value: 0)
    Thread {
        outcome.value = Result { try body() }
        done.signal()
    }.start()
    guard done.wait(timeout: .now() + seconds) == .success else {
        Issue.record("did not return within \(seconds) s", sourceLocation: sourceLocation)
        return nil
    }
    return try outcome.value!.get()
}
