import ArgumentParser
import AssetdApp
import FastCGIServer
import Foundation
import Logging

/// Options every subcommand takes.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("A file of KEY=VALUE lines (the systemd EnvironmentFile); the environment wins over it.", valueName: "file"))
    var config: String?

    /// Loads the settings, sets up logging and runs `body`; a failure is logged as one
    /// critical line that starts with `failure`, and exits 1.
    func run(failure: String, _ body: (Configuration, Logger) throws -> Void) throws {
        let configuration = load()
        let logger = Bootstrap.logger(level: configuration.logLevel)
        Bootstrap.warnOfUnknownSettings(configuration, logger: logger)
        do {
            try body(configuration, logger)
        } catch let error as ServerError {
            // No listening socket: a configuration error (78), which a restart will not fix.
            logger.critical("\(failure): \(error)")
            throw ExitCode(error.exitStatus)
        } catch {
            logger.critical("\(failure): \(error)")
            throw ExitCode(1)
        }
    }

    func load(requireAll: Bool = true) -> Configuration {
        do {
            return try Configuration(environment: ProcessInfo.processInfo.environment, file: config, requireAll: requireAll)
        } catch {
            FileHandle.standardError.write(Data("assetd: \(error)\n".utf8))
            Foundation.exit(78) // EX_CONFIG
        }
    }
}

@main
struct Assetd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "assetd",
        // --version: the release (docs/OPERATIONS.md, "Which version runs").
        abstract: "FastCGI service that puts web frontends' assets into S3.",
        discussion: "Settings come from the environment or --config FILE. AWS_BUCKET, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ASSETD_JWT_SECRET and ASSETD_DATABASE are required; docs/CONFIGURATION.md (/usr/share/doc/assetd/CONFIGURATION.md) lists the rest. Run it behind nginx, which talks FastCGI to ASSETD_SOCKET.",
        version: AssetdVersion.current,
        subcommands: [Serve.self, Token.self, SetupBucket.self, CheckConfig.self, Migrate.self, MigrateDB.self, SetupSearch.self, Events.self,
                      BackfillMedia.self, Thumbnails.self],
        defaultSubcommand: Serve.self
    )
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve FastCGI requests until SIGTERM (the default command).",
        discussion: """
            The listening socket, first found first taken:
              1. ASSETD_SOCKET: a unix socket path (or host:port) that assetd creates, mode \
            ASSETD_SOCKET_MODE (0660), group ASSETD_SOCKET_GROUP (e.g. assetd-web, the group \
            the package makes for nginx's user alone, so that nginx may connect; default \
            assetd's own group). Its directory must exist and be \
            writable by assetd's user. A socket that cannot be created exits 78 with one line \
            naming the path and the errno.
              2. The socket systemd passes (LISTEN_FDS and LISTEN_PID, sd_listen_fds(3)): \
            assetd.socket makes /run/assetd/assetd.sock, group assetd-web, mode 0660, and \
            starts assetd.service on the first connection. assetd.service unsets \
            ASSETD_SOCKET, so this is how the package runs. READY=1 and STOPPING=1 go to \
            NOTIFY_SOCKET (Type=notify).
              3. A listening socket on standard input (spawn-fcgi -s PATH -M 0660 -G assetd-web).

            SIGTERM or SIGINT: assetd stops accepting, lets the requests in flight finish \
            (10 s at most), then exits 0; a signal that arrives while assetd is still \
            starting is kept and handled the same way once it serves. A second SIGTERM or \
            SIGINT during the drain is logged and ignored (the drain is bounded); SIGKILL, \
            or systemd's TimeoutStopSec, stops it at once. Exit status 78: a setting or the \
            socket is wrong (systemd does not restart it: RestartPreventExitStatus=78).
            """
    )

    @OptionGroup var options: ConfigOptions

    func run() throws {
        // First, before any thread exists (threads inherit the mask): a SIGTERM from now on
        // waits for the server's sigwait and a drain, and can kill no thread.
        FastCGIServer.blockStopSignals()
        // Non-dumpable before the settings are read (Bootstrap.hideFromSameUser).
        Bootstrap.hideFromSameUser()
        try options.run(failure: "assetd cannot start", Bootstrap.serve)
    }
}

