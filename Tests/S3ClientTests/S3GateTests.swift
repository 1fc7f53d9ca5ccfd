import Foundation
import Testing
@testable import S3Client

/// The bulkhead, stall detector and breaker in front of S3, driven by hand.
struct S3GateTests {
    func refusal(_ gate: S3Gate) -> String? {
        do {
            try gate.enter()
            return nil
        } catch {
            return error.code
        }
    }

    @Test func stalledPermitsRefuseAtOnce() throws {
        var configuration = S3Gate.Configuration(permits: 2)
        configuration.stallAfter = .milliseconds(100)
        let gate = S3Gate(configuration: configuration)
        try gate.enter()
        try gate.enter()
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
        try gate.enter()
        let released = DispatchSemaphore(value: 0)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.1) {
            gate.leave(.answered)
            released.signal()
        }
        #expect(refusal(gate) == nil)
        released.wait()
        gate.leave(.answered)
    }

    @Test func theBreakerOpensAfterFailuresAndAProbeClosesIt() throws {
        var configuration = S3Gate.Configuration(permits: 4)
        configuration.failuresToOpen = 2
        configuration.openFor = .milliseconds(200)
        let gate = S3Gate(configuration: configuration)
        for _ in 0..<2 {
            try gate.enter()
            gate.leave(.failed)
        }
        #expect(gate.isOpen)
        #expect(refusal(gate) == "Unavailable")
        Thread.sleep(forTimeInterval: 0.25)
        // Half-open: one probe goes through, alone; its failure opens the breaker again.
        #expect(try gate.enter() == true)
        #expect(refusal(gate) == "Unavailable", "a second call while the probe is out")
        gate.leave(.failed, probe: true)
        #expect(refusal(gate) == "Unavailable")
        Thread.sleep(forTimeInterval: 0.25)
        #expect(try gate.enter() == true)
        gate.leave(.answered, probe: true)
        #expect(!gate.isOpen)
        #expect(refusal(gate) == nil)
        gate.leave(.answered)
    }
}
