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
        Response(status: status, headers: [("Content-Type", "application/json")], body: value.serialized())
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
        out.reserveCapacity(body.count + 128)
        out.append(contentsOf: "Status: \(status.code) \(status.reason)\r\n".utf8)
        for (name, value) in headers {
            out.append(contentsOf: name.utf8)
            out.append(contentsOf: ": ".utf8)
            // A header value never carries a line break into the stream.
            out.append(contentsOf: value.utf8.filter { $0 != 0x0d && $0 != 0x0a })
            out.append(contentsOf: "\r\n".utf8)
        }
        out.append(contentsOf: "Content-Length: \(body.count)\r\n\r\n".utf8)
        out.append(contentsOf: body)
        return out
    }
}
