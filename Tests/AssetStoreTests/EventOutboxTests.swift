import MediaInfo
import Foundation
import GRDB
import JSON
import Testing
@testable import AssetStore
import TestFiles

/// The transactional outbox: each state change writes its event in its own transaction,
/// and claims keep each asset's events in order.
/// On every backend of `Backend.all`, but for the failure injected with an SQLite trigger.
struct EventOutboxTests {
    let path = TestFiles.sqlitePath("assetd-events")

    func open(sinks: [String] = ["hook-a"]) throws -> SQLiteRecordStore {
        let store = try SQLiteRecordStore(path: path)
        try store.activateEventSinks(sinks, now: Date())
        return store
    }

    func open(_ backend: Backend, sinks: [String] = ["hook-a"]) throws -> any RecordStore {
        let store: any RecordStore = backend == .sqlite ? try SQLiteRecordStore(path: path) : try backend.fresh().open()
        try store.activateEventSinks(sinks, now: Date())
        return store
    }

    func readyAsset(_ db: any RecordStore, name: String? = "beach.png") throws -> AssetRecord {
        let asset = try db.createAsset(NewAsset(workspaceID: 7, fileType: "image/png", fileExtension: "png", fileName: name, size: 10))
        return try #require(try db.markAssetReady(id: asset.id, size: 10, etag: "\"e1\"", sha256: nil, thumbnail: .pending))
    }

    /// The events as written, read from the store's own tables.
    func events(_ store: any RecordStore) throws -> [(type: String, assetID: Int64, payload: JSONValue)] {
        let sql = "SELECT type, asset_id, payload FROM event ORDER BY id"
        if let postgres = store as? PostgresRecordStore {
            return try postgres.pool.with { connection in
                try connection.query(sql).rows.map { row in
                    (row.string(0) ?? "", row.int64(1) ?? 0, try JSONParser.parse(Array((row.string(2) ?? "").utf8)))
                }
            }
        }
        return try DatabaseQueue(path: path).read { db in
            try Row.fetchAll(db, sql: sql).map { row in
                (row[0], row[1], try JSONParser.parse(Array((row[2] as String).utf8)))
            }
        }
    }

    func events() throws -> [(type: String, assetID: Int64, payload: JSONValue)] {
        try DatabaseQueue(path: path).read { db in
            try Row.fetchAll(db, sql: "SELECT type, asset_id, payload FROM event ORDER BY id").map { row in
                (row[0], row[1], try JSONParser.parse(Array((row[2] as String).utf8)))
            }
        }
    }

    func claim(_ db: any RecordStore, sink: String = "hook-a", now: Date = Date()) throws -> [EventDelivery] {
        try db.claimDeliveries(sink: sink, limit: 50, now: now, leaseUntil: now.addingTimeInterval(30))
    }

    @Test(arguments: Backend.all) func everyStateChangeWritesItsEvent(_ backend: Backend) throws {
        let db = try open(backend)
        let asset = try readyAsset(db)
        #expect(try db.finishThumbnail(assetID: asset.id, etag: "\"e1\"", status: .ready, reason: nil))
        let change = VersionSwitch(assetID: asset.id, workspaceID: 7, version: 2, stagingKey: "7/versions/\(asset.id)/v2.jpg",
                                   newKey: "7/digital_assets/\(asset.id).jpg", fileType: "image/jpeg", fileName: "b.jpg", size: 20,
                                   etag: "\"e2\"", state: .stored, createdAt: Date())
        _ = try db.beginDirectVersion(change)
        _ = try #require(try db.recordVersionSwitched(change, archiveKey: "7/versions/\(asset.id)/v1.png", now: Date()))
        _ = try db.queueThumbnail(assetID: asset.id)
        #expect(try db.finishThumbnail(assetID: asset.id, etag: "\"e2\"", status: .failed, reason: "corrupt"))
        try db.markAssetDeleted(id: asset.id)
        let written = try events(db)
        #expect(written.map(\.type) == ["asset.ready", "thumbnail.ready", "asset.version_added", "thumbnail.failed", "asset.deleted"])
        let ready = written[0].payload
        #expect(ready["type"] == "asset.ready")
        #expect(ready["timestamp"]?.stringValue?.hasSuffix("Z") == true)
        #expect(ready["data"]?["assetId"] == .string(String(asset.id)))
        #expect(ready["data"]?["workspaceId"] == "7")
        #expect(ready["data"]?["version"] == 1)
        #expect(ready["data"]?["fileName"] == "beach.png")
        #expect(ready["data"]?["status"] == "ready")
        #expect(written[2].payload["data"]?["version"] == 2)
        #expect(written[2].payload["data"]?["previousVersion"] == 1)
        #expect(written[3].payload["data"]?["reason"] == "corrupt")
        #expect(written[4].payload["data"]?["status"] == "deleted")
        // One delivery per event for the one sink.
        #expect(try db.eventBacklog() == 5)
    }

