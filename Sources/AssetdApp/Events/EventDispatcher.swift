import AssetStore
import Foundation
import Logging
import S3Client

/// Delivers the outbox's events (docs/OPERATIONS.md, "Events"): one thread per sink claims
/// due deliveries (in order per asset, leased for `lease`), attempts them, and records each
/// result: delivered, retried later (RetryPolicy), or dead. A 410 Gone disables the sink.
/// A crash loses nothing: a claimed delivery is due again when its lease ends, and is sent
/// again with the same `webhook-id` (at least once).
final class EventDispatcher: Sendable {
    let records: any EventOutbox
    let sinks: [any EventSink]
    let policy: RetryPolicy
    let metrics: Metrics?
    let logger: Logger
    /// The margin of a claim's lease over the longest its batch can take (every request
    /// of the batch at its sink's timeout, one after another), so that a live worker's
    /// claim never expires: else another host claims the same deliveries and sends them
    /// again (and the late answers are fenced off by their attempt number anyway).
    let lease: Duration
    let idle: Duration
    /// How long delivered events, and dead deliveries after they died, are kept
    /// (ASSETD_EVENT_RETENTION, ASSETD_EVENT_DEAD_RETENTION).
    let retention: Retention

    struct Retention: Sendable {
        var delivered: TimeInterval = 7 * 86_400
        var dead: TimeInterval = 30 * 86_400
        /// Events a pruning transaction looks at: short transactions, whatever the backlog.
        var batch: Int = 500
        /// The pause between batches, so that pruning a large backlog leaves the database
        /// to the requests.
        var pause: TimeInterval = 0.05
        var interval: TimeInterval = 3600
    }

    init(records: any EventOutbox, sinks: [any EventSink], policy: RetryPolicy, metrics: Metrics?, logger: Logger,
         lease: Duration = .seconds(30), idle: Duration = .milliseconds(500), retention: Retention = Retention()) {
        self.records = records
        self.sinks = sinks
        self.policy = policy
        self.metrics = metrics
        self.logger = logger
        self.lease = lease
        self.idle = idle
        self.retention = retention
    }

    /// The sinks that ASSETD_WEBHOOK_URLS and ASSETD_TYPESENSE_* configure.
    static func sinks(_ configuration: Configuration, http: any HTTPSending) -> [any EventSink] {
        var sinks: [any EventSink] = configuration.webhookURLs.enumerated().map { index, url in
            WebhookSink(url: url, index: index + 1, secrets: configuration.webhookSecrets, http: http)
        }
        if let typesense = configuration.typesense { sinks.append(TypesenseSink(settings: typesense, http: http)) }
        return sinks
    }

    /// Adds this host's sinks to the active ones (never retiring another host's: only
    /// `assetd events --retire-sink` does), then starts a thread for each, and one that
    /// prunes old events hourly.
    func start() throws {
        try records.activateEventSinks(sinks.map(\.name), now: Date())
        let mine = Set(sinks.map(\.name))
        for other in (try? records.eventSinks()) ?? [] where other.active && !mine.contains(other.sink) {
            logger.notice("an active event sink that this host's settings do not name: another host delivers it, or none does (assetd events --sinks; --retire-sink)",
                          metadata: ["sink": "\(EventEndpoint.redacted(other.sink))", "pending": "\(other.pending)"])
        }
        for sink in sinks {
            logger.info("delivering events", metadata: ["sink": "\(sink.label)"])
            let thread = Thread { [self] in
                while true {
                    if pass(sink) == 0 { Thread.sleep(forTimeInterval: Double(idle.components.attoseconds) / 1e18 + Double(idle.components.seconds)) }
                }
            }
            thread.name = "events-\(sink.label)"
            thread.start()
        }
        let pruner = Thread { [self] in
            while true {
                prune()
                Thread.sleep(forTimeInterval: retention.interval)
            }
        }
        pruner.name = "events-pruner"
        pruner.start()
    }

    /// One round of the retention, batch after batch from the oldest event: first pending
    /// deliveries that nobody will deliver become dead (`expire`), then delivered
    /// deliveries of events older than `retention.delivered`, dead ones that died before
    /// `retention.dead`, then the events with nothing left. Every host runs it; on
    /// PostgreSQL each skips the events another is pruning. Returns the events removed.
    @discardableResult
    func prune(now: Date = Date()) -> Int {
        expire(now: now)
        let deliveredBefore = now.addingTimeInterval(-retention.delivered), deadBefore = now.addingTimeInterval(-retention.dead)
        var after: Int64 = 0, events = 0, deliveries = 0
        do {
            while true {
                let batch = try records.pruneEvents(deliveredBefore: deliveredBefore, deadBefore: deadBefore, afterEventID: after,
                                                    limit: retention.batch)
                events += batch.events
                deliveries += batch.deliveries
                after = batch.lastEventID
                if batch.examined < retention.batch { break }
                if retention.pause > 0 { Thread.sleep(forTimeInterval: retention.pause) }
            }
        } catch {
            logger.error("cannot prune events: \(error)")
        }
        if events > 0 || deliveries > 0 {
            logger.info("pruned old events", metadata: ["events": "\(events)", "deliveries": "\(deliveries)"])
        }
        return events
    }

