internal import Glibc
import Locking
public import Logging

/// Where a request body comes from: FastCGI stdin, or bytes in a test.
public protocol BodySource: AnyObject {
    /// Reads up to `buffer.count` bytes; 0 at the end of the body. Throws when the
    /// connection fails.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

/// A body held in memory, for tests and empty requests.
public final class BytesBody: BodySource {
    private var bytes: [UInt8]
    private var offset = 0

    public init(_ bytes: [UInt8] = []) { self.bytes = bytes }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buffer.count, bytes.count - offset)
        guard n > 0 else { return 0 }
        bytes.withUnsafeBytes { source in
            buffer.baseAddress!.copyMemory(from: source.baseAddress! + offset, byteCount: n)
        }
        offset += n
        return n
    }
}

/// The body of a `Request` kept past its response (`Request.body`): nothing.
final class ClosedBody: BodySource, Sendable {
    static let shared = ClosedBody()
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int { 0 }
}

/// One HTTP request as nginx passed it over FastCGI.
public final class Request {
    public let method: String
    /// The decoded path (DOCUMENT_URI), without the query string.
    public let path: String
    /// The raw query string (QUERY_STRING).
    public var queryString: String { queryText ?? query.text }
    /// The query string as it was given as a String; nil when `makeRequest` parsed it at
    /// once from libfcgi's bytes (ASCII: their String is those bytes), whose parse holds them.
    private let queryText: String?
    /// Request headers by lower-case name (`authorization`, `content-type`, ...).
    public let headers: Headers
    public let contentLength: Int?
    /// Where the body is read from. FastCGI stdin only while this request's worker has not
    /// begun serving another: after that, an empty body, so that a `Request` kept past its
    /// response never reads another client's body (review14 S1). Read it through this
    /// property each time; the source itself is not to be kept.
    public var body: BodySource {
        if let input, input.generation != generation { return ClosedBody.shared }
        return source
    }
    private let source: BodySource
    /// `source` when it is the worker's FastCGI stdin, and the request it was serving then.
    private let input: FastCGIInput?
    private let generation: Int
    /// Path parameters that the router matched, such as `{assetId}`.
    public internal(set) var parameters: [String: String] {
        get { storedParameters }
        set { storedParameters = newValue }
    }
    /// `parameters`, not checked for exclusive access at run time: a `Request` is not
    /// Sendable (one thread), the router sets it once before the handler runs, and no
    /// access to it overlaps another (each read for the access line cost a
    /// `swift_beginAccess`, ~63 instructions, callgrind). Behind a computed property: a
    /// stored one read from another module is checked whatever its attribute says.
    @exclusivity(unchecked) private var storedParameters: [String: String] = [:]
    public var logger: Logger

    /// The query string's fields, parsed on first use (into the thread's spare buffers:
    /// `QueryParameters.reusing`).
    public var query: QueryParameters {
        if let parsedQuery { return parsedQuery }
        let parsed = QueryParameters.reusing(queryText ?? "")
        parsedQuery = parsed
        return parsed
    }
    private var parsedQuery: QueryParameters?

    public convenience init(
        method: String, path: String, queryString: String = "", headers: [String: String] = [:],
        contentLength: Int? = nil, body: BodySource = BytesBody(), logger: Logger = Logger(label: "assetd.request")
    ) {
        self.init(method: method, path: path, queryString: queryString, headers: Headers(headers),
                  contentLength: contentLength, source: body, input: nil, logger: logger)
    }

    /// A request of FastCGI `input`, made while its worker serves it (`makeRequest`).
    convenience init(
        method: String, path: String, queryString: String, headers: Headers,
        contentLength: Int?, input: FastCGIInput, logger: Logger
    ) {
        self.init(method: method, path: path, queryString: queryString, headers: headers,
                  contentLength: contentLength, source: input, input: input, logger: logger)
    }

    private init(
        method: String, path: String, queryString: String?, parsedQuery: QueryParameters? = nil, headers: Headers,
        contentLength: Int?, source: BodySource, input: FastCGIInput?, logger: Logger
    ) {
        self.method = method
        self.path = path
        self.queryText = queryString
        self.parsedQuery = parsedQuery
        self.headers = headers
        self.contentLength = contentLength
        self.source = source
        self.input = input
        self.generation = input?.generation ?? 0
        self.logger = logger
    }

    /// A request of FastCGI `input` whose query string is already parsed (`makeRequest`,
    /// from ASCII bytes): no String is made of it unless `queryString` is read.
    convenience init(
        method: String, path: String, parsedQuery: QueryParameters, headers: Headers,
        contentLength: Int?, input: FastCGIInput, logger: Logger
    ) {
        self.init(method: method, path: path, queryString: nil, parsedQuery: parsedQuery, headers: headers,
                  contentLength: contentLength, source: input, input: input, logger: logger)
    }

