import Foundation
import Glibc
import Logging
import S3Client
import Testing
@testable import AssetdApp

extension FakeHTTP: ConnectionProbing {
    /// Connections are real (loopback): only Typesense's answers are scripted.
    func connect(url: String, timeout: Duration) throws(HTTPClient.Failure) {
        try HTTPClient().connect(url: url, timeout: timeout)
    }
}

/// check-config's lines for the event sinks: webhook receivers connected to (nothing sent),
/// Typesense's collection read with the key; no key, secret or query in any line.
struct ConfigCheckSinkTests {
    let base = ["AWS_BUCKET": "b", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s",
                "ASSETD_JWT_SECRET": String(repeating: "j", count: 32), "ASSETD_DATABASE": "/tmp/x.sqlite"]

    func lines(_ settings: [String: String], _ http: FakeHTTP = FakeHTTP()) throws -> [ConfigCheck.Item] {
        let check = ConfigCheck(environment: [:], file: nil, logger: Logger(label: "test"))
        return check.sinks(try Configuration(environment: base.merging(settings) { $1 }), http: http)
    }

    /// A TCP port on 127.0.0.1 that listens (the descriptor, to close) and one that nobody listens on.
    func ports() throws -> (listening: UInt16, descriptor: Int32, closed: UInt16) {
        func bound() throws -> (Int32, UInt16) {
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var size = socklen_t(MemoryLayout<sockaddr_in>.size)
            let done = withUnsafeMutablePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(descriptor, $0, size) == 0 && getsockname(descriptor, $0, &size) == 0
                }
            }
            try #require(descriptor >= 0 && done)
            return (descriptor, UInt16(bigEndian: address.sin_port))
        }
        let (open, port) = try bound()
        try #require(listen(open, 4) == 0)
        let (shut, closedPort) = try bound()
        close(shut)
        return (port, open, closedPort)
    }

    @Test func aWebhookReceiverIsConnectedToAndSentNothing() throws {
        let (port, descriptor, closed) = try ports()
        defer { close(descriptor) }
        let http = FakeHTTP()
        let items = try lines(["ASSETD_WEBHOOK_URLS": "http://127.0.0.1:\(port)/hook?token=t0ken,http://127.0.0.1:\(closed)/hook",
                               "ASSETD_WEBHOOK_SECRET": "whsec_c2VjcmV0c2VjcmV0c2VjcmV0"], http)
        #expect(items.map(\.line) == [
            "OK   webhook: http://127.0.0.1:\(port)/hook?(query hidden) accepts connections (nothing was sent)",
            items[1].line,
        ])
        #expect(!items[1].ok && items[1].line.hasPrefix("FAIL webhook: http://127.0.0.1:\(closed)/hook: no answer: Couldn't connect"), "\(items[1].line)")
        #expect(http.sent.isEmpty, "no request to a webhook receiver")
        #expect(!items.map(\.line).joined().contains("t0ken") && !items.map(\.line).joined().contains("whsec_"))
    }

    @Test func typesenseIsAskedForItsCollectionWithTheKey() throws {
        let settings = ["ASSETD_TYPESENSE_URL": "http://search.internal:8108", "ASSETD_TYPESENSE_API_KEY": "k3y-never-shown",
                        "ASSETD_TYPESENSE_COLLECTION": "assets"]
        let expected = [
            (200, "OK   typesense: http://search.internal:8108 collection assets exists and ASSETD_TYPESENSE_API_KEY may read it"),
            (401, "FAIL typesense: http://search.internal:8108 collection assets: Typesense refused ASSETD_TYPESENSE_API_KEY (HTTP 401): a wrong key, or one without access to this collection"),
            (404, "FAIL typesense: http://search.internal:8108 collection assets does not exist (HTTP 404): `assetd setup-search` creates it"),
            (503, "FAIL typesense: http://search.internal:8108 collection assets: Typesense answered HTTP 503 to GET /collections/assets"),
        ]
        for (status, line) in expected {
            let http = FakeHTTP([.init(status: status)])
            let items = try lines(settings, http)
            #expect(items.map(\.line) == [line])
            #expect(http.sent.map { "\($0.method) \($0.url)" } == ["GET http://search.internal:8108/collections/assets"])
            #expect(http.sent.first?.headers["X-TYPESENSE-API-KEY"] == "k3y-never-shown")
        }
        #expect(try lines([:]).isEmpty, "no sink configured, no line")
    }
}
