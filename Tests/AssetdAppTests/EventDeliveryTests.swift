@testable import AssetStore
import Foundation
import JSON
import Logging
import S3Client
import Synchronization
import Testing
@testable import AssetdApp
import TestFiles

/// An HTTP peer that answers from a script and records what it was sent.
final class FakeHTTP: HTTPSending {
    struct Sent: Sendable {
        var method: String
        var url: String
        var headers: [String: String]
        var body: [UInt8]
    }

    private let state = Mutex<(answers: [Result<HTTPClient.Response, HTTPClient.Failure>], sent: [Sent])>(([], []))
    /// Answers when the script has run out.
    let fallback: HTTPClient.Response

    init(_ answers: [HTTPClient.Response] = [], fallback: HTTPClient.Response = .init(status: 200)) {
        state.withLock { $0.answers = answers.map { .success($0) } }
        self.fallback = fallback
    }

    var sent: [Sent] { state.withLock { $0.sent } }

    func send(method: String, url: String, headers: [(String, String)], body: [UInt8], timeout: Duration,
              maxResponseBytes: Int) throws(HTTPClient.Failure) -> HTTPClient.Response {
        let next = state.withLock { state -> Result<HTTPClient.Response, HTTPClient.Failure>? in
            state.sent.append(Sent(method: method, url: url, headers: Dictionary(headers, uniquingKeysWith: { $1 }), body: body))
            return state.answers.isEmpty ? nil : state.answers.removeFirst()
        }
        return try (next ?? .success(fallback)).get()
    }
}

