internal import CCurl
import Foundation
import Glibc
import Synchronization

/// What an S3 request sends as its body.
enum RequestBody {
    case none
    case bytes([UInt8])
    /// `size` bytes of an open file, from offset 0 (read with pread, so a retry can replay it).
    case file(descriptor: Int32, size: Int)

    var size: Int {
        switch self {
        case .none: 0
        case .bytes(let bytes): bytes.count
        case .file(_, let size): size
        }
    }
}

/// Where a response body goes. A sink with a limit stops a transfer whose 2xx body grows
/// past it, and the call fails with `S3Error.malformed`: a server does not get to send
/// more than was asked for (into memory or onto the state disk).
enum ResponseSink {
    /// Into `TransportResponse.body` (at most `CurlTransport.maxResponseBody`).
    case memory
    /// Into `TransportResponse.body`, a 2xx body of at most `limit` bytes (a byte range).
    case memoryUpTo(limit: Int)
    /// A 2xx body of at most `limit` bytes is written to an open file from offset 0 with
    /// pwrite (a retry starts over); any other status's body (S3's `<Error>`) still goes
    /// to memory.
    case file(descriptor: Int32, limit: Int)
    /// The first `limit` bytes into `TransportResponse.body`, the rest read and dropped (a
    /// webhook receiver's answer, which only its status matters for).
    case bounded(limit: Int)
}

struct TransportResponse {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]
    /// Bytes written to a `.file` sink.
    var fileBytes: Int = 0
}

/// HTTP over libcurl easy handles, kept in a pool so that each keeps its connections
/// alive between requests. Any thread may borrow one; none is shared at once.
final class CurlTransport: Sendable {
    /// How long one attempt may take. Every request has a total deadline; large transfers
    /// also stop when they crawl.
    struct Limits: Sendable {
        var connectMilliseconds: Int = 3_000
        /// The whole attempt: connect, send, wait, receive.
        var totalMilliseconds: Int
        /// Stop a transfer that moves fewer than `bytesPerSecond` for `seconds` (a hung
        /// server during a long transfer, or a CompleteMultipartUpload whose keep-alive
        /// whitespace stopped).
        var lowSpeed: (bytesPerSecond: Int, seconds: Int)?
    }

    /// A libcurl easy handle. It may move between threads; the pool lends it to one at a time.
    private struct EasyHandle: @unchecked Sendable {
        let raw: UnsafeMutableRawPointer
    }

    private let pool = Mutex<[EasyHandle]>([])
    /// The most bytes of an answer body kept in memory.
    static let maxResponseBody = 64 * 1024 * 1024

    init() {
        Self.globalInit
    }

    deinit {
        pool.withLock { handles in
            for handle in handles { curl_easy_cleanup(handle.raw) }
            handles.removeAll()
        }
    }

    private static let globalInit: Void = {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
    }()

    private func borrow() -> UnsafeMutableRawPointer? {
        if let handle = pool.withLock({ $0.popLast() }) {
            curl_easy_reset(handle.raw)
            return handle.raw
        }
        return curl_easy_init()
    }

    private func giveBack(_ handle: UnsafeMutableRawPointer) {
        let handle = EasyHandle(raw: handle)
        pool.withLock { $0.append(handle) }
    }

