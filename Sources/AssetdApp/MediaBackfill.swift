import MediaInfo
public import AssetStore
import Foundation
public import Logging
import Thumbnails

/// The media backfill (issue 19): assets whose thumbnail was made before media metadata
/// was recorded ("v8: media metadata") get their media read from the stored object by the
/// decoder's facts-only mode: no re-upload, no thumbnail made or stored, and the
/// thumbnail's state (and its events) left as they are.
///
/// Each asset: its object streamed to a private temporary file (ThumbnailWorker.withSource,
/// as a thumbnail task does), libmagic, then the sandboxed decoder reading the header only.
/// The result is recorded for the version read (`backfillMedia`: fenced on the ETag, on
/// the media still being unknown and on no version switch under way) with an
/// asset.updated event. A file whose content cannot be read (the decoder refused it, the
/// object is missing, over ASSETD_THUMBNAIL_MAX_SOURCE_BYTES) is recorded as all-unknown,
/// without an event, so it is not tried again. A failure that is not the content's (S3,
/// the decoder crashed, unreachable or past its deadline, ffprobe did not run) leaves the
/// asset for later; a few decoder failures in a row end the run (the decoder is down).
///
/// The decoder's failures on an asset are counted in the database (`recordMediaAttempt`,
/// for the version read): after `maxAttempts` of them the backfill gives up on that version
/// (an error line names the asset) and lists it no more, so that a file that crashes or
/// stalls the decoder every time is not read again at every pass, nor first after every
/// restart. `assetd backfill-media --retry-failed` clears the counts. A run stopped
/// because the decoder failed `maxDecoderFailures` times in a row counts the first of
/// those failures only: the decoder being down is no asset's fault, and one count a run
/// still brings a file that fails the decoder every time to the limit.
///
/// Run by the reconciler, ASSETD_MEDIA_BACKFILL_BATCH assets a pass (under its fleet-wide
/// lock on PostgreSQL), and on demand by `assetd backfill-media`.
public struct MediaBackfill: Sendable {
    public struct Summary: Sendable, Equatable, CustomStringConvertible {
        /// Assets looked at (listed, for a dry run).
        public var examined = 0
        /// Media recorded (an asset.updated event each).
        public var recorded = 0
        /// Unreadable: recorded as unknown, not tried again.
        public var unreadable = 0
        /// Left for a later run: S3 or the decoder failed, or the asset moved on meanwhile.
        public var left = 0
        /// Of those left, given up on in this run: the decoder failed on them for the
        /// `maxAttempts`th time (`--retry-failed` tries them again).
        public var givenUp = 0
        /// The last asset id examined: where the next run may go on (`after`).
        public var cursor: Int64 = 0
        /// The list ran out: no asset missing media past `cursor` (a next run starts over).
        public var reachedEnd = false
        /// The run stopped early: the decoder failed `maxDecoderFailures` times in a row.
        public var decoderDown = false

        public var description: String {
            "\(examined) examined, \(recorded) recorded, \(unreadable) unreadable (recorded as unknown), \(left) left for later"
                + (givenUp > 0 ? " (\(givenUp) given up after \(MediaBackfill.maxAttempts) decoder failures)" : "")
                + (decoderDown ? "; stopped: the decoder failed \(MediaBackfill.maxDecoderFailures) times in a row" : "")
        }
    }

    /// Decoder failures (not refusals; crashes and the decoder unavailable alike) in a row
    /// after which a run stops: the decoder is down or the host overloaded, and every
    /// further asset would only fail the same way.
    static let maxDecoderFailures = 3

    /// Decoder failures on one version of an asset (across runs, counted in the database)
    /// after which the backfill gives up on it. Counted: a crash or the deadline on that
    /// file when it is the first failure of a streak, or when a later asset of the same
    /// run reads (the decoder works: the streak was the files'). Never counted: the
    /// decoder unavailable (DecodeFailure.unavailable), nor the rest of a streak that no
    /// success follows in the run (the decoder may have been down or the host overloaded).
    public static let maxAttempts = 3

    /// How one asset went.
    enum Result: Equatable {
        case recorded, unreadable, left
        /// Left for later because the decoder (not the content) failed on it, and why.
        case decoderFailed(String)
        /// Left for later because the decoder was not there to try it, and why.
        case decoderUnavailable(String)
    }

    let worker: ThumbnailWorker
    let logger: Logger

    public init(worker: ThumbnailWorker, logger: Logger) {
        self.worker = worker
        self.logger = logger
    }

