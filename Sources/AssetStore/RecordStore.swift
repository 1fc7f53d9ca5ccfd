public import MediaInfo
public import struct Foundation.Date

// What the app needs of its records, one protocol a concern, so that a backend (SQLite
// today, PostgreSQL next) can be swapped without touching routes or workflows.
//
// Rules every implementation keeps:
// - Every status change is a compare-and-set: it names the state it expects and reports
//   whether it won (a Bool, or nil for a record). The loser changes nothing.
// - Failures throw `RecordStoreError`; a stored value no case of its type has throws
//   `RecordStoreError.corruptRecord`, never a guess. A refused new version throws
//   `VersionConflict`.
// - Every method is synchronous and safe to call from any thread.
//
// A requirement takes every argument; the defaults callers rely on (`now` is the current
// time, a work list's `limit`) are extensions that forward to it.

/// The whole store: what `App` is given.
public typealias RecordStore = AssetRecords & SearchRecords & UploadRecords & VersionRecords & ThumbnailRecords & RepairWorkLists
    & StoreHealth & EventOutbox

/// Assets: creation, lookup, the listing, and the steps of their life.
public protocol AssetRecords: AnyObject, Sendable {
    /// Inserts an asset (pending unless said otherwise); the store picks its id, and its
    /// key follows from it (`AssetKeys.original`).
    func createAsset(_ new: NewAsset, status: AssetStatus, now: Date) throws -> AssetRecord
    /// The asset `id` if it belongs to `workspaceID`, whatever its status; nil otherwise.
    func asset(id: Int64, workspaceID: Int64) throws -> AssetRecord?
    /// Removes a pending asset that never got an object, with its uploads. False, and
    /// nothing changed, when it is no longer pending.
    @discardableResult
    func discardPendingAsset(id: Int64) throws -> Bool
    /// pending -> ready for a directly uploaded asset; the record as left, or nil when it
    /// was no longer pending.
    func markAssetReady(id: Int64, size: Int64, etag: String, sha256: String?, thumbnail: ThumbnailStatus, now: Date) throws -> AssetRecord?
    /// Any state -> deleting (pending uploads -> aborted), before the first S3 call; nil
    /// when there is no such asset.
    func beginDelete(id: Int64, now: Date) throws -> DeleteStart?
    /// deleting -> deleted, once every object is gone; false when it was not deleting.
    @discardableResult
    func markDeleted(id: Int64, now: Date) throws -> Bool
    /// The assets of a workspace, newest first, neither deleted nor being deleted; `before`
    /// is the id the previous page ended with.
    func assets(workspaceID: Int64, limit: Int, before: Int64?) throws -> [AssetRecord]
}

extension AssetRecords {
    public func createAsset(_ new: NewAsset, now: Date = Date()) throws -> AssetRecord {
        try createAsset(new, status: .pending, now: now)
    }

    public func markAssetReady(id: Int64, size: Int64, etag: String, sha256: String?, thumbnail: ThumbnailStatus) throws -> AssetRecord? {
        try markAssetReady(id: id, size: size, etag: etag, sha256: sha256, thumbnail: thumbnail, now: Date())
    }

    public func beginDelete(id: Int64) throws -> DeleteStart? {
        try beginDelete(id: id, now: Date())
    }
}

/// Titles, tags and the listing that searches them (`AssetQuery` says what every backend
/// must reproduce).
public protocol SearchRecords: AnyObject, Sendable {
    /// Sets the title and tags of the asset `id` in `workspaceID`, unless it is deleted or
    /// being deleted; the record as left, or nil (nothing changed) when there is no such
    /// asset there. The search indexes follow in the same transaction. Values arrive
    /// checked (bounded, no control characters, tags without repeats).
    func describeAsset(id: Int64, workspaceID: Int64, title: FieldEdit<String?>, tags: FieldEdit<[String]>) throws -> AssetRecord?
    /// One page of the query, each asset with its position (for the next page's `after`).
    func searchAssets(_ query: AssetQuery) throws -> [(asset: AssetRecord, position: AssetPosition)]
}

