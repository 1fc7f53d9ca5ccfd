import Foundation

/// At most `limit` searches in PostgreSQL at once from this process, admitted in the order
/// they came (ASSETD_DATABASE_SEARCHES).
///
/// A search is CPU in PostgreSQL: its walks and bitmap gathers read thousands of rows. With
/// more of them running than the database's cores, each one is time-shared with the others
/// (bench/search.sh at -c8 on 2 cores: 8 backends, a run queue of 10, every statement 3-4
/// times slower than at -c2, and a p99 up to 7 times the p50) and none is faster for it. Past the
/// limit a search waits here, first come first served, and then runs at full speed.
///
/// A waiter is handed its slot directly by the search that ends (no barging: a search that
/// arrives later never overtakes it), and gives up after `timeout` (the pool's, a 503).
final class SearchGate: @unchecked Sendable {
    let limit: Int
    private let timeout: Duration
    private let condition = NSCondition()
    private var free: Int
    /// The waiting searches, first come first.
    private var waiting: [Waiter] = []

    private final class Waiter {
        var admitted = false
    }

    init(limit: Int, timeout: Duration) {
        self.limit = max(1, limit)
        self.timeout = timeout
        free = self.limit
    }

    /// How many wait now (the tests).
    var waitingCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return waiting.count
    }

    /// `body` once a slot is this caller's; throws `PGError` 53300 after `timeout` waiting.
    func run<T>(_ body: () throws -> T) throws -> T {
        try run { _ in try body() }
    }

    /// The same, `body` told when this caller's `timeout` ends (from its arrival here), so
    /// that what it waits for next (a connection) ends then too: a search waits `timeout`
    /// in all before its 503, not `timeout` here and again in the pool.
    func run<T>(_ body: (_ deadline: ContinuousClock.Instant) throws -> T) throws -> T {
        let deadline = ContinuousClock.now + timeout
        try enter()
        defer { leave() }
        return try body(deadline)
    }

    private func enter() throws {
        condition.lock()
        defer { condition.unlock() }
        if free > 0 && waiting.isEmpty {
            free -= 1
            return
        }
        let waiter = Waiter()
        waiting.append(waiter)
        let deadline = Date(timeIntervalSinceNow: Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18)
        while !waiter.admitted {
            if !condition.wait(until: deadline) && !waiter.admitted {
                waiting.removeAll { $0 === waiter }
                throw PGError(message: "every search slot stayed busy for \(timeout) (ASSETD_DATABASE_SEARCHES=\(limit))",
                              sqlState: "53300", connectionLost: false)
            }
        }
    }

    private func leave() {
        condition.lock()
        defer { condition.unlock() }
        if waiting.isEmpty {
            free += 1
        } else {
            // The slot passes to the first waiter as it is: `free` stays as it was.
            waiting.removeFirst().admitted = true
            condition.broadcast()
        }
    }
}