    /// Gives the header buffers and the query's to this thread's next request
    /// (`Headers.reused`, `QueryParameters.reusing`).
    deinit {
        Headers.keepForReuse(headers)
        if let parsedQuery { QueryParameters.keepForReuse(parsedQuery) }
    }

    /// Reads the whole body into memory, refusing more than `limit` bytes with 413.
    /// Only for small bodies (JSON); uploads stream through `body`.
    public func readBody(limit: Int) throws -> [UInt8] {
        if let length = contentLength, length > limit {
            throw HTTPError(.payloadTooLarge, "The request body is larger than \(limit) bytes.")
        }
        var out: [UInt8] = []
        out.reserveCapacity(max(0, min(contentLength ?? 4096, limit)))
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let n = try chunk.withUnsafeMutableBytes { try body.read(into: $0) }
            if n == 0 { break }
            guard out.count + n <= limit else {
                throw HTTPError(.payloadTooLarge, "The request body is larger than \(limit) bytes.")
            }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }
}

extension Request {
    /// Request headers by lower-case name, as a dictionary answers them (the last of a
    /// repeated name wins), kept as bytes: a request's dozen headers became two Strings
    /// each and a dictionary entry, of which a handler reads two or three (callgrind).
    public struct Headers: Sendable {
        /// Names and values, one after another.
        private var bytes: [UInt8] = []
        /// Where each name and value sit in `bytes`, and whether the name is ASCII.
        private var fields: [(name: Range<Int>, value: Range<Int>, ascii: Bool)] = []

        init(capacity: Int) {
            bytes.reserveCapacity(capacity)
            fields.reserveCapacity(16)
        }

        public init(_ headers: [String: String]) {
            for (name, value) in headers {
                append(name: name.utf8, value: value.utf8)
            }
        }

        mutating func append(name: some Collection<UInt8>, value: some Collection<UInt8>) {
            let start = bytes.count
            bytes.append(contentsOf: name)
            let middle = bytes.count
            bytes.append(contentsOf: value)
            fields.append((start..<middle, middle..<bytes.count, name.allSatisfy { $0 < 0x80 }))
        }

        /// Each thread's spare buffers: a `Request` freed gives its headers back here, and
        /// the next request on that thread (`reused`) fills the same two arrays again, rather
        /// than allocate them and free them each time (four malloc and free calls, ~850
        /// instructions a presign, callgrind). A buffer another copy still holds is not
        /// reused in place: `removeAll(keepingCapacity:)` makes a new one then, as any array
        /// would. The value is the calling thread's own, so it needs no lock.
        private static let spare = PerThread<Headers?> { nil }

        /// Spare buffers no larger than this are kept (bytes; a request with huge headers
        /// does not leave its buffer to every later request of its thread).
        static let reuseLimit = 16 * 1024
        /// Nor a fields array with room for more headers than this: 40 bytes each, so at
        /// most 10 KB (nginx passes up to 64 KB of header lines, thousands of empty ones).
        static let fieldsReuseLimit = 256

        /// Empty headers for a new request: the calling thread's spare buffers, emptied,
        /// when it has some; else new ones with room for `capacity` bytes.
        static func reused(capacity: Int) -> Headers {
            let kept = spare.withValue { kept -> Headers? in
                defer { kept = nil }
                return kept
            }
            guard var headers = kept else { return Headers(capacity: capacity) }
            headers.bytes.removeAll(keepingCapacity: true)
            headers.fields.removeAll(keepingCapacity: true)
            return headers
        }

        /// Keeps `headers`' buffers as the calling thread's spare (`reused`).
        static func keepForReuse(_ headers: Headers) {
            guard headers.bytes.capacity <= reuseLimit, headers.fields.capacity <= fieldsReuseLimit else { return }
            spare.withValue { $0 = headers }
        }

        /// Appends a header as libfcgi holds it, `USER_AGENT=value` (from after nginx's
        /// `HTTP_`), in one copy: `nameCount` bytes of CGI name, "=", then the value. The
        /// name is kept as `user-agent`; the "=" stays between name and value, in neither
        /// range. (Name and value copied apart were two `append(contentsOf:)`, ~90
        /// instructions each, for a dozen headers a request: callgrind.)
        mutating func append(cgiEntry entry: UnsafeBufferPointer<UInt8>, nameCount: Int) {
            precondition(nameCount < entry.count && entry[nameCount] == UInt8(ascii: "="), "a CGI entry is NAME=value")
            let start = bytes.count
            bytes.append(contentsOf: entry)
            let middle = start + nameCount
            let ascii = bytes.withUnsafeMutableBytes { Self.lowerCGIName(in: $0, start..<middle) }
            fields.append((start..<middle, middle + 1..<bytes.count, ascii))
        }