/// Multipart uploads: first uploads and new versions, the hot lookup, and their ends.
public protocol UploadRecords: AnyObject, Sendable {
    /// Records the pending multipart upload of an asset's first version.
    func createUpload(uploadID: String, asset: AssetRecord, fileSize: Int64?, partSize: Int64?, now: Date) throws -> UploadRecord
    /// Records the pending multipart upload of version `version`, whose parts go to
    /// `stagingKey`. Throws `VersionConflict` (recording nothing) when the asset is not
    /// ready or busy.
    func createVersionUpload(
        uploadID: String, asset: AssetRecord, version: Int, stagingKey: String, fileType: String, fileName: String?,
        fileSize: Int64?, partSize: Int64?, now: Date
    ) throws -> UploadRecord
    /// The upload if it belongs to asset `assetID` in `workspaceID`; nil otherwise. On the
    /// hot path: every presigned part URL asks it.
    func upload(uploadID: String, assetID: Int64, workspaceID: Int64) throws -> UploadRecord?
    /// upload pending -> completed and asset pending -> ready, together; the ready asset,
    /// or nil (nothing changed) when either had moved on.
    func completeUpload(
        uploadID: String, partsDigest: String, location: String, etag: String, size: Int64, thumbnail: ThumbnailStatus, now: Date
    ) throws -> AssetRecord?
    /// pending -> aborted (and a first upload's asset too); the upload's status after the
    /// call, nil when there is no such upload.
    func abortUpload(uploadID: String, now: Date) throws -> UploadStatus?
    /// pending -> expired (and a first upload's asset too); false when no longer pending.
    @discardableResult
    func expireUpload(uploadID: String, now: Date) throws -> Bool
    /// pending -> rejected (and a first upload's asset too); false when no longer pending.
    @discardableResult
    func rejectUpload(uploadID: String, now: Date) throws -> Bool
    /// Records the MD5 (lower-case hex) each part URL was signed for; for a part signed
    /// again, the last one wins. Only while the upload is pending: false, and nothing
    /// recorded, otherwise.
    func recordSignedPartMD5s(uploadID: String, md5s: [(partNumber: Int, md5: String)], now: Date) throws -> Bool
    /// The MD5 each part of the upload was last signed for, by part number; parts never
    /// signed with one are absent.
    func signedPartMD5s(uploadID: String) throws -> [Int: String]
}

extension UploadRecords {
    public func createUpload(uploadID: String, asset: AssetRecord, fileSize: Int64?, partSize: Int64?) throws -> UploadRecord {
        try createUpload(uploadID: uploadID, asset: asset, fileSize: fileSize, partSize: partSize, now: Date())
    }

    public func createVersionUpload(
        uploadID: String, asset: AssetRecord, version: Int, stagingKey: String, fileType: String, fileName: String?,
        fileSize: Int64?, partSize: Int64?
    ) throws -> UploadRecord {
        try createVersionUpload(uploadID: uploadID, asset: asset, version: version, stagingKey: stagingKey, fileType: fileType,
                                fileName: fileName, fileSize: fileSize, partSize: partSize, now: Date())
    }

    public func completeUpload(
        uploadID: String, partsDigest: String, location: String, etag: String, size: Int64, thumbnail: ThumbnailStatus
    ) throws -> AssetRecord? {
        try completeUpload(uploadID: uploadID, partsDigest: partsDigest, location: location, etag: etag, size: size,
                           thumbnail: thumbnail, now: Date())
    }

    public func abortUpload(uploadID: String) throws -> UploadStatus? {
        try abortUpload(uploadID: uploadID, now: Date())
    }

    public func recordSignedPartMD5s(uploadID: String, md5s: [(partNumber: Int, md5: String)]) throws -> Bool {
        try recordSignedPartMD5s(uploadID: uploadID, md5s: md5s, now: Date())
    }
}

/// Versions: the archive of earlier ones, and the switch that makes a new one current.
public protocol VersionRecords: AnyObject, Sendable {
    /// The archived versions of an asset (not the current one), oldest first.
    func versions(assetID: Int64) throws -> [AssetVersionRecord]
    /// The archived versions of several assets at once, by asset id.
    func versions(assetIDs: [Int64]) throws -> [Int64: [AssetVersionRecord]]
    /// Records the switch (state `uploading`) of a direct new version before its PutObject.
    /// Throws `VersionConflict` when the asset is not ready or busy.
    func beginDirectVersion(_ change: VersionSwitch) throws -> VersionSwitch
    /// uploading -> stored once the PutObject has answered; false when it was not uploading.
    @discardableResult
    func markVersionStored(assetID: Int64, etag: String) throws -> Bool
    /// A new version's multipart upload pending -> completed, and its switch (state `stored`)
    /// recorded, together; nil when the upload or the asset had moved on.
    func completeVersionUpload(uploadID: String, partsDigest: String, location: String, change: VersionSwitch, now: Date) throws -> VersionSwitch?
    /// The switch in progress for an asset, if any.
    func versionSwitch(assetID: Int64) throws -> VersionSwitch?
    /// Drops the switch to `version`; false when there was none.
    @discardableResult
    func discardVersionSwitch(assetID: Int64, version: Int) throws -> Bool
    /// The last step of a switch: the current version archived under `archiveKey`, the new
    /// one current, the switch removed, together. Nil (nothing changed) when the asset is
    /// no longer ready at the version before this one.
    func recordVersionSwitched(_ change: VersionSwitch, archiveKey: String, now: Date) throws -> AssetRecord?
}

