import Foundation
import Hashing
import Logging
import SigV4

extension S3Client {
    /// What kind of call a request is, for its deadline and retries.
    enum CallKind {
        /// No large body either way: `Deadlines.call` an attempt, `Deadlines.budget` in all.
        case short
        /// A body of about `bytes` goes up or comes down: the attempt's deadline grows with
        /// it, and a transfer that crawls is stopped.
        case transfer(bytes: Int)
        /// Never retried, with a long deadline: CompleteMultipartUpload (and CopyObject),
        /// which AWS may work on for minutes while it sends whitespace to keep the line
        /// alive. A retry could complete an upload twice or race another request.
        case once
    }

    /// Signs and sends one request, retrying a transient failure while its deadline lasts;
    /// throws `S3Error` for any answer that is not 2xx. Every attempt passes the gate.
    func send(
        _ method: String, key: String, query: [(String, String)] = [], headers: [(String, String)] = [],
        body: RequestBody = .none, payloadHash: String? = nil, kind: CallKind = .short, sink: ResponseSink = .memory
    ) throws -> TransportResponse {
        let endpoint = configuration.endpoint
        let path = endpoint.path(bucket: configuration.bucket, key: key)
        let hash: String
        switch body {
        case .none: hash = payloadHash ?? SHA256.emptyHex
        case .bytes(let bytes): hash = payloadHash ?? Encoding.hex(SHA256.hash(bytes))
        case .file: hash = payloadHash ?? SigV4Signer.unsignedPayload
        }
        let canonicalQuery = query.isEmpty ? "" : "?" + URIEncoding.canonicalQuery(query.map { ($0.0, $0.1) })
        let url = "\(endpoint.scheme)://\(endpoint.host)\(URIEncoding.encodePath(path))\(canonicalQuery)"
        let unsignedHeaders = [("host", endpoint.host), ("x-amz-content-sha256", hash)] + headers

        let deadlines = configuration.deadlines
        let perAttempt: Duration, budget: Duration, tries: Int
        var lowSpeed: (bytesPerSecond: Int, seconds: Int)?
        switch kind {
        case .short:
            (perAttempt, budget, tries) = (deadlines.call, deadlines.budget, attempts)
        case .transfer(let bytes):
            perAttempt = deadlines.call + .seconds(Double(bytes) / Double(deadlines.transferBytesPerSecond))
            (budget, tries) = (perAttempt * 2, attempts)
            lowSpeed = (1024, deadlines.stalledSeconds)
        case .once:
            (perAttempt, budget, tries) = (deadlines.complete, deadlines.complete, 1)
            lowSpeed = (1, deadlines.completeSilenceSeconds)
        }

        let clock = ContinuousClock()
        let started = clock.now
        var lastError: S3Error?
        for attempt in 1...tries {
            let remaining = budget - (clock.now - started)
            guard remaining >= .milliseconds(50) else { break }
            let limit = min(perAttempt, remaining)
            // Signed anew on each attempt: x-amz-date moves with the clock.
            let signed = signer.signHeaders(
                method: method, path: path, query: query.map { ($0.0, $0.1) }, headers: unsignedHeaders, payloadHash: hash
            )
            let probe = try gate?.enter() ?? false
            var outcome = S3Gate.Outcome.failed
            do {
                defer { gate?.leave(outcome, probe: probe) }
                let limits = CurlTransport.Limits(totalMilliseconds: Self.milliseconds(limit), lowSpeed: lowSpeed)
                let response = try transport.perform(method: method, url: url, headers: unsignedHeaders + signed, body: body, limits: limits, sink: sink)
                if response.status < 500 { outcome = .answered }
                if (200..<300).contains(response.status) { return response }
                throw Self.error(status: response.status, body: response.body, headers: response.headers, method: method)
            } catch let error as S3Error {
                lastError = error
                guard error.isTransient, attempt < tries, !(gate?.isOpen ?? false) else { throw error }
                let pause = Duration.milliseconds(100 * attempt * attempt)
                guard budget - (clock.now - started) > pause + .milliseconds(50) else { throw error }
                logger.warning("S3 call failed; retrying", metadata: [
                    "method": "\(method)", "key": "\(key)", "attempt": "\(attempt)", "error": "\(error)",
                ])
                Thread.sleep(forTimeInterval: Double(pause.components.attoseconds) / 1e18 + Double(pause.components.seconds))
            }
        }
        throw lastError ?? S3Error(code: "Timeout", message: "the call's deadline of \(budget) passed before an attempt could start")
    }

    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds) * 1000 + Int(duration.components.attoseconds / 1_000_000_000_000_000)
    }

    /// The S3Error for an HTTP error answer: S3's `<Error>` body when there is one,
    /// otherwise a code from the status (HEAD answers have no body).
    static func error(status: Int, body: [UInt8], headers: [String: String], method: String) -> S3Error {
        if let tree = XMLTree.parse(body), tree.name == "Error" {
            return error(from: tree, status: status, headers: headers)
        }
        let code = switch status {
        case 301, 307: "PermanentRedirect"
        case 400: "BadRequest"
        case 403: "AccessDenied"
        case 404: method == "HEAD" ? "NotFound" : "NoSuchKey"
        case 409: "Conflict"
        case 412: "PreconditionFailed"
        case 503: "SlowDown"
        default: "HTTP\(status)"
        }
        return S3Error(code: code, message: "", httpStatus: status, requestID: headers["x-amz-request-id"])
    }

    static func error(from tree: XMLTree, status: Int, headers: [String: String]) -> S3Error {
        S3Error(
            code: tree.value("Code") ?? "HTTP\(status)",
            message: tree.value("Message") ?? "",
            httpStatus: status,
            requestID: tree.value("RequestId") ?? headers["x-amz-request-id"]
        )
    }
}
