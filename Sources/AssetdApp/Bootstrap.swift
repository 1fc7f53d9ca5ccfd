import AssetStore
import CSystem
import Dispatch
import FastCGIServer
import Media
import Foundation
import Glibc
public import Logging
import S3Client
import Synchronization
import Thumbnails

/// Start-up: the steps `assetd serve` runs, in order.
public enum Bootstrap {
    /// A logger for the whole process, on standard error (journald reads it there), with
    /// control characters escaped in every field.
    public static func logger(level: String) -> Logger {
        LoggingSystem.bootstrap { label in handler(label: label, level: level) }
        var logger = Logger(label: "assetd")
        logger.logLevel = Logger.Level(rawValue: level) ?? .info
        return logger
    }

    /// The handler every logger of the process gets; `descriptor` 2 is standard error.
    static func handler(label: String, level: String, descriptor: Int32 = 2) -> LineLogHandler {
        var handler = LineLogHandler(label: label, descriptor: descriptor)
        handler.logLevel = Logger.Level(rawValue: level) ?? .info
        return handler
    }

    /// First thing `serve` does, before any setting is read: the process becomes
    /// non-dumpable, so that no other process of the same user (a decoder, ffmpeg, a
    /// compromised neighbour) can read its /proc/PID/environ or memory, or ptrace it, and
    /// no core file holds its secrets.
    public static func hideFromSameUser() {
        _ = assetd_system_set_dumpable(0)
    }

    /// One warning line naming each ASSETD_* key of the settings file or the environment
    /// that is no setting (Configuration.unknownSettings), and one naming the settings set
    /// that this configuration does not use (Configuration.ignoredSettings); names only,
    /// never a value.
    public static func warnOfUnknownSettings(_ configuration: Configuration, logger: Logger) {
        if let list = configuration.unknownSettingsList {
            logger.warning("unknown settings, ignored: \(list); check their spelling in docs/CONFIGURATION.md")
        }
        if let list = configuration.ignoredSettingsList {
            logger.warning("settings without effect here: \(list)")
        }
    }

