public import MediaInfo
public import struct Foundation.Date
import Foundation
import JSON

// Thumbnail tasks, leased: a claim (FOR UPDATE SKIP LOCKED, one short statement) writes
// this process as the owner, the attempt, and an expiry on the database's clock
// (ASSETD_THUMBNAIL_LEASE); `LeaseRenewal` extends it while the task runs; every later
// update names the owner and the attempt, so that a host whose lease expired (and was
// taken over) changes nothing. No transaction stays open while a task decodes.
extension PostgresRecordStore {
    @discardableResult
    public func queueThumbnail(assetID: Int64, now: Date) throws -> Bool {
        try setThumbnailPending(assetID: assetID, now: now, onlyIfFailed: false)
    }

    /// A new task: pending, no reason, no attempt, no lease (any host's poller may claim
    /// it at once), on a ready asset; `onlyIfFailed`: only while its thumbnail is failed.
    private func setThumbnailPending(assetID: Int64, now: Date, onlyIfFailed: Bool) throws -> Bool {
        try run {
            try pool.with { connection in
                try connection.query("""
                    UPDATE asset SET thumbnail_status = 'pending', thumbnail_reason = NULL, thumbnail_attempts = 0,
                        thumbnail_owner = NULL, thumbnail_lease_until = NULL, updated_at = $1
                    WHERE id = $2 AND status = 'ready' \(onlyIfFailed ? "AND thumbnail_status = 'failed'" : "")
                    """, [now.timeIntervalSince1970, assetID]).affectedRows == 1
            }
        }
    }

    public func recordNoThumbnail(assetID: Int64, reason: String, now: Date) throws {
        try run {
            try pool.with { connection in
                try connection.query("""
                    UPDATE asset SET thumbnail_status = 'none', thumbnail_reason = $1, updated_at = $2
                    WHERE id = $3 AND status = 'ready' AND thumbnail_status IN ('none', 'pending')
                    """, [reason, now.timeIntervalSince1970, assetID])
            }
        }
    }

    /// Claims the task unless another live host holds it (this process may claim its own
    /// again: a retry after a pause). The attempt is counted before any work.
    public func claimThumbnail(assetID: Int64) throws -> ThumbnailTask? {
        let task: ThumbnailTask? = try run {
            try pool.with { connection in
                guard let row = try connection.query("""
                    UPDATE asset SET thumbnail_attempts = thumbnail_attempts + 1, thumbnail_owner = $2,
                        thumbnail_lease_until = \(Self.databaseNow) + $3
                    WHERE id = (SELECT id FROM asset WHERE id = $1 AND status = 'ready' AND thumbnail_status = 'pending'
                                AND (thumbnail_owner IS NULL OR thumbnail_owner = $2 OR thumbnail_lease_until < \(Self.databaseNow))
                                FOR UPDATE SKIP LOCKED)
                    RETURNING \(Self.assetColumns), thumbnail_attempts
                    """, [assetID, settings.owner, Double(settings.thumbnailLease.components.seconds)]).first
                else { return nil }
                return try ThumbnailTask(asset: Self.asset(from: row), attempts: row.int(Self.assetColumnCount) ?? 0)
            }
        }
        if let task {
            claims.withLock { $0[assetID] = task.attempts }
            startLeaseRenewal()
        }
        return task
    }

    /// The lease stays this host's, expiring after `pause` (on the database's clock): this
    /// host may claim it again at any time (its retry after the pause), another host only
    /// after the pause (the poller), so that an outage of every host's decoder does not
    /// spin the fleet. No renewal extends it meanwhile.
    @discardableResult
    public func releaseThumbnail(_ task: ThumbnailTask, for pause: Duration) throws -> Bool {
        let assetID = task.asset.id
        let seconds = Double(pause.components.seconds) + Double(pause.components.attoseconds) / 1e18
        let released = try run {
            try pool.with { connection in
                try connection.query("""
                    UPDATE asset SET thumbnail_attempts = thumbnail_attempts - 1, thumbnail_lease_until = \(Self.databaseNow) + $1
                    WHERE id = $2 AND status = 'ready' AND thumbnail_status = 'pending' AND etag IS NOT DISTINCT FROM $3
                    AND thumbnail_owner = $4 AND thumbnail_attempts = $5
                    """, [seconds, assetID, task.asset.etag, settings.owner, task.attempts]).affectedRows == 1
            }
        }
        // No longer held: no renewal extends the pause's lease.
        if released { claims.withLock { if $0[assetID] == task.attempts { $0[assetID] = nil } } }
        return released
    }