struct WebhookSignatureTests {
    /// The Standard Webhooks specification's example (spec/standard-webhooks.md, and the
    /// reference libraries' tests, e.g. the standardwebhooks PyPI package).
    @Test func theSpecificationsExampleSignsAsPublished() throws {
        let secret = try #require(WebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        let header = WebhookSignature.header(id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330,
                                             body: Array(#"{"test": 2432232314}"#.utf8), secrets: [secret])
        #expect(header == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }

    @Test func everySecretSignsDuringARotation() throws {
        let old = try #require(WebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        let new = try #require(WebhookSecret("whsec_" + Data(repeating: 7, count: 32).base64EncodedString()))
        let header = WebhookSignature.header(id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330,
                                             body: Array(#"{"test": 2432232314}"#.utf8), secrets: [old, new])
        let parts = header.split(separator: " ")
        #expect(parts.count == 2)
        #expect(parts[0] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        #expect(parts[1].hasPrefix("v1,") && parts[1] != parts[0])
    }

    @Test func secretsMustBeWhsecBase64OfEnoughBytes() {
        #expect(WebhookSecret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") == nil)
        #expect(WebhookSecret("whsec_") == nil)
        #expect(WebhookSecret("whsec_c2hvcnQ=") == nil) // 5 bytes
        #expect(WebhookSecret("whsec_not base64!") == nil)
        #expect(WebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") != nil)
        #expect("\(WebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")!)" == "whsec_(hidden)")
    }
}

struct EventSettingsTests {
    let base = ["AWS_BUCKET": "b", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "very-secret-value",
                "ASSETD_JWT_SECRET": String(repeating: "j", count: 32), "ASSETD_DATABASE": "/tmp/x.sqlite"]

    func error(_ extra: [String: String]) -> String {
        do { _ = try Configuration(environment: base.merging(extra) { $1 }); return "" } catch { return "\(error)" }
    }

    @Test func badEventSettingsAreOneLineNamingThem() throws {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        #expect(error(["ASSETD_WEBHOOK_URLS": "ftp://x/y", "ASSETD_WEBHOOK_SECRET": secret]).hasPrefix("ASSETD_WEBHOOK_URLS must be"))
        #expect(error(["ASSETD_WEBHOOK_URLS": "https://h/x?token=t0psecret,nope", "ASSETD_WEBHOOK_SECRET": secret]).contains("nope"))
        #expect(!error(["ASSETD_WEBHOOK_URLS": "https://h/x?token=t0psecret,nope", "ASSETD_WEBHOOK_SECRET": secret]).contains("t0psecret"))
        #expect(error(["ASSETD_WEBHOOK_URLS": "https://h/x"]) == "ASSETD_WEBHOOK_SECRET is required when ASSETD_WEBHOOK_URLS is set")
        let bad = error(["ASSETD_WEBHOOK_URLS": "https://h/x", "ASSETD_WEBHOOK_SECRET": "\(secret),whsec_t0psecret"])
        #expect(bad.hasPrefix("ASSETD_WEBHOOK_SECRET: secret 2 must be"))
        #expect(!bad.contains("t0psecret") && !bad.contains("MfKQ"))
        #expect(error(["ASSETD_TYPESENSE_URL": "http://127.0.0.1:8108"]).hasPrefix("ASSETD_TYPESENSE_API_KEY is required"))
        #expect(error(["ASSETD_TYPESENSE_URL": "http://127.0.0.1:8108", "ASSETD_TYPESENSE_API_KEY": "k",
                       "ASSETD_TYPESENSE_COLLECTION": "../x"]).hasPrefix("ASSETD_TYPESENSE_COLLECTION"))
        let good = try Configuration(environment: base.merging([
            "ASSETD_WEBHOOK_URLS": "https://a.example/h, http://127.0.0.1:9150/h", "ASSETD_WEBHOOK_SECRET": secret,
            "ASSETD_TYPESENSE_URL": "http://127.0.0.1:8108/", "ASSETD_TYPESENSE_API_KEY": "k", "ASSETD_TYPESENSE_COLLECTION": "assets",
        ]) { $1 })
        #expect(good.webhookURLs == ["https://a.example/h", "http://127.0.0.1:9150/h"])
        #expect(good.typesense?.url == "http://127.0.0.1:8108")
        #expect(good.eventMaxAge == 259_200)
        #expect(good.eventRetention == 604_800 && good.eventDeadRetention == 2_592_000)
        #expect(error(["ASSETD_EVENT_RETENTION": "86400", "ASSETD_EVENT_DEAD_RETENTION": "3600"])
            .hasPrefix("ASSETD_EVENT_DEAD_RETENTION (3600) must be at least ASSETD_EVENT_RETENTION (86400)"))
        #expect(error(["ASSETD_EVENT_RETENTION": "10"]).hasPrefix("ASSETD_EVENT_RETENTION must be an integer from 3600"))
        let long = try Configuration(environment: base.merging(["ASSETD_EVENT_RETENTION": "5184000"]) { $1 })
        #expect(long.eventDeadRetention == 5_184_000) // the dead retention's default follows a longer one
    }
}

struct RetryPolicyTests {
    func delivery(attempts: Int, startedAt: Date) -> EventDelivery {
        EventDelivery(eventID: 1, sink: "s", assetID: 1, type: .assetReady, payload: [], createdAt: startedAt, attempts: attempts, startedAt: startedAt)
    }

    @Test func backoffDoublesWithJitterUpToSixHours() {
        let policy = RetryPolicy()
        #expect(policy.backoff(afterAttempt: 1) == 5)
        #expect(policy.backoff(afterAttempt: 2) == 10)
        #expect(policy.backoff(afterAttempt: 5) == 80)
        #expect(policy.backoff(afterAttempt: 30) == 6 * 3600)
        let now = Date()
        for (jitter, expected) in [(0.0, 20.0), (0.999, 39.98)] {
            guard case .retry(let at, let error) = policy.outcome(of: delivery(attempts: 4, startedAt: now), error: "HTTP 500",
                                                                   retryAfter: nil, now: now, jitter: jitter) else {
                Issue.record("not retried"); return
            }
            #expect(abs(at.timeIntervalSince(now) - expected) < 0.01)
            #expect(error == "HTTP 500")
        }
    }

