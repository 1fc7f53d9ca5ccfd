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
///   `refused`. After that the gate sends a short probe of its own (HeadBucket), alone
///   while it runs: its answer closes the gate, its failure opens it again.
///
/// Refusals are `S3Error.refused`, with `retryAfter` seconds for the client.
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
    /// The half-open probe is out: everyone else is refused until its verdict.
    private var probing = false

    public init(configuration: Configuration) {
        self.configuration = configuration
        let now = ContinuousClock.now
        fullSince = now
        lastFinished = now
    }

    /// Takes a permit, waiting while S3 makes progress; throws `S3Error.refused` when the
    /// breaker is open, S3 has stalled, or no permit came within `maxWait`. Every
    /// successful `enter` must be followed by one `leave`.
    ///
    /// When the breaker's pause is over, the caller that finds it so runs `probe` (a short
    /// call of the client's own, such as HeadBucket) before its own call, while every other
    /// caller is refused at once. The probe's answer closes the gate or opens it again: a
    /// caller's own call is never the probe, so a long one (a CompleteMultipartUpload, a
    /// large download) cannot keep the gate half-open for minutes.
    public func enter(probe: () -> Bool) throws(S3Error) {
        condition.lock()
        defer { condition.unlock() }
        let started = ContinuousClock.now
        while true {
            let now = ContinuousClock.now
            if probing {
                throw .refused("S3 failed \(configuration.failuresToOpen) times in a row; a probe call is out", retryAfter: 1)
            }
            if let openUntil {
                if now < openUntil {
                    throw .refused("S3 failed \(configuration.failuresToOpen) times in a row; calls are paused",
                                   retryAfter: Self.seconds(openUntil - now))
                }
                probing = true
                condition.unlock()
                let answered = probe()
                condition.lock()
                probing = false
                guard answered else {
                    self.openUntil = ContinuousClock.now + configuration.openFor
                    throw .refused("S3 did not answer the gate's probe; calls are paused", retryAfter: Self.seconds(configuration.openFor))
                }
                self.openUntil = nil
                failuresInARow = 0
                condition.broadcast()
                continue
            }
            if inUse < configuration.permits {
                inUse += 1
                if inUse == configuration.permits { fullSince = now }
                return
            }
            let quietSince = max(fullSince, lastFinished)
            if now - quietSince >= configuration.stallAfter {
                throw .refused("every S3 permit is held by a call that has not finished; S3 seems stalled", retryAfter: 1)
            }
            if now - started >= configuration.maxWait {
                throw .refused("no S3 permit came free within \(configuration.maxWait)", retryAfter: 1)
            }
            _ = condition.wait(until: Date().addingTimeInterval(0.05))
        }
    }

    /// Gives the permit back and tells the breaker how the call went.
    public func leave(_ outcome: Outcome) {
        condition.lock()
        defer { condition.unlock() }
        inUse -= 1
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
