public import FastCGIServer
public import Logging
import Hashing

/// Wraps the router: answers GET /metrics, and gives every request one access-log line and
/// its metrics. The line names the method, the route pattern, the status, the duration,
/// nginx's request id (X-Request-Id, which nginx sets from $request_id) and the workspace
/// and asset when the query or the path names them. It never carries a header's value
/// other than the request id, a query string, a body or a presigned URL, so tokens,
/// signatures and secrets cannot reach the log.
public struct AccessLog: Responder {
    let router: Router
    let metrics: Metrics
    let logger: Logger
    /// Refreshes gauges that are read from elsewhere (open uploads) before a scrape.
    let beforeScrape: @Sendable () -> Void
    /// The logger's handler when it is the process's `LineLogHandler` with no metadata of
    /// its own (as `Bootstrap.logger` makes it): the line then goes straight into bytes,
    /// the same bytes `logger.info` would write, without a metadata dictionary to build,
    /// merge, sort and look up again (about 18,000 instructions a presign, callgrind).
    let lineHandler: LineLogHandler?
    /// Where the lines go when they are buffered (ASSETD_ACCESS_LOG_BUFFER): a worker's
    /// buffer, written in batches, instead of a `write(2)` a line. Only with `lineHandler`.
    let buffer: AccessLogBuffer?
    /// The access line's level, source and message as `lineHandler` writes them, made once.
    let lineParts: LineLogHandler.LineParts?

    public init(router: Router, metrics: Metrics, logger: Logger, buffer: AccessLogBuffer? = nil,
                beforeScrape: @escaping @Sendable () -> Void = {}) {
        self.router = router
        self.metrics = metrics
        self.logger = logger
        self.beforeScrape = beforeScrape
        lineHandler = (logger.handler as? LineLogHandler).flatMap { $0.metadata.isEmpty ? $0 : nil }
        self.buffer = lineHandler == nil ? nil : buffer
        lineParts = lineHandler?.lineParts(level: .info, source: Self.source, message: "request")
    }

    public func respond(to request: Request) -> Response {
        let start = ContinuousClock.now
        let route: String
        let response: Response
        if request.path == "/metrics" {
            route = "/metrics"
            response = scrape(request)
        } else {
            // One match gives the label and the handler (the path hashed once).
            let match = router.match(request.path)
            route = match?.pattern ?? "unmatched"
            response = router.respond(to: request, matched: match)
        }
        let duration = ContinuousClock.now - start
        // A method label from a fixed set: nginx passes any token, and each new label
        // value would be a series kept for ever.
        let method = Self.isKnownMethod(request.method) ? request.method : "other"
        metrics.request(route: route, method: method, status: response.status.code, duration: duration)
        // The line handler's level is the logger's (a copy of its handler, and the logger is
        // a `let`), read without the run-time exclusivity check of the logger's box.
        if (lineHandler?.logLevel ?? logger.logLevel) <= .info {
            if let lineHandler, let lineParts, let buffer {
                buffer.append { lines in
                    lineHandler.appendLine(lineParts, appendFields: { line in
                        Self.appendLine(request, route: route, status: response.status.code, duration: duration, to: &line)
                    }, to: &lines)
                }
            } else if let lineHandler, let lineParts {
                lineHandler.writeLine(lineParts) { line in
                    Self.appendLine(request, route: route, status: response.status.code, duration: duration, to: &line)
                }
            } else {
                logger.info("request", metadata: Self.line(request, route: route, status: response.status.code, duration: duration))
            }
        }
        return response
    }

    /// GET, HEAD, POST, PUT, DELETE, OPTIONS or PATCH: compared as small strings, which
    /// costs less than hashing the method into a Set on every request.
    static func isKnownMethod(_ method: String) -> Bool {
        switch method {
        case "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH": true
        default: false
        }
    }

    /// The fields of one access-log line.
    static func line(_ request: Request, route: String, status: Int, duration: Duration) -> Logger.Metadata {
        // `.string` values, not interpolations: this runs for every request.
        var fields = Logger.Metadata(minimumCapacity: 8)
        fields["method"] = .string(request.method)
        fields["route"] = .string(route)
        fields["status"] = .string(String(status))
        fields["duration_ms"] = .string(duration.milliseconds)
        fields["request_id"] = .string(request.headers["x-request-id"].map(Self.safeID) ?? "-")
        if let workspace = request.query["workspaceId"].flatMap(Self.plainNumber) { fields["workspace"] = .string(workspace) }
        if let asset = (request.parameters["assetId"] ?? request.query["assetId"]).flatMap(Self.plainNumber) { fields["asset"] = .string(asset) }
        return fields
    }

