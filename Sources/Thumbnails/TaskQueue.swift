import Dispatch
import Foundation
import CSystem
import Glibc
import Synchronization

/// A FIFO of task ids run on Dispatch queues, at most `concurrency` at once.
///
/// No thread ever blocks waiting for a slot: `enqueue` starts a worker only while fewer
/// than `concurrency` run, and each worker takes ids until the FIFO is empty. Each slot
/// is a serial Dispatch queue: those get a thread each even when their tasks block (a
/// concurrent queue's blocking work is held to the core count on Linux). Its threads are
/// Dispatch's, never the FastCGI workers'. After `stop` no task starts; ids still
/// waiting are dropped (their records stay pending for the next start).
public final class TaskQueue: Sendable {
    private struct State {
        var waiting: [Int64] = []
        var head = 0
        var waitingSet: Set<Int64> = []
        var running = 0
        var stopped = false
        var freeSlots: [Int]

        mutating func take() -> Int64? {
            guard head < waiting.count else { return nil }
            let id = waiting[head]
            head += 1
            if head > 1024, head * 2 > waiting.count {
                waiting.removeFirst(head)
                head = 0
            }
            waitingSet.remove(id)
            return id
        }
    }

    public let concurrency: Int
    private let state: Mutex<State>
    private let slots: [DispatchQueue]
    /// For delayed enqueues only.
    private let timers: DispatchQueue
    private let work = Mutex<(@Sendable (Int64) -> Void)?>(nil)

    /// Added to the nice value of a thread while it runs tasks (Linux niceness is per
    /// thread), so that tasks yield the cores to the request threads.
    private let niceness: Int32

    /// A queue that runs nothing until `start`.
    public init(label: String, concurrency: Int, niceness: Int32 = 0) {
        self.concurrency = max(1, concurrency)
        self.niceness = niceness
        self.slots = (0..<self.concurrency).map { DispatchQueue(label: "\(label).\($0)", qos: .utility) }
        self.timers = DispatchQueue(label: "\(label).timers", qos: .utility)
        self.state = Mutex(State(freeSlots: Array((0..<self.concurrency).reversed())))
    }

    /// Sets what a task does (once, before the first `enqueue`).
    public func start(_ body: @escaping @Sendable (Int64) -> Void) {
        work.withLock { $0 = body }
    }

    /// Queues `id` (once: an id already waiting is not queued twice), now or after `delay`.
    public func enqueue(_ id: Int64, after delay: Duration? = nil) {
        if let delay {
            let nanoseconds = Int(delay.components.seconds) * 1_000_000_000 + Int(delay.components.attoseconds / 1_000_000_000)
            timers.asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) { [self] in enqueue(id) }
            return
        }
        let slot = state.withLock { state -> Int? in
            guard !state.stopped, state.waitingSet.insert(id).inserted else { return nil }
            state.waiting.append(id)
            guard state.running < concurrency, let slot = state.freeSlots.popLast() else { return nil }
            state.running += 1
            return slot
        }
        if let slot { slots[slot].async { [self] in drain(slot) } }
    }

    private func drain(_ slot: Int) {
        guard let work = work.withLock({ $0 }) else { preconditionFailure("TaskQueue.start was not called") }
        // Dispatch lends the thread: give its priority back when the FIFO is empty.
        let thread = id_t(assetd_system_gettid())
        let which = __priority_which_t(PRIO_PROCESS.rawValue)
        errno = 0
        let previous = getpriority(which, thread)
        let lowered = niceness != 0 && errno == 0 && setpriority(which, thread, previous + niceness) == 0
        defer { if lowered { setpriority(which, thread, previous) } }
        while let id = state.withLock({ state -> Int64? in
            if !state.stopped, let id = state.take() { return id }
            state.running -= 1
            state.freeSlots.append(slot)
            return nil
        }) {
            work(id)
        }
    }

    /// Tasks waiting and running.
    public var counts: (waiting: Int, running: Int) {
        state.withLock { ($0.waitingSet.count, $0.running) }
    }

    /// Starts no more tasks, and waits up to `timeout` for the running ones; returns how
    /// many still run then.
    @discardableResult
    public func stop(waitingUpTo timeout: Duration) -> Int {
        state.withLock { $0.stopped = true }
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while true {
            let running = state.withLock { $0.running }
            if running == 0 || clock.now >= deadline { return running }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }
}

