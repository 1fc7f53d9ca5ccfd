/// Why an S3 call failed. S3's own answers carry a typed `Code`; the other cases say what
/// happened before or instead of an answer, so that no caller compares strings.
public enum S3Error: Error, Sendable, CustomStringConvertible {
    /// S3 answered with an error status, or with a 200 that carried an `<Error>`.
    case service(Code, status: Int, message: String, requestID: String?)
    /// No answer within the call's deadline. The request may have taken effect.
    case timeout(String)
    /// No answer: the connection was refused, reset or cut short. If the request was
    /// sent, it may have taken effect.
    case network(String)
    /// The gate refused the call without sending it (S3 is failing or saturated): try
    /// again in `retryAfter` seconds.
    case refused(String, retryAfter: Int)
    /// S3 answered 2xx, but not with what the operation returns.
    case malformed(String)
    /// The local side failed: a downloaded body could not be written to its file.
    case local(String)

    /// The error codes of S3's that assetd acts on; any other is `.other` with its text, cut
    /// to `Code.maxOtherLength` printable ASCII characters (the server chose it).
    public enum Code: Sendable, Hashable, CustomStringConvertible {
        case noSuchUpload, noSuchKey, noSuchBucket
        /// A 404 without a body (HEAD answers have none): nothing says what is missing.
        case notFound
        case invalidPart, invalidPartOrder, entityTooSmall, badDigest
        case accessDenied, preconditionFailed, slowDown, internalError
        case bucketAlreadyOwnedByYou, noSuchCORSConfiguration, noSuchLifecycleConfiguration
        /// GetBucketEncryption of a bucket without default encryption.
        case serverSideEncryptionConfigurationNotFound
        case other(String)

        private static let named: [String: Code] = [
            "NoSuchUpload": .noSuchUpload, "NoSuchKey": .noSuchKey, "NoSuchBucket": .noSuchBucket, "NotFound": .notFound,
            "InvalidPart": .invalidPart, "InvalidPartOrder": .invalidPartOrder, "EntityTooSmall": .entityTooSmall,
            "BadDigest": .badDigest, "AccessDenied": .accessDenied, "PreconditionFailed": .preconditionFailed,
            "SlowDown": .slowDown, "InternalError": .internalError, "BucketAlreadyOwnedByYou": .bucketAlreadyOwnedByYou,
            "NoSuchCORSConfiguration": .noSuchCORSConfiguration, "NoSuchLifecycleConfiguration": .noSuchLifecycleConfiguration,
            "ServerSideEncryptionConfigurationNotFoundError": .serverSideEncryptionConfigurationNotFound,
        ]

        /// The code S3 wrote in an `<Error>` body.
        public init(_ text: String) {
            self = Self.named[text] ?? .other(S3Error.excerpt(text, maxLength: Self.maxOtherLength))
        }

        /// The longest text an `.other` code keeps: S3's longest codes are about 45 characters.
        public static let maxOtherLength = 64

        /// Codes that are no case of their own but that an operator watches for (a rotated
        /// key, a skewed clock, KMS): the metrics label names them.
        static let labelled: Set<String> = [
            "InvalidAccessKeyId", "SignatureDoesNotMatch", "RequestTimeTooSkewed", "ExpiredToken", "InvalidToken",
            "TokenRefreshRequired", "AllAccessDisabled", "AccountProblem", "InvalidBucketState", "PermanentRedirect",
            "TemporaryRedirect", "AuthorizationHeaderMalformed", "ServiceUnavailable", "RequestTimeout", "InvalidRange",
            "EntityTooLarge", "InvalidArgument", "InvalidRequest", "MalformedXML", "MissingContentLength", "NotImplemented",
            "XAmzContentSHA256Mismatch", "MethodNotAllowed", "OperationAborted", "InvalidObjectState", "KMS.DisabledException",
            "KMS.NotFoundException", "KMS.KMSInvalidStateException", "KMS.ThrottlingException", "KMS.AccessDeniedException",
            "QuotaExceeded", "UserSuspended",
        ]

        /// A label from a bounded set, for metrics and the client's 502 message: the name of a
        /// case, a code in `labelled`, `HTTPnnn` for an error status without a body, else
        /// `Other`. A server that answers a new `<Code>` each time adds no label.
        public var label: String {
            guard case .other(let text) = self else { return description }
            if Self.labelled.contains(text) { return text }
            if text.count == 7, text.hasPrefix("HTTP"), text.utf8.dropFirst(4).allSatisfy({ (0x30...0x39).contains($0) }) { return text }
            return "Other"
        }

        /// S3's own spelling (`NoSuchUpload`).
        public var description: String {
            if case .other(let text) = self { return text }
            return Self.named.first { $0.value == self }!.key
        }
    }

    /// S3's code, for an answer from S3; nil when none came.
    public var code: Code? {
        if case .service(let code, _, _, _) = self { return code }
        return nil
    }

    /// The HTTP status S3 answered with; nil when it never answered.
    public var httpStatus: Int? {
        if case .service(_, let status, _, _) = self { return status }
        return nil
    }

    /// No answer came: the request may or may not have taken effect in S3 (a PUT may have
    /// landed). The caller must find out (HeadObject) before it assumes either.
    public var isAmbiguous: Bool {
        switch self {
        case .timeout, .network: true
        default: false
        }
    }

    /// Whether the same request may succeed if sent again.
    var isTransient: Bool {
        switch self {
        case .timeout, .network: true
        case .service(let code, let status, _, _): [500, 502, 503, 504].contains(status) || code == .slowDown || code == .internalError
        case .refused, .malformed, .local: false
        }
    }

    /// A bounded label for metrics and the client's 502 message: S3's code (`Code.label`),
    /// or the kind of failure. Logs get the whole error (`description`), itself bounded.
    public var label: String {
        switch self {
        case .service(let code, _, _, _): code.label
        case .timeout: "Timeout"
        case .network: "NetworkError"
        case .refused: "Refused"
        case .malformed: "MalformedResponse"
        case .local: "LocalError"
        }
    }

    /// The longest `<Message>` an error keeps.
    static let maxMessageLength = 256

    /// At most `maxLength` characters of `text`, printable ASCII only (others become `?`),
    /// with `…` when cut: S3's own words (a code, a message, a request id) as a log may show
    /// them, whatever a server sent.
    static func excerpt(_ text: String, maxLength: Int = maxMessageLength) -> String {
        var out = ""
        for (count, byte) in text.utf8.enumerated() {
            guard count < maxLength else { return out + "…" }
            out.unicodeScalars.append((0x20...0x7e).contains(byte) ? Unicode.Scalar(byte) : "?")
        }
        return out
    }

    /// A request id from an answer, as `excerpt` keeps it.
    static func requestID(_ text: String?) -> String? {
        text.map { excerpt($0, maxLength: Code.maxOtherLength) }
    }

    public var description: String {
        switch self {
        case .service(let code, let status, let message, let requestID):
            var text = "S3 \(code) (HTTP \(status))"
            if !message.isEmpty { text += ": \(message)" }
            if let requestID { text += " [request \(requestID)]" }
            return text
        case .timeout(let message): return "S3 did not answer in time: \(message)"
        case .network(let message): return "S3 could not be reached: \(message)"
        case .refused(let message, let retryAfter): return "S3 call refused by the gate (retry in \(retryAfter) s): \(message)"
        case .malformed(let message): return "S3 answered malformed: \(message)"
        case .local(let message): return "S3 transfer failed locally: \(message)"
        }
    }
}
