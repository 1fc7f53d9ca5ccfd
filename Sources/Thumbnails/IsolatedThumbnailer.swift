import CSystem
import Glibc
import Synchronization

/// Why the decoder made no thumbnail.
public enum DecodeFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// The decoder looked at the content and refused it (the decode budget, a corrupt
    /// file, a loader mismatch): the same bytes fail the same way again. Final.
    case refused(String)
    /// The decoder died (a crash, SIGKILL, its memory or CPU limit), ran past its
    /// deadline, or could not be reached: this attempt is lost, another may succeed.
    case crashed(String)

    public var description: String {
        switch self {
        case .refused(let reason), .crashed(let reason): reason
        }
    }
}

/// What the thumbnail worker needs: the JPEG of an open file of a detected type.
public protocol ThumbnailDecoding: Sendable {
    func thumbnail(ofFile descriptor: Int32, detectedType: String) throws(DecodeFailure) -> [UInt8]
}

/// Thumbnails made by `assetd-thumbnailer`, a process that holds no secret: either a child
/// spawned for each task (empty environment, no descriptor but its connection, killed at
/// the deadline), or an instance of the systemd unit behind `assetd-thumbnailer.socket`
/// (its own dynamic user, no network, no view of assetd's files). See DecoderProtocol.
public final class IsolatedThumbnailer: ThumbnailDecoding {
    public enum Endpoint: Sendable, Equatable {
        /// Spawns this executable for each task.
        case spawn(executable: String)
        /// Connects to this socket (ASSETD_THUMBNAILER_SOCKET): one connection, one instance.
        case socket(path: String)
    }

    public struct Settings: Sendable {
        public var endpoint: Endpoint
        public var thumbnail: Thumbnailer.Settings
        /// RLIMIT_AS of the decoder and of ffmpeg under it (ASSETD_THUMBNAILER_MAX_MEMORY).
        public var memoryBytes: Int
        /// The wall-clock deadline of one task (ASSETD_THUMBNAIL_TIMEOUT); also its RLIMIT_CPU.
        public var timeoutSeconds: Int
        /// A private directory for a video's frame when the decoder is a child; nil under
        /// systemd (the unit's own /tmp).
        public var scratch: String?
        /// Decoders started ahead of their task (libvips loaded, waiting for a request),
        /// so that a task does not wait for a process to start: one per concurrent task.
        public var spares: Int

        public init(endpoint: Endpoint, thumbnail: Thumbnailer.Settings = .init(), memoryBytes: Int = 1 << 30,
                    timeoutSeconds: Int = 60, scratch: String? = nil, spares: Int = 1) {
            self.spares = max(0, spares)
            self.endpoint = endpoint
            self.thumbnail = thumbnail
            self.memoryBytes = memoryBytes
            self.timeoutSeconds = timeoutSeconds
            self.scratch = scratch
        }
    }

    public let settings: Settings

    /// A decoder started ahead: its connection, its pid when a child, and when it started.
    private struct Spare {
        let connection: Int32
        let pid: pid_t?
        let started: ContinuousClock.Instant
    }

    private let spares = Mutex<[Spare]>([])
    /// Children decoding a task now.
    private let running = Mutex<Set<pid_t>>([])

    /// The pids of the children decoding now and of the spares (for tests and operators).
    public var childPIDs: (running: [Int32], spares: [Int32]) {
        (running.withLock { Array($0) }, spares.withLock { $0.compactMap(\.pid) })
    }
    /// A spare waits at most this long (the decoder itself gives up waiting after 300 s).
    static let spareLifetime: Duration = .seconds(240)

    public init(settings: Settings) {
        self.settings = settings
    }

    deinit {
        for spare in spares.withLock({ $0 }) { Self.discard(spare) }
    }

