import AssetStore
import FastCGIServer
import Foundation
import Testing
@testable import AssetdApp

/// ASSETD_JWT_SECRET with several secrets (a rotation, docs/OPERATIONS.md "Rotating
/// secrets"): any of them verifies, the first signs, a removed one is refused.
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

    @Test func settingListsSecretsAsTheWebhookSecretDoes() throws {
        let base = ["AWS_BUCKET": "b", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "very-secret-value",
                    "ASSETD_DATABASE": "/tmp/x.sqlite"]
        func configuration(_ secret: String) throws -> Configuration {
            try Configuration(environment: base.merging(["ASSETD_JWT_SECRET": secret]) { $1 })
        }
        #expect(try configuration(old).jwtSecrets == [old])
        #expect(try configuration("\(new), \(old)").jwtSecrets == [new, old])
        #expect(try configuration("\(new), \(old)").jwtSecret == new)
        for bad in ["\(new),", "\(new),,\(old)", "\(new),short", "\(String(old.prefix(20))),\(String(old.prefix(20)))"] {
            do {
                _ = try configuration(bad)
                Issue.record("accepted \(bad)")
            } catch {
                let text = "\(error)"
                #expect(text.hasPrefix("ASSETD_JWT_SECRET: secret ") && text.contains("at least 32 characters"), "\(text)")
                #expect(!text.contains(old) && !text.contains(new) && !text.contains("short"), "no secret in \(text)")
            }
        }
        // `assetd token` without the setting: no secret, no error.
        let unset = try Configuration(environment: [:], requireAll: false)
        #expect(unset.jwtSecrets.isEmpty && unset.jwtSecret.isEmpty)
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
