import MediaInfo
import Foundation
import Synchronization
import Testing
@testable import AssetStore

/// What only PostgreSQL has: several processes ("hosts") on one database. Each host here
/// is a store of its own (its own pool and owner) on the same schema.
@Suite(.enabled(if: Backend.postgresURL != nil,
                "no PostgreSQL to test on: set ASSETD_TEST_POSTGRES_URL (scripts/test starts one on loopback and sets it)"))
struct PostgresRecordStoreTests {
    func hosts(lease: Duration = .seconds(60), aRenews: Bool = true) throws -> (PostgresRecordStore, PostgresRecordStore) {
        guard case .postgres(let url) = try Backend.postgres.fresh() else { throw TestDatabase.NoServer() }
        var a = PostgresRecordStore.Settings(), b = PostgresRecordStore.Settings()
        a.owner = "host-a"
        b.owner = "host-b"
        a.thumbnailLease = lease
        a.renewsLeases = aRenews
        b.thumbnailLease = lease
        return (try PostgresRecordStore(url: url, settings: a), try PostgresRecordStore(url: url, settings: b))
    }

    func readyAsset(_ db: PostgresRecordStore) throws -> AssetRecord {
        let asset = try db.createAsset(NewAsset(workspaceID: 1, fileType: "image/jpeg", fileExtension: "jpg", fileName: nil, size: 10))
        return try #require(try db.markAssetReady(id: asset.id, size: 10, etag: "\"e1\"", sha256: nil, thumbnail: .none))
    }

    /// Settings sent with a statement in one round trip (`PGConnection.query(after:_:_:)`, a
    /// search's change of plan): applied with it, undone with it when it fails (one implicit
    /// transaction), and the connection usable after either.
    @Test func settingsSentWithAStatementAreUndoneWhenItFails() throws {
        guard Backend.all.contains(.postgres), case .postgres(let url) = try Backend.postgres.fresh() else { return }
        let store = try PostgresRecordStore(url: url)
        try store.pool.with { connection in
            let result = try connection.query(after: ["SET enable_sort = off", "SET enable_bitmapscan = off"],
                                              "SELECT current_setting('enable_sort'), $1::int", [7])
            #expect(result.first?.string(0) == "off" && result.first?.int(1) == 7)
            #expect(throws: PGError.self) { try connection.query(after: ["SET enable_sort = on"], "SELECT 1 / $1::int", [0]) }
            #expect(connection.isUsable)
            #expect(try connection.query("SHOW enable_sort").first?.string(0) == "off")
            #expect(throws: PGError.self) { try connection.query(after: ["SET no_such_setting = 1"], "SELECT $1::int", [1]) }
            #expect(connection.isUsable)
            #expect(try connection.query(after: [], "SELECT $1::int", [3]).first?.int(0) == 3)
            try connection.execute("RESET enable_sort; RESET enable_bitmapscan")
        }
    }

    @Test func aLeasedTaskIsNoOtherHostsUntilItExpiresAndThenTheOldHolderIsFenced() throws {
        let (a, b) = try hosts(lease: .seconds(1), aRenews: false)
        let asset = try readyAsset(a)
        try a.queueThumbnail(assetID: asset.id)
        #expect(try b.claimableThumbnails(limit: 10) == [asset.id], "queued, never claimed: any host may take it")
        #expect(try a.claimThumbnail(assetID: asset.id)?.attempts == 1)
        #expect(try b.claimThumbnail(assetID: asset.id) == nil, "a live lease")
        #expect(try b.claimableThumbnails(limit: 10).isEmpty)
        Thread.sleep(forTimeInterval: 1.3)
        // Host a stalled past its lease (its renewals stopped: a pause, a partition).
        #expect(try b.claimableThumbnails(limit: 10) == [asset.id], "an expired lease is taken over")
        #expect(try b.claimThumbnail(assetID: asset.id)?.attempts == 2)
        #expect(try a.finishThumbnail(assetID: asset.id, etag: asset.etag, status: .ready, reason: nil) == false, "fenced")
        #expect(try b.finishThumbnail(assetID: asset.id, etag: asset.etag, status: .ready, reason: nil))
        #expect(try a.thumbnailState(assetID: asset.id) == ThumbnailState(status: .ready, reason: nil, attempts: 2))
    }

