import Foundation
import Glibc
import Testing
@testable import Thumbnails

/// Children start with default signal dispositions and an empty mask, whatever assetd's
/// own are (it ignores SIGPIPE; its threads block signals).
struct SpawnAttributesTests {
    /// The SigBlk and SigIgn lines of /proc/self/status as a child spawned with the
    /// attributes sees them, while the spawning thread blocks SIGUSR2 and SIGPIPE is ignored.
    private func childSignalState() throws -> [String: UInt64] {
        var blocked = sigset_t(), previous = sigset_t()
        sigemptyset(&blocked)
        sigaddset(&blocked, SIGUSR2)
        pthread_sigmask(SIG_BLOCK, &blocked, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        let oldPipe = signal(SIGPIPE, SIG_IGN)
        defer { signal(SIGPIPE, oldPipe) }

        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        defer { close(fds[0]) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        var argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/cat"), strdup("/proc/self/status"), nil]
        defer { argv.forEach { free($0) } }
        var envp: [UnsafeMutablePointer<CChar>?] = [nil]
        var pid = pid_t()
        let spawned = SpawnAttributes.withDefaultSignals { attributes in
            posix_spawn(&pid, "/bin/cat", &actions, &attributes, &argv, &envp)
        }
        close(fds[1])
        try #require(spawned == 0)
        var output: [UInt8] = [], buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(fds[0], &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            output.append(contentsOf: buffer.prefix(count))
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        var state: [String: UInt64] = [:]
        for line in String(decoding: output, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, ["SigBlk", "SigIgn"].contains(String(parts[0])) else { continue }
            state[String(parts[0])] = UInt64(parts[1].trimmingCharacters(in: .whitespaces), radix: 16)
        }
        return state
    }

    @Test func aChildGetsDefaultSignalsAndAnEmptyMask() throws {
        let state = try childSignalState()
        #expect(state["SigBlk"] == 0, "no signal blocked in the child")
        // Signals 1 to 31 (glibc keeps 32 and 33 for itself: sigfillset leaves them out).
        #expect(state["SigIgn"].map { $0 & 0x7fff_ffff } == 0, "no signal ignored in the child (SIGPIPE was, in the parent)")
    }
}