    @Test func aboutThreeDaysOfAttemptsThenDead() {
        let policy = RetryPolicy()
        let start = Date()
        var now = start
        var attempts = 0
        while true {
            attempts += 1
            let outcome = policy.outcome(of: delivery(attempts: attempts, startedAt: start), error: "HTTP 500", retryAfter: nil, now: now, jitter: 1)
            guard case .retry(let at, _) = outcome else {
                guard case .dead(let why) = outcome else { Issue.record("delivered?"); return }
                #expect(why.hasPrefix("HTTP 500; gave up after"))
                break
            }
            now = at
        }
        #expect(now.timeIntervalSince(start) > 2.7 * 86_400 && now.timeIntervalSince(start) <= 3 * 86_400)
        #expect((20...40).contains(attempts))
    }

    @Test func retryAfterIsSecondsOrAnHTTPDate() {
        let now = Date(timeIntervalSince1970: 1_700_000_000) // Tue, 14 Nov 2023 22:13:20 GMT
        #expect(RetryPolicy.retryAfter("120", now: now) == 120)
        #expect(RetryPolicy.retryAfter("Tue, 14 Nov 2023 22:15:20 GMT", now: now) == 120)
        #expect(RetryPolicy.retryAfter("soon", now: now) == nil)
        #expect(RetryPolicy.retryAfter(nil, now: now) == nil)
        #expect(RetryPolicy.retryAfter("-3", now: now) == nil)
    }
}

/// The dispatcher on a real SQLite outbox, against scripted receivers.
struct EventDispatcherTests {
    let path = TestFiles.sqlitePath("assetd-dispatch")
    let secret = WebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")!
    let url = "http://127.0.0.1:9150/hook"

