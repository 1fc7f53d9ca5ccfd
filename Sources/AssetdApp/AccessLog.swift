public import FastCGIServer
public import Logging

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

    public init(router: Router, metrics: Metrics, logger: Logger, beforeScrape: @escaping @Sendable () -> Void = {}) {
        self.router = router
        self.metrics = metrics
        self.logger = logger
        self.beforeScrape = beforeScrape
    }

    public func respond(to request: Request) -> Response {
        let start = ContinuousClock.now
        let route: String
        let response: Response
        if request.path == "/metrics" {
            route = "/metrics"
            response = scrape(request)
        } else {
            route = router.pattern(for: request.path) ?? "unmatched"
            response = router.respond(to: request)
        }
        let duration = ContinuousClock.now - start
        // A method label from a fixed set: nginx passes any token, and each new label
        // value would be a series kept for ever.
        let method = Self.knownMethods.contains(request.method) ? request.method : "other"
        metrics.request(route: route, method: method, status: response.status.code, duration: duration)
        if logger.logLevel <= .info {
            logger.info("request", metadata: Self.line(request, route: route, status: response.status.code, duration: duration))
        }
        return response
    }

    static let knownMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]

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

    /// Ids as logged: digits only, at most 20, so that a log line never carries input verbatim.
    static func plainNumber(_ text: String) -> String? {
        text.utf8.count <= 20 && !text.isEmpty && text.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } ? text : nil
    }

    /// nginx's $request_id is 32 hex digits; anything else is cut to its first 64 safe characters.
    static func safeID(_ text: String) -> String {
        // ASCII tests on bytes: Unicode properties cost ~10k instructions a request here.
        String(decoding: text.utf8.prefix(64).filter { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: "-")
        }, as: UTF8.self)
    }

    private func scrape(_ request: Request) -> Response {
        guard request.method == "GET" || request.method == "HEAD" else {
            return .error(HTTPError(.methodNotAllowed, "\(request.method) is not allowed on /metrics; use GET, HEAD.", headers: [("Allow", "GET, HEAD")]))
        }
        beforeScrape()
        return Response(status: .ok, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")], body: metrics.render())
    }
}
