import Foundation
import Testing
@testable import AssetStore

/// PostgreSQL's pending-upload cache across hosts: two stores ("hosts") on one database,
/// each with its own cache and listening connection.
@Suite(.enabled(if: Backend.postgresURL != nil,
                "no PostgreSQL to test on: set ASSETD_TEST_POSTGRES_URL (scripts/test starts one on loopback and sets it)"))
struct PGUploadCacheTests {
    func hosts() throws -> (PostgresRecordStore, PostgresRecordStore) {
        guard case .postgres(let url) = try Backend.postgres.fresh() else { throw TestDatabase.NoServer() }
        var a = PostgresRecordStore.Settings(), b = PostgresRecordStore.Settings()
        a.owner = "host-a"
        b.owner = "host-b"
        let hosts = (try PostgresRecordStore(url: url, settings: a), try PostgresRecordStore(url: url, settings: b))
        try waitUntil("both listeners LISTEN") { hosts.0.uploadCache!.isLive && hosts.1.uploadCache!.isLive }
        return hosts
    }

    /// Polls `condition` for at most `seconds`; fails the test when it never holds.
    func waitUntil(_ what: String, seconds: Double = 3, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return }
            Thread.sleep(forTimeInterval: 0.01)
        }
        Issue.record("not within \(seconds) s: \(what)")
        throw CancellationError()
    }

    /// A pending upload that host `a` has looked up, so holds in its cache.
    func cachedUpload(_ a: PostgresRecordStore, _ id: String) throws -> UploadRecord {
        let asset = try a.createAsset(NewAsset(workspaceID: 1, fileType: "image/png", fileExtension: "png", fileName: nil, size: nil))
        let upload = try a.createUpload(uploadID: id, asset: asset, fileSize: nil, partSize: nil)
        #expect(try a.upload(uploadID: id, assetID: asset.id, workspaceID: 1)?.status == .pending)
        #expect(a.uploadCache!.lookup(id).record != nil, "the presign lookup cached it")
        #expect(try a.upload(uploadID: id, assetID: asset.id, workspaceID: 2) == nil, "another workspace's, even from memory")
        return upload
    }

    @Test func anUploadAbortedOnAnotherHostIsEvictedWithinBoundedTime() throws {
        let (a, b) = try hosts()
        let upload = try cachedUpload(a, "up-abort")
        #expect(try b.abortUpload(uploadID: upload.uploadID) == .aborted)
        try waitUntil("host a evicts the upload that host b aborted", seconds: 2) { a.uploadCache!.lookup(upload.uploadID).record == nil }
        #expect(try a.upload(uploadID: upload.uploadID, assetID: upload.assetID, workspaceID: 1)?.status == .aborted)
        #expect(a.uploadCache!.lookup(upload.uploadID).record == nil, "only pending uploads are kept")
    }

    @Test func completedExpiredAndDeletedUploadsAreEvictedEverywhereAndAtOnceOnTheirOwnHost() throws {
        let (a, b) = try hosts()
        let completed = try cachedUpload(a, "up-complete")
        let expired = try cachedUpload(a, "up-expire")
        let deleted = try cachedUpload(a, "up-delete")
        let mine = try cachedUpload(b, "up-mine")

        #expect(try b.completeUpload(uploadID: completed.uploadID, partsDigest: "d", location: "l", etag: "\"e\"", size: 1,
                                     thumbnail: .none, now: Date()) != nil)
        #expect(try b.expireUpload(uploadID: expired.uploadID, now: Date()))
        guard case .deleting? = try b.beginDelete(id: deleted.assetID) else { Issue.record("no delete"); return }
        try waitUntil("host a evicts what host b ended", seconds: 2) { a.uploadCache!.count == 0 }

        // This host's own change: evicted right after its commit, before any notification.
        #expect(try b.abortUpload(uploadID: mine.uploadID) == .aborted)
        #expect(b.uploadCache!.lookup(mine.uploadID).record == nil)
    }

    @Test func aLostListeningConnectionClearsTheCacheUntilItListensAgain() throws {
        let (a, b) = try hosts()
        let upload = try cachedUpload(a, "up-lost")
        let listener = a.uploadListener!.backendPID
        #expect(listener != 0)
        _ = try b.pool.with { try $0.query("SELECT pg_terminate_backend($1)", [Int(listener)]) }
        try waitUntil("the cache is cleared once its listener is gone", seconds: 3) { a.uploadCache!.count == 0 }
        try waitUntil("a new listening connection", seconds: 5) {
            a.uploadCache!.isLive && a.uploadListener!.backendPID != 0 && a.uploadListener!.backendPID != listener
        }
        // And it serves again, evicted across hosts as before.
        #expect(try a.upload(uploadID: upload.uploadID, assetID: upload.assetID, workspaceID: 1)?.status == .pending)
        #expect(a.uploadCache!.lookup(upload.uploadID).record != nil)
        #expect(try b.abortUpload(uploadID: upload.uploadID) == .aborted)
        try waitUntil("evicted through the new connection", seconds: 2) { a.uploadCache!.lookup(upload.uploadID).record == nil }
    }

    @Test func aCacheThatIsNotLiveServesNothingAndKeepsNothing() {
        let cache = UploadCache(live: false)
        let record = UploadRecord(uploadID: "u", assetID: 1, workspaceID: 1, key: "k", fileSize: nil, partSize: nil, status: .pending,
                                  partsDigest: nil, location: nil, etag: nil, createdAt: Date())
        cache.insert(record, readAt: cache.lookup("u").generation)
        #expect(cache.count == 0, "not live: nothing kept")
        cache.setLive(true)
        let generation = cache.lookup("u").generation
        cache.invalidate(payload: "u:other")
        cache.insert(record, readAt: generation)
        #expect(cache.count == 0, "an eviction since the read: the read may be stale")
        cache.insert(record, readAt: cache.lookup("u").generation)
        #expect(cache.lookup("u").record != nil)
        cache.setLive(false)
        #expect(cache.lookup("u").record == nil && cache.count == 0)
    }
}

/// Without a server: a listener that cannot connect leaves its cache unused.
struct PGUploadListenerWithoutServerTests {
    @Test func aListenerThatCannotConnectKeepsItsCacheFromServing() {
        let cache = UploadCache(live: false)
        var settings = PGPool.Settings()
        settings.connectTimeout = 1
        let listener = PGUploadListener(parameters: PGPool.parameters(url: "postgresql://nobody@127.0.0.1:1/none", settings: settings),
                                        cache: cache)
        listener.start()
        defer { listener.stop() }
        Thread.sleep(forTimeInterval: 0.3)
        let record = UploadRecord(uploadID: "u", assetID: 1, workspaceID: 1, key: "k", fileSize: nil, partSize: nil, status: .pending,
                                  partsDigest: nil, location: nil, etag: nil, createdAt: Date())
        cache.insert(record, readAt: cache.lookup("u").generation)
        #expect(!cache.isLive && listener.backendPID == 0)
        #expect(cache.lookup("u").record == nil && cache.count == 0)
    }
}