    /// Fenced: only the holder of the task's current lease (owner and attempt) finishes it.
    @discardableResult
    public func finishThumbnail(assetID: Int64, etag: String?, status: ThumbnailStatus, reason: String?, now: Date) throws -> Bool {
        precondition(status != .pending, "a finished thumbnail task is not pending")
        let attempt = claims.withLock { $0.removeValue(forKey: assetID) }
        return try run {
            try pool.transaction { connection in
                guard let row = try connection.query("""
                    UPDATE asset SET thumbnail_status = $1, thumbnail_reason = $2, updated_at = $3,
                        thumbnail_owner = NULL, thumbnail_lease_until = NULL
                    WHERE id = $4 AND status = 'ready' AND thumbnail_status = 'pending' AND etag IS NOT DISTINCT FROM $5
                    AND thumbnail_owner IS NOT DISTINCT FROM $6 AND ($7::integer IS NULL OR thumbnail_attempts = $7)
                    RETURNING \(Self.assetColumns)
                    """, [status.rawValue, reason, now.timeIntervalSince1970, assetID, etag,
                          attempt == nil ? nil : settings.owner, attempt]).first
                else { return false }
                let type: EventType? = switch status {
                case .ready: .thumbnailReady
                case .failed: .thumbnailFailed
                case .none, .pending: nil
                }
                if let type {
                    try Self.recordEvent(connection, type, asset: Self.asset(from: row), now: now,
                                         extra: reason.map { [.init("reason", .string($0))] } ?? [])
                }
                return true
            }
        }
    }

    /// As SQLite's: the media of the version (ETag) the decoder read, in the compare-and-set
    /// of finishThumbnail's version check; false, writing nothing, when the asset moved on.
    @discardableResult
    public func recordMedia(assetID: Int64, etag: String?, media: MediaMetadata, now: Date) throws -> Bool {
        try run {
            try pool.with { connection in
                try Self.writeMedia(connection, assetID: assetID, etag: etag, media: media, now: now, onlyIfUnknown: false) != nil
            }
        }
    }

    /// The media columns of a ready asset at `etag`; with `onlyIfUnknown`, only while that
    /// version has none yet and no version switch is under way (the backfill: a switch
    /// copies the new version onto the same key before it changes `etag`, so a GET by key
    /// may have read the new version's bytes). The row as written, nil when none was.
    private static func writeMedia(_ connection: PGConnection, assetID: Int64, etag: String?, media: MediaMetadata, now: Date,
                                   onlyIfUnknown: Bool) throws -> PGRow? {
        try connection.query("""
            UPDATE asset SET media_etag = $1, media_width = $2, media_height = $3, media_duration_s = $4, media_pages = $5,
                media_taken_at = $6, media_camera_make = $7, media_camera_model = $8, media_gps_latitude = $9,
                media_gps_longitude = $10, updated_at = $11
            WHERE id = $12 AND status = 'ready' AND etag IS NOT DISTINCT FROM $1 AND etag IS NOT NULL
            \(onlyIfUnknown ? "AND media_etag IS DISTINCT FROM etag" : "")
            \(onlyIfUnknown ? "AND NOT EXISTS (SELECT 1 FROM version_switch WHERE version_switch.asset_id = asset.id)" : "")
            RETURNING \(assetColumns)
            """, [etag, media.width, media.height, media.durationSeconds, media.pages, media.takenAt, media.cameraMake,
                  media.cameraModel, media.gpsLatitude, media.gpsLongitude, now.timeIntervalSince1970, assetID]).first
    }

