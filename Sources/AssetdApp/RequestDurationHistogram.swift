import Locking
import Prometheus
import Synchronization

/// assetd_http_request_duration_seconds: one histogram a route, recorded into each thread's
/// own shard and summed when /metrics is scraped.
///
/// swift-prometheus keeps a histogram behind one lock, which all sixteen FastCGI workers
/// took on every request: on 2 cores a holder is often descheduled, and that lock was 74% of
/// the futex calls left on the presign path (perf, presign9). Here each thread records under
/// its own shard's lock, which only a scrape ever contends. Its text is rendered the way
/// swift-prometheus renders a `DurationHistogram` (the same HELP and TYPE lines, label,
/// bucket bounds and number formats; MetricsTests compares the two byte for byte), and the
/// sums stay exact: `Duration`s added, as the registry adds them.
///
/// Made once a process, with its `Metrics` (Bootstrap), and never freed: its `PerThread`
/// takes one of the process's 1,024 pthread keys, and freeing it cannot reach the leases
/// other threads still hold (`PerThread` is meant to live as long as the process). Tests
/// that make many may leak a few leases; nothing else should make one (review13 S2).
final class RequestDurationHistogram: Sendable {
    static let name = "assetd_http_request_duration_seconds"
    static let help = "Time from the request's parameters to its response, by route."

    /// Upper bounds, ascending; a value goes into the first bucket whose bound is >= it
    /// (the registry's `le`), or past the last one (+Inf only).
    let bounds: [Duration]
    /// Routes by slot, in the order first seen: a route's slot indexes every shard.
    private let routes = Mutex<[String]>([])
    /// Every shard ever made, kept after its thread ends (its counts are still the
    /// family's), and those whose thread ended, for the next new thread to take over.
    private let shards: ShardList
    private let local: PerThread<Lease?>

    init(bounds: [Duration]) {
        precondition(zip(bounds, bounds.dropFirst()).allSatisfy { $0 < $1 }, "bucket bounds must ascend")
        self.bounds = bounds
        let shards = ShardList()
        self.shards = shards
        local = PerThread { nil }
    }

    /// The slot of `route`, made on its first sight (under a lock: once a label set, as
    /// `Metrics.request` keeps the slot with the label set's counter).
    func slot(for route: String) -> Int {
        routes.withLock { routes in
            if let index = routes.firstIndex(of: route) { return index }
            routes.append(route)
            return routes.count - 1
        }
    }

    /// One observation for the route in `slot`, in the calling thread's shard.
    func record(_ duration: Duration, slot: Int) {
        // The first bucket that takes it; bounds.count for +Inf only.
        var bucket = 0
        while bucket < bounds.count && bounds[bucket] < duration { bucket += 1 }
        let stride = bounds.count + 1
        let shard = local.withValue { lease in
            if let lease { return lease.shard }
            let made = Lease(shards.take(), list: shards)
            lease = made
            return made.shard
        }
        shard.state.withLock { state in
            state.record(slot: slot, bucket: bucket, stride: stride, duration: duration)
        }
    }

    /// Every shard's counts summed: per slot, the observations in each bucket (not
    /// cumulative; the last is past every bound), and their sum.
    func merged() -> [(route: String, counts: [Int], sum: Duration)] {
        let routes = routes.withLock { $0 }
        let stride = bounds.count + 1
        var counts = [Int](repeating: 0, count: routes.count * stride)
        var sums = [Duration](repeating: .zero, count: routes.count)
        for shard in shards.all() {
            shard.state.withLock { state in
                // A shard may know fewer slots than `routes` (or, made after the read
                // above, more: those wait for the next scrape).
                for index in 0..<min(state.counts.count, counts.count) { counts[index] += state.counts[index] }
                for slot in 0..<min(state.sums.count, sums.count) { sums[slot] += state.sums[slot] }
            }
        }
        return routes.indices.map { slot in
            (routes[slot], Array(counts[slot * stride..<(slot + 1) * stride]), sums[slot])
        }
    }

