public import MediaInfo
import Foundation
import Glibc

/// Makes JPEG thumbnails of files with libvips (and ffmpeg for a video's frame).
///
/// Synchronous and thread-safe: the queue calls it from its own threads. It knows
/// nothing of S3, SQL or HTTP; the caller hands it a local file and the type libmagic
/// detected in it.
public final class Thumbnailer: Sendable {
    public struct Settings: Sendable {
        /// The longest edge, in pixels (ASSETD_THUMBNAIL_SIZE).
        public var size = 512
        /// JPEG quality (ASSETD_THUMBNAIL_QUALITY).
        public var quality = 80
        /// Images with more pixels fail, from their header (ASSETD_THUMBNAIL_MAX_PIXELS).
        public var maxPixels = 100_000_000
        /// Images whose decoded pixels (width x height x bands x bytes per band, from the
        /// header) would take more memory fail before a pixel is decoded
        /// (ASSETD_THUMBNAIL_MAX_DECODE_BYTES): an interlaced PNG, a single-strip TIFF or a
        /// progressive JPEG decodes whole, whatever the thumbnail's size.
        public var maxDecodeBytes = 512 << 20
        /// libvips' worker threads for one image.
        public var vipsThreads = 1
        /// How long ffmpeg may take for a video's frame.
        public var videoTimeout: Duration = .seconds(30)

        public init() {}
    }

    /// The loader each thumbnailable type must reach, by the type libmagic detects.
    static let loaders = [
        "image/jpeg": "jpegload", "image/png": "pngload", "image/gif": "gifload", "image/webp": "webpload",
        "image/tiff": "tiffload", "image/heic": "heifload", "image/heif": "heifload", "image/avif": "heifload",
        "application/pdf": "pdfload",
    ]

    public let settings: Settings

    public init(settings: Settings) throws(ThumbnailError) {
        self.settings = settings
        try Vips.start(threads: settings.vipsThreads)
    }

    /// Whether a type (as recorded or as detected) gets a thumbnail at all.
    public static func makesThumbnail(of type: String) -> Bool {
        loaders[type] != nil || VideoFrame.demuxers[type] != nil
    }

    /// The loader libvips would use for the file (for tests and logs).
    public static func loader(forFile path: String) -> String? {
        Vips.loader(forFile: path)
    }

    /// The JPEG thumbnail of the file at `path`, whose content libmagic found to be
    /// `detectedType`. `scratch` is a private directory for a video's frame.
    public func thumbnail(ofFile path: String, detectedType: String, scratch: String) throws(ThumbnailError) -> [UInt8] {
        try decode(path: path, descriptor: nil, detectedType: detectedType, scratch: scratch, keepGPS: false).jpeg
    }

    /// The same for an open file (the decoder's input): libvips reads /proc/self/fd/N,
    /// ffmpeg gets the descriptor as its own 3.
    public func thumbnail(ofDescriptor descriptor: Int32, detectedType: String, scratch: String) throws(ThumbnailError) -> [UInt8] {
        try decode(ofDescriptor: descriptor, detectedType: detectedType, scratch: scratch, keepGPS: false).jpeg
    }

    /// The thumbnail and what the same pass learned about the file (MediaMetadata): GPS only
    /// with `keepGPS`. The JPEG itself never carries EXIF, GPS or a profile (jpegsave strips).
    public func decode(ofFile path: String, detectedType: String, scratch: String, keepGPS: Bool) throws(ThumbnailError)
        -> (jpeg: [UInt8], facts: MediaMetadata) {
        try decode(path: path, descriptor: nil, detectedType: detectedType, scratch: scratch, keepGPS: keepGPS)
    }

    public func decode(ofDescriptor descriptor: Int32, detectedType: String, scratch: String, keepGPS: Bool) throws(ThumbnailError)
        -> (jpeg: [UInt8], facts: MediaMetadata) {
        try decode(path: "/proc/self/fd/\(descriptor)", descriptor: descriptor, detectedType: detectedType, scratch: scratch,
                   keepGPS: keepGPS)
    }

    /// The media facts alone (the backfill of assets recorded before them): the loader
    /// check and the header of an image or PDF, ffprobe for a video; no pixel is decoded
    /// and no thumbnail made.
    /// An ffprobe that did not start or ran past its deadline is a crash-class error
    /// (`ThumbnailError.crash`), not "no video stream", which would be final.
    public func facts(ofDescriptor descriptor: Int32, detectedType: String, scratch: String, keepGPS: Bool) throws(ThumbnailError)
        -> MediaMetadata {
        try facts(ofDescriptor: descriptor, detectedType: detectedType, scratch: scratch, keepGPS: keepGPS, ffprobe: "ffprobe")
    }

