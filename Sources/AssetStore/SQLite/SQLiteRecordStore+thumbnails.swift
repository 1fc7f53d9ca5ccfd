public import MediaInfo
public import struct Foundation.Date
import GRDB

// Thumbnail tasks (migration "v3: thumbnail tasks"). Every change is a compare-and-set on
// a ready asset: a task whose asset was deleted or replaced meanwhile changes nothing.
extension SQLiteRecordStore {
    /// Queues the thumbnail of a ready asset: pending, no reason, no attempt yet.
    /// False when the asset is not ready (deleted meanwhile).
    @discardableResult
    public func queueThumbnail(assetID: Int64, now: Date) throws -> Bool {
        try setThumbnailPending(assetID: assetID, now: now, onlyIfFailed: false)
    }

    /// Pending, no reason, no attempt, on a ready asset; `onlyIfFailed`: only while its
    /// thumbnail is failed.
    private func setThumbnailPending(assetID: Int64, now: Date, onlyIfFailed: Bool) throws -> Bool {
        try run {
            try pool.write { db in
                try db.execute(sql: """
                    UPDATE asset SET thumbnail_status = 'pending', thumbnail_reason = NULL, thumbnail_attempts = 0, updated_at = ?
                    WHERE id = ? AND status = 'ready' \(onlyIfFailed ? "AND thumbnail_status = 'failed'" : "")
                    """, arguments: [now.timeIntervalSince1970, assetID])
                return db.changesCount == 1
            }
        }
    }

    /// A ready asset that gets no thumbnail (its type has none, or thumbnails are off).
    public func recordNoThumbnail(assetID: Int64, reason: String, now: Date) throws {
        try run {
            try pool.write { db in
                try db.execute(sql: """
                    UPDATE asset SET thumbnail_status = 'none', thumbnail_reason = ?, updated_at = ?
                    WHERE id = ? AND status = 'ready' AND thumbnail_status IN ('none', 'pending')
                    """, arguments: [reason, now.timeIntervalSince1970, assetID])
            }
        }
    }

    /// Begins an attempt: counts it before any work, so that a file that crashes the
    /// process is given up after a few starts. Nil when there is nothing to do (the asset
    /// is gone, or its thumbnail no longer pending).
    public func claimThumbnail(assetID: Int64) throws -> ThumbnailTask? {
        try run {
            try pool.write { db in
                try db.execute(sql: """
                    UPDATE asset SET thumbnail_attempts = thumbnail_attempts + 1
                    WHERE id = ? AND status = 'ready' AND thumbnail_status = 'pending'
                    """, arguments: [assetID])
                guard db.changesCount == 1,
                      let row = try Row.fetchOne(db, sql: "SELECT \(Self.assetColumns), thumbnail_attempts FROM asset WHERE id = ?",
                                                 arguments: [assetID])
                else { return nil }
                return try ThumbnailTask(asset: Self.asset(from: row), attempts: row["thumbnail_attempts"])
            }
        }
    }

    /// One process owns an SQLite file, so `pause` is kept by the caller's queue alone.
    @discardableResult
    public func releaseThumbnail(_ task: ThumbnailTask, for pause: Duration) throws -> Bool {
        try run {
            try pool.write { db in
                try db.execute(sql: """
                    UPDATE asset SET thumbnail_attempts = thumbnail_attempts - 1
                    WHERE id = ? AND status = 'ready' AND thumbnail_status = 'pending' AND etag IS ? AND thumbnail_attempts = ?
                    """, arguments: [task.asset.id, task.asset.etag, task.attempts])
                return db.changesCount == 1
            }
        }
    }

    /// pending -> ready, failed or none, for the version (ETag) the task worked on. False
    /// when the asset moved on meanwhile (deleted, or a newer version): then the caller
    /// removes what it stored.
    @discardableResult
    public func finishThumbnail(assetID: Int64, etag: String?, status: ThumbnailStatus, reason: String?, now: Date) throws -> Bool {
        precondition(status != .pending, "a finished thumbnail task is not pending")
        return try run {
            try pool.write { db in
                try db.execute(sql: """
                    UPDATE asset SET thumbnail_status = ?, thumbnail_reason = ?, updated_at = ?
                    WHERE id = ? AND status = 'ready' AND thumbnail_status = 'pending' AND etag IS ?
                    """, arguments: [status.rawValue, reason, now.timeIntervalSince1970, assetID, etag])
                guard db.changesCount == 1 else { return false }
                let type: EventType? = switch status {
                case .ready: .thumbnailReady
                case .failed: .thumbnailFailed
                case .none, .pending: nil
                }
                if let type, let asset = try Self.currentAsset(db, id: assetID) {
                    try Self.recordEvent(db, type, asset: asset, now: now, extra: reason.map { [.init("reason", .string($0))] } ?? [])
                }
                return true
            }
        }
    }

