internal import CFastCGI
import Foundation
import Glibc
public import Logging
import Locking
import Synchronization

/// Why the server could not start; `description` is the one line start-up prints.
public struct ServerError: Error, CustomStringConvertible {
    public let description: String
    /// The exit status it deserves: 78 (EX_CONFIG) when the listening socket cannot be had,
    /// which a restart will not fix (assetd.service's RestartPreventExitStatus=78).
    public let exitStatus: Int32

    public init(description: String, exitStatus: Int32 = 1) {
        self.description = description
        self.exitStatus = exitStatus
    }
}

/// Serves FastCGI requests with libfcgi: `threads` worker threads, each running its own
/// `FCGX_Accept_r` loop on the shared listening socket, away from Swift's concurrency pool.
///
/// `run()` blocks until SIGTERM or SIGINT. Then the workers stop accepting, requests in
/// flight finish (for at most `drainTimeout`), and `run()` returns.
public final class FastCGIServer: Sendable {
    public enum Listen: Sendable {
        /// A unix socket path (or `host:port`, as libfcgi accepts), created with `mode` and,
        /// when `group` is set (ASSETD_SOCKET_GROUP), that group, so that nginx's group may
        /// connect; nil keeps the process's own group.
        case path(String, mode: UInt32, group: UInt32? = nil)
        /// The listening socket on standard input (spawn-fcgi, systemd's StandardInput=socket).
        case standardInput
        /// A listening socket passed by systemd's socket activation (LISTEN_FDS).
        case descriptor(Int32)
    }

    public struct Configuration: Sendable {
        public var listen: Listen
        public var threads: Int
        public var backlog: Int32 = 1024
        public var drainTimeout: Duration = .seconds(10)
        /// Runs once the drain is over (or its timeout reached), before the last log line:
        /// the access log writes the lines it holds.
        public var afterDrain: @Sendable () -> Void = {}

        public init(listen: Listen, threads: Int) {
            self.listen = listen
            self.threads = threads
        }
    }

    private let configuration: Configuration
    private let responder: any Responder
    private let logger: Logger
    private let stopping = Atomic<Bool>(false)
    private let inFlight = Atomic<Int>(0)
    private let workers = Mutex<[Worker]>([])

    /// A worker thread and what it is doing, so that the shutdown's SIGUSR2 goes only to a
    /// worker waiting in accept, never to one serving a request (whose reads and writes it
    /// would interrupt), without a signal-mask change per request (two system calls each).
    ///
    /// The worker's thread must not end between run()'s turning its phase to `woken` and
    /// the wake-up's going out: pthread_kill on a thread that has ended reads its freed
    /// descriptor (that was a SIGSEGV in __pthread_kill_implementation at about one stop in
    /// ten under load, a worker leaving its loop as it saw `stopping`). So run() marks the
    /// wake-up `signalled` once it is sent, and a leaving worker that finds `woken` waits
    /// for that; a worker that run() has turned never enters `accepting` again.
    final class Worker: Sendable {
        static let serving = 0, accepting = 1, woken = 2, signalled = 3
        let thread: pthread_t
        let phase = Atomic<Int>(Worker.serving)
        init(thread: pthread_t) { self.thread = thread }

        /// The worker, before accept: `serving` to `accepting`. False once run() has turned
        /// it (`woken` or `signalled`): the server is stopping, the worker leaves.
        func willAccept() -> Bool {
            phase.compareExchange(expected: Worker.serving, desired: Worker.accepting, ordering: .sequentiallyConsistent).exchanged
        }

        /// The worker, after accept (or instead of it): back to `serving`. False when run()
        /// turned it first: a wake-up was or is being sent.
        func didAccept() -> Bool {
            phase.compareExchange(expected: Worker.accepting, desired: Worker.serving, ordering: .sequentiallyConsistent).exchanged
        }

        /// The worker, last thing on its thread: out of `accepting`, or, when run() turned
        /// it first, wait until run() has sent the wake-up, so that it never goes to an
        /// ended thread.
        func leave() {
            if didAccept() { return }
            while phase.load(ordering: .sequentiallyConsistent) == Worker.woken { sched_yield() }
        }

