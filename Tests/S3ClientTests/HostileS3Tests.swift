import Foundation
import Glibc
import Synchronization
import Testing
@testable import S3Client

/// What assetd does with an S3 endpoint that answers as an attacker would (attacker review
/// 11: M1, L1, L2). Each server gives up after `giveUpAfter` requests, so that a client
/// without the bound under test ends (and fails) rather than hangs.
@Suite(.serialized)
struct HostileS3Tests {
    static let giveUpAfter = 50

    /// A ListBucketResult page.
    static func page(keys: [String], truncated: Bool, token: String?) -> HostileS3Server.Answer {
        var xml = "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>assets</Name>"
        xml += "<KeyCount>\(keys.count)</KeyCount><IsTruncated>\(truncated)</IsTruncated>"
        if let token { xml += "<NextContinuationToken>\(token)</NextContinuationToken>" }
        for key in keys { xml += "<Contents><Key>\(key)</Key><Size>1</Size></Contents>" }
        return .xml(xml + "</ListBucketResult>")
    }

    /// A server whose `n`th answer (from 1) is `page(n)` until it gives up with a last page.
    func listing(_ page: @escaping @Sendable (Int) -> HostileS3Server.Answer) throws -> HostileS3Server {
        let count = Mutex(0)
        return try HostileS3Server { _ in
            let n = count.withLock { $0 += 1; return $0 }
            return n < Self.giveUpAfter ? page(n) : Self.page(keys: [], truncated: false, token: nil)
        }
    }

