import Foundation
import GRDB
import Synchronization
import Testing
@testable import AssetStore
import TestFiles

/// The sysadmin's review, M12 and L12: SQLite's migrations ran before assetd's first log
/// line, silent, and a database a newer assetd had migrated was opened as if it were
/// current (GRDB skips identifiers it does not know).
struct SQLiteMigrationTests {
    @Test func eachMigrationIsLoggedWithItsDurationAndACurrentSchemaSaysNothing() throws {
        let path = TestFiles.sqlitePath("migrations")
        let lines = Mutex<[String]>([])
        _ = try SQLiteRecordStore(path: path, migrationLog: { line in lines.withLock { $0.append(line) } })
        let count = SQLiteRecordStore.migrator.migrations.count
        let logged = lines.withLock { $0 }
        #expect(logged.first == "migrating schema 0 -> \(count) (SQLite: \(count) steps)")
        #expect(logged.count == count + 1, "\(logged)")
        #expect(logged.dropFirst().allSatisfy { $0.hasPrefix("migrated \"v") && $0.hasSuffix(" s") }, "\(logged)")
        lines.withLock { $0.removeAll() }
        _ = try SQLiteRecordStore(path: path, migrationLog: { line in lines.withLock { $0.append(line) } })
        #expect(lines.withLock { $0.isEmpty })
    }

    @Test func aDatabaseMigratedByANewerAssetdIsRefused() throws {
        let path = TestFiles.sqlitePath("downgrade")
        _ = try SQLiteRecordStore(path: path)
        try DatabaseQueue(path: path).write { try $0.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99: from the future')") }
        do {
            _ = try SQLiteRecordStore(path: path)
            Issue.record("a database with an unknown migration was opened")
        } catch {
            #expect("\(error)".contains("newer than this assetd knows"), "\(error)")
            #expect("\(error)".contains("\"v99: from the future\""), "\(error)")
        }
    }
}
