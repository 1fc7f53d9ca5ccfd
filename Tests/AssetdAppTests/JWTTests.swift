import Foundation
import Hashing
import JSON
import Testing
import FastCGIServer
@testable import AssetdApp

struct JWTTests {
    let secret = String(repeating: "k", count: 32)
    var verifier: JWTVerifier { JWTVerifier(secret: secret) }
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func token(header: String = #"{"alg":"HS256","typ":"JWT"}"#, payload: String, key: String? = nil) -> String {
        let input = Encoding.base64URL(Array(header.utf8)) + "." + Encoding.base64URL(Array(payload.utf8))
        return input + "." + Encoding.base64URL(HMAC.sha256(key: Array((key ?? secret).utf8), message: input))
    }

    func status(_ token: String) -> Int? {
        do { _ = try verifier.verify(authorization: "Bearer \(token)", now: now); return nil } catch let error as HTTPError {
            return error.status.code
        } catch { return -1 }
    }

    @Test func mintedTokenVerifies() throws {
        let minted = verifier.mint(subject: "alice", workspaces: [1, 5], ttl: 60, now: now)
        let principal = try verifier.verify(authorization: "Bearer \(minted)", now: now)
        #expect(principal == Principal(subject: "alice", workspaces: [1, 5]))
        #expect(throws: HTTPError.self) { try principal.authorize(2) }
    }

    @Test func everythingWrongIs401() {
        let good = #"{"sub":"a","workspaces":[1],"exp":1800000100}"#
        #expect(status(token(payload: good)) == nil)
        #expect(status(token(payload: #"{"sub":"a","workspaces":[1],"exp":1800000000}"#)) == 401) // expired at now
        #expect(status(token(payload: #"{"sub":"a","workspaces":[1]}"#)) == 401)
        #expect(status(token(payload: #"{"sub":"a","workspaces":[1],"exp":1800000100,"nbf":1800000050}"#)) == 401)
        #expect(status(token(payload: #"{"sub":"a","workspaces":[1],"exp":1800000100,"nbf":1799999999}"#)) == nil)
        #expect(status(token(payload: #"{"sub":"a","workspaces":["1"],"exp":1800000100}"#)) == 401)
        #expect(status(token(payload: #"{"sub":"a","workspaces":[-1],"exp":1800000100}"#)) == 401)
        #expect(status(token(payload: #"{"workspaces":[1],"exp":1800000100}"#)) == 401)
        #expect(status(token(payload: good, key: String(repeating: "x", count: 32))) == 401)
        #expect(status(token(header: #"{"alg":"none"}"#, payload: good)) == 401)
        #expect(status(token(header: #"{"alg":"HS512"}"#, payload: good)) == 401)
        #expect(status(token(header: #"{"alg":"RS256"}"#, payload: good)) == 401)
        #expect(status(token(header: #"{"alg":"HS256","crit":["x"]}"#, payload: good)) == 401)
        let unsigned = Encoding.base64URL(Array(#"{"alg":"none"}"#.utf8)) + "." + Encoding.base64URL(Array(good.utf8)) + "."
        #expect(status(unsigned) == 401)
        #expect(status("a.b") == 401)
        #expect(status(String(repeating: "a", count: 9000)) == 401)
    }

    @Test func headerForms() {
        let minted = verifier.mint(subject: "a", workspaces: [1], ttl: 60, now: now)
        #expect((try? verifier.verify(authorization: "bearer \(minted)", now: now)) != nil)
        #expect((try? verifier.verify(authorization: "Basic \(minted)", now: now)) == nil)
        #expect((try? verifier.verify(authorization: nil, now: now)) == nil)
        #expect((try? verifier.verify(authorization: "Bearer", now: now)) == nil)
        #expect((try? verifier.verify(authorization: "  BEARER   \(minted)  ", now: now)) != nil)
        #expect((try? verifier.verify(authorization: "Bearer \(minted) extra", now: now)) == nil)
        #expect((try? verifier.verify(authorization: "Bearerx \(minted)", now: now)) == nil)
        #expect((try? verifier.verify(authorization: "Bearer ", now: now)) == nil)
    }
}

struct JWTCacheTests {
    @Test func cachedTokenStillExpires() throws {
        let verifier = JWTVerifier(secret: String(repeating: "c", count: 32))
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let token = verifier.mint(subject: "a", workspaces: [1], ttl: 10, now: start)
        _ = try verifier.verify(token: token, now: start)          // verified and cached
        _ = try verifier.verify(token: token, now: start + 5)      // a hit
        #expect(throws: HTTPError.self) { try verifier.verify(token: token, now: start + 10) }
        // The same claims under another key are not a hit.
        let other = JWTVerifier(secret: String(repeating: "d", count: 32))
        #expect(throws: HTTPError.self) { try other.verify(token: token, now: start) }
    }

    /// A token that shares its signature with a cached one but carries other claims is no
    /// hit: it is verified, and refused.
    @Test func aForgedTokenWithACachedSignatureIsRefused() throws {
        let verifier = JWTVerifier(secret: String(repeating: "c", count: 32))
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let token = verifier.mint(subject: "a", workspaces: [1], ttl: 60, now: start)
        #expect(try verifier.verify(token: token, now: start).workspaces == [1])
        let parts = token.split(separator: ".").map(String.init)
        let claims = Encoding.base64URL(Array(#"{"sub":"a","workspaces":[2],"exp":1800000060}"#.utf8))
        let forged = parts[0] + "." + claims + "." + parts[2]
        #expect(throws: HTTPError.self) { try verifier.verify(token: forged, now: start) }
        #expect(try verifier.verify(token: token, now: start).workspaces == [1])
    }
}
