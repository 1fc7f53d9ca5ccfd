public import AssetStore
public import FastCGIServer
import Foundation
import JSON
public import Logging
import S3Client

/// The HTTP face of the service: the route table, and the one place where domain, S3 and
/// database errors become statuses. Each handler parses and authorizes its request, calls
/// one method of `AssetService`, and encodes the answer (docs/API.md has the shapes).
/// Handlers are synchronous: they run on FastCGI worker threads and may block.
public final class Routes: Sendable {
    public let service: AssetService
    let verifier: JWTVerifier
    let readiness: ReadinessProbe
    let cursors: ListCursor
    var configuration: Configuration { service.configuration }
    var logger: Logger { service.logger }

    /// `readinessMaxAge`: how long /readyz answers from its last probe.
    public init(service: AssetService, readinessMaxAge: Duration = .seconds(5)) {
        self.service = service
        self.readiness = ReadinessProbe(maxAge: readinessMaxAge)
        self.verifier = JWTVerifier(secrets: service.configuration.jwtSecrets)
        self.cursors = ListCursor(secrets: service.configuration.jwtSecrets)
    }

    /// A route's handler, given the caller the token names.
    typealias AuthenticatedHandler = @Sendable (Request, Principal) throws -> Response

    public func router() -> Router {
        var router = Router()
        func authenticated(_ handler: @escaping AuthenticatedHandler) -> Handler {
            { [self] request in
                let principal = try request.headers.withValue("authorization") { try verifier.verify(authorizationBytes: $0, now: service.now()) }
                return try handler(request, principal)
            }
        }
        // GETs with a side effect answer no HEAD: start-upload creates an asset, and the
        // part URLs record the MD5 each part is signed for.
        router.on("GET", "/s3/start-upload", authenticated(startUpload))
        router.on("GET", "/s3/get-upload-url", authenticated(uploadPartURL))
        router.on("GET", "/s3/get-upload-urls", authenticated(uploadPartURLs))
        router.on("GET", "/s3/list-parts", answersHEAD: true, authenticated(listParts))
        router.on("POST", "/s3/complete-upload", authenticated(completeUpload))
        router.on("POST", "/s3/abort-upload", authenticated(abortUpload))
        router.on("GET", "/s3/download-url", answersHEAD: true, authenticated(downloadURL))
        router.on("DELETE", "/s3/delete", authenticated(deleteAsset))
        router.on("POST", "/api/assets/upload", authenticated(directUpload))
        // nginx asks this (auth_request) before it reads a direct upload's body.
        router.on("GET", "/api/assets/upload/authorize", answersHEAD: true, authorizeDirectUpload)
        router.on("GET", "/api/assets", answersHEAD: true, authenticated(listAssets))
        router.on("GET", "/api/assets/{assetId}", answersHEAD: true, authenticated(getAsset))
        router.on("PATCH", "/api/assets/{assetId}", authenticated(describeAsset))
        router.on("GET", "/healthz", answersHEAD: true, health)
        router.on("GET", "/readyz", answersHEAD: true, ready)
        router.wrapHandlers { [self] request, handler in
            do {
                return try handler(request)
            } catch let error as AssetError {
                throw httpError(for: error, request: request)
            } catch let error as S3Error {
                throw httpError(for: error, request: request)
            } catch RecordStoreError.unavailable(let reason) {
                request.logger.error("database unavailable", metadata: ["path": "\(request.path)", "error": "\(reason)"])
                // SQLSTATE 57014: the statement ran out its ASSETD_DATABASE_STATEMENT_TIMEOUT
                // (a search over a crowded corpus on PostgreSQL, say), and was cancelled.
                let message = reason.contains("SQLSTATE 57014")
                    ? "The query took longer than the asset database allows; try again shortly, or narrow it."
                    : "The asset database is not answering; try again shortly."
                throw HTTPError(.serviceUnavailable, message, headers: [("Retry-After", "2")])
            } catch let error as RecordStoreError {
                request.logger.error("database failed", metadata: ["path": "\(request.path)", "error": "\(error)"])
                throw HTTPError(.internalServerError, "The asset database failed; the details are in the server log.")
            }
        }
        return router
    }

    // MARK: - Errors to statuses, in one place

    func httpError(for error: AssetError, request: Request) -> HTTPError {
        switch error {
        case .invalid(let message): HTTPError(.badRequest, message)
        case .notFound(let message): HTTPError(.notFound, message)
        case .conflict(let message, let retryAfter?): HTTPError(.conflict, message, headers: [("Retry-After", String(retryAfter))])
        case .conflict(let message, nil): HTTPError(.conflict, message)
        case .refusedContent(let message): HTTPError(.unsupportedMediaType, message)
        case .tooLarge(let message): HTTPError(.payloadTooLarge, message)
        case .internalFailure(let message): HTTPError(.internalServerError, message)
        }
    }

    /// An S3 failure that the service did not turn into a domain error: 503 when the gate
    /// refused the call, 502 otherwise (CONTRACT.md: "502 S3 failed"): with Retry-After when
    /// S3 did not answer in time, with S3's code when it answered with an error.
    func httpError(for error: S3Error, request: Request) -> HTTPError {
        switch error {
        case .refused(_, let retryAfter):
            request.logger.warning("S3 call refused by the gate", metadata: ["path": "\(request.path)", "error": "\(error)"])
            return HTTPError(.serviceUnavailable, "S3 is not answering in time; try again in \(retryAfter) s.",
                             headers: [("Retry-After", String(retryAfter))])
        case .timeout:
            request.logger.error("S3 timed out", metadata: ["path": "\(request.path)", "error": "\(error)"])
            return HTTPError(.badGateway, "S3 did not answer in time; try again shortly.", headers: [("Retry-After", "5")])
        case .service, .network, .malformed, .local:
            request.logger.error("S3 failed", metadata: ["path": "\(request.path)", "error": "\(error)"])
            return HTTPError(.badGateway, "S3 failed: \(error.label).")
        }
    }

    // MARK: - Parsing shared by the routes

    /// The workspace of a request, checked against the token: 400, then 403.
    func workspace(_ value: String?, _ principal: Principal) throws -> Int64 {
        let id = try Input.id(value, field: "workspaceId")
        try principal.authorize(id)
        return id
    }

    func jsonBody(_ request: Request) throws -> JSONValue {
        let bytes = try request.readBody(limit: configuration.maxJSONBodyBytes)
        guard !bytes.isEmpty else { throw HTTPError(.badRequest, "The request body must be a JSON object.") }
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes)
        } catch {
            throw HTTPError(.badRequest, "The request body is not valid JSON: \(error.description).")
        }
        guard case .object = value else { throw HTTPError(.badRequest, "The request body must be a JSON object.") }
        return value
    }
}
