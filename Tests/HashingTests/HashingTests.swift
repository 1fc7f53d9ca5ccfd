import Testing
import Glibc
@testable import Hashing

struct HashingTests {
    @Test func sha256KnownAnswers() {
        #expect(Encoding.hex(SHA256.hash(Array("".utf8))) == SHA256.emptyHex)
        #expect(Encoding.hex(SHA256.hash(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
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

struct FileDigestsTests {
    func temporaryFile() -> Int32 {
        var template = Array("/tmp/assetd-digest-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        return fd
    }

    @Test func followsAFileWhileItIsWritten() throws {
        let fd = temporaryFile()
        defer { close(fd) }
        let digests = FileDigests(descriptor: fd, algorithms: [.sha256, .md5])
        var all: [UInt8] = []
        var size = 0
        // Uneven writes, some larger than the threads' read size.
        for (i, length) in [1, 4095, 300_000, 7, 1_048_576, 65_536, 3].enumerated() {
            let chunk = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) }
            chunk.withUnsafeBytes { _ = write(fd, $0.baseAddress, $0.count) }
            all += chunk
            size += length
            digests.advance(to: size)
        }
        let both = try digests.finish()
        #expect(both[0] == SHA256.hash(all))
        let md5 = Digest(.md5)
        md5.update(all)
        #expect(both[1] == md5.finalize())
    }

    @Test func anEmptyFileHasTheEmptyDigests() throws {
        let fd = temporaryFile()
        defer { close(fd) }
        let both = try FileDigests(descriptor: fd, algorithms: [.sha256]).finish()
        #expect(Encoding.hex(both[0]) == SHA256.emptyHex)
    }

    @Test func aFileShorterThanAnnouncedIsAnError() {
        let fd = temporaryFile()
        defer { close(fd) }
        _ = [UInt8](repeating: 1, count: 10).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let digests = FileDigests(descriptor: fd, algorithms: [.md5])
        digests.advance(to: 20)
        #expect(throws: FileDigestError.self) { try digests.finish() }
    }

    /// With no thread to run on, the digests are computed by `finish()` itself.
    @Test func withoutThreadsFinishComputesThem() throws {
        let fd = temporaryFile()
        defer { close(fd) }
        let bytes = (0..<700_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let digests = FileDigests(descriptor: fd, algorithms: [.md5, .sha256], threads: false)
        bytes.withUnsafeBytes { _ = write(fd, $0.baseAddress, $0.count) }
        digests.advance(to: bytes.count)
        let both = try digests.finish()
        let md5 = Digest(.md5)
        md5.update(bytes)
        #expect(both == [md5.finalize(), SHA256.hash(bytes)])
        FileDigests(descriptor: fd, algorithms: [.md5], threads: false).cancel()  // and cancel does not wait for them
    }

    @Test func cancelStopsThreadsThatAreWaiting() {
        let fd = temporaryFile()
        defer { close(fd) }
        let digests = FileDigests(descriptor: fd, algorithms: [.sha256, .md5])
        digests.advance(to: 0)
        digests.cancel()  // returns only once both threads have ended
        digests.cancel()  // and again, as deinit will
    }
}
