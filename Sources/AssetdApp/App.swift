public import AssetStore
public import Foundation
public import FastCGIServer
import JSON
public import Logging
public import Media
import S3Client
import Locking

/// The routes of docs/API.md, wired to the database and the object store.
/// Handlers are synchronous: they run on FastCGI worker threads and may block.
public final class App: Sendable {
    public let configuration: Configuration
    let database: SQLiteRecordStore
    let store: any ObjectStore
    let verifier: JWTVerifier
    let detector: ContentDetector
    let logger: Logger
    let now: @Sendable () -> Date
    /// Direct uploads between their record and their object, by asset id: the reconciler
    /// leaves these alone (one assetd process owns its database).
    let directUploadsInFlight = ReadWriteLocked<Set<Int64>>([])
    /// Assets whose objects a version switch or a delete is moving right now, in this
    /// process: one at a time per asset, so that two runs of the same switch (a retried
    /// complete, the reconciler) or a switch and a delete never interleave their copies.
    let assetsInMotion = ReadWriteLocked<Set<Int64>>([])
    let readiness = ReadinessProbe()
    /// Thumbnail tasks; nil when ASSETD_THUMBNAILS is off.
    let thumbnails: ThumbnailWorker?

    public init(configuration: Configuration, database: SQLiteRecordStore, store: any ObjectStore, detector: ContentDetector,
                logger: Logger, thumbnails: ThumbnailWorker? = nil, now: @escaping @Sendable () -> Date = { Date() }) {
        self.thumbnails = thumbnails
        self.configuration = configuration
        self.database = database
        self.store = store
        self.detector = detector
        self.verifier = JWTVerifier(secret: configuration.jwtSecret)
        self.logger = logger
        self.now = now
    }

    /// A route's handler, given the caller the token names.
    typealias AuthenticatedHandler = @Sendable (Request, Principal) throws -> Response

    public func router() -> Router {
        var router = Router()
        func authenticated(_ handler: @escaping AuthenticatedHandler) -> Handler {
            { [self] request in
                let principal = try verifier.verify(authorization: request.headers["authorization"], now: now())
                return try handler(request, principal)
            }
        }
        // start-upload is a GET with a side effect (it creates an asset): it answers no HEAD.
        router.on("GET", "/s3/start-upload", authenticated(startUpload))
        router.on("GET", "/s3/get-upload-url", answersHEAD: true, authenticated(uploadPartURL))
        router.on("GET", "/s3/get-upload-urls", answersHEAD: true, authenticated(uploadPartURLs))
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
        router.on("GET", "/healthz", answersHEAD: true, health)
        router.on("GET", "/readyz", answersHEAD: true, ready)
        router.wrapHandlers { [self] request, handler in
            do {
                return try handler(request)
            } catch let error as S3Error {
                throw httpError(for: error, request: request)
            } catch let error as RecordStoreError {
                logger.error("database failed", metadata: ["path": "\(request.path)", "error": "\(error)"])
                throw HTTPError(.internalServerError, "The asset database failed; the details are in the server log.")
            }
        }
        return router
    }

    /// The status for an S3 failure: 502 with S3's code, except where S3 says the client's
    /// input was wrong.
    func httpError(for error: S3Error, request: Request) -> HTTPError {
        switch error.code {
        case "InvalidPart", "InvalidPartOrder", "EntityTooSmall":
            return HTTPError(.badRequest, "parts: S3 refused the parts (\(error.code): \(error.message)).")
        case "NoSuchUpload":
            return HTTPError(.conflict, "The upload no longer exists in S3 (aborted or expired).")
        case "Overloaded", "Unavailable":
            request.logger.warning("S3 call refused by the gate", metadata: ["path": "\(request.path)", "error": "\(error)"])
            return HTTPError(.serviceUnavailable, "S3 is not answering in time; try again in \(error.retryAfter ?? 1) s.",
                             headers: [("Retry-After", String(error.retryAfter ?? 1))])
        case "Timeout":
            logger.error("S3 timed out", metadata: ["path": "\(request.path)", "error": "\(error)"])
            return HTTPError(.gatewayTimeout, "S3 did not answer in time.", headers: [("Retry-After", "5")])
        default:
            logger.error("S3 failed", metadata: ["path": "\(request.path)", "error": "\(error)"])
            return HTTPError(.badGateway, "S3 failed: \(error.code).")
        }
    }

    // MARK: - Shared steps

