import MediaInfo
public import AssetStore
import Foundation
import Glibc
public import Logging
public import Media
import S3Client
import Synchronization
public import Thumbnails

/// Thumbnail tasks: what follows a ready asset. Each task streams the object from S3 to
/// a private temporary file, checks its content with libmagic, has the decoder process
/// (`assetd-thumbnailer`: libvips, ffmpeg first for a video) make the JPEG, stores it
/// beside the asset and records the result. No untrusted parser runs in this process.
///
/// The task's state lives in the database (`ThumbnailRecords`), so that a crash or
/// a stop loses nothing: `resume` queues again what was left pending at the last exit.
public final class ThumbnailWorker: Sendable {
    /// Attempts a task gets in all: S3 failures are retried with backoff, and an attempt
    /// that a crash interrupted counts too (a file that kills the process stops there).
    static let maxAttempts = 3
    static let cacheControl = "max-age=31536000"

    let records: any ThumbnailRecords & AssetRecords
    let objects: any ObjectStorage
    let detector: ContentDetector
    /// The decoder: a fresh child of the decoder zygote for each task (IsolatedThumbnailer).
    let decoder: any ThumbnailDecoding
    let queue: TaskQueue
    /// A private (0700) directory for the downloaded sources and video frames.
    let scratchDirectory: String
    /// ASSETD_THUMBNAIL_MAX_SOURCE_BYTES: a larger object gets no thumbnail (status none),
    /// since the task downloads it whole to the state disk.
    let maxSourceBytes: Int64
    let logger: Logger
    /// The pause before attempt n + 1 after an S3 failure in attempt n; also the pause
    /// before a task put back for the n-th decoder-unavailable answer in a row.
    let backoff: @Sendable (Int) -> Duration
    /// The decoder outage: tasks it could not take (DecodeFailure.unavailable) since its
    /// last answer, whose count picks the backoff, and until when tasks wait before they
    /// even download their source, so that a long outage costs one try (one download) per
    /// pause, not one per queued task. Any answer of the decoder ends it.
    let decoderOutage = Mutex(DecoderOutage())

    struct DecoderOutage {
        var unavailable = 0
        var until: ContinuousClock.Instant?
    }

    /// Asset ids whose thumbnail key a task is writing: the check, the PUT and the
    /// record's update happen under it (see `store`).
    let storing = AssetLocks()

    /// ASSETD_THUMBNAIL_CONCURRENCY decoder children at most: each task's decode takes a
    /// slot, and so does the media backfill's (which runs outside the queue's threads), so
    /// the backfill adds no child of its own to the host's memory budget.
    let decoderSlots: DispatchSemaphore
    /// ASSETD_KEEP_GPS: whether the decoder's coordinates are recorded (`media(from:)`).
    let keepGPS: Bool
    /// serve's metrics (assetd_thumbnail_tasks_total, assetd_decoder_up); nil for a command.
    let metrics: Metrics?

    public init(records: any ThumbnailRecords & AssetRecords, objects: any ObjectStorage, detector: ContentDetector, decoder: any ThumbnailDecoding,
                concurrency: Int, scratchDirectory: String, maxSourceBytes: Int64 = 2 << 30, keepGPS: Bool = false, logger: Logger,
                metrics: Metrics? = nil, backoff: @escaping @Sendable (Int) -> Duration = { .seconds(1 << min($0, 6)) }) {
        self.metrics = metrics
        self.maxSourceBytes = maxSourceBytes
        self.keepGPS = keepGPS
        self.records = records
        self.objects = objects
        self.detector = detector
        self.decoder = decoder
        // Nice 10: decoding yields the cores to the FastCGI threads under load.
        self.queue = TaskQueue(label: "assetd.thumbnails", concurrency: concurrency, niceness: 10)
        self.decoderSlots = DispatchSemaphore(value: max(1, concurrency))
        self.scratchDirectory = scratchDirectory
        self.logger = logger
        self.backoff = backoff
        queue.start { [weak self] id in self?.run(id) }
    }

