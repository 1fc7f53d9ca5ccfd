import MediaInfo
import Foundation
import GRDB
import Testing
@testable import AssetStore
import TestFiles

/// On every backend of `Backend.all`.
struct SQLiteRecordStoreThumbnailTests {
    func readyAsset(_ db: any RecordStore, etag: String = "\"e1\"") throws -> AssetRecord {
        let asset = try db.createAsset(NewAsset(workspaceID: 1, fileType: "image/jpeg", fileExtension: "jpg", fileName: nil, size: 10))
        return try #require(try db.markAssetReady(id: asset.id, size: 10, etag: etag, sha256: nil, thumbnail: .none))
    }

    @Test(arguments: Backend.all) func aTaskIsQueuedClaimedAndFinishedOnce(_ backend: Backend) throws {
        let db = try backend.fresh().open()
        let asset = try readyAsset(db)
        #expect(try db.unsettledThumbnails().map(\.id) == [asset.id], "ready, none, no reason: never queued")
        #expect(try db.queueThumbnail(assetID: asset.id))
        let task = try #require(try db.claimThumbnail(assetID: asset.id))
        #expect(task.attempts == 1)
        #expect(try db.unsettledThumbnails().map(\.id) == [asset.id], "pending: resumed after a crash")
        #expect(try db.finishThumbnail(assetID: asset.id, etag: asset.etag, status: .ready, reason: nil))
        #expect(try db.finishThumbnail(assetID: asset.id, etag: asset.etag, status: .failed, reason: "late") == false)
        #expect(try db.thumbnailState(assetID: asset.id) == ThumbnailState(status: .ready, reason: nil, attempts: 1))
        #expect(try db.asset(id: asset.id, workspaceID: 1)?.thumbnailStatus == .ready)
        #expect(try db.unsettledThumbnails().isEmpty)
        #expect(try db.claimThumbnail(assetID: asset.id) == nil, "nothing left to do")
    }

