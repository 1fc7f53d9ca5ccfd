/// Plain HTTP over the same pooled libcurl handles as the S3 calls (`CurlTransport`), for
/// the event sinks (webhooks, Typesense): one request, one answer, no signing, no retry.
public final class HTTPClient: Sendable {
    public struct Response: Sendable, Equatable {
        public var status: Int
        /// Header names in lower case.
        public var headers: [String: String]
        /// At most `maxResponseBytes` of the body.
        public var body: [UInt8]

        public init(status: Int, headers: [String: String] = [:], body: [UInt8] = []) {
            self.status = status
            self.headers = headers
            self.body = body
        }
    }

    /// No answer came: the connection failed or the deadline passed. `description` names
    /// the URL without its query.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let description: String
        public let timedOut: Bool
    }

    private let transport = CurlTransport()

    public init() {}

    /// Sends one request; any HTTP status is an answer, only a missing answer throws.
    public func send(method: String, url: String, headers: [(String, String)], body: [UInt8], timeout: Duration,
                     maxResponseBytes: Int = 64 * 1024) throws(Failure) -> Response {
        let total = Self.milliseconds(timeout)
        let limits = CurlTransport.Limits(connectMilliseconds: min(5_000, total), totalMilliseconds: total, lowSpeed: nil)
        do {
            let answer = try transport.perform(method: method, url: url, headers: headers, body: body.isEmpty ? .none : .bytes(body),
                                               limits: limits, sink: .bounded(limit: maxResponseBytes))
            return Response(status: answer.status, headers: answer.headers, body: answer.body)
        } catch {
            throw Self.failure(error)
        }
    }

    /// Resolves the URL's host and connects to it, TLS included for https (the certificate
    /// checked as `send` checks it), within `timeout`; sends nothing. `assetd check-config`'s
    /// probe of a webhook receiver, which must get no request that is not an event.
    public func connect(url: String, timeout: Duration) throws(Failure) {
        do {
            try transport.connectOnly(url: url, milliseconds: Self.milliseconds(timeout))
        } catch {
            throw Self.failure(error)
        }
    }

    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds) * 1000 + Int(duration.components.attoseconds / 1_000_000_000_000_000)
    }

    static func failure(_ error: any Error) -> Failure {
        switch error {
        case S3Error.timeout(let message): Failure(description: "no answer in time: \(message)", timedOut: true)
        case S3Error.network(let message), S3Error.local(let message): Failure(description: "no answer: \(message)", timedOut: false)
        default: Failure(description: "\(error)", timedOut: false)
        }
    }
}
