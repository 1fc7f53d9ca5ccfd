import Foundation
import GRDB
import Testing
@testable import AssetStore
import TestFiles

/// A stored status or state that no case has is refused on every read path, naming where
/// it is; it is never read as some default (`pending`, `none`, `stored`, `deleted`).
struct CorruptRecordTests {
    let path = TestFiles.sqlitePath("assetd-corrupt")
    func open() throws -> SQLiteRecordStore { try SQLiteRecordStore(path: path) }

    /// Writes behind the store's back, as a hand edit, a newer assetd or a damaged page would.
    func corrupt(_ sql: String) throws {
        try DatabaseQueue(path: path).write { try $0.execute(sql: sql) }
    }

    func readyAsset(_ db: SQLiteRecordStore) throws -> AssetRecord {
        let asset = try db.createAsset(NewAsset(workspaceID: 1, fileType: "image/png", fileExtension: "png", fileName: nil, size: 10))
        return try #require(try db.markAssetReady(id: asset.id, size: 10, etag: "\"e\"", sha256: nil, thumbnail: .none))
    }

    @Test func anUnknownAssetStatusIsRefused() throws {
        let db = try open()
        let asset = try readyAsset(db)
        try corrupt("UPDATE asset SET status = 'bogus' WHERE id = \(asset.id)")
        let refused = RecordStoreError.corruptRecord(table: "asset", column: "status", value: "bogus")
        #expect(throws: refused) { try db.asset(id: asset.id, workspaceID: 1) }
        #expect(throws: refused) { try db.assets(workspaceID: 1, limit: 10, before: nil) }
        #expect(throws: refused) { try db.beginDelete(id: asset.id) }
        // A new version's check read it as deleted (a 409) before.
        let change = VersionSwitch(assetID: asset.id, workspaceID: 1, version: 2, stagingKey: "1/versions/\(asset.id)/v2.png",
                                   newKey: asset.key, fileType: "image/png", fileName: nil, size: 10, etag: "\"f\"",
                                   state: .uploading, createdAt: Date())
        #expect(throws: refused) { try db.beginDirectVersion(change) }
    }

    @Test func anUnknownThumbnailStatusIsRefused() throws {
        let db = try open()
        let ready = try readyAsset(db)
        let pending = try db.createAsset(NewAsset(workspaceID: 1, fileType: "image/png", fileExtension: "png", fileName: nil, size: 10))
        try corrupt("UPDATE asset SET thumbnail_status = 'x'")
        let refused = RecordStoreError.corruptRecord(table: "asset", column: "thumbnail_status", value: "x")
        #expect(throws: refused) { try db.asset(id: ready.id, workspaceID: 1) }
        #expect(throws: refused) { try db.thumbnailState(assetID: ready.id) }
        // The reconciler's work lists: a pending direct upload, then a delete left midway.
        #expect(throws: refused) { try db.pendingDirectAssets(updatedBefore: .distantFuture) }
        try corrupt("UPDATE asset SET status = 'deleting' WHERE id = \(pending.id)")
        #expect(throws: refused) { try db.deletingAssets(updatedBefore: .distantFuture) }
    }

    @Test func anUnknownUploadStatusIsRefusedOnThePresignPath() throws {
        let db = try open()
        let asset = try db.createAsset(NewAsset(workspaceID: 1, fileType: "image/png", fileExtension: "png", fileName: nil, size: nil))
        _ = try db.createUpload(uploadID: "U", asset: asset, fileSize: nil, partSize: nil)
        try corrupt("UPDATE upload SET status = 'x'")
        let refused = RecordStoreError.corruptRecord(table: "upload", column: "status", value: "x")
        // Not cached (never looked up): the lookup goes through ThreadReaders' raw sqlite3 read.
        #expect(throws: refused) { try db.upload(uploadID: "U", assetID: asset.id, workspaceID: 1) }
        #expect(db.cachedUploadCount == 0)
        #expect(throws: refused) { try db.abortUpload(uploadID: "U") }
        // A delete lists the asset's open uploads.
        #expect(throws: refused) { try db.beginDelete(id: asset.id) }
    }

    @Test func anUnknownVersionSwitchStateIsRefused() throws {
        let db = try open()
        let asset = try readyAsset(db)
        let change = VersionSwitch(assetID: asset.id, workspaceID: 1, version: 2, stagingKey: "1/versions/\(asset.id)/v2.png",
                                   newKey: asset.key, fileType: "image/png", fileName: nil, size: 10, etag: "\"f\"",
                                   state: .uploading, createdAt: Date(timeIntervalSince1970: 1))
        _ = try db.beginDirectVersion(change)
        try corrupt("UPDATE version_switch SET state = 'x'")
        let refused = RecordStoreError.corruptRecord(table: "version_switch", column: "state", value: "x")
        #expect(throws: refused) { try db.versionSwitch(assetID: asset.id) }
        #expect(throws: refused) { try db.versionSwitches(createdBefore: .distantFuture) }
    }

    @Test func theErrorSaysWhereTheValueIs() {
        let error = RecordStoreError.corruptRecord(table: "upload", column: "status", value: "x")
        #expect(error.description.contains("upload.status"))
        #expect(error.description.contains("\"x\""))
    }
}
