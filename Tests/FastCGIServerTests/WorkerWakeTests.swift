import Foundation
import Glibc
import Synchronization
import Testing
@testable import FastCGIServer

/// The shutdown's wake-up (SIGUSR2 to a worker in accept) never goes to a thread that has
/// ended: pthread_kill on one reads its freed descriptor, which crashed assetd's stop
/// (SIGSEGV in __pthread_kill_implementation) about once in ten stops under load.
struct WorkerWakeTests {
    /// run() turned the worker (`woken`) and is still sending when the worker leaves its
    /// loop: the worker's thread waits until the wake-up is out.
    @Test func aLeavingWorkerWaitsForAWakeUpBeingSent() {
        let worker = FastCGIServer.Worker(thread: pthread_self())
        #expect(worker.willAccept())
        let sending = DispatchSemaphore(value: 0)
        let sent = Atomic<Bool>(false)
        let waker = Thread {
            worker.wakeIfAccepting { _ in
                sending.signal()
                usleep(200_000)
                sent.store(true, ordering: .sequentiallyConsistent)
            }
        }
        waker.start()
        sending.wait()
        // The worker's accept returned (a request, or an error) as run() turned it.
        #expect(!worker.didAccept())
        worker.leave()
        let wasSent = sent.load(ordering: .sequentiallyConsistent)
        #expect(wasSent, "the worker left before the wake-up was sent")
    }

    /// A worker that saw `stopping` right after entering `accepting` leaves it: run() then
    /// passes it by and signals nothing.
    @Test func aWorkerThatLeftIsNeverWoken() {
        let worker = FastCGIServer.Worker(thread: pthread_self())
        #expect(worker.willAccept())
        worker.leave()
        var calls = 0
        #expect(!worker.wakeIfAccepting { _ in calls += 1 })
        #expect(calls == 0)
    }

    /// A worker woken while it accepted a request serves it, then never enters `accepting`
    /// again (it would be a thread run() no longer looks at).
    @Test func aWokenWorkerDoesNotAcceptAgain() {
        let worker = FastCGIServer.Worker(thread: pthread_self())
        #expect(worker.willAccept())
        #expect(worker.wakeIfAccepting { _ in })
        #expect(!worker.didAccept())
        #expect(!worker.willAccept())
        worker.leave()
        let phase = worker.phase.load(ordering: .sequentiallyConsistent)
        #expect(phase == FastCGIServer.Worker.signalled)
    }

    /// A worker in accept is woken once, and left `signalled` after the send.
    @Test func aWorkerInAcceptIsWokenOnce() {
        let worker = FastCGIServer.Worker(thread: pthread_self())
        #expect(worker.willAccept())
        var calls = 0
        #expect(worker.wakeIfAccepting { _ in calls += 1 })
        #expect(!worker.wakeIfAccepting { _ in calls += 1 })
        #expect(calls == 1)
    }
}
