import Foundation
import Prometheus
import Testing
@testable import AssetdApp

struct MetricsTests {
    /// Request series are found by a hash of the status and the labels' lengths only:
    /// label sets that share it (routes of one length, methods of one length) still count
    /// apart, as `==` compares them whole.
    @Test func labelSetsOfEqualLengthsCountApart() {
        let metrics = Metrics()
        for _ in 0..<3 { metrics.request(route: "/api/assets/{assetId}", method: "GET", status: 200, duration: .milliseconds(1)) }
        metrics.request(route: "/api/assets/{assetXd}", method: "GET", status: 200, duration: .milliseconds(1))
        metrics.request(route: "/api/assets/{assetId}", method: "PUT", status: 200, duration: .milliseconds(1))
        metrics.request(route: "/api/assets/{assetId}", method: "GET", status: 404, duration: .milliseconds(1))
        let lines = String(decoding: metrics.render(), as: UTF8.self).split(separator: "\n")
        for line in [#"assetd_http_requests_total{route="/api/assets/{assetId}",method="GET",status="200"} 3"#,
                     #"assetd_http_requests_total{route="/api/assets/{assetXd}",method="GET",status="200"} 1"#,
                     #"assetd_http_requests_total{route="/api/assets/{assetId}",method="PUT",status="200"} 1"#,
                     #"assetd_http_requests_total{route="/api/assets/{assetId}",method="GET",status="404"} 1"#] {
            #expect(lines.contains { $0 == line }, "\(line) in \(lines)")
        }
    }
}

/// assetd_http_request_duration_seconds, rendered by assetd from per-thread shards: the
/// same text as swift-prometheus's `DurationHistogram` for the same observations, and no
/// observation lost when many threads record at once.
struct RequestDurationHistogramTests {
    /// Zero, on a bound, between bounds, past the last bound, attoseconds that are not
    /// whole nanoseconds, and a long one.
    static let observations: [Duration] = [
        .zero, .milliseconds(1), .nanoseconds(1_000_001), .microseconds(4_999), .milliseconds(5),
        .nanoseconds(1_234_567), .milliseconds(250), .seconds(2.5), .seconds(29.999), .seconds(30),
        .seconds(31), Duration(secondsComponent: 0, attosecondsComponent: 123_456_789_012_345_678),
        Duration(secondsComponent: 3_600, attosecondsComponent: 1), .microseconds(750),
    ]

    /// The registry's text for the same routes and observations (the way Metrics made them
    /// before: one histogram a route, the same name, help and buckets).
    static func registryText(_ observations: [(route: String, duration: Duration)]) -> [UInt8] {
        let registry = PrometheusCollectorRegistry()
        for (route, duration) in observations {
            registry.makeDurationHistogram(name: RequestDurationHistogram.name, labels: [("route", route)],
                                           buckets: Metrics.latencyBuckets, help: RequestDurationHistogram.help).record(duration)
        }
        return registry.emitToBuffer()
    }

    static func ownText(_ observations: [(route: String, duration: Duration)]) -> [UInt8] {
        let histogram = RequestDurationHistogram(bounds: Metrics.latencyBuckets)
        for (route, duration) in observations { histogram.record(duration, slot: histogram.slot(for: route)) }
        var text: [UInt8] = []
        histogram.render(into: &text)
        return text
    }

    /// The header lines and each route's block of lines (16: 13 buckets, +Inf, sum,
    /// count), the blocks as a set: the registry orders routes by its dictionary.
    static func blocks(_ text: [UInt8]) -> (header: [Substring], blocks: Set<[Substring]>) {
        let lines = String(decoding: text, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.last == "", "ends with a line feed")
        let body = lines.dropFirst(2).dropLast()
        #expect(body.count % 16 == 0)
        let blocks = stride(from: body.startIndex, to: body.endIndex, by: 16).map { Array(body[$0..<$0 + 16]) }
        return (Array(lines.prefix(2)), Set(blocks))
    }

