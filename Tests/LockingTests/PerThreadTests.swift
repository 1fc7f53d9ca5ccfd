import Foundation
import Synchronization
import Testing
import Locking

@Suite(.timeLimit(.minutes(1)))
struct PerThreadTests {
    /// Each thread gets a value of its own, made once on its first use, which keeps what
    /// the thread wrote in it between calls; no thread sees another's updates.
    @Test func eachThreadHasItsOwnValue() {
        let made = Counter(), wrong = Counter()
        let values = PerThread<[Int]> {
            made.add()
            return []
        }
        let body: @Sendable () -> Void = {
            for i in 0..<2000 { values.withValue { $0.append(i) } }
            values.withValue { if $0 != Array(0..<2000) { wrong.add() } }
        }
        #expect(onThreads(Array(repeating: body, count: 8), within: 30))
        #expect(made.value == 8)
        #expect(wrong.value == 0)
    }

    /// A thread's value is released when the thread ends (the key's destructor).
    @Test func valueReleasedWhenItsThreadEnds() {
        let alive = Counter(), released = Counter()
        final class Tracked: Sendable {
            let released: Counter
            init(_ released: Counter) { self.released = released }
            deinit { released.add() }
        }
        let values = PerThread<Tracked?> { nil }
        let body: @Sendable () -> Void = {
            values.withValue { $0 = Tracked(released) }
            alive.add()
        }
        #expect(onThreads(Array(repeating: body, count: 4), within: 30))
        #expect(alive.value == 4)
        // The destructors run as each thread exits, just after its body returned.
        let deadline = Date() + 10
        while released.value < 4, Date() < deadline { usleep(1000) }
        #expect(released.value == 4)
    }
}
