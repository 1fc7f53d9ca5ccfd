internal import Glibc
import Locking

/// A decoded `application/x-www-form-urlencoded` query string.
/// A name given more than once keeps its first value; `values(_:)` has them all.
///
/// Split once, decoded on demand: a handler reads a few of the names, and decoding every
/// name and value into Strings cost about 5,000 instructions a presign (callgrind).
public struct QueryParameters: Sendable {
    /// The query string's UTF-8 as it came. An array, not the String: a String's bytes
    /// reached through `withContiguousStorageIfAvailable` cost ~500 instructions a lookup
    /// (an unspecialised generic call, callgrind), an array's one copy at the start ~150.
    private var raw: [UInt8]
    /// Where each field's name and value (nil without `=`) sit in `raw`'s UTF-8, and
    /// whether the name is plain: ASCII without `%` or `+`, its own decoding.
    private var fields: [Field] = []
    private typealias Field = (name: Range<Int>, value: Range<Int>?, plain: Bool)
    /// Whether `raw` holds a `%` or a `+` anywhere: when it does not, no value needs
    /// decoding, and a lookup does not look for them in its value again (two memchr calls
    /// a lookup, five lookups a presign, callgrind).
    private var escaped = false

    public init(_ query: String) {
        let utf8 = Array(query.utf8)
        var found: [Field] = []
        utf8.withUnsafeBufferPointer { Self.split($0, into: &found) }
        raw = utf8
        fields = found
        escaped = raw.withUnsafeBufferPointer(Self.holdsEscapes)
    }

    /// Each thread's spare buffers (a query's copy and its fields): a `Request` freed gives
    /// its parsed query back here, and the next query parsed on that thread (`reusing`) fills
    /// the same two arrays again instead of allocating and freeing both, as `Request.Headers`
    /// does with its own (~250 instructions an allocation and its free, ~80 to empty an array,
    /// callgrind). Copy-on-write keeps a copy that something still holds as it was.
    private static let spare = PerThread<QueryParameters?> { nil }

    /// A spare whose copy is larger than this (bytes), or whose fields array has room for more
    /// than `fieldsReuseLimit`, is not kept.
    static let reuseLimit = 16 * 1024
    static let fieldsReuseLimit = 256

    /// The query string: its bytes as a String.
    var text: String { String(decoding: raw, as: UTF8.self) }

    /// `query` parsed into the calling thread's spare buffers when it has some (else as `init`).
    static func reusing(_ query: String) -> QueryParameters {
        reusingSpare { raw in
            if query.utf8.withContiguousStorageIfAvailable({ raw.append(contentsOf: $0) }) == nil {
                raw.append(contentsOf: query.utf8)
            }
        } ?? QueryParameters(query)
    }

    /// The query string whose UTF-8 is `bytes`, valid UTF-8 (libfcgi's QUERY_STRING when it
    /// is ASCII), parsed as `reusing` parses it, without a String of it (an allocation, a
    /// validation and a free a request, ~350 instructions, callgrind).
    static func reusing(utf8 bytes: UnsafeBufferPointer<UInt8>) -> QueryParameters {
        reusingSpare { $0.append(contentsOf: bytes) } ?? QueryParameters(String(decoding: bytes, as: UTF8.self))
    }

    /// The calling thread's spare, its copy filled by `fill` and parsed; nil without a spare.
    private static func reusingSpare(_ fill: (inout [UInt8]) -> Void) -> QueryParameters? {
        let kept = spare.withValue { kept -> QueryParameters? in
            defer { kept = nil }
            return kept
        }
        guard var parameters = kept else { return nil }
        parameters.raw.removeAll(keepingCapacity: true)
        fill(&parameters.raw)
        // The fields array out of `parameters` while it is filled, so that it stays the only
        // reference to its buffer (filled in place, not copied).
        var found: [Field] = []
        swap(&found, &parameters.fields)
        found.removeAll(keepingCapacity: true)
        parameters.raw.withUnsafeBufferPointer { Self.split($0, into: &found) }
        parameters.fields = found
        parameters.escaped = parameters.raw.withUnsafeBufferPointer(Self.holdsEscapes)
        return parameters
    }

