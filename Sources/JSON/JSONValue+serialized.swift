extension JSONValue {
    /// Compact JSON text, members in their order.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(to: &out)
        return out
    }

    public func write(to out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let value): out.append(contentsOf: (value ? "true" : "false").utf8)
        case .number(let text): out.append(contentsOf: text.utf8)
        case .string(let text): Self.writeString(text, to: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (i, element) in elements.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                element.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (i, member) in members.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                Self.writeString(member.key, to: &out)
                out.append(UInt8(ascii: ":"))
                member.value.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    static func writeString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Most strings (keys, URLs, ids) need no escaping: copy them whole.
        var text = text
        let plain = text.withUTF8 { bytes -> Bool in
            guard !needsEscape(bytes) else { return false }
            out.append(contentsOf: bytes)
            return true
        }
        if plain {
            out.append(UInt8(ascii: "\""))
            return
        }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [0x5c, 0x22])
            case UInt8(ascii: "\\"): out.append(contentsOf: [0x5c, 0x5c])
            case 0x0a: out.append(contentsOf: [0x5c, UInt8(ascii: "n")])
            case 0x0d: out.append(contentsOf: [0x5c, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [0x5c, UInt8(ascii: "t")])
            case 0..<0x20, 0x7f:
                out.append(contentsOf: [0x5c, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xf)]])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Ends a JSON string written in place: its opening quote is at `out[start - 1]` and its
    /// text, valid UTF-8, is `out[start...]`. Appends the closing quote when no byte needs an
    /// escape; otherwise writes the text again escaped, in place of itself. Either way `out`
    /// ends with the bytes `JSONValue.string(text).write` writes.
    public static func closeString(in out: inout [UInt8], textFrom start: Int) {
        precondition(start >= 1 && start <= out.count && out[start - 1] == UInt8(ascii: "\""), "the text follows its opening quote")
        let escape = out.withUnsafeBufferPointer { needsEscape(UnsafeBufferPointer(rebasing: $0[start...])) }
        guard escape else {
            out.append(UInt8(ascii: "\""))
            return
        }
        let text = String(decoding: out[start...], as: UTF8.self)
        out.removeSubrange((start - 1)...)
        writeString(text, to: &out)
    }

    /// Whether any byte needs an escape: a control character, DEL, `"` or `\`.
    ///
    /// Eight bytes at a time: a presigned URL is 400-600 bytes, and a byte-wise scan of it
    /// cost ~5,000 instructions a part URL (callgrind). `(v - 0x01…) & ~v & 0x80…` is non-zero
    /// exactly when some byte of `v` is zero, and `(w - 0x20…) & ~w & 0x80…` exactly when some
    /// byte of `w` is below 0x20 (a borrow only runs upward from such a byte, so the answer
    /// for the word as a whole is exact; bytes of 0x80 and above never count).
    static func needsEscape(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return false }
        let ones: UInt64 = 0x0101_0101_0101_0101, high: UInt64 = 0x8080_8080_8080_8080
        var i = 0
        while i + 8 <= bytes.count {
            let w = UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self)
            let quote = w ^ (ones &* 0x22), backslash = w ^ (ones &* 0x5c), delete = w ^ (ones &* 0x7f)
            let found = ((w &- ones &* 0x20) & ~w) | ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash)
                | ((delete &- ones) & ~delete)
            if found & high != 0 { return true }
            i += 8
        }
        while i < bytes.count {
            if needsEscape(base[i]) { return true }
            i += 1
        }
        return false
    }

    @inline(__always)
    static func needsEscape(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == 0x7f || byte == 0x22 || byte == 0x5c
    }
}