    @Test(arguments: Backend.all) func aCompareAndSetThatLosesWritesNoEvent(_ backend: Backend) throws {
        let db = try open(backend)
        let asset = try readyAsset(db)
        #expect(try db.markAssetReady(id: asset.id, size: 10, etag: "\"x\"", sha256: nil, thumbnail: .none) == nil)
        #expect(try !db.finishThumbnail(assetID: asset.id, etag: "\"other\"", status: .ready, reason: nil))
        #expect(try !db.markDeleted(id: asset.id, now: Date())) // not deleting
        #expect(try events(db).map(\.type) == ["asset.ready"])
    }

    /// The event is part of the change's transaction: when writing it fails, the change
    /// is rolled back too (the asset stays pending), and nothing half-written remains.
    @Test func aFailedTransactionWritesNoEventAndNoChange() throws {
        let db = try open()
        let asset = try db.createAsset(NewAsset(workspaceID: 7, fileType: "image/png", fileExtension: "png", fileName: nil, size: 10))
        let upload = try db.createUpload(uploadID: "u1", asset: asset, fileSize: 10, partSize: nil)
        try DatabaseQueue(path: path).write { db in
            try db.execute(sql: "CREATE TRIGGER refuse AFTER INSERT ON event_delivery BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        }
        #expect(throws: RecordStoreError.self) {
            try db.completeUpload(uploadID: upload.uploadID, partsDigest: "d", location: "l", etag: "\"e\"", size: 10, thumbnail: .pending)
        }
        #expect(try db.asset(id: asset.id, workspaceID: 7)?.status == .pending)
        #expect(try db.upload(uploadID: "u1", assetID: asset.id, workspaceID: 7)?.status == .pending)
        #expect(try events().isEmpty)
        try DatabaseQueue(path: path).write { try $0.execute(sql: "DROP TRIGGER refuse") }
        // And once it can be written, the same change commits with its event.
        #expect(try db.completeUpload(uploadID: "u1", partsDigest: "d", location: "l", etag: "\"e\"", size: 10, thumbnail: .pending) != nil)
        #expect(try events().map(\.type) == ["asset.ready"])
    }

    @Test(arguments: Backend.all) func claimsKeepEachAssetsEventsInOrder(_ backend: Backend) throws {
        let db = try open(backend)
        let a = try readyAsset(db)
        let b = try readyAsset(db)
        #expect(try db.finishThumbnail(assetID: a.id, etag: "\"e1\"", status: .ready, reason: nil))
        let first = try claim(db)
        // a's thumbnail event waits for a's ready event; b's ready event goes beside it.
        #expect(first.map(\.assetID) == [a.id, b.id])
        #expect(first.map(\.type) == [.assetReady, .assetReady])
        #expect(first.allSatisfy { $0.attempts == 1 })
        // Leased: nothing more is due, not even a's later event.
        #expect(try claim(db).isEmpty)
        try db.finishDelivery(eventID: first[0].eventID, sink: "hook-a", attempt: first[0].attempts, outcome: .retry(at: Date().addingTimeInterval(60), error: "HTTP 500"), now: Date())
        try db.finishDelivery(eventID: first[1].eventID, sink: "hook-a", attempt: first[1].attempts, outcome: .delivered, now: Date())
        #expect(try claim(db).isEmpty) // a's first event backs off, and its second waits
        let later = try claim(db, now: Date().addingTimeInterval(61))
        #expect(later.map(\.eventID) == [first[0].eventID])
        #expect(later[0].attempts == 2)
        #expect(later[0].webhookID == "evt_\(first[0].eventID)")
        try db.finishDelivery(eventID: later[0].eventID, sink: "hook-a", attempt: later[0].attempts, outcome: .dead(error: "gave up"), now: Date())
        // Dead, it no longer holds back the asset's next event.
        let next = try claim(db, now: Date().addingTimeInterval(62))
        #expect(next.map(\.type) == [.thumbnailReady])
        #expect(try db.eventDeliveries(state: .dead, limit: 10).map(\.eventID) == [first[0].eventID])
    }

    /// Two assets of workspace 7 and one of workspace 8, ready with a ready thumbnail and no
    /// media (as before "v8: media metadata"): the media backfill's work.
    func assetsFromBeforeMedia(_ db: any RecordStore) throws -> (AssetRecord, AssetRecord, AssetRecord) {
        let a = try readyAsset(db)
        let b = try readyAsset(db)
        let other = try db.createAsset(NewAsset(workspaceID: 8, fileType: "image/png", fileExtension: "png", fileName: "x.png", size: 10))
        _ = try db.markAssetReady(id: other.id, size: 10, etag: "\"e1\"", sha256: nil, thumbnail: .pending)
        for asset in [a, b, other] {
            _ = try db.claimThumbnail(assetID: asset.id)
            #expect(try db.finishThumbnail(assetID: asset.id, etag: "\"e1\"", status: .ready, reason: nil))
        }
        return (a, b, other)
    }

    @Test(arguments: Backend.all) func theMediaBackfillWritesOnceWithAnAssetUpdatedEventAndLeavesTheThumbnail(_ backend: Backend) throws {
        let db = try open(backend)
        let (a, b, other) = try assetsFromBeforeMedia(db)
        #expect(try db.assetsMissingMedia(limit: 10).map(\.id) == [a.id, b.id, other.id])
        #expect(try db.assetsMissingMedia(limit: 10, workspaceID: 7, afterID: 0).map(\.id) == [a.id, b.id], "one workspace")
        #expect(try db.assetsMissingMedia(limit: 10, workspaceID: nil, afterID: a.id).map(\.id) == [b.id, other.id], "after a cursor")
        let before = try events(db).count
        let thumbnail = try db.thumbnailState(assetID: a.id)
        let media = MediaMetadata(width: 1000, height: 1600, cameraMake: "Canon")
        #expect(try db.backfillMedia(assetID: a.id, etag: "\"other\"", media: media, now: Date()) == false, "another version")
        #expect(try db.backfillMedia(assetID: a.id, etag: "\"e1\"", media: media, now: Date()))
        #expect(try db.backfillMedia(assetID: a.id, etag: "\"e1\"", media: media, now: Date()) == false, "a second host's read")
        // Unreadable: all unknown, recorded so that it is not tried again.
        #expect(try db.backfillMedia(assetID: b.id, etag: "\"e1\"", media: MediaMetadata(), now: Date()))
        #expect(try db.asset(id: a.id, workspaceID: 7)?.media == media)
        #expect(try db.asset(id: b.id, workspaceID: 7)?.media == MediaMetadata())
        #expect(try db.thumbnailState(assetID: a.id) == thumbnail, "the thumbnail is not touched")
        #expect(try db.assetsMissingMedia(limit: 10).map(\.id) == [other.id])
        let written = try events(db).dropFirst(before)
        // All unknown: recorded, but no event (nothing a subscriber or an index could use).
        #expect(written.map(\.type) == ["asset.updated"])
        #expect(written.map(\.assetID) == [a.id])
        let data = try #require(written.first?.payload["data"])
        #expect(data["media"]?["width"] == 1000)
        #expect(data["media"]?["cameraMake"] == "Canon")
        #expect(data["thumbnail"]?["status"] == "ready")
        try db.markAssetDeleted(id: other.id)
        #expect(try db.backfillMedia(assetID: other.id, etag: "\"e1\"", media: media, now: Date()) == false, "deleted")
        #expect(try db.assetsMissingMedia(limit: 10).isEmpty)
    }

    /// A version switch copies the new version onto the same key, then deletes the old
    /// object, and only then changes `etag`: a backfill that read the key meanwhile may
    /// hold the new version's media, and must not record it as the old version's.
    @Test(arguments: Backend.all) func theMediaBackfillWritesNothingWhileAVersionSwitchIsUnderWay(_ backend: Backend) throws {
        let db = try open(backend)
        let asset = try readyAsset(db)
        _ = try db.claimThumbnail(assetID: asset.id)
        #expect(try db.finishThumbnail(assetID: asset.id, etag: "\"e1\"", status: .ready, reason: nil))
        let change = VersionSwitch(assetID: asset.id, workspaceID: 7, version: 2, stagingKey: "7/versions/\(asset.id)/v2.png",
                                   newKey: asset.key, fileType: "image/png", fileName: "b.png", size: 20,
                                   etag: "\"e2\"", state: .stored, createdAt: Date())
        _ = try db.beginDirectVersion(change)
        let media = MediaMetadata(width: 4000, height: 3000)
        #expect(try db.backfillMedia(assetID: asset.id, etag: "\"e1\"", media: media, now: Date()) == false, "mid-switch")
        #expect(try db.asset(id: asset.id, workspaceID: 7)?.media == nil)
        #expect(try db.discardVersionSwitch(assetID: asset.id, version: 2))
        #expect(try db.backfillMedia(assetID: asset.id, etag: "\"e1\"", media: media, now: Date()), "the switch undone")
    }

    /// The backfill's decoder failures (v12 on SQLite, v8 on PostgreSQL): counted for the
    /// version read, `maxAttempts` of them take the asset off the work list until they are
    /// cleared, and recorded media ends the counting.
    @Test(arguments: Backend.all) func theMediaBackfillCountsDecoderFailuresAndGivesUpOnAVersion(_ backend: Backend) throws {
        let db = try open(backend)
        let (failing, good, other) = try assetsFromBeforeMedia(db)
        func listed(_ workspace: Int64? = nil) throws -> [Int64] {
            try db.assetsMissingMedia(limit: 10, workspaceID: workspace, afterID: 0, maxAttempts: 3).map(\.id)
        }
        #expect(try db.recordMediaAttempt(assetID: failing.id, etag: "\"other\"") == 0, "another version: nothing counted")
        #expect(try db.recordMediaAttempt(assetID: failing.id, etag: "\"e1\"") == 1)
        #expect(try db.recordMediaAttempt(assetID: failing.id, etag: "\"e1\"") == 2)
        #expect(try listed() == [failing.id, good.id, other.id], "under the limit: still listed")
        #expect(try db.recordMediaAttempt(assetID: failing.id, etag: "\"e1\"") == 3)
        #expect(try listed() == [good.id, other.id], "given up on")
        #expect(try db.assetsMissingMedia(limit: 10, workspaceID: nil, afterID: 0).map(\.id) == [failing.id, good.id, other.id],
                "without a limit, listed")
        #expect(try db.assetsGivenUpOnMedia(workspaceID: nil, maxAttempts: 3) == 1)
        #expect(try db.assetsGivenUpOnMedia(workspaceID: 8, maxAttempts: 3) == 0, "another workspace's")
        #expect(try db.recordMediaAttempt(assetID: other.id, etag: "\"e1\"") == 1)
        #expect(try db.clearMediaAttempts(workspaceID: 8) == 1, "one workspace's cleared")
        #expect(try db.assetsGivenUpOnMedia(workspaceID: 7, maxAttempts: 3) == 1)
        #expect(try db.clearMediaAttempts(workspaceID: nil) == 1)
        #expect(try listed() == [failing.id, good.id, other.id], "cleared: read again")
        #expect(try db.recordMediaAttempt(assetID: failing.id, etag: "\"e1\"") == 1, "counted from none again")
        // Media recorded: nothing left to count.
        #expect(try db.backfillMedia(assetID: good.id, etag: "\"e1\"", media: MediaMetadata(width: 2, height: 3), now: Date()))
        #expect(try db.recordMediaAttempt(assetID: good.id, etag: "\"e1\"") == 0)
        #expect(try db.thumbnailState(assetID: failing.id)?.status == .ready, "the thumbnail is not touched")
    }

