import Foundation
import Hashing
import Testing
import FastCGIServer
@testable import AssetdApp

/// Tokens an attacker shapes: look-alike characters, non-canonical base64url, claims of
/// the wrong type, and JSON that must not be parsed before the signature is checked.
struct TokenHardeningTests {
    let secret = String(repeating: "k", count: 32)
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func token(header: String = #"{"alg":"HS256","typ":"JWT"}"#, payload: String) -> String {
        let input = Encoding.base64URL(Array(header.utf8)) + "." + Encoding.base64URL(Array(payload.utf8))
        return input + "." + Encoding.base64URL(HMAC.sha256(key: Array(secret.utf8), message: input))
    }

    func status(_ verifier: JWTVerifier, _ token: String) -> Int {
        do { _ = try verifier.verify(token: token, now: now); return 200 } catch let error as HTTPError {
            return error.status.code
        } catch { return -1 }
    }

    @Test func aUnicodeLookAlikeOfACachedTokenIsRefused() throws {
        let verifier = JWTVerifier(secret: secret)
        // A token with a K in it, verified once so that it is cached.
        var minted = "", ttl = 60
        while !minted.contains("K"), ttl < 10_000 {
            minted = verifier.mint(subject: "alice", workspaces: [1], ttl: ttl, now: now)
            ttl += 1
        }
        try #require(minted.contains("K"))
        #expect(status(verifier, minted) == 200)
        #expect(status(verifier, minted) == 200) // a cache hit
        // U+212A KELVIN SIGN is canonically equivalent to K: equal as a Swift String.
        let lookAlike = minted.replacingOccurrences(of: "K", with: "\u{212A}")
        #expect(lookAlike == minted, "Swift's String equality is what the byte-keyed cache must not rely on")
        #expect(Array(lookAlike.utf8) != Array(minted.utf8))
        #expect(status(verifier, lookAlike) == 401)
        // And on a verifier whose cache is empty.
        #expect(status(JWTVerifier(secret: secret), lookAlike) == 401)
    }

    @Test func nonCanonicalBase64URLIsRefused() throws {
        let verifier = JWTVerifier(secret: secret)
        let good = token(payload: #"{"sub":"a","workspaces":[1],"exp":1900000000}"#)
        #expect(status(verifier, good) == 200)
        // The signature is 32 bytes: 43 characters whose last carries 2 unused bits. Setting
        // one of them decodes to the same bytes, and must still be refused.
        let last = good.last!
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        let index = alphabet.firstIndex(of: last)!
        let twin = alphabet[index ^ 1]
        let tampered = String(good.dropLast()) + String(twin)
        #expect(Encoding.decodeBase64URL(Substring(tampered.split(separator: ".")[2])) == nil)
        #expect(status(JWTVerifier(secret: secret), tampered) == 401)
        // Padding is not base64url as JWTs use it.
        #expect(status(JWTVerifier(secret: secret), good + "=") == 401)
    }

    @Test func timeClaimsAreIntegerNumericDates() {
        let verifier = JWTVerifier(secret: secret)
        #expect(status(verifier, token(payload: #"{"sub":"a","workspaces":[1],"exp":1900000000}"#)) == 200)
        #expect(status(verifier, token(payload: #"{"sub":"a","workspaces":[1],"exp":1900000000.5}"#)) == 401)
        #expect(status(verifier, token(payload: #"{"sub":"a","workspaces":[1],"exp":1.9e9}"#)) == 401)
        #expect(status(verifier, token(payload: #"{"sub":"a","workspaces":[1],"exp":"1900000000"}"#)) == 401)
        #expect(status(verifier, token(payload: #"{"sub":"a","workspaces":[1],"exp":1900000000,"nbf":"0"}"#)) == 401)
        #expect(status(verifier, token(payload: #"{"sub":"a","workspaces":[1],"exp":1900000000,"nbf":1700000000}"#)) == 200)
        #expect(status(verifier, token(payload: #"{"sub":"a","workspaces":[1],"exp":1900000000,"nbf":1900000000}"#)) == 401)
    }

    @Test func theSignatureIsCheckedBeforeAnyJSON() {
        // Unsigned garbage JSON and a wrong key: the answer is about the signature, so no
        // JSON of an unsigned token was ever parsed.
        let input = Encoding.base64URL(Array("{{{{".utf8)) + "." + Encoding.base64URL(Array("[[[[".utf8))
        let forged = input + "." + Encoding.base64URL(HMAC.sha256(key: Array("another key of thirty-two bytes!".utf8), message: input))
        do {
            _ = try JWTVerifier(secret: secret).verify(token: forged, now: now)
            Issue.record("a forged token was accepted")
        } catch let error as HTTPError {
            #expect(error.status.code == 401)
            #expect(error.message.contains("signature"))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }
}