    func facts(ofDescriptor descriptor: Int32, detectedType: String, scratch: String, keepGPS: Bool, ffprobe: String)
        throws(ThumbnailError) -> MediaMetadata {
        let path = "/proc/self/fd/\(descriptor)"
        if VideoFrame.demuxers[detectedType] != nil {
            let facts = try VideoFrame.probe(path, type: detectedType, timeout: settings.videoTimeout, executable: ffprobe,
                                             inputDescriptor: descriptor)
            guard facts != MediaMetadata() else { throw ThumbnailError("ffprobe found no video stream it could read") }
            return facts
        }
        guard let expectedLoader = Self.loaders[detectedType] else {
            throw ThumbnailError("no media facts for content of type \(detectedType)")
        }
        guard let loader = Vips.loader(forFile: path) else {
            throw ThumbnailError("no allowed image loader recognizes the content (expected \(expectedLoader))")
        }
        guard loader == expectedLoader else {
            throw ThumbnailError("the content would be read by \(loader), not \(expectedLoader)")
        }
        let header = try Vips.header(ofFile: path, keepGPS: keepGPS)
        guard header.width > 0, header.height > 0 else { throw ThumbnailError("the image has no pixels") }
        return header.facts
    }

    private func decode(path: String, descriptor: Int32?, detectedType: String, scratch: String, keepGPS: Bool) throws(ThumbnailError)
        -> (jpeg: [UInt8], facts: MediaMetadata) {
        if VideoFrame.demuxers[detectedType] != nil {
            // The frame goes to a memfd, read back through /proc/self/fd: no file in a
            // shared /tmp for another task's child to read or replace.
            let frame = try VideoFrame.memoryFile("frame")
            defer { close(frame) }
            try VideoFrame.extract(from: path, type: detectedType, into: frame, timeout: settings.videoTimeout, inputDescriptor: descriptor)
            // The video's own size and duration (ffprobe); the frame's size when it says none.
            // A thumbnail has its frame already: a probe that did not answer costs only the
            // facts, once ffprobe is gone. One past its deadline that a confined child could
            // not kill ends the task instead (a crash: another attempt later), so that the
            // child does not decode beside it; the zygote kills the child's process group.
            var facts: MediaMetadata
            do throws(ThumbnailError) {
                facts = try VideoFrame.probe(path, type: detectedType, timeout: settings.videoTimeout, inputDescriptor: descriptor)
            } catch let error where error.leftRunning {
                throw error
            } catch {
                facts = MediaMetadata()
            }
            let (jpeg, frameFacts) = try image("/proc/self/fd/\(frame)", expectedLoader: "pngload", keepGPS: false)
            if facts.width == nil { (facts.width, facts.height) = (frameFacts.width, frameFacts.height) }
            return (jpeg, facts)
        }
        guard let loader = Self.loaders[detectedType] else {
            throw ThumbnailError("no thumbnail for content of type \(detectedType)")
        }
        return try image(path, expectedLoader: loader, keepGPS: keepGPS)
    }

    /// A still image: the loader libvips picks must be the one of the detected type, and
    /// the header's pixel count within the limit, before a pixel is decoded.
    private func image(_ path: String, expectedLoader: String, keepGPS: Bool) throws(ThumbnailError) -> (jpeg: [UInt8], facts: MediaMetadata) {
        guard let loader = Vips.loader(forFile: path) else {
            throw ThumbnailError("no allowed image loader recognizes the content (expected \(expectedLoader))")
        }
        // libvips 8.14 still names a blocked loader here (opening with it then fails):
        // the file stops at this check either way, before any loader reads it.
        guard loader == expectedLoader else {
            throw ThumbnailError("the content would be read by \(loader), not \(expectedLoader)")
        }
        let header = try Vips.header(ofFile: path, keepGPS: keepGPS)
        let (width, height) = (header.width, header.height)
        guard width > 0, height > 0 else { throw ThumbnailError("the image has no pixels") }
        guard width.multipliedReportingOverflow(by: height).partialValue <= settings.maxPixels, width <= 1 << 20, height <= 1 << 20 else {
            throw ThumbnailError("image too large: \(width)x\(height) is over \(settings.maxPixels) pixels")
        }
        // The decode budget: what the pixels take once decoded whole (an overflow is over it).
        let perPixel = max(1, header.bands).multipliedReportingOverflow(by: max(1, header.bytesPerBand))
        let total = (width * height).multipliedReportingOverflow(by: perPixel.partialValue)
        let decodeBytes = perPixel.overflow || total.overflow ? Int.max : total.partialValue
        guard decodeBytes <= settings.maxDecodeBytes else {
            throw ThumbnailError("decode budget exceeded: \(width)x\(height), \(header.bands) bands of \(header.bytesPerBand) bytes, "
                                 + "would take \(decodeBytes) bytes, over ASSETD_THUMBNAIL_MAX_DECODE_BYTES (\(settings.maxDecodeBytes))")
        }
        let jpeg = try Vips.thumbnailJPEG(ofFile: path, size: settings.size, quality: settings.quality,
                                          colourManaged: header.needsColourManagement)
        return (jpeg, header.facts)
    }
}