    @Test(arguments: Backend.all) func aLeaseThatEndsMakesTheDeliveryDueAgain(_ backend: Backend) throws {
        let db = try open(backend)
        _ = try readyAsset(db)
        let now = Date()
        let claimed = try claim(db, now: now)
        #expect(claimed.count == 1)
        #expect(try claim(db, now: now.addingTimeInterval(29)).isEmpty)
        // The worker died: after the lease the same event, same id, is claimed again.
        let again = try claim(db, now: now.addingTimeInterval(31))
        #expect(again.map(\.eventID) == claimed.map(\.eventID))
        #expect(again[0].payload == claimed[0].payload)
        // The first worker was only slow: its late answer no longer counts (the delivery
        // is the second claim's now), and the second claim's does.
        try db.finishDelivery(eventID: claimed[0].eventID, sink: "hook-a", attempt: claimed[0].attempts, outcome: .dead(error: "late"),
                              now: now.addingTimeInterval(32))
        #expect(try db.eventDeliveries(state: .dead, limit: 10).isEmpty)
        try db.finishDelivery(eventID: again[0].eventID, sink: "hook-a", attempt: again[0].attempts, outcome: .delivered,
                              now: now.addingTimeInterval(33))
        #expect(try db.eventBacklog() == 0)
    }

