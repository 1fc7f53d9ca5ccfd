import Glibc

/// A value behind a pthread read-write lock: any number of threads read it at once, and
/// a writer waits for them.
///
/// For the caches on the request path (verified tokens, pending uploads, the day's signing
/// key), read on every request and written rarely. Behind a `Mutex`, every reader waited
/// for every other one, and spun while the holder was descheduled: perf showed 4% of the
/// CPU in the mutex's slow path at 15k requests a second on 2 cores.
///
/// `read` and `write` are inlinable, so that each caller gets them specialised for its
/// value: unspecialised, a read went through the value's witness table to copy it (about
/// 600 instructions a read, five reads a presign, callgrind).
public final class ReadWriteLocked<Value> {
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>
    /// Only touched with `lock` held: shared for `read`, exclusive for `write`. Behind a
    /// pointer rather than in a stored `var`, whose every access a class checks for
    /// exclusivity at run time (swift_beginAccess): the lock is what makes access exclusive.
    @usableFromInline let storage: UnsafeMutablePointer<Value>

    public init(_ value: Value) {
        storage = .allocate(capacity: 1)
        storage.initialize(to: value)
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_rwlock_t())
        precondition(pthread_rwlock_init(lock, nil) == 0, "pthread_rwlock_init failed")
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
        storage.deinitialize(count: 1)
        storage.deallocate()
    }

    /// Runs `body` with shared access; other readers may run at the same time.
    @inlinable
    public func read<Result>(_ body: (Value) throws -> Result) rethrows -> Result {
        lockShared()
        defer { unlock() }
        return try body(storage.pointee)
    }

    /// Runs `body` with exclusive access.
    @inlinable
    public func write<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lockExclusive()
        defer { unlock() }
        return try body(&storage.pointee)
    }

    @usableFromInline func lockShared() { pthread_rwlock_rdlock(lock) }
    @usableFromInline func lockExclusive() { pthread_rwlock_wrlock(lock) }
    @usableFromInline func unlock() { pthread_rwlock_unlock(lock) }
}

// The lock makes it safe to share across threads only what is itself safe to share.
extension ReadWriteLocked: @unchecked Sendable where Value: Sendable {}
