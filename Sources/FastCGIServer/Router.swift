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
    private var literal: [String: Match] = [:]
    private var patterns: [(segments: [Substring], match: Match)] = []
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
                patterns[i].match.methods[method] = MethodHandler(handler: handler)
            } else {
                patterns.append((segments, Match(pattern: "/" + segments.joined(separator: "/"), methods: [method: MethodHandler(handler: handler)])))
            }
        } else {
            literal[path, default: Match(pattern: path, methods: [:])].methods[method] = MethodHandler(handler: handler)
        }
    }

    /// Sets the function every handler runs inside (it calls the handler it is given).
    public mutating func wrapHandlers(_ wrap: @escaping @Sendable (Request, Handler) throws -> Response) {
        self.wrap = wrap
    }

    /// What a path matched: its route's pattern as it was registered
    /// (`/api/assets/{assetId}`), its handlers, and the `{name}` segments' values.
    public struct Match: Sendable {
        /// Logs and metrics label requests by it, so their labels never grow with ids.
        public let pattern: String
        fileprivate var methods: [String: MethodHandler]
        fileprivate var parameters: [String: String] = [:]
    }

    /// A handler as a dictionary holds it: in a struct, so that it is stored as the function
    /// it is. A bare closure as a dictionary's value is stored in the generic form, and each
    /// lookup wrapped it back in a thunk: an allocation and two more calls a request
    /// (callgrind).
    fileprivate struct MethodHandler: Sendable {
        let handler: Handler
    }

    /// The route `path` matches, or nil. A caller that labels the request by its pattern
    /// (the access log) matches once and passes the match to `respond(to:matched:)`.
    public func match(_ path: String) -> Match? {
        if let exact = literal[path] { return exact }
        let segments = path.split(separator: "/")
        outer: for pattern in patterns where pattern.segments.count == segments.count {
            var match = pattern.match
            for (p, s) in zip(pattern.segments, segments) {
                if p.first == "{", p.last == "}" {
                    match.parameters[String(p.dropFirst().dropLast())] = String(s)
                } else if p != s {
                    continue outer
                }
            }
            return match
        }
        return nil
    }

    /// The route's pattern that `path` matches, or nil.
    public func pattern(for path: String) -> String? {
        match(path)?.pattern
    }

    public func respond(to request: Request) -> Response {
        respond(to: request, matched: match(request.path))
    }

    /// Answers `request`, whose path matched `match` (nil: no route).
    public func respond(to request: Request, matched match: Match?) -> Response {
        do {
            let handler = try route(request, match)
            return try wrap(request, handler)
        } catch let error as HTTPError {
            return .error(error)
        } catch {
            request.logger.error("unhandled error", metadata: ["path": "\(request.path)", "error": "\(error)"])
            return .error(HTTPError(.internalServerError, "Internal error; the details are in the server log."))
        }
    }

    func route(_ request: Request, _ match: Match?) throws -> Handler {
        guard let match else { throw HTTPError(.notFound, "No route for \(request.path).") }
        if !match.parameters.isEmpty { request.parameters = match.parameters }
        guard let handler = match.methods[request.method]?.handler else {
            let allowed = match.methods.keys.sorted().joined(separator: ", ")
            throw HTTPError(.methodNotAllowed, "\(request.method) is not allowed on \(request.path); use \(allowed).", headers: [("Allow", allowed)])
        }
        return handler
    }
}
