import AssetStore
import Foundation

/// `assetd migrate-db --to postgres://...`: moves a one-host SQLite database into
/// PostgreSQL. assetd must be stopped (the SQLite file's lock says whether it is).
public enum DatabaseMove {
    /// Copies; returns the lines to print. Throws with one clear sentence.
    public static func run(sqlitePath: String, to url: String) throws -> [String] {
        guard DatabaseLocation.isPostgres(url) else {
            throw ConfigurationError(description: "--to must be a postgres:// or postgresql:// URL")
        }
        guard !DatabaseLocation.isPostgres(sqlitePath) else {
            throw ConfigurationError(description: "ASSETD_DATABASE (or --from) must name the SQLite file to copy, not a PostgreSQL URL")
        }
        do {
            try SingleInstanceLock.acquire(beside: sqlitePath)
        } catch {
            throw ConfigurationError(description: "stop assetd before moving its database: \(error)")
        }
        let counts = try RecordCopy.copy(sqlitePath: sqlitePath, toPostgres: url)
        return counts.map { "\($0.table): \($0.rows) rows" }
            + ["copied \(sqlitePath) into \(DatabaseLocation.redacted(url)); set ASSETD_DATABASE to that URL and start assetd"]
    }
}