/// Thumbnail tasks, whose state lives on their asset so that a crash loses none.
public protocol ThumbnailRecords: AnyObject, Sendable {
    /// Queues the thumbnail of a ready asset; false when it is not ready.
    @discardableResult
    func queueThumbnail(assetID: Int64, now: Date) throws -> Bool
    /// A ready asset that gets no thumbnail, and why.
    func recordNoThumbnail(assetID: Int64, reason: String, now: Date) throws
    /// Begins an attempt (counted before any work); nil when there is nothing to do.
    func claimThumbnail(assetID: Int64) throws -> ThumbnailTask?
    /// Gives back the attempt `task` counted, when the decoder was unavailable (its socket
    /// unreachable, its zygote restarting: not the content's fault): the task stays
    /// pending with the attempts it had before the claim, and (PostgreSQL) leased to this
    /// host for `pause`, so that no host takes it before then. Fenced on the claim (the
    /// version and the attempt; PostgreSQL: the owner): false, changing nothing, when the
    /// task moved on meanwhile.
    @discardableResult
    func releaseThumbnail(_ task: ThumbnailTask, for pause: Duration) throws -> Bool
    /// pending -> ready, failed or none for the version (ETag) the task worked on; false
    /// when the asset moved on meanwhile.
    @discardableResult
    func finishThumbnail(assetID: Int64, etag: String?, status: ThumbnailStatus, reason: String?, now: Date) throws -> Bool
    /// Ready assets whose thumbnail task was interrupted, or never queued.
    func unsettledThumbnails(limit: Int) throws -> [AssetRecord]
    /// Ready assets whose thumbnail failed, by id after `afterID`, in one workspace or all
    /// (`assetd thumbnails --retry-failed`).
    func failedThumbnails(workspaceID: Int64?, afterID: Int64, limit: Int) throws -> [FailedThumbnail]
    /// failed -> pending, with no attempt, reason or lease, while the asset is ready and
    /// its thumbnail still failed (a compare-and-set: a newer version's task is left
    /// alone); the fleet's pollers (PostgreSQL) or the next start (SQLite) run it. False
    /// when nothing changed.
    @discardableResult
    func requeueFailedThumbnail(assetID: Int64, now: Date) throws -> Bool
    /// Thumbnail tasks pending, database-wide (assetd_thumbnail_pending, at each scrape);
    /// through the index of the unsettled tasks (asset_thumbnail_unsettled).
    func pendingThumbnailCount() throws -> Int
    /// What a task recorded (for tests and operators); nil when there is no such asset.
    func thumbnailState(assetID: Int64) throws -> ThumbnailState?
    /// Records the media metadata of the version (ETag) the decoder read; false, writing
    /// nothing, when the asset moved on (deleted, or a newer version). "v8: media metadata".
    @discardableResult
    func recordMedia(assetID: Int64, etag: String?, media: MediaMetadata, now: Date) throws -> Bool
    /// Ready assets with a ready thumbnail and no media metadata for their current
    /// version (from before "v8: media metadata"), by id from `afterID` (exclusive), in
    /// one workspace or all, but for versions on which the decoder failed `maxAttempts`
    /// times (recordMediaAttempt): the media backfill's work list (MediaBackfill).
    func assetsMissingMedia(limit: Int, workspaceID: Int64?, afterID: Int64, maxAttempts: Int) throws -> [AssetRecord]
    /// Counts a decoder failure (a crash or its deadline, not a refusal) of the media
    /// backfill on the version (ETag) read: the failures of that version so far, 0 when
    /// nothing was counted (the asset moved on, or its media was recorded meanwhile).
    /// "v12: media backfill attempts" (SQLite), "v6: media backfill attempts" (PostgreSQL).
    @discardableResult
    func recordMediaAttempt(assetID: Int64, etag: String?) throws -> Int
    /// Assets still missing media whose current version the backfill gave up on
    /// (`maxAttempts` decoder failures), in one workspace or all.
    func assetsGivenUpOnMedia(workspaceID: Int64?, maxAttempts: Int) throws -> Int
    /// Clears the counted decoder failures, in one workspace or all (`assetd
    /// backfill-media --retry-failed`): the number of assets cleared.
    @discardableResult
    func clearMediaAttempts(workspaceID: Int64?) throws -> Int
    /// The media backfill's write: records `media` for the version (ETag) read, only while
    /// that version still has none (so a second host or run writes nothing) and no
    /// version switch is under way (the GET by key may have read the new version), with
    /// an `asset.updated` event in the same transaction (search indexes get the fields).
    /// All-unknown `media` marks a version whose file could not be read: not tried again,
    /// and no event (nothing a subscriber could use).
    /// Never touches the thumbnail's state. False when nothing was written.
    @discardableResult
    func backfillMedia(assetID: Int64, etag: String?, media: MediaMetadata, now: Date) throws -> Bool
}