    /// A connection to a decoder for one task: a live spare when there is one, else a new
    /// one; then the spares are topped up, so that the next task finds one ready.
    private func decoderForTask() throws(DecodeFailure) -> (Int32, pid_t?) {
        let clock = ContinuousClock()
        var taken: Spare?
        while taken == nil, let spare = spares.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
            if clock.now - spare.started < Self.spareLifetime, Self.isWaiting(spare) {
                taken = spare
            } else {
                Self.discard(spare)
            }
        }
        let connection: (Int32, pid_t?)
        if let taken {
            connection = (taken.connection, taken.pid)
        } else {
            connection = try connect()
        }
        topUpSpares()
        return connection
    }

    private func topUpSpares() {
        while spares.withLock({ $0.count }) < settings.spares {
            guard let (connection, pid) = try? connect() else { return }
            spares.withLock { $0.append(Spare(connection: connection, pid: pid, started: ContinuousClock.now)) }
        }
    }

    /// A waiting decoder has said nothing: readable (EOF) or hung up means it is gone.
    private static func isWaiting(_ spare: Spare) -> Bool {
        var poller = pollfd(fd: spare.connection, events: Int16(POLLIN), revents: 0)
        return poll(&poller, 1, 0) == 0
    }

    private static func discard(_ spare: Spare) {
        close(spare.connection)
        if let pid = spare.pid {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        }
    }

    /// `assetd-thumbnailer` beside the running executable (the build directory, /usr/bin).
    public static func executableBesideSelf() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return "/usr/bin/assetd-thumbnailer" }
        let path = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        return directory + "/assetd-thumbnailer"
    }

    public func thumbnail(ofFile descriptor: Int32, detectedType: String) throws(DecodeFailure) -> [UInt8] {
        // A read-only descriptor of its own, which the decoder's user may open: the file's
        // mode allows reading, and its directory (assetd's, 0700) lets no one reach it by
        // path, so only a holder of the descriptor can.
        let source = Glibc.open("/proc/self/fd/\(descriptor)", O_RDONLY | O_CLOEXEC)
        guard source >= 0 else { throw .crashed("cannot reopen the source read-only: errno \(errno)") }
        defer { close(source) }
        fchmod(source, 0o644)

        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(settings.timeoutSeconds)
        let (connection, child) = try decoderForTask()
        defer { close(connection) }
        if let child { running.withLock { _ = $0.insert(child) } }
        defer { if let child { running.withLock { _ = $0.remove(child) } } }
        let request = DecodeRequest(type: detectedType, settings: settings.thumbnail, memoryBytes: settings.memoryBytes,
                                    timeoutSeconds: settings.timeoutSeconds, scratch: child == nil ? nil : settings.scratch)
        let body = request.encoded
        let message = DecoderProtocol.header(DecoderProtocol.requestMagic, body.count) + body
        let sent = message.withUnsafeBytes { assetd_system_send_with_descriptor(connection, $0.baseAddress, UInt($0.count), source) }

        var timedOut = false
        var answer: Result<[UInt8], DecodeFailure>
        if sent != message.count {
            answer = .failure(.crashed("the decoder took no request: errno \(errno)"))
        } else if let header = DecoderProtocol.read(connection, 5, deadline: deadline, timedOut: &timedOut) {
            let length = DecoderProtocol.length(header[1..<5])
            switch header[0] {
            case DecoderProtocol.jpeg where length > 0 && length <= DecoderProtocol.maxJPEGBytes:
                if let jpeg = DecoderProtocol.read(connection, length, deadline: deadline, timedOut: &timedOut) {
                    answer = .success(jpeg)
                } else {
                    answer = .failure(.crashed("the decoder's answer broke off"))
                }
            case DecoderProtocol.refused where length <= DecoderProtocol.maxReasonBytes:
                if let reason = DecoderProtocol.read(connection, length, deadline: deadline, timedOut: &timedOut) {
                    answer = .failure(.refused(String(decoding: reason, as: UTF8.self)))
                } else {
                    answer = .failure(.crashed("the decoder's answer broke off"))
                }
            default:
                answer = .failure(.crashed("the decoder's answer is malformed"))
            }
        } else {
            answer = .failure(.crashed("the decoder closed the connection without an answer"))
        }
        if timedOut {
            answer = .failure(.crashed("the decoder ran past its deadline (\(settings.timeoutSeconds) s) and was killed"))
        }
        if let child {
            // A child that answered exits at once; one that did not is killed here.
            if case .success = answer {} else if case .failure(.refused) = answer {} else { kill(child, SIGKILL) }
            let status = Self.reap(child, killAfter: .seconds(2))
            if case .failure(.crashed(let reason)) = answer, !timedOut, let status {
                answer = .failure(.crashed("\(reason): \(status)"))
            }
        } else if timedOut {
            // systemd's instance: closing the connection ends it (and its own alarm and
            // RuntimeMaxSec= stop it anyway).
            answer = .failure(.crashed("the decoder ran past its deadline (\(settings.timeoutSeconds) s); the connection was closed"))
        }
        return try answer.get()
    }

    /// A connection to a fresh decoder, and its pid when it is a child.
    private func connect() throws(DecodeFailure) -> (Int32, pid_t?) {
        switch settings.endpoint {
        case .socket(let path):
            let connection = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard connection >= 0 else { throw .crashed("cannot make a socket: errno \(errno)") }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
                close(connection)
                throw .crashed("the decoder's socket path is too long")
            }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (index, byte) in bytes.enumerated() { raw[index] = byte }
            }
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(connection, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard connected == 0 else {
                let error = errno
                close(connection)
                throw .crashed("cannot reach the decoder at \(path): \(String(cString: strerror(error)))")
            }
            return (connection, nil)
        case .spawn(let executable):
            var pair: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
                throw .crashed("cannot make a socketpair: errno \(errno)")
            }
            defer { close(pair[1]) }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            // Its connection as standard input and output, assetd's standard error as its own
            // (libvips' warnings, one escaped line each, reach assetd's log), and nothing
            // else of assetd's: not the FastCGI socket, the database, S3 connections.
            posix_spawn_file_actions_adddup2(&actions, pair[1], 0)
            posix_spawn_file_actions_adddup2(&actions, pair[1], 1)
            _ = assetd_system_spawn_addclosefrom(&actions, 3)
            var attributes = posix_spawnattr_t()
            posix_spawnattr_init(&attributes)
            defer { posix_spawnattr_destroy(&attributes) }
            var all = sigset_t(), none = sigset_t()
            sigfillset(&all)
            sigemptyset(&none)
            posix_spawnattr_setsigdefault(&attributes, &all)
            posix_spawnattr_setsigmask(&attributes, &none)
            posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
            var argv: [UnsafeMutablePointer<CChar>?] = [strdup(executable), nil]
            defer { free(argv[0]) }
            // An empty environment: nothing of assetd's settings, secrets included.
            var envp: [UnsafeMutablePointer<CChar>?] = [nil]
            var pid = pid_t()
            let spawned = posix_spawn(&pid, executable, &actions, &attributes, &argv, &envp)
            guard spawned == 0 else {
                close(pair[0])
                throw .crashed("cannot run the decoder \(executable): \(String(cString: strerror(spawned)))")
            }
            return (pair[0], pid)
        }
    }

    /// Waits for a child, killing it when it has not exited within `killAfter`; how it
    /// ended, in words, or nil when it exited 0.
    private static func reap(_ pid: pid_t, killAfter: Duration) -> String? {
        let clock = ContinuousClock()
        let deadline = clock.now + killAfter
        var status: Int32 = 0
        while true {
            let done = waitpid(pid, &status, WNOHANG)
            if done == pid { break }
            if done < 0 && errno != EINTR { return "lost the decoder: errno \(errno)" }
            if clock.now >= deadline {
                kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                break
            }
            usleep(2_000)
        }
        let signal = status & 0x7f
        if signal != 0 {
            let name = [Int32(SIGKILL): "SIGKILL", SIGSEGV: "SIGSEGV", SIGABRT: "SIGABRT", SIGXCPU: "SIGXCPU (its CPU limit)",
                        SIGALRM: "SIGALRM (its deadline)", SIGBUS: "SIGBUS", SIGILL: "SIGILL", SIGTRAP: "SIGTRAP"][signal] ?? "signal \(signal)"
            return "it was killed by \(name)"
        }
        let code = (status >> 8) & 0xff
        return code == 0 ? nil : "it exited with status \(code)"
    }
}