    /// A task put back (the decoder unavailable) stays this host's for the pause: no other
    /// host takes it before, any may after; this host may claim it again at once.
    @Test func aTaskPutBackIsThisHostsForThePause() throws {
        let (a, b) = try hosts()
        let asset = try readyAsset(a)
        try a.queueThumbnail(assetID: asset.id)
        let task = try #require(try a.claimThumbnail(assetID: asset.id))
        #expect(try b.releaseThumbnail(task, for: .seconds(1)) == false, "another host's claim")
        #expect(try a.releaseThumbnail(task, for: .seconds(1)))
        #expect(try a.thumbnailState(assetID: asset.id)?.attempts == 0)
        #expect(try b.claimableThumbnails(limit: 10).isEmpty)
        #expect(try b.claimThumbnail(assetID: asset.id) == nil, "leased to a for the pause")
        Thread.sleep(forTimeInterval: 1.3)
        #expect(try b.claimableThumbnails(limit: 10) == [asset.id], "the pause is over: any host may take it")
        #expect(try b.claimThumbnail(assetID: asset.id)?.attempts == 1)
        #expect(try b.finishThumbnail(assetID: asset.id, etag: asset.etag, status: .ready, reason: nil))
        let second = try readyAsset(a)
        try a.queueThumbnail(assetID: second.id)
        let claimed = try #require(try a.claimThumbnail(assetID: second.id))
        #expect(try a.releaseThumbnail(claimed, for: .seconds(60)))
        #expect(try a.claimThumbnail(assetID: second.id)?.attempts == 1, "its own host's retry needs no expiry")
    }

    @Test func aRunningTaskKeepsItsLeaseByRenewal() throws {
        let (a, b) = try hosts(lease: .seconds(3))
        let asset = try readyAsset(a)
        try a.queueThumbnail(assetID: asset.id)
        _ = try #require(try a.claimThumbnail(assetID: asset.id))
        Thread.sleep(forTimeInterval: 4.5)
        #expect(try b.claimThumbnail(assetID: asset.id) == nil, "renewed while it runs")
        #expect(try a.finishThumbnail(assetID: asset.id, etag: asset.etag, status: .ready, reason: nil))
    }

    @Test func oneHostAtATimeHoldsAnAsset() throws {
        let (a, b) = try hosts()
        let asset = try readyAsset(a)
        #expect(try a.holdAsset(asset.id, seconds: 60))
        #expect(try b.holdAsset(asset.id, seconds: 60) == false)
        try b.releaseAsset(asset.id)  // not b's: changes nothing
        #expect(try b.holdAsset(asset.id, seconds: 60) == false)
        try a.releaseAsset(asset.id)
        #expect(try b.holdAsset(asset.id, seconds: 60))
        #expect(try a.holdAsset(424_242, seconds: 60), "no such asset: nothing to hold")
    }

    @Test func anExpiredHoldIsTakenOver() throws {
        // Host a stalled: its heartbeat stopped renewing the hold.
        let (a, b) = try hosts(aRenews: false)
        let asset = try readyAsset(a)
        #expect(try a.holdAsset(asset.id, seconds: 1))
        Thread.sleep(forTimeInterval: 1.2)
        #expect(try b.holdAsset(asset.id, seconds: 60))
    }