extension ThumbnailRecords {
    @discardableResult
    public func queueThumbnail(assetID: Int64) throws -> Bool {
        try queueThumbnail(assetID: assetID, now: Date())
    }

    public func recordNoThumbnail(assetID: Int64, reason: String) throws {
        try recordNoThumbnail(assetID: assetID, reason: reason, now: Date())
    }

    @discardableResult
    public func finishThumbnail(assetID: Int64, etag: String?, status: ThumbnailStatus, reason: String?) throws -> Bool {
        try finishThumbnail(assetID: assetID, etag: etag, status: status, reason: reason, now: Date())
    }

    public func unsettledThumbnails() throws -> [AssetRecord] {
        try unsettledThumbnails(limit: 10_000)
    }

    public func assetsMissingMedia(limit: Int) throws -> [AssetRecord] {
        try assetsMissingMedia(limit: limit, workspaceID: nil, afterID: 0)
    }

    /// Every asset missing media, whatever the decoder's failures on it.
    public func assetsMissingMedia(limit: Int, workspaceID: Int64?, afterID: Int64) throws -> [AssetRecord] {
        try assetsMissingMedia(limit: limit, workspaceID: workspaceID, afterID: afterID, maxAttempts: Int(Int32.max))
    }
}

/// The reconciler's work lists: records a crash or a failed S3 call left mid-way.
public protocol RepairWorkLists: AnyObject, Sendable {
    /// Directly uploaded assets (no multipart upload) still pending since before `before`.
    func pendingDirectAssets(updatedBefore before: Date, limit: Int) throws -> [AssetRecord]
    /// Multipart uploads still pending that were started before `before`.
    func pendingUploads(startedBefore before: Date, limit: Int) throws -> [UploadRecord]
    /// Assets whose delete began before `before` and never finished.
    func deletingAssets(updatedBefore before: Date, limit: Int) throws -> [AssetRecord]
    /// Version switches recorded before `before`.
    func versionSwitches(createdBefore before: Date, limit: Int) throws -> [VersionSwitch]
    /// How many multipart uploads are pending (for /metrics).
    func pendingUploadCount() throws -> Int
    /// Deleted assets whose versions prefix is to be listed once more (`markDeleted` puts
    /// each there): a new version's PutObject that raced the delete may land after it.
    func deletedAssetsToSweep(deletedBefore before: Date, limit: Int) throws -> [AssetRecord]
    /// The sweep of a deleted asset is done.
    func markSwept(assetID: Int64) throws
}

extension RepairWorkLists {
    public func pendingDirectAssets(updatedBefore before: Date) throws -> [AssetRecord] {
        try pendingDirectAssets(updatedBefore: before, limit: 500)
    }

    public func pendingUploads(startedBefore before: Date) throws -> [UploadRecord] {
        try pendingUploads(startedBefore: before, limit: 500)
    }

    public func deletingAssets(updatedBefore before: Date) throws -> [AssetRecord] {
        try deletingAssets(updatedBefore: before, limit: 500)
    }

