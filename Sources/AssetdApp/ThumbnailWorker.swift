public import AssetStore
import Foundation
import Glibc
public import Logging
public import Media
import S3Client
public import Thumbnails

/// Thumbnail tasks: what follows a ready asset. Each task streams the object from S3 to
/// a private temporary file, checks its content with libmagic, makes the JPEG with
/// libvips (ffmpeg first for a video), stores it beside the asset and records the result.
///
/// The task's state lives in the database (SQLiteRecordStore+thumbnails), so that a crash or
/// a stop loses nothing: `resume` queues again what was left pending at the last exit.
public final class ThumbnailWorker: Sendable {
    /// Attempts a task gets in all: S3 failures are retried with backoff, and an attempt
    /// that a crash interrupted counts too (a file that kills the process stops there).
    static let maxAttempts = 3
    static let cacheControl = "max-age=31536000"

    let database: SQLiteRecordStore
    let store: any ObjectStore
    let detector: ContentDetector
    let thumbnailer: Thumbnailer
    let queue: TaskQueue
    /// A private (0700) directory for the downloaded sources and video frames.
    let scratchDirectory: String
    /// ASSETD_THUMBNAIL_MAX_SOURCE_BYTES: a larger object gets no thumbnail (status none),
    /// since the task downloads it whole to the state disk.
    let maxSourceBytes: Int64
    let logger: Logger
    /// The pause before attempt n + 1 after an S3 failure in attempt n.
    let backoff: @Sendable (Int) -> Duration

    public init(database: SQLiteRecordStore, store: any ObjectStore, detector: ContentDetector, thumbnailer: Thumbnailer,
                concurrency: Int, scratchDirectory: String, maxSourceBytes: Int64 = 2 << 30, logger: Logger,
                backoff: @escaping @Sendable (Int) -> Duration = { .seconds(1 << min($0, 6)) }) {
        self.maxSourceBytes = maxSourceBytes
        self.database = database
        self.store = store
        self.detector = detector
        self.thumbnailer = thumbnailer
        // Nice 10: decoding yields the cores to the FastCGI threads under load.
        self.queue = TaskQueue(label: "assetd.thumbnails", concurrency: concurrency, niceness: 10)
        self.scratchDirectory = scratchDirectory
        self.logger = logger
        self.backoff = backoff
        queue.start { [weak self] id in self?.run(id) }
    }

    /// Queues the thumbnail of an asset that just became ready; records `none` at once
    /// for a type that has no thumbnail. Never waits for the task.
    func assetBecameReady(_ asset: AssetRecord) {
        do {
            guard Thumbnailer.makesThumbnail(of: asset.fileType) else {
                try database.recordNoThumbnail(assetID: asset.id, reason: "no thumbnail for \(asset.fileType)")
                return
            }
            if try database.queueThumbnail(assetID: asset.id) { queue.enqueue(asset.id) }
        } catch {
            // The record stays `none` without a reason: the next start queues it (resume).
            logger.error("could not queue a thumbnail", metadata: ["asset": "\(asset.id)", "error": "\(error)"])
        }
    }

    /// At start-up: queues again the tasks a crash or a stop left pending, and those a
    /// crash kept from being queued. Returns how many.
    @discardableResult
    public func resume() throws -> Int {
        let unsettled = try database.unsettledThumbnails()
        for asset in unsettled {
            if asset.thumbnailStatus == .pending { queue.enqueue(asset.id) } else { assetBecameReady(asset) }
        }
        if !unsettled.isEmpty { logger.notice("thumbnail tasks resumed", metadata: ["count": "\(unsettled.count)"]) }
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
    private enum Outcome: Error {
        /// Final: recorded as failed (or none) with the reason.
        case final(ThumbnailStatus, String)
        /// S3 failed: another attempt after a pause, while attempts remain.
        case transient(String)
    }

    func run(_ id: Int64) {
        let task: ThumbnailTask
        do {
            guard let claimed = try database.claimThumbnail(assetID: id) else { return }
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
            let (jpeg, decodeTime) = try makeThumbnail(asset)
            let key = AssetKeys.thumbnail(workspaceID: asset.workspaceID, assetID: asset.id)
            do {
                _ = try store.putObject(key: key, bytes: jpeg, contentType: "image/jpeg",
                                        metadata: ["workspace_id": String(asset.workspaceID), "asset_id": String(asset.id)],
                                        cacheControl: Self.cacheControl)
            } catch {
                throw Outcome.transient("storing the thumbnail failed: \(error)")
            }
            metadata["decode_ms"] = "\(Self.milliseconds(decodeTime))"
            metadata["total_ms"] = "\(Self.milliseconds(clock.now - started))"
            metadata["bytes"] = "\(jpeg.count)"
            if !finish(asset, .ready, reason: nil, metadata: metadata) {
                removeIfGone(asset, key: key)
            }
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
                logger.warning("thumbnail task: S3 failed; retrying", metadata: metadata.merging(["retry_in": "\(pause)"]) { $1 })
                queue.enqueue(asset.id, after: pause)
            }
        }
    }

    /// The JPEG, and the time spent decoding and encoding (download excluded).
    private func makeThumbnail(_ asset: AssetRecord) throws(Outcome) -> ([UInt8], Duration) {
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
            _ = try store.getObject(key: asset.key, toFile: descriptor, expectedSize: Int(asset.size ?? 0))
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
        let clock = ContinuousClock()
        let started = clock.now
        do {
            let jpeg = try thumbnailer.thumbnail(ofFile: path, detectedType: type, scratch: scratchDirectory)
            return (jpeg, clock.now - started)
        } catch {
            throw .final(.failed, error.description)
        }
    }

    @discardableResult
    private func finish(_ asset: AssetRecord, _ status: ThumbnailStatus, reason: String?, metadata: Logger.Metadata) -> Bool {
        var metadata = metadata
        if let reason { metadata["reason"] = "\(reason)" }
        do {
            let won = try database.finishThumbnail(assetID: asset.id, etag: asset.etag, status: status, reason: reason)
            if won {
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

    /// A thumbnail stored for an asset that a delete took meanwhile: removed, so that
    /// nothing outlives its asset.
    private func removeIfGone(_ asset: AssetRecord, key: String) {
        do {
            let current = try database.asset(id: asset.id, workspaceID: asset.workspaceID)
            if current == nil || current!.status.isGone {
                try store.deleteObjects(keys: [key])
            }
        } catch {
            logger.warning("could not remove the thumbnail of a deleted asset", metadata: ["key": "\(key)", "error": "\(error)"])
        }
    }

    /// Removes sources a crash left behind in the scratch directory (at start-up).
    public func sweepScratch() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: scratchDirectory)) ?? []
        for name in names where name.hasPrefix("thumbnail-source-") || name.hasPrefix("frame-") {
            unlink(scratchDirectory + "/" + name)
        }
    }

    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds) * 1000 + Int(duration.components.attoseconds / 1_000_000_000_000_000)
    }
}