    /// `otherSinks`: active sinks that this host does not deliver (another host's).
    func setUp(_ http: FakeHTTP, assets: Int = 1, otherSinks: [String] = []) throws
        -> (SQLiteRecordStore, EventDispatcher, WebhookSink, [AssetRecord]) {
        let store = try SQLiteRecordStore(path: path)
        let sink = WebhookSink(url: url, index: 1, secrets: [secret], http: http)
        let dispatcher = EventDispatcher(records: store, sinks: [sink], policy: RetryPolicy(), metrics: Metrics(), logger: Logger(label: "test"))
        try store.activateEventSinks([sink.name] + otherSinks, now: Date())
        var made: [AssetRecord] = []
        for _ in 0..<assets {
            let asset = try store.createAsset(NewAsset(workspaceID: 1, fileType: "image/png", fileExtension: "png", fileName: "a.png", size: 3))
            made.append(try #require(try store.markAssetReady(id: asset.id, size: 3, etag: "\"e\"", sha256: nil, thumbnail: .none)))
        }
        return (store, dispatcher, sink, made)
    }

    @Test func aDeliveryIsSignedAndSentOnce() throws {
        let http = FakeHTTP()
        let (store, dispatcher, sink, _) = try setUp(http)
        #expect(dispatcher.pass(sink) == 1)
        #expect(dispatcher.pass(sink) == 0)
        let sent = try #require(http.sent.first)
        #expect(sent.method == "POST" && sent.url == url)
        #expect(sent.headers["webhook-id"] == "evt_1")
        #expect(sent.headers["Content-Type"] == "application/json")
        let timestamp = try #require(sent.headers["webhook-timestamp"].flatMap { Int($0) })
        #expect(abs(Double(timestamp) - Date().timeIntervalSince1970) < 5)
        #expect(sent.headers["webhook-signature"] == WebhookSignature.header(id: "evt_1", timestamp: timestamp, body: sent.body, secrets: [secret]))
        #expect(try JSONParser.parse(sent.body)["type"] == "asset.ready")
        #expect(try store.eventBacklog() == 0)
    }

    @Test func a500IsRetriedLaterWithTheSameIDAndBody() throws {
        let http = FakeHTTP([.init(status: 500)])
        let (store, dispatcher, sink, _) = try setUp(http)
        let now = Date()
        #expect(dispatcher.pass(sink, now: now, jitter: { 0 }) == 1)
        let pending = try store.eventDeliveries(state: .pending, limit: 5)
        #expect(pending.count == 1)
        #expect(pending[0].lastError == "HTTP 500")
        #expect(pending[0].nextAttemptAt.timeIntervalSince(now) > 2 && pending[0].nextAttemptAt.timeIntervalSince(now) < 4)
        #expect(dispatcher.pass(sink, now: now) == 0)
        #expect(dispatcher.pass(sink, now: now.addingTimeInterval(10)) == 1)
        #expect(http.sent.count == 2)
        #expect(http.sent[0].headers["webhook-id"] == http.sent[1].headers["webhook-id"])
        #expect(http.sent[0].body == http.sent[1].body)
        #expect(try store.eventBacklog() == 0)
    }

    @Test func a410DisablesTheEndpointAndKillsItsBacklog() throws {
        let http = FakeHTTP([.init(status: 410)])
        let (store, dispatcher, sink, assets) = try setUp(http, assets: 3)
        #expect(dispatcher.pass(sink) == 1) // a webhook claim takes one delivery
        #expect(http.sent.count == 1)
        #expect(try store.eventDeliveries(state: .dead, limit: 10).count == 3)
        #expect(try store.eventBacklog() == 0)
        // No new events are queued for it, and nothing is claimed.
        _ = try store.finishThumbnail(assetID: assets[0].id, etag: "\"e\"", status: .ready, reason: nil)
        #expect(try store.eventBacklog() == 0)
        #expect(dispatcher.pass(sink) == 0)
        // An operator's redelivery enables it again.
        #expect(try store.redeliverEvent(id: 2, now: Date()) == 1)
        #expect(dispatcher.pass(sink) == 1)
        #expect(http.sent.last?.headers["webhook-id"] == "evt_2")
    }

    @Test func a429Or503HonoursRetryAfter() throws {
        let http = FakeHTTP([.init(status: 429, headers: ["retry-after": "120"]), .init(status: 503, headers: ["retry-after": "7"]),
                             .init(status: 503)])
        let (store, dispatcher, sink, _) = try setUp(http)
        var now = Date()
        #expect(dispatcher.pass(sink, now: now) == 1)
        var next = try #require(try store.eventDeliveries(state: .pending, limit: 1).first).nextAttemptAt
        #expect(abs(next.timeIntervalSince(now) - 120) < 2)
        now = next.addingTimeInterval(1)
        #expect(dispatcher.pass(sink, now: now) == 1)
        next = try #require(try store.eventDeliveries(state: .pending, limit: 1).first).nextAttemptAt
        #expect(abs(next.timeIntervalSince(now) - 7) < 2)
        // Without Retry-After, 503 backs off as any failure (third attempt: 10-20 s).
        now = next.addingTimeInterval(1)
        #expect(dispatcher.pass(sink, now: now, jitter: { 0.5 }) == 1)
        next = try #require(try store.eventDeliveries(state: .pending, limit: 1).first).nextAttemptAt
        #expect(next.timeIntervalSince(now) >= 14 && next.timeIntervalSince(now) <= 16)
    }

    /// A dispatcher that prunes in batches of `batch`, with no pause between them.
    func pruner(_ store: SQLiteRecordStore, _ sink: WebhookSink, batch: Int) -> EventDispatcher {
        var retention = EventDispatcher.Retention()
        retention.batch = batch
        retention.pause = 0
        return EventDispatcher(records: store, sinks: [sink], policy: RetryPolicy(), metrics: nil, logger: Logger(label: "test"),
                               retention: retention)
    }

    @Test func pruningRunsInBatchesOverEveryOldEvent() throws {
        let (store, _, sink, _) = try setUp(FakeHTTP(), assets: 7)
        let dispatcher = pruner(store, sink, batch: 3)
        for _ in 0..<7 { dispatcher.pass(sink) }
        #expect(try store.eventBacklog() == 0)
        #expect(dispatcher.prune() == 0) // delivered, but within the retention (7 days)
        #expect(dispatcher.prune(now: Date().addingTimeInterval(8 * 86_400)) == 7) // batches of 3, 3 and 1
        #expect(try store.eventDeliveries(state: .delivered, limit: 10).isEmpty)
        #expect(dispatcher.prune(now: Date().addingTimeInterval(8 * 86_400)) == 0)
    }

    /// A sink that no host names any more (its URL changed on the only host that had it)
    /// stays active, and nobody claims its deliveries: pruning makes them dead once they
    /// are older than ASSETD_EVENT_MAX_AGE, so the backlog does not grow for ever.
    @Test func pruningExpiresTheBacklogOfASinkThatNoHostDelivers() throws {
        let (store, _, sink, _) = try setUp(FakeHTTP(), assets: 5, otherSinks: ["https://old.example/hook"]) // a former host's
        let dispatcher = pruner(store, sink, batch: 2)
        for _ in 0..<5 { dispatcher.pass(sink) }
        #expect(try store.eventBacklog() == 5) // the orphaned sink's
        #expect(dispatcher.prune() == 0)
        #expect(try store.eventBacklog() == 5) // within ASSETD_EVENT_MAX_AGE (3 days)
        #expect(dispatcher.expire(now: Date().addingTimeInterval(4 * 86_400)) == 5) // batches of 2, 2 and 1
        #expect(try store.eventBacklog() == 0)
        let dead = try store.eventDeliveries(state: .dead, limit: 10)
        #expect(dead.count == 5 && dead.allSatisfy { $0.sink == "https://old.example/hook" && $0.lastError?.contains("ASSETD_EVENT_MAX_AGE") == true })
        // Dead, they go with the dead retention (30 days), and their events with them.
        #expect(dispatcher.prune(now: Date().addingTimeInterval(40 * 86_400)) == 5)
    }

    @Test func anUnreachableEndpointIsRetried() throws {
        let (store, dispatcher, _, _) = try setUp(FakeHTTP())
        // A real client to a port where nothing listens (9199, this helper's range).
        let sink = WebhookSink(url: "http://127.0.0.1:9199/nothing", index: 1, secrets: [secret], http: HTTPClient())
        try store.activateEventSinks([sink.name], now: Date())
        try store.redeliverEvent(id: 1, now: Date())
        #expect(dispatcher.pass(sink) == 1)
        let pending = try #require(try store.eventDeliveries(state: .pending, limit: 5).first { $0.sink == sink.name })
        #expect(pending.lastError?.contains("no answer") == true)
    }
}

struct TypesenseSinkTests {
    let settings = TypesenseSettings(url: "http://127.0.0.1:9160", apiKey: "ts-key", collection: "assets")