    /// Records the media metadata of the version (ETag) the decoder read, in the same
    /// compare-and-set as finishThumbnail: false when the asset moved on (deleted, or a
    /// newer version), and then nothing is written.
    @discardableResult
    public func recordMedia(assetID: Int64, etag: String?, media: MediaMetadata, now: Date) throws -> Bool {
        try run {
            try pool.write { db in try Self.writeMedia(db, assetID: assetID, etag: etag, media: media, now: now, onlyIfUnknown: false) }
        }
    }

    /// The media columns of a ready asset at `etag`; with `onlyIfUnknown`, only while that
    /// version has none yet and no version switch is under way (the backfill: a switch
    /// copies the new version onto the same key before it changes `etag`, so a GET by key
    /// may have read the new version's bytes). True when the row was written.
    private static func writeMedia(_ db: Database, assetID: Int64, etag: String?, media: MediaMetadata, now: Date,
                                   onlyIfUnknown: Bool) throws -> Bool {
        try db.execute(sql: """
            UPDATE asset SET media_etag = ?, media_width = ?, media_height = ?, media_duration_s = ?, media_pages = ?,
                media_taken_at = ?, media_camera_make = ?, media_camera_model = ?, media_gps_latitude = ?,
                media_gps_longitude = ?, updated_at = ?
            WHERE id = ? AND status = 'ready' AND etag IS ? AND etag IS NOT NULL
            \(onlyIfUnknown ? "AND (media_etag IS NULL OR media_etag IS NOT etag)" : "")
            \(onlyIfUnknown ? "AND NOT EXISTS (SELECT 1 FROM version_switch WHERE version_switch.asset_id = asset.id)" : "")
            """, arguments: [etag, media.width, media.height, media.durationSeconds, media.pages, media.takenAt, media.cameraMake,
                              media.cameraModel, media.gpsLatitude, media.gpsLongitude, now.timeIntervalSince1970, assetID, etag])
        return db.changesCount == 1
    }

