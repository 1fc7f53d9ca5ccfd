import FastCGIServer
public import JSON

/// Strict parsing of client input: ids, integers in a range, short strings.
/// Every failure is a 400 that names the field.
public enum Input {
    /// A positive integer written as plain digits: no sign, space, exponent, leading zero,
    /// fraction, slash or overflow.
    public static func parseID(_ text: Substring) -> Int64? {
        // One pass over the bytes in one piece, the value built as the digits are checked.
        // Checking them through the UTF8View and then `Int64(text)` cost ~330 instructions
        // an id (callgrind; three ids a part URL). Overflow is refused as `Int64(text)` did.
        var text = text
        return text.withUTF8 { digits -> Int64? in
            guard !digits.isEmpty, digits.count <= 19, digits[0] != UInt8(ascii: "0") else { return nil }
            var value: Int64 = 0
            for digit in digits {
                guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return nil }
                let (tens, tensOverflow) = value.multipliedReportingOverflow(by: 10)
                let (sum, sumOverflow) = tens.addingReportingOverflow(Int64(digit &- UInt8(ascii: "0")))
                guard !tensOverflow, !sumOverflow else { return nil }
                value = sum
            }
            return value  // > 0: a first digit from 1 to 9
        }
    }

    public static func id(_ text: String?, field: String) throws -> Int64 {
        guard let text else { throw HTTPError(.badRequest, "\(field) is required.") }
        guard let value = parseID(Substring(text)) else {
            throw HTTPError(.badRequest, "\(field) must be a positive integer.")
        }
        return value
    }

    /// An id from JSON: a number or a numeric string, under the same rules.
    public static func id(_ value: JSONValue?, field: String) throws -> Int64 {
        switch value {
        case .none, .some(.null): throw HTTPError(.badRequest, "\(field) is required.")
        case .some(.number(let text)), .some(.string(let text)):
            guard let id = parseID(Substring(text)) else { throw HTTPError(.badRequest, "\(field) must be a positive integer.") }
            return id
        default: throw HTTPError(.badRequest, "\(field) must be a positive integer.")
        }
    }

    /// An integer in `range`, given as digits.
    public static func integer(_ text: String?, field: String, in range: ClosedRange<Int64>) throws -> Int64? {
        guard let text else { return nil }
        guard let value = parseID(Substring(text)), range.contains(value) else {
            throw HTTPError(.badRequest, "\(field) must be an integer from \(range.lowerBound) to \(range.upperBound).")
        }
        return value
    }

    /// A token-like string (upload ids): printable ASCII, no spaces, at most `maxLength`.
    public static func token(_ text: String?, field: String, maxLength: Int = 1024) throws -> String {
        guard let text, !text.isEmpty else { throw HTTPError(.badRequest, "\(field) is required.") }
        // Over the bytes in one piece, eight at a time: the UTF8View's iterator costs several
        // times more a byte, and a byte-wise `allSatisfy` ~8 instructions a byte (~450 an
        // upload id, callgrind).
        var contiguous = text
        let valid = contiguous.withUTF8 { $0.count <= maxLength && isPrintableToken($0) }
        guard valid else {
            throw HTTPError(.badRequest, "\(field) is not a valid upload id.")
        }
        return text
    }

    /// Whether every byte is printable ASCII other than space (0x21-0x7E).
    ///
    /// Eight bytes at a time in a `UInt64`: `(w - 0x21…) & ~w & 0x80…` is non-zero exactly
    /// when some byte is below 0x21 (a borrow runs only upward from such a byte, so the
    /// answer for the word is exact), and `((w & 0x7f…) + 0x01…) | w` has bit 7 of a byte set
    /// exactly when that byte is 0x7F or above (no sum carries out of its byte).
    static func isPrintableToken(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        let ones: UInt64 = 0x0101_0101_0101_0101, high: UInt64 = 0x8080_8080_8080_8080
        var i = 0
        while bytes.count - i >= 8 {
            let w = UInt64(littleEndian: UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self))
            let below = (w &- ones &* 0x21) & ~w
            let above = ((w & ~high) &+ ones) | w
            if (below | above) & high != 0 { return false }
            i += 8
        }
        while i < bytes.count {
            guard base[i] > 0x20, base[i] < 0x7f else { return false }
            i += 1
        }
        return true
    }

    /// A file name as a label: the last path component, control characters removed,
    /// at most 255 bytes. Never used to build a key.
    public static func fileName(_ text: String?) throws -> String? {
        guard let text else { return nil }
        // Control characters (C0, DEL, C1) and bidirectional overrides are refused, not
        // dropped: a name with CR LF or NUL in it is an attack or a bug, never a file name.
        if text.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7f...0x9f).contains($0.value) || isBidiControl($0) }) {
            throw HTTPError(.badRequest, "fileName must not contain control characters.")
        }
        let last = text.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? ""
        var cleaned = last.trimmingSpaces()
        // At most 255 bytes of UTF-8, cut at a character boundary.
        while cleaned.utf8.count > 255 { cleaned.removeLast() }
        return cleaned.isEmpty || cleaned == "." || cleaned == ".." ? nil : cleaned
    }

    private static func isBidiControl(_ scalar: Unicode.Scalar) -> Bool {
        (0x202A...0x202E).contains(scalar.value) || (0x2066...0x2069).contains(scalar.value) || scalar.value == 0x200E || scalar.value == 0x200F
    }

    /// A part's MD5 as `contentMD5` gives it (the value of a Content-MD5 header): padded
    /// base64 (RFC 4648, `+` and `/`) of exactly 16 bytes, in its one canonical spelling,
    /// 24 characters ending in `==`. Nothing else: no spaces, no base64url, no hex.
    public static func contentMD5(_ text: Substring, field: String = "contentMD5") throws -> [UInt8] {
        func value(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): c - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): c - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0") + 52
            case UInt8(ascii: "+"): 62
            case UInt8(ascii: "/"): 63
            default: nil
            }
        }
        let chars = Array(text.utf8)
        var bits: UInt32 = 0, count = 0
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16)
        var valid = chars.count == 24 && chars[22] == UInt8(ascii: "=") && chars[23] == UInt8(ascii: "=")
        if valid {
            for c in chars[0..<22] {
                guard let v = value(c) else { valid = false; break }
                bits = bits << 6 | UInt32(v)
                count += 6
                if count >= 8 {
                    count -= 8
                    bytes.append(UInt8(truncatingIfNeeded: bits >> UInt32(count)))
                    bits &= (1 << UInt32(count)) - 1
                }
            }
            // 22 characters carry 132 bits: 16 bytes and 4 bits that must be zero.
            valid = valid && bytes.count == 16 && bits == 0
        }
        guard valid else {
            let hint = text.contains(" ") ? " (a + in a query string must be sent as %2B)" : ""
            throw HTTPError(.badRequest, "\(field) must be the base64 of a part's 16-byte MD5, as in a Content-MD5 header\(hint).")
        }
        return bytes
    }

    /// Part numbers as written, ranges expanded (`3-5,1` is 3, 4, 5, 1), for pairing with a
    /// list given in the same order. `text` must have passed `partNumbers` already.
    static func partNumbersAsWritten(_ text: String) -> [Int] {
        var numbers: [Int] = []
        for piece in text.split(separator: ",") {
            let bounds = piece.split(separator: "-")
            guard let low = parseID(bounds[0]), let high = bounds.count == 2 ? parseID(bounds[1]) : low, low <= high else { continue }
            numbers += (Int(low)...Int(high)).map { $0 }
        }
        return numbers
    }

    /// Part numbers: `1-20`, `1,2,5` or both (`1-3,7`); ascending order, duplicates dropped.
    public static func partNumbers(_ text: String?, field: String, max count: Int) throws -> [Int] {
        guard let text, !text.isEmpty else { throw HTTPError(.badRequest, "\(field) is required.") }
        var numbers = Set<Int>()
        for piece in text.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = piece.split(separator: "-", omittingEmptySubsequences: false)
            guard bounds.count == 1 || bounds.count == 2,
                  let low = parseID(bounds[0]), let high = bounds.count == 2 ? parseID(bounds[1]) : low,
                  low <= high, high <= 10_000
            else {
                throw HTTPError(.badRequest, "\(field) must be part numbers from 1 to 10000, as 1-20 or 1,2,5.")
            }
            guard high - low < Int64(count), numbers.count + Int(high - low) < count + 1 else {
                throw HTTPError(.badRequest, "\(field) may name at most \(count) parts at once.")
            }
            for n in low...high { numbers.insert(Int(n)) }
            guard numbers.count <= count else { throw HTTPError(.badRequest, "\(field) may name at most \(count) parts at once.") }
        }
        return numbers.sorted()
    }
}

extension String {
    func trimmingSpaces() -> String {
        var slice = Substring(self)
        while slice.first?.isWhitespace == true { slice.removeFirst() }
        while slice.last?.isWhitespace == true { slice.removeLast() }
        return String(slice)
    }
}
