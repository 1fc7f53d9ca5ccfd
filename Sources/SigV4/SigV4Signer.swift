public import struct Foundation.Date
internal import Glibc
internal import Hashing
internal import Locking

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
    private let presignCache = PresignFieldsCache()

    public static let algorithm = algorithmLiteral.description
    static let algorithmLiteral: StaticString = "AWS4-HMAC-SHA256"
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
        let day = scope(time)
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
        var signature: [UInt8] = []
        appendSignature(of: canonical.bytes, time: time, day: day, to: &signature)
        added.append((
            "authorization",
            "\(Self.algorithm) Credential=\(day.credential), SignedHeaders=\(canonical.signedHeaders), Signature=\(String(decoding: signature, as: UTF8.self))"
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
        var out: [UInt8] = []
        appendPresignedQuery(
            to: &out, method: method, path: path, query: query, headers: headers, expires: expires,
            payloadHash: payloadHash, date: date, normalizePath: normalizePath, omitSessionToken: omitSessionToken
        )
        return String(decoding: out, as: UTF8.self)
    }

    /// `presignedQuery`, appended to `out`, so that a caller can write the URL's scheme and
    /// host first and make one String of the whole. With `includingPath`, the path as it was
    /// signed (percent-encoded) and the `?` come first.
    public func appendPresignedQuery(
        to out: inout [UInt8],
        includingPath: Bool = false,
        method: String,
        path: String,
        query: [Field] = [],
        headers: [Field],
        expires: Int,
        payloadHash: String = SigV4Signer.unsignedPayload,
        date: Date = Date(),
        normalizePath: Bool = false,
        omitSessionToken: Bool = false
    ) {
        let time = AmzTime(date)
        let day = scope(time)
        let sortedHeaders = Self.sortedHeaders(headers)
        // The X-Amz-* fields but the date are the same for every presign of a day with
        // these expiry and signed headers: encoded and sorted once, and the request's own
        // fields merged into them (the same canonical query as sorting all of them).
        let constant = presignFields(day: day, expires: expires, signedHeaders: sortedHeaders.signedHeaders,
                                     omitSessionToken: omitSessionToken)
        let canonical = canonicalRequest(
            method: method, path: path, headers: sortedHeaders, payloadHash: payloadHash, normalizePath: normalizePath
        ) { URIEncoding.appendCanonicalQuery(query, plus: ("X-Amz-Date", time.dateTime), merging: constant, to: &$0) }
        out.reserveCapacity(out.count + canonical.path.count + canonical.query.count + 120)
        canonical.bytes.withUnsafeBufferPointer { bytes in
            if includingPath {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[canonical.path]))
                out.append(UInt8(ascii: "?"))
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[canonical.query]))
        }
        if let token = credentials.sessionToken, omitSessionToken {
            out.append(contentsOf: "&X-Amz-Security-Token=".utf8)
            URIEncoding.appendEncoded(token, to: &out, keepSlash: false)
        }
        out.append(contentsOf: "&X-Amz-Signature=".utf8)
        appendSignature(of: canonical.bytes, time: time, day: day, to: &out)
    }

    // MARK: - Stages

    struct CanonicalRequest {
        /// The canonical request, the input of stage 2.
        var bytes: [UInt8]
        /// Where the encoded path and the canonical query string sit in `bytes`.
        var path: Range<Int>
        var query: Range<Int>
        var signedHeaders: String

        var text: String { String(decoding: bytes, as: UTF8.self) }
    }

    /// Stage 1: the canonical request.
    func canonicalRequest(
        method: String, path: String, query: [Field], headers: [Field],
        payloadHash: String, normalizePath: Bool
    ) -> CanonicalRequest {
        canonicalRequest(method: method, path: path, query: query, headers: Self.sortedHeaders(headers),
                         payloadHash: payloadHash, normalizePath: normalizePath)
    }

    func canonicalRequest(
        method: String, path: String, query: [Field], headers: SortedHeaders,
        payloadHash: String, normalizePath: Bool
    ) -> CanonicalRequest {
        canonicalRequest(method: method, path: path, headers: headers, payloadHash: payloadHash,
                         normalizePath: normalizePath) { URIEncoding.appendCanonicalQuery(query, to: &$0) }
    }

    /// The canonical request, with `appendQuery` writing the canonical query string.
    func canonicalRequest(
        method: String, path: String, headers: SortedHeaders, payloadHash: String, normalizePath: Bool,
        appendQuery: (inout [UInt8]) -> Void
    ) -> CanonicalRequest {
        let newline = UInt8(ascii: "\n")
        var bytes: [UInt8] = []
        bytes.reserveCapacity(512)
        bytes.append(utf8: method)
        bytes.append(newline)
        let uri = normalizePath ? Self.normalize(path) : (path.isEmpty ? "/" : path)
        let pathStart = bytes.count
        URIEncoding.appendEncoded(uri, to: &bytes, keepSlash: true)
        let pathRange = pathStart..<bytes.count
        bytes.append(newline)
        let queryStart = bytes.count
        appendQuery(&bytes)
        let queryRange = queryStart..<bytes.count
        bytes.append(newline)
        for (name, value) in headers.fields {
            bytes.append(utf8: name)
            bytes.append(UInt8(ascii: ":"))
            bytes.append(utf8: value)
            bytes.append(newline)
        }
        bytes.append(newline)
        bytes.append(utf8: headers.signedHeaders)
        bytes.append(newline)
        bytes.append(utf8: payloadHash)
        return CanonicalRequest(bytes: bytes, path: pathRange, query: queryRange, signedHeaders: headers.signedHeaders)
    }

    /// Stage 2: the string to sign.
    func stringToSign(canonicalRequest: String, time: AmzTime) -> String {
        String(decoding: stringToSign(canonicalRequest: Array(canonicalRequest.utf8), time: time, day: scope(time)), as: UTF8.self)
    }

    func stringToSign(canonicalRequest: [UInt8], time: AmzTime, day: DayScope) -> [UInt8] {
        withStringToSign(canonicalRequest: canonicalRequest, time: time, day: day) { Array($0) }
    }

    /// Stage 2 written into a buffer on the stack (about 150 bytes) for `body`: an array
    /// for it, and its parts appended one by one, cost ~1,000 instructions a presign.
    func withStringToSign<Result>(canonicalRequest: [UInt8], time: AmzTime, day: DayScope,
                                  _ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        var dateTime = time.dateTime, scope = day.scope
        let algorithm = Self.algorithmLiteral
        let count = algorithm.utf8CodeUnitCount + dateTime.utf8.count + scope.utf8.count + 3 + 64
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: count) { buffer in
            // `putLine` is a static function given `at` inout, not a nested one capturing
            // it: a nested function passed as `withUTF8`'s closure made `at` a boxed
            // variable checked for exclusive access at run time on every use (~250
            // instructions a presign, callgrind).
            var at = 0
            Self.putLine(UnsafeBufferPointer(start: algorithm.utf8Start, count: algorithm.utf8CodeUnitCount), into: buffer, at: &at)
            dateTime.withUTF8 { Self.putLine($0, into: buffer, at: &at) }
            scope.withUTF8 { Self.putLine($0, into: buffer, at: &at) }
            precondition(count - at == 64, "room for the digest's hex")
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { digest in
                canonicalRequest.withUnsafeBytes { SHA256.hash(raw: $0, into: digest.baseAddress!) }
                Encoding.writeHex(raw: UnsafeRawBufferPointer(digest), to: buffer.baseAddress! + at)
            }
            return body(UnsafeRawBufferPointer(buffer))
        }
    }

    /// Copies `bytes` and a newline into `buffer` at `at`, and moves `at` past them.
    private static func putLine(_ bytes: UnsafeBufferPointer<UInt8>, into buffer: UnsafeMutableBufferPointer<UInt8>, at: inout Int) {
        precondition(at >= 0 && buffer.count - at > bytes.count, "room for the line and its newline")
        let target = buffer.baseAddress! + at
        if let base = bytes.baseAddress { target.update(from: base, count: bytes.count) }
        target[bytes.count] = UInt8(ascii: "\n")
        at += bytes.count + 1
    }

    /// Stage 3: the signing key, derived once a day and kept, prepared for HMAC, with
    /// the day's credential scope.
    func scope(_ time: AmzTime) -> DayScope {
        keyCache.scope(for: time.date) {
            let dateKey = HMAC.sha256(key: Array("AWS4\(credentials.secretAccessKey)".utf8), message: time.date)
            let regionKey = HMAC.sha256(key: dateKey, message: region)
            let serviceKey = HMAC.sha256(key: regionKey, message: service)
            let scope = "\(time.date)/\(region)/\(service)/aws4_request"
            return DayScope(
                day: time.date, scope: scope, credential: "\(credentials.accessKeyID)/\(scope)",
                key: HMACKey(HMAC.sha256(key: serviceKey, message: "aws4_request"))
            )
        }
    }

    /// A presigned query's X-Amz-Algorithm, -Credential, -Expires, -SignedHeaders and
    /// -Security-Token (unless omitted), encoded and sorted: kept while the day, the
    /// credentials, the expiry and the signed headers stay the same.
    func presignFields(day: DayScope, expires: Int, signedHeaders: String, omitSessionToken: Bool) -> EncodedQuery {
        let sessionToken = omitSessionToken ? nil : credentials.sessionToken
        return presignCache.fields(day: day.day, accessKeyID: credentials.accessKeyID, sessionToken: sessionToken,
                                   expires: expires, signedHeaders: signedHeaders) {
            var fields: [Field] = [
                ("X-Amz-Algorithm", Self.algorithm),
                ("X-Amz-Credential", day.credential),
                ("X-Amz-Expires", String(expires)),
                ("X-Amz-SignedHeaders", signedHeaders),
            ]
            if let token = sessionToken { fields.append(("X-Amz-Security-Token", token)) }
            return EncodedQuery(fields)
        }
    }

    /// Stage 4: the signature.
    func signature(stringToSign: String, time: AmzTime) -> String {
        Encoding.hex(scope(time).key.authenticate(stringToSign))
    }

    /// Stages 2 to 4: appends the hex signature of a canonical request to `out`.
    func appendSignature(of canonicalRequest: [UInt8], time: AmzTime, day: DayScope, to out: inout [UInt8]) {
        withStringToSign(canonicalRequest: canonicalRequest, time: time, day: day) { text in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { mac in
                day.key.authenticate(text, into: mac.baseAddress!)
                Encoding.appendHex(raw: UnsafeRawBufferPointer(mac), to: &out)
            }
        }
    }

    struct SortedHeaders {
        /// Lower-case names in byte order, each once, with their canonical values.
        var fields: [Field]
        /// The names joined with `;`.
        var signedHeaders: String
    }

    /// Lower-cased names, sorted; values trimmed, inner runs of spaces folded into one,
    /// repeated headers joined with commas in their order.
    static func sortedHeaders(_ headers: [Field]) -> SortedHeaders {
        // One header whose name has no upper case and whose value no space to fold (a
        // presign's `host`) is its own sorted form: the array is kept, not rebuilt (an
        // allocation and its free, ~350 instructions a presign, callgrind).
        if headers.count == 1, !headers[0].name.utf8.contains(where: { $0 >= 0x41 && $0 <= 0x5a }),
           !hasSpaceToFold(headers[0].value) {
            return SortedHeaders(fields: headers, signedHeaders: headers[0].name)
        }
        var fields: [Field] = []
        fields.reserveCapacity(headers.count)
        for (name, value) in headers {
            let key = name.utf8.contains(where: { $0 >= 0x41 && $0 <= 0x5a }) ? name.lowercased() : name
            let folded = foldSpaces(value)
            if let i = fields.firstIndex(where: { $0.name == key }) {
                fields[i].value += "," + folded
            } else {
                fields.append((key, folded))
            }
        }
        if fields.count > 1 { fields.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) } }
        let signed = fields.count == 1 ? fields[0].name : fields.map(\.name).joined(separator: ";")
        return SortedHeaders(fields: fields, signedHeaders: signed)
    }

    static func foldSpaces(_ value: String) -> String {
        // Most values (a host, an MD5) have no space to fold: kept as they are, no copy.
        // Looked for in the contiguous bytes: through the UTF8View's iterator it cost
        // ~30 instructions a byte (callgrind).
        guard hasSpaceToFold(value) else { return value }
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

    /// Whether `value` holds a space, tab, CR or LF, which `foldSpaces` would change.
    static func hasSpaceToFold(_ value: String) -> Bool {
        var bytes = value
        return bytes.withUTF8 { utf8 in
            utf8.contains { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") }
        }
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

    /// The last second each thread formatted: every presign of that second on that thread
    /// reuses it. Each thread's own, not one behind a lock that every worker takes on every
    /// presign (perf: its slow path ~1.3 µs a presign with 16 workers on 2 cores).
    private static let last = PerThread<(second: time_t, time: AmzTime)?> { nil }

    init(_ date: Date) {
        let second = time_t(date.timeIntervalSince1970.rounded(.down))
        self = Self.last.withValue { last in
            if let last, last.second == second { return last.time }
            let made = AmzTime(second: second)
            last = (second, made)
            return made
        }
    }

    private init(second: time_t) {
        var seconds = second
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var digits: [UInt8] = []
        digits.reserveCapacity(16)
        func put(_ value: Int32, _ width: Int) {
            var divisor: Int32 = 1
            for _ in 1..<width { divisor *= 10 }
            var value = value
            while divisor > 0 {
                digits.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: value / divisor % 10))
                value %= divisor
                divisor /= 10
            }
        }
        put(parts.tm_year + 1900, 4)
        put(parts.tm_mon + 1, 2)
        put(parts.tm_mday, 2)
        self.date = String(decoding: digits, as: UTF8.self)
        digits.append(UInt8(ascii: "T"))
        put(parts.tm_hour, 2)
        put(parts.tm_min, 2)
        put(parts.tm_sec, 2)
        digits.append(UInt8(ascii: "Z"))
        self.dateTime = String(decoding: digits, as: UTF8.self)
    }
}