struct Token: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a bearer token signed with ASSETD_JWT_SECRET (for development and load tests)."
    )

    @OptionGroup var options: ConfigOptions
    @Option(help: "The token's subject (user id).") var sub: String
    @Option(help: "Comma-separated workspace ids the token grants, e.g. 1,2.") var workspaces: String
    @Option(help: "Seconds until the token expires.") var ttl: Int = 3600

    func validate() throws {
        guard ttl > 0 else { throw ValidationError("--ttl must be a positive number of seconds") }
        guard !sub.isEmpty else { throw ValidationError("--sub must not be empty") }
        for piece in workspaces.split(separator: ",", omittingEmptySubsequences: false) where Input.parseID(piece) == nil {
            throw ValidationError("--workspaces must be positive integers separated by commas, e.g. 1,2")
        }
    }

    func run() throws {
        let configuration = options.load(requireAll: false)
        guard configuration.jwtSecret.utf8.count >= JWTVerifier.minimumSecretLength else {
            FileHandle.standardError.write(Data("assetd: ASSETD_JWT_SECRET must be set, at least \(JWTVerifier.minimumSecretLength) characters long, to sign a token\n".utf8))
            throw ExitCode(78)
        }
        let ids = workspaces.split(separator: ",").compactMap { Input.parseID($0) }
        print(JWTVerifier(secrets: configuration.jwtSecrets).mint(subject: sub, workspaces: ids, ttl: ttl))
    }
}

struct SetupBucket: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "setup-bucket",
        abstract: "Add or update assetd's CORS rule and lifecycle rule on the bucket, keeping its other rules (idempotent).",
        discussion: "CORS rule `assetd`: ASSETD_CORS_ORIGINS (default *), methods GET POST PUT DELETE HEAD, ETag and x-amz-server-side-encryption exposed. Lifecycle rule `assetd-abort-incomplete-multipart-uploads`: abort multipart uploads left incomplete after ASSETD_ABORT_INCOMPLETE_DAYS days (default 7). Rules with other IDs are put back as they were. It prints what it changed."
    )

    @OptionGroup var options: ConfigOptions
    @Flag(help: "Create the bucket when it does not exist.") var create = false
    @Flag(name: .customLong("dry-run"), help: "Print what it would do (create the bucket when it is missing, the rules as JSON) and change nothing; exits 0 when the bucket does not exist yet.") var dryRun = false

    func run() throws {
        try options.run(failure: "setup-bucket failed") { configuration, logger in
            try BucketSetup(configuration: configuration, create: create, dryRun: dryRun, logger: logger).run()
        }
    }
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check every setting, the database, the socket, the spool directory, the bucket and the event sinks; print OK or FAIL per item.",
        discussion: "Reaches the bucket with HeadBucket, compares its default encryption (GetBucketEncryption) with ASSETD_SSE, then puts, gets and deletes one small object under _assetd_check/. With ASSETD_WEBHOOK_URLS, connects to each receiver (TLS too) and sends nothing; with ASSETD_TYPESENSE_*, reads the collection with the key (FAIL names HTTP 401/403, a refused key, and 404, a collection that assetd setup-search has not made). 5 s per sink; no key, secret or URL query is printed. Exits 1 when any item fails. An OK line whose reason starts with warning: names the ASSETD_* keys of the settings file or the environment that are no setting (a misspelling?): assetd ignores them, and they fail nothing. Run it as the service's user."
    )

    @OptionGroup var options: ConfigOptions

    func run() throws {
        let logger = Bootstrap.logger(level: "critical")
        let check = ConfigCheck(environment: ProcessInfo.processInfo.environment, file: options.config, logger: logger)
        guard check.run() else { throw ExitCode(1) }
    }
}

