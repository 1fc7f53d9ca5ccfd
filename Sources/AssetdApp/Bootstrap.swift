import AssetStore
import FastCGIServer
import Media
import Foundation
public import Logging
import S3Client

/// Start-up: the steps `assetd serve` and `assetd setup-bucket` run, in order.
public enum Bootstrap {
    /// A logger for the whole process, on standard error (journald reads it there).
    public static func logger(level: String) -> Logger {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = Logger.Level(rawValue: level) ?? .info
            return handler
        }
        var logger = Logger(label: "assetd")
        logger.logLevel = Logger.Level(rawValue: level) ?? .info
        return logger
    }

    public static func serve(_ configuration: Configuration, logger: Logger) throws {
        try FileManager.default.createDirectory(atPath: configuration.tmpDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let database = try AssetDatabase(path: configuration.databasePath)
        let s3 = S3Client(configuration: configuration.s3(gated: true), logger: logger)
        let detector = try ContentDetector()
        let thumbnails = try thumbnailWorker(configuration, database: database, store: s3, detector: detector, logger: logger)
        let app = App(configuration: configuration, database: database, store: s3, detector: detector, logger: logger,
                      thumbnails: thumbnails)
        let listen: FastCGIServer.Listen = configuration.socketPath.map { .path($0, mode: configuration.socketMode) } ?? .standardInput
        var serverConfiguration = FastCGIServer.Configuration(listen: listen, threads: configuration.threads)
        serverConfiguration.drainTimeout = .seconds(10)
        logger.info("starting", metadata: [
            "bucket": "\(configuration.bucket)", "region": "\(configuration.region)",
            "endpoint": "\(configuration.s3().endpoint)", "database": "\(configuration.databasePath)",
            "s3_concurrency": "\(configuration.s3Concurrency)", "s3_timeout_s": "\(configuration.s3Timeout)",
        ])
        Reconciler(app: app, interval: .seconds(configuration.reconcileInterval)).start()
        try thumbnails?.resume()
        try FastCGIServer(configuration: serverConfiguration, responder: app.router(), logger: logger).run()
        // The server drained (SIGTERM): running thumbnail tasks get the same drain time;
        // waiting ones stay pending for the next start.
        thumbnails?.stop(waitingUpTo: serverConfiguration.drainTimeout)
    }

    public static func setUpBucket(_ configuration: Configuration, logger: Logger) throws {
        let s3 = S3Client(configuration: configuration.s3(), logger: logger)
        if try s3.bucketExists() {
            logger.info("bucket exists", metadata: ["bucket": "\(configuration.bucket)"])
        } else {
            try s3.createBucket()
            logger.info("bucket created", metadata: ["bucket": "\(configuration.bucket)"])
        }
        try s3.putBucketCORS([S3Client.CORSRule(allowedOrigins: configuration.corsOrigins)])
        logger.info("CORS rules applied", metadata: ["origins": "\(configuration.corsOrigins.joined(separator: ","))"])
        try s3.putAbortIncompleteUploadsRule(days: configuration.abortIncompleteDays)
        let days = try s3.abortIncompleteUploadsDays()
        guard days == configuration.abortIncompleteDays else {
            throw ConfigurationError(description: "the lifecycle rule reads back as \(days.map(String.init) ?? "missing"), not \(configuration.abortIncompleteDays) days")
        }
        logger.info("lifecycle rule applied", metadata: ["abort_incomplete_after_days": "\(configuration.abortIncompleteDays)"])
    }
}