        /// Turns a CGI name's bytes at `range` of `buffer` into a header name in place (A-Z to
        /// a-z, "_" to "-", every other byte as it is) and answers whether they are all ASCII.
        ///
        /// Eight bytes at a time, in a `UInt64`, rather than a switch a byte: per byte, bit 7
        /// of `low + 0x3f` says "at least A" and bit 7 of `low + 0x25` says "above Z", where
        /// `low` is the byte less its bit 7 (no sum carries into the next byte: 0x7f + 0x3f <
        /// 0x100). A last word shorter than eight bytes is loaded whole when the buffer holds
        /// eight from there (the name is followed by "=" and its value) and changed only in its
        /// first bytes; otherwise byte by byte.
        static func lowerCGIName(in buffer: UnsafeMutableRawBufferPointer, _ range: Range<Int>) -> Bool {
            precondition(range.lowerBound >= 0 && range.upperBound <= buffer.count, "the name lies in the buffer")
            var ascii = true
            var i = range.lowerBound
            while i < range.upperBound {
                let left = range.upperBound - i
                guard left >= 8 || buffer.count - i >= 8 else {
                    // Fewer than eight bytes left in the whole buffer: one at a time.
                    for j in i..<range.upperBound {
                        let byte = buffer[j]
                        if byte == UInt8(ascii: "_") {
                            buffer[j] = UInt8(ascii: "-")
                        } else if byte >= UInt8(ascii: "A"), byte <= UInt8(ascii: "Z") {
                            buffer[j] = byte + 32
                        } else if byte >= 0x80 {
                            ascii = false
                        }
                    }
                    break
                }
                // The bytes of this word that belong to the name (little-endian: the low ones).
                let mask: UInt64 = left >= 8 ? ~0 : (1 << UInt64(8 * left)) - 1
                let word = UInt64(littleEndian: buffer.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                let high: UInt64 = 0x8080_8080_8080_8080
                let low = word & ~high
                let asciiBytes = ~word & high
                let upper = (low &+ 0x3f3f_3f3f_3f3f_3f3f) & ~(low &+ 0x2525_2525_2525_2525) & asciiBytes
                // A byte of `low ^ 0x5f...` is zero where the byte is "_": then bit 7 of its sum with 0x7f stays clear.
                let underscore = ~((low ^ 0x5f5f_5f5f_5f5f_5f5f) &+ 0x7f7f_7f7f_7f7f_7f7f) & asciiBytes
                // 0x20 turns A-Z into a-z; 0x72 turns "_" (0x5f) into "-" (0x2d).
                let change = ((upper >> 2) | ((underscore >> 7) &* 0x72)) & mask
                if word & high & mask != 0 { ascii = false }
                if change != 0 {
                    buffer.storeBytes(of: (word ^ change).littleEndian, toByteOffset: i, as: UInt64.self)
                }
                i += 8
            }
            return ascii
        }

        /// The value of the header `name` (lower-case), the last one given.
        public subscript(name: String) -> String? {
            let text = name
            var contiguous = name
            return contiguous.withUTF8 { asked in
                withValue(asked, text) { value in value.map { String(decoding: $0, as: UTF8.self) } }
            }
        }

        /// The bytes of the header `name` (lower-case), the last one given, or nil: for a
        /// value read on every request (the bearer token, the request id), without a String
        /// made of it. The bytes live only as long as the call. The name is a literal: its
        /// bytes are at hand, where a String's cost a closure through `withUTF8` (~500
        /// instructions a lookup, callgrind).
        public func withValue<Result>(_ name: StaticString, _ body: (UnsafeBufferPointer<UInt8>?) throws -> Result) rethrows -> Result {
            try withValue(UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount), name.description, body)
        }

        /// `withValue` of the name whose UTF-8 is `asked`; `name` is the same name as a
        /// String, for a comparison where either is not ASCII.
        private func withValue<Result>(
            _ asked: UnsafeBufferPointer<UInt8>, _ name: @autoclosure () -> String, _ body: (UnsafeBufferPointer<UInt8>?) throws -> Result
        ) rethrows -> Result {
            guard !fields.isEmpty else { return try body(nil) }
            return try bytes.withUnsafeBufferPointer { all in
                let askedASCII = asked.allSatisfy { $0 < 0x80 }
                var i = fields.count
                while i > 0 {
                    i -= 1
                    let field = fields[i]
                    // Byte equality where both are ASCII; otherwise String equality, as
                    // the dictionary's keys compared (canonical equivalence).
                    let same = askedASCII && field.ascii
                        ? field.name.count == asked.count
                            && (asked.isEmpty || memcmp(all.baseAddress! + field.name.lowerBound, asked.baseAddress!, asked.count) == 0)
                        : String(decoding: UnsafeBufferPointer(rebasing: all[field.name]), as: UTF8.self) == name()
                    if same { return try body(UnsafeBufferPointer(rebasing: all[field.value])) }
                }
                return try body(nil)
            }
        }

        /// Whether there is no header.
        public var isEmpty: Bool { fields.isEmpty }

        /// The room in the two buffers, for tests of what a spare keeps.
        var capacities: (bytes: Int, fields: Int) { (bytes.capacity, fields.capacity) }
    }
}