    /// Performs one request. Throws `S3Error.network` or `.timeout` when no
    /// answer came; an HTTP error status is a normal response for the caller to read.
    func perform(method: String, url: String, headers: [(String, String)], body: RequestBody, limits: Limits,
                 sink: ResponseSink = .memory) throws -> TransportResponse {
        guard let handle = borrow() else {
            throw S3Error.network("libcurl could not create a handle")
        }
        defer { giveBack(handle) }

        let state = TransferState(body: body, sink: sink)
        let unmanaged = Unmanaged.passRetained(state)
        defer { unmanaged.release() }
        let userdata = unmanaged.toOpaque()

        var list: UnsafeMutablePointer<curl_slist>?
        for (name, value) in headers { list = curl_slist_append(list, "\(name): \(value)") }
        // No 100-continue round trip, and no Accept header that was not signed.
        list = curl_slist_append(list, "Expect:")
        list = curl_slist_append(list, "Accept:")
        defer { curl_slist_free_all(list) }

        assetd_curl_setopt_string(handle, CURLOPT_URL, url)
        assetd_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        assetd_curl_setopt_long(handle, CURLOPT_TCP_KEEPALIVE, 1)
        assetd_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, min(limits.connectMilliseconds, limits.totalMilliseconds))
        assetd_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, max(1, limits.totalMilliseconds))
        if let lowSpeed = limits.lowSpeed {
            assetd_curl_setopt_long(handle, CURLOPT_LOW_SPEED_LIMIT, lowSpeed.bytesPerSecond)
            assetd_curl_setopt_long(handle, CURLOPT_LOW_SPEED_TIME, lowSpeed.seconds)
        }
        assetd_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, list)
        assetd_curl_setopt_callback(handle, CURLOPT_WRITEFUNCTION, { buffer, size, count, userdata in
            let state = Unmanaged<TransferState>.fromOpaque(userdata!).takeUnretainedValue()
            let n = size * count
            guard let buffer else { return n }
            return state.write(UnsafeRawBufferPointer(start: buffer, count: n))
        })
        assetd_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, userdata)
        assetd_curl_setopt_callback(handle, CURLOPT_HEADERFUNCTION, { buffer, size, count, userdata in
            let state = Unmanaged<TransferState>.fromOpaque(userdata!).takeUnretainedValue()
            let n = size * count
            if let buffer { state.header(line: UnsafeRawBufferPointer(start: buffer, count: n)) }
            return n
        })
        assetd_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, userdata)

        switch method {
        case "GET": break
        case "HEAD": assetd_curl_setopt_long(handle, CURLOPT_NOBODY, 1)
        default: assetd_curl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, method)
        }
        if case .none = body {
            if method == "POST" || method == "PUT" {
                assetd_curl_setopt_long(handle, CURLOPT_UPLOAD, 1)
                assetd_curl_setopt_offset(handle, CURLOPT_INFILESIZE_LARGE, 0)
                assetd_curl_setopt_callback(handle, CURLOPT_READFUNCTION, { _, _, _, _ in 0 })
            }
        } else {
            assetd_curl_setopt_long(handle, CURLOPT_UPLOAD, 1)
            assetd_curl_setopt_offset(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(body.size))
            // Larger reads and sends for large bodies than curl's 64 KiB default.
            assetd_curl_setopt_long(handle, CURLOPT_UPLOAD_BUFFERSIZE, body.size > 1 << 20 ? 512 * 1024 : 64 * 1024)
            assetd_curl_setopt_callback(handle, CURLOPT_READFUNCTION, { buffer, size, count, userdata in
                let state = Unmanaged<TransferState>.fromOpaque(userdata!).takeUnretainedValue()
                guard let buffer else { return 0 }
                return state.read(into: UnsafeMutableRawBufferPointer(start: buffer, count: size * count))
            })
            assetd_curl_setopt_pointer(handle, CURLOPT_READDATA, userdata)
        }

        let code = curl_easy_perform(handle)
        if let limit = state.exceeded {
            throw S3Error.malformed("the answer's body went past the \(limit) bytes it may have (\(method) \(Self.redact(url)))")
        }
        guard code == CURLE_OK else {
            let text = String(cString: curl_easy_strerror(code))
            let message = "\(text) (\(method) \(Self.redact(url)))"
            throw code == CURLE_OPERATION_TIMEDOUT ? S3Error.timeout(message) : S3Error.network(message)
        }
        var status = 0
        assetd_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        if state.fileError != 0 {
            throw S3Error.local("cannot write the downloaded body: errno \(state.fileError)")
        }
        return TransportResponse(status: status, headers: state.headers, body: state.body, fileBytes: state.fileOffset)
    }

    /// Resolves `url`'s host and connects to it (the TLS handshake too, for https, with the
    /// certificate checked as a request's is) within `milliseconds`, then hangs up: no byte
    /// of HTTP is sent. A handle of its own, not the pool's: its connection is not kept.
    func connectOnly(url: String, milliseconds: Int) throws {
        guard let handle = curl_easy_init() else {
            throw S3Error.network("libcurl could not create a handle")
        }
        defer { curl_easy_cleanup(handle) }
        assetd_curl_setopt_string(handle, CURLOPT_URL, url)
        assetd_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        assetd_curl_setopt_long(handle, CURLOPT_CONNECT_ONLY, 1)
        assetd_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, max(1, milliseconds))
        assetd_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, max(1, milliseconds))
        let code = curl_easy_perform(handle)
        guard code == CURLE_OK else {
            let message = "\(String(cString: curl_easy_strerror(code))) (connecting to \(Self.redact(url)))"
            throw code == CURLE_OPERATION_TIMEDOUT ? S3Error.timeout(message) : S3Error.network(message)
        }
    }

    /// The URL without its query, for messages: presigned or not, a query can carry secrets.
    static func redact(_ url: String) -> String {
        String(url.split(separator: "?", maxSplits: 1)[0])
    }
}