    func delivery(_ id: Int64, _ type: EventType, asset: AssetRecord) -> EventDelivery {
        EventDelivery(eventID: id, sink: "t", assetID: asset.id, type: type, payload: EventPayload.make(type, asset: asset, now: Date()),
                      createdAt: Date(), attempts: 1, startedAt: Date())
    }

    func asset(_ id: Int64) -> AssetRecord {
        AssetRecord(id: id, workspaceID: 3, key: "3/digital_assets/\(id).pdf", fileName: "r\(id).pdf", fileType: "application/pdf", size: 99,
                    etag: "\"e\"", sha256: nil, status: .ready, thumbnailStatus: .none, createdAt: Date(timeIntervalSince1970: 1_700_000_000),
                    updatedAt: Date(timeIntervalSince1970: 1_700_000_100))
    }

    /// What PATCH sets is searchable in Typesense too: the event carries the title and
    /// tags, and the document and its schema have them.
    @Test func titlesAndTagsReachTheDocument() throws {
        var labelled = asset(5)
        labelled.title = "Trip to the sea"
        labelled.tags = ["beach", "2024"]
        let payload = try JSONParser.parse(EventPayload.make(.assetReady, asset: labelled, now: Date()))
        #expect(payload["data"]?["title"] == "Trip to the sea")
        #expect(payload["data"]?["tags"] == .array(["beach", "2024"]))
        let document = try #require(TypesenseSink.document(from: EventPayload.make(.assetReady, asset: labelled, now: Date())))
        #expect(document["title"] == "Trip to the sea")
        #expect(document["tags"] == .array(["beach", "2024"]))
        let plain = try #require(TypesenseSink.document(from: EventPayload.make(.assetReady, asset: asset(6), now: Date())))
        #expect(plain["title"] == nil)
        #expect(plain["tags"] == .array([]))
        let fields = TypesenseSink.schema(collection: "assets")["fields"]
        guard case .array(let list)? = fields else { Issue.record("no fields"); return }
        #expect(list.contains { $0["name"] == "title" && $0["type"] == "string" && $0["optional"] == true })
        #expect(list.contains { $0["name"] == "tags" && $0["type"] == "string[]" && $0["optional"] == true })
    }