    /// Pending deliveries that no claim will ever end: those of retired or disabled sinks
    /// (a change that committed while its sink was being retired queued one), and those
    /// pending past ASSETD_EVENT_MAX_AGE, which a claim would have made dead, but whose
    /// sink no host names any more. Each becomes dead (`assetd events --dead`, and
    /// --redeliver), in bounded batches, so the backlog cannot grow for ever; a warning
    /// names each sink that had some. Returns how many.
    @discardableResult
    func expire(now: Date = Date()) -> Int {
        let maxAge = Int(policy.maxAge)
        var total: [String: Int] = [:]
        do {
            while true {
                let batch = try records.expireDeliveries(
                    startedBefore: now.addingTimeInterval(-policy.maxAge), now: now, limit: retention.batch,
                    expiredReason: "pending for more than ASSETD_EVENT_MAX_AGE (\(maxAge) s) and no host delivered it (is the sink in any host's settings?)",
                    inactiveReason: "its sink is retired or disabled")
                total.merge(batch, uniquingKeysWith: +)
                if batch.values.reduce(0, +) < retention.batch { break }
                if retention.pause > 0 { Thread.sleep(forTimeInterval: retention.pause) }
            }
        } catch {
            logger.error("cannot expire event deliveries: \(error)")
        }
        for (sink, count) in total.sorted(by: { $0.key < $1.key }) {
            logger.warning("pending event deliveries that no host would deliver are dead now (assetd events --sinks, --dead, --redeliver)",
                           metadata: ["sink": "\(EventEndpoint.redacted(sink))", "deliveries": "\(count)"])
        }
        return total.values.reduce(0, +)
    }

    /// One claim for `sink` and its attempts; how many deliveries it took.
    @discardableResult
    func pass(_ sink: any EventSink, now: Date = Date(), jitter: @Sendable () -> Double = { Double.random(in: 0..<1) }) -> Int {
        let batch: [EventDelivery]
        do {
            let longest = Double((sink.longestBatch + lease).components.seconds)
            batch = try records.claimDeliveries(sink: sink.name, limit: sink.batchSize, now: now, leaseUntil: now.addingTimeInterval(longest))
        } catch {
            logger.error("cannot claim events: \(error)", metadata: ["sink": "\(sink.label)"])
            return 0
        }
        guard !batch.isEmpty else { return 0 }
        let results = sink.deliver(batch, now: now)
        for (delivery, result) in zip(batch, results) {
            // When the attempt ended (a batch of slow endpoints takes a while), never before
            // the pass's `now` (which tests set ahead).
            record(result, of: delivery, sink: sink, now: max(now, Date()), jitter: jitter())
        }
        return batch.count
    }

    private func record(_ result: AttemptResult, of delivery: EventDelivery, sink: any EventSink, now: Date, jitter: Double) {
        let outcome: DeliveryOutcome
        switch result {
        case .skipped:
            return
        case .gone(let why):
            logger.warning("event sink disabled: it answered 410 Gone; its pending events are dead until one is redelivered (assetd events --redeliver)",
                           metadata: ["sink": "\(sink.label)", "event": "\(delivery.webhookID)"])
            metrics?.eventDelivery(sink: sink.label, result: "gone")
            do { try records.disableEventSink(sink.name, reason: why, now: now) } catch { logger.error("cannot disable the sink: \(error)") }
            return
        case .delivered:
            outcome = .delivered
        case .failed(let why, let retryAfter):
            outcome = policy.outcome(of: delivery, error: why, retryAfter: retryAfter, now: now, jitter: jitter)
        }
        switch outcome {
        case .delivered:
            metrics?.eventDelivery(sink: sink.label, result: "delivered")
        case .retry(let at, let why):
            metrics?.eventDelivery(sink: sink.label, result: "failed")
            logger.notice("event delivery failed; retrying", metadata: [
                "sink": "\(sink.label)", "event": "\(delivery.webhookID)", "attempt": "\(delivery.attempts)", "error": "\(why)",
                "retry_in_s": "\(Int(at.timeIntervalSince(now)))",
            ])
        case .dead(let why):
            metrics?.eventDelivery(sink: sink.label, result: "dead")
            logger.error("event delivery given up: dead until redelivered (assetd events --dead)", metadata: [
                "sink": "\(sink.label)", "event": "\(delivery.webhookID)", "error": "\(why)",
            ])
        }
        do {
            try records.finishDelivery(eventID: delivery.eventID, sink: sink.name, attempt: delivery.attempts, outcome: outcome, now: now)
        } catch {
            logger.error("cannot record an event delivery: \(error)", metadata: ["event": "\(delivery.webhookID)"])
        }
    }
}