    /// Whether `bytes` hold a `%` or a `+`.
    private static func holdsEscapes(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return false }
        return memchr(base, Int32(UInt8(ascii: "%")), bytes.count) != nil || memchr(base, Int32(UInt8(ascii: "+")), bytes.count) != nil
    }

    /// Keeps `query`'s buffers as the calling thread's spare (`reusing`).
    static func keepForReuse(_ query: QueryParameters) {
        guard query.raw.capacity <= reuseLimit, query.fields.capacity <= fieldsReuseLimit else { return }
        spare.withValue { $0 = query }
    }

    /// The room in the two buffers, for tests of what a spare keeps.
    var capacities: (raw: Int, fields: Int) { (raw.capacity, fields.capacity) }

    /// The fields of the query `bytes`, appended to `fields`.
    private static func split(_ bytes: UnsafeBufferPointer<UInt8>, into fields: inout [Field]) {
        guard let base = bytes.baseAddress else { return }
        // The `&` and `=` found with memchr, and only a name's bytes looked at one by one:
        // a byte-wise scan of a presign's ~150-byte query cost ~2,300 instructions.
        func find(_ byte: UInt8, from start: Int, to end: Int) -> Int? {
            guard start < end, let found = memchr(base + start, Int32(byte), end - start) else { return nil }
            return UnsafeRawPointer(found) - UnsafeRawPointer(base)
        }
        var count = 1, at = 0
        while let amp = find(UInt8(ascii: "&"), from: at, to: bytes.count) {
            count += 1
            at = amp + 1
        }
        fields.reserveCapacity(count)
        var start = 0
        while start < bytes.count {
            let end = find(UInt8(ascii: "&"), from: start, to: bytes.count) ?? bytes.count
            if end > start {
                let equals = find(UInt8(ascii: "="), from: start, to: end)
                let name = start..<(equals ?? end)
                let plain = !UnsafeBufferPointer(rebasing: bytes[name]).contains {
                    $0 >= 0x80 || $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+")
                }
                fields.append((name, equals.map { ($0 + 1)..<end }, plain))
            }
            start = end + 1
        }
    }

    /// Every name and value, decoded, in their order.
    public var pairs: [(name: String, value: String)] {
        withBytes { bytes in
            fields.map { field in
                (Self.decode(UnsafeBufferPointer(rebasing: bytes[field.name])),
                 field.value.map { Self.decode(UnsafeBufferPointer(rebasing: bytes[$0])) } ?? "")
            }
        }
    }

    public subscript(name: String) -> String? {
        guard !fields.isEmpty else { return nil }
        var contiguous = name
        return contiguous.withUTF8 { asked in
            first(asked, askedPlain: asked.allSatisfy { $0 < 0x80 }, name)
        }
    }

    /// `self[name]` of a literal name: its bytes at hand and known ASCII or not at compile
    /// time, where a String's cost a `withUTF8` closure and a scan a lookup (five a presign).
    public func value(_ name: StaticString) -> String? {
        guard !fields.isEmpty else { return nil }
        return first(UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount), askedPlain: name.isASCII, name.description)
    }

    /// The first value of the name whose UTF-8 is `asked` (`askedPlain`: all of it ASCII),
    /// decoded; nil when the name is absent.
    private func first(_ asked: UnsafeBufferPointer<UInt8>, askedPlain: Bool, _ name: @autoclosure () -> String) -> String? {
        withBytes { bytes in
            for field in fields where Self.matches(field.name, plain: field.plain, in: bytes, asked, askedPlain, name()) {
                return field.value.map { decodeValue(UnsafeBufferPointer(rebasing: bytes[$0])) } ?? ""
            }
            return nil
        }
    }

    /// The first `name`'s value as it was sent, not decoded (empty without `=`; nil when
    /// `name` is absent), for a caller that can use the bytes themselves when they hold no
    /// `%` or `+` (the access log's ids) without a String made of them. The bytes live
    /// only as long as the call. Not generic: a caller in another module would run a
    /// generic unspecialised (~250 instructions a call, callgrind).
    public func withRawValue(_ name: StaticString, _ body: (UnsafeBufferPointer<UInt8>?) -> Void) {
        guard !fields.isEmpty else { return body(nil) }
        let asked = UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
        withBytes { bytes in
            let askedPlain = name.isASCII
            for field in fields where Self.matches(field.name, plain: field.plain, in: bytes, asked, askedPlain, name.description) {
                return body(field.value.map { UnsafeBufferPointer(rebasing: bytes[$0]) } ?? UnsafeBufferPointer(start: nil, count: 0))
            }
            body(nil)
        }
    }

    public func values(_ name: String) -> [String] {
        guard !fields.isEmpty else { return [] }
        var contiguous = name
        return contiguous.withUTF8 { asked in
            all(asked, askedPlain: asked.allSatisfy { $0 < 0x80 }, name)
        }
    }

    /// `values(name)` of a literal name (`value(_:)`).
    public func values(_ name: StaticString) -> [String] {
        guard !fields.isEmpty else { return [] }
        return all(UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount), askedPlain: name.isASCII, name.description)
    }

    /// Every value of the name whose UTF-8 is `asked`, decoded, in their order.
    private func all(_ asked: UnsafeBufferPointer<UInt8>, askedPlain: Bool, _ name: @autoclosure () -> String) -> [String] {
        withBytes { bytes in
            var found: [String] = []
            for field in fields where Self.matches(field.name, plain: field.plain, in: bytes, asked, askedPlain, name()) {
                found.append(field.value.map { decodeValue(UnsafeBufferPointer(rebasing: bytes[$0])) } ?? "")
            }
            return found
        }
    }

    /// `decode` of a value of this query: when the query holds no `%` or `+` at all, its
    /// bytes as they are (what `decode` would find), without looking again.
    @inline(__always)
    private func decodeValue(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        escaped ? Self.decode(bytes) : String(decoding: bytes, as: UTF8.self)
    }

    /// Whether the encoded name at `range` decodes to a String equal to `name`. Where both
    /// are plain (ASCII, and the encoded one without escapes or `+`), that is byte equality;
    /// otherwise the decoded String is compared as before (String equality is canonical
    /// equivalence).
    @inline(__always)
    private static func matches(
        _ range: Range<Int>, plain: Bool, in bytes: UnsafeBufferPointer<UInt8>,
        _ asked: UnsafeBufferPointer<UInt8>, _ askedPlain: Bool, _ name: @autoclosure () -> String
    ) -> Bool {
        if plain && askedPlain {
            return range.count == asked.count
                && (asked.isEmpty || memcmp(bytes.baseAddress! + range.lowerBound, asked.baseAddress!, asked.count) == 0)
        }
        return decode(UnsafeBufferPointer(rebasing: bytes[range])) == name()
    }

    @inline(__always)
    private func withBytes<Result>(_ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        raw.withUnsafeBufferPointer(body)
    }

    /// Percent-decoding with `+` as space. Malformed escapes are kept as they are;
    /// bytes that are not UTF-8 become U+FFFD, so that strict parsers downstream refuse them.
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        // Nothing to decode (ids, numbers, tokens): the bytes as they are, copied in one go.
        // The loop below, a byte at a time, cost ~1,000 instructions for a ~100-byte upload
        // id (callgrind); two memchr and a copy cost a few hundred. Without an escape the
        // bytes are a slice of the query String's UTF-8, so they are valid as they are.
        if let base = bytes.baseAddress, memchr(base, Int32(UInt8(ascii: "%")), bytes.count) == nil,
           memchr(base, Int32(UInt8(ascii: "+")), bytes.count) == nil {
            return String(decoding: bytes, as: UTF8.self)
        }
        // The String initialiser validates the bytes and repairs invalid UTF-8.
        return String(unsafeUninitializedCapacity: bytes.count) { out in
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