    /// Queues the thumbnail of an asset that just became ready; records `none` at once
    /// for a type that has no thumbnail. Never waits for the task. Returns the thumbnail's
    /// state as recorded: `pending` once queued.
    @discardableResult
    func enqueue(_ asset: AssetRecord) -> ThumbnailStatus {
        do {
            guard Thumbnailer.makesThumbnail(of: asset.fileType) else {
                try records.recordNoThumbnail(assetID: asset.id, reason: "no thumbnail for \(asset.fileType)", now: Date())
                return .none
            }
            guard try records.queueThumbnail(assetID: asset.id, now: Date()) else { return asset.thumbnailStatus }
            queue.enqueue(asset.id)
            return .pending
        } catch {
            // The record stays `none` without a reason: the next start queues it (resume).
            logger.error("could not queue a thumbnail", metadata: ["asset": "\(asset.id)", "error": "\(error)"])
            return asset.thumbnailStatus
        }
    }

    /// At start-up: queues again the tasks a crash or a stop left pending, and those a
    /// crash kept from being queued. Returns how many.
    @discardableResult
    public func resume() throws -> Int {
        let unsettled = try records.unsettledThumbnails(limit: 10_000)
        for asset in unsettled {
            if asset.thumbnailStatus == .pending { queue.enqueue(asset.id) } else { enqueue(asset) }
        }
        if !unsettled.isEmpty { logger.notice("thumbnail tasks resumed", metadata: ["count": "\(unsettled.count)"]) }
        // Assets from before "v8: media metadata" are not queued again here: MediaBackfill
        // reads their media alone (the reconciler's batches, `assetd backfill-media`),
        // leaving their thumbnails as they are.
        return unsettled.count
    }

    /// Takes no new task; waits up to `timeout` for the running ones. What is still
    /// waiting stays pending in the database for the next start.
    public func stop(waitingUpTo timeout: Duration) {
        let waiting = queue.counts.waiting
        let running = queue.stop(waitingUpTo: timeout)
        logger.info("thumbnail queue stopped", metadata: ["left_pending": "\(waiting)", "still_running": "\(running)"])
    }

    // MARK: - One task

    /// How an attempt ended, when it did not store a thumbnail.
    enum Outcome: Error {
        /// Final: recorded as failed (or none) with the reason.
        case final(ThumbnailStatus, String)
        /// S3 failed, or the decoder died (crash, SIGKILL, its memory, CPU or time limit):
        /// another attempt after a pause, while attempts remain. assetd itself goes on.
        case transient(String)
        /// The decoder could not take the task (unreachable, restarting): the attempt is
        /// given back and the task runs again after a pause, as often as it takes; it is
        /// never failed for it (no thumbnail.failed), since its content is not at fault.
        case decoderUnavailable(String)
    }

    func run(_ id: Int64) {
        // The decoder is out: wait for the pause's end without a claim or a download.
        let now = ContinuousClock.now
        if let until = decoderOutage.withLock({ $0.until }), until > now {
            queue.enqueue(id, after: until - now)
            return
        }
        let task: ThumbnailTask
        do {
            guard let claimed = try records.claimThumbnail(assetID: id) else { return }
            task = claimed
        } catch {
            logger.error("thumbnail task: the database failed", metadata: ["asset": "\(id)", "error": "\(error)"])
            return
        }
        let asset = task.asset
        var metadata: Logger.Metadata = ["asset": "\(asset.id)", "attempt": "\(task.attempts)"]
        guard task.attempts <= Self.maxAttempts else {
            finish(asset, .failed, reason: "gave up after \(Self.maxAttempts) attempts were interrupted", metadata: metadata)
            return
        }
        let clock = ContinuousClock()
        let started = clock.now
        do throws(Outcome) {
            let (decoded, decodeTime) = try makeThumbnail(asset)
            metadata["decode_ms"] = "\(decodeTime.milliseconds)"
            metadata["bytes"] = "\(decoded.jpeg.count)"
            try store(decoded.jpeg, media: media(from: decoded.facts), of: asset, metadata: &metadata, started: started)
        } catch {
            switch error {
            case .final(let status, let reason):
                finish(asset, status, reason: reason, metadata: metadata)
            case .transient(let reason):
                metadata["reason"] = "\(reason)"
                guard task.attempts < Self.maxAttempts else {
                    finish(asset, .failed, reason: "\(reason) (after \(task.attempts) attempts)", metadata: metadata)
                    return
                }
                let pause = backoff(task.attempts)
                metrics?.thumbnailTask(.retried)
                logger.warning("thumbnail task failed; retrying", metadata: metadata.merging(["retry_in": "\(pause)"]) { $1 })
                queue.enqueue(asset.id, after: pause)
            case .decoderUnavailable(let reason):
                putBack(task, reason: reason, metadata: metadata)
            }
        }
    }

