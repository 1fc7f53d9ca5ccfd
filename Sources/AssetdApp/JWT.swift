public import struct Foundation.Date
import FastCGIServer
import Hashing
import JSON
import Glibc
import Locking

/// Who is calling: the token's subject and the workspaces it may use.
public struct Principal: Sendable, Equatable {
    public let subject: String
    public let workspaces: Set<Int64>

    /// 403 unless the token names `workspaceID`.
    public func authorize(_ workspaceID: Int64) throws {
        guard workspaces.contains(workspaceID) else {
            throw HTTPError(.forbidden, "This token does not grant access to workspace \(workspaceID).")
        }
    }
}

/// HS256 JSON Web Tokens (RFC 7519): verification for every route, and minting for
/// `assetd token`. Any other algorithm is refused, `alg: none` above all.
///
/// Several secrets (a rotation: ASSETD_JWT_SECRET, then ASSETD_JWT_ACCEPTED_SECRETS): a
/// token signed with any of them is accepted, and `mint` signs with the first. The first is tried first and alone costs
/// what one secret does; the others are tried only when it fails.
public struct JWTVerifier: Sendable {
    /// The secret tokens are signed with (ASSETD_JWT_SECRET).
    private let secret: [UInt8]
    /// The other secrets (ASSETD_JWT_ACCEPTED_SECRETS), accepted while tokens signed with them may be in use.
    private let acceptedSecrets: [[UInt8]]
    /// Tokens already verified, by their exact text: a browser sends the same token with
    /// every call, and a hit skips the HMAC and the JSON. The time claims are checked on
    /// every hit all the same.
    private let verified = VerifiedTokens(capacity: 4096)
    /// Longer tokens are refused before any work is done.
    static let maxTokenLength = 8192

    /// The shortest secret accepted: 32 bytes, HMAC-SHA256's own output size (RFC 7518 §3.2).
    public static let minimumSecretLength = 32

    public init(secret: String) {
        self.init(secrets: [secret])
    }

    /// `secrets`: the first signs, every one verifies; at least one.
    public init(secrets: [String]) {
        precondition(!secrets.isEmpty, "JWTVerifier needs a secret")
        self.secret = Array(secrets[0].utf8)
        self.acceptedSecrets = secrets.dropFirst().map { Array($0.utf8) }
    }

    /// The principal of `Authorization: Bearer <token>`; 401 for anything wrong with it.
    public func verify(authorization: String?, now: Date = Date()) throws -> Principal {
        guard var authorization else { return try verify(authorizationBytes: nil, now: now) }
        return try authorization.withUTF8 { try verify(authorizationBytes: $0, now: now) }
    }

    /// `verify(authorization:now:)` on the header's bytes as the request holds them
    /// (`Request.Headers.withValue`): no String of the header between it and the cache's key.
    public func verify(authorizationBytes authorization: UnsafeBufferPointer<UInt8>?, now: Date = Date()) throws -> Principal {
        guard let authorization, !authorization.isEmpty else {
            throw unauthorized("The Authorization header with a Bearer token is missing.")
        }
        guard let token = Self.bearerTokenBytes(authorization) else {
            throw unauthorized("The Authorization header must be 'Bearer <token>'.")
        }
        return try verify(tokenBytes: token, now: now)
    }

    /// The token of `Bearer <token>` (the scheme in any case, spaces around either word).
    static func bearerToken(_ authorization: String) -> String? {
        var authorization = authorization
        return authorization.withUTF8 { bearerTokenBytes($0) }.map { String(decoding: $0, as: UTF8.self) }
    }

    /// `bearerToken`'s bytes, with no String between the header and the cache's key.
    static func bearerTokenBytes(_ bytes: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard let base = bytes.baseAddress else { return nil }
        var i = 0
        // A word's end found with memchr: the token's ~200 bytes scanned one at a time
        // cost ~2,000 instructions a request (callgrind).
        func word() -> Range<Int> {
            while i < bytes.count, bytes[i] == UInt8(ascii: " ") { i += 1 }
            let start = i
            if i < bytes.count {
                i = memchr(base + i, Int32(UInt8(ascii: " ")), bytes.count - i)
                    .map { UnsafeRawPointer($0) - UnsafeRawPointer(base) } ?? bytes.count
            }
            return start..<i
        }
        let scheme = word(), token = word()
        let bearer: StaticString = "bearer"
        guard word().isEmpty, !token.isEmpty, scheme.count == 6,
              (0..<6).allSatisfy({ bytes[scheme.lowerBound + $0] | 0x20 == bearer.utf8Start[$0] })
        else { return nil }
        return Array(UnsafeBufferPointer(rebasing: bytes[token]))
    }