/// What depends only on the day: the credential scope and the signing key.
///
/// A class, made once a day and shared: as a struct of three Strings and a key, each copy
/// out of the cache and each pass to a stage retained and released all four through the
/// generic lock's value witnesses (~600 instructions a presign, callgrind); a reference is
/// one retain.
final class DayScope: Sendable {
    let day: String
    /// `20150830/us-east-1/s3/aws4_request`
    let scope: String
    /// `AKID/20150830/us-east-1/s3/aws4_request`
    let credential: String
    let key: HMACKey

    init(day: String, scope: String, credential: String, key: HMACKey) {
        self.day = day
        self.scope = scope
        self.credential = credential
        self.key = key
    }
}

/// Keeps the last day's scope and signing key: they change once a day.
final class SigningKeyCache: Sendable {
    private let cached = ReadWriteLocked<DayScope?>(nil)

    func scope(for day: String, derive: () -> DayScope) -> DayScope {
        if let hit = cached.read({ $0 }), hit.day == day { return hit }
        let fresh = derive()
        cached.write { $0 = fresh }
        return fresh
    }
}

/// Keeps the last few presigns' constant X-Amz-* fields, encoded and sorted: presigns
/// share one expiry and a few sets of signed headers (`host`, `content-md5;host`), and the
/// day changes daily.
final class PresignFieldsCache: Sendable {
    struct Key: Equatable, Sendable {
        let day: String
        let accessKeyID: String
        let sessionToken: String?
        let expires: Int
        let signedHeaders: String

