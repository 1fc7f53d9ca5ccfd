internal import Glibc
internal import Hashing

/// Percent-encoding as SigV4 defines it: every byte but the unreserved characters
/// `A-Z a-z 0-9 - _ . ~` becomes `%XX` with upper-case hex.
/// https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
///
/// The `append` forms write into a byte buffer: presigning runs on every part-URL request,
/// and building, sorting and joining Strings cost more there than the hashing did.
public enum URIEncoding {
    /// Bit `b` set: byte `b` is unreserved (`- .` and digits below 64; letters, `_`, `~` above).
    private static let unreservedLow: UInt64 = 0x03FF_6000_0000_0000
    private static let unreservedHigh: UInt64 = 0x47FF_FFFE_87FF_FFFE
    private static let slash: UInt64 = 1 << 47

    /// `1` at the index of each unreserved byte, `0` elsewhere: 256 bytes, so any byte
    /// indexes it. One load a byte where `isKept`'s shifts and branches cost more, on the
    /// per-request path (`encode`).
    static let unreservedTable: StaticString =
        "0000000000000000000000000000000000000000000001101111111111000000011111111111111111111111111000010111111111111111111111111110001000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"

    /// `unreservedTable` with `/` kept too (index 47), for paths.
    static let pathTable: StaticString =
        "0000000000000000000000000000000000000000000001111111111111000000011111111111111111111111111000010111111111111111111111111110001000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"

    /// Whether no byte needs an escape (`/` kept with `keepSlash`), through the table eight
    /// bytes a step (`Encoding.allInTable`): `isKept`'s shifts and branches a byte cost ~7
    /// instructions a byte of a presign's path (callgrind).
    static func allKept(_ bytes: UnsafeBufferPointer<UInt8>, keepSlash: Bool) -> Bool {
        Encoding.allInTable(bytes, keepSlash ? pathTable : unreservedTable)
    }

    @inline(__always)
    static func isKept(_ byte: UInt8, low: UInt64) -> Bool {
        byte < 64 ? (low >> UInt64(byte)) & 1 == 1 : byte < 128 && (unreservedHigh >> UInt64(byte - 64)) & 1 == 1
    }

    /// Encodes a query name or value (a `/` is encoded too).
    public static func encode(_ text: String) -> String {
        var out: [UInt8] = []
        appendEncoded(text, to: &out, keepSlash: false)
        return String(decoding: out, as: UTF8.self)
    }

    /// Encodes a path: each segment is encoded, the `/` between segments kept.
    public static func encodePath(_ path: String) -> String {
        var out: [UInt8] = []
        appendEncoded(path, to: &out, keepSlash: true)
        return String(decoding: out, as: UTF8.self)
    }

    /// The canonical query string: names and values encoded, sorted by name then value.
    public static func canonicalQuery(_ query: [(name: String, value: String)]) -> String {
        var out: [UInt8] = []
        appendCanonicalQuery(query, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the encoding of `text` to `out`.
    public static func appendEncoded(_ text: String, to out: inout [UInt8], keepSlash: Bool) {
        if text.utf8.withContiguousStorageIfAvailable({ appendEncoded($0, to: &out, keepSlash: keepSlash) }) != nil { return }
        var text = text
        text.withUTF8 { appendEncoded($0, to: &out, keepSlash: keepSlash) }
    }

    static func appendEncoded(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8], keepSlash: Bool) {
        let low = keepSlash ? unreservedLow | slash : unreservedLow
        // Most names and values need no escape: they are copied whole.
        if allKept(bytes, keepSlash: keepSlash) {
            out.append(contentsOf: bytes)
            return
        }
        var escapes = 0
        for byte in bytes where !isKept(byte, low: low) { escapes += 1 }
        // Written in place of a byte-wise append, which cost ~20 instructions a byte.
        let hex: StaticString = "0123456789ABCDEF"
        let table = hex.utf8Start
        let start = out.count, length = bytes.count + 2 * escapes
        out.append(contentsOf: repeatElement(0, count: length))
        out.withUnsafeMutableBufferPointer { buffer in
            var at = start
            for byte in bytes {
                if isKept(byte, low: low) {
                    buffer[at] = byte
                    at += 1
                } else {
                    buffer[at] = UInt8(ascii: "%")
                    buffer[at + 1] = table[Int(byte >> 4)]
                    buffer[at + 2] = table[Int(byte & 0x0f)]
                    at += 3
                }
            }
        }
    }

    /// Appends the canonical query of `query` (and `extra`) and of `sorted`, fields already
    /// encoded and sorted, to `out`: the same bytes as `appendCanonicalQuery` of all of them
    /// together. The fresh fields are encoded and sorted in scratch space on the stack, then
    /// the two sorted lists merged: an `EncodedQuery` of a presign's three fresh fields (two
    /// arrays, a sort through a closure) cost ~3,450 instructions (callgrind).
    static func appendCanonicalQuery(_ query: [(name: String, value: String)], plus extra: (name: String, value: String)? = nil,
                                     merging sorted: EncodedQuery, to out: inout [UInt8]) {
        let freshCount = query.count + (extra == nil ? 0 : 1)
        // Room for every byte encoded as %XX: what `encode` may write at most.
        var room = 0
        for field in query { room += field.name.utf8.count + field.value.utf8.count }
        if let extra { room += extra.name.utf8.count + extra.value.utf8.count }
        room *= 3
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(room, 1)) { scratch in
            withUnsafeTemporaryAllocation(of: (name: Range<Int>, value: Range<Int>).self, capacity: max(freshCount, 1)) { pairs in
                var used = 0
                func add(_ field: (name: String, value: String), at index: Int) {
                    let nameStart = used
                    used += encode(field.name, into: UnsafeMutableBufferPointer(rebasing: scratch[used...]))
                    let valueStart = used
                    used += encode(field.value, into: UnsafeMutableBufferPointer(rebasing: scratch[used...]))
                    (pairs.baseAddress! + index).initialize(to: (nameStart..<valueStart, valueStart..<used))
                }
                for (index, field) in query.enumerated() { add(field, at: index) }
                if let extra { add(extra, at: query.count) }
                let fresh = UnsafeBufferPointer(rebasing: scratch[..<used])
                // Insertion sort: a handful of fields.
                for i in 1..<max(freshCount, 1) {
                    let x = pairs[i]
                    var j = i
                    while j > 0 {
                        let y = pairs[j - 1]
                        let byName = EncodedQuery.compare(fresh, x.name, fresh, y.name)
                        guard byName != 0 ? byName < 0 : EncodedQuery.compare(fresh, x.value, fresh, y.value) < 0 else { break }
                        pairs[j] = y
                        j -= 1
                    }
                    pairs[j] = x
                }
                // Trivial values (ranges): nothing to deinitialize.
                merge(fresh, UnsafeBufferPointer(rebasing: pairs[..<freshCount]), sorted, to: &out)
            }
        }
    }

