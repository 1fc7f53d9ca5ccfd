import Foundation
import Synchronization
import Glibc
import Testing
@testable import Thumbnails

@Suite struct TaskQueueTests {
    final class Probe: Sendable {
        struct State { var running = 0, peak = 0, done: [Int64] = [] }
        let state = Mutex(State())
    }

    func wait(until condition: () -> Bool) {
        let deadline = Date().addingTimeInterval(10)
        while !condition() && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
    }

    @Test func neverRunsMoreThanItsConcurrency() {
        let probe = Probe()
        let queue = TaskQueue(label: "test", concurrency: 3)
        queue.start { id in
            probe.state.withLock { $0.running += 1; $0.peak = max($0.peak, $0.running) }
            Thread.sleep(forTimeInterval: 0.01)
            probe.state.withLock { $0.running -= 1; $0.done.append(id) }
        }
        for id in 1...40 { queue.enqueue(Int64(id)) }
        wait { probe.state.withLock { $0.done.count } == 40 }
        let state = probe.state.withLock { $0 }
        #expect(state.done.count == 40)
        #expect(state.peak == 3)
        #expect(Set(state.done) == Set((1...40).map(Int64.init)))
    }

    @Test func anIdWaitingIsQueuedOnce() {
        let probe = Probe()
        let gate = Mutex(true)
        let queue = TaskQueue(label: "test", concurrency: 1)
        queue.start { id in
            while gate.withLock({ $0 }) { Thread.sleep(forTimeInterval: 0.005) }
            probe.state.withLock { $0.done.append(id) }
        }
        queue.enqueue(1)
        wait { queue.counts.running == 1 && queue.counts.waiting == 0 }
        queue.enqueue(2)
        queue.enqueue(2)
        gate.withLock { $0 = false }
        wait { probe.state.withLock { $0.done.count } == 2 }
        Thread.sleep(forTimeInterval: 0.05)
        #expect(probe.state.withLock { $0.done } == [1, 2])
    }

    @Test func stopLetsRunningTasksFinishAndStartsNoOther() {
        let probe = Probe()
        let queue = TaskQueue(label: "test", concurrency: 1)
        queue.start { id in
            probe.state.withLock { $0.running += 1 }
            Thread.sleep(forTimeInterval: 0.2)
            probe.state.withLock { $0.done.append(id) }
        }
        for id in 1...5 { queue.enqueue(Int64(id)) }
        wait { probe.state.withLock { $0.running } == 1 }
        let stillRunning = queue.stop(waitingUpTo: .seconds(5))
        #expect(stillRunning == 0)
        #expect(probe.state.withLock { $0.done } == [1])
        queue.enqueue(9)
        Thread.sleep(forTimeInterval: 0.3)
        #expect(probe.state.withLock { $0.done } == [1])
    }

    @Test func aDelayedTaskWaitsItsTurn() {
        let probe = Probe()
        let queue = TaskQueue(label: "test", concurrency: 2)
        queue.start { id in probe.state.withLock { $0.done.append(id) } }
        let clock = ContinuousClock()
        let started = clock.now
        queue.enqueue(7, after: .milliseconds(200))
        wait { probe.state.withLock { $0.done.count } == 1 }
        #expect(clock.now - started >= .milliseconds(200))
    }
}

@Suite struct TaskQueueNicenessTests {
    @Test func tasksRunAtALowerPriority() {
        let seen = Mutex<Int32?>(nil)
        let queue = TaskQueue(label: "test", concurrency: 1, niceness: 5)
        let base = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        queue.start { _ in
            seen.withLock { $0 = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(currentThreadID())) }
        }
        queue.enqueue(1)
        let deadline = Date().addingTimeInterval(5)
        while seen.withLock({ $0 }) == nil && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        // At least 5 more than the process: Dispatch may lower a utility thread a little itself.
        #expect((seen.withLock { $0 } ?? base) >= base + 5)
    }
}

@_silgen_name("gettid")
private func currentThreadID() -> Int32
