import AssetStore
import Foundation
import Logging
import Media
import Thumbnails

extension App {
    /// Hands a ready asset to the thumbnail queue; with thumbnails off, records why it has none.
    func queueThumbnail(_ asset: AssetRecord) {
        if let thumbnails {
            thumbnails.assetBecameReady(asset)
            return
        }
        do {
            try database.recordNoThumbnail(assetID: asset.id, reason: "thumbnails are off (ASSETD_THUMBNAILS)")
        } catch {
            logger.error("could not record the thumbnail state", metadata: ["asset": "\(asset.id)", "error": "\(error)"])
        }
    }
}

extension Bootstrap {
    /// The thumbnail worker `serve` runs, or nil when ASSETD_THUMBNAILS is off. libvips
    /// is set up here, once for the process: untrusted and unlisted loaders blocked, its
    /// cache off, its threads bounded so that tasks × threads stays near the core count.
    static func thumbnailWorker(_ configuration: Configuration, database: SQLiteRecordStore, store: any ObjectStore,
                                detector: ContentDetector, logger: Logger) throws -> ThumbnailWorker? {
        guard configuration.thumbnailsEnabled else {
            logger.info("thumbnails are off (ASSETD_THUMBNAILS=off)")
            return nil
        }
        var settings = Thumbnailer.Settings()
        settings.size = configuration.thumbnailSize
        settings.quality = configuration.thumbnailQuality
        settings.maxPixels = configuration.thumbnailMaxPixels
        settings.vipsThreads = max(1, ProcessInfo.processInfo.activeProcessorCount / configuration.thumbnailConcurrency)
        let thumbnailer = try Thumbnailer(settings: settings)
        // Its own private directory beside the spool: sources and frames are files with a
        // name while libvips and ffmpeg read them, unlike the spool's unlinked files.
        let scratch = configuration.stateDirectory + "/thumbnail-tmp"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let worker = ThumbnailWorker(database: database, store: store, detector: detector, thumbnailer: thumbnailer,
                                     concurrency: configuration.thumbnailConcurrency, scratchDirectory: scratch,
                                     maxSourceBytes: configuration.thumbnailMaxSourceBytes, logger: logger)
        worker.sweepScratch()
        logger.info("thumbnails on", metadata: [
            "size": "\(settings.size)", "quality": "\(settings.quality)", "concurrency": "\(configuration.thumbnailConcurrency)",
            "max_pixels": "\(settings.maxPixels)", "vips_threads": "\(settings.vipsThreads)",
        ])
        return worker
    }
}