    public func versionSwitches(createdBefore before: Date) throws -> [VersionSwitch] {
        try versionSwitches(createdBefore: before, limit: 500)
    }
}

/// Whether the store answers (for /healthz).
public protocol StoreHealth: AnyObject, Sendable {
    func ping() throws
}

/// The transactional outbox (docs/API.md, "Events"). The state changes above write their
/// event in their own transaction: `markAssetReady` and `completeUpload` asset.ready,
/// `recordVersionSwitched` asset.version_added, `markDeleted` asset.deleted,
/// `finishThumbnail` thumbnail.ready or thumbnail.failed, `describeAsset` (of a ready asset)
/// asset.updated; each event gets one pending
/// delivery per active sink. Delivery is at least once, in order per asset and sink: a
/// claim never returns an event while an earlier one of its asset is pending for that sink.
public protocol EventOutbox: AnyObject, Sendable {
    /// Adds `sinks` (this host's settings) to the ones new events are queued for, or makes
    /// them active again; other sinks are left as they are, since other hosts may deliver
    /// them (only `retireEventSink` removes one). A disabled (410) sink stays disabled.
    func activateEventSinks(_ sinks: [String], now: Date) throws
    /// Up to `limit` due deliveries for `sink`, oldest event first, at most one per asset,
    /// each with its attempt counted and leased until `leaseUntil` (when it is due again
    /// should this process die). None while the sink is disabled or retired.
    func claimDeliveries(sink: String, limit: Int, now: Date, leaseUntil: Date) throws -> [EventDelivery]
    /// Records what attempt `attempt` (the claim's `EventDelivery.attempts`) came to; nothing
    /// when the delivery was claimed again since (its lease ended while this attempt ran, and
    /// another worker or host holds it now) or is no longer pending.
    func finishDelivery(eventID: Int64, sink: String, attempt: Int, outcome: DeliveryOutcome, now: Date) throws
    /// The sink answered 410 Gone: no more events are queued for it, and its pending
    /// deliveries become dead with `reason`, until an operator redelivers one of them.
    func disableEventSink(_ sink: String, reason: String, now: Date) throws
    /// Deliveries in `state`, oldest event first (for `assetd events`).
    func eventDeliveries(state: DeliveryState, limit: Int) throws -> [EventDeliveryStatus]
    /// Queues every delivery of event `id` that is not pending again, due now, with a new
    /// deadline, and enables their sinks again; how many it queued (0: no such event).
    func redeliverEvent(id: Int64, now: Date) throws -> Int
    /// Pending deliveries (the backlog, for /metrics).
    func eventBacklog() throws -> Int
    /// One bounded batch of the retention: among up to `limit` events after `afterEventID`
    /// created before `deliveredBefore`, removes their delivered deliveries, their dead ones
    /// that died before `deadBefore`, and then the events with no delivery left. Pending
    /// deliveries are never removed (`expireDeliveries` makes the stale ones dead first). On PostgreSQL, events another host is pruning or
    /// redelivering are skipped (SKIP LOCKED), so hosts prune together without waiting.
    @discardableResult
    func pruneEvents(deliveredBefore: Date, deadBefore: Date, afterEventID: Int64, limit: Int) throws -> EventPruning
    /// One bounded batch of the pruner's expiry: up to `limit` pending deliveries, oldest
    /// event first, become dead. Those of a retired or disabled sink (queued by a change
    /// that committed while the sink was retired: no claim takes them), with
    /// `inactiveReason`; and those whose attempts began before `startedBefore`
    /// (ASSETD_EVENT_MAX_AGE) and that are due by `now` (not leased by a claim in flight,
    /// nor waiting for a retry), with `expiredReason`: what a claim's RetryPolicy would
    /// have done, for a sink that no host delivers any more. Returns how many, per sink.
    /// On PostgreSQL, deliveries another transaction holds are skipped (SKIP LOCKED).
    func expireDeliveries(startedBefore: Date, now: Date, limit: Int, expiredReason: String, inactiveReason: String) throws -> [String: Int]
    /// Every sink, with its pending and dead deliveries, by name.
    func eventSinks() throws -> [EventSinkStatus]
    /// An operator retires `sink`: no new event is queued for it, no host claims its
    /// deliveries, and its pending ones become dead with `reason`; how many did. A host
    /// configured with it makes it active again when it starts.
    func retireEventSink(_ sink: String, reason: String, now: Date) throws -> Int
}
