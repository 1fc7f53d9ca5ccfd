/// An S3 call that failed: S3's own error code (`NoSuchUpload`, `AccessDenied`, ...), or
/// one of assetd's for a failure before S3 answered (`NetworkError`, `Timeout`,
/// `MalformedResponse`), or for a call the gate refused (`Overloaded`, `Unavailable`).
public struct S3Error: Error, Sendable, CustomStringConvertible {
    public let code: String
    public let message: String
    /// The HTTP status S3 answered with; nil when it never answered.
    public let httpStatus: Int?
    public let requestID: String?
    /// For a call the gate refused: when to try again, in seconds.
    public let retryAfter: Int?

    public init(code: String, message: String, httpStatus: Int? = nil, requestID: String? = nil, retryAfter: Int? = nil) {
        self.code = code
        self.message = message
        self.httpStatus = httpStatus
        self.requestID = requestID
        self.retryAfter = retryAfter
    }

    public var description: String {
        var text = "S3 \(code)"
        if let httpStatus { text += " (HTTP \(httpStatus))" }
        if !message.isEmpty { text += ": \(message)" }
        return text
    }

    /// True for the codes that mean the multipart upload is gone: AWS says NoSuchUpload,
    /// Ceph RGW 16 says NoSuchKey for an aborted upload.
    public var isNoSuchUpload: Bool { code == "NoSuchUpload" || code == "NoSuchKey" }

    /// Whether trying the same request again may succeed.
    var isTransient: Bool {
        if httpStatus == nil { return code == "NetworkError" || code == "Timeout" }
        return [500, 502, 503, 504].contains(httpStatus!) || code == "SlowDown" || code == "InternalError"
    }

    /// No answer came: the request may or may not have taken effect in S3 (a PUT may have
    /// landed). The caller must find out (HeadObject) before it assumes either.
    public var isAmbiguous: Bool { httpStatus == nil && (code == "NetworkError" || code == "Timeout") }
}
