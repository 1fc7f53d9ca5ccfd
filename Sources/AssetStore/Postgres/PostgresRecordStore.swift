import Foundation
import Synchronization

/// The records in PostgreSQL, through libpq: the `RecordStore` for several hosts sharing
/// one database (ASSETD_DATABASE=postgres://...). The same rules as `SQLiteRecordStore`:
/// every status change a compare-and-set checked by its row count, and the same
/// transactions; where SQLite's single writer serialized a read-then-write, a row lock
/// (`SELECT ... FOR UPDATE` on the asset) does here.
///
/// Synchronous, for the thread-per-request server: a bounded pool of connections
/// (`PGPool`). Pending uploads are cached for the presign lookup only, evicted on every
/// host by LISTEN/NOTIFY (`UploadCache`, `PGUploadListener`; ASSETD_DATABASE_UPLOAD_CACHE).
///
/// Times are stored as seconds since 1970 (double precision), as in SQLite, from the
/// callers' `now`; leases (thumbnail tasks, assets in motion, the reconciler's turn) use
/// the database's clock, the one clock all hosts share.
public final class PostgresRecordStore: RecordStore, FleetCoordination {
    public struct Settings: Sendable {
        /// ASSETD_DATABASE_POOL: connections per process.
        public var poolSize = 10
        public var statementTimeout: Duration = .seconds(10)
        /// How long a caller waits for a free connection (or a search for its turn) before a 503.
        public var acquireTimeout: Duration = .seconds(5)
        /// ASSETD_DATABASE_SEARCHES: text searches in PostgreSQL at once from this process
        /// (`SearchGate`); the others wait their turn, first come first served.
        public var searches = PostgresRecordStore.defaultSearches
        /// ASSETD_THUMBNAIL_LEASE: how long a claimed thumbnail task is this host's without a renewal.
        public var thumbnailLease: Duration = .seconds(60)
        /// Who this process is, in leases and in the reconciler's log line.
        public var owner = PostgresRecordStore.defaultOwner()
        /// ASSETD_DATABASE_UPLOAD_CACHE: pending uploads in memory for presign, evicted on
        /// every host by LISTEN/NOTIFY (UploadCache, PGUploadListener).
        public var uploadCache = true
        /// Off only in tests, to play a host that stalled past its lease (thumbnail tasks and asset holds).
        var renewsLeases = true
        /// How many rows a search's steps read (PostgresRecordStore+search.swift); small in tests only.
        var searchBounds = SearchBounds()
        /// Told what the schema migration does (MigrationLog).
        public var migrationLog: MigrationLog?

        public init() {}
    }

    let pool: PGPool
    let settings: Settings
    /// Text searches at once (`Settings.searches`).
    let searchGate: SearchGate
    /// The connections that text searches run on, one for each of `searchGate`'s slots,
    /// whose sessions keep the searches' plan settings (`searchSession`); they run nothing else.
    let searchPool: PGPool
    /// What searches remember to choose their statements (the workspace's share of the
    /// table, the queries whose walks met few matches).
    let searchHints = SearchHints()
    /// The thumbnail tasks this process holds, with the attempt each claim made: every
    /// later update names both (fencing), and `LeaseRenewer` extends them while they run.
    let claims = Mutex<[Int64: Int]>([:])
    let renewer = Mutex<Thread?>(nil)
    /// The assets this process holds (`holdAsset`), which `renewHolds` extends until
    /// `releaseAsset`.
    let holds = Mutex<[Int64: AssetHold]>([:])
    /// Whether the holds' heartbeat thread runs, and the shortest hold it renews.
    let holdRenewer = Mutex<(started: Bool, shortest: Int?)>((false, nil))
    /// The pending-upload cache and its listening connection; nil when off.
    let uploadCache: UploadCache?
    let uploadListener: PGUploadListener?

    public var hostName: String { settings.owner }
    /// The server's `max_connections`, read at start (nil when it could not be read).
    public let maxConnections: Int?
    /// The connections this process may hold at once.
    public var connectionBudget: ConnectionBudget { Self.connectionBudget(settings) }

    /// Connects to `url` (postgres:// or postgresql://) and migrates the schema.
    public init(url: String, settings: Settings = Settings()) throws {
        self.settings = settings
        var poolSettings = PGPool.Settings()
        poolSettings.size = max(1, settings.poolSize)
        poolSettings.statementTimeout = settings.statementTimeout
        poolSettings.acquireTimeout = settings.acquireTimeout
        pool = PGPool(url: url, settings: poolSettings)
        searchGate = SearchGate(limit: settings.searches, timeout: settings.acquireTimeout)
        var searchSettings = poolSettings
        searchSettings.size = searchGate.limit
        searchSettings.session = Self.searchSession
        searchSettings.applicationName = "assetd-search"
        searchSettings.name = "search connection"
        searchSettings.sizeSetting = "ASSETD_DATABASE_SEARCHES"
        searchSettings.idleTimeout = Self.searchIdleTimeout
        searchPool = PGPool(url: url, settings: searchSettings)
        do {
            try pool.with { connection in try Self.migrate(connection, log: settings.migrationLog) }
        } catch {
            throw RecordStoreError.database("cannot open ASSETD_DATABASE \(DatabaseLocation.redacted(url)): \(error)")
        }
        // After the migration's COMMIT, on a connection of its own that ends with it: the
        // indexes built concurrently. A failure here leaves searches correct, only slower.
        do {
            try Self.buildIndexes(try pool.connect(), log: settings.migrationLog)
        } catch {
            settings.migrationLog?("could not build the schema's indexes: \(error) (searches with a type or a substring are slower until a start builds them)")
        }
        maxConnections = try? pool.with { connection in try connection.query("SHOW max_connections").first?.int(0) } ?? nil
        (uploadCache, uploadListener) = Self.startUploadCache(settings.uploadCache, pool: pool, url: url)
    }