    @Test func twoHostsStartingVersionsOfOneAssetGetOneEach() throws {
        let (a, b) = try hosts()
        let asset = try readyAsset(a)
        @Sendable func change(_ n: String) -> VersionSwitch {
            VersionSwitch(assetID: asset.id, workspaceID: 1, version: 2, stagingKey: "1/versions/\(asset.id)/v2-\(n).jpg",
                          newKey: asset.key, fileType: "image/jpeg", fileName: nil, size: 1, etag: "\"\(n)\"", state: .uploading,
                          createdAt: Date())
        }
        // Eight at once, from both hosts: the row lock lets one record its switch; every
        // other gets the conflict (never a failed insert, which would be a 500).
        let results = Mutex<[Result<VersionSwitch, any Error>]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            let store = i % 2 == 0 ? a : b
            let result = Result { try store.beginDirectVersion(change("\(store.hostName)-\(i)")) }
            results.withLock { $0.append(result) }
        }
        let all = results.withLock { $0 }
        #expect(all.filter { if case .success = $0 { true } else { false } }.count == 1)
        #expect(all.filter { if case .failure(let error) = $0 { (error as? VersionConflict) == .busy } else { false } }.count == 7)
    }

    @Test func concurrentCompareAndSetsHaveOneWinner() async throws {
        let (a, b) = try hosts()
        let asset = try a.createAsset(NewAsset(workspaceID: 1, fileType: "image/png", fileExtension: "png", fileName: nil, size: nil))
        _ = try a.createUpload(uploadID: "race", asset: asset, fileSize: nil, partSize: nil)
        let wins = try await withThrowingTaskGroup(of: Bool.self) { group in
            for store in [a, b, a, b] {
                group.addTask {
                    try store.completeUpload(uploadID: "race", partsDigest: "d", location: "l", etag: "e", size: 1, thumbnail: .none) != nil
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(wins == 1)
    }

    /// A hold is renewed while it is held (a heartbeat): an operation longer than the hold's
    /// seconds (a big version copy) keeps the asset, and another host still gets a conflict.
    @Test func aHoldOutlastingItsSecondsIsKeptByRenewal() throws {
        let (a, b) = try hosts()
        let asset = try readyAsset(a)
        #expect(try a.holdAsset(asset.id, seconds: 1))
        // The operation runs well past its 1 s hold.
        Thread.sleep(forTimeInterval: 2.5)
        #expect(try b.holdAsset(asset.id, seconds: 60) == false, "renewed while a works")
        try a.releaseAsset(asset.id)
        #expect(try b.holdAsset(asset.id, seconds: 60), "released: b may take it")
    }

    /// One pass at a time across hosts, under a session-level advisory lock on a
    /// connection of its own: no transaction stays open (idle) while the pass waits on S3,
    /// and the lock is let go at the end, also when the pass throws. (One test: the lock
    /// is the database's, which every test's schema shares.)
    @Test func oneReconcilerPassAcrossHosts() throws {
        let (a, b) = try hosts()
        // The sessions holding the reconciler's lock (a bigint key: classid, objid, objsubid 1).
        func holders() throws -> [String] {
            try b.pool.with { connection in
                try connection.query("""
                    SELECT a.state FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.classid = $1 AND l.objid = $2
                    """, [PostgresRecordStore.reconcilerLock >> 32, PostgresRecordStore.reconcilerLock & 0xFFFF_FFFF]
                ).rows.map { $0.string(0) ?? "?" }
            }
        }
        let inner = try a.asReconcilerPass(minimumInterval: 60) {
            (other: try b.asReconcilerPass(minimumInterval: 0) { "b ran inside a's pass" }, holders: try holders())
        }
        let ran = try #require(inner, "a ran")
        #expect(ran.other == nil, "b found the pass taken")
        #expect(ran.holders == ["idle"], "the pass's lock is held by a session idle outside any transaction")
        #expect(try holders().isEmpty, "unlocked at the end")
        #expect(try b.asReconcilerPass(minimumInterval: 60) { true } == nil, "a's pass was moments ago")
        struct Failed: Error {}
        #expect(throws: (any Error).self) { try a.asReconcilerPass(minimumInterval: 0) { () throws -> Int in throw Failed() } }
        #expect(try holders().isEmpty, "unlocked when the pass threw")
        #expect(try b.asReconcilerPass(minimumInterval: 0) { true } == true)
    }

    /// migrate-db: every record of a filled SQLite file, ids and states kept; the next id
    /// follows the last SQLite gave; a second copy into the same database is refused.
    @Test func aSQLiteDatabaseIsCopiedWhole() throws {
        guard case .sqlite(let path) = try Backend.sqlite.fresh(), case .postgres(let url) = try Backend.postgres.fresh() else { return }
        let lite = try SQLiteRecordStore(path: path)
        try lite.activateEventSinks(["hook"], now: Date())
        let ready = try lite.createAsset(NewAsset(workspaceID: 1, fileType: "image/jpeg", fileExtension: "jpg", fileName: "é.jpg", size: 3))
        _ = try lite.markAssetReady(id: ready.id, size: 3, etag: "\"a\"", sha256: "s", thumbnail: .none)
        _ = try lite.describeAsset(id: ready.id, workspaceID: 1, title: .set("Plage"), tags: .set(["été", "mer"]))
        try lite.recordMedia(assetID: ready.id, etag: "\"a\"", media: MediaMetadata(width: 4, height: 3, cameraMake: "Canon"), now: Date())
        try lite.queueThumbnail(assetID: ready.id)
        let pending = try lite.createAsset(NewAsset(workspaceID: 2, fileType: "image/png", fileExtension: "png", fileName: nil, size: nil))
        _ = try lite.createUpload(uploadID: "up-1", asset: pending, fileSize: 10, partSize: 5)
        _ = try lite.recordSignedPartMD5s(uploadID: "up-1", md5s: [(1, String(repeating: "a", count: 32))], now: Date())
        let gone = try lite.createAsset(NewAsset(workspaceID: 1, fileType: "image/png", fileExtension: "png", fileName: nil, size: nil))
        try lite.markAssetDeleted(id: gone.id)
        let discarded = try lite.createAsset(NewAsset(workspaceID: 1, fileType: "image/png", fileExtension: "png", fileName: nil, size: nil))
        try lite.discardPendingAsset(id: discarded.id)
        let change = VersionSwitch(assetID: ready.id, workspaceID: 1, version: 2, stagingKey: "1/versions/\(ready.id)/v2.png",
                                   newKey: "1/digital_assets/\(ready.id).png", fileType: "image/png", fileName: nil, size: 4,
                                   etag: "\"b\"", state: .stored, createdAt: Date(timeIntervalSince1970: 1_700_000_000.25))
        _ = try lite.beginDirectVersion(change)

        let counts = try RecordCopy.copy(sqlitePath: path, toPostgres: url)
        #expect(counts.map(\.rows) == [3, 1, 0, 1, 1, 1, 3, 1, 3], "asset.ready, asset.updated and asset.deleted, for one sink")
        let pg = try PostgresRecordStore(url: url)
        for asset in [ready, pending, gone] {
            #expect(try pg.asset(id: asset.id, workspaceID: asset.workspaceID) == lite.asset(id: asset.id, workspaceID: asset.workspaceID))
        }
        #expect(try pg.upload(uploadID: "up-1", assetID: pending.id, workspaceID: 2) == lite.upload(uploadID: "up-1", assetID: pending.id, workspaceID: 2))
        #expect(try pg.signedPartMD5s(uploadID: "up-1") == lite.signedPartMD5s(uploadID: "up-1"))
        #expect(try pg.versionSwitch(assetID: ready.id) == change)
        #expect(try pg.thumbnailState(assetID: ready.id) == lite.thumbnailState(assetID: ready.id))
        #expect(try pg.deletedAssetsToSweep(deletedBefore: Date().addingTimeInterval(60), limit: 10).map(\.id) == [gone.id])
        let next = try pg.createAsset(NewAsset(workspaceID: 1, fileType: "image/png", fileExtension: "png", fileName: nil, size: nil))
        #expect(next.id == discarded.id + 1, "no id SQLite gave out is given again")
        // Titles, tags and media came too, and the search indexes them.
        #expect(try pg.asset(id: ready.id, workspaceID: 1)?.media?.cameraMake == "Canon")
        #expect(try pg.searchAssets(AssetQuery(workspaceID: 1, text: SearchText("ete"), sort: .relevance)).map(\.asset.id) == [ready.id])
        // The outbox: what waited is still due, under the same ids, and no id is given again.
        try pg.activateEventSinks(["hook"], now: Date())
        let waiting = try pg.claimDeliveries(sink: "hook", limit: 10, now: Date(), leaseUntil: Date().addingTimeInterval(30))
        #expect(waiting.map(\.type) == [.assetReady, .assetDeleted]) // asset.updated waits for asset.ready
        let copied = try lite.eventDeliveries(state: .pending, limit: 10)
        #expect(copied.map(\.type) == [.assetReady, .assetUpdated, .assetDeleted])
        #expect(waiting.map(\.eventID) == [copied[0].eventID, copied[2].eventID])
        _ = try pg.markAssetReady(id: next.id, size: 1, etag: "\"n\"", sha256: nil, thumbnail: .none)
        let later = try pg.claimDeliveries(sink: "hook", limit: 10, now: Date(), leaseUntil: Date().addingTimeInterval(30))
        #expect(later.count == 1 && later[0].eventID > waiting.map(\.eventID).max()!)
        #expect(throws: RecordStoreError.self) { try RecordCopy.copy(sqlitePath: path, toPostgres: url) }
    }

    /// L5: a database that hosts started against holds their sinks and reconciler passes,
    /// bookkeeping, but no record: migrate-db copies into it, the sinks of both sides
    /// merged and every one active; a single record of any kind refuses it, naming its table.
    @Test func aDatabaseAHostStartedAgainstTakesTheCopy() throws {
        guard case .sqlite(let path) = try Backend.sqlite.fresh(), case .postgres(let url) = try Backend.postgres.fresh() else { return }
        let lite = try SQLiteRecordStore(path: path)
        try lite.activateEventSinks(["hook", "lite-only"], now: Date())
        let asset = try lite.createAsset(NewAsset(workspaceID: 1, fileType: "image/jpeg", fileExtension: "jpg", fileName: "a.jpg", size: 3))
        _ = try lite.markAssetReady(id: asset.id, size: 3, etag: "\"a\"", sha256: nil, thumbnail: .none)
        let host = try PostgresRecordStore(url: url)
        try host.activateEventSinks(["hook", "pg-only"], now: Date())
        #expect(try host.asReconcilerPass(minimumInterval: 0) { true } == true)

        let counts = try RecordCopy.copy(sqlitePath: path, toPostgres: url)
        #expect(counts.first { $0.table == "asset" }?.rows == 1)
        let sinks = try host.eventSinks()
        #expect(sinks.map(\.sink).sorted() == ["hook", "lite-only", "pg-only"])
        #expect(sinks.allSatisfy { $0.active && $0.disabledAt == nil })
        #expect(try host.asset(id: asset.id, workspaceID: 1) == lite.asset(id: asset.id, workspaceID: 1))
        let due = try host.claimDeliveries(sink: "hook", limit: 10, now: Date(), leaseUntil: Date().addingTimeInterval(30))
        #expect(due.map(\.type) == [.assetReady])

        // Any record in the target refuses the copy, and leaves the target as it was.
        guard case .postgres(let busyURL) = try Backend.postgres.fresh() else { return }
        let busy = try PostgresRecordStore(url: busyURL)
        _ = try busy.createAsset(NewAsset(workspaceID: 9, fileType: "image/png", fileExtension: "png", fileName: nil, size: nil))
        do {
            _ = try RecordCopy.copy(sqlitePath: path, toPostgres: busyURL)
            Issue.record("copied into a database that holds an asset")
        } catch let error as RecordStoreError {
            #expect("\(error)".contains("already holds records (asset: 1 rows)"), "\(error)")
        }
        #expect(try busy.asset(id: asset.id, workspaceID: 1) == nil)
    }

    /// As check-config reads it (inspectSchema): none before the first start, then every
    /// migration, once, though two hosts opened the database.
    @Test func theSchemaVersionIsRecordedAndMigrationsRunOnce() throws {
        guard case .postgres(let url) = try Backend.postgres.fresh() else { throw TestDatabase.NoServer() }
        #expect(try PostgresRecordStore.inspectSchema(url: url).current == nil)
        _ = try PostgresRecordStore(url: url)
        _ = try PostgresRecordStore(url: url)
        let schema = try PostgresRecordStore.inspectSchema(url: url)
        #expect(schema.current == schema.expected)
        #expect(schema.expected == PostgresRecordStore.migrations.count)
    }

    /// The sysadmin's review, H2: migrations ran under the pool's statement and lock
    /// timeouts (ASSETD_DATABASE_STATEMENT_TIMEOUT), so a step over many rows was cancelled
    /// (57014) at every start, and a second host waiting for the first one's migration was
    /// cancelled too. Here the timeouts are 1 ms: the steps themselves (CREATE EXTENSION
    /// alone takes longer) and a wait of about a second on the migration lock, held as
    /// another host migrating would, still succeed, and each step is logged.
    @Test func migrationsRunPastTheStatementTimeoutAndWaitForAnotherHostsLock() throws {
        guard case .postgres(let url) = try Backend.postgres.fresh() else { throw TestDatabase.NoServer() }
        // Another host: holds the migration lock for a second, on a connection of its own.
        let locked = DispatchSemaphore(value: 0)
        let holder = Thread {
            guard let other = try? PGPool(url: url, settings: .init()).connect() else { locked.signal(); return }
            _ = try? other.query("SELECT pg_advisory_lock($1)", [PostgresRecordStore.migrationLock])
            locked.signal()
            Thread.sleep(forTimeInterval: 1)
            _ = try? other.query("SELECT pg_advisory_unlock($1)", [PostgresRecordStore.migrationLock])
        }
        holder.start()
        locked.wait()
        let lines = Mutex<[String]>([])
        var settings = PostgresRecordStore.Settings()
        settings.statementTimeout = .milliseconds(1)
        settings.migrationLog = { line in lines.withLock { $0.append(line) } }
        let start = ContinuousClock.now
        _ = try PostgresRecordStore(url: url, settings: settings)
        #expect(ContinuousClock.now - start > .milliseconds(900), "it waited for the lock")
        #expect(try PostgresRecordStore.inspectSchema(url: url).current == PostgresRecordStore.migrations.count)
        var logged = lines.withLock { $0 }
        // The wait is said before it starts (review L2): that line starts systemd's
        // EXTEND_TIMEOUT_USEC keepalive, which would otherwise wait for the first step.
        #expect(logged.first == "waiting for another host's migration (the schema's lock, at most \(PostgresRecordStore.migrationLockTimeout))", "\(logged)")
        logged.removeFirst()
        #expect(logged.first == "migrating schema 0 -> \(PostgresRecordStore.migrations.count) (PostgreSQL, one transaction: reads and writes of the tables it alters wait)")
        // Then the indexes built concurrently after the COMMIT (buildIndexes), two lines each.
        let built = PostgresRecordStore.concurrentIndexes.count * 2
        #expect(logged.count == PostgresRecordStore.migrations.count + 1 + built, "\(logged)")
        #expect(logged.dropFirst().dropLast(built).allSatisfy { $0.hasPrefix("migrated \"v") && $0.hasSuffix(" s") }, "\(logged)")
        let names = PostgresRecordStore.concurrentIndexes.map(\.name)
        #expect(logged.suffix(built).allSatisfy { line in
            names.contains { line.hasPrefix("building index \($0) (") || line.hasPrefix("built index \($0) in ") }
        }, "\(logged)")
        // Current: nothing to migrate, so nothing to say about it. (A wait for the lock may
        // be said: the lock is the database's, and other tests migrate their own schemas
        // meanwhile.)
        lines.withLock { $0.removeAll() }
        _ = try PostgresRecordStore(url: url, settings: settings)
        let said = lines.withLock { $0 }.filter { !$0.hasPrefix("waiting for another host's migration") }
        #expect(said.isEmpty, "\(said)")
    }

    /// Review 12, P2: v9 built its indexes in the migration's transaction, which held every
    /// host's writes to asset (SHARE) until the COMMIT. Now, at the moment v9 is recorded,
    /// still in that transaction, another connection takes the lock an INSERT takes at
    /// once; the indexes come after the COMMIT (CREATE INDEX CONCURRENTLY, `buildIndexes`).
    @Test func migrationV9HoldsNoWriteLockAndItsIndexesComeAfterTheCommit() throws {
        guard case .postgres(let url) = try Backend.postgres.fresh() else { throw TestDatabase.NoServer() }
        let pool = PGPool(url: url, settings: .init())
        try pool.with { try PostgresRecordStore.migrate($0, through: 8) }
        let writes = Mutex<[String]>([])
        let log: MigrationLog = { line in
            guard line.hasPrefix("migrated \"v9") else { return }
            do {
                let other = try PGPool(url: url, settings: .init()).connect()
                try other.execute("BEGIN; SET LOCAL lock_timeout = '200ms'; LOCK TABLE asset IN ROW EXCLUSIVE MODE")
                try other.execute("ROLLBACK")
                writes.withLock { $0.append("written") }
            } catch {
                writes.withLock { $0.append("\(error)") }
            }
        }
        try pool.with { try PostgresRecordStore.migrate($0, log: log) }
        #expect(writes.withLock { $0 } == ["written"])
        let connection = try pool.connect()
        func valid(_ name: String) throws -> Bool? {
            try connection.query("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)", [name]).first?.bool(0)
        }
        #expect(try valid("asset_by_type") == nil)
        try PostgresRecordStore.buildIndexes(try pool.connect(), log: nil)
        for index in PostgresRecordStore.concurrentIndexes { #expect(try valid(index.name) == true, "\(index.name)") }
    }

    /// Review14 P2: a backend terminated while a pipelined statement runs (an administrator,
    /// a restart) sends its error (57P01) before the connection ends: the error thrown is
    /// that one, marked lost (so that the pool discards the connection and retries once),
    /// not a generic "ended without its Sync".
    @Test func aPipelineLostMidStatementSaysWhy() throws {
        guard case .postgres(let url) = try Backend.postgres.fresh() else { throw TestDatabase.NoServer() }
        let connection = try PGPool(url: url, settings: .init()).connect()
        let pid = try #require(try connection.query("SELECT pg_backend_pid()").first?.int(0))
        let killer = Thread {
            Thread.sleep(forTimeInterval: 0.3)
            _ = try? PGPool(url: url, settings: .init()).connect().query("SELECT pg_terminate_backend($1)", [Int64(pid)])
        }
        killer.start()
        do {
            _ = try connection.query(after: ["SET enable_sort = on"], "SELECT pg_sleep($1::float8)", [Int64(2)])
            Issue.record("the statement was not ended")
        } catch {
            #expect(error.sqlState == "57P01" && error.connectionLost && error.message.hasSuffix("[pipeline]"), "\(error)")
        }
        #expect(!connection.isUsable)
    }

    /// Review 12, P3: a CREATE INDEX CONCURRENTLY that did not finish (cancelled, or here
    /// failed on a duplicate) leaves an INVALID index under the name, which IF NOT EXISTS
    /// kept forever. The next start drops it and builds it again, saying so; searches with
    /// a type give the same results meanwhile, without it.
    @Test func anInvalidIndexIsBuiltAgainAtStart() throws {
        guard case .postgres(let url) = try Backend.postgres.fresh() else { throw TestDatabase.NoServer() }
        let first = try PostgresRecordStore(url: url)
        for name in ["b.jpg", "a.jpg"] {
            let asset = try first.createAsset(NewAsset(workspaceID: 1, fileType: "image/jpeg", fileExtension: "jpg", fileName: name, size: 10))
            _ = try first.markAssetReady(id: asset.id, size: 10, etag: "\"e1\"", sha256: nil, thumbnail: .none)
        }
        let listing = { (db: PostgresRecordStore) in
            try db.searchAssets(AssetQuery(workspaceID: 1, kind: .image, sort: .name, order: .ascending, limit: 10)).compactMap(\.asset.fileName)
        }
        let before = try listing(first)
        let other = try PGPool(url: url, settings: .init()).connect()
        try other.execute("DROP INDEX asset_by_type_name")
        #expect(try listing(first) == before, "the same results without the index")
        #expect(throws: PGError.self) {
            try other.execute("CREATE UNIQUE INDEX CONCURRENTLY asset_by_type_name ON asset (workspace_id)")
        }
        func state() throws -> (valid: Bool?, definition: String?) {
            let row = try other.query("""
                SELECT indisvalid, pg_get_indexdef(indexrelid) FROM pg_index WHERE indexrelid = to_regclass('asset_by_type_name')
                """).first
            return (row?.bool(0), row?.string(1))
        }
        #expect(try state().valid == false)
        let lines = Mutex<[String]>([])
        var settings = PostgresRecordStore.Settings()
        settings.migrationLog = { line in lines.withLock { $0.append(line) } }
        let second = try PostgresRecordStore(url: url, settings: settings)
        let (valid, definition) = try state()
        #expect(valid == true)
        #expect(definition?.contains("translate(") == true && definition?.contains("UNIQUE") == false, "\(definition ?? "")")
        let logged = lines.withLock { $0 }.filter { !$0.hasPrefix("waiting for another host's migration") }
        #expect(logged.count == 3, "\(logged)")
        #expect(logged.first == "index asset_by_type_name is INVALID (a CREATE INDEX CONCURRENTLY that did not finish): dropping it to build it again")
        #expect(logged.dropFirst().first == "building index asset_by_type_name (CREATE INDEX CONCURRENTLY over 2 assets; writes go on meanwhile)")
        #expect(logged.last?.hasPrefix("built index asset_by_type_name in ") == true && logged.last?.hasSuffix(" s (2 assets)") == true)
        #expect(try listing(second) == before && before == ["a.jpg", "b.jpg"])
    }

    /// Review 12, P1: the search connections are extra, so they are few (2 to 4 by default),
    /// named `assetd-search` in pg_stat_activity, closed once idle, and counted with the
    /// others against the server's max_connections, read at start.
    @Test func searchConnectionsAreNamedAndClosedWhenIdle() throws {
        guard case .postgres(let url) = try Backend.postgres.fresh() else { throw TestDatabase.NoServer() }
        let store = try PostgresRecordStore(url: url)
        #expect((2...4).contains(PostgresRecordStore.defaultSearches))
        #expect(store.maxConnections.map { $0 > 0 } == true)
        #expect(store.connectionBudget.total == 10 + PostgresRecordStore.defaultSearches + 1 + 1)
        _ = try store.searchAssets(AssetQuery(workspaceID: 1, text: SearchText("cat")!, sort: .relevance))
        let (pid, name) = try store.searchPool.with { connection in
            let row = try connection.query("SELECT pg_backend_pid(), current_setting('application_name')").first
            return (row?.int(0), row?.string(1))
        }
        #expect(name == "assetd-search")
        #expect(store.searchPool.openConnections == 1)
        store.searchPool.closeIdle(olderThan: .seconds(60))
        #expect(store.searchPool.openConnections == 1, "not idle for long yet")
        store.searchPool.closeIdle(olderThan: .zero)
        #expect(store.searchPool.openConnections == 0)
        let other = try PGPool(url: url, settings: .init()).connect()
        var gone = false
        for _ in 0..<50 where !gone {
            gone = try other.query("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", [pid ?? 0]).first?.int(0) == 0
            if !gone { Thread.sleep(forTimeInterval: 0.05) }
        }
        #expect(gone, "the server's backend ended")
        // And a search after that opens one again.
        _ = try store.searchAssets(AssetQuery(workspaceID: 1, text: SearchText("cat")!, sort: .relevance))
        #expect(store.searchPool.openConnections == 1)
    }
}

