/// Percent-encoding as SigV4 defines it: every byte but the unreserved characters
/// `A-Z a-z 0-9 - _ . ~` becomes `%XX` with upper-case hex.
/// https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
public enum URIEncoding {
    private static let upperHex: [UInt8] = Array("0123456789ABCDEF".utf8)

    @inline(__always)
    static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }

    /// Encodes a query name or value (a `/` is encoded too).
    public static func encode(_ text: String) -> String {
        encode(text, keepSlash: false)
    }

    /// Encodes a path: each segment is encoded, the `/` between segments kept.
    public static func encodePath(_ path: String) -> String {
        encode(path, keepSlash: true)
    }

    /// The canonical query string: names and values encoded, sorted by name then value.
    public static func canonicalQuery(_ query: [(name: String, value: String)]) -> String {
        let encoded: [(String, String)] = query.map { (encode($0.name), encode($0.value)) }
        let sorted = encoded.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        return sorted.map { $0.0 + "=" + $0.1 }.joined(separator: "&")
    }

    static func encode(_ text: String, keepSlash: Bool) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 16)
        for byte in text.utf8 {
            if isUnreserved(byte) || (keepSlash && byte == UInt8(ascii: "/")) {
                out.append(byte)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(upperHex[Int(byte >> 4)])
                out.append(upperHex[Int(byte & 0x0f)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
