public import JSON

/// A complete answer: status, headers and body, written in one piece.
public struct Response: Sendable {
    public var status: HTTPStatus
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(status: HTTPStatus = .ok, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A JSON answer.
    public static func json(_ value: JSONValue, status: HTTPStatus = .ok) -> Response {
        Response(status: status, headers: jsonHeaders, body: value.serialized())
    }

    /// A JSON answer whose body the caller wrote (a hot route's, without a `JSONValue`).
    public static func json(serialized body: [UInt8], status: HTTPStatus = .ok) -> Response {
        Response(status: status, headers: jsonHeaders, body: body)
    }

    /// A JSON answer's headers, made once: an array literal is a new array each time.
    static let jsonHeaders = [("Content-Type", "application/json")]

    /// This answer with one more header.
    public func adding(_ header: (String, String)) -> Response {
        var copy = self
        copy.headers.append(header)
        return copy
    }

    /// The JSON form of an error: `{"error": "..."}`.
    public static func error(_ error: HTTPError) -> Response {
        var response = json(["error": .string(error.message)], status: error.status)
        response.headers.append(contentsOf: error.headers)
        return response
    }

    /// The CGI response: a Status line, the headers, a blank line and the body.
    func serialized() -> [UInt8] {
        var out: [UInt8] = []
        writeHead(to: &out)
        out.append(contentsOf: body)
        return out
    }

    /// The CGI head (Status line, headers, Content-Length, blank line) into `out`, which is
    /// emptied first and keeps its capacity: each worker reuses one buffer.
    ///
    /// Measured first, written into scratch space of that size, then appended in one copy:
    /// a dozen `append`s into `out`, ~90 instructions each whatever their length, cost
    /// more than the bytes (callgrind). `HeadWriter` checks every write against the size.
    func writeHead(to out: inout [UInt8]) {
        var size = 8 + Self.decimalCount(status.code) + 1 + status.reason.utf8.count + 2
        // A header value never carries a line break into the stream. Every value but a
        // hostile one has none: then they are copied whole, else each one less its CR and LF.
        var lineBreaks = false
        for (name, value) in headers {
            var count = value.utf8.count
            if Self.hasLineBreak(value) {
                lineBreaks = true
                count -= value.utf8.count(where: { $0 == 0x0d || $0 == 0x0a })
            }
            size += name.utf8.count + 2 + count + 2
        }
        size += 16 + Self.decimalCount(body.count) + 4
        out.removeAll(keepingCapacity: true)
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: size) { scratch in
            var head = HeadWriter(scratch)
            head.write("Status: ")
            head.writeDecimal(status.code)
            head.write(UInt8(ascii: " "))
            head.write(status.reason)
            head.write("\r\n")
            for (name, value) in headers {
                head.write(name)
                head.write(": ")
                if lineBreaks {
                    for byte in value.utf8 where byte != 0x0d && byte != 0x0a { head.write(byte) }
                } else {
                    head.write(value)
                }
                head.write("\r\n")
            }
            head.write("Content-Length: ")
            head.writeDecimal(body.count)
            head.write("\r\n\r\n")
            precondition(head.written == size, "the head's size was measured wrong")
            out.append(contentsOf: UnsafeBufferPointer(scratch))
        }
    }

    /// How many digits `appendDecimal` writes for `value`.
    static func decimalCount(_ value: Int) -> Int {
        var count = 1, rest = value
        while rest >= 10 {
            count += 1
            rest /= 10
        }
        return count
    }

    /// Whether `value` holds a CR or LF: a scan of its contiguous bytes (the `UTF8View`'s
    /// own `contains` cost ~10 instructions a byte, callgrind).
    static func hasLineBreak(_ value: String) -> Bool {
        value.utf8.withContiguousStorageIfAvailable { bytes in bytes.contains { $0 == 0x0d || $0 == 0x0a } }
            ?? value.utf8.contains { $0 == 0x0d || $0 == 0x0a }
    }

    /// Writes into scratch space of a measured size, each write checked against it.
    struct HeadWriter {
        let buffer: UnsafeMutableBufferPointer<UInt8>
        private(set) var written = 0

        init(_ buffer: UnsafeMutableBufferPointer<UInt8>) { self.buffer = buffer }

        @inline(__always)
        mutating func write(_ bytes: UnsafeRawBufferPointer) {
            precondition(bytes.count <= buffer.count - written, "write past the measured head")
            if let source = bytes.baseAddress, !bytes.isEmpty {
                UnsafeMutableRawPointer(buffer.baseAddress! + written).copyMemory(from: source, byteCount: bytes.count)
            }
            written += bytes.count
        }

        @inline(__always)
        mutating func write(_ byte: UInt8) {
            precondition(written < buffer.count, "write past the measured head")
            buffer[written] = byte
            written += 1
        }

        @inline(__always)
        mutating func write(_ text: StaticString) {
            write(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
        }

        mutating func write(_ text: String) {
            // A native String's UTF-8 is contiguous; a bridged one's byte by byte.
            if text.utf8.withContiguousStorageIfAvailable({ write(UnsafeRawBufferPointer($0)) }) == nil {
                for byte in text.utf8 { write(byte) }
            }
        }

        /// `value`'s decimal digits, "0" for anything not positive, as `appendDecimal`.
        mutating func writeDecimal(_ value: Int) {
            guard value > 0 else { return write(UInt8(ascii: "0")) }
            let count = Response.decimalCount(value)
            precondition(count <= buffer.count - written, "write past the measured head")
            var rest = value, at = written + count
            while rest > 0 {
                at -= 1
                buffer[at] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10)
                rest /= 10
            }
            written += count
        }
    }

    /// The decimal digits of `value` (0 for anything not positive), appended to `out`.
    public static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        guard value > 0 else {
            out.append(UInt8(ascii: "0"))
            return
        }
        // Right to left into 20 bytes on the stack (Int.max has 19 digits), then one copy.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var rest = value, start = digits.count
            while rest > 0 {
                start -= 1
                digits[start] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10)
                rest /= 10
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: digits[start...]))
        }
    }
}