        /// `self == Key(...)` without making the key: a `Key` a lookup cost four Strings
        /// retained and released (callgrind).
        func matches(day: String, accessKeyID: String, sessionToken: String?, expires: Int, signedHeaders: String) -> Bool {
            self.expires == expires && self.day == day && self.signedHeaders == signedHeaders
                && self.accessKeyID == accessKeyID && self.sessionToken == sessionToken
        }
    }

    private static let capacity = 4
    /// The newest last; the oldest goes when a fifth comes.
    private let cached = ReadWriteLocked<[(key: Key, fields: EncodedQuery)]>([])

    func fields(day: String, accessKeyID: String, sessionToken: String?, expires: Int, signedHeaders: String,
                make: () -> EncodedQuery) -> EncodedQuery {
        let hit = cached.read { entries in
            entries.last(where: {
                $0.key.matches(day: day, accessKeyID: accessKeyID, sessionToken: sessionToken, expires: expires, signedHeaders: signedHeaders)
            })?.fields
        }
        if let hit { return hit }
        let key = Key(day: day, accessKeyID: accessKeyID, sessionToken: sessionToken, expires: expires, signedHeaders: signedHeaders)
        let fresh = make()
        cached.write { entries in
            if entries.count >= Self.capacity { entries.removeFirst() }
            entries.append((key, fresh))
        }
        return fresh
    }
}

extension Array<UInt8> {
    /// Appends a String's UTF-8 with one copy of its contiguous bytes (a native String's
    /// always are): `append(contentsOf: text.utf8)` walks String.UTF8View's generic path,
    /// ~165 instructions a call, five a presign in `canonicalRequest` (callgrind).
    ///
    /// The same as FastCGIServer's public `append(utf8:)` (Array+appendBytes.swift), kept
    /// here on purpose: SigV4 sits below FastCGIServer (S3Client and the tools sign without
    /// a FastCGI server) and must not import it, and a module for these five lines alone is
    /// more than they are worth (review14 I1). Internal, so neither clashes with the other.
    @inline(__always)
    mutating func append(utf8 text: String) {
        if text.utf8.withContiguousStorageIfAvailable({ append(contentsOf: $0) }) != nil { return }
        append(contentsOf: text.utf8)
    }
}
