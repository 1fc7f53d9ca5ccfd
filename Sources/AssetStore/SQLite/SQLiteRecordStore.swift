public import struct Foundation.Date
import GRDB

/// Why the database failed; `description` is for the log, never for the client.
public struct AssetStoreError: Error, Sendable, CustomStringConvertible {
    public let description: String
}

/// Asset and upload records in SQLite (WAL), through GRDB.
///
/// Every method is synchronous and safe to call from any thread: reads run concurrently,
/// writes one at a time. It knows nothing of HTTP or S3.
public final class SQLiteRecordStore: Sendable {
    /// Internal, not private: the extensions in the other files of this folder use them.
    let pool: DatabasePool
    let readers: ThreadReaders
    let uploads = UploadCache()

    /// Opens (creating it if needed) the database at `path` and migrates it.
    public init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        configuration.foreignKeysEnabled = true
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(pool)
            readers = ThreadReaders(path: path)
        } catch {
            throw AssetStoreError(description: "cannot open ASSETD_DATABASE \(path): \(error)")
        }
    }

    func run<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as AssetStoreError {
            throw error
        } catch {
            throw AssetStoreError(description: "database: \(error)")
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