    @Test(arguments: Backend.all) func aDisabledSinkGetsNothingUntilARedelivery(_ backend: Backend) throws {
        let db = try open(backend, sinks: ["hook-a", "hook-b"])
        let asset = try readyAsset(db)
        try db.disableEventSink("hook-a", reason: "410 Gone", now: Date())
        #expect(try claim(db).isEmpty)
        #expect(try claim(db, sink: "hook-b").count == 1)
        _ = try db.finishThumbnail(assetID: asset.id, etag: "\"e1\"", status: .ready, reason: nil)
        let dead = try db.eventDeliveries(state: .dead, limit: 10)
        #expect(dead.map(\.sink) == ["hook-a"]) // the pending one died; the new event was not queued for it
        #expect(dead[0].lastError == "410 Gone")
        #expect(try db.redeliverEvent(id: dead[0].eventID, now: Date()) == 1)
        let redelivered = try claim(db)
        #expect(redelivered.map(\.eventID) == [dead[0].eventID])
        #expect(redelivered[0].attempts == 1)
        #expect(try db.redeliverEvent(id: 999, now: Date()) == 0)
    }

    @Test(arguments: Backend.all) func aStartAddsItsSinksAndRetiresNoneAndAnOperatorRetiresOne(_ backend: Backend) throws {
        let db = try open(backend, sinks: ["hook-a"])
        _ = try readyAsset(db)
        try db.activateEventSinks(["hook-b"], now: Date()) // another host's settings
        _ = try readyAsset(db)
        #expect(try claim(db).count == 2) // hook-a still gets new events
        #expect(try claim(db, sink: "hook-b").count == 1)
        var sinks = try db.eventSinks()
        #expect(sinks.map(\.sink) == ["hook-a", "hook-b"] && sinks.allSatisfy(\.active))
        #expect(sinks.map(\.pending) == [2, 1])
        // Retired: its pending deliveries die (leased ones too), no claim takes it, and
        // new events skip it.
        #expect(try db.retireEventSink("hook-a", reason: "retired by test", now: Date()) == 2)
        _ = try readyAsset(db)
        #expect(try claim(db, now: Date().addingTimeInterval(60)).isEmpty)
        sinks = try db.eventSinks()
        #expect(sinks[0] == EventSinkStatus(sink: "hook-a", active: false, disabledAt: nil, disabledReason: nil, pending: 0, dead: 2))
        #expect(sinks[1].pending == 2 && sinks[1].active)
        #expect(try db.eventDeliveries(state: .dead, limit: 10).allSatisfy { $0.sink == "hook-a" && $0.lastError == "retired by test" })
        // A host whose settings name it makes it active again, for new events.
        try db.activateEventSinks(["hook-a"], now: Date())
        _ = try readyAsset(db)
        #expect(try claim(db).count == 1)
    }