    func expectMalformed(_ body: () throws -> Any, _ comment: Comment) {
        #expect(comment) { _ = try body() } throws: { error in
            guard case .malformed? = error as? S3Error else { return false }
            return true
        }
    }

    // MARK: - M1: ListObjectsV2, whose keys are deleted

    @Test func emptyTruncatedPagesWithTheSameTokenStop() throws {
        let server = try listing { _ in Self.page(keys: [], truncated: true, token: "same") }
        defer { server.stop() }
        expectMalformed({ try server.client().listKeys(prefix: "1/versions/7/") }, "the same token again is no progress")
        #expect(server.received.count == 2)
    }

    @Test func anEmptyTruncatedPageWithANewTokenIsFollowed() throws {
        let server = try listing { n in
            n == 1 ? Self.page(keys: [], truncated: true, token: "next/1")
                : Self.page(keys: ["1/versions/7/v2.png"], truncated: false, token: nil)
        }
        defer { server.stop() }
        #expect(try server.client().listKeys(prefix: "1/versions/7/") == ["1/versions/7/v2.png"])
        #expect(server.received.count == 2)
    }

    @Test func aRepeatedContinuationTokenStops() throws {
        let server = try listing { n in Self.page(keys: ["1/versions/7/v\(n).png"], truncated: true, token: n % 2 == 0 ? "A" : "B") }
        defer { server.stop() }
        expectMalformed({ try server.client().listKeys(prefix: "1/versions/7/") }, "tokens going round in a cycle")
        #expect(server.received.count == 3)
    }

    @Test func pagesAreBoundedByTheLimit() throws {
        let server = try listing { n in Self.page(keys: ["1/versions/7/v\(n).png"], truncated: true, token: "t\(n)") }
        defer { server.stop() }
        expectMalformed({ try server.client().listKeys(prefix: "1/versions/7/", limit: 2000) }, "a page a key, never ending")
        #expect(server.received.count == 4, "2,000 keys need 2 pages, and 2 more are allowed")
    }

    /// Attack 2: a server ignoring `prefix` made a tenant's delete send other workspaces'
    /// keys to DeleteObjects.
    @Test func keysOutsideThePrefixAreRefused() throws {
        // The last is another asset's: not under 1/versions/7/ thanks to the slash.
        let foreign = ["2/digital_assets/9.jpg", "3/versions/4/v2.png", "1/versions/70/v1.png"]
        let server = try listing { n in Self.page(keys: ["1/versions/7/v2.png", foreign[(n - 1) % 3]], truncated: false, token: nil) }
        defer { server.stop() }
        let s3 = server.client()
        for key in foreign {
            expectMalformed({ try s3.listKeys(prefix: "1/versions/7/") }, "\(key) is outside the prefix")
        }
    }

    @Test func anHonestListingIsFollowedToItsEnd() throws {
        let server = try HostileS3Server { request in
            request.query("continuation-token") == "next/1"
                ? Self.page(keys: ["1/versions/7/v3.png"], truncated: false, token: nil)
                : Self.page(keys: ["1/versions/7/v1.png", "1/versions/7/v2.png"], truncated: true, token: "next/1")
        }
        defer { server.stop() }
        #expect(try server.client().listKeys(prefix: "1/versions/7/") == ["1/versions/7/v1.png", "1/versions/7/v2.png", "1/versions/7/v3.png"])
        #expect(try server.client().listKeys(prefix: "1/versions/7/", limit: 2) == ["1/versions/7/v1.png", "1/versions/7/v2.png"])
        #expect(server.received.map { $0.query("prefix") } == ["1/versions/7/", "1/versions/7/", "1/versions/7/"])
    }

    // MARK: - L1: S3's error code as a metrics label

    @Test func unknownCodesShareOneLabel() throws {
        let count = Mutex(0)
        let server = try HostileS3Server { _ in
            let n = count.withLock { $0 += 1; return $0 }
            let huge = String(repeating: "x", count: 1 << 20)
            return .xml("<Error><Code>Unique\(n)-\(huge)</Code><Message>\(huge)</Message><RequestId>\(huge)</RequestId></Error>", status: 400)
        }
        defer { server.stop() }
        let labels = Mutex<[String]>([])
        let s3 = server.client { _, error, _ in labels.withLock { $0.append(error?.label ?? "none") } }
        for _ in 0..<5 {
            #expect { try s3.getObject(key: "1/digital_assets/5.jpg") } throws: { error in
                let description = "\(error)"
                return (error as? S3Error)?.label == "Other" && description.count < 600
            }
        }
        #expect(labels.withLock { $0 } == Array(repeating: "Other", count: 5))
    }

    /// The label of an error S3 answered with `code`.
    func label(_ code: String) -> String {
        S3Error.service(S3Error.Code(code), status: 400, message: "", requestID: nil).label
    }

    @Test func labelsAreNamedCodesStatusesOrOther() {
        #expect(label("NoSuchKey") == "NoSuchKey")
        #expect(label("InvalidAccessKeyId") == "InvalidAccessKeyId", "an operator watches for it (key rotation)")
        #expect(label("HTTP503") == "HTTP503")
        #expect(label("HTTP5030") == "Other")
        #expect(label("SomethingNew") == "Other")
        #expect(S3Error.Code("SomethingNew").description == "SomethingNew", "the log keeps what S3 said")
        let hostile = S3Error.Code("Evil\u{1b}[31m" + String(repeating: "é", count: 100))
        #expect(hostile.description.count == 64 + 1, "64 characters and …")
        #expect(hostile.description.hasPrefix("Evil?[31m??"))
        #expect(S3Error.service(.other("x"), status: 400, message: "", requestID: nil).label == "Other")
    }

    // MARK: - L2: bodies longer than what was asked for

    @Test func aDownloadStopsAtTheExpectedSize() throws {
        for unsized in [true, false] {
            let server = try HostileS3Server { _ in
                HostileS3Server.Answer(body: [UInt8](repeating: 0x41, count: 8 << 20), unsized: unsized)
            }
            defer { server.stop() }
            let path = NSTemporaryDirectory() + "assetd-hostile-\(UUID().uuidString)"
            let descriptor = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o600)
            defer { close(descriptor); unlink(path) }
            expectMalformed({ try server.client().getObject(key: "1/digital_assets/5.jpg", toFile: descriptor, expectedSize: 1000) },
                            "8 MiB for an object of 1,000 bytes")
            var status = stat()
            fstat(descriptor, &status)
            #expect(status.st_size <= 1000, "written past the expected size: \(status.st_size)")
            #expect(server.received.count == 1, "not retried")
        }
    }

    @Test func aDownloadOfTheExpectedSizeIsWhole() throws {
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0) }
        let server = try HostileS3Server { _ in HostileS3Server.Answer(body: bytes, unsized: true) }
        defer { server.stop() }
        let path = NSTemporaryDirectory() + "assetd-hostile-\(UUID().uuidString)"
        let descriptor = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o600)
        defer { close(descriptor); unlink(path) }
        #expect(try server.client().getObject(key: "1/digital_assets/5.jpg", toFile: descriptor, expectedSize: 1000) == 1000)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(bytes))
    }

    /// A server ignoring Range made each content check hold up to 64 MiB.
    @Test func aRangedGetKeepsToItsRange() throws {
        let server = try HostileS3Server { _ in HostileS3Server.Answer(body: [UInt8](repeating: 0x42, count: 4 << 20)) }
        defer { server.stop() }
        expectMalformed({ try server.client().getObject(key: "1/uploads/5.jpg", range: 0...65535) }, "4 MiB for 64 KiB asked")
        #expect(server.received.first?.headers["range"] == "bytes=0-65535")
        #expect(server.received.count == 1, "not retried")
    }

    @Test func aRangedGetTakesA206OrAShortObjectFromZero() throws {
        let server = try HostileS3Server { request in
            request.headers["range"] == "bytes=0-65535"
                ? HostileS3Server.Answer(body: Array("short".utf8)) // an object shorter than the range, whole
                : HostileS3Server.Answer(status: request.headers["range"] == "bytes=10-19" ? 206 : 200, body: Array("0123456789".utf8))
        }
        defer { server.stop() }
        let s3 = server.client()
        #expect(try s3.getObject(key: "k", range: 0...65535) == Array("short".utf8))
        #expect(try s3.getObject(key: "k", range: 10...19) == Array("0123456789".utf8))
        expectMalformed({ try s3.getObject(key: "k", range: 20...29) }, "a 200 to a range from 20 is not those bytes")
    }
}
