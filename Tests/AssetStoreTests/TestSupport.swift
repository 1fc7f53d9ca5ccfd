import Foundation
import Testing
@testable import AssetStore
import TestFiles

extension AssetRecords {
    /// A whole delete, both record steps, with no objects to remove in between: an asset
    /// that is gone, for tests of what a deleted asset still allows.
    func markAssetDeleted(id: Int64, now: Date = Date()) throws {
        guard case .deleting? = try beginDelete(id: id, now: now) else { return }
        try markDeleted(id: id, now: now)
    }
}

/// The backends the store tests run on: SQLite always; PostgreSQL when the test run is
/// given a server (scripts/test starts one on loopback and sets ASSETD_TEST_POSTGRES_URL).
enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, postgres

    static let postgresURL = ProcessInfo.processInfo.environment["ASSETD_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }

    /// What the run covers: PostgreSQL only with a server to test on.
    static let all: [Backend] = postgresURL == nil ? [.sqlite] : [.sqlite, .postgres]

    var testDescription: String { rawValue }

    /// A new, empty database of this backend: a file, or a schema of its own on the server.
    func fresh() throws -> TestDatabase {
        switch self {
        case .sqlite:
            return .sqlite(TestFiles.sqlitePath())
        case .postgres:
            guard let url = Self.postgresURL else { throw TestDatabase.NoServer() }
            let schema = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
            try PGPool(url: url, settings: .init()).with { try $0.execute("CREATE SCHEMA \(schema)") }
            let separator = url.contains("?") ? "&" : "?"
            return .postgres(url + separator + "options=-csearch_path%3D\(schema)")
        }
    }
}

enum TestDatabase {
    struct NoServer: Error {}

    case sqlite(String)
    case postgres(String)

    /// The store on this database; opened again, it sees what the last one wrote.
    func open() throws -> any RecordStore {
        switch self {
        case .sqlite(let path): try SQLiteRecordStore(path: path)
        case .postgres(let url): try PostgresRecordStore(url: url)
        }
    }
}
