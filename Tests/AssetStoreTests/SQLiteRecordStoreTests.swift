import Foundation
import Testing
@testable import AssetStore
import TestFiles

/// The store's rules, on every backend of `Backend.all` (PostgreSQL when a server is given).
struct SQLiteRecordStoreTests {

    @Test(arguments: Backend.all) func idsComeFromTheDatabaseAndKeysFollow(_ backend: Backend) throws {
        let db = try backend.fresh().open()
        let a = try db.createAsset(NewAsset(workspaceID: 7, fileType: "image/jpeg", fileExtension: "jpg", fileName: "a.jpg", size: 10))
        let b = try db.createAsset(NewAsset(workspaceID: 7, fileType: "application/pdf", fileExtension: "pdf", fileName: nil, size: nil))
        #expect(b.id == a.id + 1)
        #expect(a.key == "7/digital_assets/\(a.id).jpg")
        #expect(try db.asset(id: a.id, workspaceID: 7) == a)
        #expect(try db.asset(id: a.id, workspaceID: 8) == nil)
    }

    @Test(arguments: Backend.all) func uploadIsBoundToAssetAndWorkspace(_ backend: Backend) throws {
        let db = try backend.fresh().open()
        let asset = try db.createAsset(NewAsset(workspaceID: 1, fileType: "image/png", fileExtension: "png", fileName: nil, size: nil))
        let other = try db.createAsset(NewAsset(workspaceID: 1, fileType: "image/png", fileExtension: "png", fileName: nil, size: nil))
        _ = try db.createUpload(uploadID: "U1", asset: asset, fileSize: nil, partSize: nil)
        #expect(try db.upload(uploadID: "U1", assetID: asset.id, workspaceID: 1)?.key == asset.key)
        #expect(try db.upload(uploadID: "U1", assetID: other.id, workspaceID: 1) == nil)
        #expect(try db.upload(uploadID: "U1", assetID: asset.id, workspaceID: 2) == nil)
    }

    @Test(arguments: Backend.all) func completeIsOnceAndMakesTheAssetReady(_ backend: Backend) throws {
        let db = try backend.fresh().open()
        let asset = try db.createAsset(NewAsset(workspaceID: 1, fileType: "image/png", fileExtension: "png", fileName: nil, size: nil))
        _ = try db.createUpload(uploadID: "U2", asset: asset, fileSize: nil, partSize: nil)
        let completed = try db.completeUpload(uploadID: "U2", partsDigest: "d", location: "l", etag: "e", size: 99, thumbnail: .pending)
        #expect(completed?.id == asset.id)
        #expect(completed?.status == .ready)
        #expect(try db.completeUpload(uploadID: "U2", partsDigest: "d", location: "l", etag: "e", size: 99, thumbnail: .pending) == nil)
        let ready = try #require(try db.asset(id: asset.id, workspaceID: 1))
        #expect(ready.status == .ready)
        #expect(ready.size == 99)
        #expect(ready.thumbnailStatus == .pending)
        #expect(try db.abortUpload(uploadID: "U2") == .completed)
    }