        /// run(), at shutdown: wakes (`send`) the worker only when it is in accept. True
        /// when it was.
        @discardableResult
        func wakeIfAccepting(_ send: (pthread_t) -> Void) -> Bool {
            guard phase.compareExchange(expected: Worker.accepting, desired: Worker.woken, ordering: .sequentiallyConsistent).exchanged else {
                return false
            }
            send(thread)
            phase.store(Worker.signalled, ordering: .sequentiallyConsistent)
            return true
        }
    }

    public init(configuration: Configuration, responder: any Responder, logger: Logger) {
        self.configuration = configuration
        self.responder = responder
        self.logger = logger
    }

    /// The signals that stop the server: SIGTERM and SIGINT.
    static var stopSignals: sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        return set
    }

    /// Blocks SIGTERM and SIGINT in the calling thread, and so in every thread it starts
    /// afterwards (threads inherit the mask). Call it first thing in the main thread, before
    /// any other thread exists: a stop signal then waits, pending, until `run()` takes it
    /// with sigwait and drains, however early it came; no thread can die of it.
    public static func blockStopSignals() {
        var set = stopSignals
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// True when standard input is a listening socket that the server could inherit.
    public static var standardInputIsListeningSocket: Bool {
        assetd_fcgi_is_listening_socket(0) != 0
    }

    /// glibc's arena cap (M_ARENA_MAX) for `threads` workers on `cores` online cores: one
    /// arena a worker plus the main thread's, as bench/presign.sh needs (fewer arenas than
    /// workers queue every request's larger blocks on the arena locks), but no more than
    /// max(17, 8 x cores) nor 64: each arena keeps its own freed memory, so with
    /// ASSETD_THREADS up to 512 an arena a thread made the retained memory grow with the
    /// threads, while more arenas than 8 a core win nothing (only `cores` threads run at
    /// once). 17 keeps the default (16 threads) at an arena a worker on any host.
    static func arenas(threads: Int, cores: Int) -> Int {
        min(threads + 1, max(17, 8 * max(cores, 1)), 64)
    }

    public func run() throws {
        // Before any worker thread exists: a fixed mmap threshold, and an arena a worker
        // (the main thread keeps the main arena), up to a cap (`arenas`).
        assetd_fcgi_bound_malloc(Int32(clamping: Self.arenas(threads: configuration.threads,
                                                             cores: ProcessInfo.processInfo.activeProcessorCount)))
        guard FCGX_Init() == 0 else { throw ServerError(description: "libfcgi failed to initialise") }
        let (fd, createdPath) = try openListener()
        defer {
            if let createdPath { unlink(createdPath) }
        }

        // Signals: SIGTERM/SIGINT are waited for on this thread only (main.swift blocked
        // them before any thread started; blocking them again here is for other callers);
        // SIGUSR2 interrupts a worker's accept() without restarting it; SIGPIPE must never
        // kill the process.
        var waitSet = Self.stopSignals
        pthread_sigmask(SIG_BLOCK, &waitSet, nil)
        signal(SIGPIPE, SIG_IGN)
        var wake = sigaction()
        wake.__sigaction_handler.sa_handler = { _ in }
        wake.sa_flags = 0
        sigemptyset(&wake.sa_mask)
        sigaction(SIGUSR2, &wake, nil)

        let started = Atomic<Int>(0)
        for index in 0..<configuration.threads {
            let thread = Thread { [self] in
                let worker = Worker(thread: pthread_self())
                workers.withLock { $0.append(worker) }
                started.add(1, ordering: .sequentiallyConsistent)
                acceptLoop(listenFD: fd, index: index, worker: worker)
            }
            thread.name = "fcgi-\(index)"
            thread.start()
        }
        // A thread that could not be made (pthread_create's EAGAIN: systemd's TasksMax, or
        // RLIMIT_NPROC) never starts, and Foundation's Thread says nothing: after 10 s
        // without all of them, a line naming the cause and exit 1, not a silent hang.
        let threadsDeadline = ContinuousClock.now + .seconds(10)
        while started.load(ordering: .sequentiallyConsistent) < configuration.threads {
            guard ContinuousClock.now < threadsDeadline else {
                throw ServerError(description: "only \(started.load(ordering: .sequentiallyConsistent)) of \(configuration.threads) worker "
                                  + "threads started within 10 s: the process may not make more threads (systemd's TasksMax, "
                                  + "ulimit -u); lower ASSETD_THREADS or raise the limit")
            }
            usleep(1000)
        }
        logger.info("assetd is serving", metadata: [
            "listen": "\(describeListen())", "threads": "\(configuration.threads)",
        ])
        Systemd.notify("READY=1\nSTATUS=serving")

        var received: Int32 = 0
        sigwait(&waitSet, &received)
        logger.notice("signal received; draining requests in flight", metadata: [
            "signal": "\(received == SIGTERM ? "SIGTERM" : "SIGINT")",
            "in_flight": "\(inFlight.load(ordering: .sequentiallyConsistent))",
        ])
        Systemd.notify("STOPPING=1\nSTATUS=draining")
        stopping.store(true, ordering: .sequentiallyConsistent)
        FCGX_ShutdownPending()
        // Only a worker in accept is woken; one serving sees `stopping` when its request is
        // done (it stores `accepting` before it reads `stopping`, and this thread stored
        // `stopping` before it reads the phase: one of the two sees the other's store).
        for worker in workers.withLock({ $0 }) {
            worker.wakeIfAccepting { pthread_kill($0, SIGUSR2) }
        }

        // A second SIGTERM or SIGINT during the drain is logged and ignored: the drain is
        // bounded, and systemd's TimeoutStopSec (or SIGKILL) ends a process that must stop
        // at once. It stays blocked in every thread, so it cannot kill the process either.
        let deadline = ContinuousClock.now + configuration.drainTimeout
        var poll = timespec(tv_sec: 0, tv_nsec: 5_000_000)
        while inFlight.load(ordering: .sequentiallyConsistent) > 0, ContinuousClock.now < deadline {
            let again = sigtimedwait(&waitSet, nil, &poll)
            if again > 0 {
                logger.notice("signal received while draining; ignored, the drain goes on", metadata: [
                    "signal": "\(again == SIGTERM ? "SIGTERM" : "SIGINT")",
                    "in_flight": "\(inFlight.load(ordering: .sequentiallyConsistent))",
                    "drain_timeout_s": "\(configuration.drainTimeout.components.seconds)",
                ])
            }
        }
        let left = inFlight.load(ordering: .sequentiallyConsistent)
        configuration.afterDrain()
        if left > 0 {
            logger.warning("drain timeout reached; abandoning requests in flight", metadata: ["in_flight": "\(left)"])
        } else {
            logger.notice("drained; exiting")
        }
    }

    private func describeListen() -> String {
        switch configuration.listen {
        case .path(let path, _, _): path
        case .standardInput: "standard input (inherited socket)"
        case .descriptor(let fd): "fd \(fd) (systemd socket activation)"
        }
    }

    private func openListener() throws -> (Int32, String?) {
        switch configuration.listen {
        case .standardInput:
            guard Self.standardInputIsListeningSocket else {
                throw ServerError(description: "ASSETD_SOCKET is not set, systemd passed no socket (LISTEN_FDS) and standard input is not a listening socket", exitStatus: 78)
            }
            return (0, nil)
        case .descriptor(let fd):
            guard assetd_fcgi_is_listening_socket(fd) != 0 else {
                throw ServerError(description: "LISTEN_FDS names fd \(fd), which is not a listening socket", exitStatus: 78)
            }
            return (fd, nil)
        case .path(let path, let mode, let group):
            // Not FCGX_OpenSocket: libfcgi exit()s with errno as the status when bind fails.
            var step: UnsafePointer<CChar>?
            guard let colon = path.lastIndex(of: ":") else {
                var info = stat()
                if lstat(path, &info) == 0 {
                    guard (info.st_mode & S_IFMT) == S_IFSOCK else {
                        throw ServerError(description: "ASSETD_SOCKET \(path) exists and is not a socket", exitStatus: 78)
                    }
                    unlink(path)
                }
                let fd = assetd_fcgi_listen_unix(path, configuration.backlog, UInt32(mode), group.map { Int64($0) } ?? -1, &step)
                guard fd >= 0 else { throw Self.socketError(path, step: step, errno: errno, group: group) }
                return (fd, path)
            }
            let fd = assetd_fcgi_listen_tcp(String(path[..<colon]), String(path[path.index(after: colon)...]), configuration.backlog, &step)
            guard fd >= 0 else { throw Self.socketError(path, step: step, errno: errno, group: nil) }
            return (fd, nil)
        }
    }

    /// One line: the path, the call that failed, errno by number and name, and what to check.
    static func socketError(_ path: String, step: UnsafePointer<CChar>?, errno code: Int32, group: UInt32?) -> ServerError {
        let call = step.map { String(cString: $0) } ?? "socket"
        var hint = ""
        if !path.contains(":") {
            let directory = (path as NSString).deletingLastPathComponent
            switch call {
            case "chown":
                hint = "; ASSETD_SOCKET_GROUP (gid \(group.map(String.init) ?? "-")) must be a group of uid \(geteuid()), or the directory \(directory) that group's and setgid (install -d -o assetd -g assetd-web -m 2750 \(directory))"
            case "bind" where code == EACCES || code == ENOENT || code == EROFS:
                hint = "; its directory \(directory.isEmpty ? "." : directory) must exist and be writable by uid \(geteuid()) (e.g. install -d -o assetd -g assetd-web -m 2750 \(directory.isEmpty ? "." : directory))"
            case "bind" where code == EADDRINUSE:
                hint = "; is another assetd serving it?"
            default: break
            }
        }
        return ServerError(description: "cannot create the FastCGI socket ASSETD_SOCKET=\(path): \(call) failed: \(String(cString: strerror(code))) (errno \(code))\(hint)",
                           exitStatus: 78)
    }

    private func acceptLoop(listenFD: Int32, index: Int, worker: Worker) {
        let request = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
        defer { request.deallocate() }
        FCGX_InitRequest(request, listenFD, FCGI_FAIL_ACCEPT_ON_INTR)
        // One body source for all of this worker's requests, open only while one is served.
        let input = FastCGIInput(request)
        var buffer: [UInt8] = []
        // SIGUSR2 (the shutdown wake-up) may interrupt accept(), never a request: run() sends
        // it only to a worker whose phase it turns from `accepting` to `woken`. A worker that
        // finds its phase `woken` when accept returns blocks SIGUSR2 for the rest of its life
        // (once, at shutdown): a wake-up sent but not yet delivered then stays pending and
        // interrupts nothing; the request it may have accepted is still served.
        var wake = sigset_t()
        sigemptyset(&wake)
        sigaddset(&wake, SIGUSR2)
        // Whichever way the loop ends, the thread ends only once no wake-up can still be
        // sent to it (Worker.leave).
        defer { worker.leave() }
        while worker.willAccept() {
            if stopping.load(ordering: .sequentiallyConsistent) { break }
            let rc = FCGX_Accept_r(request)
            if !worker.didAccept() {
                pthread_sigmask(SIG_BLOCK, &wake, nil)
            }
            if rc < 0 {
                if stopping.load(ordering: .sequentiallyConsistent) { break }
                if errno != EINTR {
                    logger.error("accept failed", metadata: ["worker": "\(index)", "errno": "\(errno)"])
                    usleep(10_000)
                }
                continue
            }
            inFlight.add(1, ordering: .sequentiallyConsistent)
            serve(request, input: input, buffer: &buffer)
            FCGX_Finish_r(request)
            inFlight.subtract(1, ordering: .sequentiallyConsistent)
        }
        FCGX_Free(request, 1)
    }

    private func serve(_ raw: UnsafeMutablePointer<FCGX_Request>, input: FastCGIInput, buffer: inout [UInt8]) {
        input.open()
        let request = Self.makeRequest(raw, body: input, logger: logger)
        let response = responder.respond(to: request)
        // The handler is done with the body: a `Request` kept past this point reads nothing
        // more (neither this request's stream, which FCGX_Finish_r frees, nor, through
        // `Request.body`, a later one's).
        input.close()
        if response.status.code >= 500 {
            logger.warning("request failed", metadata: [
                "method": "\(request.method)", "path": "\(request.path)", "status": "\(response.status.code)",
            ])
        } else if logger.logLevel <= .debug {
            logger.debug("request", metadata: [
                "method": "\(request.method)", "path": "\(request.path)", "status": "\(response.status.code)",
            ])
        }
        // Whatever the handler left unread is drained by FCGX_Finish_r.
        // The head into this worker's buffer, then the body as it is: libfcgi copies both
        // into its own stream buffer anyway.
        response.writeHead(to: &buffer)
        Self.put(buffer, raw.pointee.out)
        Self.put(response.body, raw.pointee.out)
    }

    private static func put(_ bytes: [UInt8], _ stream: UnsafeMutablePointer<FCGX_Stream>?) {
        guard !bytes.isEmpty else { return }
        bytes.withUnsafeBytes { raw in
            _ = FCGX_PutStr(raw.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(raw.count), stream)
        }
    }

    /// Builds a Request from libfcgi's parameters, at the byte level: this runs for every
    /// request, and Character-wise String work here cost more than the handlers.
    static func makeRequest(_ raw: UnsafeMutablePointer<FCGX_Request>, body: FastCGIInput, logger: Logger) -> Request {
        var method = "GET", documentURI: String?, requestURI: UnsafeBufferPointer<UInt8>?, query = "", contentLength: Int?
        var parsedQuery: QueryParameters?
        // Headers stay bytes, in one buffer with room for a browser's dozen: a handler reads
        // two or three of them (callgrind: a String for each name and value, and a dictionary,
        // cost about 9,000 instructions a presign).
        var headers = Request.Headers.reused(capacity: 1024)
        if var cursor = raw.pointee.envp {
            while let entry = cursor.pointee {
                cursor += 1
                // The name ends at the first "="; the value's length is measured only for
                // the parameters kept (nginx sends about twenty-five, a dozen kept).
                guard let found = strchr(entry, Int32(UInt8(ascii: "="))) else { continue }
                let name = UnsafeBufferPointer(start: UnsafeRawPointer(entry).assumingMemoryBound(to: UInt8.self),
                                               count: UnsafeRawPointer(found) - UnsafeRawPointer(entry))
                var valueBytes: UnsafeBufferPointer<UInt8> {
                    UnsafeBufferPointer(start: UnsafeRawPointer(found + 1).assumingMemoryBound(to: UInt8.self), count: strlen(found + 1))
                }
                if Self.hasHTTPPrefix(name) {
                    // The entry from after "HTTP_" to the value's end, "=" included.
                    headers.append(cgiEntry: UnsafeBufferPointer(start: name.baseAddress! + 5, count: name.count - 5 + 1 + strlen(found + 1)),
                                   nameCount: name.count - 5)
                } else if name.equals("REQUEST_METHOD") {
                    method = Self.method(valueBytes)
                } else if name.equals("DOCUMENT_URI") {
                    documentURI = Self.path(valueBytes)
                } else if name.equals("REQUEST_URI") {
                    requestURI = valueBytes
                } else if name.equals("QUERY_STRING") {
                    // ASCII (as nginx passes a query, percent-encoded) is its own String:
                    // parsed from the bytes. Anything else as the String repairs it.
                    let bytes = valueBytes
                    if Self.isASCII(bytes) {
                        parsedQuery = QueryParameters.reusing(utf8: bytes)
                    } else {
                        query = String(decoding: bytes, as: UTF8.self)
                    }
                } else if name.equals("CONTENT_LENGTH") {
                    // nginx sends it empty on a request without a body: nil, as Int("") is.
                    let bytes = valueBytes
                    contentLength = bytes.isEmpty ? nil : Int(String(decoding: bytes, as: UTF8.self)).flatMap { $0 >= 0 ? $0 : nil }
                } else if name.equals("CONTENT_TYPE") {
                    headers.append(name: "content-type".utf8, value: valueBytes)
                }
            }
        }
        // DOCUMENT_URI is the decoded path; without it, REQUEST_URI up to the query.
        let path = documentURI ?? requestURI.map { String(decoding: $0.prefix { $0 != UInt8(ascii: "?") }, as: UTF8.self) } ?? "/"
        if let parsedQuery {
            return Request(method: method, path: path, parsedQuery: parsedQuery, headers: headers,
                           contentLength: contentLength, input: body, logger: logger)
        }
        return Request(method: method, path: path, queryString: query, headers: headers,
                       contentLength: contentLength, input: body, logger: logger)
    }

    /// Whether a parameter's name is longer than "HTTP_" and begins with it (a header): one
    /// 4-byte load and a byte, where a `memcmp` call for each of ~26 parameters cost ~15
    /// instructions each (callgrind).
    @inline(__always)
    static func hasHTTPPrefix(_ name: UnsafeBufferPointer<UInt8>) -> Bool {
        guard name.count > 5, let base = name.baseAddress else { return false }
        // "HTTP" as the bytes 48 54 54 50, read as a little-endian UInt32.
        return UInt32(littleEndian: UnsafeRawPointer(base).loadUnaligned(as: UInt32.self)) == 0x5054_5448
            && base[4] == UInt8(ascii: "_")
    }

    /// Whether every byte is below 0x80, eight at a time.
    static func isASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        var i = 0
        while bytes.count - i >= 8 {
            if UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { return false }
            i += 8
        }
        while i < bytes.count {
            if base[i] >= 0x80 { return false }
            i += 1
        }
        return true
    }

    /// DOCUMENT_URI as a String: the String this thread made last when the bytes are the
    /// same (a client asks for the same few paths again and again), else a new one, kept
    /// for next time when it is short. A new String of the path cost an allocation, a
    /// validation and a free a request (~250 instructions, callgrind); the bytes compared
    /// are the kept String's own, so a hit is the String `String(decoding:)` would make.
    static func path(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        lastPath.withValue { last in
            if last.utf8.count == bytes.count,
               last.utf8.withContiguousStorageIfAvailable({ kept in
                   kept.isEmpty || memcmp(kept.baseAddress!, bytes.baseAddress!, kept.count) == 0
               }) == true {
                return last
            }
            let made = String(decoding: bytes, as: UTF8.self)
            if bytes.count <= lastPathLimit { last = made }
            return made
        }
    }

    private static let lastPath = PerThread<String> { "" }
    /// Longer paths are not kept (bytes).
    static let lastPathLimit = 256

    /// REQUEST_METHOD as a literal when it is one of the usual ones: validating the bytes
    /// into a String cost ~200 instructions a request (callgrind); any other as given.
    static func method(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        if bytes.equals("GET") { return "GET" }
        if bytes.equals("POST") { return "POST" }
        if bytes.equals("PUT") { return "PUT" }
        if bytes.equals("HEAD") { return "HEAD" }
        if bytes.equals("DELETE") { return "DELETE" }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// FastCGI stdin as a body source: one per worker, reading the stream of the request the
/// worker serves (an object a request cost an allocation and a free, ~300 instructions a
/// presign, callgrind). Closed between requests; and each request the worker serves has
/// its own `generation`, which its `Request` notes, so that a `Request` kept after its
/// response reads nothing once the worker serves another (`Request.body`, review14 S1):
/// never that request's body.
final class FastCGIInput: BodySource {
    private let request: UnsafeMutablePointer<FCGX_Request>
    /// Whether the worker is serving a request (set and cleared by `serve`, on the worker's
    /// thread: a `Request` is not Sendable, so no other thread reads through this).
    private(set) var isOpen = false
    /// How many requests the worker has begun serving (`open`).
    private(set) var generation = 0

    init(_ request: UnsafeMutablePointer<FCGX_Request>) { self.request = request }

    /// The worker begins serving a request: the stream is that request's from now on.
    func open() {
        generation &+= 1
        isOpen = true
    }

    /// The handler is done with the body.
    func close() { isOpen = false }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard isOpen, let stream = request.pointee.in, let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        let n = FCGX_GetStr(base.assumingMemoryBound(to: CChar.self), Int32(min(buffer.count, Int(Int32.max))), stream)
        if n <= 0, FCGX_GetError(stream) != 0 {
            throw HTTPError(.badRequest, "The request body could not be read (connection closed).")
        }
        return Int(n)
    }
}

extension UnsafeBufferPointer<UInt8> {
    /// Whether these bytes begin with `prefix`, compared with memcmp.
    fileprivate func starts(with prefix: StaticString) -> Bool {
        let n = prefix.utf8CodeUnitCount
        return count >= n && (n == 0 || memcmp(baseAddress!, prefix.utf8Start, n) == 0)
    }

    /// Whether these bytes are exactly `text`.
    fileprivate func equals(_ text: StaticString) -> Bool {
        count == text.utf8CodeUnitCount && starts(with: text)
    }
}
