import Foundation
import Locking
import Prometheus
import Synchronization

/// What GET /metrics reports, in Prometheus's text format (swift-prometheus's registry: a
/// lock per metric, so the FastCGI worker threads record without any async bridging; the
/// request durations, recorded on every request, in per-thread shards of assetd's own).
/// Labels are route patterns, methods, statuses and S3 operation names: bounded sets,
/// never ids, keys or query strings.
public final class Metrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    /// Upper bounds of the latency histograms, from a cached presign to a slow S3 call.
    static let latencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5),
        .seconds(10), .seconds(30),
    ]
    private let openUploads: Gauge
    private let eventBacklog: Gauge
    private let pendingThumbnails: Gauge
    private let reconcilerLastPass: Gauge
    private let etagsMD5: Gauge
    /// assetd_thumbnail_tasks_total by result, all four made at start (0 until counted),
    /// so that a rate() of each exists before the first event.
    private let thumbnailTasks: [ThumbnailTaskResult: Counter]
    /// assetd_decoder_up: made at the first reach for the decoder (absent before: no
    /// task has told yet whether the decoder answers).
    private let decoderUp = Mutex<Gauge?>(nil)

    /// How a thumbnail task's attempt ended (the label of assetd_thumbnail_tasks_total).
    enum ThumbnailTaskResult: String, CaseIterable {
        /// A thumbnail stored.
        case ready
        /// Recorded as failed (final).
        case failed
        /// S3 or the decoder failed: another attempt after a pause.
        case retried
        /// The decoder was unavailable: put back, no attempt spent.
        case unavailable
    }
    /// The series already made, by their labels: the registry validates names and help
    /// text and hashes labels on each `make...`, which cost more than the rest of a
    /// presign (callgrind). Every label set is bounded, and so are these.
    private let requestSeries = ReadWriteLocked<[RequestLabels: RequestSeries]>([:])
    private struct RequestLabels: Hashable {
        var route: String
        var method: String
        var status: Int

        /// Hashed on the status and the two lengths: hashing both strings' bytes cost
        /// ~400 instructions a request (callgrind). `==` still compares the labels whole
        /// (the route is the route table's own String, so mostly by identity), and these
        /// sets are small and not chosen by clients: route patterns, eight methods, the
        /// statuses assetd sends.
        func hash(into hasher: inout Hasher) {
            hasher.combine(status &<< 16 | route.utf8.count &<< 4 | method.utf8.count)
        }
    }
    /// A label set's counter, and its route's slot in `requestDurations` (one histogram a
    /// route, shared by every label set of that route): one lookup a request.
    private struct RequestSeries {
        let counter: Counter
        let durationSlot: Int
    }
    /// assetd_http_request_duration_seconds, kept per thread and rendered by assetd after
    /// the registry's families (see `RequestDurationHistogram`).
    private let requestDurations = RequestDurationHistogram(bounds: Metrics.latencyBuckets)

    public init() {
        openUploads = registry.makeGauge(name: "assetd_open_uploads", help: "Multipart uploads started and neither completed, aborted nor expired.")
        eventBacklog = registry.makeGauge(name: "assetd_event_backlog", help: "Event deliveries not yet delivered nor dead, all sinks together.")
        registry.makeGauge(name: "assetd_build_info", labels: [("version", AssetdVersion.current)],
                           help: "Always 1; its label is the version of the assetd that answers.").set(Int64(1))
        pendingThumbnails = registry.makeGauge(
            name: "assetd_thumbnail_pending",
            help: "Thumbnail tasks pending in the database, read at each scrape: database-wide (every host of a PostgreSQL fleet reports the same number; do not sum hosts).")
        reconcilerLastPass = registry.makeGauge(
            name: "assetd_reconciler_last_pass_timestamp_seconds",
            help: "Unix time at which this host last finished a reconciler pass (0: none yet; on PostgreSQL one host a pass: take the max over hosts).")
        etagsMD5 = registry.makeGauge(
            name: "assetd_etags_md5",
            help: "1 when this host compares part and object ETags with MD5s; 0 under ASSETD_SSE=aws:kms, or since the bucket's default encryption was seen as SSE-KMS with ASSETD_SSE unset (until a restart).")
        var tasks: [ThumbnailTaskResult: Counter] = [:]
        for result in ThumbnailTaskResult.allCases {
            tasks[result] = registry.makeCounter(
                name: "assetd_thumbnail_tasks_total", labels: [("result", result.rawValue)],
                help: "Thumbnail task attempts of this host, by how they ended: ready, failed (final), retried (S3 or a decoder crash), unavailable (the decoder unreachable; no attempt spent).")
        }
        thumbnailTasks = tasks
    }

    /// One answered request: `route` is the pattern it matched ("unmatched" otherwise).
    public func request(route: String, method: String, status: Int, duration: Duration) {
        let labels = RequestLabels(route: route, method: method, status: status)
        let series = requestSeries.read { $0[labels] } ?? requestSeries.write { all in
            if let made = all[labels] { return made }
            let made = RequestSeries(
                counter: registry.makeCounter(name: "assetd_http_requests_total",
                                              labels: [("route", route), ("method", method), ("status", String(status))],
                                              help: "Requests answered, by route, method and status."),
                durationSlot: requestDurations.slot(for: route))
            all[labels] = made
            return made
        }
        series.counter.increment()
        requestDurations.record(duration, slot: series.durationSlot)
    }

    /// One S3 call; `error` is `S3Error.label` when it failed: S3's code, or Timeout, NetworkError, Refused, ...
    public func s3Call(operation: String, error: String?, duration: Duration) {
        registry.makeCounter(name: "assetd_s3_requests_total", labels: [("operation", operation)],
                             help: "S3 calls made, by operation (retries inside a call are one call).").increment()
        registry.makeDurationHistogram(name: "assetd_s3_request_duration_seconds", labels: [("operation", operation)],
                                       buckets: Self.latencyBuckets, help: "S3 call time, by operation.").record(duration)
        if let error {
            registry.makeCounter(name: "assetd_s3_errors_total", labels: [("operation", operation), ("code", error)],
                                 help: "S3 calls that failed, by operation and error code.").increment()
        }
    }

    public func setOpenUploads(_ count: Int) { openUploads.set(Int64(count)) }

    /// Event deliveries waiting (pending for some sink), read at each scrape.
    public func setEventBacklog(_ count: Int) { eventBacklog.set(Int64(count)) }

    /// One attempt of an event delivery; `sink` is webhook-N or typesense, `result`
    /// delivered, failed (retried), dead or gone (410).
    func eventDelivery(sink: String, result: String) {
        registry.makeCounter(name: "assetd_event_deliveries_total", labels: [("sink", sink), ("result", result)],
                             help: "Event delivery attempts, by sink and result.").increment()
    }

    /// Thumbnail tasks pending, database-wide, read at each scrape.
    public func setPendingThumbnails(_ count: Int) { pendingThumbnails.set(Int64(count)) }

    /// One thumbnail task's attempt ended (ThumbnailWorker, off the request path).
    func thumbnailTask(_ result: ThumbnailTaskResult) { thumbnailTasks[result]?.increment() }

    /// Whether the worker's last reach for the decoder got an answer (any answer, a
    /// refusal or a crash of a child included) or found it unavailable.
    func decoderReached(_ up: Bool) {
        let gauge = decoderUp.withLock { gauge in
            if let gauge { return gauge }
            let made = registry.makeGauge(
                name: "assetd_decoder_up",
                help: "1 when this host's last thumbnail task reached the decoder (assetd-thumbnailer), 0 when it was unavailable; absent before the first task.")
            gauge = made
            return made
        }
        gauge.set(Int64(up ? 1 : 0))
    }

    /// Whether complete-upload compares ETags with MD5s (`AssetService.objectETagsAreMD5`), read at each scrape.
    func setETagsMD5(_ md5: Bool) { etagsMD5.set(Int64(md5 ? 1 : 0)) }

    /// A reconciler pass finished on this host.
    func reconcilerPassed(at date: Date) { reconcilerLastPass.set(date.timeIntervalSince1970) }

    /// The text exposition (version 0.0.4): the registry's families (in its dictionary's
    /// order, which was never fixed from one process to the next), then the request
    /// durations.
    public func render() -> [UInt8] {
        var text = registry.emitToBuffer()
        requestDurations.render(into: &text)
        return text
    }
}