struct SetupSearch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "setup-search",
        abstract: "Create the Typesense collection that ready assets are upserted into (idempotent).",
        discussion: "POST /collections on ASSETD_TYPESENSE_URL with ASSETD_TYPESENSE_API_KEY: the collection ASSETD_TYPESENSE_COLLECTION with assetd's schema (docs/API.md, \"Typesense\"). A collection of that name that exists already is left as it is (exit 0). Run it once before turning the sink on."
    )

    @OptionGroup var options: ConfigOptions

    func run() throws {
        try options.run(failure: "setup-search failed") { configuration, _ in
            print(try EventAdmin.setupSearch(configuration), terminator: "")
        }
    }
}

struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "List the events waiting for delivery, the dead ones or the sinks; requeue an event; retire a sink.",
        discussion: """
            Without options: the backlog, one line per (event, sink) still pending: its id (the \
            webhook-id receivers see), type, asset, sink, attempts so far, next attempt and last error.
            --dead: deliveries given up on: retried for ASSETD_EVENT_MAX_AGE (3 days) without a 2xx, \
            pending when their endpoint answered 410 Gone (which disables it), or when their sink was retired.
            --redeliver ID: queues that event again, due now, for every configured sink where it is \
            not pending (a dead or delivered one is sent again, with the same webhook-id; a sink \
            configured since gets it too), and enables again an endpoint that 410 disabled.
            --sinks: every sink events are queued for (webhook endpoints, Typesense), with its id, \
            state (active, disabled by a 410, retired), pending and dead deliveries. Each host adds \
            the sinks of its own settings when it starts and never removes another's, so hosts \
            with different ASSETD_WEBHOOK_URLS all get their events.
            --retire-sink ID|NAME: stops queueing events for a sink (an id as --sinks lists it, or \
            the sink's whole name): its pending deliveries become dead. Remove it from every host's \
            settings first: a host that still names it makes it active again when it starts.
            Run it as the service's user, with its settings (--config /etc/assetd/assetd.env); the \
            running service picks the change up.
            """
    )

    @OptionGroup var options: ConfigOptions
    @Flag(help: "List the dead deliveries instead of the backlog.") var dead = false
    @Option(help: ArgumentHelp("Queue this event (evt_12 or 12) again.", valueName: "id")) var redeliver: String?
    @Flag(help: "List the event sinks, with their ids and states.") var sinks = false
    @Option(help: ArgumentHelp("Retire this sink: no new events are queued for it.", valueName: "id|name")) var retireSink: String?
    @Option(help: "List at most this many.") var limit: Int = 100

    func validate() throws {
        guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be from 1 to 100000") }
        if redeliver != nil, dead { throw ValidationError("--redeliver and --dead go separately: list with --dead, then redeliver one id") }
        let modes = [dead, redeliver != nil, sinks, retireSink != nil].filter { $0 }.count
        if modes > 1, retireSink != nil || sinks {
            throw ValidationError("--sinks and --retire-sink go alone: list with --sinks, then retire one id")
        }
    }

    func run() throws {
        try options.run(failure: "events failed") { configuration, _ in
            if let retireSink {
                print(try EventAdmin.retireSink(configuration, retireSink), terminator: "")
            } else if sinks {
                print(try EventAdmin.sinks(configuration), terminator: "")
            } else if let redeliver {
                let queued = try EventAdmin.redeliver(configuration, id: redeliver)
                print("queued \(redeliver) again for \(queued) sink\(queued == 1 ? "" : "s")")
            } else {
                print(try EventAdmin.list(configuration, dead: dead, limit: limit), terminator: "")
            }
        }
    }
}

struct Migrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Migrate the database's schema now, not at the next start (before an upgrade's restart).",
        discussion: """
            Opens ASSETD_DATABASE as `serve` does, which runs the migrations this release adds, \
            one log line per step with its duration, then prints that the schema is current. \
            A database migrated by a newer assetd is refused (exit 1). With SQLite, stop assetd \
            first (systemctl stop assetd.socket assetd.service: the database's lock is taken); \
            with PostgreSQL, run it on one host while the others serve (they wait for the tables \
            a step alters), then restart every host; PostgreSQL indexes a release adds (v9's) are \
            then built with CREATE INDEX CONCURRENTLY, writes going on, one log line each with its \
            rows and seconds. Run it as the service's user, with its \
            settings (--config /etc/assetd/assetd.env). docs/OPERATIONS.md, "Upgrades".
            """
    )

    @OptionGroup var options: ConfigOptions

    func run() throws {
        try options.run(failure: "migrate failed") { configuration, logger in
            print(try Bootstrap.migrate(configuration, logger: logger))
        }
    }
}

