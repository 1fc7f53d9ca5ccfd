import AssetStore
import Foundation

/// When a failed delivery is tried again: exponential backoff with jitter (5 s, 10 s, 20 s,
/// ... up to 6 h between attempts), a receiver's Retry-After on 429 and 503, and dead once
/// the next attempt would fall past `maxAge` (3 days) from the start of the event's attempts.
struct RetryPolicy: Sendable {
    var base: Double = 5
    var cap: Double = 6 * 3600
    var maxAge: Double = 259_200

    /// The delay after the `attempt`th failed attempt (1-based), before jitter.
    func backoff(afterAttempt attempt: Int) -> Double {
        min(cap, base * pow(2, Double(min(max(attempt, 1) - 1, 40))))
    }

    /// What a failed attempt comes to. `retryAfter` (seconds) is the receiver's wish;
    /// `jitter` in 0..<1 spreads retries over the second half of the backoff.
    func outcome(of delivery: EventDelivery, error: String, retryAfter: Double?, now: Date, jitter: Double) -> DeliveryOutcome {
        let delay = retryAfter.map { min(cap, max(1, $0)) } ?? backoff(afterAttempt: delivery.attempts) * (0.5 + 0.5 * jitter)
        let next = now.addingTimeInterval(delay)
        let deadline = delivery.startedAt.addingTimeInterval(maxAge)
        guard next <= deadline else {
            return .dead(error: "\(error); gave up after \(delivery.attempts) attempts over \(Int(now.timeIntervalSince(delivery.startedAt))) s")
        }
        return .retry(at: next, error: error)
    }

    /// Retry-After as seconds from `now`: delta-seconds or an HTTP-date (RFC 9110 10.2.3);
    /// nil when absent or unreadable.
    static func retryAfter(_ value: String?, now: Date) -> Double? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        if let seconds = Int(value), seconds >= 0 { return Double(seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: value) else { return nil }
        return max(0, date.timeIntervalSince(now))
    }
}