    /// Reads up to `limit` assets missing media, oldest first, in one workspace or all, in
    /// batches of `batch`; `progress` gets a line after each batch. A dry run lists them
    /// and changes nothing. Each asset is tried at most once a run. With a `budget`, no
    /// asset is started once it is spent (the reconciler's pass holds its fleet-wide lock
    /// meanwhile: hostile files at the decoder's deadline must not keep it for hours).
    /// `after`: the id to go on from (the reconciler's cursor across passes).
    public func run(limit: Int, workspaceID: Int64? = nil, dryRun: Bool = false, batch: Int = 50, budget: Duration? = nil,
                    after: Int64 = 0, progress: (String) -> Void = { _ in }) throws -> Summary {
        var summary = Summary()
        summary.cursor = after
        var failuresInARow = 0
        // The decoder's failures after the first of the current streak: counted once a
        // later asset of this run reads (the decoder works), never otherwise.
        var uncounted: [(AssetRecord, String)] = []
        func count(_ asset: AssetRecord, _ reason: String) {
            if countAttempt(asset, reason: reason) { summary.givenUp += 1 }
        }
        let clock = ContinuousClock()
        let started = clock.now
        batches: while summary.examined < limit, budget.map({ clock.now - started < $0 }) ?? true {
            let asked = min(batch, limit - summary.examined)
            let assets = try worker.records.assetsMissingMedia(limit: asked, workspaceID: workspaceID, afterID: summary.cursor,
                                                               maxAttempts: Self.maxAttempts)
            if assets.count < asked { summary.reachedEnd = true }
            guard !assets.isEmpty else { break }
            for asset in assets {
                if let budget, clock.now - started >= budget {
                    summary.reachedEnd = false
                    break batches
                }
                summary.examined += 1
                summary.cursor = asset.id
                if dryRun {
                    progress("would read asset \(asset.id) (workspace \(asset.workspaceID), \(asset.fileType), \(asset.size ?? 0) bytes)")
                    continue
                }
                let result = backfill(asset)
                switch result {
                case .recorded: summary.recorded += 1
                case .unreadable: summary.unreadable += 1
                case .left, .decoderFailed, .decoderUnavailable: summary.left += 1
                }
                // An S3 failure or a moved asset says nothing of the decoder either way.
                switch result {
                case .decoderFailed(let reason):
                    if failuresInARow == 0 { count(asset, reason) } else { uncounted.append((asset, reason)) }
                    failuresInARow += 1
                case .decoderUnavailable:
                    // Nothing learnt of the file: never counted, but part of the streak.
                    failuresInARow += 1
                case .left:
                    break
                case .recorded, .unreadable:
                    for (failed, reason) in uncounted { count(failed, reason) }
                    uncounted = []
                    failuresInARow = 0
                }
                if failuresInARow >= Self.maxDecoderFailures {
                    uncounted = []
                    summary.decoderDown = true
                    summary.reachedEnd = false
                    logger.error("media backfill stopped: the decoder failed on \(failuresInARow) assets in a row; the rest is left for later",
                                 metadata: ["asset": "\(asset.id)"])
                    break batches
                }
            }
            if !dryRun {
                let elapsed = (clock.now - started).components
                let seconds = max(0.001, Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18)
                progress("media backfill: \(summary); \(String(format: "%.1f", Double(summary.examined) / seconds)) assets/s")
            }
        }
        // A streak that no success followed (the run's end, its budget or limit): its rest
        // is not counted, since nothing shows the decoder worked meanwhile.
        return summary
    }

    /// Counts a decoder failure on the asset's version; true when that was its
    /// `maxAttempts`th, and the backfill gives up on it (a line names it).
    func countAttempt(_ asset: AssetRecord, reason: String) -> Bool {
        let metadata: Logger.Metadata = ["asset": "\(asset.id)", "workspace": "\(asset.workspaceID)", "reason": "\(reason)"]
        do {
            let attempts = try worker.records.recordMediaAttempt(assetID: asset.id, etag: asset.etag)
            guard attempts == Self.maxAttempts else { return false }
            logger.error("media backfill: gave up on the asset after \(attempts) decoder failures; `assetd backfill-media --retry-failed` tries it again",
                         metadata: metadata)
            return true
        } catch {
            logger.error("media backfill: the database failed", metadata: metadata.merging(["error": "\(error)"]) { $1 })
            return false
        }
    }

    /// One asset: its facts, recorded for the version read. Only the decoder's refusal of
    /// the content is final; its crash (or its being unreachable, or past its deadline)
    /// leaves the asset for later, as a thumbnail task retries it.
    func backfill(_ asset: AssetRecord) -> Result {
        var metadata: Logger.Metadata = ["asset": "\(asset.id)", "workspace": "\(asset.workspaceID)"]
        let media: MediaMetadata
        var decoderFailed: String?
        var decoderUnavailable: String?
        do throws(ThumbnailWorker.Outcome) {
            let facts = try worker.withSource(asset) { descriptor, type throws(ThumbnailWorker.Outcome) in
                do throws(DecodeFailure) {
                    return try worker.withDecoderSlot { () throws(DecodeFailure) in
                        try worker.decoder.facts(ofFile: descriptor, detectedType: type)
                    }
                } catch {
                    switch error {
                    case .refused(let reason):
                        // The content itself: the same bytes would be refused again.
                        throw .final(.failed, "the decoder could not read the media: \(reason)")
                    case .crashed(let reason):
                        decoderFailed = reason
                        throw .transient("the decoder failed: \(reason)")
                    case .unavailable(let reason):
                        decoderUnavailable = reason
                        throw .transient("the decoder is unavailable: \(reason)")
                    }
                }
            }
            media = worker.media(from: facts)
        } catch {
            switch error {
            case .final(_, let reason):
                metadata["reason"] = "\(reason)"
                media = MediaMetadata()
            case .transient(let reason), .decoderUnavailable(let reason):
                logger.warning("media backfill: left for later", metadata: metadata.merging(["reason": "\(reason)"]) { $1 })
                return decoderFailed.map { .decoderFailed($0) } ?? decoderUnavailable.map { .decoderUnavailable($0) } ?? .left
            }
        }
        do {
            guard try worker.records.backfillMedia(assetID: asset.id, etag: asset.etag, media: media, now: Date()) else {
                logger.info("media backfill: the asset moved on meanwhile", metadata: metadata)
                return .left
            }
        } catch {
            logger.error("media backfill: the database failed", metadata: metadata.merging(["error": "\(error)"]) { $1 })
            return .left
        }
        if media == MediaMetadata(), metadata["reason"] != nil {
            logger.warning("media backfill: unreadable, recorded as unknown", metadata: metadata)
            return .unreadable
        }
        logger.debug("media backfill: recorded", metadata: metadata)
        return .recorded
    }
}
