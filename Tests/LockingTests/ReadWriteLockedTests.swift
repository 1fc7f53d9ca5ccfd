import Foundation
import Testing
import Locking

struct ReadWriteLockedTests {
    /// Writers from many threads lose no update, and readers never see a torn value.
    @Test func concurrentWritersAndReaders() async {
        let box = ReadWriteLocked<(count: Int, twice: Int)>((0, 0))
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    for _ in 0..<1000 { box.write { $0.count += 1; $0.twice += 2 } }
                }
                group.addTask {
                    for _ in 0..<1000 { box.read { #expect($0.twice == 2 * $0.count) } }
                }
            }
        }
        #expect(box.read { $0.count } == 8000)
    }

    /// Two readers hold the lock at once: the second gets in while the first waits for it.
    @Test func readersShare() {
        let box = ReadWriteLocked(0)
        let inside = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        Thread {
            box.read { _ in
                inside.signal()
                release.wait()
            }
            done.signal()
        }.start()
        inside.wait()
        box.read { _ in release.signal() }  // would deadlock if reads excluded each other
        done.wait()
    }
}