    /// The family's text as swift-prometheus renders a `DurationHistogram` family:
    /// nothing before the first request (the registry makes the family then), then the
    /// HELP and TYPE lines and each route's series (cumulative buckets, +Inf, sum, count).
    func render(into buffer: inout [UInt8]) {
        let series = merged()
        guard !series.isEmpty else { return }
        buffer.append(contentsOf: "# HELP \(Self.name) \(Self.help)\n".utf8)
        buffer.append(contentsOf: "# TYPE \(Self.name) histogram\n".utf8)
        for (route, counts, sum) in series {
            var label: [UInt8] = Array(#"route=""#.utf8)
            Self.appendEscapedLabelValue(route, to: &label)
            label.append(UInt8(ascii: "\""))
            var cumulative = 0
            for (bound, count) in zip(bounds, counts) {
                cumulative += count
                buffer.append(contentsOf: "\(Self.name)_bucket{".utf8)
                buffer.append(contentsOf: label)
                buffer.append(contentsOf: #",le=""#.utf8)
                buffer.append(contentsOf: bound.bucketRepresentation.utf8)
                buffer.append(contentsOf: "\"} \(cumulative)\n".utf8)
            }
            let total = cumulative + counts[bounds.count]
            buffer.append(contentsOf: "\(Self.name)_bucket{".utf8)
            buffer.append(contentsOf: label)
            buffer.append(contentsOf: #",le="+Inf"} \#(total)"#.utf8)
            buffer.append(UInt8(ascii: "\n"))
            buffer.append(contentsOf: "\(Self.name)_sum{".utf8)
            buffer.append(contentsOf: label)
            buffer.append(contentsOf: "} \(sum.bucketRepresentation)\n".utf8)
            buffer.append(contentsOf: "\(Self.name)_count{".utf8)
            buffer.append(contentsOf: label)
            buffer.append(contentsOf: "} \(total)\n".utf8)
        }
    }

    /// A label value escaped as the text format (and swift-prometheus) escape it:
    /// backslash, double quote and line feed.
    static func appendEscapedLabelValue(_ value: String, to buffer: inout [UInt8]) {
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): buffer.append(contentsOf: #"\\"#.utf8)
            case UInt8(ascii: "\""): buffer.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\n"): buffer.append(contentsOf: #"\n"#.utf8)
            default: buffer.append(byte)
            }
        }
    }

    /// One thread's counts: its lock is taken by its own thread on each request, and by a
    /// scrape, so it is contended only while a scrape reads it.
    final class Shard: Sendable {
        let state = Mutex(State())
    }

    struct State {
        /// slot * stride + bucket, not cumulative; grown when a slot is first recorded here.
        var counts: [Int] = []
        /// By slot, exact.
        var sums: [Duration] = []

        mutating func record(slot: Int, bucket: Int, stride: Int, duration: Duration) {
            if slot >= sums.count {
                sums.append(contentsOf: repeatElement(.zero, count: slot + 1 - sums.count))
                counts.append(contentsOf: repeatElement(0, count: (slot + 1) * stride - counts.count))
            }
            counts[slot * stride + bucket] += 1
            sums[slot] += duration
        }
    }

    /// Every shard, and the ones free to take: a thread that ends gives its shard back
    /// (through its `Lease`), so threads that come and go reuse shards rather than add one
    /// each. Its lock is taken at a thread's first record, at a thread's end, and at a scrape.
    final class ShardList: Sendable {
        private let shards = Mutex<(all: [Shard], free: [Shard])>(([], []))

        func take() -> Shard {
            shards.withLock { shards in
                if let reused = shards.free.popLast() { return reused }
                let made = Shard()
                shards.all.append(made)
                return made
            }
        }

        func giveBack(_ shard: Shard) { shards.withLock { $0.free.append(shard) } }

        func all() -> [Shard] { shards.withLock { $0.all } }
    }

    /// A thread's hold on a shard, kept in its `PerThread` value: released when the thread
    /// ends (the key's destructor), which gives the shard back with its counts.
    final class Lease {
        let shard: Shard
        let list: ShardList

        init(_ shard: Shard, list: ShardList) {
            self.shard = shard
            self.list = list
        }

        deinit { list.giveBack(shard) }
    }
}
