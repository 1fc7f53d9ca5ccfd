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
        // Byte order, as SigV4 wants; every encoded string is ASCII.
        let sorted = encoded.sorted {
            $0.0 != $1.0 ? $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) : $0.1.utf8.lexicographicallyPrecedes($1.1.utf8)
        }
        return sorted.map { $0.0 + "=" + $0.1 }.joined(separator: "&")
    }

    static func encode(_ text: String, keepSlash: Bool) -> String {
        var text = text
        return text.withUTF8 { bytes in
            var escapes = 0
            for byte in bytes where !(isUnreserved(byte) || (keepSlash && byte == UInt8(ascii: "/"))) { escapes += 1 }
            // Most names and values need no escape: the text is its own encoding.
            if escapes == 0 { return String(decoding: bytes, as: UTF8.self) }
            return String(unsafeUninitializedCapacity: bytes.count + 2 * escapes) { out in
                var i = 0
                for byte in bytes {
                    if isUnreserved(byte) || (keepSlash && byte == UInt8(ascii: "/")) {
                        out[i] = byte
                        i += 1
                    } else {
                        out[i] = UInt8(ascii: "%")
                        out[i + 1] = upperHex[Int(byte >> 4)]
                        out[i + 2] = upperHex[Int(byte & 0x0f)]
                        i += 3
                    }
                }
                return i
            }
        }
    }
}
