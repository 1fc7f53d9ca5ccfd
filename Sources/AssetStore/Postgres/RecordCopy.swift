import Foundation
import GRDB

/// `assetd migrate-db`: a one-host SQLite database's records, copied into PostgreSQL in one
/// transaction (all or nothing), ids kept, so that keys in S3 still name their records.
public enum RecordCopy {
    /// The tables in the order their references need, all of SQLite's columns each (the
    /// PostgreSQL schema has every one of them, and its own lease columns besides). The outbox
    /// goes too, so that no event waiting for delivery is lost (SQLite's 1 and 0 of
    /// `event_sink.active` are PostgreSQL's boolean input as they are).
    static let tables = ["asset", "upload", "asset_version", "version_switch", "delete_sweep", "upload_part_md5",
                         "event", "event_sink", "event_delivery"]

    /// The tables that hold records: the target must have none. `event_sink` is not one: a
    /// host that started against the target added its sinks there (bookkeeping, like
    /// `reconciler_pass` and `schema_version`, which are not copied), and SQLite's sinks are
    /// merged into those.
    static let recordTables = tables.filter { $0 != "event_sink" }

    /// SQLite's sink rows into a target that may already name the same sinks: a sink
    /// active on either side stays active, and SQLite's disabling (a receiver that answered
    /// 410, with its reason) is kept.
    static let mergeSink = """
        ON CONFLICT (sink) DO UPDATE SET active = event_sink.active OR excluded.active,
            disabled_at = coalesce(excluded.disabled_at, event_sink.disabled_at),
            disabled_reason = coalesce(excluded.disabled_reason, event_sink.disabled_reason)
        """

    /// Copies the SQLite database at `path` (migrated first to this assetd's schema) into
    /// the PostgreSQL database at `url` (migrated too), which must hold no records yet: an
    /// empty database, or one that hosts started against but that holds only their
    /// bookkeeping (sinks, reconciler passes).
    /// Returns the rows copied per table. The SQLite file is only read.
    public static func copy(sqlitePath path: String, toPostgres url: String) throws -> [(table: String, rows: Int)] {
        guard FileManager.default.fileExists(atPath: path) else {
            throw RecordStoreError.database("there is no SQLite database at \(path)")
        }
        // Brings an older file to the schema whose columns are copied below.
        _ = try SQLiteRecordStore(path: path)
        // No upload cache: its LISTEN thread would outlive the copy into the command's exit.
        var settings = PostgresRecordStore.Settings()
        settings.uploadCache = false
        let target = try PostgresRecordStore(url: url, settings: settings)
        let source: DatabaseQueue
        do {
            var configuration = Configuration()
            configuration.readonly = true
            source = try DatabaseQueue(path: path, configuration: configuration)
        } catch {
            throw RecordStoreError.database("cannot open \(path): \(error)")
        }
        return try target.run {
            try target.pool.transaction { connection in
                // Nobody else writes meanwhile: a second migrate-db, or an assetd started early.
                try connection.execute("LOCK TABLE \(tables.joined(separator: ", ")) IN EXCLUSIVE MODE")
                let held = try recordTables.compactMap { table -> String? in
                    let count = try connection.query("SELECT count(*) FROM \(table)").first?.int(0) ?? 0
                    return count == 0 ? nil : "\(table): \(count) rows"
                }
                guard held.isEmpty else {
                    throw RecordStoreError.database("the PostgreSQL database already holds records (\(held.joined(separator: ", "))): migrate-db copies only into a database without any, so that no record is overwritten or mixed with another host's")
                }
                var counts: [(String, Int)] = []
                try source.read { db in
                    for table in tables {
                        let columns = try db.columns(in: table).map(\.name)
                        let marks = columns.indices.map { "$\($0 + 1)" }.joined(separator: ", ")
                        let insert = "INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES (\(marks))"
                            + (table == "event_sink" ? " " + mergeSink : "")
                        var count = 0
                        let rows = try Row.fetchCursor(db, sql: "SELECT \(columns.joined(separator: ", ")) FROM \(table)")
                        while let row = try rows.next() {
                            try connection.query(insert, columns.indices.map { Self.text(row[$0] as DatabaseValue) })
                            count += 1
                        }
                        counts.append((table, count))
                    }
                }
                try connection.query("SELECT setval('asset_id_seq', greatest((SELECT coalesce(max(id), 0) FROM asset), $1::bigint, 1))",
                                     [try source.read { db in try Self.lastAssetID(db) }])
                try connection.query("SELECT setval('event_id_seq', greatest((SELECT coalesce(max(id), 0) FROM event), $1::bigint, 1))",
                                     [try source.read { db in try Self.lastEventID(db) }])
                return counts
            }
        }
    }

    /// SQLite's AUTOINCREMENT never reuses an id, even a deleted row's: nor will PostgreSQL.
    static func lastAssetID(_ db: GRDB.Database) throws -> Int64 {
        guard try db.tableExists("sqlite_sequence") else { return 0 }
        return try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'asset'") ?? 0
    }

    /// The same for events (AUTOINCREMENT too): a webhook id is never issued twice.
    static func lastEventID(_ db: GRDB.Database) throws -> Int64 {
        guard try db.tableExists("sqlite_sequence") else { return 0 }
        return try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'event'") ?? 0
    }

    /// A stored value as PostgreSQL's text input of the same value.
    static func text(_ value: DatabaseValue) -> String? {
        switch value.storage {
        case .null: nil
        case .int64(let int): String(int)
        case .double(let double): "\(double)"
        case .string(let string): string
        case .blob(let data): String(decoding: data, as: UTF8.self)
        }
    }
}