    deinit { uploadListener?.stop() }

    /// ASSETD_DATABASE_SEARCHES' default: this host's cores, 2 at least, 4 at most. Each is
    /// a connection beside the pool's, on every host: sized by the app host's cores alone, a
    /// fleet of big hosts would open more than `max_connections` (review 12, P1), and more
    /// searches at once than the database's cores only time-share them.
    public static var defaultSearches: Int { min(4, max(2, ProcessInfo.processInfo.activeProcessorCount)) }

    /// Search connections idle for longer are closed: they are extra, and a quiet process
    /// gives them back to the server.
    static let searchIdleTimeout: Duration = .seconds(60)

    /// The connections one process may hold at once: what counts in the server's
    /// `max_connections`, once per host.
    public struct ConnectionBudget: Sendable, CustomStringConvertible {
        public var pool: Int
        public var searches: Int
        /// The upload cache's LISTEN connection (0 when the cache is off).
        public var listener: Int
        /// The reconciler's connection, during a pass.
        public var reconciler = 1

        public var total: Int { pool + searches + listener + reconciler }

        public var description: String {
            "\(total) (pool \(pool) + searches \(searches) + upload listener \(listener) + reconciler \(reconciler))"
        }

        /// A warning when this process alone may hold over a quarter of `maxConnections`: a
        /// few hosts, or a failover's reconnects, would run the server out (53300 for every
        /// pool, not only searches).
        public func warning(maxConnections: Int) -> String? {
            guard total * 4 > maxConnections else { return nil }
            return """
                this process may open \(description) connections to PostgreSQL, over a quarter of its max_connections \
                (\(maxConnections)): hosts × \(total) must stay under it (lower ASSETD_DATABASE_POOL or \
                ASSETD_DATABASE_SEARCHES, or raise max_connections; docs/CONFIGURATION.md)
                """
        }
    }

    public static func connectionBudget(_ settings: Settings) -> ConnectionBudget {
        ConnectionBudget(pool: max(1, settings.poolSize), searches: max(1, settings.searches), listener: settings.uploadCache ? 1 : 0)
    }

    /// host:pid:random, unique per process even when a pid is reused.
    public static func defaultOwner() -> String {
        "\(ProcessInfo.processInfo.hostName):\(getpid()):\(UInt32.random(in: 0...UInt32.max))"
    }

    /// The one error wrapper of every method, as in `SQLiteRecordStore.run`: libpq's
    /// failures become `RecordStoreError.unavailable` (503) when the server is away or
    /// busy, `.database` otherwise.
    func run<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as RecordStoreError {
            throw error
        } catch let conflict as VersionConflict {
            throw conflict
        } catch let error as PGError {
            throw error.isUnavailable || error.sqlState == "53300" ? RecordStoreError.unavailable("database: \(error)")
                                                                    : RecordStoreError.database("database: \(error)")
        } catch {
            throw RecordStoreError.database("database: \(error)")
        }
    }

    /// Thrown inside a transaction to roll it back.
    struct Rollback: Error {}

    /// Answers when PostgreSQL does (for /readyz), within the pool's bounded times.
    public func ping() throws {
        try run { try pool.with { connection in try connection.query("SELECT 1") } }
    }
}

/// What an ASSETD_DATABASE names, and how it may be shown.
public enum DatabaseLocation {
    /// Whether `value` is a PostgreSQL URL rather than an SQLite path.
    public static func isPostgres(_ value: String) -> Bool {
        value.hasPrefix("postgres://") || value.hasPrefix("postgresql://")
    }

    /// The URL without its password (`postgres://user:***@host/db`), for logs and
    /// check-config; an SQLite path as it is.
    public static func redacted(_ value: String) -> String {
        guard isPostgres(value), let scheme = value.range(of: "://") else { return value }
        let rest = value[scheme.upperBound...]
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        var redacted = String(value[..<scheme.upperBound])
        let authority = rest[..<authorityEnd]
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            let user = userInfo.split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
            redacted += (userInfo.contains(":") ? "\(user):***" : user) + authority[at...]
        } else {
            redacted += authority
        }
        // A password may also travel as a query parameter.
        var tail = String(rest[authorityEnd...])
        if let query = tail.firstIndex(of: "?") {
            let parameters = tail[tail.index(after: query)...].split(separator: "&").map { parameter in
                parameter.lowercased().hasPrefix("password=") ? "password=***" : String(parameter)
            }
            tail = String(tail[..<query]) + "?" + parameters.joined(separator: "&")
        }
        return redacted + tail
    }
}