    /// The workspace of a request, checked against the token: 400, then 403.
    func workspace(_ value: String?, _ principal: Principal) throws -> Int64 {
        let id = try Input.id(value, field: "workspaceId")
        try principal.authorize(id)
        return id
    }

    /// The asset, if it is in the workspace and not deleted (or being deleted); 404 otherwise.
    func asset(_ id: Int64, in workspaceID: Int64) throws -> AssetRecord {
        guard let asset = try database.asset(id: id, workspaceID: workspaceID), !asset.status.isGone else {
            throw HTTPError(.notFound, "Asset \(id) was not found in workspace \(workspaceID).")
        }
        return asset
    }

    /// The upload, if it belongs to the asset in the workspace; 404 otherwise.
    func upload(_ uploadID: String, asset assetID: Int64, in workspaceID: Int64) throws -> UploadRecord {
        guard let upload = try database.upload(uploadID: uploadID, assetID: assetID, workspaceID: workspaceID) else {
            throw HTTPError(.notFound, "Upload \(uploadID) was not found for asset \(assetID) in workspace \(workspaceID).")
        }
        return upload
    }

    /// 409 unless the upload still takes parts.
    func requirePending(_ upload: UploadRecord) throws {
        switch upload.status {
        case .pending: return
        case .completed: throw HTTPError(.conflict, "Upload \(upload.uploadID) is already completed.")
        case .aborted: throw HTTPError(.conflict, "Upload \(upload.uploadID) was aborted.")
        case .expired: throw HTTPError(.conflict, "Upload \(upload.uploadID) expired; start a new upload.")
        case .rejected: throw HTTPError(.conflict, "Upload \(upload.uploadID) was refused by its content or size check.")
        }
    }

    /// Every asset passes here once, right after its record says ready, whichever path
    /// stored it (complete-upload or the direct upload). Work that follows a stored file,
    /// such as its thumbnail, starts here.
    func assetBecameReady(_ asset: AssetRecord, logger: Logger) {
        logger.info("asset ready", metadata: [
            "asset": "\(asset.id)", "workspace": "\(asset.workspaceID)", "key": "\(asset.key)",
            "type": "\(asset.fileType)", "size": "\(asset.size ?? 0)",
        ])
        queueThumbnail(asset)
    }

    /// Runs `body` holding `assetID` (see `assetsInMotion`); 409 with Retry-After when
    /// another request or the reconciler holds it.
    func exclusively<T>(_ assetID: Int64, _ body: () throws -> T) throws -> T {
        guard assetsInMotion.write({ $0.insert(assetID).inserted }) else {
            throw HTTPError(.conflict, "Asset \(assetID) is being changed by another request; try again shortly.",
                            headers: [("Retry-After", "1")])
        }
        defer { assetsInMotion.write { _ = $0.remove(assetID) } }
        return try body()
    }

    func isInMotion(_ assetID: Int64) -> Bool { assetsInMotion.read { $0.contains(assetID) } }

    /// The metadata every object of an asset carries.
    func metadata(_ asset: AssetRecord) -> [String: String] {
        ["workspace_id": String(asset.workspaceID), "asset_id": String(asset.id)]
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

    func presign(_ method: String, key: String, query: [(String, String)] = [], expires: Int) -> String {
        store.presignedURL(method: method, key: key, query: query, expires: expires, date: now())
    }

    // MARK: - Health

    /// Liveness: the process serves requests. No database and no S3 call, so that a slow
    /// dependency never gets a healthy process restarted.
    @Sendable func health(_ request: Request) throws -> Response {
        .json(["ok": true])
    }

    /// Readiness: the database and S3 answer, from a probe cached for a few seconds (one
    /// request probes at a time; the others read the last result). Names no bucket.
    @Sendable func ready(_ request: Request) throws -> Response {
        let state = readiness.current { [self] in probeDependencies() }
        let body: JSONValue = ["ok": .bool(state.ok), "database": .bool(state.database), "s3": .bool(state.s3)]
        guard state.ok else {
            return .json(body, status: .serviceUnavailable).adding(("Retry-After", "5"))
        }
        return .json(body)
    }

    func probeDependencies() -> ReadinessProbe.State {
        var database = true, s3 = true
        do {
            try self.database.ping()
        } catch {
            logger.error("readiness: the database failed", metadata: ["error": "\(error)"])
            database = false
        }
        do {
            s3 = try store.bucketExists()
            if !s3 { logger.error("readiness: the bucket does not exist") }
        } catch {
            logger.error("readiness: S3 failed", metadata: ["error": "\(error)"])
            s3 = false
        }
        return .init(database: database, s3: s3)
    }
}
