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

    /// The S3 operations, by the names S3's documentation and the metrics use.
    enum Operation: String {
        case createMultipartUpload = "CreateMultipartUpload", listParts = "ListParts"
        case completeMultipartUpload = "CompleteMultipartUpload", abortMultipartUpload = "AbortMultipartUpload"
        case putObject = "PutObject", getObject = "GetObject", headObject = "HeadObject"
        case deleteObject = "DeleteObject", deleteObjects = "DeleteObjects"
        case copyObject = "CopyObject", uploadPartCopy = "UploadPartCopy", listObjects = "ListObjectsV2"
        case headBucket = "HeadBucket", createBucket = "CreateBucket", bucketConfiguration = "BucketConfiguration"
    }

    /// Signs and sends one request, retrying a transient failure while its deadline lasts;
    /// throws `S3Error` for any answer that is not 2xx. Every attempt passes the gate, and
    /// the call as a whole (its retries included) is reported once to the observer.
    func send(
        _ operation: Operation, _ method: String, key: String, query: [(String, String)] = [], headers: [(String, String)] = [],
        body: RequestBody = .none, payloadHash: String? = nil, kind: CallKind = .short, sink: ResponseSink = .memory
    ) throws -> TransportResponse {
        guard let observer = configuration.observer else {
            return try sendRetrying(method, key: key, query: query, headers: headers, body: body, payloadHash: payloadHash, kind: kind, sink: sink)
        }
        let started = ContinuousClock.now
        do {
            let response = try sendRetrying(method, key: key, query: query, headers: headers, body: body, payloadHash: payloadHash,
                                            kind: kind, sink: sink)
            observer(operation.rawValue, nil, ContinuousClock.now - started)
            return response
        } catch let error as S3Error {
            observer(operation.rawValue, error, ContinuousClock.now - started)
            throw error
        }
    }

    private func sendRetrying(
        _ method: String, key: String, query: [(String, String)], headers: [(String, String)],
        body: RequestBody, payloadHash: String?, kind: CallKind, sink: ResponseSink
    ) throws -> TransportResponse {
        let hash: String
        switch body {
        case .none: hash = payloadHash ?? SHA256.emptyHex
        case .bytes(let bytes): hash = payloadHash ?? Encoding.hex(SHA256.hash(bytes))
        case .file: hash = payloadHash ?? SigV4Signer.unsignedPayload
        }
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
            let limits = CurlTransport.Limits(totalMilliseconds: Self.milliseconds(min(perAttempt, remaining)), lowSpeed: lowSpeed)
            try gate?.enter(probe: probeBucket)
            var outcome = S3Gate.Outcome.failed
            do {
                defer { gate?.leave(outcome) }
                let response = try perform(method, key: key, query: query, headers: headers, body: body, payloadHash: hash,
                                           limits: limits, sink: sink)
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
        throw lastError ?? S3Error.timeout("the call's deadline of \(budget) passed before an attempt could start")
    }

    /// One attempt: signed anew (x-amz-date moves with the clock) and sent, past the gate.
    private func perform(
        _ method: String, key: String, query: [(String, String)], headers: [(String, String)], body: RequestBody,
        payloadHash: String, limits: CurlTransport.Limits, sink: ResponseSink
    ) throws -> TransportResponse {
        let endpoint = configuration.endpoint
        let path = endpoint.path(bucket: configuration.bucket, key: key)
        let canonicalQuery = query.isEmpty ? "" : "?" + URIEncoding.canonicalQuery(query.map { ($0.0, $0.1) })
        let url = "\(endpoint.scheme)://\(endpoint.host)\(URIEncoding.encodePath(path))\(canonicalQuery)"
        let all = signedHeaders(method, key: key, query: query, headers: headers, payloadHash: payloadHash)
        return try transport.perform(method: method, url: url, headers: all, body: body, limits: limits, sink: sink)
    }

    /// Every header of a request, signed: `host`, `x-amz-content-sha256` and `headers` (the
    /// `x-amz-server-side-encryption*` headers among them) are all in SignedHeaders, as AWS
    /// and Ceph RGW require of every `x-amz-*` header sent; then `x-amz-date`, the session
    /// token and `authorization`.
    func signedHeaders(_ method: String, key: String, query: [(String, String)], headers: [(String, String)], payloadHash: String,
                       date: Date = Date()) -> [(String, String)] {
        let endpoint = configuration.endpoint
        let unsignedHeaders = [("host", endpoint.host), ("x-amz-content-sha256", payloadHash)] + headers
        let signed = signer.signHeaders(
            method: method, path: endpoint.path(bucket: configuration.bucket, key: key), query: query.map { ($0.0, $0.1) },
            headers: unsignedHeaders, payloadHash: payloadHash, date: date
        )
        return unsignedHeaders + signed.map { ($0.name, $0.value) }
    }

    /// The gate's probe after its pause: one HeadBucket with a short deadline, outside the
    /// gate and without retries. Any answer below 500 means S3 answers again.
    func probeBucket() -> Bool {
        let limit = min(configuration.deadlines.call, .seconds(2))
        let limits = CurlTransport.Limits(totalMilliseconds: Self.milliseconds(limit), lowSpeed: nil)
        guard let response = try? perform("HEAD", key: "", query: [], headers: [], body: .none, payloadHash: SHA256.emptyHex,
                                          limits: limits, sink: .memory)
        else { return false }
        logger.notice("S3 answered the gate's probe", metadata: ["status": "\(response.status)"])
        return response.status < 500
    }

    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds) * 1000 + Int(duration.components.attoseconds / 1_000_000_000_000_000)
    }

    /// The S3Error for an HTTP error answer: S3's `<Error>` body when there is one,
    /// otherwise what the status alone says. A 404 without a body is `.notFound`: it does
    /// not say whether the key, the upload or the bucket is missing.
    static func error(status: Int, body: [UInt8], headers: [String: String], method: String) -> S3Error {
        if let tree = XMLTree.parse(body), tree.name == "Error" {
            return error(from: tree, status: status, headers: headers)
        }
        let code: S3Error.Code = switch status {
        case 403: .accessDenied
        case 404: .notFound
        case 412: .preconditionFailed
        case 503: .slowDown
        default: .other("HTTP\(status)")
        }
        return .service(code, status: status, message: "", requestID: S3Error.requestID(headers["x-amz-request-id"]))
    }

    /// The `<Error>` answer as an S3Error. Its texts are the server's: cut to a length a log
    /// line can carry (`S3Error.excerpt`).
    static func error(from tree: XMLTree, status: Int, headers: [String: String]) -> S3Error {
        .service(S3Error.Code(tree.value("Code") ?? "HTTP\(status)"), status: status,
                 message: S3Error.excerpt(tree.value("Message") ?? ""),
                 requestID: S3Error.requestID(tree.value("RequestId") ?? headers["x-amz-request-id"]))
    }
}