    @Test(arguments: Backend.all) func attemptsCountEachClaim(_ backend: Backend) throws {
        let db = try backend.fresh().open()
        let asset = try readyAsset(db)
        try db.queueThumbnail(assetID: asset.id)
        for n in 1...3 { #expect(try db.claimThumbnail(assetID: asset.id)?.attempts == n) }
    }

    /// The decoder unavailable: the claim's attempt is given back once, fenced on the
    /// attempt and the version.
    @Test(arguments: Backend.all) func aReleaseGivesTheAttemptBack(_ backend: Backend) throws {
        let db = try backend.fresh().open()
        let asset = try readyAsset(db)
        try db.queueThumbnail(assetID: asset.id)
        let first = try #require(try db.claimThumbnail(assetID: asset.id))
        #expect(try db.releaseThumbnail(first, for: .zero))
        #expect(try db.releaseThumbnail(first, for: .zero) == false, "given back once")
        #expect(try db.thumbnailState(assetID: asset.id) == ThumbnailState(status: .pending, reason: nil, attempts: 0))
        let again = try #require(try db.claimThumbnail(assetID: asset.id))
        #expect(again.attempts == 1)
        var stale = again
        stale.asset.etag = "\"other\""
        #expect(try db.releaseThumbnail(stale, for: .zero) == false, "another version's task")
        #expect(try db.finishThumbnail(assetID: asset.id, etag: asset.etag, status: .ready, reason: nil))
        #expect(try db.releaseThumbnail(again, for: .zero) == false, "finished")
        #expect(try db.thumbnailState(assetID: asset.id) == ThumbnailState(status: .ready, reason: nil, attempts: 1))
    }

    /// assetd_thumbnail_pending: pending tasks only (not one never queued, nor a settled one).
    @Test(arguments: Backend.all) func pendingThumbnailsAreCounted(_ backend: Backend) throws {
        let db = try backend.fresh().open()
        let queued = try readyAsset(db), neverQueued = try readyAsset(db), done = try readyAsset(db)
        #expect(try db.pendingThumbnailCount() == 0)
        for asset in [queued, done] { try db.queueThumbnail(assetID: asset.id) }
        #expect(try db.pendingThumbnailCount() == 2)
        _ = try db.claimThumbnail(assetID: done.id)
        #expect(try db.finishThumbnail(assetID: done.id, etag: done.etag, status: .failed, reason: "corrupt"))
        #expect(try db.pendingThumbnailCount() == 1)
        #expect(try db.unsettledThumbnails().map(\.id) == [queued.id, neverQueued.id])
    }

    /// The count each /metrics scrape makes walks the partial index of unsettled tasks,
    /// not every asset.
    @Test func pendingThumbnailsAreCountedThroughThePartialIndex() throws {
        let path = TestFiles.sqlitePath()
        _ = try SQLiteRecordStore(path: path)
        let plan = try DatabaseQueue(path: path).read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + SQLiteRecordStore.pendingThumbnailsSQL).map { $0["detail"] as String }
        }
        #expect(plan.contains { $0.contains("asset_thumbnail_unsettled") }, "\(plan)")
    }

    /// `assetd thumbnails --retry-failed`: failed thumbnails of ready assets, by id and
    /// workspace; requeued as new tasks (attempts 0, no reason), a compare-and-set each.
    @Test(arguments: Backend.all) func failedThumbnailsAreListedAndRequeued(_ backend: Backend) throws {
        let db = try backend.fresh().open()
        var failed: [AssetRecord] = []
        for workspace: Int64 in [1, 2, 1] {
            let created = try db.createAsset(NewAsset(workspaceID: workspace, fileType: "image/jpeg", fileExtension: "jpg", fileName: nil, size: 10))
            let asset = try #require(try db.markAssetReady(id: created.id, size: 10, etag: "\"e1\"", sha256: nil, thumbnail: .pending))
            for _ in 1...3 { _ = try db.claimThumbnail(assetID: asset.id) }
            #expect(try db.finishThumbnail(assetID: asset.id, etag: asset.etag, status: .failed, reason: "S3 failed (after 3 attempts)"))
            failed.append(asset)
        }
        let ready = try readyAsset(db)
        try db.queueThumbnail(assetID: ready.id)
        #expect(try db.finishThumbnail(assetID: ready.id, etag: ready.etag, status: .ready, reason: nil))
        #expect(try db.failedThumbnails(workspaceID: nil, afterID: 0, limit: 10)
                    == failed.map { FailedThumbnail(assetID: $0.id, workspaceID: $0.workspaceID, reason: "S3 failed (after 3 attempts)") })
        #expect(try db.failedThumbnails(workspaceID: 1, afterID: 0, limit: 10).map(\.assetID) == [failed[0].id, failed[2].id])
        #expect(try db.failedThumbnails(workspaceID: nil, afterID: failed[0].id, limit: 1).map(\.assetID) == [failed[1].id])

        #expect(try db.requeueFailedThumbnail(assetID: failed[0].id, now: Date()))
        #expect(try db.requeueFailedThumbnail(assetID: failed[0].id, now: Date()) == false, "pending now: left alone")
        #expect(try db.requeueFailedThumbnail(assetID: ready.id, now: Date()) == false, "not failed")
        try db.markAssetDeleted(id: failed[1].id)
        #expect(try db.requeueFailedThumbnail(assetID: failed[1].id, now: Date()) == false, "deleted")
        #expect(try db.thumbnailState(assetID: failed[0].id) == ThumbnailState(status: .pending, reason: nil, attempts: 0))
        #expect(try db.unsettledThumbnails().map(\.id) == [failed[0].id], "the next start queues it")
        if let fleet = db as? any FleetCoordination {
            #expect(try fleet.claimableThumbnails(limit: 10) == [failed[0].id], "any host's poller takes it")
        }
        #expect(try db.claimThumbnail(assetID: failed[0].id)?.attempts == 1)
        #expect(try db.failedThumbnails(workspaceID: nil, afterID: 0, limit: 10).map(\.assetID) == [failed[2].id])
    }

    @Test(arguments: Backend.all) func aTaskForAnotherVersionOrADeletedAssetChangesNothing(_ backend: Backend) throws {
        let db = try backend.fresh().open()
        let asset = try readyAsset(db)
        try db.queueThumbnail(assetID: asset.id)
        _ = try db.claimThumbnail(assetID: asset.id)
        #expect(try db.finishThumbnail(assetID: asset.id, etag: "\"other\"", status: .ready, reason: nil) == false)
        try db.markAssetDeleted(id: asset.id)
        #expect(try db.finishThumbnail(assetID: asset.id, etag: asset.etag, status: .ready, reason: nil) == false)
        #expect(try db.queueThumbnail(assetID: asset.id) == false)
        #expect(try db.claimThumbnail(assetID: asset.id) == nil)
        #expect(try db.unsettledThumbnails().isEmpty)
    }

    @Test(arguments: Backend.all) func noneWithAReasonIsSettled(_ backend: Backend) throws {
        let db = try backend.fresh().open()
        let asset = try readyAsset(db)
        try db.recordNoThumbnail(assetID: asset.id, reason: "thumbnails are off")
        #expect(try db.thumbnailState(assetID: asset.id) == ThumbnailState(status: .none, reason: "thumbnails are off", attempts: 0))
        #expect(try db.unsettledThumbnails().isEmpty)
    }

    @Test(arguments: Backend.all) func mediaIsRecordedForItsVersionOnly(_ backend: Backend) throws {
        let db = try backend.fresh().open()
        let asset = try readyAsset(db)
        #expect(try db.asset(id: asset.id, workspaceID: 1)?.media == nil)
        let media = MediaMetadata(width: 1000, height: 1600, takenAt: "2024-05-06T07:08:09", cameraMake: "Canon")
        #expect(try db.recordMedia(assetID: asset.id, etag: "\"other\"", media: media, now: Date()) == false, "another version")
        #expect(try db.asset(id: asset.id, workspaceID: 1)?.media == nil)
        try db.queueThumbnail(assetID: asset.id)
        _ = try db.claimThumbnail(assetID: asset.id)
        try db.finishThumbnail(assetID: asset.id, etag: asset.etag, status: .ready, reason: nil)
        #expect(try db.assetsMissingMedia(limit: 10).map(\.id) == [asset.id], "a ready thumbnail without media: the backfill's")
        #expect(try db.recordMedia(assetID: asset.id, etag: asset.etag, media: media, now: Date()))
        #expect(try db.asset(id: asset.id, workspaceID: 1)?.media == media)
        #expect(try db.assetsMissingMedia(limit: 10).isEmpty)
        try db.markAssetDeleted(id: asset.id)
        #expect(try db.recordMedia(assetID: asset.id, etag: asset.etag, media: media, now: Date()) == false, "deleted")
    }
}