    /// Writes the encoding of `text` at the start of `target`, which has room for 3 bytes
    /// a byte of it; the count written.
    private static func encode(_ text: String, into target: UnsafeMutableBufferPointer<UInt8>) -> Int {
        func encode(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
            precondition(target.count >= 3 * bytes.count, "no room to encode")
            guard var at = target.baseAddress, !bytes.isEmpty else { return 0 }
            let start = at
            let hex: StaticString = "0123456789ABCDEF"
            let table = hex.utf8Start
            // 256 bytes (a test checks its length, and every byte against the rule): any
            // UInt8 indexes inside it.
            let unreserved = unreservedTable.utf8Start
            @inline(__always) func put(_ byte: UInt8) {
                if unreserved[Int(byte)] == UInt8(ascii: "1") {
                    at.pointee = byte
                    at += 1
                } else {
                    at[0] = UInt8(ascii: "%")
                    at[1] = table[Int(byte >> 4)]
                    at[2] = table[Int(byte & 0x0f)]
                    at += 3
                }
            }
            // Eight bytes at a time while all eight are unreserved (ids, dates, names: most
            // of a presign's ~110 bytes), copied as one word: the table's entries are "1"
            // (0x31) or "0" (0x30), so their AND is "1" only when each is. A byte at a time
            // cost ~10 instructions a byte (callgrind).
            let base = bytes.baseAddress!
            var i = 0
            while bytes.count - i >= 8 {
                let p = base + i
                let all = unreserved[Int(p[0])] & unreserved[Int(p[1])] & unreserved[Int(p[2])] & unreserved[Int(p[3])]
                    & unreserved[Int(p[4])] & unreserved[Int(p[5])] & unreserved[Int(p[6])] & unreserved[Int(p[7])]
                if all == UInt8(ascii: "1") {
                    UnsafeMutableRawPointer(at).copyMemory(from: p, byteCount: 8)
                    at += 8
                } else {
                    for j in 0..<8 { put(p[j]) }
                }
                i += 8
            }
            while i < bytes.count {
                put(base[i])
                i += 1
            }
            return at - start
        }
        if let written = text.utf8.withContiguousStorageIfAvailable(encode) { return written }
        var text = text
        return text.withUTF8(encode)
    }

