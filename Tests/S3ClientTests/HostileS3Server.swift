import Foundation
import Glibc
import Logging
import SigV4
import Synchronization
@testable import S3Client

/// An HTTP server on loopback that answers as a hostile or broken S3 would: each request
/// gets what `answer` returns, then the connection closes. The S3 client under test talks
/// to it through libcurl, as it talks to S3. Its port is ASSETD_TEST_HOSTILE_S3_PORT when
/// set (the suite runs serialized then), else one the kernel picks.
final class HostileS3Server: Sendable {
    struct Request: Sendable {
        var method: String
        /// The path and query, as sent.
        var target: String
        var headers: [String: String]

        /// A query parameter's value, percent-decoded.
        func query(_ name: String) -> String? {
            URLComponents(string: target)?.queryItems?.first { $0.name == name }?.value
        }
    }

    struct Answer: Sendable {
        var status = 200
        var headers: [(String, String)] = []
        var body: [UInt8] = []
        /// Sent without a Content-Length, the end of the body being the connection's close.
        var unsized = false

        static func xml(_ text: String, status: Int = 200) -> Answer {
            Answer(status: status, headers: [("Content-Type", "application/xml")], body: Array(text.utf8))
        }
    }

    let port: Int
    private let listener: Int32
    private let requests = Mutex<[Request]>([])
    private let answer: @Sendable (Request) -> Answer
    /// Signalled once the accept loop has ended and closed the listener.
    private let ended = DispatchSemaphore(value: 0)

    init(answer: @escaping @Sendable (Request) -> Answer) throws {
        self.answer = answer
        let requested = ProcessInfo.processInfo.environment["ASSETD_TEST_HOSTILE_S3_PORT"].flatMap(Int.init) ?? 0
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw S3Error.local("socket: errno \(errno)") }
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(requested).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && listen(listener, 16) == 0 && getsockname(listener, $0, &length) == 0
            }
        }
        guard bound else {
            close(listener)
            throw S3Error.local("cannot listen on 127.0.0.1:\(requested): errno \(errno)")
        }
        self.listener = listener
        port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in serve() }
        thread.start()
    }

    /// Stops accepting and waits for the accept loop to close the listener: closed here, its
    /// descriptor could be reused by the next server while the loop still accepts on it.
    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        ended.wait()
    }

    /// What came, in order.
    var received: [Request] { requests.withLock { $0 } }

    /// A client of this server, with short deadlines and the gate off.
    func client(observer: (@Sendable (String, S3Error?, Duration) -> Void)? = nil) -> S3Client {
        var configuration = S3Client.Configuration(
            bucket: "assets", region: "us-east-1", credentials: Credentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "secret"),
            endpoint: S3Endpoint(url: "http://127.0.0.1:\(port)"))
        configuration.deadlines.call = .seconds(5)
        configuration.deadlines.budget = .seconds(10)
        configuration.observer = observer
        return S3Client(configuration: configuration, logger: Logger(label: "hostile-s3-test"))
    }

    private func serve() {
        defer {
            close(listener)
            ended.signal()
        }
        while true {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else {
                if errno == EINTR { continue }
                return
            }
            handle(connection)
            close(connection)
        }
    }

    private func handle(_ connection: Int32) {
        var head: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !head.ends(with: [13, 10, 13, 10]) {
            let n = recv(connection, &buffer, 1, 0)
            guard n > 0 else { return }
            head.append(buffer[0])
        }
        let lines = String(decoding: head, as: UTF8.self).components(separatedBy: "\r\n")
        let start = lines[0].split(separator: " ")
        guard start.count >= 2 else { return }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var remaining = headers["content-length"].flatMap(Int.init) ?? 0
        while remaining > 0 {
            let n = recv(connection, &buffer, min(remaining, buffer.count), 0)
            guard n > 0 else { return }
            remaining -= n
        }
        let request = Request(method: String(start[0]), target: String(start[1]), headers: headers)
        requests.withLock { $0.append(request) }
        let reply = answer(request)
        var text = "HTTP/1.1 \(reply.status) Hostile\r\nConnection: close\r\n"
        for (name, value) in reply.headers { text += "\(name): \(value)\r\n" }
        if !reply.unsized { text += "Content-Length: \(reply.body.count)\r\n" }
        text += "\r\n"
        guard send(Array(text.utf8), on: connection) else { return }
        // A large body goes in pieces; the client may stop reading (and the send fail) midway.
        var offset = 0
        while offset < reply.body.count {
            let end = min(offset + 64 * 1024, reply.body.count)
            guard send(Array(reply.body[offset..<end]), on: connection) else { return }
            offset = end
        }
    }

    private func send(_ bytes: [UInt8], on connection: Int32) -> Bool {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(connection, $0.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { return false }
            done += n
        }
        return true
    }
}

extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool {
        count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix
    }
}
