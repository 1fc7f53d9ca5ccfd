import Foundation
import Hashing

/// A Standard Webhooks secret: `whsec_` + the base64 of the key bytes
/// (https://www.standardwebhooks.com/, "Signature scheme"). Its description hides the key.
public struct WebhookSecret: Sendable, Equatable, CustomStringConvertible {
    let key: [UInt8]

    /// Nil unless `text` is `whsec_` + base64 (padded or not) of 16 to 64 bytes.
    public init?(_ text: String) {
        guard text.hasPrefix("whsec_") else { return nil }
        var encoded = String(text.dropFirst(6))
        guard !encoded.isEmpty, encoded.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else { return nil }
        while encoded.utf8.count % 4 != 0 { encoded += "=" }
        guard let data = Data(base64Encoded: encoded), (16...64).contains(data.count) else { return nil }
        key = Array(data)
    }

    public var description: String { "whsec_(hidden)" }
}

/// The `webhook-signature` header of the Standard Webhooks specification: for each secret,
/// `v1,` + base64(HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")), separated
/// by spaces, so that a receiver holding any one of the secrets (a rotation) verifies it.
enum WebhookSignature {
    static func header(id: String, timestamp: Int, body: [UInt8], secrets: [WebhookSecret]) -> String {
        var message = Array("\(id).\(timestamp).".utf8)
        message += body
        return secrets.map { "v1," + Encoding.base64(HMAC.sha256(key: $0.key, message: message)) }.joined(separator: " ")
    }
}