    /// The decoder could not take `task`: its attempt is given back (`releaseThumbnail`),
    /// and it runs again after the backoff of the unavailable answers in a row.
    private func putBack(_ task: ThumbnailTask, reason: String, metadata: Logger.Metadata) {
        metrics?.thumbnailTask(.unavailable)
        let pause = decoderOutage.withLock { outage in
            outage.unavailable += 1
            let pause = backoff(outage.unavailable)
            outage.until = ContinuousClock.now + pause
            return pause
        }
        var metadata = metadata
        metadata["reason"] = "\(reason)"
        metadata["retry_in"] = "\(pause)"
        do {
            // False: the asset moved on meanwhile (deleted, a new version): its own task runs.
            guard try records.releaseThumbnail(task, for: pause) else { return }
        } catch {
            // The attempt stays counted; the task still runs again after the pause.
            logger.error("thumbnail task: the database failed", metadata: metadata.merging(["error": "\(error)"]) { $1 })
        }
        logger.warning("thumbnail task put back: the decoder is unavailable (the attempt is not counted)", metadata: metadata)
        queue.enqueue(task.asset.id, after: pause)
    }

    /// Stores the JPEG of the version the task worked on, so that a thumbnail always
    /// belongs to the asset's current version (issue 17: an older task's JPEG must never
    /// replace a newer version's).
    ///
    /// Under the asset's lock, which every task takes to write this key:
    ///  1. compare-and-set before the PUT: the record must still be this version (ETag)
    ///     with its thumbnail pending, else nothing is stored;
    ///  2. the PUT;
    ///  3. `finishThumbnail`, itself a compare-and-set on the ETag; when it fails (a newer
    ///     version or a delete won during the PUT), the JPEG just stored is deleted again,
    ///     still under the lock, so the newer version's task (waiting for the lock) stores
    ///     its own after that delete.
    /// So two tasks' PUTs never overlap and the last one to land is the current version's.
    /// The window left: a PUT that S3 applies after assetd stopped waiting for it (a
    /// timeout, a restart mid-request). S3 orders concurrent writes by their arrival,
    /// and the newer task's PUT starts only after, so even that one loses on AWS;
    /// docs/OPERATIONS.md says so.
    /// `media` is recorded after the thumbnail, fenced on the same ETag (recordMedia).
    private func store(_ jpeg: [UInt8], media: MediaMetadata, of asset: AssetRecord, metadata: inout Logger.Metadata,
                       started: ContinuousClock.Instant) throws(Outcome) {
        let key = AssetKeys.thumbnail(workspaceID: asset.workspaceID, assetID: asset.id)
        let outcome: Outcome? = storing.withLock(asset.id) { () -> Outcome? in
            do {
                let current = try records.asset(id: asset.id, workspaceID: asset.workspaceID)
                guard let current, current.status == .ready, current.etag == asset.etag, current.thumbnailStatus == .pending else {
                    return .final(.failed, "outdated: the asset moved on before its thumbnail was stored")
                }
            } catch {
                return .transient("the database failed before storing the thumbnail: \(error)")
            }
            Faults.point("thumbnail-before-put")
            do {
                _ = try objects.putObject(key: key, bytes: jpeg, contentType: "image/jpeg",
                                          metadata: ["workspace_id": String(asset.workspaceID), "asset_id": String(asset.id)],
                                          cacheControl: Self.cacheControl)
            } catch {
                return .transient("storing the thumbnail failed: \(error)")
            }
            metadata["total_ms"] = "\((ContinuousClock.now - started).milliseconds)"
            do {
                // Before the task's finish, so that its thumbnail.ready event carries them;
                // fenced on the ETag, so an outdated task records nothing.
                try records.recordMedia(assetID: asset.id, etag: asset.etag, media: media, now: Date())
            } catch {
                logger.error("could not record the media metadata", metadata: ["asset": "\(asset.id)", "error": "\(error)"])
            }
            if !finish(asset, .ready, reason: nil, metadata: metadata) && !isStillThisVersion(asset) {
                // Outdated or deleted meanwhile: what was just stored is no one's. (Still
                // this version: the lease went to another host, whose JPEG of the same
                // bytes lands under the same key; deleting would remove its work.)
                do {
                    try objects.deleteObjects(keys: [key])
                } catch {
                    logger.warning("could not remove an outdated thumbnail", metadata: ["key": "\(key)", "error": "\(error)"])
                }
            }
            return nil
        }
        if let outcome {
            if case .final = outcome {
                // The record moved on: nothing to record for this version.
                logger.info("thumbnail task outdated: the asset moved on", metadata: metadata)
                return
            }
            throw outcome
        }
    }

