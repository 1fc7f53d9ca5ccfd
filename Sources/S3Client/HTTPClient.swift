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
        let total = Int(timeout.components.seconds) * 1000 + Int(timeout.components.attoseconds / 1_000_000_000_000_000)
        let limits = CurlTransport.Limits(connectMilliseconds: min(5_000, total), totalMilliseconds: total, lowSpeed: nil)
        do {
            let answer = try transport.perform(method: method, url: url, headers: headers, body: body.isEmpty ? .none : .bytes(body),
                                               limits: limits, sink: .bounded(limit: maxResponseBytes))
            return Response(status: answer.status, headers: answer.headers, body: answer.body)
        } catch S3Error.timeout(let message) {
            throw Failure(description: "no answer in time: \(message)", timedOut: true)
        } catch S3Error.network(let message), S3Error.local(let message) {
            throw Failure(description: "no answer: \(message)", timedOut: false)
        } catch {
            throw Failure(description: "\(error)", timedOut: false)
        }
    }
}
