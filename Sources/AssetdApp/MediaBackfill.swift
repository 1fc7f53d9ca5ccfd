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
/// The result is recorded for the version read (`backfillMedia`: fenced on the ETag and on
/// the media still being unknown) with an asset.updated event. A file that cannot be read
/// (refused, crashing the decoder, missing, over ASSETD_THUMBNAIL_MAX_SOURCE_BYTES) is
/// recorded as all-unknown, so it is not tried again; only an S3 failure leaves it for later.
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
        /// Left for a later run: S3 failed, or the asset moved on meanwhile.
        public var left = 0

        public var description: String {
            "\(examined) examined, \(recorded) recorded, \(unreadable) unreadable (recorded as unknown), \(left) left for later"
        }
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
    public func run(limit: Int, workspaceID: Int64? = nil, dryRun: Bool = false, batch: Int = 50, budget: Duration? = nil,
                    progress: (String) -> Void = { _ in }) throws -> Summary {
        var summary = Summary()
        var afterID: Int64 = 0
        let clock = ContinuousClock()
        let started = clock.now
        while summary.examined < limit, budget.map({ clock.now - started < $0 }) ?? true {
            let assets = try worker.records.assetsMissingMedia(limit: min(batch, limit - summary.examined), workspaceID: workspaceID,
                                                               afterID: afterID)
            guard let last = assets.last else { break }
            afterID = last.id
            for asset in assets {
                if let budget, clock.now - started >= budget { break }
                summary.examined += 1
                if dryRun {
                    progress("would read asset \(asset.id) (workspace \(asset.workspaceID), \(asset.fileType), \(asset.size ?? 0) bytes)")
                } else {
                    backfill(asset, into: &summary)
                }
            }
            if !dryRun {
                let elapsed = (clock.now - started).components
                let seconds = max(0.001, Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18)
                progress("media backfill: \(summary); \(String(format: "%.1f", Double(summary.examined) / seconds)) assets/s")
            }
        }
        return summary
    }

    /// One asset: its facts, recorded for the version read.
    func backfill(_ asset: AssetRecord, into summary: inout Summary) {
        var metadata: Logger.Metadata = ["asset": "\(asset.id)", "workspace": "\(asset.workspaceID)"]
        let media: MediaMetadata
        do throws(ThumbnailWorker.Outcome) {
            let facts = try worker.withSource(asset) { descriptor, type throws(ThumbnailWorker.Outcome) in
                do throws(DecodeFailure) {
                    return try worker.decoder.facts(ofFile: descriptor, detectedType: type)
                } catch {
                    // Refused, or the child died reading a header: the same bytes would do
                    // the same again, so the media is recorded as unknown.
                    throw .final(.failed, "the decoder could not read the media: \(error)")
                }
            }
            media = ThumbnailWorker.metadata(facts)
        } catch {
            switch error {
            case .final(_, let reason):
                metadata["reason"] = "\(reason)"
                media = MediaMetadata()
            case .transient(let reason):
                summary.left += 1
                logger.warning("media backfill: left for later", metadata: metadata.merging(["reason": "\(reason)"]) { $1 })
                return
            }
        }
        do {
            guard try worker.records.backfillMedia(assetID: asset.id, etag: asset.etag, media: media, now: Date()) else {
                summary.left += 1
                logger.info("media backfill: the asset moved on meanwhile", metadata: metadata)
                return
            }
        } catch {
            summary.left += 1
            logger.error("media backfill: the database failed", metadata: metadata.merging(["error": "\(error)"]) { $1 })
            return
        }
        if media == MediaMetadata(), metadata["reason"] != nil {
            summary.unreadable += 1
            logger.warning("media backfill: unreadable, recorded as unknown", metadata: metadata)
        } else {
            summary.recorded += 1
            logger.debug("media backfill: recorded", metadata: metadata)
        }
    }
}