/// No server needed.
struct PostgresConnectionTests {
    /// Review 12, P1: what this process may hold, and the warning past a quarter of max_connections.
    @Test func theConnectionBudgetWarnsPastAQuarterOfMaxConnections() {
        let budget = PostgresRecordStore.ConnectionBudget(pool: 10, searches: 4, listener: 1)
        #expect(budget.description == "16 (pool 10 + searches 4 + upload listener 1 + reconciler 1)")
        #expect(budget.warning(maxConnections: 100) == nil)
        #expect(budget.warning(maxConnections: 63)?.contains("this process may open 16 (pool 10") == true)
        var settings = PostgresRecordStore.Settings()
        settings.uploadCache = false
        #expect(PostgresRecordStore.connectionBudget(settings).total == 10 + PostgresRecordStore.defaultSearches + 1)
    }

    @Test func passwordsNeverShow() {
        #expect(DatabaseLocation.redacted("postgres://assetd:s3cret@db.example:5432/assetd?sslmode=require")
                == "postgres://assetd:***@db.example:5432/assetd?sslmode=require")
        #expect(DatabaseLocation.redacted("postgresql://assetd@db/assetd?password=s3cret&sslmode=verify-full")
                == "postgresql://assetd@db/assetd?password=***&sslmode=verify-full")
        #expect(DatabaseLocation.redacted("/var/lib/assetd/assetd.sqlite") == "/var/lib/assetd/assetd.sqlite")
        #expect(DatabaseLocation.isPostgres("postgresql://x") && DatabaseLocation.isPostgres("postgres://x"))
        #expect(!DatabaseLocation.isPostgres("/var/lib/postgres://x"))
    }

    /// A server that is down: a 503 within bounded time, and the callers after the first
    /// fail at once instead of each waiting out a connect timeout.
    @Test func anUnreachableServerFailsFastAndAsUnavailable() throws {
        // A port nothing listens on (bound, never listened: connect is refused).
        let url = "postgresql://assetd:x@127.0.0.1:1/assetd"
        let clock = ContinuousClock()
        let started = clock.now
        #expect(throws: RecordStoreError.self) { try PostgresRecordStore(url: url) }
        let pool = PGPool(url: url, settings: .init())
        var unavailable = 0
        for _ in 0..<20 {
            do { try pool.with { try $0.query("SELECT 1") } } catch let error as PGError { if error.isUnavailable { unavailable += 1 } }
        }
        #expect(unavailable == 20)
        #expect(clock.now - started < .seconds(5))
    }
}