/// The mutable state of one transfer, reached from libcurl's callbacks.
private final class TransferState {
    let source: RequestBody
    let sink: ResponseSink
    var offset = 0
    var body: [UInt8] = []
    var headers: [String: String] = [:]
    /// The status of the answer being received, from its status line.
    var status = 0
    var fileOffset = 0
    var fileError: Int32 = 0
    /// The sink's limit, once a body went past it (the transfer was stopped).
    var exceeded: Int?

    init(body: RequestBody, sink: ResponseSink) {
        self.source = body
        self.sink = sink
    }

    /// A piece of the response body; returning less than its size stops the transfer.
    func write(_ bytes: UnsafeRawBufferPointer) -> Int {
        let success = (200..<300).contains(status)
        if case .file(let descriptor, let limit) = sink, success {
            guard fileOffset + bytes.count <= limit else { return stop(exceeding: limit) }
            var done = 0
            while done < bytes.count {
                let n = pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(fileOffset + done))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    fileError = errno
                    return 0
                }
                done += n
            }
            fileOffset += done
            return bytes.count
        }
        if case .bounded(let limit) = sink {
            let room = max(0, limit - body.count)
            if room > 0 { body.append(contentsOf: bytes.prefix(room)) }
            return bytes.count
        }
        var limit = CurlTransport.maxResponseBody
        if case .memoryUpTo(let asked) = sink, success { limit = min(asked, limit) }
        guard body.count + bytes.count <= limit else { return stop(exceeding: limit) }
        body.append(contentsOf: bytes)
        return bytes.count
    }

    /// Stops the transfer: its body went past `limit`.
    private func stop(exceeding limit: Int) -> Int {
        exceeded = limit
        return 0
    }

    func header(line: UnsafeRawBufferPointer) {
        let text = String(decoding: line, as: UTF8.self)
        if text.hasPrefix("HTTP/") {
            headers.removeAll() // a new answer (after 100 Continue or a redirect)
            status = text.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
            return
        }
        guard let colon = text.firstIndex(of: ":") else { return }
        let name = text[..<colon].lowercased()
        let value = text[text.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
        headers[name] = value
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        switch source {
        case .none:
            return 0
        case .bytes(let bytes):
            let n = min(buffer.count, bytes.count - offset)
            guard n > 0 else { return 0 }
            bytes.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + offset, byteCount: n) }
            offset += n
            return n
        case .file(let descriptor, let size):
            let want = min(buffer.count, size - offset)
            guard want > 0 else { return 0 }
            let n = pread(descriptor, buffer.baseAddress, want, off_t(offset))
            guard n > 0 else { return Int(CURL_READFUNC_ABORT) }
            offset += n
            return n
        }
    }
}