    /// Verifies a token, in an order that gives an attacker nothing to work with: its
    /// characters (base64url and two dots, nothing else), then the signature over its exact
    /// bytes, and only then its JSON. The cache of verified tokens is keyed by those bytes,
    /// so a token that differs in any byte (a Unicode look-alike of a letter, say) is never
    /// taken for a cached one.
    public func verify(token: String, now: Date = Date()) throws -> Principal {
        try verify(tokenBytes: Array(token.utf8), now: now)
    }

    func verify(tokenBytes bytes: [UInt8], now: Date) throws -> Principal {
        guard bytes.count <= Self.maxTokenLength else { throw unauthorized("The token is too long.") }
        if let hit = verified.lookup(bytes) {
            try checkTime(expires: hit.expires, notBefore: hit.notBefore, now: now)
            return hit.principal
        }
        guard bytes.allSatisfy(Self.isTokenByte) else { throw unauthorized("The token is malformed.") }
        let dots = bytes.indices.filter { bytes[$0] == UInt8(ascii: ".") }
        guard dots.count == 2 else { throw unauthorized("The token is malformed.") }
        let headerText = bytes[..<dots[0]], payloadText = bytes[(dots[0] + 1)..<dots[1]], signatureText = bytes[(dots[1] + 1)...]
        guard let signature = Encoding.decodeBase64URL(Substring(decoding: signatureText, as: UTF8.self)), signature.count == 32 else {
            throw unauthorized("The token is malformed.")
        }
        guard isSigned(Array(bytes[..<dots[1]]), signature) else {
            throw unauthorized("The token's signature is not valid.")
        }

        // Signed by us: only now is its JSON parsed.
        guard let headerBytes = Encoding.decodeBase64URL(Substring(decoding: headerText, as: UTF8.self)),
              let payloadBytes = Encoding.decodeBase64URL(Substring(decoding: payloadText, as: UTF8.self)),
              let header = try? JSONParser.parse(headerBytes),
              let payload = try? JSONParser.parse(payloadBytes)
        else { throw unauthorized("The token is malformed.") }
        guard header["alg"] == "HS256" else { throw unauthorized("The token's algorithm is not HS256.") }
        if let typ = header["typ"], typ != "JWT" { throw unauthorized("The token's type is not JWT.") }
        if header["crit"] != nil { throw unauthorized("The token has critical extensions assetd does not know.") }

        guard let expClaim = payload["exp"] else { throw unauthorized("The token has no exp claim.") }
        guard let exp = Self.numericDate(expClaim) else { throw unauthorized("The token's exp claim is not an integer NumericDate.") }
        var notBefore: Int64?
        if let nbf = payload["nbf"] {
            guard let value = Self.numericDate(nbf) else { throw unauthorized("The token's nbf claim is not an integer NumericDate.") }
            notBefore = value
        }
        try checkTime(expires: exp, notBefore: notBefore, now: now)
        guard case .string(let subject)? = payload["sub"], !subject.isEmpty else {
            throw unauthorized("The token has no sub claim.")
        }
        guard case .array(let list)? = payload["workspaces"] else {
            throw unauthorized("The token has no workspaces claim.")
        }
        var workspaces = Set<Int64>()
        for item in list {
            guard case .number(let text) = item, let id = Input.parseID(Substring(text)) else {
                throw unauthorized("The token's workspaces claim must list positive integers.")
            }
            workspaces.insert(id)
        }
        let principal = Principal(subject: subject, workspaces: workspaces)
        verified.insert(bytes, .init(principal: principal, expires: exp, notBefore: notBefore))
        return principal
    }

