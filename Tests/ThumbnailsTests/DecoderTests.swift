import CSystem
import Foundation
import Glibc
import Synchronization
import Testing
import TestFiles
@testable import Thumbnails

/// The decoder (issue 17) with the real `assetd-thumbnailer` from this build, run as the
/// zygote that assetd runs in dev and tests: the protocol, its sandbox (environment,
/// descriptors), fork safety, and what a crash, a deadline or the zygote's death costs.
@Suite struct DecoderTests {
    let directory = TestImages.directory()
    let executable = IsolatedThumbnailer.executableBesideSelf()

    func decoder(timeout: Int = 60, endpoint: IsolatedThumbnailer.Endpoint? = nil) throws -> IsolatedThumbnailer {
        try IsolatedThumbnailer(settings: .init(endpoint: endpoint ?? .spawn(executable: executable), timeoutSeconds: timeout,
                                                scratch: directory))
    }

    func open(_ bytes: [UInt8], _ name: String) -> Int32 {
        let path = TestImages.write(bytes, to: directory + "/" + name)
        chmod(path, 0o600)
        return Glibc.open(path, O_RDONLY | O_CLOEXEC)
    }

    /// The zygote's pid once it is up (it starts on a thread of its own).
    func zygote(of decoder: IsolatedThumbnailer) throws -> Int32 {
        for _ in 0..<500 {
            if let pid = decoder.zygotePID, (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.hasPrefix("assetd-thumbna") == true {
                return pid
            }
            usleep(10_000)
        }
        throw DecodeFailure.crashed("no zygote")
    }

    /// The pids (and states: R, S, Z...) of `parent`'s children.
    static func children(of parent: Int32) -> [(pid: Int32, state: String)] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).compactMap { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            guard fields.count > 1, Int32(fields[1]) == parent else { return nil }
            return (pid, String(fields[0]))
        }
    }

    /// The first child of the zygote, once one is at work.
    static func busyChild(of zygote: Int32) -> Int32? {
        for _ in 0..<1000 {
            if let child = children(of: zygote).first(where: { $0.state != "Z" }) { return child.pid }
            usleep(5_000)
        }
        return nil
    }

    static func threads(of pid: Int32) -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []).count
    }

    /// Issue 17: a 1 MB interlaced 16-bit RGBA PNG of 10000 x 10000 decodes whole to 800 MB.
    /// Its pixel count is within ASSETD_THUMBNAIL_MAX_PIXELS; the budget refuses it.
    @Test func theDecodeBudgetRefusesAnInterlaced16BitRGBAPNGFromItsHeader() throws {
        let path = TestImages.write(TestImages.pngHeader(width: 10_000, height: 10_000, bitDepth: 16, colourType: 6, interlaced: true),
                                    to: directory + "/bomb.png")
        let thumbnailer = try Thumbnailer(settings: .init())
        let error = #expect(throws: ThumbnailError.self) {
            try thumbnailer.thumbnail(ofFile: path, detectedType: "image/png", scratch: directory)
        }
        #expect(error?.description.contains("decode budget exceeded: 10000x10000, 4 bands of 2 bytes, would take 800000000 bytes") == true,
                "\(String(describing: error))")
        // An 8-bit RGB one of the same size (300 MB) is within it: it fails only when decoded.
        let small = TestImages.write(TestImages.pngHeader(width: 10_000, height: 10_000, bitDepth: 8, colourType: 2, interlaced: true),
                                     to: directory + "/rgb.png")
        let other = #expect(throws: ThumbnailError.self) {
            try thumbnailer.thumbnail(ofFile: small, detectedType: "image/png", scratch: directory)
        }
        #expect(other?.description.contains("budget") == false)
    }

    @Test func aThumbnailComesBackFromTheChildAndARefusalWithItsReason() throws {
        let decoder = try decoder()
        let png = open(TestImages.png(width: 1200, height: 800), "photo.png")
        defer { close(png) }
        let jpeg = try decoder.thumbnail(ofFile: png, detectedType: "image/png").jpeg
        #expect(jpeg.starts(with: [0xFF, 0xD8, 0xFF]))
        let bomb = open(TestImages.pngHeader(width: 10_000, height: 10_000, bitDepth: 16, colourType: 6, interlaced: true), "bomb.png")
        defer { close(bomb) }
        #expect(throws: DecodeFailure.self) { try decoder.thumbnail(ofFile: bomb, detectedType: "image/png") }
        do {
            _ = try decoder.thumbnail(ofFile: bomb, detectedType: "image/png")
        } catch {
            guard case .refused(let reason) = error else { Issue.record("not refused: \(error)"); return }
            #expect(reason.contains("decode budget exceeded"))
        }
    }

    /// The zygote has an empty environment, no privileges to gain, and no descriptor but its
    /// socket (0), /dev/null (1), the parent's standard error (2) and its lifeline (3). A
    /// child at work has an empty environment and its connection, standard error, and past
    /// those only the source: no descriptor of the parent's, none of the zygote's.
    @Test func theZygoteAndItsChildHaveAnEmptyEnvironmentAndOnlyTheirDescriptors() throws {
        setenv("ASSETD_JWT_SECRET", "a-secret-the-decoder-must-never-see-0123456789", 1)
        defer { unsetenv("ASSETD_JWT_SECRET") }
        let decoder = try decoder()
        let zygote = try zygote(of: decoder)
        func links(_ pid: Int32) throws -> [Int: String] {
            let fds = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").compactMap(Int.init)
            return try Dictionary(uniqueKeysWithValues: fds.map { ($0, try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)")) })
        }
        let ours = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/2")
        // A first task: the zygote has loaded libvips' modules (it holds their directory
        // open while it loads them).
        let png = open(TestImages.png(width: 64, height: 64), "small.png")
        defer { close(png) }
        _ = try decoder.thumbnail(ofFile: png, detectedType: "image/png")
        #expect(try Data(contentsOf: URL(fileURLWithPath: "/proc/\(zygote)/environ")).isEmpty)
        // Once that task's child is reaped (its pidfd and connection closed).
        for _ in 0..<100 where try links(zygote).count > 4 { usleep(10_000) }
        let zygoteLinks = try links(zygote)
        #expect(zygoteLinks.keys.sorted() == [0, 1, 2, 3], "\(zygoteLinks)")
        #expect(zygoteLinks[0]?.hasPrefix("socket:") == true && zygoteLinks[1] == "/dev/null" && zygoteLinks[2] == ours
                && zygoteLinks[3]?.hasPrefix("pipe:") == true, "\(zygoteLinks)")
        #expect(try String(contentsOfFile: "/proc/\(zygote)/status", encoding: .utf8).contains("NoNewPrivs:\t1"))

        let pdf = open(TestImages.slowPDF(rectangles: 400_000), "slow.pdf")
        defer { close(pdf) }
        let task = Thread { _ = try? decoder.thumbnail(ofFile: pdf, detectedType: "application/pdf") }
        task.start()
        let child = try #require(Self.busyChild(of: zygote))
        usleep(200_000)
        #expect(try Data(contentsOf: URL(fileURLWithPath: "/proc/\(child)/environ")).isEmpty)
        let childLinks = try links(child)
        #expect(childLinks[0]?.hasPrefix("socket:") == true && childLinks[1] == childLinks[0] && childLinks[2] == ours, "\(childLinks)")
        #expect(childLinks[0] != zygoteLinks[0], "the child holds the zygote's listening socket")
        #expect(childLinks.filter { $0.key > 2 }.allSatisfy { $0.value.hasSuffix("/slow.pdf") }, "\(childLinks)")
        #expect(try String(contentsOfFile: "/proc/\(child)/status", encoding: .utf8).contains("NoNewPrivs:\t1"))
        kill(child, SIGKILL)
    }

    /// fork copies only the calling thread: the zygote must have one when it forks (it
    /// checks before each fork and exits rather than fork with more). After 24 tasks, 4 at
    /// a time, it is the same process, still with one thread, and no child is left, not
    /// even a zombie.
    @Test func theZygoteStaysSingleThreadedAndLeavesNoZombie() throws {
        let decoder = try decoder()
        let zygote = try zygote(of: decoder)
        let png = open(TestImages.png(width: 1200, height: 800), "photo.png")
        defer { close(png) }
        let made = Mutex(0)
        let group = DispatchGroup()
        for _ in 0..<4 {
            group.enter()
            Thread {
                for _ in 0..<6 where (try? decoder.thumbnail(ofFile: png, detectedType: "image/png")) != nil {
                    made.withLock { $0 += 1 }
                }
                group.leave()
            }.start()
        }
        group.wait()
        #expect(made.withLock { $0 } == 24)
        #expect(decoder.zygotePID == zygote)
        #expect(Self.threads(of: zygote) == 1)
        for _ in 0..<100 where !Self.children(of: zygote).isEmpty { usleep(10_000) }
        #expect(Self.children(of: zygote).isEmpty, "\(Self.children(of: zygote))")
    }

    /// SIGKILL of a child mid-decode costs that attempt only: a crash, with the signal (the
    /// zygote tells it), to retry; the zygote lives on and serves the next task.
    @Test func aChildKilledMidTaskIsACrashWithItsSignalAndTheZygoteLivesOn() throws {
        let decoder = try decoder()
        let zygote = try zygote(of: decoder)
        let pdf = open(TestImages.slowPDF(rectangles: 100_000), "slow.pdf")
        defer { close(pdf) }
        let killer = Thread {
            if let child = Self.busyChild(of: zygote) {
                usleep(300_000)
                kill(child, SIGKILL)
            }
        }
        killer.start()
        let error = #expect(throws: DecodeFailure.self) { try decoder.thumbnail(ofFile: pdf, detectedType: "application/pdf") }
        guard case .crashed(let reason) = error else { Issue.record("not a crash: \(String(describing: error))"); return }
        #expect(reason.contains("killed by SIGKILL"), "\(reason)")
        #expect(decoder.zygotePID == zygote && kill(zygote, 0) == 0)
        let png = open(TestImages.png(width: 640, height: 480), "next.png")
        defer { close(png) }
        #expect(try decoder.thumbnail(ofFile: png, detectedType: "image/png").jpeg.starts(with: [0xFF, 0xD8, 0xFF]))
    }

    /// The zygote SIGKILLed mid-task: its child dies with it (the task is a crash, which
    /// the worker retries), and another zygote serves the next task.
    @Test func aZygoteKilledIsRestartedAndItsChildrenDieWithIt() throws {
        let decoder = try decoder()
        let zygote = try zygote(of: decoder)
        let pdf = open(TestImages.slowPDF(rectangles: 400_000), "slow.pdf")
        defer { close(pdf) }
        let killer = Thread {
            if Self.busyChild(of: zygote) != nil {
                usleep(200_000)
                kill(zygote, SIGKILL)
            }
        }
        killer.start()
        let clock = ContinuousClock()
        let started = clock.now
        let error = #expect(throws: DecodeFailure.self) { try decoder.thumbnail(ofFile: pdf, detectedType: "application/pdf") }
        #expect(clock.now - started < .seconds(5))
        guard case .crashed = error else { Issue.record("not a crash: \(String(describing: error))"); return }
        let png = open(TestImages.png(width: 640, height: 480), "next.png")
        defer { close(png) }
        #expect(try decoder.thumbnail(ofFile: png, detectedType: "image/png").jpeg.starts(with: [0xFF, 0xD8, 0xFF]))
        let second = try #require(decoder.zygotePID)
        #expect(second != zygote && kill(second, 0) == 0)
    }

    /// What a decoder child that a hostile file gave code execution could do to the others
    /// (the attacker's review, medium): each child confines itself (assetd_system_confine)
    /// before it reads its request. Seen from outside while a child decodes: no new
    /// privileges, and one seccomp filter more than its zygote (ffmpeg inherits both).
    @Test func aDecodingChildRunsUnderAFilterOfItsOwn() throws {
        let decoder = try decoder()
        let zygote = try zygote(of: decoder)
        let pdf = open(TestImages.slowPDF(rectangles: 100_000), "slow.pdf")
        defer { close(pdf) }
        let seen = Mutex<[String: String]?>(nil)
        let watcher = Thread {
            guard let child = Self.busyChild(of: zygote) else { return }
            // The child confines itself in steps (no new privileges, Landlock, seccomp)
            // right after the fork: read its status until the filter is there or the child
            // is gone, so that a look between two steps is not taken for the end state.
            var status = Self.status(of: child)
            for _ in 0..<300 where status["Seccomp"] != "2" && !status.isEmpty {
                usleep(5_000)
                let next = Self.status(of: child)
                if next.isEmpty { break }
                status = next
            }
            seen.withLock { $0 = status }
        }
        watcher.start()
        _ = try? decoder.thumbnail(ofFile: pdf, detectedType: "application/pdf")
        for _ in 0..<200 where seen.withLock({ $0 }) == nil { usleep(10_000) }
        let child = try #require(seen.withLock { $0 }, "no child seen at work")
        let parent = Self.status(of: zygote)
        #expect(child["NoNewPrivs"] == "1")
        #expect(child["Seccomp"] == "2", "\(child)")
        #expect(Int(child["Seccomp_filters"] ?? "") == Int(parent["Seccomp_filters"] ?? "0").map { $0 + 1 },
                "the child: \(child["Seccomp_filters"] ?? "?"), its zygote: \(parent["Seccomp_filters"] ?? "?")")
    }

    /// A sibling for a confined child to reach for: any other process of the same user
    /// (`sleep 30`, ended by `end`).
    static func sibling() throws -> pid_t {
        var sibling = pid_t()
        var argv: [UnsafeMutablePointer<CChar>?] = [strdup("sleep"), strdup("30"), nil]
        defer { argv.forEach { free($0) } }
        try #require(posix_spawnp(&sibling, "sleep", nil, nil, &argv, environ) == 0)
        return sibling
    }

    /// Waits for a forked child: the signal that ended it (0: none) and its exit status.
    static func wait(for pid: pid_t) throws -> (signal: Int32, status: Int32) {
        try #require(pid > 0)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (status & 0x7f, (status >> 8) & 0xff)
    }

    static func end(_ sibling: pid_t) {
        kill(sibling, SIGKILL)
        var status: Int32 = 0
        waitpid(sibling, &status, 0)
    }

    /// /proc/PID/status as fields.
    static func status(of pid: Int32) -> [String: String] {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        return Dictionary(text.split(separator: "\n").compactMap { line in
            line.firstIndex(of: ":").map { (String(line[..<$0]), line[line.index(after: $0)...].trimmingCharacters(in: .whitespaces)) }
        }, uniquingKeysWith: { first, _ in first })
    }

    /// The confinement itself, in a process forked from this one that plays a child with
    /// code execution: it can neither signal nor open the memory of another process of its
    /// user (a sibling, its parent), nor signal its process group or every process, nor write a
    /// file in /tmp; it can still make and write a memfd, and signal its own threads (raise,
    /// pthread_kill: tgkill). Without Landlock (before Linux 5.13) only the seccomp half is
    /// checked. The signals are refused by the seccomp filter whatever the Landlock ABI: the
    /// same child also runs as on a kernel below ABI 6 (no signal scoping: Debian 12's 6.1)
    /// and as on one without Landlock.
    @Test(arguments: [Int32.max, 5, 0]) func aConfinedProcessReachesNoOtherProcessAndWritesNoFile(_ highestABI: Int32) throws {
        let landlock = min(assetd_system_landlock_abi(), highestABI)
        // A sibling: any other process of the same user.
        var sibling = try Self.sibling()
        defer { Self.end(sibling) }
        // Everything the forked child uses is made before the fork (no allocation after it).
        let peek = strdup("/proc/\(sibling)/mem")!, file = strdup(directory + "/written-\(UInt32.random(in: 0...UInt32.max))")!
        let name = strdup("probe")!
        defer { free(peek); free(file); free(name) }
        let parent = getpid()
        let pid = assetd_system_fork()
        if pid == 0 {
            var failed: Int32 = 0
            if assetd_system_confine_below_landlock_abi_for_tests(highestABI) < 0 { _exit(100) }
            func refused(_ result: Int32) -> Bool { result == -1 && errno == EPERM }
            if !refused(kill(sibling, 0)) || !refused(kill(sibling, SIGTERM)) { failed |= 1 }
            if !refused(kill(parent, 0)) || !refused(sigqueue(parent, SIGUSR1, sigval(sival_int: 0))) { failed |= 2 }
            if landlock >= 1 && Glibc.open(peek, O_RDONLY) >= 0 { failed |= 4 }
            if landlock >= 1 && Glibc.open(file, O_WRONLY | O_CREAT, 0o600) >= 0 { failed |= 8 }
            if !refused(kill(0, 0)) || !refused(kill(-1, 0)) { failed |= 16 }
            let memory = assetd_system_memfd(name)
            if memory < 0 || write(memory, name, 5) != 5 { failed |= 32 }
            // Its own threads: tgkill to its own pid (raise, abort, pthread_kill).
            signal(SIGUSR1, SIG_IGN)
            if pthread_kill(pthread_self(), 0) != 0 || raise(SIGUSR1) != 0 { failed |= 64 }
            // pidfd_send_signal: refused whatever the pidfd (one of a sibling's would do,
            // and /proc/PID opened as a directory is one).
            let own = assetd_system_pidfd_open(getpid())
            if own >= 0 && !refused(assetd_system_pidfd_send_signal(own, 0, 0)) { failed |= 128 }
            // Nothing it starts may leave its process group (the zygote kills the group).
            if !refused(setsid()) || !refused(setpgid(0, 0)) { failed |= 16 }
            // Nor may it make the kernel signal another process for it (SIGIO to an owner).
            var ends: [Int32] = [0, 0]
            if pipe(&ends) != 0 || !refused(fcntl(ends[0], F_SETOWN, parent)) || !refused(ioctl(ends[0], UInt(FIOSETOWN), &sibling)) {
                failed |= 2
            }
            _exit(failed)
        }
        try #require(pid > 0)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        #expect(status & 0x7f == 0, "killed by signal \(status & 0x7f)")
        let failed = (status >> 8) & 0xff
        #expect(failed == 0, """
            bits: 1 signalled a sibling, 2 signalled its parent (or made it a descriptor's SIGIO owner), 4 opened a sibling's /proc/PID/mem, 8 wrote a file, \
            16 signalled its group or every process or left its group, 32 no memfd, 64 could not signal its own threads, \
            128 pidfd_send_signal not refused, 100 could not confine itself \
            (Landlock ABI \(landlock))
            """)
        #expect(access(file, F_OK) != 0)
        #expect(kill(sibling, 0) == 0, "the sibling still runs")
    }

    /// Limits and scheduling of another process (the attacker's review, medium): with
    /// prlimit64 on its parent a child could set the zygote's RLIMIT_CPU to 0 and have the
    /// kernel kill it, or its RLIMIT_NOFILE to 0 and stop its accept; the same uid is all the
    /// kernel checks, and neither Landlock nor being non-dumpable stops it. Refused (EPERM)
    /// on its parent and on a sibling whatever the Landlock ABI, while on itself (pid 0, as
    /// glibc's setrlimit calls it, and its own pid) its limits, nice value, affinity and
    /// policy may still be set. Each call writes back the value it read (nothing changes
    /// even where it is not refused).
    @Test(arguments: [Int32.max, 5, 0]) func aConfinedProcessSetsNoLimitOrSchedulingOfAnotherProcess(_ highestABI: Int32) throws {
        let sibling = try Self.sibling()
        defer { Self.end(sibling) }
        let parent = getpid()
        let pid = assetd_system_fork()
        if pid == 0 {
            var failed: Int32 = 0
            if assetd_system_confine_below_landlock_abi_for_tests(highestABI) < 0 { _exit(100) }
            // 0 prlimit64, 1 setpriority, 2 sched_setaffinity, 3 sched_setscheduler,
            // 4 sched_setattr, 5 ioprio_set: bit `call` when one reached another process.
            for call: Int32 in 0...5 {
                for target in [parent, sibling] {
                    if !(assetd_system_touch_process_for_tests(call, target) == -1 && errno == EPERM) { failed |= 1 << call }
                }
            }
            // Itself: all but ioprio_set, by 0 and by its own pid; setrlimit as glibc calls it.
            for call: Int32 in 0...4 {
                for target in [0, getpid()] where assetd_system_touch_process_for_tests(call, target) != 0 { failed |= 64 }
            }
            if assetd_system_limit(ASSETD_LIMIT_CORE_BYTES, 0) != 0 { failed |= 64 }
            _exit(failed)
        }
        let (signal, failed) = try Self.wait(for: pid)
        #expect(signal == 0, "killed by signal \(signal)")
        #expect(failed == 0, """
            bits: on its parent or a sibling 1 prlimit64, 2 setpriority, 4 sched_setaffinity, 8 sched_setscheduler, \
            16 sched_setattr, 32 ioprio_set was not refused; 64 could not set its own; 100 could not confine itself \
            (Landlock ABI \(min(assetd_system_landlock_abi(), highestABI)))
            """)
        #expect(kill(sibling, 0) == 0, "the sibling still runs")
    }

    /// No network (the sysadmin's review, H1): a decoder child with code execution could
    /// read what its user may read (the settings file, when assetd runs the decoder itself)
    /// and send it out; Landlock refuses TCP only from ABI 4 (Linux 6.7), so the seccomp
    /// filter refuses every socket() whatever the ABI: AF_INET and AF_INET6 (TCP and UDP),
    /// netlink, packet, and AF_UNIX (a local resolver would carry data out in a DNS
    /// query); and io_uring, which could make one. socketpair still works.
    @Test(arguments: [Int32.max, 3, 0]) func aConfinedProcessOpensNoNetworkSocket(_ highestABI: Int32) throws {
        let pid = assetd_system_fork()
        if pid == 0 {
            var failed: Int32 = 0
            if assetd_system_confine_below_landlock_abi_for_tests(highestABI) < 0 { _exit(100) }
            func refused(_ result: Int32) -> Bool { result == -1 && errno == EPERM }
            if !refused(socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)) { failed |= 1 }
            if !refused(socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)) { failed |= 1 }
            if !refused(socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)) || !refused(socket(AF_INET6, Int32(SOCK_DGRAM.rawValue), 0)) {
                failed |= 2
            }
            if !refused(socket(AF_NETLINK, Int32(SOCK_RAW.rawValue), 0)) || !refused(socket(AF_PACKET, Int32(SOCK_DGRAM.rawValue), 0)) {
                failed |= 4
            }
            if !(assetd_system_io_uring_setup_for_tests() == -1 && errno == EPERM) { failed |= 8 }
            if !refused(socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)) || !refused(socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)) {
                failed |= 32
            }
            var pair: [Int32] = [0, 0]
            if socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) != 0 { failed |= 16 }
            _exit(failed)
        }
        let (signal, failed) = try Self.wait(for: pid)
        #expect(signal == 0, "killed by signal \(signal)")
        #expect(failed == 0, """
            bits: 1 an AF_INET socket, 2 an AF_INET6 socket, 4 a netlink or packet socket, 8 io_uring was not refused; \
            16 no socketpair, 32 an AF_UNIX socket (a local resolver's) was not refused; 100 could not confine itself (Landlock ABI \(min(assetd_system_landlock_abi(), highestABI)))
            """)
    }

    /// A unix datagram socket bound at a fresh path in the temporary directory, non-blocking.
    static func boundDatagramSocket() throws -> (path: String, descriptor: Int32, address: sockaddr_un) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("assetd-dgram-\(UUID().uuidString.prefix(8)).sock").path
        let descriptor = TestFiles.boundUnixSocket(at: path, type: Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue))
        try #require(descriptor >= 0)
        return (path, descriptor, TestFiles.unixAddress(path))
    }

    /// A parser's exploit must not reach a path-named (or abstract) datagram socket, such as
    /// journald's or /dev/log, through a socketpair (review 10, M1): a SOCK_DGRAM pair is
    /// refused (with or without SOCK_CLOEXEC and SOCK_NONBLOCK), and so are connect and a
    /// sendto with an address on the stream pair it may have; send on that pair still works.
    @Test(arguments: [Int32.max, 0]) func aConfinedProcessSendsNoDatagramToANamedSocket(_ highestABI: Int32) throws {
        let (path, listener, address) = try Self.boundDatagramSocket()
        var target = address
        defer { close(listener); unlink(path) }
        let pid = assetd_system_fork()
        if pid == 0 {
            var failed: Int32 = 0
            if assetd_system_confine_below_landlock_abi_for_tests(highestABI) < 0 { _exit(100) }
            func refused(_ result: Int) -> Bool { result == -1 && errno == EPERM }
            let size = socklen_t(MemoryLayout<sockaddr_un>.size)
            func sendTo(_ descriptor: Int32) -> Int {
                withUnsafePointer(to: &target) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(descriptor, "leak", 4, 0, $0, size) }
                }
            }
            func connectTo(_ descriptor: Int32) -> Int {
                Int(withUnsafePointer(to: &target) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, size) } })
            }
            let flags = Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
            for type in [Int32(SOCK_DGRAM.rawValue), Int32(SOCK_DGRAM.rawValue) | flags] {
                var datagram: [Int32] = [-1, -1]
                if !refused(Int(socketpair(AF_UNIX, type, 0, &datagram))) {
                    failed |= 1
                    _ = sendTo(datagram[0])  // what an exploit would do with it
                    if connectTo(datagram[1]) == 0 { _ = send(datagram[1], "leak", 4, 0) }
                }
            }
            var pair: [Int32] = [-1, -1]
            if socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | flags, 0, &pair) != 0 { failed |= 2 }
            var packets: [Int32] = [-1, -1]
            if socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue), 0, &packets) != 0 { failed |= 2 }
            if !refused(sendTo(pair[0])) { failed |= 4 }
            if !refused(connectTo(pair[1])) { failed |= 8 }
            if send(pair[0], "x", 1, 0) != 1 || send(packets[0], "x", 1, 0) != 1 { failed |= 2 }
            _exit(failed)
        }
        let (signal, failed) = try Self.wait(for: pid)
        #expect(signal == 0, "killed by signal \(signal)")
        #expect(failed == 0, """
            bits: 1 a SOCK_DGRAM socketpair was not refused, 2 a stream or seqpacket pair or its send failed, \
            4 sendto with an address was not refused, 8 connect was not refused; 100 could not confine itself
            """)
        var byte: UInt8 = 0
        let received = recv(listener, &byte, 1, 0)
        #expect(received == -1 && errno == EAGAIN, "a confined process delivered a datagram to \(path)")
    }

    /// Landlock refused (EPERM from a seccomp filter, as a container's or systemd's may) is
    /// not "no Landlock": the ABI reads as -EPERM and confinement fails, so a child exits
    /// rather than decode unconfined. Needs Landlock: on a kernel without it the call says
    /// ENOSYS or EOPNOTSUPP before any filter could refuse it, and there is nothing to tell apart.
    @Test(.enabled(if: assetd_system_landlock_abi() >= 1, "this kernel has no Landlock (ABI 0): a refusal cannot be told from its absence"))
    func aRefusedLandlockFailsConfinementClosed() throws {
        let pid = assetd_system_fork()
        if pid == 0 {
            if assetd_system_refuse_landlock_for_tests() != 0 { _exit(10) }
            if assetd_system_landlock_abi() != -EPERM { _exit(11) }
            if assetd_system_confine() >= 0 { _exit(12) }
            _exit(0)
        }
        try #require(pid > 0)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        #expect(status & 0x7f == 0, "killed by signal \(status & 0x7f)")
        #expect((status >> 8) & 0xff == 0, "10: no filter, 11: the refusal read as an ABI, 12: confined without Landlock")
    }

    /// At the deadline assetd closes the connection, and the zygote kills that child at
    /// once (the child's own alarm would come 2 s later).
    @Test func aDecodePastItsDeadlineIsKilled() throws {
        let decoder = try decoder(timeout: 1)
        let zygote = try zygote(of: decoder)
        // Several seconds of poppler on an idle machine (100,000 rectangles once finished
        // within the 1 s deadline when nothing else ran).
        let pdf = open(TestImages.slowPDF(rectangles: 800_000), "slow.pdf")
        defer { close(pdf) }
        let clock = ContinuousClock()
        let started = clock.now
        let error = #expect(throws: DecodeFailure.self) { try decoder.thumbnail(ofFile: pdf, detectedType: "application/pdf") }
        #expect(clock.now - started < .seconds(4))
        guard case .crashed(let reason) = error else { Issue.record("not a crash: \(String(describing: error))"); return }
        #expect(reason.contains("deadline"), "\(reason)")
        for _ in 0..<50 where !Self.children(of: zygote).isEmpty { usleep(10_000) }
        #expect(Self.children(of: zygote).isEmpty, "the child outlived its deadline by 0.5 s")
    }

    /// The systemd path: the zygote behind systemd's listening socket, passed as its
    /// standard input (Accept=no, StandardInput=socket), here under Debian's
    /// systemd-socket-activate.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-socket-activate")))
    func theDecoderServesOverASocketActivatedUnixSocket() throws {
        let socket = directory + "/decoder.sock"
        // posix_spawn and waitpid, not Foundation's Process: its child monitoring kept the
        // test process from exiting after a SIGKILL.
        var pid = pid_t()
        let arguments = ["/usr/bin/systemd-socket-activate", "--inetd", "--listen=" + socket, executable]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var envp: [UnsafeMutablePointer<CChar>?] = [nil]
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        try #require(posix_spawn(&pid, arguments[0], &actions, nil, &argv, &envp) == 0)
        defer {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        }
        for _ in 0..<200 where !FileManager.default.fileExists(atPath: socket) { usleep(10_000) }
        try socketActivated(decoder(endpoint: .socket(path: socket)))
    }

    func socketActivated(_ decoder: IsolatedThumbnailer) throws {
        let png = open(TestImages.png(width: 800, height: 600), "photo.png")
        defer { close(png) }
        for _ in 0..<2 {
            let jpeg = try decoder.thumbnail(ofFile: png, detectedType: "image/png").jpeg
            #expect(jpeg.starts(with: [0xFF, 0xD8, 0xFF]))
        }
        let bomb = open(TestImages.pngHeader(width: 10_000, height: 10_000, bitDepth: 16, colourType: 6, interlaced: true), "bomb.png")
        defer { close(bomb) }
        #expect(throws: DecodeFailure.refused(
            "decode budget exceeded: 10000x10000, 4 bands of 2 bytes, would take 800000000 bytes, over ASSETD_THUMBNAIL_MAX_DECODE_BYTES (536870912)")) {
            try decoder.thumbnail(ofFile: bomb, detectedType: "image/png")
        }
    }
}
