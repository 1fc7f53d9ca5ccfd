public import struct Foundation.Date
internal import Glibc
internal import Hashing
internal import Synchronization

/// Signs requests with AWS Signature Version 4, in the Authorization header or in the
/// query string (presigned URLs).
///
/// It knows nothing of the network, the clock or buckets: the caller passes the time,
/// the host header and the payload hash. Each stage cites the page that defines it:
/// https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
public struct SigV4Signer: Sendable {
    public typealias Field = (name: String, value: String)

    public let credentials: Credentials
    public let region: String
    public let service: String
    private let keyCache = SigningKeyCache()

    public static let algorithm = "AWS4-HMAC-SHA256"
    /// The payload hash of a presigned S3 request, whose body the signer never sees.
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"

    public init(credentials: Credentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// Signs a request with the Authorization header.
    ///
    /// - Parameters:
    ///   - path: the path, not yet percent-encoded (an S3 key as it is).
    ///   - query: query names and values, not yet percent-encoded.
    ///   - headers: the headers to sign, `host` among them.
    ///   - payloadHash: hex SHA-256 of the body, or `UNSIGNED-PAYLOAD`.
    ///   - normalizePath: remove dot segments and repeated slashes (never for S3).
    ///   - omitSessionToken: add the session token after signing instead of signing it.
    /// - Returns: the headers to add to the request: `x-amz-date`, `x-amz-security-token`
    ///   when there is a session token, and `authorization`.
    public func signHeaders(
        method: String,
        path: String,
        query: [Field] = [],
        headers: [Field],
        payloadHash: String,
        date: Date = Date(),
        normalizePath: Bool = false,
        omitSessionToken: Bool = false
    ) -> [Field] {
        let time = AmzTime(date)
        var added: [Field] = [("x-amz-date", time.dateTime)]
        var signed = headers + added
        if let token = credentials.sessionToken {
            if !omitSessionToken { signed.append(("x-amz-security-token", token)) }
            added.append(("x-amz-security-token", token))
        }
        let canonical = canonicalRequest(
            method: method, path: path, query: query, headers: signed,
            payloadHash: payloadHash, normalizePath: normalizePath
        )
        let signature = self.signature(stringToSign: stringToSign(canonicalRequest: canonical.text, time: time), time: time)
        added.append((
            "authorization",
            "\(Self.algorithm) Credential=\(credentials.accessKeyID)/\(scope(time)), SignedHeaders=\(canonical.signedHeaders), Signature=\(signature)"
        ))
        return added
    }

    /// Presigns a request in the query string.
    ///
    /// - Returns: the whole query string to put after `?`, percent-encoded, the
    ///   signature last.
    public func presignedQuery(
        method: String,
        path: String,
        query: [Field] = [],
        headers: [Field],
        expires: Int,
        payloadHash: String = SigV4Signer.unsignedPayload,
        date: Date = Date(),
        normalizePath: Bool = false,
        omitSessionToken: Bool = false
    ) -> String {
        let time = AmzTime(date)
        let signedHeaders = Self.canonicalHeaders(headers).signedHeaders
        var fields = query
        fields.append(("X-Amz-Algorithm", Self.algorithm))
        fields.append(("X-Amz-Credential", "\(credentials.accessKeyID)/\(scope(time))"))
        fields.append(("X-Amz-Date", time.dateTime))
        fields.append(("X-Amz-Expires", String(expires)))
        fields.append(("X-Amz-SignedHeaders", signedHeaders))
        if let token = credentials.sessionToken, !omitSessionToken {
            fields.append(("X-Amz-Security-Token", token))
        }
        let canonical = canonicalRequest(
            method: method, path: path, query: fields, headers: headers,
            payloadHash: payloadHash, normalizePath: normalizePath
        )
        let signature = self.signature(stringToSign: stringToSign(canonicalRequest: canonical.text, time: time), time: time)
        var result = canonical.query
        if let token = credentials.sessionToken, omitSessionToken {
            result += "&X-Amz-Security-Token=" + URIEncoding.encode(token)
        }
        return result + "&X-Amz-Signature=" + signature
    }

    // MARK: - Stages

    struct CanonicalRequest {
        var text: String
        var signedHeaders: String
        var query: String
    }

    /// Stage 1: the canonical request.
    func canonicalRequest(
        method: String, path: String, query: [Field], headers: [Field],
        payloadHash: String, normalizePath: Bool
    ) -> CanonicalRequest {
        let uri = URIEncoding.encodePath(normalizePath ? Self.normalize(path) : (path.isEmpty ? "/" : path))
        let canonicalQuery = URIEncoding.canonicalQuery(query)
        let canonicalHeaders = Self.canonicalHeaders(headers)
        let text = [method, uri, canonicalQuery, canonicalHeaders.text, canonicalHeaders.signedHeaders, payloadHash]
            .joined(separator: "\n")
        return CanonicalRequest(text: text, signedHeaders: canonicalHeaders.signedHeaders, query: canonicalQuery)
    }

    /// Stage 2: the string to sign.
    func stringToSign(canonicalRequest: String, time: AmzTime) -> String {
        "\(Self.algorithm)\n\(time.dateTime)\n\(scope(time))\n\(Encoding.hex(SHA256.hash(canonicalRequest.utf8)))"
    }

    /// Stage 3: the signing key, derived once a day and kept, prepared for HMAC.
    func signingKey(time: AmzTime) -> HMACKey {
        keyCache.key(for: time.date) {
            let dateKey = HMAC.sha256(key: Array("AWS4\(credentials.secretAccessKey)".utf8), message: time.date)
            let regionKey = HMAC.sha256(key: dateKey, message: region)
            let serviceKey = HMAC.sha256(key: regionKey, message: service)
            return HMACKey(HMAC.sha256(key: serviceKey, message: "aws4_request"))
        }
    }

    /// Stage 4: the signature.
    func signature(stringToSign: String, time: AmzTime) -> String {
        Encoding.hex(signingKey(time: time).authenticate(stringToSign))
    }

    func scope(_ time: AmzTime) -> String {
        "\(time.date)/\(region)/\(service)/aws4_request"
    }

    /// Lower-cased names, sorted; values trimmed, inner runs of spaces folded into one,
    /// repeated headers joined with commas in their order.
    static func canonicalHeaders(_ headers: [Field]) -> (text: String, signedHeaders: String) {
        var merged: [String: String] = [:]
        var order: [String] = []
        for (name, value) in headers {
            let key = name.utf8.contains(where: { $0 >= 0x41 && $0 <= 0x5a }) ? name.lowercased() : name
            let folded = foldSpaces(value)
            if let existing = merged[key] {
                merged[key] = existing + "," + folded
            } else {
                merged[key] = folded
                order.append(key)
            }
        }
        let names = order.sorted()
        var text = ""
        for name in names {
            text += name + ":" + (merged[name] ?? "") + "\n"
        }
        return (text, names.joined(separator: ";"))
    }

    static func foldSpaces(_ value: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(value.utf8.count)
        var pendingSpace = false
        for byte in value.utf8 {
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
                pendingSpace = !out.isEmpty
            } else {
                if pendingSpace { out.append(UInt8(ascii: " ")) }
                pendingSpace = false
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// RFC 3986 dot-segment removal, with empty segments dropped (generic services only).
    static func normalize(_ path: String) -> String {
        var stack: [Substring] = []
        for segment in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch segment {
            case ".": continue
            case "..": _ = stack.popLast()
            default: stack.append(segment)
            }
        }
        var result = "/" + stack.joined(separator: "/")
        let trailing = path.hasSuffix("/") || path.hasSuffix("/.") || path.hasSuffix("/..")
        if trailing && !stack.isEmpty { result += "/" }
        return result
    }
}

/// The request time in the two forms SigV4 uses: `20150830T123600Z` and `20150830`.
struct AmzTime {
    let dateTime: String
    let date: String

    init(_ date: Date) {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        let day = pad(parts.tm_year + 1900, 4) + pad(parts.tm_mon + 1, 2) + pad(parts.tm_mday, 2)
        self.date = day
        self.dateTime = day + "T" + pad(parts.tm_hour, 2) + pad(parts.tm_min, 2) + pad(parts.tm_sec, 2) + "Z"
    }
}

/// Keeps the last derived signing key: it changes once a day.
final class SigningKeyCache: Sendable {
    private let cached = Mutex<(day: String, key: HMACKey)?>(nil)

    func key(for day: String, derive: () -> HMACKey) -> HMACKey {
        if let hit = cached.withLock({ $0 }), hit.day == day { return hit.key }
        let key = derive()
        cached.withLock { $0 = (day, key) }
        return key
    }
}
