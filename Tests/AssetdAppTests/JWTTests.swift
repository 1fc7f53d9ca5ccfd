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

/// The verified-token cache, through `verify` alone: these tests know nothing of how the
/// cache stores its entries.
struct JWTCacheTests {
    let secret = String(repeating: "c", count: 32)
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    func signed(_ payload: String) -> String {
        let input = Encoding.base64URL(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8)) + "." + Encoding.base64URL(Array(payload.utf8))
        return input + "." + Encoding.base64URL(HMAC.sha256(key: Array(secret.utf8), message: input))
    }

    /// A token's second verification is served from the cache: no HMAC, no JSON. A hit
    /// gives the same answer as a miss, so it shows in its cost alone. The tokens are made
    /// heavy to verify (800 workspace ids, near the 8 KiB limit): the fastest of 100
    /// verifications of one token already verified must take under a quarter of the
    /// fastest first verification of 100 such tokens. Minimums leave the scheduler's
    /// noise out; without a cache, both sides do the same work and this fails.
    @Test func aSecondVerificationIsServedFromTheCache() throws {
        let verifier = JWTVerifier(secret: secret)
        let workspaces = (0..<800).map { Int64(100_000 + $0) }
        let tokens = (0..<101).map { verifier.mint(subject: "user-\($0)", workspaces: workspaces, ttl: 3600, now: start) }
        #expect(tokens[0].utf8.count > 6000 && tokens[0].utf8.count <= JWTVerifier.maxTokenLength)
        let clock = ContinuousClock()
        var firstTimes: [Duration] = []
        for token in tokens.dropFirst() {
            var principal: Principal?
            firstTimes.append(try clock.measure { principal = try verifier.verify(token: token, now: start) })
            #expect(principal?.workspaces.count == 800)
        }
        let cached = tokens[0]
        let first = try verifier.verify(token: cached, now: start)
        var hitTimes: [Duration] = []
        for _ in 0..<100 {
            var principal: Principal?
            hitTimes.append(try clock.measure { principal = try verifier.verify(token: cached, now: start + 1) })
            #expect(principal == first)
        }
        let miss = firstTimes.min()!, hit = hitTimes.min()!
        #expect(hit * 4 < miss, "a repeated verification took \(hit), a first one \(miss): no cache hit")
    }

    @Test func cachedTokenStillExpires() throws {
        let verifier = JWTVerifier(secret: secret)
        let token = verifier.mint(subject: "a", workspaces: [1], ttl: 10, now: start)
        #expect(try verifier.verify(token: token, now: start).workspaces == [1])      // verified and cached
        #expect(try verifier.verify(token: token, now: start + 5).workspaces == [1])  // a hit
        #expect(throws: HTTPError.self) { try verifier.verify(token: token, now: start + 10) }
        #expect(throws: HTTPError.self) { try verifier.verify(token: token, now: start + 3600) }
        // Another key refuses the same token.
        let other = JWTVerifier(secret: String(repeating: "d", count: 32))
        #expect(throws: HTTPError.self) { try other.verify(token: token, now: start) }
    }

    /// nbf is checked on a hit too: a token accepted once its nbf has passed is still
    /// refused at an earlier time.
    @Test func cachedTokenStillHasItsNotBefore() throws {
        let verifier = JWTVerifier(secret: secret)
        let token = signed(#"{"sub":"a","workspaces":[1],"nbf":1800000050,"exp":1800000100}"#)
        #expect(throws: HTTPError.self) { try verifier.verify(token: token, now: start) }
        #expect(try verifier.verify(token: token, now: start + 60).workspaces == [1])  // verified and cached
        #expect(try verifier.verify(token: token, now: start + 61).workspaces == [1])  // a hit
        #expect(throws: HTTPError.self) { try verifier.verify(token: token, now: start + 49) }
        #expect(throws: HTTPError.self) { try verifier.verify(token: token, now: start + 100) }
    }

    /// A token that shares its signature with a cached one but carries other claims is no
    /// hit: it is verified, and refused. Also with the cached token's own header and
    /// signature around a payload of the same length.
    @Test func aForgedTokenWithACachedSignatureIsRefused() throws {
        let verifier = JWTVerifier(secret: secret)
        let token = verifier.mint(subject: "a", workspaces: [1], ttl: 60, now: start)
        #expect(try verifier.verify(token: token, now: start).workspaces == [1])
        #expect(try verifier.verify(token: token, now: start).workspaces == [1])  // cached
        let parts = token.split(separator: ".").map(String.init)
        let original = String(decoding: Encoding.decodeBase64URL(Substring(parts[1]))!, as: UTF8.self)
        let sameLength = original.replacingOccurrences(of: "[1]", with: "[2]")
        #expect(sameLength != original && sameLength.utf8.count == original.utf8.count)
        for claims in [#"{"sub":"a","workspaces":[2],"exp":1800000060}"#, sameLength] {
            let forged = parts[0] + "." + Encoding.base64URL(Array(claims.utf8)) + "." + parts[2]
            #expect(throws: HTTPError.self) { try verifier.verify(token: forged, now: start) }
        }
        #expect(try verifier.verify(token: token, now: start).workspaces == [1])
    }
}
