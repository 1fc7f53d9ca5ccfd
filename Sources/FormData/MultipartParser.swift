/// Why a multipart/form-data body was refused; `description` is one sentence for a 400.
public struct MultipartError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Receives the parts of a body as the parser finds them. Part data arrives in pieces
/// of any size; nothing is held back but the few bytes that may start a delimiter.
public protocol MultipartHandler {
    mutating func beginPart(_ headers: PartHeaders) throws
    mutating func partData(_ bytes: UnsafeRawBufferPointer) throws
    mutating func endPart() throws
}

/// A streaming multipart/form-data parser (RFC 7578, RFC 2046 §5.1). Feed it the body in
/// chunks of any size; it never holds more than one part's headers and a delimiter's
/// length of data.
public struct MultipartParser {
    /// Longest header block of one part.
    public static let maxHeaderBytes = 8 * 1024

    private enum State {
        case preamble, headers, body, epilogue
    }

    private let delimiter: [UInt8]      // "\r\n--boundary"
    private var buffer: [UInt8] = []
    private var state = State.preamble
    private var afterDelimiter = false  // a delimiter was just consumed; its line end comes next

    /// `boundary` is the Content-Type's boundary parameter.
    public init(boundary: String) throws(MultipartError) {
        guard (1...70).contains(boundary.utf8.count) else {
            throw MultipartError("The multipart boundary must be 1 to 70 characters long.")
        }
        delimiter = Array("\r\n--\(boundary)".utf8)
        // The first delimiter may open the body without a CRLF before it.
        buffer = [0x0d, 0x0a]
    }

    /// The boundary of a `multipart/form-data; boundary=...` Content-Type; nil otherwise.
    public static func boundary(contentType: String?) -> String? {
        guard let contentType else { return nil }
        let pieces = HeaderParameters.split(contentType)
        guard pieces.value.lowercased() == "multipart/form-data", let boundary = pieces.parameters["boundary"], !boundary.isEmpty else {
            return nil
        }
        return boundary
    }

    public var isComplete: Bool { state == .epilogue }

    public mutating func feed<Handler: MultipartHandler>(_ chunk: UnsafeRawBufferPointer, to handler: inout Handler) throws {
        if state == .epilogue { return } // whatever follows the close delimiter is ignored
        buffer.append(contentsOf: chunk)
        try process(&handler)
    }

    /// Call at the end of the body: a body that did not reach its close delimiter is truncated.
    public mutating func finish() throws(MultipartError) {
        guard state == .epilogue else {
            throw MultipartError("The multipart body is truncated: its closing boundary is missing.")
        }
    }

    private mutating func process<Handler: MultipartHandler>(_ handler: inout Handler) throws {
        var start = 0
        defer { if start > 0 { buffer.removeFirst(start) } }
        while true {
            switch state {
            case .preamble:
                guard let found = find(delimiter, from: start) else {
                    // Keep what may be the start of the delimiter.
                    start = max(start, buffer.count - (delimiter.count - 1))
                    return
                }
                start = found + delimiter.count
                afterDelimiter = true
                state = .headers
            case .headers:
                if afterDelimiter {
                    // After a delimiter: "--" closes the body (a CRLF after it is optional);
                    // otherwise optional spaces, then CRLF.
                    guard buffer.count - start >= 2 else { return }
                    if buffer[start] == 0x2d && buffer[start + 1] == 0x2d {
                        state = .epilogue
                        start = buffer.count
                        return
                    }
                    guard let lineEnd = lineEnd(from: start) else {
                        if buffer.count - start > 256 { throw MultipartError("A multipart boundary line is malformed.") }
                        return
                    }
                    let line = buffer[start..<lineEnd]
                    guard line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) else {
                        throw MultipartError("A multipart boundary line is malformed.")
                    }
                    // Keep the boundary line's CRLF: the header block is CRLF ... CRLF CRLF.
                    start = lineEnd
                    afterDelimiter = false
                }
                guard let end = find([0x0d, 0x0a, 0x0d, 0x0a], from: start) else {
                    if buffer.count - start > Self.maxHeaderBytes {
                        throw MultipartError("A multipart part's headers are longer than \(Self.maxHeaderBytes) bytes.")
                    }
                    return
                }
                let headerBytes = end > start ? Array(buffer[(start + 2)..<end]) : []
                guard headerBytes.count <= Self.maxHeaderBytes else {
                    throw MultipartError("A multipart part's headers are longer than \(Self.maxHeaderBytes) bytes.")
                }
                try handler.beginPart(try PartHeaders(parsing: headerBytes))
                start = end + 4
                state = .body
            case .body:
                if let found = find(delimiter, from: start) {
                    if found > start { try emit(start..<found, &handler) }
                    try handler.endPart()
                    start = found + delimiter.count
                    afterDelimiter = true
                    state = .headers
                } else {
                    let safe = buffer.count - (delimiter.count - 1)
                    if safe > start {
                        try emit(start..<safe, &handler)
                        start = safe
                    }
                    return
                }
            case .epilogue:
                start = buffer.count
                return
            }
        }
    }

    private func emit<Handler: MultipartHandler>(_ range: Range<Int>, _ handler: inout Handler) throws {
        try buffer.withUnsafeBytes { try handler.partData(UnsafeRawBufferPointer(rebasing: $0[range])) }
    }

    private func lineEnd(from start: Int) -> Int? {
        find([0x0d, 0x0a], from: start)
    }

    /// The first `needle` in the buffer at or after `start`. memchr finds each candidate
    /// first byte (at memory speed: a part's data is scanned once, and a megabyte of it
    /// took a byte-by-byte loop about a millisecond), then memcmp checks the rest.
    private func find(_ needle: [UInt8], from start: Int) -> Int? {
        guard buffer.count - start >= needle.count else { return nil }
        return buffer.withUnsafeBytes { haystack -> Int? in
            needle.withUnsafeBytes { pattern -> Int? in
                let base = haystack.baseAddress!
                let first = Int32(pattern[0])
                let last = haystack.count - pattern.count  // the last offset a match may start at
                var i = start
                while i <= last {
                    guard let hit = memchr(base + i, first, last - i + 1) else { return nil }
                    i = base.distance(to: UnsafeRawPointer(hit))
                    if memcmp(base + i, pattern.baseAddress!, pattern.count) == 0 { return i }
                    i += 1
                }
                return nil
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
