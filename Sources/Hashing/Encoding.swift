/// Hex and base64 encodings that the signers and the JWT verifier need.
public enum Encoding {
    /// Lower-case hex, as SigV4 and ETags use it.
    @inlinable
    public static func hex<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        if let text = bytes.withContiguousStorageIfAvailable({ hex(raw: UnsafeRawBufferPointer($0)) }) { return text }
        return Array(bytes).withUnsafeBytes { hex(raw: $0) }
    }

    public static func hex(raw bytes: UnsafeRawBufferPointer) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { out in
            if let target = out.baseAddress { writeHex(raw: bytes, to: target) }
            return bytes.count * 2
        }
    }

    /// Whether `table` has "1" at the index of every byte of `bytes` (a 256-byte table of
    /// "1" and "0", so any byte indexes it: checked here), eight bytes a step: the entries
    /// ("1" is 0x31, "0" 0x30) AND to "1" only when each is. A test of a byte class a byte
    /// (shifts or ranges and a branch) cost 7-14 instructions a byte on the presign path
    /// (callgrind): the URI encoding's unreserved bytes, the access log's request id.
    @inlinable
    public static func allInTable(_ bytes: UnsafeBufferPointer<UInt8>, _ table: StaticString) -> Bool {
        precondition(table.utf8CodeUnitCount == 256, "a table holds an entry for each byte value")
        guard let base = bytes.baseAddress else { return true }
        let entries = table.utf8Start
        var i = 0
        while bytes.count - i >= 8 {
            let p = base + i
            let all = entries[Int(p[0])] & entries[Int(p[1])] & entries[Int(p[2])] & entries[Int(p[3])]
                & entries[Int(p[4])] & entries[Int(p[5])] & entries[Int(p[6])] & entries[Int(p[7])]
            if all != UInt8(ascii: "1") { return false }
            i += 8
        }
        while i < bytes.count {
            if entries[Int(base[i])] != UInt8(ascii: "1") { return false }
            i += 1
        }
        return true
    }

    /// Appends lower-case hex of `bytes` to `out`.
    public static func appendHex(raw bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        // Written into a buffer on the stack, then appended in one copy: a byte-wise append
        // cost ~12 instructions a digit, and zeros appended then overwritten ~500 a digest
        // (callgrind).
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 2 * bytes.count) { buffer in
            guard let target = buffer.baseAddress else { return }
            writeHex(raw: bytes, to: target)
            out.append(contentsOf: UnsafeBufferPointer(start: target, count: 2 * bytes.count))
        }
    }

    /// Writes lower-case hex of `bytes` at `target`, which must hold `2 * bytes.count` bytes.
    ///
    /// Four bytes at a time into the eight digits of one `UInt64` (`hexDigits`), the last
    /// one to three bytes through the table: a table lookup a digit cost ~490 instructions a
    /// digest, two digests a presign (callgrind).
    public static func writeHex(raw bytes: UnsafeRawBufferPointer, to target: UnsafeMutablePointer<UInt8>) {
        guard let base = bytes.baseAddress else { return }
        let count = bytes.count
        var i = 0
        while count - i >= 4 {
            let word = UInt64(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt32.self)))
            UnsafeMutableRawPointer(target + 2 * i).storeBytes(of: hexDigits(word).littleEndian, as: UInt64.self)
            i += 4
        }
        let digits: StaticString = "0123456789abcdef"
        let table = digits.utf8Start
        while i < count {
            let byte = base.load(fromByteOffset: i, as: UInt8.self)
            target[2 * i] = table[Int(byte >> 4)]
            target[2 * i + 1] = table[Int(byte & 0x0f)]
            i += 1
        }
    }

    /// The eight lower-case hex digits of the four bytes in the low half of `word` (the
    /// first byte lowest), as the bytes of a little-endian `UInt64`: byte `k` moves to byte
    /// `2k`, its high nibble stays there and its low one goes to byte `2k + 1`; then each
    /// nibble `n` becomes `"0" + n`, plus 39 (`"a" - "0" - 10`) when `n + 6` carries into
    /// bit 4, i.e. `n >= 10`. No byte's sum exceeds 102, so nothing carries between bytes.
    @inline(__always)
    static func hexDigits(_ word: UInt64) -> UInt64 {
        var spread = (word | (word << 16)) & 0x0000_ffff_0000_ffff
        spread = (spread | (spread << 8)) & 0x00ff_00ff_00ff_00ff
        let nibbles = ((spread >> 4) & 0x000f_000f_000f_000f) | ((spread & 0x000f_000f_000f_000f) << 8)
        let letters = ((nibbles &+ 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101
        return nibbles &+ 0x3030_3030_3030_3030 &+ letters &* 39
    }

    private static let base64Alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Standard base64 with padding (Content-MD5).
    public static func base64<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var iterator = bytes.makeIterator()
        while let b0 = iterator.next() {
            let b1 = iterator.next()
            let b2 = iterator.next()
            out.append(base64Alphabet[Int(b0 >> 2)])
            out.append(base64Alphabet[Int((b0 & 0x03) << 4 | (b1 ?? 0) >> 4)])
            out.append(b1.map { base64Alphabet[Int(($0 & 0x0f) << 2 | (b2 ?? 0) >> 6)] } ?? UInt8(ascii: "="))
            out.append(b2.map { base64Alphabet[Int($0 & 0x3f)] } ?? UInt8(ascii: "="))
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// base64url without padding (RFC 4648 §5), as JWTs use it.
    public static func base64URL<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var text = base64(bytes)
        while text.last == "=" { text.removeLast() }
        return String(text.map { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 })
    }

    /// Decodes hex (either case); nil for an odd length or a character that is not hex.
    public static func decodeHex<Text: StringProtocol>(_ text: Text) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count / 2)
        var i = 0
        while i < utf8.count {
            guard let high = nibble(utf8[i]), let low = nibble(utf8[i + 1]) else { return nil }
            out.append(high << 4 | low)
            i += 2
        }
        return out
    }

    /// Decodes canonical unpadded base64url (RFC 4648 §5 and §3.5): nil for any character
    /// outside the alphabet, padding, a length that cannot be, or leftover bits that are not
    /// zero, so that each byte string has exactly one accepted text.
    public static func decodeBase64URL(_ text: Substring) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for char in text.utf8 {
            let value: UInt32
            switch char {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = UInt32(char - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = UInt32(char - UInt8(ascii: "a")) + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = UInt32(char - UInt8(ascii: "0")) + 52
            case UInt8(ascii: "-"): value = 62
            case UInt8(ascii: "_"): value = 63
            default: return nil
            }
            accumulator = (accumulator << 6) | value
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((accumulator >> UInt32(bits)) & 0xff))
            }
        }
        // A single leftover character (6 bits) can never encode a byte, and the bits that
        // pad the last byte must be zero (else "AB" and "AC" would both decode to [0x00]).
        if bits >= 6 { return nil }
        if bits > 0, accumulator & ((1 << UInt32(bits)) - 1) != 0 { return nil }
        return out
    }
}