    /// Ready assets with a ready thumbnail but no media metadata for their current version
    /// (uploaded before "v8: media metadata"): the media backfill's work list.
    public func assetsMissingMedia(limit: Int, workspaceID: Int64?, afterID: Int64, maxAttempts: Int) throws -> [AssetRecord] {
        try run {
            try pool.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT \(Self.assetColumns) FROM asset WHERE \(Self.missingMedia)
                    AND (media_attempts_etag IS NOT etag OR media_attempts < ?)
                    AND id > ? AND (? IS NULL OR workspace_id = ?)
                    ORDER BY id LIMIT ?
                    """, arguments: [maxAttempts, afterID, workspaceID, workspaceID, limit]).map(Self.asset(from:))
            }
        }
    }

    /// A ready asset with a ready thumbnail and no media for its current version.
    static let missingMedia = """
        status = 'ready' AND thumbnail_status = 'ready' AND (media_etag IS NULL OR media_etag IS NOT etag) AND etag IS NOT NULL
        """

    /// One more decoder failure on this version's media (a first one on a new version).
    @discardableResult
    public func recordMediaAttempt(assetID: Int64, etag: String?) throws -> Int {
        try run {
            try pool.write { db in
                try db.execute(sql: """
                    UPDATE asset SET media_attempts = CASE WHEN media_attempts_etag IS etag THEN media_attempts + 1 ELSE 1 END,
                        media_attempts_etag = etag
                    WHERE id = ? AND etag IS ? AND \(Self.missingMedia)
                    """, arguments: [assetID, etag])
                guard db.changesCount == 1 else { return 0 }
                return try Int.fetchOne(db, sql: "SELECT media_attempts FROM asset WHERE id = ?", arguments: [assetID]) ?? 0
            }
        }
    }

    public func assetsGivenUpOnMedia(workspaceID: Int64?, maxAttempts: Int) throws -> Int {
        try run {
            try pool.read { db in
                try Int.fetchOne(db, sql: """
                    SELECT count(*) FROM asset WHERE \(Self.missingMedia)
                    AND media_attempts_etag IS etag AND media_attempts >= ? AND (? IS NULL OR workspace_id = ?)
                    """, arguments: [maxAttempts, workspaceID, workspaceID]) ?? 0
            }
        }
    }

    @discardableResult
    public func clearMediaAttempts(workspaceID: Int64?) throws -> Int {
        try run {
            try pool.write { db in
                try db.execute(sql: """
                    UPDATE asset SET media_attempts = 0, media_attempts_etag = NULL
                    WHERE media_attempts > 0 AND (? IS NULL OR workspace_id = ?)
                    """, arguments: [workspaceID, workspaceID])
                return db.changesCount
            }
        }
    }

    /// The backfill's compare-and-set: this version, ready, still without media; then its
    /// asset.updated event, in the same transaction. The thumbnail's columns are not touched.
    @discardableResult
    public func backfillMedia(assetID: Int64, etag: String?, media: MediaMetadata, now: Date) throws -> Bool {
        try run {
            try pool.write { db in
                guard try Self.writeMedia(db, assetID: assetID, etag: etag, media: media, now: now, onlyIfUnknown: true) else { return false }
                // All unknown (unreadable): nothing a subscriber or a search index could use.
                if media != MediaMetadata(), let asset = try Self.currentAsset(db, id: assetID) {
                    try Self.recordEvent(db, .assetUpdated, asset: asset, now: now, extra: [.init("media", media.json)])
                }
                return true
            }
        }
    }

    /// Ready assets whose thumbnail task a crash or a stop interrupted, or never queued.
    public func unsettledThumbnails(limit: Int) throws -> [AssetRecord] {
        try run {
            try pool.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT \(Self.assetColumns) FROM asset WHERE status = 'ready'
                    AND (thumbnail_status = 'pending' OR (thumbnail_status = 'none' AND thumbnail_reason IS NULL))
                    ORDER BY id LIMIT ?
                    """, arguments: [limit]).map(Self.asset(from:))
            }
        }
    }

    public func failedThumbnails(workspaceID: Int64?, afterID: Int64, limit: Int) throws -> [FailedThumbnail] {
        try run {
            try pool.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT id, workspace_id, thumbnail_reason FROM asset
                    WHERE status = 'ready' AND thumbnail_status = 'failed' AND id > ? AND (? IS NULL OR workspace_id = ?)
                    ORDER BY id LIMIT ?
                    """, arguments: [afterID, workspaceID, workspaceID, limit]).map { row in
                    FailedThumbnail(assetID: row[0], workspaceID: row[1], reason: row[2])
                }
            }
        }
    }

    @discardableResult
    public func requeueFailedThumbnail(assetID: Int64, now: Date) throws -> Bool {
        try setThumbnailPending(assetID: assetID, now: now, onlyIfFailed: true)
    }

    /// The condition of asset_thumbnail_unsettled, word for word, so that SQLite counts
    /// through that partial index instead of every asset.
    static let pendingThumbnailsSQL = """
        SELECT count(*) FROM asset WHERE status = 'ready'
        AND (thumbnail_status = 'pending' OR (thumbnail_status = 'none' AND thumbnail_reason IS NULL))
        AND thumbnail_status = 'pending'
        """

    public func pendingThumbnailCount() throws -> Int {
        try run { try pool.read { db in try Int.fetchOne(db, sql: Self.pendingThumbnailsSQL) ?? 0 } }
    }

    public func thumbnailState(assetID: Int64) throws -> ThumbnailState? {
        try run {
            try pool.read { db in
                try Row.fetchOne(db, sql: "SELECT thumbnail_status, thumbnail_reason, thumbnail_attempts FROM asset WHERE id = ?",
                                 arguments: [assetID]).map { row in
                    try ThumbnailState(status: Self.storedCase(row, "thumbnail_status", table: "asset"),
                                       reason: row["thumbnail_reason"], attempts: row["thumbnail_attempts"])
                }
            }
        }
    }
}