    public static func serve(_ configuration: Configuration, logger: Logger) throws {
        hideFromSameUser()
        try FileManager.default.createDirectory(atPath: configuration.tmpDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let records = try openRecords(configuration, logger: logger)
        let metrics = Metrics()
        var s3Configuration = configuration.s3(gated: true)
        s3Configuration.observer = { operation, error, duration in
            metrics.s3Call(operation: operation, error: error?.label, duration: duration)
        }
        let s3 = S3Client(configuration: s3Configuration, logger: logger)
        let detector = try ContentDetector()
        let thumbnails = try thumbnailWorker(configuration, records: records, objects: s3, detector: detector, logger: logger,
                                             metrics: metrics)
        let service = AssetService(configuration: configuration, records: records, objects: s3, detector: detector, logger: logger,
                                   thumbnails: thumbnails)
        // ASSETD_SOCKET, else a socket from systemd (LISTEN_FDS), else one on standard input.
        let listen: FastCGIServer.Listen
        if let path = configuration.socketPath {
            listen = .path(path, mode: configuration.socketMode, group: configuration.socketGroup)
        } else if let descriptor = Systemd.listenDescriptors().first {
            listen = .descriptor(descriptor)
        } else {
            listen = .standardInput
        }
        // Before the first request and the first reconciler pass: whether ETags are MD5s
        // may depend on the bucket's default encryption (ASSETD_SSE unset over SSE-KMS).
        // Short deadlines (3 s a call, 5 s in all): an S3 that does not answer must not hold
        // start-up near systemd's TimeoutStartSec; the reconciler reads it again later.
        var probe = configuration.s3()
        probe.deadlines.call = .seconds(min(configuration.s3Timeout, 3))
        probe.deadlines.budget = .seconds(5)
        let bucketEncryption = service.readBucketEncryption(startUp: true, from: S3Client(configuration: probe, logger: logger))
        var serverConfiguration = FastCGIServer.Configuration(listen: listen, threads: configuration.threads)
        serverConfiguration.drainTimeout = .seconds(10)
        logger.info("starting", metadata: [
            "version": "\(AssetdVersion.current)",
            "bucket": "\(configuration.bucket)", "region": "\(configuration.region)",
            "endpoint": "\(configuration.s3().endpoint)", "database": "\(DatabaseLocation.redacted(configuration.databasePath))",
            "s3_concurrency": "\(configuration.s3Concurrency)", "s3_timeout_s": "\(configuration.s3Timeout)",
            "sse": "\(configuration.serverSideEncryption)", "bucket_sse": "\(bucketEncryption)",
            "etags": "\(service.encryptionKeepsMD5ETags ? "md5" : "not md5")",
            // Only a count: a rotation left unfinished shows, never a secret.
            "jwt_accepted_secrets": "\(configuration.jwtAcceptedSecrets.count)",
        ])
        Reconciler(service: service, interval: .seconds(configuration.reconcileInterval),
                   grace: .seconds(configuration.reconcileGrace), fleet: records as? any FleetCoordination, metrics: metrics).start()
        try thumbnails?.resume()
        if let fleet = records as? any FleetCoordination {
            // Tasks of a host that died are taken over once their lease expires.
            thumbnails?.pollClaimable(fleet, every: .seconds(max(2, configuration.thumbnailLease / 4)))
        }
        try events(configuration, records: records, metrics: metrics, logger: logger).start()
        let accessLogBuffer = Self.accessLogBuffer(configuration, logger: logger)
        accessLogBuffer?.startFlusher()
        let responder = AccessLog(router: Routes(service: service).router(), metrics: metrics, logger: logger,
                                  buffer: accessLogBuffer) {
            scrape(metrics, records: records, service: service)
        }
        // The access lines still held go out once the requests in flight are done, before
        // the server's last line ("drained; exiting").
        serverConfiguration.afterDrain = { accessLogBuffer?.flush() }
        try FastCGIServer(configuration: serverConfiguration, responder: responder, logger: logger).run()
        // The server drained (SIGTERM): running thumbnail tasks get the same drain time;
        // waiting ones stay pending for the next start.
        thumbnails?.stop(waitingUpTo: serverConfiguration.drainTimeout)
        // Lines of requests that the drain's timeout abandoned, if they ended since.
        accessLogBuffer?.flush()
    }

    /// The access log's buffers (ASSETD_ACCESS_LOG_BUFFER), one a worker thread, on the
    /// process's log handler's descriptor; nil when lines are written one at a time (a
    /// buffer of 0, a level above info, or another handler).
    static func accessLogBuffer(_ configuration: Configuration, logger: Logger) -> AccessLogBuffer? {
        guard configuration.accessLogBuffer > 0, logger.logLevel <= .info,
              let handler = logger.handler as? LineLogHandler else { return nil }
        return AccessLogBuffer(capacity: configuration.accessLogBuffer, flushInterval: .seconds(configuration.accessLogFlush),
                               shards: configuration.threads, descriptor: handler.descriptor,
                               stallLimitMilliseconds: handler.stallLimit)
    }

    /// `assetd backfill-media`: reads the media of up to `limit` assets from before media
    /// metadata (MediaBackfill), printing a progress line per batch. On SQLite it takes
    /// the database's lock, so assetd must be stopped; on PostgreSQL it runs beside the
    /// fleet (each write is fenced, and a second reader of an asset writes nothing).
    /// `retryFailed`: first clears the decoder failures counted on assets (MediaBackfill.
    /// maxAttempts), so that those it gave up on are read again. Ends with a line saying
    /// how many assets it has given up on, when there are any.
    public static func backfillMedia(_ configuration: Configuration, logger: Logger, limit: Int, workspaceID: Int64?, dryRun: Bool,
                                     retryFailed: Bool = false, output: (String) -> Void) throws -> MediaBackfill.Summary {
        try FileManager.default.createDirectory(atPath: configuration.tmpDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        // A command: no upload cache (its LISTEN thread, still in libpq at exit, once
        // crashed a command there; see EventAdmin.outbox), and the backfill reads no upload.
        let records = try openRecords(configuration, logger: logger, command: true)
        let s3 = S3Client(configuration: configuration.s3(gated: true), logger: logger)
        let detector = try ContentDetector()
        guard let worker = try thumbnailWorker(configuration, records: records, objects: s3, detector: detector, logger: logger) else {
            throw ConfigurationError(description: "ASSETD_THUMBNAILS is off: the decoder that reads the media is off too")
        }
        defer { worker.stop(waitingUpTo: .seconds(1)) }
        if retryFailed {
            let given = try records.assetsGivenUpOnMedia(workspaceID: workspaceID, maxAttempts: MediaBackfill.maxAttempts)
            if dryRun {
                output("\(given) asset\(given == 1 ? "" : "s") given up on would be read again (dry run: nothing cleared)")
            } else {
                let cleared = try records.clearMediaAttempts(workspaceID: workspaceID)
                output("cleared the decoder failures counted on \(cleared) asset\(cleared == 1 ? "" : "s") (\(given) given up on): read again")
            }
        }
        let summary = try MediaBackfill(worker: worker, logger: logger).run(limit: limit, workspaceID: workspaceID, dryRun: dryRun,
                                                                             progress: output)
        let given = try records.assetsGivenUpOnMedia(workspaceID: workspaceID, maxAttempts: MediaBackfill.maxAttempts)
        if given > 0 && !(retryFailed && dryRun) {
            output("\(given) asset\(given == 1 ? "" : "s") given up on (the decoder failed on \(given == 1 ? "it" : "each") \(MediaBackfill.maxAttempts) times): "
                   + "not read; --retry-failed reads them again")
        }
        return summary
    }

    /// `assetd migrate`: opens the database, which migrates its schema (each step logged),
    /// and says where the schema is; on SQLite it takes the database's lock, so assetd must
    /// be stopped. For a migration before a restart, instead of during the start.
    public static func migrate(_ configuration: Configuration, logger: Logger) throws -> String {
        _ = try openRecords(configuration, logger: logger, command: true)
        return "the schema of \(DatabaseLocation.redacted(configuration.databasePath)) is current"
    }

    /// The gauges read at each GET /metrics.
    static func scrape(_ metrics: Metrics, records: any RecordStore, service: AssetService) {
        if let open = try? records.pendingUploadCount() {
            metrics.setOpenUploads(open)
        }
        if let backlog = try? records.eventBacklog() {
            metrics.setEventBacklog(backlog)
        }
        if let pending = try? records.pendingThumbnailCount() {
            metrics.setPendingThumbnails(pending)
        }
        metrics.setETagsMD5(service.objectETagsAreMD5)
    }

    /// The records: PostgreSQL for a postgres:// URL (any number of hosts), else SQLite at
    /// that path, which one process at a time may serve (an exclusive lock on a file
    /// beside it): a second one stops with a clear line instead of corrupting the
    /// in-process guarantees (the upload cache, the per-asset locks, the queue).
    /// `command`: for a command beside or instead of the service (`backfill-media`), with
    /// no upload cache.
    static func openRecords(_ configuration: Configuration, logger: Logger, command: Bool = false) throws -> any RecordStore {
        // Each migration step is logged with its duration, and systemd's start timeout
        // (TimeoutStartSec) is extended while they run (Type=notify).
        let keepAlive = StartTimeoutExtension()
        defer { keepAlive.stop() }
        let migrationLog: MigrationLog = { line in
            logger.info("\(line)")
            keepAlive.start()
        }
        if DatabaseLocation.isPostgres(configuration.databasePath) {
            var settings = postgresSettings(configuration, command: command)
            settings.migrationLog = migrationLog
            let store = try PostgresRecordStore(url: configuration.databasePath, settings: settings)
            logger.info("records in PostgreSQL", metadata: ["host": "\(store.hostName)", "pool": "\(settings.poolSize)",
                                                       "searches": "\(settings.searches)",
                                                       "connections": "\(store.connectionBudget)",
                                                       "max_connections": "\(store.maxConnections.map(String.init) ?? "unknown")",
                                                       "upload_cache": "\(settings.uploadCache ? "on" : "off")"])
            if let maximum = store.maxConnections, let warning = store.connectionBudget.warning(maxConnections: maximum) {
                logger.warning("\(warning)")
            }
            return store
        }
        try SingleInstanceLock.acquire(beside: configuration.databasePath)
        return try SQLiteRecordStore(path: configuration.databasePath,
                                     statementTimeout: .milliseconds(configuration.databaseStatementTimeout), migrationLog: migrationLog)
    }

    /// The PostgreSQL store's settings; a command's have no upload cache: its LISTEN
    /// thread would still be in libpq while the command exits (a SIGSEGV at exit was
    /// seen), and no command reads an upload.
    static func postgresSettings(_ configuration: Configuration, command: Bool) -> PostgresRecordStore.Settings {
        var settings = PostgresRecordStore.Settings()
        settings.poolSize = configuration.databasePool
        if configuration.databaseSearches > 0 { settings.searches = configuration.databaseSearches }
        settings.statementTimeout = .milliseconds(configuration.databaseStatementTimeout)
        settings.thumbnailLease = .seconds(configuration.thumbnailLease)
        settings.uploadCache = configuration.databaseUploadCache && !command
        return settings
    }

    /// The event dispatcher `serve` runs: a thread per webhook endpoint and for Typesense.
    static func events(_ configuration: Configuration, records: any EventOutbox, metrics: Metrics, logger: Logger) -> EventDispatcher {
        let sinks = EventDispatcher.sinks(configuration, http: HTTPClient())
        if sinks.isEmpty { logger.info("no event sinks (ASSETD_WEBHOOK_URLS, ASSETD_TYPESENSE_URL): events stay in the outbox") }
        var retention = EventDispatcher.Retention()
        retention.delivered = TimeInterval(configuration.eventRetention)
        retention.dead = TimeInterval(configuration.eventDeadRetention)
        return EventDispatcher(records: records, sinks: sinks, policy: RetryPolicy(maxAge: Double(configuration.eventMaxAge)),
                               metrics: metrics, logger: logger, lease: .seconds(configuration.eventClaimMargin), retention: retention)
    }

    /// The socket of the packaged decoder (assetd-thumbnailer.socket).
    public static let packagedDecoderSocket = "/run/assetd-thumbnailer/decoder.sock"

    /// The decoder zygote, first found first taken: ASSETD_THUMBNAILER_SOCKET; else, when
    /// ASSETD_THUMBNAILER is unset too, the packaged decoder's socket if it exists and may be
    /// trusted (`isTrustedSocket`: the assetd user running a command, `sudo -u assetd assetd
    /// backfill-media`, or root running one, `sudo assetd backfill-media`, with a settings
    /// file that names no socket: its decoders stay in their unit's sandbox, not a child of
    /// root that reads /etc/shadow); else ASSETD_THUMBNAILER (or assetd-thumbnailer beside
    /// this executable) run as assetd's own child (the dev stack and the tests, as root,
    /// without the packaged socket).
    static func decoderEndpoint(_ configuration: Configuration,
                                packagedSocket: String = packagedDecoderSocket) throws -> IsolatedThumbnailer.Endpoint {
        if let socket = configuration.thumbnailerSocket { return .socket(path: socket) }
        if configuration.thumbnailerPath == nil, isTrustedSocket(packagedSocket) { return .socket(path: packagedSocket) }
        let executable = configuration.thumbnailerPath ?? IsolatedThumbnailer.executableBesideSelf()
        guard access(executable, X_OK) == 0 else {
            throw ConfigurationError(description: "the decoder \(executable) is not an executable (ASSETD_THUMBNAILER)")
        }
        return .spawn(executable: executable)
    }

    /// Whether `path` is a unix socket this process may hand files to: one owned by its
    /// effective user; or, for root, one whose directory and every directory above it belong
    /// to root and are writable by nobody else (the packaged socket is the assetd user's, in
    /// /run/assetd-thumbnailer, which systemd makes root's, mode 0755), so that no other user
    /// could have put it there, or could swap it or a directory on its path.
    static func isTrustedSocket(_ path: String, user: uid_t = geteuid()) -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK else { return false }
        if info.st_uid == user { return true }
        guard user == 0, path.hasPrefix("/") else { return false }
        var directory = (path as NSString).deletingLastPathComponent
        while true {
            var parent = stat()
            guard lstat(directory, &parent) == 0, parent.st_mode & S_IFMT == S_IFDIR, parent.st_uid == 0,
                  parent.st_mode & (S_IWGRP | S_IWOTH) == 0 else { return false }
            if directory == "/" { return true }
            directory = (directory as NSString).deletingLastPathComponent
        }
    }

    /// The thumbnail worker `serve` runs, or nil when ASSETD_THUMBNAILS is off. libvips
    /// is set up here, once for the process: untrusted and unlisted loaders blocked, its
    /// cache off, its threads bounded so that tasks × threads stays near the core count.
    static func thumbnailWorker(_ configuration: Configuration, records: any ThumbnailRecords & AssetRecords, objects: any ObjectStorage,
                                detector: ContentDetector, logger: Logger, metrics: Metrics? = nil) throws -> ThumbnailWorker? {
        guard configuration.thumbnailsEnabled else {
            logger.info("thumbnails are off (ASSETD_THUMBNAILS=off)")
            return nil
        }
        var settings = Thumbnailer.Settings()
        settings.size = configuration.thumbnailSize
        settings.quality = configuration.thumbnailQuality
        settings.maxPixels = configuration.thumbnailMaxPixels
        settings.maxDecodeBytes = configuration.thumbnailMaxDecodeBytes
        settings.vipsThreads = max(1, ProcessInfo.processInfo.activeProcessorCount / configuration.thumbnailConcurrency)
        // Its own private directory beside the spool: sources and frames are files with a
        // name while the decoder and ffmpeg read them, unlike the spool's unlinked files.
        let scratch = configuration.stateDirectory + "/thumbnail-tmp"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let endpoint = try decoderEndpoint(configuration)
        if case .spawn = endpoint {
            logger.notice("the decoder runs as assetd's own child, as assetd's user: a file that exploits a parser could read what assetd reads (its settings file); assetd-thumbnailer.socket (ASSETD_THUMBNAILER_SOCKET) runs it as a user of its own")
        }
        let decoder = try IsolatedThumbnailer(settings: .init(endpoint: endpoint, thumbnail: settings,
                                                              memoryBytes: configuration.thumbnailerMaxMemory,
                                                              timeoutSeconds: configuration.thumbnailTimeout, scratch: scratch,
                                                              keepGPS: configuration.keepGPS),
                                              logger: logger)
        let worker = ThumbnailWorker(records: records, objects: objects, detector: detector, decoder: decoder,
                                     concurrency: configuration.thumbnailConcurrency, scratchDirectory: scratch,
                                     maxSourceBytes: configuration.thumbnailMaxSourceBytes, keepGPS: configuration.keepGPS, logger: logger,
                                     metrics: metrics)
        worker.sweepScratch()
        logger.info("thumbnails on", metadata: [
            "size": "\(settings.size)", "quality": "\(settings.quality)", "concurrency": "\(configuration.thumbnailConcurrency)",
            "max_pixels": "\(settings.maxPixels)", "vips_threads": "\(settings.vipsThreads)",
            "max_decode_bytes": "\(settings.maxDecodeBytes)", "decoder": "\(endpoint)", "keep_gps": "\(configuration.keepGPS)",
        ])
        return worker
    }
}

/// While schema migrations run at start: EXTEND_TIMEOUT_USEC to systemd every 10 s, each
/// granting 30 s more, so that a long migration is not killed by TimeoutStartSec (and
/// restarted, to start over) while a stuck start still is. Nothing without NOTIFY_SOCKET.
final class StartTimeoutExtension: Sendable {
    private let state = Mutex<(started: Bool, stopped: Bool)>((false, false))
    private let wake = DispatchSemaphore(value: 0)

    func start() {
        let first = state.withLock { state in
            defer { state.started = true }
            return !state.started && !state.stopped
        }
        guard first, ProcessInfo.processInfo.environment["NOTIFY_SOCKET"] != nil else { return }
        Systemd.notify("EXTEND_TIMEOUT_USEC=30000000")
        let thread = Thread { [self] in
            while wake.wait(timeout: .now() + .seconds(10)) == .timedOut {
                Systemd.notify("EXTEND_TIMEOUT_USEC=30000000")
            }
        }
        thread.name = "start-timeout"
        thread.start()
    }

    func stop() {
        let running = state.withLock { state in
            defer { state.stopped = true }
            return state.started && !state.stopped
        }
        if running { wake.signal() }
    }
}
