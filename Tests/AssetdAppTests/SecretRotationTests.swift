import AssetStore
import FastCGIServer
import Foundation
import Testing
@testable import AssetdApp

/// A rotation (docs/OPERATIONS.md "Rotating secrets"): ASSETD_JWT_SECRET signs, it and
/// ASSETD_JWT_ACCEPTED_SECRETS verify, a removed one is refused.
struct SecretRotationTests {
    let old = String(repeating: "o", count: 32)
    let new = String(repeating: "n", count: 40)
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func anySecretVerifiesAndTheFirstSigns() throws {
        let before = JWTVerifier(secret: old).mint(subject: "a", workspaces: [1], ttl: 60, now: now)
        let rotating = JWTVerifier(secrets: [new, old])
        #expect(try rotating.verify(token: before, now: now).workspaces == [1], "a token signed with the old secret still works")
        let minted = rotating.mint(subject: "b", workspaces: [2], ttl: 60, now: now)
        #expect(try JWTVerifier(secret: new).verify(token: minted, now: now).subject == "b", "signed with the first")
        #expect(throws: HTTPError.self) { try JWTVerifier(secret: old).verify(token: minted, now: now) }
        // The old secret removed: its tokens are refused.
        #expect(throws: HTTPError.self) { try JWTVerifier(secrets: [new]).verify(token: before, now: now) }
        // Neither secret: refused, whichever order.
        let stranger = JWTVerifier(secret: String(repeating: "s", count: 32)).mint(subject: "m", workspaces: [1], ttl: 60, now: now)
        #expect(throws: HTTPError.self) { try rotating.verify(token: stranger, now: now) }
        #expect(throws: HTTPError.self) { try JWTVerifier(secrets: [old, new]).verify(token: stranger, now: now) }
    }

    let base = ["AWS_BUCKET": "b", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "very-secret-value",
                "ASSETD_DATABASE": "/tmp/x.sqlite"]
    func configuration(_ settings: [String: String]) throws -> Configuration {
        try Configuration(environment: base.merging(settings) { $1 })
    }

    /// ASSETD_JWT_SECRET signs, ASSETD_JWT_ACCEPTED_SECRETS only verify.
    @Test func acceptedSecretsVerifyAndNeverSign() throws {
        #expect(try configuration(["ASSETD_JWT_SECRET": old]).jwtSecrets == [old])
        let rotating = try configuration(["ASSETD_JWT_SECRET": new, "ASSETD_JWT_ACCEPTED_SECRETS": " \(old) "])
        #expect(rotating.jwtSecret == new && rotating.jwtAcceptedSecrets == [old] && rotating.jwtSecrets == [new, old])
        let verifier = JWTVerifier(secrets: rotating.jwtSecrets)
        let before = JWTVerifier(secret: old).mint(subject: "a", workspaces: [1], ttl: 60, now: now)
        #expect(try verifier.verify(token: before, now: now).subject == "a")
        let minted = verifier.mint(subject: "b", workspaces: [2], ttl: 60, now: now)
        #expect(throws: HTTPError.self) { try JWTVerifier(secret: old).verify(token: minted, now: now) }
        // Several, the signing one among them (dropped), a repeat (dropped).
        let two = String(repeating: "t", count: 32)
        #expect(try configuration(["ASSETD_JWT_SECRET": new, "ASSETD_JWT_ACCEPTED_SECRETS": "\(old),\(new), \(two),\(old)"]).jwtSecrets
                == [new, old, two])
        for bad in ["\(old),", "\(old),,\(two)", "\(old),short", "short-secret"] {
            do {
                _ = try configuration(["ASSETD_JWT_SECRET": new, "ASSETD_JWT_ACCEPTED_SECRETS": bad])
                Issue.record("accepted \(bad)")
            } catch {
                let text = "\(error)"
                #expect(text.hasPrefix("ASSETD_JWT_ACCEPTED_SECRETS: secret ") && text.contains("at least 32 characters"), "\(text)")
                #expect(!text.contains(old) && !text.contains(new) && !text.contains("short"), "no secret in \(text)")
            }
        }
        // `assetd token` without the settings: no secret, no error.
        let unset = try Configuration(environment: [:], requireAll: false)
        #expect(unset.jwtSecret.isEmpty && unset.jwtAcceptedSecrets.isEmpty)
    }

    /// Review L1: ASSETD_JWT_SECRET is one secret, verbatim, as before the rotation's
    /// setting: a comma or spaces in it are part of it, never a list (which made each
    /// piece a working key and refused tokens signed with the whole).
    @Test func theSigningSecretIsTakenVerbatim() throws {
        let whole = String(repeating: "a", count: 40) + "," + String(repeating: "b", count: 40)
        let configured = try configuration(["ASSETD_JWT_SECRET": whole])
        #expect(configured.jwtSecrets == [whole])
        let verifier = JWTVerifier(secrets: configured.jwtSecrets)
        let signed = JWTVerifier(secret: whole).mint(subject: "a", workspaces: [1], ttl: 60, now: now)
        #expect(try verifier.verify(token: signed, now: now).subject == "a", "a token signed with the whole string verifies")
        for piece in [String(repeating: "a", count: 40), String(repeating: "b", count: 40)] {
            let forged = JWTVerifier(secret: piece).mint(subject: "m", workspaces: [1], ttl: 60, now: now)
            #expect(throws: HTTPError.self) { try verifier.verify(token: forged, now: now) }
        }
        let spaced = " \(old) "
        #expect(try configuration(["ASSETD_JWT_SECRET": spaced]).jwtSecret == spaced, "not trimmed")
        // Its length rule as it was: one message, no position.
        do {
            _ = try configuration(["ASSETD_JWT_SECRET": "short-secret"])
            Issue.record("accepted a short secret")
        } catch {
            #expect("\(error)" == "ASSETD_JWT_SECRET must be at least 32 characters long")
        }
    }

    @Test func cursorsAreMadeWithTheFirstAndReadWithAny() throws {
        let query = AssetQuery(workspaceID: 1)
        let before = ListCursor(secrets: [old]).encode(.created(id: 42), for: query)
        let rotating = ListCursor(secrets: [new, old])
        #expect(try rotating.decode(before, for: query) == .created(id: 42))
        let made = rotating.encode(.created(id: 7), for: query)
        #expect(try ListCursor(secrets: [new]).decode(made, for: query) == .created(id: 7))
        #expect(throws: HTTPError.self) { try ListCursor(secrets: [new]).decode(before, for: query) }
    }
}