    @Test func everyLineOfTheImportAnswerDecidesItsDocument() throws {
        let answer = Array("{\"success\":true}\n{\"success\":false,\"error\":\"Field `size` must be an int64.\",\"document\":\"{}\"}\n".utf8)
        let http = FakeHTTP([.init(status: 404), .init(status: 200, body: answer)])
        let sink = TypesenseSink(settings: settings, http: http)
        var gone = asset(3)
        gone.status = .deleted
        let results = sink.deliver([delivery(1, .assetReady, asset: asset(1)), delivery(2, .thumbnailFailed, asset: asset(2)),
                                    delivery(3, .assetDeleted, asset: gone)], now: Date())
        #expect(results[0] == .delivered)
        #expect(results[1] == .failed("Typesense refused the document: Field `size` must be an int64.", retryAfter: nil))
        #expect(results[2] == .delivered) // 404 on a delete: already gone
        let sent = http.sent
        #expect(sent.map(\.method) == ["DELETE", "POST"])
        #expect(sent[0].url == "http://127.0.0.1:9160/collections/assets/documents/3")
        #expect(sent[1].url == "http://127.0.0.1:9160/collections/assets/documents/import?action=upsert")
        #expect(sent[1].headers["X-TYPESENSE-API-KEY"] == "ts-key")
        let lines = sent[1].body.split(separator: 0x0A)
        #expect(lines.count == 2)
        let document = try JSONParser.parse(lines[0])
        #expect(document["id"] == "1")
        #expect(document["workspaceId"] == 3)
        #expect(document["type"] == "pdf")
        #expect(document["size"] == 99)
        #expect(document["createdAt"] == 1_700_000_000)
    }

    @Test func aShortOrFailedAnswerFailsTheDocumentsItDoesNotCover() {
        let http = FakeHTTP([.init(status: 200, body: Array("{\"success\":true}".utf8)), .init(status: 503, headers: ["retry-after": "9"])])
        let sink = TypesenseSink(settings: settings, http: http)
        let two = sink.deliver([delivery(1, .assetReady, asset: asset(1)), delivery(2, .assetReady, asset: asset(2))], now: Date())
        #expect(two[0] == .delivered)
        #expect(two[1] == .failed("Typesense's import answer has no line for document 2", retryAfter: nil))
        #expect(sink.deliver([delivery(3, .assetReady, asset: asset(3))], now: Date()) == [.failed("Typesense import answered HTTP 503", retryAfter: 9)])
    }
}
