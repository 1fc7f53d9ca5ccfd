import GRDB

/// The records in SQLite (WAL), through GRDB: the first `RecordStore`.
///
/// Every method is synchronous and safe to call from any thread: reads run concurrently,
/// writes one at a time. It knows nothing of HTTP or S3.
public final class SQLiteRecordStore: RecordStore {
    /// Internal, not private: the extensions in the other files of this folder use them.
    let pool: DatabasePool
    let readers: ThreadReaders
    let uploads = UploadCache()
    /// How long a listing's statements may run (nil: no limit): ASSETD_DATABASE_STATEMENT_TIMEOUT.
    let statementTimeout: Duration?
    /// Rows a sorted search tests one by one before it reads its FTS5 sets instead
    /// (`walkedPage`); tests set it to compare both ways.
    let walkedRows: Int

    /// Opens (creating it if needed) the database at `path` and migrates it.
    /// `migrationLog`: told each migration that runs (MigrationLog).
    public convenience init(path: String, statementTimeout: Duration? = .seconds(10), migrationLog: MigrationLog? = nil) throws {
        try self.init(path: path, statementTimeout: statementTimeout, walkedRows: SQLiteRecordStore.defaultWalkedRows,
                      migrationLog: migrationLog)
    }

    init(path: String, statementTimeout: Duration?, walkedRows: Int, migrationLog: MigrationLog? = nil) throws {
        self.statementTimeout = statementTimeout
        self.walkedRows = walkedRows
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        configuration.foreignKeysEnabled = true
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrate(pool, log: migrationLog)
            readers = ThreadReaders(path: path)
        } catch {
            throw RecordStoreError.database("cannot open ASSETD_DATABASE \(path): \(error)")
        }
    }

    /// The one error wrapper of every method: a `RecordStoreError` (a corrupt record) and a
    /// `VersionConflict` (an answer, not a failure) pass through as they are; anything else
    /// (GRDB's errors) becomes `RecordStoreError.database`, so that no GRDB type leaves
    /// the module.
    func run<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as RecordStoreError {
            throw error
        } catch let conflict as VersionConflict {
            throw conflict
        } catch {
            throw RecordStoreError.database("database: \(error)")
        }
    }

    /// How many pending uploads are held in memory (for tests).
    var cachedUploadCount: Int { uploads.count }

    /// Thrown inside a write to roll its transaction back.
    struct Rollback: Error {}

    /// Answers when SQLite does (for /healthz).
    public func ping() throws {
        try run { _ = try pool.read { db in try Int.fetchOne(db, sql: "SELECT 1") } }
    }
}
