import Dispatch
import Foundation
import Synchronization
import Testing
import Locking

/// Every test runs its threads through `onThreads`, which waits a bounded time: a lock
/// that deadlocks fails the test instead of hanging the run. The suite's time limit is
/// the second line of defence: it reports, but cannot stop a thread blocked in
/// pthread_rwlock_*.
@Suite(.timeLimit(.minutes(1)))
struct ReadWriteLockedTests {
    /// Writers on many threads lose no update, and readers never see a torn value.
    @Test func concurrentWritersAndReaders() {
        let box = ReadWriteLocked<(count: Int, twice: Int)>((0, 0))
        let reads = Counter(), torn = Counter()
        let writer: @Sendable () -> Void = {
            for _ in 0..<5000 { box.write { $0.count += 1; $0.twice += 2 } }
        }
        let reader: @Sendable () -> Void = {
            for _ in 0..<5000 {
                box.read { if $0.twice != 2 * $0.count { torn.add() } }
                reads.add()
            }
        }
        #expect(onThreads(Array(repeating: writer, count: 8) + Array(repeating: reader, count: 8), within: 30))
        #expect(box.read { $0.count } == 40_000)
        #expect(box.read { $0.twice } == 80_000)
        #expect(reads.value == 40_000)
        #expect(torn.value == 0)
    }

    /// Two readers hold the lock at once: the second gets in while the first is inside
    /// and waits for it (up to 5 s; if reads excluded each other, it would wait in vain).
    @Test func readersShare() {
        let box = ReadWriteLocked(0)
        let inside = DispatchSemaphore(value: 0), secondInside = DispatchSemaphore(value: 0)
        let firstSawSecond = Counter()
        let finished = onThreads([
            {
                box.read { _ in
                    inside.signal()
                    if secondInside.wait(timeout: .now() + 5) == .success { firstSawSecond.add() }
                }
            },
            {
                guard inside.wait(timeout: .now() + 10) == .success else { return }
                _ = box.read { _ in secondInside.signal() }
            },
        ], within: 30)
        #expect(finished)
        #expect(firstSawSecond.value == 1, "the second reader could not get in while the first held the lock")
    }

    /// A writer waits while a reader is inside, and gets in once the reader leaves.
    @Test func aWriterWaitsForTheReader() {
        let box = ReadWriteLocked(0)
        let inside = DispatchSemaphore(value: 0), leave = DispatchSemaphore(value: 0)
        let writing = DispatchSemaphore(value: 0), written = DispatchSemaphore(value: 0)
        let group = DispatchGroup()
        group.enter()
        Thread {
            box.read { _ in
                inside.signal()
                _ = leave.wait(timeout: .now() + 10)
            }
            group.leave()
        }.start()
        #expect(inside.wait(timeout: .now() + 10) == .success)
        group.enter()
        Thread {
            writing.signal()
            box.write { $0 = 1 }
            written.signal()
            group.leave()
        }.start()
        #expect(writing.wait(timeout: .now() + 10) == .success)
        #expect(written.wait(timeout: .now() + 0.3) == .timedOut, "the writer got in while a reader held the lock")
        leave.signal()
        #expect(written.wait(timeout: .now() + 10) == .success, "the writer did not get in once the reader left")
        #expect(group.wait(timeout: .now() + 10) == .success)
        #expect(box.read { $0 } == 1)
    }
}

/// A count that threads add to.
final class Counter: Sendable {
    private let atomic = Atomic<Int>(0)
    func add() { atomic.add(1, ordering: .relaxed) }
    var value: Int { atomic.load(ordering: .relaxed) }
}

/// Runs each body on a thread of its own and waits at most `seconds` for all of them:
/// true when every one returned (any thread still blocked is left behind).
func onThreads(_ bodies: [@Sendable () -> Void], within seconds: Double) -> Bool {
    let group = DispatchGroup()
    for body in bodies {
        group.enter()
        Thread {
            body()
            group.leave()
        }.start()
    }
    return group.wait(timeout: .now() + seconds) == .success
}