    /// Writes `a`'s fields (`freshPairs`, sorted) and `sorted`'s, merged in canonical order
    /// and joined with `&`, at the end of `out`.
    private static func merge(_ a: UnsafeBufferPointer<UInt8>, _ freshPairs: UnsafeBufferPointer<(name: Range<Int>, value: Range<Int>)>,
                              _ sorted: EncodedQuery, to out: inout [UInt8]) {
        let count = freshPairs.count + sorted.pairs.count
        guard count > 0 else { return }
        // Written on the stack, `=` and `&` per pair besides the bytes, then appended in one
        // copy: appending each range cost ~90 instructions a call, and growing `out` with
        // zeros to write it in place ~420 (callgrind).
        let length = a.count + sorted.bytes.count + 2 * count - 1
        sorted.bytes.withUnsafeBufferPointer { b in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: length) { buffer in
                let target = buffer.baseAddress!
                var at = 0, i = 0, j = 0
                // `length` is the sum of what the pairs write, so `at` stays inside it
                // (checked once at the end, as before).
                func put(_ bytes: UnsafeBufferPointer<UInt8>, _ pair: (name: Range<Int>, value: Range<Int>)) {
                    if at > 0 {
                        target[at] = UInt8(ascii: "&")
                        at += 1
                    }
                    if !pair.name.isEmpty {
                        memcpy(target + at, bytes.baseAddress! + pair.name.lowerBound, pair.name.count)
                        at += pair.name.count
                    }
                    target[at] = UInt8(ascii: "=")
                    at += 1
                    if !pair.value.isEmpty {
                        memcpy(target + at, bytes.baseAddress! + pair.value.lowerBound, pair.value.count)
                        at += pair.value.count
                    }
                }
                while i < freshPairs.count || j < sorted.pairs.count {
                    let takeFresh: Bool
                    if i == freshPairs.count {
                        takeFresh = false
                    } else if j == sorted.pairs.count {
                        takeFresh = true
                    } else {
                        let x = freshPairs[i], y = sorted.pairs[j]
                        let byName = EncodedQuery.compare(a, x.name, b, y.name)
                        takeFresh = byName != 0 ? byName < 0 : EncodedQuery.compare(a, x.value, b, y.value) <= 0
                    }
                    if takeFresh {
                        put(a, freshPairs[i])
                        i += 1
                    } else {
                        put(b, sorted.pairs[j])
                        j += 1
                    }
                }
                precondition(at == length)
                out.append(contentsOf: UnsafeBufferPointer(buffer))
            }
        }
    }

    /// Appends the canonical query of `query` to `out`: each name and value encoded, the
    /// pairs sorted by encoded name, then encoded value, in byte order, joined with `&`.
    public static func appendCanonicalQuery(_ query: [(name: String, value: String)], to out: inout [UInt8]) {
        guard !query.isEmpty else { return }
        // Every pair is encoded once into one scratch buffer; the sort moves ranges.
        var scratch: [UInt8] = []
        scratch.reserveCapacity(query.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count } * 3 / 2)
        var pairs: [(name: Range<Int>, value: Range<Int>)] = []
        pairs.reserveCapacity(query.count)
        for field in query {
            let nameStart = scratch.count
            appendEncoded(field.name, to: &scratch, keepSlash: false)
            let valueStart = scratch.count
            appendEncoded(field.value, to: &scratch, keepSlash: false)
            pairs.append((nameStart..<valueStart, valueStart..<scratch.count))
        }
        scratch.withUnsafeBufferPointer { bytes in
            let base = bytes.baseAddress!
            func precedes(_ a: Range<Int>, _ b: Range<Int>) -> Bool? {
                let order = memcmp(base + a.lowerBound, base + b.lowerBound, min(a.count, b.count))
                if order != 0 { return order < 0 }
                return a.count == b.count ? nil : a.count < b.count
            }
            pairs.sort { precedes($0.name, $1.name) ?? precedes($0.value, $1.value) ?? false }
            out.reserveCapacity(out.count + bytes.count + 2 * pairs.count)
            for (i, pair) in pairs.enumerated() {
                if i > 0 { out.append(UInt8(ascii: "&")) }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[pair.name]))
                out.append(UInt8(ascii: "="))
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[pair.value]))
            }
        }
    }
}

/// Query fields encoded and sorted as the canonical query orders them (by encoded name,
/// then encoded value, in byte order), kept so that fields constant over many requests
/// are encoded and sorted once.
struct EncodedQuery: Sendable {
    /// The encoded names and values, one after another.
    private(set) var bytes: [UInt8] = []
    /// Where each field's encoded name and value sit in `bytes`, in canonical order.
    private(set) var pairs: [(name: Range<Int>, value: Range<Int>)] = []

    init(_ query: [(name: String, value: String)]) {
        guard !query.isEmpty else { return }
        bytes.reserveCapacity(query.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count } * 3 / 2)
        pairs.reserveCapacity(query.count)
        for field in query {
            let nameStart = bytes.count
            URIEncoding.appendEncoded(field.name, to: &bytes, keepSlash: false)
            let valueStart = bytes.count
            URIEncoding.appendEncoded(field.value, to: &bytes, keepSlash: false)
            pairs.append((nameStart..<valueStart, valueStart..<bytes.count))
        }
        if pairs.count > 1 {
            bytes.withUnsafeBufferPointer { b in
                pairs.sort { x, y in
                    let byName = Self.compare(b, x.name, b, y.name)
                    return byName != 0 ? byName < 0 : Self.compare(b, x.value, b, y.value) < 0
                }
            }
        }
    }

    /// Byte order of `a[x]` against `b[y]`, a prefix first: negative, 0 or positive.
    @inline(__always)
    static func compare(_ a: UnsafeBufferPointer<UInt8>, _ x: Range<Int>, _ b: UnsafeBufferPointer<UInt8>, _ y: Range<Int>) -> Int {
        let n = min(x.count, y.count)
        if n > 0 {
            let order = memcmp(a.baseAddress! + x.lowerBound, b.baseAddress! + y.lowerBound, n)
            if order != 0 { return Int(order) }
        }
        return x.count - y.count
    }
}