    /// The source swift-log names for a call in this file: its module.
    static let source = String(#fileID.prefix { $0 != "/" })

    /// The fields of `line`, as `LineLogHandler` lays them out (` key=value`, sorted by
    /// key, escaped), written into `out` without a dictionary.
    static func appendLine(_ request: Request, route: String, status: Int, duration: Duration, to out: inout [UInt8]) {
        // Keys in the sorted order appendFields gives them. The query read once: each
        // `Request.query` is a copy (two arrays retained and released).
        let query = request.query
        if !request.parameters.isEmpty, let asset = request.parameters["assetId"] {
            if let asset = plainNumber(asset) {
                out.append(" asset=")
                out.append(utf8: asset)
            }
        } else {
            appendNumber(query, "assetId", key: " asset=", to: &out)
        }
        out.append(" duration_ms=")
        duration.appendMilliseconds(to: &out)
        out.append(" method=")
        LineLogHandler.appendEscaped(request.method, to: &out)
        out.append(" request_id=")
        request.headers.withValue("x-request-id") { id in
            if let id {
                appendSafeID(id, to: &out)
            } else {
                out.append(UInt8(ascii: "-"))
            }
        }
        out.append(" route=")
        LineLogHandler.appendEscaped(route, to: &out)
        out.append(" status=")
        Response.appendDecimal(status, to: &out)
        appendNumber(query, "workspaceId", key: " workspace=", to: &out)
    }

    /// `key` and the query's `name` when it is a `plainNumber`, as `line` gives it, read
    /// from the query's bytes: a value without `%` or `+` is its own decoding, and only
    /// another is decoded (two Strings a request less, callgrind).
    private static func appendNumber(_ query: QueryParameters, _ name: StaticString, key: StaticString, to out: inout [UInt8]) {
        var escaped = false
        query.withRawValue(name) { raw in
            guard let raw else { return }
            if raw.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) {
                escaped = true
            } else if isPlainNumber(raw) {
                out.append(key)
                out.append(contentsOf: raw)
            }
        }
        if escaped, let number = query[name.description].flatMap(plainNumber) {
            out.append(key)
            out.append(utf8: number)
        }
    }

    /// Ids as logged: digits only, at most 20, so that a log line never carries input verbatim.
    static func plainNumber(_ text: String) -> String? {
        text.utf8.count <= 20 && !text.isEmpty && text.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } ? text : nil
    }

    /// `plainNumber` of bytes.
    private static func isPlainNumber(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        bytes.count <= 20 && !bytes.isEmpty && bytes.allSatisfy { $0 >= 48 && $0 <= 57 }
    }

    /// nginx's $request_id is 32 hex digits; anything else is cut to its first 64 safe characters.
    static func safeID(_ text: String) -> String {
        var out: [UInt8] = []
        appendSafeID(text, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// `safeID(text)`, appended to `out`.
    static func appendSafeID(_ text: String, to out: inout [UInt8]) {
        var text = text
        text.withUTF8 { appendSafeID($0, to: &out) }
    }

    /// `safeID` of a header's bytes, appended to `out`.
    static func appendSafeID(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        // ASCII tests on bytes: Unicode properties cost ~10k instructions a request here.
        // nginx's id (32 safe bytes) is copied in one append: a byte at a time cost about
        // 2,000 instructions a presign (callgrind).
        let head = UnsafeBufferPointer(rebasing: bytes.prefix(64))
        if allSafeIDBytes(head) {
            out.append(contentsOf: head)
        } else {
            for byte in head where isSafeIDByte(byte) { out.append(byte) }
        }
    }

    static func isSafeIDByte(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            || byte == UInt8(ascii: "-")
    }

    /// `isSafeIDByte` of each byte value: "1" at the index of `A-Z a-z 0-9 -`, "0" elsewhere.
    /// 256 bytes, so any byte indexes it (a test checks it against `isSafeIDByte`).
    static let safeIDTable: StaticString =
        "0000000000000000000000000000000000000000000001001111111111000000011111111111111111111111111000000111111111111111111111111110000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"

    /// `bytes.allSatisfy(isSafeIDByte)`, through the table eight bytes a step
    /// (`Encoding.allInTable`): the predicate a byte cost ~14 instructions a byte, 32 bytes a
    /// request (callgrind).
    static func allSafeIDBytes(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        Encoding.allInTable(bytes, safeIDTable)
    }

    private func scrape(_ request: Request) -> Response {
        guard request.method == "GET" || request.method == "HEAD" else {
            return .error(HTTPError(.methodNotAllowed, "\(request.method) is not allowed on /metrics; use GET, HEAD.", headers: [("Allow", "GET, HEAD")]))
        }
        beforeScrape()
        return Response(status: .ok, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")], body: metrics.render())
    }
}
