import CSystem
import Glibc
public import Logging

/// The decoder's long-running process, as Chromium's and Android's zygotes: it loads
/// libvips and its modules once, holds no secret, and forks a fresh child for each
/// connection on its listening socket. The child closes everything but its connection,
/// turns non-dumpable, confines itself (`assetd_system_confine`), serves that one task
/// (`DecoderServer`) and exits, so every file is still decoded in a throwaway address
/// space, for the price of a fork (~1 ms) instead of libvips' start-up (~70 ms of CPU).
///
/// The zygote itself decodes nothing and runs no libvips operation: it forks only while it
/// has a single thread (checked before each fork; it exits rather than fork with more). It
/// kills a child when assetd closes the child's connection (assetd's deadline) or at
/// `childLifetime`, reaps every child, and when a child ends without answering tells assetd
/// how (`E` + the reason), since assetd is not its parent.
public enum DecoderZygote {
    /// A child still running this long is killed, whatever its request said
    /// (ASSETD_THUMBNAIL_TIMEOUT is at most 3600 s; the child's own alarm comes first).
    static let childLifetime: Duration = .seconds(3660)
    /// Children at once; further connections wait in the socket's backlog.
    static let maxChildren = 64

    private struct Child {
        let pid: pid_t
        /// pidfd_open: readable once the child has ended.
        let ended: Int32
        /// The zygote's copy of the child's connection: it polls for assetd hanging up.
        let connection: Int32
        let started: ContinuousClock.Instant
        var killed = false
    }

    /// Serves connections on `listener` until `lifeline` (the read end of a pipe whose
    /// writer is assetd, when assetd runs the zygote itself) hangs up; returns the exit status.
    public static func run(listener: Int32, lifeline: Int32?, logger: Logger) -> Int32 {
        do throws(ThumbnailError) {
            try Vips.start(threads: 1)
        } catch {
            logger.critical("decoder zygote: \(error)")
            return 70
        }
        guard isSingleThreaded(logger: logger) else { return 70 }
        // What each child's sandbox will hold (assetd_system_confine): files need Landlock,
        // abstract Unix sockets its ABI 6 (Linux 6.12); seccomp keeps ptrace and every
        // signal but to the child itself out, whatever the Landlock ABI.
        let landlock = assetd_system_landlock_abi()
        if landlock < 0 {
            // Refused, not absent (EPERM: a seccomp filter of the container or of systemd):
            // each child fails its confinement and exits, rather than decode unconfined.
            logger.error("decoder zygote ready, but Landlock is refused (a seccomp filter of the container or service manager?): every decode fails until landlock_create_ruleset is allowed",
                         metadata: ["pid": "\(getpid())", "landlock_errno": "\(-landlock)", "error": "\(String(cString: strerror(-landlock)))"])
        } else {
            logger.info("decoder zygote ready", metadata: ["pid": "\(getpid())", "landlock_abi": "\(landlock)"])
        }
        if landlock >= 0 && landlock < 6 {
            let also = landlock < 1 ? " or from writing files" : ""
            logger.warning("decoder zygote: this kernel's Landlock (ABI \(landlock)) cannot keep a child from reaching abstract Unix sockets outside it\(also) (signals: the seccomp filter keeps them in)")
        }
        let clock = ContinuousClock()
        var children: [Child] = []
        while true {
            var pollers = [pollfd(fd: children.count < maxChildren ? listener : -1, events: Int16(POLLIN), revents: 0),
                           pollfd(fd: lifeline ?? -1, events: Int16(POLLIN), revents: 0)]
            for child in children {
                pollers.append(pollfd(fd: child.ended, events: Int16(POLLIN), revents: 0))
                // Only hang-ups (POLLHUP, always reported): the request is the child's to read.
                pollers.append(pollfd(fd: child.killed ? -1 : child.connection, events: 0, revents: 0))
            }
            let nearest = children.filter { !$0.killed }.map { $0.started + childLifetime - clock.now }.min()
            let timeout = nearest.map { Int32(clamping: max(0, $0.components.seconds * 1000 + 1)) } ?? -1
            let ready = poll(&pollers, nfds_t(pollers.count), timeout)
            if ready < 0 {
                if errno == EINTR { continue }
                logger.critical("decoder zygote: poll failed: errno \(errno)")
                return 71
            }
            if pollers[1].revents != 0 {
                // assetd is gone: so are its tasks, and what they ran (their groups).
                for child in children {
                    kill(child.pid, SIGKILL)
                    kill(-child.pid, SIGKILL)
                }
                return 0
            }
            var remaining: [Child] = []
            for (index, var child) in children.enumerated() {
                if pollers[2 + 2 * index].revents != 0 {
                    finish(child, logger: logger)
                    continue
                }
                // assetd hung up (its deadline, or it gave up), or the child outlived any deadline.
                if !child.killed && (pollers[3 + 2 * index].revents != 0 || clock.now - child.started >= childLifetime) {
                    kill(child.pid, SIGKILL)
                    child.killed = true
                }
                remaining.append(child)
            }
            children = remaining
            if pollers[0].revents != 0 {
                let connection = accept(listener, nil, nil)
                if connection >= 0, let child = fork(connection: connection, logger: logger) {
                    children.append(child)
                }
            }
        }
    }

