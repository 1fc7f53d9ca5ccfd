import Foundation

/// ASSETD_TYPESENSE_URL, ASSETD_TYPESENSE_API_KEY and ASSETD_TYPESENSE_COLLECTION. The key
/// never appears in a description.
public struct TypesenseSettings: Sendable, CustomStringConvertible {
    public var url: String
    public var apiKey: String
    public var collection: String

    public var description: String { "\(url) collection \(collection)" }
}

/// URLs of event sinks: what start-up accepts, and how they appear in logs.
enum EventEndpoint {
    /// An absolute http(s) URL with a host, no fragment, user or password, no spaces.
    static func isValidURL(_ text: String) -> Bool {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }),
              let parts = URLComponents(string: text), let scheme = parts.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = parts.host, !host.isEmpty, parts.fragment == nil, parts.user == nil, parts.password == nil
        else { return false }
        return true
    }

    /// The URL without its query (which may carry a token), for logs and messages.
    static func redacted(_ url: String) -> String {
        let base = String(url.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
        return base.count < url.count ? base + "?(query hidden)" : base
    }
}
