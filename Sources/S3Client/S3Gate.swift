import Foundation

/// Bounds what S3 trouble can cost the rest of the service: a bulkhead, a stall detector
/// and a circuit breaker in front of every S3 call.
///
/// - **Bulkhead.** At most `permits` calls are in S3 at once. assetd sets it below its
///   FastCGI thread count, so that while S3 hangs some workers are always free for the
///   routes that never touch S3 (part presigns, asset reads).
/// - **Stall detector.** A call that finds every permit taken waits for one, but only
///   while S3 makes progress: when no call has finished for `stallAfter` since the gate
///   filled, S3 is hung and the caller is refused at once instead of holding its worker.
///   Under a heavy but healthy load calls finish all the time, so callers wait their turn.
/// - **Breaker.** After `failuresToOpen` calls in a row that got no answer (timeout,
///   refused connection, 5xx), the gate opens for `openFor`: calls fail at once with
///   `Unavailable`. The first call after that is a probe, alone while it runs: its success
///   closes the gate, its failure opens it again.
///
/// Refusals are `S3Error`s without an HTTP status: `Overloaded` (bulkhead) and
/// `Unavailable` (breaker), with `retryAfter` seconds for the client.
public final class S3Gate: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var permits: Int
        public var maxWait: Duration = .seconds(5)
        public var stallAfter: Duration = .milliseconds(500)
        public var failuresToOpen: Int = 3
        public var openFor: Duration = .seconds(5)

        public init(permits: Int) { self.permits = max(1, permits) }
    }

    /// How a call through the gate ended, for the breaker.
    public enum Outcome: Sendable {
        /// S3 answered (any status that is not a server failure).
        case answered
        /// No answer (timeout, connection refused or reset) or a 5xx.
        case failed
    }

    public let configuration: Configuration
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var inUse = 0
    private var fullSince: ContinuousClock.Instant
    private var lastFinished: ContinuousClock.Instant
    private var failuresInARow = 0
    private var openUntil: ContinuousClock.Instant?
    /// The half-open probe is out: everyone else waits for its verdict.
    private var probing = false

    public init(configuration: Configuration) {
        self.configuration = configuration
        let now = ContinuousClock.now
        fullSince = now
        lastFinished = now
    }

    /// Takes a permit, waiting while S3 makes progress; throws when the breaker is open, S3
    /// has stalled, or no permit came within `maxWait`. Every successful `enter` must be
    /// followed by one `leave`.
    @discardableResult
    public func enter() throws(S3Error) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        let started = ContinuousClock.now
        var probe = false
        while true {
            let now = ContinuousClock.now
            if probing {
                throw S3Error(code: "Unavailable", message: "S3 failed \(configuration.failuresToOpen) times in a row; a probe call is out",
                              retryAfter: 1)
            }
            if let openUntil {
                if now < openUntil {
                    throw S3Error(code: "Unavailable", message: "S3 failed \(configuration.failuresToOpen) times in a row; calls are paused",
                                  retryAfter: Self.seconds(openUntil - now))
                }
                // Half-open: this call is the probe, alone until it returns; its failure
                // opens the gate again.
                self.openUntil = nil
                failuresInARow = configuration.failuresToOpen - 1
                probe = true
            }
            if inUse < configuration.permits {
                inUse += 1
                if inUse == configuration.permits { fullSince = now }
                if probe { probing = true }
                return probe
            }
            let quietSince = max(fullSince, lastFinished)
            if now - quietSince >= configuration.stallAfter {
                throw S3Error(code: "Overloaded", message: "every S3 permit is held by a call that has not finished; S3 seems stalled",
                              retryAfter: 1)
            }
            if now - started >= configuration.maxWait {
                throw S3Error(code: "Overloaded", message: "no S3 permit came free within \(configuration.maxWait)", retryAfter: 1)
            }
            _ = condition.wait(until: Date().addingTimeInterval(0.05))
        }
    }

    /// Gives the permit back and tells the breaker how the call went; `probe` is what
    /// `enter` returned.
    public func leave(_ outcome: Outcome, probe: Bool = false) {
        condition.lock()
        defer { condition.unlock() }
        inUse -= 1
        if probe { probing = false }
        let now = ContinuousClock.now
        lastFinished = now
        switch outcome {
        case .answered:
            failuresInARow = 0
        case .failed:
            failuresInARow += 1
            if failuresInARow >= configuration.failuresToOpen, openUntil == nil {
                openUntil = now + configuration.openFor
            }
        }
        condition.signal()
    }

    /// Whether the breaker is open now (for readiness).
    public var isOpen: Bool {
        condition.lock()
        defer { condition.unlock() }
        return openUntil.map { ContinuousClock.now < $0 } ?? false
    }

    /// Calls in S3 now (for metrics and tests).
    public var callsInFlight: Int {
        condition.lock()
        defer { condition.unlock() }
        return inUse
    }

    private static func seconds(_ duration: Duration) -> Int {
        max(1, Int(duration.components.seconds) + (duration.components.attoseconds > 0 ? 1 : 0))
    }
}
