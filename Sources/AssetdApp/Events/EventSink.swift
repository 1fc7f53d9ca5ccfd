import AssetStore
import Foundation
public import S3Client

/// What one attempt to deliver one event came to, as a sink saw it.
enum AttemptResult: Sendable, Equatable {
    case delivered
    /// The endpoint answered 410 Gone: it wants no more events.
    case gone(String)
    /// No success; `retryAfter` is the receiver's Retry-After (429, 503) in seconds.
    case failed(String, retryAfter: Double?)
    /// Not attempted (an earlier delivery of the batch found the endpoint gone).
    case skipped
}

/// Somewhere events go: a webhook endpoint, or a Typesense collection.
protocol EventSink: Sendable {
    /// Its key in the outbox (`event_delivery.sink`).
    var name: String { get }
    /// Its name in logs and metrics: no query string, no key.
    var label: String { get }
    /// How many deliveries one claim takes.
    var batchSize: Int { get }
    /// The longest `deliver` can take for a whole batch (its requests one after another,
    /// each at its timeout): a claim's lease covers it.
    var longestBatch: Duration { get }
    /// Attempts every delivery of `batch`; one result each, in order.
    func deliver(_ batch: [EventDelivery], now: Date) -> [AttemptResult]
}

/// One HTTP request and its answer: `HTTPClient`, or a fake in tests.
public protocol HTTPSending: Sendable {
    func send(method: String, url: String, headers: [(String, String)], body: [UInt8], timeout: Duration,
              maxResponseBytes: Int) throws(HTTPClient.Failure) -> HTTPClient.Response
}

/// A connection made and dropped, nothing sent: check-config's probe of a webhook receiver.
public protocol ConnectionProbing: Sendable {
    func connect(url: String, timeout: Duration) throws(HTTPClient.Failure)
}

extension HTTPClient: HTTPSending, ConnectionProbing {}