    /// True when this process runs one thread: fork copies only the calling thread, so a
    /// lock another thread held would stay locked in the child forever.
    static func isSingleThreaded(logger: Logger) -> Bool {
        let threads = assetd_system_thread_count()
        guard threads == 1 else {
            logger.critical("decoder zygote: \(threads) threads, refusing to fork (a fork must copy the only thread)")
            return false
        }
        return true
    }

    /// A child for `connection`; nil when fork failed (assetd reads the closed connection
    /// as a lost attempt and retries). Exits when the zygote may not fork any more: its
    /// children die with it (their parent-death signal), and whoever runs it starts another.
    private static func fork(connection: Int32, logger: Logger) -> Child? {
        guard isSingleThreaded(logger: logger) else { exit(70) }
        let zygote = getpid()
        let pid = assetd_system_fork()
        if pid == 0 { serveInChild(connection: connection, zygote: zygote) }
        guard pid > 0 else {
            logger.error("decoder zygote: fork failed: errno \(errno)")
            close(connection)
            return nil
        }
        let ended = assetd_system_pidfd_open(pid)
        guard ended >= 0 else {
            logger.critical("decoder zygote: pidfd_open failed: errno \(errno)")
            kill(pid, SIGKILL)
            exit(71)
        }
        return Child(pid: pid, ended: ended, connection: connection, started: .now)
    }

    /// The child: its limits and its one task, then exit. Never returns.
    private static func serveInChild(connection: Int32, zygote: pid_t) -> Never {
        // Gone with the zygote (a single-threaded parent, so its thread is the process).
        _ = assetd_system_set_parent_death_signal(SIGKILL)
        if getppid() != zygote { _exit(70) }
        // No other decoder child (the same user) may read its memory or ptrace it.
        _ = assetd_system_set_dumpable(0)
        // Its connection as standard input and output; standard error stays the zygote's
        // (assetd's, or the journal); the listening socket, the lifeline and the other
        // children's connections are closed.
        dup2(connection, 0)
        dup2(connection, 1)
        assetd_system_close_from(3)
        // A process group of its own, which ffmpeg and ffprobe inherit: the child may not
        // signal them once confined (no signal leaves it), so the zygote kills the group
        // when the child ends (finish), a program left past its deadline included.
        _ = setpgid(0, 0)
        // Its own sandbox, before the request is read (`assetd_system_confine`): no file
        // written anywhere (its frame and ffprobe's answer go to memfds), no signal, ptrace
        // or /proc/PID peek at a sibling, the zygote or assetd. ffmpeg inherits it. It fails
        // closed: a child that cannot confine itself decodes nothing.
        guard assetd_system_confine() >= 0 else {
            let line = Array("assetd-thumbnailer: the decoder child cannot confine itself: errno \(errno)\n".utf8)
            _ = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
            _exit(71)
        }
        // _exit: the answer went out with write(2); no atexit handler or stdio buffer of
        // the zygote's (its standard output is the connection now) runs once per child.
        _exit(DecoderServer.serve(connection: 0, output: 1))
    }

    /// Reaps an ended child; when it ended without answering, tells assetd how.
    private static func finish(_ child: Child, logger: Logger) {
        var status: Int32 = 0
        // What the child ran and left (ffmpeg past its deadline): its process group, while
        // the child, ended but not reaped yet, keeps that group's id from being reused.
        kill(-child.pid, SIGKILL)
        while waitpid(child.pid, &status, 0) < 0 && errno == EINTR {}
        if let how = describe(status: status) {
            let reason = Array(how.utf8)
            _ = DecoderProtocol.write(child.connection, DecoderProtocol.header([DecoderProtocol.ended], reason.count) + reason)
            if !child.killed {
                logger.warning("decoder child ended without a thumbnail", metadata: ["pid": "\(child.pid)", "how": "\(how)"])
            }
        }
        close(child.ended)
        close(child.connection)
    }

    /// How a child ended, in words, or nil when it exited 0.
    static func describe(status: Int32) -> String? {
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