struct MigrateDB: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate-db",
        abstract: "Copy a one-host SQLite database's records into PostgreSQL (moving to several hosts).",
        discussion: """
            Reads the SQLite file (ASSETD_DATABASE, or --from) and copies every record, ids kept, into \
            the PostgreSQL database named by --to, in one transaction: all or nothing. The target must \
            hold no records (its schema is created if missing; a database that hosts already started \
            against, with only their sinks and bookkeeping, is fine; one with records is refused, \
            naming them). assetd must be stopped: the SQLite \
            file's lock is taken for the copy. The password comes from the URL or from PGPASSFILE \
            (~/.pgpass) and is never printed. Afterwards set ASSETD_DATABASE to the URL; the SQLite \
            file is brought to this assetd's schema first, its records only read (keep it as a backup). docs/OPERATIONS.md, "Several hosts".
            """
    )

    @OptionGroup var options: ConfigOptions
    @Option(help: ArgumentHelp("The PostgreSQL database to copy into.", valueName: "postgres://user@host/db")) var to: String
    @Option(help: ArgumentHelp("The SQLite file to copy (default: ASSETD_DATABASE).", valueName: "path")) var from: String?

    func run() throws {
        let path = from ?? ProcessInfo.processInfo.environment["ASSETD_DATABASE"] ?? options.load(requireAll: false).databasePath
        guard !path.isEmpty else { throw ValidationError("name the SQLite file with --from or ASSETD_DATABASE") }
        do {
            for line in try DatabaseMove.run(sqlitePath: path, to: to) { print(line) }
        } catch {
            FileHandle.standardError.write(Data("assetd migrate-db: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct BackfillMedia: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backfill-media",
        abstract: "Read the media metadata of assets stored before it was recorded, without a re-upload or a new thumbnail.",
        discussion: """
            For each ready asset whose thumbnail is ready but whose current version has no media \
            metadata (width, height, duration, pages, capture time, camera; GPS with \
            ASSETD_KEEP_GPS=on), oldest first: its object is streamed from S3 to a private \
            temporary file, and the sandboxed decoder (assetd-thumbnailer) reads its header alone. \
            The media is recorded for that version with an asset.updated event for webhooks and \
            Typesense. The thumbnail is not touched: no new thumbnail, no pending state, no \
            thumbnail.ready event. A file the decoder refuses is recorded as unknown (no event) and not \
            tried again; one whose download failed, or on which the decoder crashed or ran out of \
            time, is left for a later run, and 3 decoder failures in a row stop the run (the \
            decoder is down). The decoder's failures on an asset are counted (for its current \
            version, across runs and restarts): after 3 the backfill gives up on it, here and in \
            the reconciler, with an error line naming it; --retry-failed clears the counts and \
            reads those assets again. Prints a line per batch of 50 and a summary, and how many \
            assets it has given up on; exits 1 when the database fails.

            The reconciler does the same in the background, ASSETD_MEDIA_BACKFILL_BATCH assets a \
            pass (default 100, every ASSETD_RECONCILE_INTERVAL seconds): this command is for doing \
            it now. With SQLite, stop assetd first (the database's lock is taken); with PostgreSQL \
            it can run while the fleet serves. Run it as the service's user, with its settings \
            (--config /etc/assetd/assetd.env). docs/OPERATIONS.md, "Media metadata of older assets".
            """
    )

    @OptionGroup var options: ConfigOptions
    @Option(help: "Read at most this many assets (1 to 10000000).") var limit: Int = 10_000_000
    @Option(help: ArgumentHelp("Only this workspace's assets.", valueName: "id")) var workspace: Int64?
    @Flag(name: .customLong("dry-run"), help: "List the assets it would read, one line each, and change nothing.") var dryRun = false
    @Flag(name: .customLong("retry-failed"),
          help: "First clear the decoder failures counted on assets (3 and the backfill gives up on one), so that those given up on are read again (after a decoder fix, or a busy host's timeouts). With --dry-run: count them, clear nothing.")
    var retryFailed = false

    func validate() throws {
        try validateBatch(limit: limit, workspace: workspace)
    }

    func run() throws {
        try options.run(failure: "backfill-media failed") { configuration, logger in
            let summary = try Bootstrap.backfillMedia(configuration, logger: logger, limit: limit, workspaceID: workspace, dryRun: dryRun,
                                                      retryFailed: retryFailed, output: line)
            line(dryRun ? "\(summary.examined) asset\(summary.examined == 1 ? "" : "s") would be read (dry run: nothing changed)"
                        : "media backfill done: \(summary)")
        }
    }
}

struct Thumbnails: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "thumbnails",
        abstract: "Requeue the failed thumbnails (--retry-failed), so that they are made again.",
        discussion: """
            A thumbnail is failed for good after 3 attempts that S3 or the decoder failed, or at \
            once when the decoder refused the file (its reason is in thumbnail_reason and in the \
            `thumbnail failed` log line). After the cause is fixed (a decoder deployed or restarted, \
            S3 back, a limit raised), --retry-failed puts every failed thumbnail of ready assets back \
            to pending with its attempts reset, oldest first, and prints a line per batch of 500 and \
            a summary. Each is a compare-and-set: an asset that moved on meanwhile (deleted, a new \
            version) is left alone. No event is sent for the requeue; thumbnail.ready or \
            thumbnail.failed follows as each task ends. With PostgreSQL the fleet picks them up at \
            once (its pollers, every quarter of ASSETD_THUMBNAIL_LEASE). With SQLite, stop assetd \
            first (`systemctl stop assetd.socket assetd.service`: the command takes the database's \
            lock); the next start makes them. Run it as the service's user, with its settings \
            (--config /etc/assetd/assetd.env). docs/OPERATIONS.md, "Thumbnails".
            """
    )

    @OptionGroup var options: ConfigOptions
    @Flag(name: .customLong("retry-failed"), help: "Requeue the failed thumbnails (attempts reset to 0).") var retryFailed = false
    @Option(help: "Requeue at most this many (1 to 10000000).") var limit: Int = 10_000_000
    @Option(help: ArgumentHelp("Only this workspace's assets.", valueName: "id")) var workspace: Int64?
    @Flag(name: .customLong("dry-run"), help: "List the failed thumbnails it would requeue, with their reasons, and change nothing.")
    var dryRun = false

    func validate() throws {
        guard retryFailed else { throw ValidationError("say what to do: --retry-failed (see --help)") }
        try validateBatch(limit: limit, workspace: workspace)
    }

    func run() throws {
        try options.run(failure: "thumbnails --retry-failed failed") { configuration, logger in
            let summary = try ThumbnailRetry.run(configuration, logger: logger, limit: limit, workspaceID: workspace, dryRun: dryRun,
                                                 output: line)
            line(dryRun ? "\(summary.failed) failed thumbnail\(summary.failed == 1 ? "" : "s") would be requeued (dry run: nothing changed)"
                        : "thumbnails: \(summary)")
        }
    }
}

/// The batch commands' --limit (1 to 10000000) and --workspace (a positive id).
func validateBatch(limit: Int, workspace: Int64?) throws {
    guard (1...10_000_000).contains(limit) else { throw ValidationError("--limit must be from 1 to 10000000") }
    if let workspace, workspace < 1 { throw ValidationError("--workspace must be a positive workspace id") }
}

/// One progress line of a batch command, unbuffered, so that each shows as it happens.
func line(_ text: String) { FileHandle.standardOutput.write(Data((text + "\n").utf8)) }
