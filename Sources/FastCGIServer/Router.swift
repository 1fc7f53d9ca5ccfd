import Logging

/// Answers one request. Handlers run on a FastCGI worker thread and may block.
public typealias Handler = @Sendable (Request) throws -> Response

/// Something that turns a request into a response: the router, or a wrapper of it.
public protocol Responder: Sendable {
    func respond(to request: Request) -> Response
}

/// Maps method and path to a handler. Paths are literal (`/s3/start-upload`) or have
/// `{name}` segments (`/api/assets/{assetId}`); a literal match wins.
public struct Router: Responder {
    private var literal: [String: [String: Handler]] = [:]
    private var patterns: [(segments: [Substring], methods: [String: Handler])] = []
    /// Runs around every handler: authentication, error mapping.
    private var wrap: @Sendable (Request, Handler) throws -> Response = { try $1($0) }

    public init() {}

    /// Routes `method` on `path` to `handler`. A GET without side effects passes
    /// `answersHEAD: true` to answer HEAD the same way (nginx drops the body); HEAD on any
    /// other route is 405, so that a HEAD can never create or change anything.
    public mutating func on(_ method: String, _ path: String, answersHEAD: Bool = false, _ handler: @escaping Handler) {
        if answersHEAD {
            precondition(method == "GET", "only a GET route can answer HEAD")
            on("HEAD", path, handler)
        }
        if path.contains("{") {
            let segments = path.split(separator: "/")
            if let i = patterns.firstIndex(where: { $0.segments == segments }) {
                patterns[i].methods[method] = handler
            } else {
                patterns.append((segments, [method: handler]))
            }
        } else {
            literal[path, default: [:]][method] = handler
        }
    }

    /// Sets the function every handler runs inside (it calls the handler it is given).
    public mutating func wrapHandlers(_ wrap: @escaping @Sendable (Request, Handler) throws -> Response) {
        self.wrap = wrap
    }

    public func respond(to request: Request) -> Response {
        do {
            let handler = try route(request)
            return try wrap(request, handler)
        } catch let error as HTTPError {
            return .error(error)
        } catch {
            request.logger.error("unhandled error", metadata: ["path": "\(request.path)", "error": "\(error)"])
            return .error(HTTPError(.internalServerError, "Internal error; the details are in the server log."))
        }
    }

    /// The route that `path` matches, as it was registered (`/api/assets/{assetId}`), or
    /// nil: logs and metrics label requests by it, so their labels never grow with ids.
    public func pattern(for path: String) -> String? {
        if literal[path] != nil { return path }
        let segments = path.split(separator: "/")
        for pattern in patterns where pattern.segments.count == segments.count {
            let matches = zip(pattern.segments, segments).allSatisfy { p, s in (p.first == "{" && p.last == "}") || p == s }
            if matches { return "/" + pattern.segments.joined(separator: "/") }
        }
        return nil
    }

    func route(_ request: Request) throws -> Handler {
        let methods: [String: Handler]?
        if let exact = literal[request.path] {
            methods = exact
        } else {
            methods = matchPattern(request)
        }
        guard let methods else { throw HTTPError(.notFound, "No route for \(request.path).") }
        guard let handler = methods[request.method] else {
            let allowed = methods.keys.sorted().joined(separator: ", ")
            throw HTTPError(.methodNotAllowed, "\(request.method) is not allowed on \(request.path); use \(allowed).", headers: [("Allow", allowed)])
        }
        return handler
    }

    private func matchPattern(_ request: Request) -> [String: Handler]? {
        let segments = request.path.split(separator: "/")
        outer: for pattern in patterns where pattern.segments.count == segments.count {
            var parameters: [String: String] = [:]
            for (p, s) in zip(pattern.segments, segments) {
                if p.first == "{", p.last == "}" {
                    parameters[String(p.dropFirst().dropLast())] = String(s)
                } else if p != s {
                    continue outer
                }
            }
            request.parameters = parameters
            return pattern.methods
        }
        return nil
    }
}
