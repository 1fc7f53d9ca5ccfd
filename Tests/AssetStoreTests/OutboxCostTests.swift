import Foundation
import GRDB
import Testing
@testable import AssetStore
import TestFiles

/// What the outbox adds to a state change's transaction: `markAssetReady` (its UPDATE, the
/// read-back, the payload and the event rows) against the same UPDATE and read-back alone,
/// as the change was before the outbox. A measurement, not a check: it runs only with
/// ASSETD_BENCH_OUTBOX=1 and prints its figures (BENCHMARKS.md):
///
///     ASSETD_BENCH_OUTBOX=1 flock /tmp/assetd-bench.lock swift test -c release --filter OutboxCostTests
struct OutboxCostTests {
    static let enabled = ProcessInfo.processInfo.environment["ASSETD_BENCH_OUTBOX"] == "1"

    func store(sinks: Int) throws -> SQLiteRecordStore {
        let path = TestFiles.sqlitePath("assetd-outbox-cost")
        let store = try SQLiteRecordStore(path: path)
        try store.activateEventSinks((0..<sinks).map { "sink-\($0)" }, now: Date())
        return store
    }

    func pending(_ store: SQLiteRecordStore, _ count: Int) throws -> [Int64] {
        try (0..<count).map { _ in
            try store.createAsset(NewAsset(workspaceID: 1, fileType: "image/jpeg", fileExtension: "jpg", fileName: "beach_2024.jpg", size: 1000)).id
        }
    }

    func microseconds(_ count: Int, _ body: () throws -> Void) rethrows -> Double {
        let start = ContinuousClock.now
        try body()
        let elapsed = ContinuousClock.now - start
        return (Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12) / Double(count)
    }

    @Test(.enabled(if: enabled)) func theOutboxCostOfAStateChange() throws {
        let n = 3000
        for round in 1...3 {
            let bare = try store(sinks: 0)
            let bareIDs = try pending(bare, n)
            let before = try microseconds(n) {
                for id in bareIDs {
                    _ = try bare.pool.write { db -> AssetRecord? in
                        try db.execute(sql: """
                            UPDATE asset SET status = 'ready', size = ?, etag = ?, sha256 = coalesce(?, sha256), thumbnail_status = ?,
                                updated_at = ?, version_created_at = ? WHERE id = ? AND status = 'pending'
                            """, arguments: [1000, "\"e\"", nil, "pending", Date().timeIntervalSince1970, Date().timeIntervalSince1970, id])
                        return try Row.fetchOne(db, sql: "SELECT \(SQLiteRecordStore.assetColumns) FROM asset WHERE id = ?", arguments: [id])
                            .map(SQLiteRecordStore.asset(from:))
                    }
                }
            }
            var figures = ["round \(round): change alone \(String(format: "%.1f", before)) µs"]
            for sinks in [0, 2] {
                let outboxed = try store(sinks: sinks)
                let ids = try pending(outboxed, n)
                let after = try microseconds(n) {
                    for id in ids { _ = try outboxed.markAssetReady(id: id, size: 1000, etag: "\"e\"", sha256: nil, thumbnail: .pending) }
                }
                figures.append("with its event, \(sinks) sinks \(String(format: "%.1f", after)) µs")
            }
            print("outbox cost (\(n) markAssetReady):", figures.joined(separator: "; "))
        }
    }

    /// A PATCH's transaction (describeAsset) with its asset.updated event against the same
    /// UPDATE and read-back alone, as it was before; and the retention's batches, as
    /// events pruned a second.
    @Test(.enabled(if: enabled)) func theOutboxCostOfAPatchAndOfPruning() throws {
        let n = 3000
        for round in 1...3 {
            var figures: [String] = []
            for sinks in [0, 2] {
                let outboxed = try store(sinks: sinks)
                let ids = try pending(outboxed, n)
                for id in ids { _ = try outboxed.markAssetReady(id: id, size: 1000, etag: "\"e\"", sha256: nil, thumbnail: .none) }
                if sinks == 0 {
                    let alone = try microseconds(n) {
                        for id in ids {
                            _ = try outboxed.pool.write { db -> AssetRecord? in
                                try db.execute(sql: "UPDATE asset SET title = ?, tags = ? WHERE id = ? AND workspace_id = ? AND status NOT IN ('deleting', 'deleted')",
                                               arguments: ["Sunset at the dune", "holiday\nsea", id, 1])
                                return try Row.fetchOne(db, sql: "SELECT \(SQLiteRecordStore.assetColumns) FROM asset WHERE id = ?", arguments: [id])
                                    .map(SQLiteRecordStore.asset(from:))
                            }
                        }
                    }
                    figures.append("PATCH alone \(String(format: "%.1f", alone)) µs")
                }
                let patched = try microseconds(n) {
                    for id in ids { _ = try outboxed.describeAsset(id: id, workspaceID: 1, title: .set("Dune \(id)"), tags: .set(["sea"])) }
                }
                figures.append("with asset.updated, \(sinks) sinks \(String(format: "%.1f", patched)) µs")
                if sinks == 2 {
                    // Every delivery delivered, then every event pruned in batches of 500.
                    try outboxed.pool.write { db in try db.execute(sql: "UPDATE event_delivery SET state = 'delivered'") }
                    let events = try outboxed.pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM event") } ?? 0
                    var after: Int64 = 0, pruned = 0
                    let start = ContinuousClock.now
                    while true {
                        let batch = try outboxed.pruneEvents(deliveredBefore: Date().addingTimeInterval(1), deadBefore: Date(), afterEventID: after, limit: 500)
                        pruned += batch.events
                        after = batch.lastEventID
                        if batch.examined < 500 { break }
                    }
                    let elapsed = ContinuousClock.now - start
                    let seconds = Double(elapsed.components.attoseconds) / 1e18 + Double(elapsed.components.seconds)
                    #expect(pruned == events)
                    figures.append("pruned \(pruned) events (2 deliveries each) at \(Int(Double(pruned) / seconds)) events/s")
                }
            }
            print("outbox cost (\(n) describeAsset):", "round \(round):", figures.joined(separator: "; "))
        }
    }
}
