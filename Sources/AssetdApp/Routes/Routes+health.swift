import FastCGIServer
import JSON

/// Liveness and readiness.
extension Routes {
    /// Liveness: the process serves requests. No database and no S3 call, so that a slow
    /// dependency never gets a healthy process restarted.
    @Sendable func health(_ request: Request) throws -> Response {
        .json(["ok": true])
    }

    /// Readiness: the database and S3 answer, from a probe cached for a few seconds (one
    /// request probes at a time; the others read the last result). Names no bucket.
    @Sendable func ready(_ request: Request) throws -> Response {
        let state = readiness.current { [self] in service.probeDependencies() }
        let body: JSONValue = ["ok": .bool(state.ok), "database": .bool(state.database), "s3": .bool(state.s3)]
        guard state.ok else {
            return .json(body, status: .serviceUnavailable).adding(("Retry-After", "5"))
        }
        return .json(body)
    }
}

extension AssetService {
    /// Whether the database and the bucket answer now.
    func probeDependencies() -> ReadinessProbe.State {
        var database = true, s3 = true
        do {
            try records.ping()
        } catch {
            logger.error("readiness: the database failed", metadata: ["error": "\(error)"])
            database = false
        }
        do {
            s3 = try objects.bucketExists()
            if !s3 { logger.error("readiness: the bucket does not exist") }
        } catch {
            logger.error("readiness: S3 failed", metadata: ["error": "\(error)"])
            s3 = false
        }
        return .init(database: database, s3: s3)
    }
}
