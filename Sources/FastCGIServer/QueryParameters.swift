/// A decoded `application/x-www-form-urlencoded` query string.
/// A name given more than once keeps its first value; `values(_:)` has them all.
public struct QueryParameters: Sendable {
    public private(set) var pairs: [(name: String, value: String)] = []

    public init(_ query: String) {
        guard !query.isEmpty else { return }
        var query = query
        query.withUTF8 { bytes in
            pairs.reserveCapacity(bytes.reduce(1) { $1 == UInt8(ascii: "&") ? $0 + 1 : $0 })
            var start = 0
            while start < bytes.count {
                var end = start
                var equals: Int?
                while end < bytes.count, bytes[end] != UInt8(ascii: "&") {
                    if equals == nil, bytes[end] == UInt8(ascii: "=") { equals = end }
                    end += 1
                }
                if end > start {
                    let name = Self.decode(UnsafeBufferPointer(rebasing: bytes[start..<(equals ?? end)]))
                    let value = equals.map { Self.decode(UnsafeBufferPointer(rebasing: bytes[($0 + 1)..<end])) } ?? ""
                    pairs.append((name, value))
                }
                start = end + 1
            }
        }
    }

    public subscript(name: String) -> String? {
        pairs.first { $0.name == name }?.value
    }

    public func values(_ name: String) -> [String] {
        pairs.filter { $0.name == name }.map(\.value)
    }

    /// Percent-decoding with `+` as space. Malformed escapes are kept as they are;
    /// bytes that are not UTF-8 become U+FFFD, so that strict parsers downstream refuse them.
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        // The String initialiser validates the bytes and repairs invalid UTF-8.
        String(unsafeUninitializedCapacity: bytes.count) { out in
            var i = 0, n = 0
            while i < bytes.count {
                let c = bytes[i]
                if c == UInt8(ascii: "+") {
                    out[n] = UInt8(ascii: " ")
                } else if c == UInt8(ascii: "%"), i + 2 < bytes.count,
                          let high = hexValue(bytes[i + 1]), let low = hexValue(bytes[i + 2]) {
                    out[n] = high << 4 | low
                    i += 2
                } else {
                    out[n] = c
                }
                n += 1
                i += 1
            }
            return n
        }
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
