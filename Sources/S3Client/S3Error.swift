/// An S3 call that failed: S3's own error code (`NoSuchUpload`, `AccessDenied`, ...), or
/// one of assetd's for a failure before S3 answered (`NetworkError`, `Timeout`,
/// `MalformedResponse`).
public struct S3Error: Error, Sendable, CustomStringConvertible {
    public let code: String
    public let message: String
    /// The HTTP status S3 answered with; nil when it never answered.
    public let httpStatus: Int?
    public let requestID: String?

    public init(code: String, message: String, httpStatus: Int? = nil, requestID: String? = nil) {
        self.code = code
        self.message = message
        self.httpStatus = httpStatus
        self.requestID = requestID
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
}