    @Test(arguments: Backend.all) func pruningGoesInBatchesAndKeepsPendingAndRecentDeadDeliveries(_ backend: Backend) throws {
        let db = try open(backend)
        for _ in 0..<5 { _ = try readyAsset(db) }
        let claimed = try claim(db)
        #expect(claimed.count == 5)
        for (index, delivery) in claimed.prefix(4).enumerated() {
            try db.finishDelivery(eventID: delivery.eventID, sink: "hook-a", attempt: delivery.attempts,
                                  outcome: index < 2 ? .delivered : .dead(error: "x"), now: Date())
        }
        let later = Date().addingTimeInterval(1), longAgo = Date().addingTimeInterval(-60)
        // Two delivered events go; the dead ones died just now, within their retention.
        var batch = try db.pruneEvents(deliveredBefore: later, deadBefore: longAgo, afterEventID: 0, limit: 2)
        #expect(batch == EventPruning(deliveries: 2, events: 2, examined: 2, lastEventID: claimed[1].eventID))
        batch = try db.pruneEvents(deliveredBefore: later, deadBefore: longAgo, afterEventID: batch.lastEventID, limit: 2)
        #expect(batch == EventPruning(deliveries: 0, events: 0, examined: 2, lastEventID: claimed[3].eventID))
        batch = try db.pruneEvents(deliveredBefore: later, deadBefore: longAgo, afterEventID: batch.lastEventID, limit: 2)
        #expect(batch == EventPruning(deliveries: 0, events: 0, examined: 1, lastEventID: claimed[4].eventID))
        batch = try db.pruneEvents(deliveredBefore: later, deadBefore: longAgo, afterEventID: batch.lastEventID, limit: 2)
        #expect(batch.examined == 0 && batch.lastEventID == claimed[4].eventID)
        #expect(try events(db).count == 3)
        // Newer than the retention: kept, whatever their state.
        batch = try db.pruneEvents(deliveredBefore: longAgo, deadBefore: longAgo, afterEventID: 0, limit: 10)
        #expect(batch == EventPruning(deliveries: 0, events: 0, examined: 0, lastEventID: 0))
        // Past the dead retention the dead ones go; the pending one never does.
        batch = try db.pruneEvents(deliveredBefore: later, deadBefore: later, afterEventID: 0, limit: 10)
        #expect(batch.deliveries == 2 && batch.events == 2 && batch.examined == 3)
        #expect(try events(db).map(\.assetID) == [claimed[4].assetID])
        #expect(try db.eventBacklog() == 1)
        #expect(try db.redeliverEvent(id: claimed[0].eventID, now: Date()) == 0) // pruned: nothing to redeliver
    }