extension PostgresRecordStoreTests {
    /// Hosts claiming one sink's deliveries share them: a delivery one host leased is not
    /// another's, and an asset's later event waits for its earlier one whoever holds it.
    @Test func hostsShareTheOutboxAndKeepEachAssetsOrder() throws {
        let (a, b) = try hosts()
        try a.activateEventSinks(["hook"], now: Date())
        let first = try readyAsset(a)
        let second = try readyAsset(a)
        try a.queueThumbnail(assetID: first.id)
        _ = try #require(try a.claimThumbnail(assetID: first.id))
        #expect(try a.finishThumbnail(assetID: first.id, etag: first.etag, status: .ready, reason: nil))
        let now = Date()
        let fromA = try a.claimDeliveries(sink: "hook", limit: 1, now: now, leaseUntil: now.addingTimeInterval(30))
        #expect(fromA.map(\.assetID) == [first.id])
        let fromB = try b.claimDeliveries(sink: "hook", limit: 10, now: now, leaseUntil: now.addingTimeInterval(30))
        #expect(fromB.map(\.assetID) == [second.id], "first's thumbnail.ready waits for its asset.ready, leased to a")
        try a.finishDelivery(eventID: fromA[0].eventID, sink: "hook", attempt: fromA[0].attempts, outcome: .delivered, now: now)
        let next = try b.claimDeliveries(sink: "hook", limit: 10, now: now, leaseUntil: now.addingTimeInterval(30))
        #expect(next.map(\.type) == [.thumbnailReady])
        #expect(try a.eventBacklog() == 2)
    }

    /// Review 12, P6: a search waited up to 5 s for its turn (`SearchGate`) and then up to
    /// 5 s more for a connection. The gate's deadline now bounds the pool's wait: a search
    /// that waited its 5 s at the gate finds the pool's wait over, not starting.
    @Test func aSearchWaitsForItsTurnAndAConnectionWithinOneTimeout() throws {
        guard case .postgres(let url) = try Backend.postgres.fresh() else { throw TestDatabase.NoServer() }
        var settings = PGPool.Settings()
        settings.size = 1
        settings.acquireTimeout = .seconds(5)
        let pool = PGPool(url: url, settings: settings)
        let gate = SearchGate(limit: 1, timeout: .milliseconds(600))
        let holding = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        // The pool's only connection taken by another statement (not a search) meanwhile.
        Thread.detachNewThread {
            _ = try? pool.with { _ in holding.signal(); release.wait() }
        }
        holding.wait()
        defer { release.signal() }
        let start = ContinuousClock.now
        #expect(throws: PGError.self) {
            try gate.run { deadline in try pool.with(until: deadline) { _ in } }
        }
        let waited = ContinuousClock.now - start
        #expect(waited >= .milliseconds(500) && waited < .seconds(2), "\(waited)")
    }
}
