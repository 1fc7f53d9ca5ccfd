import AssetStore
import S3Client
import Foundation

/// One webhook endpoint, by the Standard Webhooks specification: a POST of the event's
/// payload with `webhook-id` (`evt_` + the event's id, the same on every attempt),
/// `webhook-timestamp` (this attempt's Unix time) and `webhook-signature`. Only a 2xx
/// delivers; redirects are not followed; 15 s per attempt.
struct WebhookSink: EventSink {
    let url: String
    let secrets: [WebhookSecret]
    let http: any HTTPSending
    var timeout: Duration = .seconds(15)

    var name: String { url }
    let label: String
    /// One a claim: a claim's lease covers its whole batch, and a slow endpoint would make
    /// a longer batch's lease (so the wait after a crash) grow with it. A crashed worker's
    /// delivery is due again after 15 s + 30 s.
    var batchSize: Int { 1 }
    var longestBatch: Duration { timeout * batchSize }

    init(url: String, index: Int, secrets: [WebhookSecret], http: any HTTPSending) {
        self.url = url
        self.secrets = secrets
        self.http = http
        self.label = "webhook-\(index)"
    }

    func deliver(_ batch: [EventDelivery], now: Date) -> [AttemptResult] {
        var results: [AttemptResult] = []
        for delivery in batch {
            if case .gone = results.last {
                results.append(.skipped)
                continue
            }
            if results.last == .skipped {
                results.append(.skipped)
                continue
            }
            results.append(attempt(delivery, now: Date()))
        }
        return results
    }

    func attempt(_ delivery: EventDelivery, now: Date) -> AttemptResult {
        let timestamp = Int(now.timeIntervalSince1970)
        let headers = [
            ("Content-Type", "application/json"),
            ("User-Agent", "assetd-webhooks"),
            ("webhook-id", delivery.webhookID),
            ("webhook-timestamp", String(timestamp)),
            ("webhook-signature", WebhookSignature.header(id: delivery.webhookID, timestamp: timestamp, body: delivery.payload, secrets: secrets)),
        ]
        let answer: HTTPClient.Response
        do {
            answer = try http.send(method: "POST", url: url, headers: headers, body: delivery.payload, timeout: timeout, maxResponseBytes: 4096)
        } catch {
            return .failed(error.description, retryAfter: nil)
        }
        switch answer.status {
        case 200..<300:
            return .delivered
        case 410:
            return .gone("\(EventEndpoint.redacted(url)) answered 410 Gone")
        case 429, 503:
            return .failed("HTTP \(answer.status)", retryAfter: RetryPolicy.retryAfter(answer.headers["retry-after"], now: now))
        default:
            return .failed("HTTP \(answer.status)", retryAfter: nil)
        }
    }
}