    /// The JPEG, and the time spent decoding and encoding (download excluded).
    private func makeThumbnail(_ asset: AssetRecord) throws(Outcome) -> (DecodedThumbnail, Duration) {
        try withSource(asset) { descriptor, type throws(Outcome) in
            let clock = ContinuousClock()
            let started = clock.now
            do throws(DecodeFailure) {
                let decoded = try withDecoderSlot { () throws(DecodeFailure) in try decoder.thumbnail(ofFile: descriptor, detectedType: type) }
                decoderAnswered()
                return (decoded, clock.now - started)
            } catch {
                switch error {
                case .refused(let reason):
                    decoderAnswered()
                    throw .final(.failed, reason)
                case .crashed(let reason):
                    decoderAnswered()
                    throw .transient("the decoder failed: \(reason)")
                case .unavailable(let reason):
                    metrics?.decoderReached(false)
                    throw .decoderUnavailable(reason)
                }
            }
        }
    }

    /// The decoder answered (a thumbnail, a refusal, a child's crash): no outage.
    private func decoderAnswered() {
        decoderOutage.withLock { $0 = DecoderOutage() }
        metrics?.decoderReached(true)
    }

    /// Runs `body` (a call to the decoder) holding one of the decoder's slots.
    func withDecoderSlot<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        decoderSlots.wait()
        defer { decoderSlots.signal() }
        return try body()
    }

    /// Runs `body` on the asset's object, streamed from S3 to a private temporary file
    /// (bounded memory; removed after), with the type libmagic detects in it, when that
    /// type gets a thumbnail. Shared by thumbnail tasks and the media backfill.
    func withSource<T>(_ asset: AssetRecord, _ body: (Int32, String) throws(Outcome) -> T) throws(Outcome) -> T {
        var template = Array("\(scratchDirectory)/thumbnail-source-XXXXXX".utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else { throw .transient("cannot create a temporary file: errno \(errno)") }
        let path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // Removed on every path, the crash points aside (a start-up sweeps those).
        defer {
            close(descriptor)
            unlink(path)
        }
        // The whole object comes to the state disk: past the cap (a long video), none.
        if let size = asset.size, size > maxSourceBytes {
            throw .final(.none, "the file (\(size) bytes) is over ASSETD_THUMBNAIL_MAX_SOURCE_BYTES (\(maxSourceBytes))")
        }
        do {
            // No more than the size recorded (the cap when none is): S3 does not get to fill the disk.
            _ = try objects.getObject(key: asset.key, toFile: descriptor, expectedSize: Int(asset.size ?? maxSourceBytes))
        } catch let error as S3Error where error.httpStatus == 404 {
            throw .final(.failed, "the object is missing from S3")
        } catch {
            throw .transient("downloading the object failed: \(error)")
        }
        Faults.point("thumbnail-after-download")
        let type: String
        do {
            type = MediaTypes.normalize(try detector.mimeType(ofFile: descriptor))
        } catch {
            throw .final(.failed, "libmagic failed: \(error)")
        }
        guard Thumbnailer.makesThumbnail(of: type) else {
            throw .final(.failed, "the content is \(type), which gets no thumbnail")
        }
        return try body(descriptor, type)
    }

    /// The decoder's facts (checked by IsolatedThumbnailer) as the record's metadata; all
    /// unknown when it sent none. Coordinates only with ASSETD_KEEP_GPS=on, whatever the
    /// decoder sent: so neither the record nor the asset.updated event of a backfill has them.
    func media(from facts: MediaMetadata?) -> MediaMetadata {
        guard let facts else { return MediaMetadata() }
        return keepGPS ? facts : facts.withoutGPS
    }

    @discardableResult
    private func finish(_ asset: AssetRecord, _ status: ThumbnailStatus, reason: String?, metadata: Logger.Metadata) -> Bool {
        var metadata = metadata
        if let reason { metadata["reason"] = "\(reason)" }
        do {
            let won = try records.finishThumbnail(assetID: asset.id, etag: asset.etag, status: status, reason: reason, now: Date())
            if won {
                switch status {
                case .ready: metrics?.thumbnailTask(.ready)
                case .failed: metrics?.thumbnailTask(.failed)
                case .none, .pending: break
                }
                logger.info("thumbnail \(status.rawValue)", metadata: metadata)
            } else {
                logger.info("thumbnail task outdated: the asset moved on", metadata: metadata)
            }
            return won
        } catch {
            logger.error("thumbnail task: the database failed", metadata: metadata.merging(["error": "\(error)"]) { $1 })
            return false
        }
    }

    /// Whether the asset is still ready at the version (ETag) the task worked on.
    private func isStillThisVersion(_ asset: AssetRecord) -> Bool {
        guard let current = try? records.asset(id: asset.id, workspaceID: asset.workspaceID) else { return false }
        return current.status == .ready && current.etag == asset.etag
    }

    /// Several hosts (PostgreSQL): every `interval`, queues the pending tasks no live host
    /// holds (never claimed, or their host died and the lease expired). The claim decides
    /// who runs each, so two hosts queuing the same one is harmless.
    public func pollClaimable(_ fleet: any FleetCoordination, every interval: Duration) {
        let thread = Thread { [weak self] in
            while let self {
                Thread.sleep(forTimeInterval: Double(interval.components.seconds))
                do {
                    for id in try fleet.claimableThumbnails(limit: 100) { self.queue.enqueue(id) }
                } catch {
                    self.logger.warning("thumbnail poll: the database failed", metadata: ["error": "\(error)"])
                }
            }
        }
        thread.name = "thumbnail-poll"
        thread.start()
    }

    /// Removes sources a crash left behind in the scratch directory (at start-up).
    public func sweepScratch() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: scratchDirectory)) ?? []
        for name in names where name.hasPrefix("thumbnail-source-") || name.hasPrefix("frame-") {
            unlink(scratchDirectory + "/" + name)
        }
    }
}

/// Per-asset mutual exclusion within the process (one assetd owns its database).
final class AssetLocks: @unchecked Sendable {
    private let condition = NSCondition()
    private var held: Set<Int64> = []

    func withLock<T>(_ id: Int64, _ body: () throws -> T) rethrows -> T {
        condition.lock()
        while held.contains(id) { condition.wait() }
        held.insert(id)
        condition.unlock()
        defer {
            condition.lock()
            held.remove(id)
            condition.broadcast()
            condition.unlock()
        }
        return try body()
    }
}