    /// The MD5s signed for parts live only while their upload is pending: any token holder
    /// may sign up to 10,000 parts an upload, and the table must not keep them for ever.
    @Test(arguments: Backend.all) func signedPartMD5sGoWhenTheirUploadEnds(_ backend: Backend) throws {
        let db = try backend.fresh().open()
        let now = Date()
        var uploads: [String] = []
        for name in ["completed", "aborted", "expired", "rejected", "pending"] {
            let asset = try db.createAsset(NewAsset(workspaceID: 1, fileType: "image/png", fileExtension: "png", fileName: nil, size: nil))
            _ = try db.createUpload(uploadID: name, asset: asset, fileSize: nil, partSize: nil)
            #expect(try db.recordSignedPartMD5s(uploadID: name, md5s: [(1, String(repeating: "a", count: 32)), (2, String(repeating: "b", count: 32))],
                                                now: now))
            #expect(try db.signedPartMD5s(uploadID: name).count == 2)
            uploads.append(name)
        }
        _ = try db.completeUpload(uploadID: "completed", partsDigest: "d", location: "l", etag: "e", size: 1, thumbnail: .none)
        _ = try db.abortUpload(uploadID: "aborted", now: now)
        _ = try db.expireUpload(uploadID: "expired", now: now)
        _ = try db.rejectUpload(uploadID: "rejected", now: now)
        for name in uploads.dropLast() {
            #expect(try db.signedPartMD5s(uploadID: name).isEmpty, "upload \(name)")
        }
        #expect(try db.signedPartMD5s(uploadID: "pending").count == 2)
        // An ended upload takes no new ones either.
        #expect(try !db.recordSignedPartMD5s(uploadID: "aborted", md5s: [(3, String(repeating: "c", count: 32))], now: now))
    }

    @Test(arguments: Backend.all) func abortMarksUploadAndPendingAsset(_ backend: Backend) throws {
        let db = try backend.fresh().open()
        let asset = try db.createAsset(NewAsset(workspaceID: 1, fileType: "image/png", fileExtension: "png", fileName: nil, size: nil))
        _ = try db.createUpload(uploadID: "U3", asset: asset, fileSize: nil, partSize: nil)
        #expect(try db.abortUpload(uploadID: "U3") == .aborted)
        #expect(try db.asset(id: asset.id, workspaceID: 1)?.status == .aborted)
        #expect(try db.completeUpload(uploadID: "U3", partsDigest: "d", location: "l", etag: "e", size: 1, thumbnail: .none) == nil)
    }

    @Test(arguments: Backend.all) func listingPagesNewestFirstAndHidesDeleted(_ backend: Backend) throws {
        let db = try backend.fresh().open()
        var ids: [Int64] = []
        for _ in 0..<5 {
            ids.append(try db.createAsset(NewAsset(workspaceID: 3, fileType: "image/png", fileExtension: "png", fileName: nil, size: nil)).id)
        }
        _ = try db.createAsset(NewAsset(workspaceID: 4, fileType: "image/png", fileExtension: "png", fileName: nil, size: nil))
        try db.markAssetDeleted(id: ids[4])
        let first = try db.assets(workspaceID: 3, limit: 2, before: nil)
        #expect(first.map(\.id) == [ids[3], ids[2]])
        let second = try db.assets(workspaceID: 3, limit: 2, before: first.last?.id)
        #expect(second.map(\.id) == [ids[1], ids[0]])
    }

    /// An asset whose delete began (and has not finished) answers 404 by id: the listing
    /// must not show it either.
    @Test(arguments: Backend.all) func listingHidesAnAssetBeingDeleted(_ backend: Backend) throws {
        let db = try backend.fresh().open()
        let kept = try db.createAsset(NewAsset(workspaceID: 5, fileType: "image/png", fileExtension: "png", fileName: nil, size: nil))
        let going = try db.createAsset(NewAsset(workspaceID: 5, fileType: "image/png", fileExtension: "png", fileName: nil, size: nil))
        guard case .deleting? = try db.beginDelete(id: going.id) else {
            Issue.record("the delete did not begin")
            return
        }
        #expect(try db.asset(id: going.id, workspaceID: 5)?.status.isGone == true)
        #expect(try db.assets(workspaceID: 5, limit: 10, before: nil).map(\.id) == [kept.id])
    }

    @Test(arguments: Backend.all) func reopeningKeepsRecordsAndMigrationsRunOnce(_ backend: Backend) throws {
        let database = try backend.fresh()
        let asset = try database.open().createAsset(NewAsset(workspaceID: 1, fileType: "image/gif", fileExtension: "gif", fileName: "x", size: nil))
        let again = try database.open()
        #expect(try again.asset(id: asset.id, workspaceID: 1)?.fileName == "x")
        try again.ping()
    }

    @Test(arguments: Backend.all) func discardRemovesAssetAndUploads(_ backend: Backend) throws {
        let db = try backend.fresh().open()
        let asset = try db.createAsset(NewAsset(workspaceID: 1, fileType: "image/png", fileExtension: "png", fileName: nil, size: nil))
        _ = try db.createUpload(uploadID: "U4", asset: asset, fileSize: nil, partSize: nil)
        #expect(try db.discardPendingAsset(id: asset.id))
        #expect(try db.asset(id: asset.id, workspaceID: 1) == nil)
        #expect(try db.upload(uploadID: "U4", assetID: asset.id, workspaceID: 1) == nil)
    }
}

struct ThreadReaderTests {
    /// The per-thread readers see every write at once, on any thread, and never a record
    /// of another asset or workspace.
    @Test func readersSeeWritesFromEveryThread() async throws {
        let path = TestFiles.sqlitePath("assetd-readers")
        let db = try SQLiteRecordStore(path: path)
        let asset = try db.createAsset(NewAsset(workspaceID: 9, fileType: "image/png", fileExtension: "png", fileName: nil, size: nil))
        _ = try db.createUpload(uploadID: "R1", asset: asset, fileSize: 10, partSize: nil)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<16 {
                group.addTask {
                    let mine = try db.upload(uploadID: "R1", assetID: asset.id, workspaceID: 9)
                    let otherWorkspace = try db.upload(uploadID: "R1", assetID: asset.id, workspaceID: 8)
                    let injected = try db.upload(uploadID: "R1'; --", assetID: asset.id, workspaceID: 9)
                    #expect(mine?.status == .pending)
                    #expect(otherWorkspace == nil)
                    #expect(injected == nil)
                }
            }
            try await group.waitForAll()
        }
        _ = try db.abortUpload(uploadID: "R1")
        let seen = try db.upload(uploadID: "R1", assetID: asset.id, workspaceID: 9)
        #expect(seen?.status == .aborted)
        #expect(seen?.fileSize == 10)
        #expect(seen?.partSize == nil)
        #expect(seen?.key == asset.key)
    }
}

struct UploadCacheTests {
    let path = TestFiles.sqlitePath()

    func pendingUpload(_ db: SQLiteRecordStore, _ id: String) throws -> AssetRecord {
        let asset = try db.createAsset(NewAsset(workspaceID: 1, fileType: "image/png", fileExtension: "png", fileName: nil, size: nil))
        _ = try db.createUpload(uploadID: id, asset: asset, fileSize: nil, partSize: nil)
        return asset
    }

