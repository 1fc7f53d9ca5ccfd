import CSystem
import Foundation
import Glibc
import Logging
import Synchronization

/// The decoder zygote as a child of assetd's, where no systemd unit runs it (the dev stack,
/// the tests): what `assetd-thumbnailer.socket` and `Restart=always` do in production.
/// assetd makes the listening socket (0600, in its private scratch directory) and keeps
/// it, so connections made while the zygote restarts wait in its backlog; it spawns the
/// zygote with an empty environment, that socket as standard input, its own standard
/// error, and the reading end of a lifeline pipe (the zygote ends when assetd does); and a
/// thread of its own waits for the zygote and starts another when it ends.
final class ZygoteProcess: Sendable {
    private let executable: String
    private let socketPath: String
    private let listener: Int32
    private let lifeline: (read: Int32, write: Int32)
    private let logger: Logger
    private let state = Mutex<(pid: pid_t?, stopped: Bool)>((nil, false))
    /// A zygote that ends sooner than this after its start is restarted only after it;
    /// each quick death in a row doubles the wait, up to `maxRestartDelay`, so a zygote
    /// that cannot start (a broken libvips, a second thread at fork) neither spins nor
    /// fills the log with a line a second.
    static let restartDelay: Duration = .seconds(1)
    static let maxRestartDelay: Duration = .seconds(60)

    var pid: pid_t? { state.withLock { $0.pid } }

    init(executable: String, socketPath: String, logger: Logger) throws(DecodeFailure) {
        self.executable = executable
        self.socketPath = socketPath
        self.logger = logger
        listener = try Self.listen(at: socketPath)
        var ends: [Int32] = [-1, -1]
        // Close-on-exec at once: every process assetd spawns closes all but its own anyway.
        guard pipe(&ends) == 0, fcntl(ends[0], F_SETFD, FD_CLOEXEC) == 0, fcntl(ends[1], F_SETFD, FD_CLOEXEC) == 0 else {
            close(listener)
            throw .unavailable("cannot make the decoder's lifeline: errno \(errno)")
        }
        lifeline = (ends[0], ends[1])
        // The first start waits for nothing: a task's connection waits in the backlog.
        let thread = Thread { [self] in supervise() }
        thread.name = "decoder zygote"
        thread.start()
    }

    /// Ends the zygote (and with it its children) for good.
    func stop() {
        let pid = state.withLock { state -> pid_t? in
            state.stopped = true
            return state.pid
        }
        if let pid { kill(pid, SIGKILL) }
        unlink(socketPath)
    }

    private func supervise() {
        let clock = ContinuousClock()
        var delay = Self.restartDelay / 2  // doubled before the first wait: 1 s, 2 s, 4 s ...
        while true {
            let started = clock.now
            let spawned = state.withLock { state -> Result<pid_t, DecodeFailure>? in
                guard !state.stopped else { return nil }
                do throws(DecodeFailure) {
                    let pid = try spawn()
                    state.pid = pid
                    return .success(pid)
                } catch {
                    return .failure(error)
                }
            }
            guard let spawned else { break }
            switch spawned {
            case .success(let pid):
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                if state.withLock({ $0.stopped }) { break }
                logger.warning("the decoder zygote ended; starting another", metadata: [
                    "pid": "\(pid)", "how": "\(DecoderZygote.describe(status: status) ?? "it exited with status 0")",
                ])
            case .failure(let error):
                logger.error("cannot start the decoder zygote; trying again", metadata: ["error": "\(error)"])
            }
            let lived = clock.now - started
            // A zygote that lived a while had its start-up behind it: the wait starts over.
            delay = lived > Self.maxRestartDelay ? Self.restartDelay : min(delay * 2, Self.maxRestartDelay)
            if lived < delay {
                let left = delay - lived
                usleep(UInt32(left.components.seconds * 1_000_000 + left.components.attoseconds / 1_000_000_000_000))
            }
        }
        close(listener)
        close(lifeline.read)
        close(lifeline.write)
    }

    private func spawn() throws(DecodeFailure) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // The listening socket as standard input, nothing as standard output, assetd's
        // standard error (libvips' warnings, one escaped line each, reach assetd's log), the
        // lifeline as 3, and nothing else of assetd's: not the FastCGI socket, the
        // database, S3 connections.
        posix_spawn_file_actions_adddup2(&actions, listener, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, lifeline.read, 3)
        _ = assetd_system_spawn_addclosefrom(&actions, 4)
        var argv: [UnsafeMutablePointer<CChar>?] = [strdup(executable), nil]
        defer { free(argv[0]) }
        // An empty environment: nothing of assetd's settings, secrets included.
        var envp: [UnsafeMutablePointer<CChar>?] = [nil]
        var pid = pid_t()
        let spawned = SpawnAttributes.withDefaultSignals { attributes in
            posix_spawn(&pid, executable, &actions, &attributes, &argv, &envp)
        }
        guard spawned == 0 else { throw .unavailable("cannot run the decoder \(executable): \(String(cString: strerror(spawned)))") }
        return pid
    }

    /// A listening unix socket at `path` (a stale one replaced), for assetd's user only.
    private static func listen(at path: String) throws(DecodeFailure) -> Int32 {
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { throw .unavailable("cannot make the decoder's socket: errno \(errno)") }
        var address = sockaddr_un()
        guard fill(&address, path: path) else {
            close(listener)
            throw .unavailable("the decoder's socket path is too long: \(path)")
        }
        unlink(path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, chmod(path, 0o600) == 0, Glibc.listen(listener, 64) == 0 else {
            let error = errno
            close(listener)
            throw .unavailable("cannot listen at \(path): \(String(cString: strerror(error)))")
        }
        return listener
    }

    /// `address` for a unix socket at `path`; false when the path does not fit.
    static func fill(_ address: inout sockaddr_un, path: String) -> Bool {
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        return true
    }
}