    /// Ready assets with a ready thumbnail and no media for their current version, by id.
    public func assetsMissingMedia(limit: Int, workspaceID: Int64?, afterID: Int64, maxAttempts: Int) throws -> [AssetRecord] {
        try run {
            try pool.with { connection in
                try connection.query("""
                    SELECT \(Self.assetColumns) FROM asset WHERE \(Self.missingMedia)
                    AND (media_attempts_etag IS DISTINCT FROM etag OR media_attempts < $4)
                    AND id > $1 AND ($2::bigint IS NULL OR workspace_id = $2)
                    ORDER BY id LIMIT $3
                    """, [afterID, workspaceID, limit, maxAttempts]).rows.map(Self.asset(from:))
            }
        }
    }

    /// A ready asset with a ready thumbnail and no media for its current version.
    static let missingMedia = """
        status = 'ready' AND thumbnail_status = 'ready' AND (media_etag IS NULL OR media_etag IS DISTINCT FROM etag) \
        AND etag IS NOT NULL
        """

    /// As SQLite's: one more decoder failure on this version's media.
    @discardableResult
    public func recordMediaAttempt(assetID: Int64, etag: String?) throws -> Int {
        try run {
            try pool.with { connection in
                try connection.query("""
                    UPDATE asset SET media_attempts = CASE WHEN media_attempts_etag IS NOT DISTINCT FROM etag
                        THEN media_attempts + 1 ELSE 1 END, media_attempts_etag = etag
                    WHERE id = $1 AND etag IS NOT DISTINCT FROM $2 AND \(Self.missingMedia)
                    RETURNING media_attempts
                    """, [assetID, etag]).first?.int(0) ?? 0
            }
        }
    }

    public func assetsGivenUpOnMedia(workspaceID: Int64?, maxAttempts: Int) throws -> Int {
        try run {
            try pool.with { connection in
                try connection.query("""
                    SELECT count(*) FROM asset WHERE \(Self.missingMedia)
                    AND media_attempts_etag IS NOT DISTINCT FROM etag AND media_attempts >= $1
                    AND ($2::bigint IS NULL OR workspace_id = $2)
                    """, [maxAttempts, workspaceID]).first?.int(0) ?? 0
            }
        }
    }

    @discardableResult
    public func clearMediaAttempts(workspaceID: Int64?) throws -> Int {
        try run {
            try pool.with { connection in
                try connection.query("""
                    UPDATE asset SET media_attempts = 0, media_attempts_etag = NULL
                    WHERE media_attempts > 0 AND ($1::bigint IS NULL OR workspace_id = $1)
                    RETURNING id
                    """, [workspaceID]).count
            }
        }
    }

    /// As SQLite's: fenced on the version and on its media being still unknown, so that
    /// of several hosts (or runs) reading the same asset only the first writes, and writes
    /// the one asset.updated event, in the same transaction.
    @discardableResult
    public func backfillMedia(assetID: Int64, etag: String?, media: MediaMetadata, now: Date) throws -> Bool {
        try run {
            try pool.transaction { connection in
                guard let row = try Self.writeMedia(connection, assetID: assetID, etag: etag, media: media, now: now, onlyIfUnknown: true)
                else { return false }
                // All unknown (unreadable): nothing a subscriber or a search index could use.
                if media != MediaMetadata() {
                    try Self.recordEvent(connection, .assetUpdated, asset: Self.asset(from: row), now: now,
                                         extra: [.init("media", media.json)])
                }
                return true
            }
        }
    }

    public func unsettledThumbnails(limit: Int) throws -> [AssetRecord] {
        try run {
            try pool.with { connection in
                try connection.query("""
                    SELECT \(Self.assetColumns) FROM asset WHERE status = 'ready'
                    AND (thumbnail_status = 'pending' OR (thumbnail_status = 'none' AND thumbnail_reason IS NULL))
                    ORDER BY id LIMIT $1
                    """, [limit]).rows.map(Self.asset(from:))
            }
        }
    }