    /// Whether `signature` is the HMAC of `signingInput` under one of the secrets, each
    /// compared in constant time. Which secret matched may show in the time taken, never
    /// how much of a signature did.
    private func isSigned(_ signingInput: [UInt8], _ signature: [UInt8]) -> Bool {
        if constantTimeEquals(HMAC.sha256(key: secret, message: signingInput), signature) { return true }
        for other in acceptedSecrets where constantTimeEquals(HMAC.sha256(key: other, message: signingInput), signature) {
            return true
        }
        return false
    }

    /// base64url's alphabet and the dots between the three parts.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."): true
        default: false
        }
    }

    /// An integer NumericDate (RFC 7519 §2), as every issuer writes it: digits with an
    /// optional minus, no fraction, no exponent, within Int64.
    static func numericDate(_ value: JSONValue) -> Int64? {
        guard case .number(let text) = value else { return nil }
        let digits = text.hasPrefix("-") ? text.dropFirst() : Substring(text)
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return Int64(text)
    }

    private func checkTime(expires: Int64, notBefore: Int64?, now: Date) throws {
        let seconds = now.timeIntervalSince1970
        guard seconds < Double(expires) else { throw unauthorized("The token has expired.") }
        if let notBefore, seconds < Double(notBefore) { throw unauthorized("The token is not valid yet (nbf).") }
    }

    /// A signed token for `subject` and `workspaces`, valid for `ttl` seconds from `now`.
    public func mint(subject: String, workspaces: [Int64], ttl: Int, now: Date = Date()) -> String {
        let issued = Int64(now.timeIntervalSince1970)
        let header: JSONValue = ["alg": "HS256", "typ": "JWT"]
        let payload: JSONValue = [
            "sub": .string(subject), "workspaces": .array(workspaces.map { .int64($0) }),
            "iat": .int64(issued), "exp": .int64(issued + Int64(ttl)),
        ]
        let signingInput = Encoding.base64URL(header.serialized()) + "." + Encoding.base64URL(payload.serialized())
        return signingInput + "." + Encoding.base64URL(HMAC.sha256(key: secret, message: signingInput))
    }

    private func unauthorized(_ message: String) -> HTTPError {
        HTTPError(.unauthorized, message, headers: [("WWW-Authenticate", "Bearer")])
    }
}

/// A bounded map of verified tokens; emptied when full (tokens are short-lived anyway).
final class VerifiedTokens: Sendable {
    struct Entry: Sendable {
        let principal: Principal
        let expires: Int64
        let notBefore: Int64?
    }

    /// A token's bytes as a key: String keys compare Unicode-equivalent texts as equal
    /// (U+212A KELVIN SIGN == "K"), which would let a look-alike token hit a cached one.
    /// Hashed in one call over the bytes: `[UInt8]`'s own hash feeds the hasher a byte at a
    /// time, which cost ~5,000 instructions for every request's lookup. Only the last 32
    /// bytes are hashed (~900 instructions for the whole token): they lie in the signature,
    /// an HMAC of the rest, and only verified tokens are stored, so no one can fill a bucket
    /// with chosen suffixes; equality still compares every byte.
    struct Key: Hashable, Sendable {
        let bytes: [UInt8]
        func hash(into hasher: inout Hasher) {
            bytes.withUnsafeBytes { hasher.combine(bytes: UnsafeRawBufferPointer(rebasing: $0.suffix(32))) }
        }

        /// Every byte compared, with memcmp: `[UInt8]`'s == compares an element at a time.
        static func == (a: Key, b: Key) -> Bool {
            a.bytes.count == b.bytes.count && a.bytes.withUnsafeBytes { x in
                b.bytes.withUnsafeBytes { y in x.isEmpty || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0 }
            }
        }
    }

    private let entries = ReadWriteLocked<[Key: Entry]>([:])
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    func lookup(_ token: [UInt8]) -> Entry? {
        entries.read { $0[Key(bytes: token)] }
    }

    func insert(_ token: [UInt8], _ entry: Entry) {
        entries.write {
            if $0.count >= capacity { $0.removeAll(keepingCapacity: true) }
            $0[Key(bytes: token)] = entry
        }
    }
}
