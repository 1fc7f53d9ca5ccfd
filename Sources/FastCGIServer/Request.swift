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

/// One HTTP request as nginx passed it over FastCGI.
public final class Request {
    public let method: String
    /// The decoded path (DOCUMENT_URI), without the query string.
    public let path: String
    /// The raw query string (QUERY_STRING).
    public let queryString: String
    /// Request headers by lower-case name (`authorization`, `content-type`, ...).
    public let headers: [String: String]
    public let contentLength: Int?
    public let body: BodySource
    /// Path parameters that the router matched, such as `{assetId}`.
    public internal(set) var parameters: [String: String] = [:]
    public var logger: Logger

    public private(set) lazy var query: QueryParameters = QueryParameters(queryString)

    public init(
        method: String, path: String, queryString: String = "", headers: [String: String] = [:],
        contentLength: Int? = nil, body: BodySource = BytesBody(), logger: Logger = Logger(label: "assetd.request")
    ) {
        self.method = method
        self.path = path
        self.queryString = queryString
        self.headers = headers
        self.contentLength = contentLength
        self.body = body
        self.logger = logger
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
