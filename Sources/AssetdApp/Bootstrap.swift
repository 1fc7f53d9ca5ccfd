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
        let database = try SQLiteRecordStore(path: configuration.databasePath)
        let metrics = Metrics()
        let s3 = MeteredObjectStore(S3Client(configuration: configuration.s3(gated: true), logger: logger), metrics: metrics)
        let detector = try ContentDetector()
        let thumbnails = try thumbnailWorker(configuration, database: database, store: s3, detector: detector, logger: logger)
        let app = App(configuration: configuration, database: database, store: s3, detector: detector, logger: logger,
                      thumbnails: thumbnails)
        // ASSETD_SOCKET, else a socket from systemd (LISTEN_FDS), else one on standard input.
        let listen: FastCGIServer.Listen
        if let path = configuration.socketPath {
            listen = .path(path, mode: configuration.socketMode)
        } else if let descriptor = Systemd.listenDescriptors().first {
            listen = .descriptor(descriptor)
        } else {
            listen = .standardInput
        }
        var serverConfiguration = FastCGIServer.Configuration(listen: listen, threads: configuration.threads)
        serverConfiguration.drainTimeout = .seconds(10)
        logger.info("starting", metadata: [
            "bucket": "\(configuration.bucket)", "region": "\(configuration.region)",
            "endpoint": "\(configuration.s3().endpoint)", "database": "\(configuration.databasePath)",
            "s3_concurrency": "\(configuration.s3Concurrency)", "s3_timeout_s": "\(configuration.s3Timeout)",
        ])
        Reconciler(app: app, interval: .seconds(configuration.reconcileInterval)).start()
        try thumbnails?.resume()
        let responder = AccessLog(router: app.router(), metrics: metrics, logger: logger) {
            if let open = try? database.pendingUploadCount() {
                metrics.setOpenUploads(open)
            }
        }
        try FastCGIServer(configuration: serverConfiguration, responder: responder, logger: logger).run()
        // The server drained (SIGTERM): running thumbnail tasks get the same drain time;
        // waiting ones stay pending for the next start.
        thumbnails?.stop(waitingUpTo: serverConfiguration.drainTimeout)
    }
}
