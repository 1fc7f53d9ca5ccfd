internal import CFastCGI
import Foundation
import Glibc
public import Logging
import Synchronization

/// Why the server could not start; `description` is the one line start-up prints.
public struct ServerError: Error, CustomStringConvertible {
    public let description: String
}

/// Serves FastCGI requests with libfcgi: `threads` worker threads, each running its own
/// `FCGX_Accept_r` loop on the shared listening socket, away from Swift's concurrency pool.
///
/// `run()` blocks until SIGTERM or SIGINT. Then the workers stop accepting, requests in
/// flight finish (for at most `drainTimeout`), and `run()` returns.
public final class FastCGIServer: Sendable {
    public enum Listen: Sendable {
        /// A unix socket path (or `host:port`, as libfcgi accepts), created with `mode`.
        case path(String, mode: UInt32)
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
    private let workers = Mutex<[pthread_t]>([])

    public init(configuration: Configuration, responder: any Responder, logger: Logger) {
        self.configuration = configuration
        self.responder = responder
        self.logger = logger
    }

    /// True when standard input is a listening socket that the server could inherit.
    public static var standardInputIsListeningSocket: Bool {
        assetd_fcgi_is_listening_socket(0) != 0
    }

    public func run() throws {
        // Before any worker thread exists: one arena per thread would keep freed buffers.
        assetd_fcgi_bound_malloc()
        guard FCGX_Init() == 0 else { throw ServerError(description: "libfcgi failed to initialise") }
        let (fd, createdPath) = try openListener()
        defer {
            if let createdPath { unlink(createdPath) }
        }

        // Signals: SIGTERM/SIGINT are waited for on this thread only; SIGUSR2 interrupts a
        // worker's accept() without restarting it; SIGPIPE must never kill the process.
        var waitSet = sigset_t()
        sigemptyset(&waitSet)
        sigaddset(&waitSet, SIGTERM)
        sigaddset(&waitSet, SIGINT)
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
                workers.withLock { $0.append(pthread_self()) }
                started.add(1, ordering: .sequentiallyConsistent)
                acceptLoop(listenFD: fd, worker: index)
            }
            thread.name = "fcgi-\(index)"
            thread.start()
        }
        while started.load(ordering: .sequentiallyConsistent) < configuration.threads { usleep(1000) }
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
        for worker in workers.withLock({ $0 }) { pthread_kill(worker, SIGUSR2) }