    @Test func aCachedUploadIsStillBoundToItsAssetAndWorkspace() throws {
        let db = try SQLiteRecordStore(path: path)
        let asset = try pendingUpload(db, "C1")
        #expect(try db.upload(uploadID: "C1", assetID: asset.id, workspaceID: 1)?.status == .pending)
        #expect(db.cachedUploadCount == 1)
        #expect(try db.upload(uploadID: "C1", assetID: asset.id + 1, workspaceID: 1) == nil)
        #expect(try db.upload(uploadID: "C1", assetID: asset.id, workspaceID: 2) == nil)
        #expect(try db.upload(uploadID: "C1", assetID: asset.id, workspaceID: 1)?.key == asset.key)
    }

    @Test func abortCompleteAndDeleteAreSeenAtOnce() throws {
        let db = try SQLiteRecordStore(path: path)
        let a = try pendingUpload(db, "A"), b = try pendingUpload(db, "B"), c = try pendingUpload(db, "C")
        for (id, asset) in [("A", a), ("B", b), ("C", c)] {
            #expect(try db.upload(uploadID: id, assetID: asset.id, workspaceID: 1)?.status == .pending)
        }
        #expect(db.cachedUploadCount == 3)
        #expect(try db.pendingUploadCount() == 3)
        _ = try db.abortUpload(uploadID: "A")
        #expect(try db.upload(uploadID: "A", assetID: a.id, workspaceID: 1)?.status == .aborted)
        _ = try db.completeUpload(uploadID: "B", partsDigest: "d", location: "l", etag: "e", size: 1, thumbnail: .none)
        #expect(try db.upload(uploadID: "B", assetID: b.id, workspaceID: 1)?.status == .completed)
        try db.markAssetDeleted(id: c.id)
        #expect(try db.upload(uploadID: "C", assetID: c.id, workspaceID: 1)?.status == .aborted)
        // A deleted asset is not pending: discarding it changes nothing.
        #expect(try db.discardPendingAsset(id: c.id) == false)
        #expect(try db.upload(uploadID: "C", assetID: c.id, workspaceID: 1)?.status == .aborted)
        #expect(db.cachedUploadCount == 0)
        #expect(try db.pendingUploadCount() == 0)
    }

    @Test func aDeleteEvictsItsAssetsUploadsOnly() throws {
        let db = try SQLiteRecordStore(path: path)
        let a = try pendingUpload(db, "DA"), b = try pendingUpload(db, "DB")
        for (id, asset) in [("DA", a), ("DB", b)] {
            #expect(try db.upload(uploadID: id, assetID: asset.id, workspaceID: 1)?.status == .pending)
        }
        try db.markAssetDeleted(id: a.id)
        #expect(db.cachedUploadCount == 1, "the other asset's upload stays cached")
        #expect(try db.upload(uploadID: "DA", assetID: a.id, workspaceID: 1)?.status == .aborted)
        #expect(try db.upload(uploadID: "DB", assetID: b.id, workspaceID: 1)?.status == .pending)
    }

    @Test func aGateThatIsClosedServesAndKeepsNothingUntilOpened() {
        let cache = UploadCache(live: false)
        let record = UploadRecord(uploadID: "G", assetID: 1, workspaceID: 1, key: "k", fileSize: nil, partSize: nil, status: .pending,
                                  partsDigest: nil, location: nil, etag: nil, createdAt: Date(timeIntervalSince1970: 0))
        #expect(cache.upload("G", assetID: 1, workspaceID: 1) { record } == record, "read through")
        #expect(cache.count == 0)
        cache.setLive(true)
        #expect(cache.upload("G", assetID: 1, workspaceID: 1) { record } == record)
        #expect(cache.upload("G", assetID: 1, workspaceID: 1) { Issue.record("read again"); return nil } == record, "from memory")
        #expect(cache.upload("G", assetID: 2, workspaceID: 1) { nil } == nil, "bound to its asset")
        cache.invalidate(assetID: 1)
        #expect(cache.count == 0)
    }

    @Test func aReadOlderThanAnInvalidationIsNotKept() {
        let cache = UploadCache()
        let record = UploadRecord(uploadID: "U", assetID: 1, workspaceID: 1, key: "1/digital_assets/1.png", fileSize: nil,
                                  partSize: nil, status: .pending, partsDigest: nil, location: nil, etag: nil,
                                  createdAt: Date(timeIntervalSince1970: 0))
        let (_, before) = cache.lookup("U")
        cache.invalidate(uploadID: "U")  // a commit lands between the read and the insert
        cache.insert(record, readAt: before)
        #expect(cache.lookup("U").record == nil)
        let (_, now) = cache.lookup("U")
        cache.insert(record, readAt: now)
        #expect(cache.lookup("U").record == record)
        var aborted = record
        aborted.uploadID = "V"
        aborted.status = .aborted
        cache.insert(aborted, readAt: now)
        #expect(cache.lookup("V").record == nil)
    }
}
