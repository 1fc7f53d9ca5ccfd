import Glibc

/// A value behind a pthread read-write lock: any number of threads read it at once, and
/// a writer waits for them.
///
/// For the caches on the request path (verified tokens, pending uploads, the day's signing
/// key), read on every request and written rarely. Behind a `Mutex`, every reader waited
/// for every other one, and spun while the holder was descheduled: perf showed 4% of the
/// CPU in the mutex's slow path at 15k requests a second on 2 cores.
public final class ReadWriteLocked<Value> {
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>
    // Only touched with `lock` held: shared for `read`, exclusive for `write`.
    private var value: Value

    public init(_ value: Value) {
        self.value = value
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_rwlock_t())
        precondition(pthread_rwlock_init(lock, nil) == 0, "pthread_rwlock_init failed")
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    /// Runs `body` with shared access; other readers may run at the same time.
    public func read<Result>(_ body: (Value) throws -> Result) rethrows -> Result {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body(value)
    }

    /// Runs `body` with exclusive access.
    public func write<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body(&value)
    }
}

// The lock makes it safe to share across threads only what is itself safe to share.
extension ReadWriteLocked: @unchecked Sendable where Value: Sendable {}