    /// Runs `sql` on the store's own tables.
    func execute(_ store: any RecordStore, _ sql: String) throws {
        if let postgres = store as? PostgresRecordStore {
            try postgres.pool.with { connection in _ = try connection.query(sql) }
            return
        }
        try DatabaseQueue(path: path).write { db in try db.execute(sql: sql) }
    }

    /// Pending deliveries that no claim will end become dead in pruning: those of a sink
    /// retired while a change queued its delivery (PostgreSQL, READ COMMITTED: the change's
    /// INSERT ... SELECT read the sink as active before the retire committed, so the retire's
    /// own UPDATE did not see its row), and those past the max age that nobody claimed;
    /// leased ones are left to their claim.
    @Test(arguments: Backend.all) func expiryKillsPendingDeliveriesOfRetiredSinksAndPastTheMaxAge(_ backend: Backend) throws {
        let db = try open(backend, sinks: ["hook-a", "hook-b"])
        let first = try readyAsset(db), second = try readyAsset(db)
        let now = Date()
        let claimed = try claim(db, now: now) // hook-a's two, leased until now + 30 s
        try #require(claimed.count == 2)
        try db.finishDelivery(eventID: claimed[1].eventID, sink: "hook-a", attempt: claimed[1].attempts, outcome: .delivered, now: now)
        #expect(try db.expireDeliveries(startedBefore: now.addingTimeInterval(-60), now: now, limit: 10, expiredReason: "old",
                                        inactiveReason: "gone").isEmpty)
        // What the race leaves: the sink retired, and a pending delivery of it written after
        // the retire's UPDATE of its deliveries.
        #expect(try db.retireEventSink("hook-b", reason: "retired", now: now) == 2)
        try execute(db, "UPDATE event_delivery SET state = 'pending', last_error = NULL WHERE sink = 'hook-b'")
        #expect(try db.eventBacklog() == 3)
        #expect(try claim(db, sink: "hook-b", now: now).isEmpty)
        // In bounded batches, oldest first, whatever their age.
        #expect(try db.expireDeliveries(startedBefore: now.addingTimeInterval(-60), now: now, limit: 1, expiredReason: "old",
                                        inactiveReason: "gone") == ["hook-b": 1])
        #expect(try db.expireDeliveries(startedBefore: now.addingTimeInterval(-60), now: now, limit: 10, expiredReason: "old",
                                        inactiveReason: "gone") == ["hook-b": 1])
        #expect(try db.eventBacklog() == 1)
        // Past the max age, but leased by a claim in flight: its claim decides.
        #expect(try db.expireDeliveries(startedBefore: now.addingTimeInterval(1), now: now, limit: 10, expiredReason: "old",
                                        inactiveReason: "gone").isEmpty)
        // Its lease over and nobody claiming it: dead.
        #expect(try db.expireDeliveries(startedBefore: now.addingTimeInterval(1), now: now.addingTimeInterval(31), limit: 10,
                                        expiredReason: "old", inactiveReason: "gone") == ["hook-a": 1])
        #expect(try db.eventBacklog() == 0)
        let dead = try db.eventDeliveries(state: .dead, limit: 10)
        #expect(dead.filter { $0.sink == "hook-b" }.map(\.lastError) == ["gone", "gone"])
        #expect(dead.filter { $0.sink == "hook-a" }.map(\.assetID) == [first.id])
        #expect(dead.filter { $0.sink == "hook-a" }.map(\.lastError) == ["old"])
        _ = second
    }

    @Test(arguments: Backend.all) func aPatchOfAReadyAssetWritesAssetUpdatedAfterItsReady(_ backend: Backend) throws {
        let db = try open(backend)
        let pending = try db.createAsset(NewAsset(workspaceID: 7, fileType: "image/png", fileExtension: "png", fileName: "p.png", size: 10))
        #expect(try db.describeAsset(id: pending.id, workspaceID: 7, title: .set("Draft"), tags: .keep) != nil)
        let asset = try readyAsset(db)
        #expect(try db.describeAsset(id: asset.id, workspaceID: 8, title: .set("Not theirs"), tags: .keep) == nil)
        let described = try #require(try db.describeAsset(id: asset.id, workspaceID: 7, title: .set("Dune"), tags: .set(["sea", "sand"])))
        #expect(described.title == "Dune")
        let written = try events(db)
        // The pending asset's PATCH wrote nothing: its asset.ready will carry its title.
        #expect(written.map(\.type) == ["asset.ready", "asset.updated"])
        #expect(written.allSatisfy { $0.assetID == asset.id })
        let data = written[1].payload["data"]
        #expect(data?["title"] == "Dune" && data?["tags"] == .array(["sea", "sand"]) && data?["status"] == "ready")
        // In order: asset.updated waits for asset.ready's delivery.
        let first = try claim(db)
        #expect(first.map(\.type) == [.assetReady])
        #expect(try claim(db, now: Date().addingTimeInterval(10)).isEmpty)
        try db.finishDelivery(eventID: first[0].eventID, sink: "hook-a", attempt: first[0].attempts, outcome: .delivered, now: Date())
        #expect(try claim(db).map(\.type) == [.assetUpdated])
    }

    @Test(arguments: Backend.all) func aPayloadStaysUnder20KB(_ backend: Backend) throws {
        let db = try open(backend)
        let huge = String(repeating: "é", count: 30_000) // 60,000 bytes: more than any route lets in
        let asset = try readyAsset(db, name: huge)
        _ = try db.finishThumbnail(assetID: asset.id, etag: "\"e1\"", status: .failed, reason: String(repeating: "r", count: 40_000))
        for event in try events(db) {
            let bytes = event.payload.serialized()
            #expect(bytes.count <= EventPayload.maxBytes)
            #expect(event.payload["data"]?["truncated"] == true)
            #expect(event.payload["data"]?["assetId"] == .string(String(asset.id)))
            #expect(event.payload["data"]?["fileName"]?.stringValue?.hasPrefix("ééé") == true)
        }
        // A usual payload is whole and says nothing of truncation.
        let small = EventPayload.make(.assetReady, asset: asset, now: Date())
        #expect(small.count > 0)
        var plain = asset
        plain.fileName = "a.png"
        #expect(try JSONParser.parse(EventPayload.make(.assetReady, asset: plain, now: Date()))["data"]?["truncated"] == nil)
    }

    @Test func eventIDsParse() {
        #expect(EventDelivery.eventID(parsing: "evt_12") == 12)
        #expect(EventDelivery.eventID(parsing: "12") == 12)
        #expect(EventDelivery.eventID(parsing: "evt_") == nil)
        #expect(EventDelivery.eventID(parsing: "evt_-1") == nil)
        #expect(EventDelivery.eventID(parsing: "0") == nil)
        #expect(EventDelivery.eventID(parsing: "12 ") == nil)
    }
}

struct EventTimeTests {
    /// The hand-written RFC 3339 form agrees with Foundation's, milliseconds truncated.
    @Test func timesAreRFC3339InUTCWithMilliseconds() throws {
        #expect(EventPayload.iso8601(Date(timeIntervalSince1970: 1_700_000_000.1239)) == "2023-11-14T22:13:20.123Z")
        #expect(EventPayload.iso8601(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(EventPayload.iso8601(Date(timeIntervalSince1970: 951_782_400.5)) == "2000-02-29T00:00:00.500Z")
        for _ in 0..<200 {
            let date = Date(timeIntervalSince1970: Double(Int64.random(in: 0...4_102_444_800_000)) / 1000)
            let text = EventPayload.iso8601(date)
            let parsed = try Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true))
            // Truncated to the millisecond: less than 1 ms off, plus the Double's own error (a
            // time of whole milliseconds may be stored a hair below, and truncate 1 ms down).
            #expect(abs(parsed.timeIntervalSince(date)) < 0.001 + 1e-6, "\(text)")
        }
    }
}
