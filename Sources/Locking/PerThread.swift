import Glibc

/// A value of each thread's own (behind a pthread key), made on a thread's first use and
/// freed when the thread ends: for a small cache read on every request that each thread
/// can keep for itself, with no lock.
///
/// The formatted second of SigV4 and of the log's timestamp were each one value behind a
/// `Mutex` that all sixteen FastCGI workers took on every request: on 2 cores a holder is
/// often descheduled, and perf showed the mutex's slow path (spinning, then futex) at about
/// 1.3 µs a presign. A thread's own copy costs a `pthread_getspecific`.
///
/// Meant for a `static let` that lives as long as the process: `deinit` deletes the key but
/// cannot reach the other threads' values, so a `PerThread` freed while threads still hold
/// values leaks them.
public final class PerThread<Value>: @unchecked Sendable {
    /// Only ever touched by its own thread (the key gives each thread its own box).
    @usableFromInline final class Box {
        @usableFromInline let value: UnsafeMutablePointer<Value>

        init(_ value: Value) {
            self.value = .allocate(capacity: 1)
            self.value.initialize(to: value)
        }

        deinit {
            value.deinitialize(count: 1)
            value.deallocate()
        }
    }

    private let key: pthread_key_t
    private let make: @Sendable () -> Value

    /// `make` gives a thread's first value; it runs on whichever thread first asks.
    public init(_ make: @escaping @Sendable () -> Value) {
        self.make = make
        var key = pthread_key_t()
        precondition(pthread_key_create(&key) { pointer in
            if let pointer { Unmanaged<AnyObject>.fromOpaque(pointer).release() }
        } == 0, "pthread_key_create failed")
        self.key = key
    }

    deinit { pthread_key_delete(key) }

    /// Runs `body` with the calling thread's value. Inlinable, so that each caller has it
    /// specialised for its value (unspecialised, the value is copied through its witness
    /// table: ~300 instructions a call, callgrind).
    ///
    /// Not re-entrant: `body` must not call `withValue` on the same `PerThread` (it would get
    /// a second `inout` access to the value it is already changing).
    @inlinable
    public func withValue<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        try body(&box().value.pointee)
    }

    /// The calling thread's box.
    @usableFromInline func box() -> Box {
        if let existing = pthread_getspecific(key) {
            return Unmanaged<Box>.fromOpaque(existing).takeUnretainedValue()
        }
        return makeBox()
    }

    /// The calling thread's first use: its box made and kept under the key.
    private func makeBox() -> Box {
        let made = Box(make())
        // Retained for the key; released by the key's destructor when the thread ends.
        pthread_setspecific(key, Unmanaged.passRetained(made as AnyObject).toOpaque())
        return made
    }
}
