public import struct Foundation.Date
import FastCGIServer
import Hashing
import JSON
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
public struct JWTVerifier: Sendable {
    private let secret: [UInt8]
    /// Tokens already verified, by their exact text: a browser sends the same token with
    /// every call, and a hit skips the HMAC and the JSON. The time claims are checked on
    /// every hit all the same.
    private let verified = VerifiedTokens(capacity: 4096)
    /// Longer tokens are refused before any work is done.
    static let maxTokenLength = 8192

    public init(secret: String) {
        self.secret = Array(secret.utf8)
    }

    /// The principal of `Authorization: Bearer <token>`; 401 for anything wrong with it.
    public func verify(authorization: String?, now: Date = Date()) throws -> Principal {
        guard let authorization, !authorization.isEmpty else {
            throw unauthorized("The Authorization header with a Bearer token is missing.")
        }
        guard let token = Self.bearerToken(authorization) else {
            throw unauthorized("The Authorization header must be 'Bearer <token>'.")
        }
        return try verify(token: token, now: now)
    }

    /// The token of `Bearer <token>` (the scheme in any case, spaces around either word).
    static func bearerToken(_ authorization: String) -> String? {
        var authorization = authorization
        return authorization.withUTF8 { bytes -> String? in
            var i = 0
            func word() -> Range<Int> {
                while i < bytes.count, bytes[i] == UInt8(ascii: " ") { i += 1 }
                let start = i
                while i < bytes.count, bytes[i] != UInt8(ascii: " ") { i += 1 }
                return start..<i
            }
            let scheme = word(), token = word()
            guard word().isEmpty, !token.isEmpty, scheme.count == 6,
                  zip(bytes[scheme], "bearer".utf8).allSatisfy({ $0 | 0x20 == $1 })
            else { return nil }
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[token]), as: UTF8.self)
        }
    }

    public func verify(token: String, now: Date = Date()) throws -> Principal {
        guard token.utf8.count <= Self.maxTokenLength else { throw unauthorized("The token is too long.") }
        if let hit = verified.lookup(token) {
            try checkTime(expires: hit.expires, notBefore: hit.notBefore, now: now)
            return hit.principal
        }
        let segments = token.split(separator: ".", omittingEmptySubsequences: false)
        guard segments.count == 3,
              let headerBytes = Encoding.decodeBase64URL(segments[0]),
              let payloadBytes = Encoding.decodeBase64URL(segments[1]),
              let signature = Encoding.decodeBase64URL(segments[2]),
              let header = try? JSONParser.parse(headerBytes),
              let payload = try? JSONParser.parse(payloadBytes)
        else { throw unauthorized("The token is malformed.") }

        guard header["alg"] == "HS256" else { throw unauthorized("The token's algorithm is not HS256.") }
        if let typ = header["typ"], typ != "JWT" { throw unauthorized("The token's type is not JWT.") }
        if header["crit"] != nil { throw unauthorized("The token has critical extensions assetd does not know.") }

        let signingInput = Array(token.utf8.prefix(segments[0].utf8.count + 1 + segments[1].utf8.count))
        guard constantTimeEquals(HMAC.sha256(key: secret, message: signingInput), signature) else {
            throw unauthorized("The token's signature is not valid.")
        }

        guard case .number(let expText)? = payload["exp"], let exp = Double(expText) else {
            throw unauthorized("The token has no exp claim.")
        }
        var notBefore: Double?
        if let nbf = payload["nbf"] {
            guard case .number(let nbfText) = nbf, let value = Double(nbfText) else { throw unauthorized("The token's nbf claim is not a number.") }
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
        verified.insert(token, .init(principal: principal, expires: exp, notBefore: notBefore))
        return principal
    }

    private func checkTime(expires: Double, notBefore: Double?, now: Date) throws {
        let seconds = now.timeIntervalSince1970
        guard seconds < expires else { throw unauthorized("The token has expired.") }
        if let notBefore, seconds < notBefore { throw unauthorized("The token is not valid yet (nbf).") }
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
        let expires: Double
        let notBefore: Double?
    }

    private let entries = ReadWriteLocked<[String: Entry]>([:])
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    func lookup(_ token: String) -> Entry? {
        entries.read { $0[token] }
    }

    func insert(_ token: String, _ entry: Entry) {
        entries.write {
            if $0.count >= capacity { $0.removeAll(keepingCapacity: true) }
            $0[token] = entry
        }
    }
}
