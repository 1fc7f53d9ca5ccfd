import Foundation
import Synchronization

/// The last readiness probe, kept for a few seconds: /readyz may be polled often (load
/// balancers, orchestrators), and S3 must not see a request for each poll.
final class ReadinessProbe: Sendable {
    struct State: Sendable {
        var database: Bool
        var s3: Bool
        var ok: Bool { database && s3 }
    }

    private struct Cache {
        var state: State?
        var probedAt: ContinuousClock.Instant?
        var probing = false
    }

    private let cache = Mutex(Cache())
    let maxAge: Duration

    init(maxAge: Duration = .seconds(5)) { self.maxAge = maxAge }

    /// The cached state, or a fresh one from `probe` when it is older than `maxAge`. One
    /// caller probes at a time; the others read the previous state meanwhile (the first
    /// callers, with no state yet, wait for it).
    func current(_ probe: () -> State) -> State {
        let now = ContinuousClock.now
        let cached: State? = cache.withLock { cache in
            if let state = cache.state, let at = cache.probedAt, now - at < maxAge { return state }
            if cache.probing, let state = cache.state { return state }
            cache.probing = true
            return nil
        }
        if let cached { return cached }
        let state = probe()
        cache.withLock {
            $0.state = state
            $0.probedAt = ContinuousClock.now
            $0.probing = false
        }
        return state
    }
}
