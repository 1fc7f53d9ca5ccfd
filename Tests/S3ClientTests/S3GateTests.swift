import Foundation
import Testing
@testable import S3Client

/// The bulkhead, stall detector and breaker in front of S3, driven by hand.
struct S3GateTests {
    /// Why the gate refused a call (the start of its message), or nil when it let it in.
    func refusal(_ gate: S3Gate, probe: () -> Bool = { true }) -> String? {
        do {
            try gate.enter(probe: probe)
            return nil
        } catch {
            guard case .refused(let message, _) = error else { return "not a refusal: \(error)" }
            return message.contains("stalled") || message.contains("came free") ? "Overloaded" : "Unavailable"
        }
    }

    @Test func stalledPermitsRefuseAtOnce() throws {
        var configuration = S3Gate.Configuration(permits: 2)
        configuration.stallAfter = .milliseconds(100)
        let gate = S3Gate(configuration: configuration)
        try gate.enter(probe: { true })
        try gate.enter(probe: { true })
        #expect(gate.callsInFlight == 2)
        // Full, and nothing has finished for longer than stallAfter: refused, not queued.
        Thread.sleep(forTimeInterval: 0.15)
        let started = ContinuousClock.now
        #expect(refusal(gate) == "Overloaded")
        #expect(ContinuousClock.now - started < .seconds(1))
        // A call finishes: a permit is free again.
        gate.leave(.answered)
        #expect(refusal(gate) == nil)
        gate.leave(.answered)
        gate.leave(.answered)
        #expect(gate.callsInFlight == 0)
    }

    @Test func aWaiterGetsThePermitWhileS3MakesProgress() throws {
        var configuration = S3Gate.Configuration(permits: 1)
        configuration.stallAfter = .seconds(5)
        let gate = S3Gate(configuration: configuration)
        try gate.enter(probe: { true })
        let released = DispatchSemaphore(value: 0)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.1) {
            gate.leave(.answered)
            released.signal()
        }
        #expect(refusal(gate) == nil)
        released.wait()
        gate.leave(.answered)
    }

    @Test func theBreakerOpensAfterFailuresAndItsOwnProbeClosesIt() throws {
        var configuration = S3Gate.Configuration(permits: 4)
        configuration.failuresToOpen = 2
        configuration.openFor = .milliseconds(200)
        let gate = S3Gate(configuration: configuration)
        for _ in 0..<2 {
            try gate.enter(probe: { true })
            gate.leave(.failed)
        }
        #expect(gate.isOpen)
        var probes = 0
        #expect(refusal(gate, probe: { probes += 1; return true }) == "Unavailable")
        #expect(probes == 0, "no probe while the pause lasts")
        Thread.sleep(forTimeInterval: 0.25)
        // After the pause the gate probes first: a failed probe opens it again, and the
        // caller is refused without its call being sent.
        #expect(refusal(gate, probe: { probes += 1; return false }) == "Unavailable")
        #expect(probes == 1)
        #expect(gate.isOpen)
        Thread.sleep(forTimeInterval: 0.25)
        #expect(refusal(gate, probe: { probes += 1; return true }) == nil)
        #expect(probes == 2)
        #expect(!gate.isOpen)
        gate.leave(.answered)
    }

    /// The first call after the pause used to be the probe, alone while it ran: a
    /// CompleteMultipartUpload (10 min deadline) or a large download then kept every other
    /// S3 call and /readyz refused for minutes. Now the gate's own short probe decides, and
    /// the long call runs beside the others.
    @Test func aLongCallAfterThePauseDoesNotHoldTheGate() throws {
        var configuration = S3Gate.Configuration(permits: 4)
        configuration.failuresToOpen = 1
        configuration.openFor = .milliseconds(100)
        let gate = S3Gate(configuration: configuration)
        try gate.enter(probe: { true })
        gate.leave(.failed)
        #expect(gate.isOpen)
        Thread.sleep(forTimeInterval: 0.15)
        // The long call: admitted after the probe, and not left yet.
        try gate.enter(probe: { true })
        // Meanwhile, short calls pass.
        for _ in 0..<2 {
            #expect(refusal(gate) == nil)
            gate.leave(.answered)
        }
        gate.leave(.answered)
        #expect(gate.callsInFlight == 0)
    }

    /// While the probe is out, other callers are refused at once, not queued behind it.
    @Test func callersDuringTheProbeAreRefusedAtOnce() throws {
        var configuration = S3Gate.Configuration(permits: 4)
        configuration.failuresToOpen = 1
        configuration.openFor = .milliseconds(50)
        let gate = S3Gate(configuration: configuration)
        try gate.enter(probe: { true })
        gate.leave(.failed)
        Thread.sleep(forTimeInterval: 0.1)
        let probing = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            _ = try? gate.enter(probe: { probing.signal(); release.wait(); return true })
            gate.leave(.answered)
            done.signal()
        }
        probing.wait()
        let started = ContinuousClock.now
        #expect(refusal(gate) == "Unavailable")
        #expect(ContinuousClock.now - started < .milliseconds(500))
        release.signal()
        done.wait()
        #expect(refusal(gate) == nil)
        gate.leave(.answered)
    }
}