    @Test func oneRouteRendersAsTheRegistry() {
        let observations = Self.observations.map { (route: "/s3/get-upload-url", duration: $0) }
        let own = Self.ownText(observations)
        #expect(String(decoding: own, as: UTF8.self) == String(decoding: Self.registryText(observations), as: UTF8.self))
        #expect(own.count > 1_000)
    }

    @Test func nothingBeforeTheFirstRequest() {
        #expect(Self.ownText([]).isEmpty)
        #expect(Self.registryText([]).isEmpty)
    }

    /// Several routes, one with the bytes a label value escapes, observed interleaved.
    @Test func routesRenderAsTheRegistry() {
        let routes = ["/s3/get-upload-url", "unmatched", #"/odd"\route\#n"#, "/metrics"]
        var observations: [(route: String, duration: Duration)] = []
        for (index, duration) in Self.observations.enumerated() {
            for (offset, route) in routes.enumerated() where (index + offset) % 3 != 0 {
                observations.append((route, duration * (offset + 1)))
            }
        }
        let own = Self.blocks(Self.ownText(observations))
        let registry = Self.blocks(Self.registryText(observations))
        #expect(own.header == registry.header)
        #expect(own.blocks == registry.blocks)
        #expect(own.blocks.count == routes.count)
    }

    /// Sixteen threads record at once, on two routes; half of them on threads that end
    /// right after (their shards given back and taken again): every observation counted,
    /// the sums exact (the registry's text for the same observations, recorded in turn).
    @Test func manyThreadsLoseNothing() async {
        let histogram = RequestDurationHistogram(bounds: Metrics.latencyBuckets)
        let slots = [histogram.slot(for: "/a"), histogram.slot(for: "/b")]
        let perThread = 4_000
        @Sendable func duration(thread: Int, index: Int) -> Duration {
            .nanoseconds(Int64(thread * 7_919 + index * 104_729 % 50_000_000)) + Self.observations[index % Self.observations.count]
        }
        let done = DispatchGroup()
        for thread in 0..<16 {
            done.enter()
            let work: @Sendable () -> Void = {
                for index in 0..<perThread {
                    histogram.record(duration(thread: thread, index: index), slot: slots[index % 2])
                }
                done.leave()
            }
            if thread % 2 == 0 {
                Thread { work() }.start()
            } else {
                DispatchQueue.global().async { work() }
            }
        }
        await withCheckedContinuation { continuation in done.notify(queue: .global()) { continuation.resume() } }
        var observations: [(route: String, duration: Duration)] = []
        for thread in 0..<16 {
            for index in 0..<perThread { observations.append((index % 2 == 0 ? "/a" : "/b", duration(thread: thread, index: index))) }
        }
        let merged = histogram.merged()
        #expect(merged.map(\.counts).map { $0.reduce(0, +) } == [perThread * 8, perThread * 8])
        let own: [UInt8] = { var text: [UInt8] = []; histogram.render(into: &text); return text }()
        let registry = Self.blocks(Self.registryText(observations))
        let ours = Self.blocks(own)
        #expect(ours.header == registry.header)
        #expect(ours.blocks == registry.blocks)
    }

    /// Through Metrics: the family once, after the registry's, counted by route.
    @Test func metricsRendersTheFamilyOnce() {
        let metrics = Metrics()
        for status in [200, 404, 200] { metrics.request(route: "/a", method: "GET", status: status, duration: .milliseconds(3)) }
        metrics.request(route: "/b", method: "POST", status: 200, duration: .seconds(40))
        let text = String(decoding: metrics.render(), as: UTF8.self)
        #expect(text.components(separatedBy: "# TYPE assetd_http_request_duration_seconds histogram\n").count == 2)
        #expect(text.contains("assetd_http_request_duration_seconds_count{route=\"/a\"} 3\n"))
        #expect(text.contains("assetd_http_request_duration_seconds_bucket{route=\"/b\",le=\"30.0\"} 0\n"))
        #expect(text.contains("assetd_http_request_duration_seconds_sum{route=\"/b\"} 40.0\n"))
        #expect(text.contains("assetd_http_requests_total{route=\"/a\",method=\"GET\",status=\"404\"} 1\n"))
    }
}
