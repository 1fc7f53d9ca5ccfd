/// An error that is meant for the client: rendered as `{"error": message}` with `status`.
/// Any other error thrown by a handler becomes a logged 500 whose text is not shown.
public struct HTTPError: Error, Sendable, CustomStringConvertible {
    public let status: HTTPStatus
    public let message: String
    public var headers: [(String, String)]

    public init(_ status: HTTPStatus, _ message: String, headers: [(String, String)] = []) {
        self.status = status
        self.message = message
        self.headers = headers
    }

    public var description: String { "\(status.code) \(message)" }
}
