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
    func writeHead(to out: inout [UInt8]) {
        out.removeAll(keepingCapacity: true)
        out.append("Status: ")
        Self.appendDecimal(status.code, to: &out)
        out.append(UInt8(ascii: " "))
        out.append(utf8: status.reason)
        out.append("\r\n")
        for (name, value) in headers {
            out.append(utf8: name)
            out.append(": ")
            // A header value never carries a line break into the stream: one without any
            // (every value but a hostile one) is copied whole.
            if value.utf8.contains(where: { $0 == 0x0d || $0 == 0x0a }) {
                for byte in value.utf8 where byte != 0x0d && byte != 0x0a { out.append(byte) }
            } else {
                out.append(utf8: value)
            }
            out.append("\r\n")
        }
        out.append("Content-Length: ")
        Self.appendDecimal(body.count, to: &out)
        out.append("\r\n\r\n")
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
