import Foundation
import Synchronization
import Testing
@testable import AssetStore

/// The PostgreSQL store's limit of searches at once (ASSETD_DATABASE_SEARCHES): never more
/// than the limit inside, waiters let in in the order they came, a bounded wait.
struct SearchGateTests {
    /// Threads that each hold the gate for a moment: at most `limit` inside at once.
    @Test func neverMoreThanTheLimitInside() throws {
        let gate = SearchGate(limit: 2, timeout: .seconds(5))
        let inside = Mutex((now: 0, most: 0))
        let group = DispatchGroup()
        for _ in 0..<8 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                _ = try? gate.run {
                    inside.withLock { $0.now += 1; $0.most = max($0.most, $0.now) }
                    Thread.sleep(forTimeInterval: 0.01)
                    inside.withLock { $0.now -= 1 }
                }
            }
        }
        #expect(group.wait(timeout: .now() + 10) == .success)
        #expect(inside.withLock { $0.most } == 2)
    }

    /// Waiters enter in the order they began to wait, whatever order the scheduler wakes them.
    @Test func waitersEnterInTheOrderTheyCame() throws {
        let gate = SearchGate(limit: 1, timeout: .seconds(5))
        let order = Mutex<[Int]>([])
        let holding = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let group = DispatchGroup()
        group.enter()
        Thread.detachNewThread {
            defer { group.leave() }
            _ = try? gate.run { holding.signal(); release.wait() }
        }
        holding.wait()
        for index in 0..<6 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                _ = try? gate.run { order.withLock { $0.append(index) } }
            }
            // This one waits before the next is started.
            let deadline = Date().addingTimeInterval(5)
            while gate.waitingCount < index + 1, Date() < deadline { Thread.sleep(forTimeInterval: 0.001) }
        }
        release.signal()
        #expect(group.wait(timeout: .now() + 10) == .success)
        #expect(order.withLock { $0 } == Array(0..<6))
    }

    /// A search that finds every slot busy past the timeout gets the pool's "busy" error
    /// (SQLSTATE 53300, a 503), and its place in the line is given up: the next caller enters.
    @Test func aWaitIsBounded() throws {
        let gate = SearchGate(limit: 1, timeout: .milliseconds(50))
        let holding = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0), done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            _ = try? gate.run { holding.signal(); release.wait() }
            done.signal()
        }
        holding.wait()
        let error = #expect(throws: PGError.self) { try gate.run { } }
        #expect(error?.sqlState == "53300")
        #expect(gate.waitingCount == 0)
        release.signal()
        done.wait()
        #expect(try gate.run { 7 } == 7)
    }

    /// A search that waited at the gate waits for a search connection only until its
    /// deadline, and the 503's message names the search connections, their setting and
    /// the wait it made (review13 P3), not the main pool's 5 s.
    @Test func aSearchConnectionsWaitIsNamedForWhatItWaited() throws {
        guard Backend.all.contains(.postgres), case .postgres(let url) = try Backend.postgres.fresh() else { return }
        var settings = PostgresRecordStore.Settings()
        settings.searches = 1
        let store = try PostgresRecordStore(url: url, settings: settings)
        let holding = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0), done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            _ = try? store.searchPool.with { _ in holding.signal(); release.wait() }
            done.signal()
        }
        holding.wait()
        defer { release.signal(); done.wait() }
        let started = ContinuousClock.now
        do {
            try store.searchPool.with(until: .now + .milliseconds(200)) { _ in }
            Issue.record("a busy search connection was handed out")
        } catch let error as PGError {
            #expect(error.sqlState == "53300")
            #expect(error.message.contains("search connection") && error.message.contains("ASSETD_DATABASE_SEARCHES=1"), "\(error.message)")
            #expect(!error.message.contains("5 seconds") && !error.message.contains("ASSETD_DATABASE_POOL"), "\(error.message)")
        }
        #expect(ContinuousClock.now - started < .seconds(2))
    }
}