        let deadline = ContinuousClock.now + configuration.drainTimeout
        while inFlight.load(ordering: .sequentiallyConsistent) > 0, ContinuousClock.now < deadline {
            usleep(5000)
        }
        let left = inFlight.load(ordering: .sequentiallyConsistent)
        if left > 0 {
            logger.warning("drain timeout reached; abandoning requests in flight", metadata: ["in_flight": "\(left)"])
        } else {
            logger.notice("drained; exiting")
        }
    }

    private func describeListen() -> String {
        switch configuration.listen {
        case .path(let path, _): path
        case .standardInput: "standard input (inherited socket)"
        case .descriptor(let fd): "fd \(fd) (systemd socket activation)"
        }
    }

    private func openListener() throws -> (Int32, String?) {
        switch configuration.listen {
        case .standardInput:
            guard Self.standardInputIsListeningSocket else {
                throw ServerError(description: "ASSETD_SOCKET is not set and standard input is not a listening socket")
            }
            return (0, nil)
        case .descriptor(let fd):
            guard assetd_fcgi_is_listening_socket(fd) != 0 else {
                throw ServerError(description: "LISTEN_FDS names fd \(fd), which is not a listening socket")
            }
            return (fd, nil)
        case .path(let path, let mode):
            let isUnix = !path.contains(":")
            if isUnix {
                var info = stat()
                if lstat(path, &info) == 0 {
                    guard (info.st_mode & S_IFMT) == S_IFSOCK else {
                        throw ServerError(description: "ASSETD_SOCKET \(path) exists and is not a socket")
                    }
                    unlink(path)
                }
            }
            let fd = FCGX_OpenSocket(path, configuration.backlog)
            guard fd >= 0 else {
                throw ServerError(description: "cannot listen on ASSETD_SOCKET \(path): \(String(cString: strerror(errno)))")
            }
            if isUnix {
                chmod(path, mode_t(mode))
                return (fd, path)
            }
            return (fd, nil)
        }
    }

    private func acceptLoop(listenFD: Int32, worker: Int) {
        let request = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
        defer { request.deallocate() }
        FCGX_InitRequest(request, listenFD, FCGI_FAIL_ACCEPT_ON_INTR)
        var buffer: [UInt8] = []
        // SIGUSR2 (the shutdown wake-up) may interrupt accept(), never a request: it is
        // blocked while one is served, and delivered harmlessly when the request is done.
        var wake = sigset_t()
        sigemptyset(&wake)
        sigaddset(&wake, SIGUSR2)
        while !stopping.load(ordering: .sequentiallyConsistent) {
            let rc = FCGX_Accept_r(request)
            if rc < 0 {
                if stopping.load(ordering: .sequentiallyConsistent) { break }
                if errno != EINTR {
                    logger.error("accept failed", metadata: ["worker": "\(worker)", "errno": "\(errno)"])
                    usleep(10_000)
                }
                continue
            }
            pthread_sigmask(SIG_BLOCK, &wake, nil)
            inFlight.add(1, ordering: .sequentiallyConsistent)
            serve(request, buffer: &buffer)
            FCGX_Finish_r(request)
            inFlight.subtract(1, ordering: .sequentiallyConsistent)
            pthread_sigmask(SIG_UNBLOCK, &wake, nil)
        }
        FCGX_Free(request, 1)
    }

    private func serve(_ raw: UnsafeMutablePointer<FCGX_Request>, buffer: inout [UInt8]) {
        let request = Self.makeRequest(raw, logger: logger)
        let response = responder.respond(to: request)
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
    static func makeRequest(_ raw: UnsafeMutablePointer<FCGX_Request>, logger: Logger) -> Request {
        var method = "GET", documentURI: String?, requestURI: UnsafeBufferPointer<UInt8>?, query = "", contentLength: Int?
        var headers: [String: String] = [:]
        if var cursor = raw.pointee.envp {
            while let entry = cursor.pointee {
                cursor += 1
                let length = strlen(entry)
                guard let found = memchr(entry, Int32(UInt8(ascii: "=")), length) else { continue }
                let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(entry).assumingMemoryBound(to: UInt8.self), count: length)
                let eq = UnsafeRawPointer(found) - UnsafeRawPointer(entry)
                let name = UnsafeBufferPointer(rebasing: bytes[..<eq])
                // Only the parameters kept become Strings; nginx sends about twenty.
                var value: String { String(decoding: UnsafeBufferPointer(rebasing: bytes[(eq + 1)...]), as: UTF8.self) }
                if name.count > 5, name.starts(with: "HTTP_") {
                    headers[headerName(UnsafeBufferPointer(rebasing: name[5...]))] = value
                } else if name.equals("REQUEST_METHOD") {
                    method = value
                } else if name.equals("DOCUMENT_URI") {
                    documentURI = value
                } else if name.equals("REQUEST_URI") {
                    requestURI = UnsafeBufferPointer(rebasing: bytes[(eq + 1)...])
                } else if name.equals("QUERY_STRING") {
                    query = value
                } else if name.equals("CONTENT_LENGTH") {
                    contentLength = Int(value).flatMap { $0 >= 0 ? $0 : nil }
                } else if name.equals("CONTENT_TYPE") {
                    headers["content-type"] = value
                }
            }
        }
        // DOCUMENT_URI is the decoded path; without it, REQUEST_URI up to the query.
        let path = documentURI ?? requestURI.map { String(decoding: $0.prefix { $0 != UInt8(ascii: "?") }, as: UTF8.self) } ?? "/"
        return Request(
            method: method, path: path, queryString: query, headers: headers,
            contentLength: contentLength, body: FastCGIInput(raw.pointee.in), logger: logger
        )
    }

    /// `USER_AGENT` -> `user-agent`.
    static func headerName(_ cgi: UnsafeBufferPointer<UInt8>) -> String {
        String(unsafeUninitializedCapacity: cgi.count) { out in
            for (i, byte) in cgi.enumerated() {
                switch byte {
                case UInt8(ascii: "_"): out[i] = UInt8(ascii: "-")
                case UInt8(ascii: "A")...UInt8(ascii: "Z"): out[i] = byte + 32
                default: out[i] = byte
                }
            }
            return cgi.count
        }
    }
}

/// FastCGI stdin as a body source.
final class FastCGIInput: BodySource {
    private let stream: UnsafeMutablePointer<FCGX_Stream>?

    init(_ stream: UnsafeMutablePointer<FCGX_Stream>?) { self.stream = stream }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let stream, let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
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