    public func failedThumbnails(workspaceID: Int64?, afterID: Int64, limit: Int) throws -> [FailedThumbnail] {
        try run {
            try pool.with { connection in
                try connection.query("""
                    SELECT id, workspace_id, thumbnail_reason FROM asset
                    WHERE status = 'ready' AND thumbnail_status = 'failed' AND id > $1 AND ($2::bigint IS NULL OR workspace_id = $2)
                    ORDER BY id LIMIT $3
                    """, [afterID, workspaceID, limit]).rows.map { row in
                    FailedThumbnail(assetID: row.int64(0) ?? 0, workspaceID: row.int64(1) ?? 0, reason: row.string(2))
                }
            }
        }
    }

    /// As SQLite's, the lease cleared too: any host's poller may claim it at once.
    @discardableResult
    public func requeueFailedThumbnail(assetID: Int64, now: Date) throws -> Bool {
        try setThumbnailPending(assetID: assetID, now: now, onlyIfFailed: true)
    }

    /// As SQLite's: through the partial index asset_thumbnail_unsettled.
    public func pendingThumbnailCount() throws -> Int {
        try run {
            try pool.with { connection in
                try connection.query("""
                    SELECT count(*) FROM asset WHERE status = 'ready'
                    AND (thumbnail_status = 'pending' OR (thumbnail_status = 'none' AND thumbnail_reason IS NULL))
                    AND thumbnail_status = 'pending'
                    """).first?.int(0) ?? 0
            }
        }
    }

    public func thumbnailState(assetID: Int64) throws -> ThumbnailState? {
        try run {
            try pool.with { connection in
                try connection.query("SELECT thumbnail_status, thumbnail_reason, thumbnail_attempts FROM asset WHERE id = $1", [assetID])
                    .first.map { row in
                        try ThumbnailState(status: decodeStored(row.string(0), table: "asset", column: "thumbnail_status"),
                                           reason: row.string(1), attempts: row.int(2) ?? 0)
                    }
            }
        }
    }

    /// For the poller: pending tasks never claimed, or whose holder's lease expired.
    public func claimableThumbnails(limit: Int) throws -> [Int64] {
        try run {
            try pool.with { connection in
                try connection.query("""
                    SELECT id FROM asset WHERE status = 'ready' AND thumbnail_status = 'pending'
                    AND (thumbnail_owner IS NULL OR thumbnail_lease_until < \(Self.databaseNow))
                    ORDER BY id LIMIT $1
                    """, [limit]).rows.compactMap { $0.int64(0) }
            }
        }
    }

    /// Extends the leases of the tasks this process holds, every third of the lease, on
    /// a thread of its own; a task whose lease was lost (expired and taken over) is
    /// dropped, and its finish will change nothing.
    func startLeaseRenewal() {
        renewer.withLock { thread in
            guard thread == nil, settings.renewsLeases else { return }
            let started = Thread { [weak self] in
                while let self {
                    let third = self.settings.thumbnailLease / 3
                    Thread.sleep(forTimeInterval: Double(third.components.seconds) + Double(third.components.attoseconds) / 1e18)
                    self.renewLeases()
                }
            }
            started.name = "thumbnail-leases"
            started.start()
            thread = started
        }
    }

    func renewLeases() {
        let held = claims.withLock { $0 }
        for (assetID, attempt) in held {
            let kept = try? run {
                try pool.with { connection in
                    try connection.query("""
                        UPDATE asset SET thumbnail_lease_until = \(Self.databaseNow) + $1
                        WHERE id = $2 AND thumbnail_owner = $3 AND thumbnail_attempts = $4 AND thumbnail_status = 'pending'
                        """, [Double(settings.thumbnailLease.components.seconds), assetID, settings.owner, attempt]).affectedRows == 1
                }
            }
            // A failed renewal (the database away) keeps the claim: the next one may succeed.
            if kept == false { claims.withLock { if $0[assetID] == attempt { $0[assetID] = nil } } }
        }
    }
}
