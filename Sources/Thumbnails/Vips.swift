import MediaInfo
internal import CVips
import Foundation
import Logging
import Synchronization

/// libvips, set up once per process: untrusted loaders blocked, every loader but the
/// allowed ones blocked too, the operation cache off and the thread pool bounded.
enum Vips {
    /// The loaders assetd lets libvips use, by the abstract class that covers a loader's
    /// file, buffer and source forms. PDF (poppler) is one that libvips itself calls
    /// untrusted: it is re-enabled here on purpose, and only it.
    static let allowedLoaderClasses = [
        "VipsForeignLoadJpeg", "VipsForeignLoadPng", "VipsForeignLoadNsgif", "VipsForeignLoadWebp",
        "VipsForeignLoadTiff", "VipsForeignLoadHeif", "VipsForeignLoadPdf",
    ]

    /// libvips' own messages (domain VIPS): through swift-log, as one line each, instead of
    /// raw `VIPS-WARNING **` lines on standard error. The process's logging system (set up
    /// at start by Bootstrap) decides where they go and at which level they show.
    static let logger = Logger(label: "assetd.vips")

    /// Messages logged in the last `repeatWindow`, by text: libvips repeats a warning each
    /// time it reopens a file (a TIFF's unknown tag: about fifteen times for one thumbnail),
    /// and the log gets it once.
    private static let recent = Mutex<[String: ContinuousClock.Instant]>([:])
    static let repeatWindow: Duration = .seconds(60)

    /// GLib's level flags (G_LOG_LEVEL_*) to swift-log's levels.
    static func level(glib: Int32) -> Logger.Level {
        switch glib {
        case 1 << 2, 1 << 3: .error    // ERROR, CRITICAL
        case 1 << 4: .warning          // WARNING: VIPS-WARNING
        case 1 << 5: .notice           // MESSAGE
        default: .debug                // INFO, DEBUG
        }
    }

    /// Logs one libvips message unless the same text was logged within `repeatWindow`.
    static func log(glib: Int32, message: String) {
        // One line, whatever the file made libvips (or libtiff) say: control characters,
        // C1 included, become spaces, so that no file can forge a line of the log.
        let text = String(String.UnicodeScalarView(message.unicodeScalars.map {
            $0.value < 0x20 || (0x7f...0x9f).contains($0.value) ? " " : $0
        }))
        let now = ContinuousClock.now
        let fresh = recent.withLock { seen -> Bool in
            if let last = seen[text], now - last < repeatWindow { return false }
            if seen.count >= 256 { seen.removeAll() }
            seen[text] = now
            return true
        }
        guard fresh else { return }
        logger.log(level: level(glib: glib), "libvips: \(text)", metadata: ["domain": "VIPS"])
    }

    private static let started: String? = {
        assetd_vips_route_logging { level, message in
            Vips.log(glib: level, message: message.map { String(cString: $0) } ?? "")
        }
        guard assetd_vips_init("assetd") == 0 else { return "libvips could not start: \(takeError())" }
        vips_block_untrusted_set(1)
        vips_operation_block_set("VipsForeignLoad", 1)
        for name in allowedLoaderClasses { vips_operation_block_set(name, 0) }
        // No operation cache: every task opens a different file, so a cache only holds memory.
        vips_cache_set_max(0)
        vips_cache_set_max_mem(0)
        vips_cache_set_max_files(0)
        return nil
    }()

    /// Starts libvips (once); `threads` bounds its worker pool for each image.
    static func start(threads: Int) throws(ThumbnailError) {
        if let failure = started { throw ThumbnailError(failure) }
        vips_concurrency_set(Int32(max(1, threads)))
    }

    /// libvips' error buffer, emptied.
    static func takeError() -> String {
        let text = vips_error_buffer().map { String(cString: $0) } ?? ""
        vips_error_clear()
        let line = text.split(separator: "\n").first.map(String.init) ?? "unknown error"
        return line.isEmpty ? "unknown error" : line
    }

    /// The loader libvips would choose for a file, e.g. "jpegload"; nil when no loader it
    /// is allowed to use recognizes the bytes.
    static func loader(forFile path: String) -> String? {
        guard let name = assetd_vips_loader_nickname(path) else {
            vips_error_clear()
            return nil
        }
        return String(cString: name)
    }

    /// What the header says about the pixels, read without decoding any.
    struct Header {
        var width: Int
        var height: Int
        var bands: Int
        var bytesPerBand: Int
        /// An embedded ICC profile, or CMYK pixels: the thumbnail needs lcms to reach sRGB.
        var needsColourManagement: Bool
        /// Size after EXIF orientation, pages, capture time, camera and (when asked) GPS.
        var facts = MediaMetadata()
    }

    /// Width, height, bands and bytes per band from the header (a sequential open reads
    /// only the header), without decoding pixels.
    static func header(ofFile path: String, keepGPS: Bool = false) throws(ThumbnailError) -> Header {
        guard let image = assetd_vips_open_header(path) else { throw .vips("cannot read the image header") }
        defer { assetd_vips_unref(image) }
        var header = Header(width: Int(vips_image_get_width(image)), height: Int(vips_image_get_height(image)),
                            bands: Int(vips_image_get_bands(image)), bytesPerBand: Int(vips_format_sizeof(vips_image_get_format(image))),
                            needsColourManagement: assetd_vips_has_icc_profile(image) != 0
                                || vips_image_get_interpretation(image) == VIPS_INTERPRETATION_CMYK)
        header.facts = facts(of: image, width: header.width, height: header.height, keepGPS: keepGPS)
        return header
    }

    /// What the header tells beyond the pixels (MediaMetadata), read from libvips' fields.
    private static func facts(of image: UnsafeMutablePointer<VipsImage>, width: Int, height: Int, keepGPS: Bool) -> MediaMetadata {
        func string(_ name: String) -> String? {
            guard vips_image_get_typeof(image, name) != 0 else { return nil }
            var value: UnsafePointer<CChar>?
            guard vips_image_get_string(image, name, &value) == 0, let value else {
                vips_error_clear()
                return nil
            }
            return String(validatingCString: value)
        }
        func integer(_ name: String) -> Int? {
            guard vips_image_get_typeof(image, name) != 0 else { return nil }
            var value: Int32 = 0
            guard vips_image_get_int(image, name, &value) == 0 else {
                vips_error_clear()
                return nil
            }
            return Int(value)
        }
        var facts = MediaMetadata()
        // Orientations 5 to 8 turn the picture a quarter: what is shown is height x width.
        let turned = (5...8).contains(integer("orientation") ?? 1)
        if (1...MediaMetadata.maxDimension).contains(width), (1...MediaMetadata.maxDimension).contains(height) {
            (facts.width, facts.height) = turned ? (height, width) : (width, height)
        }
        // The page count of a document (PDF; a multi-page TIFF or GIF says so too).
        if let pages = integer("n-pages"), (1...MediaMetadata.maxPages).contains(pages) { facts.pages = pages }
        let taken = string("exif-ifd2-DateTimeOriginal") ?? string("exif-ifd2-DateTimeDigitized")
        facts.takenAt = taken.flatMap(MediaMetadata.exifASCII).flatMap(MediaMetadata.exifTimestamp)
        facts.cameraMake = string("exif-ifd0-Make").flatMap(MediaMetadata.exifASCII)
        facts.cameraModel = string("exif-ifd0-Model").flatMap(MediaMetadata.exifASCII)
        if keepGPS,
           let latitude = string("exif-ifd3-GPSLatitude").flatMap({ MediaMetadata.exifCoordinate($0, reference: string("exif-ifd3-GPSLatitudeRef").flatMap(MediaMetadata.exifASCII)) }),
           let longitude = string("exif-ifd3-GPSLongitude").flatMap({ MediaMetadata.exifCoordinate($0, reference: string("exif-ifd3-GPSLongitudeRef").flatMap(MediaMetadata.exifASCII)) }),
           (-90...90).contains(latitude), (-180...180).contains(longitude) {
            (facts.gpsLatitude, facts.gpsLongitude) = (latitude, longitude)
        }
        return facts
    }

    /// The JPEG thumbnail of a file whose loader and size were checked. `colourManaged`:
    /// through lcms from its profile (or CMYK) to sRGB (Header.needsColourManagement).
    static func thumbnailJPEG(ofFile path: String, size: Int, quality: Int, colourManaged: Bool) throws(ThumbnailError) -> [UInt8] {
        var image: UnsafeMutablePointer<VipsImage>?
        guard assetd_vips_thumbnail(path, &image, Int32(size), colourManaged ? 1 : 0) == 0, let thumbnail = image else {
            throw .vips("cannot decode the image")
        }
        var current = thumbnail
        defer { assetd_vips_unref(current) }
        if vips_image_hasalpha(current) != 0 {
            var flat: UnsafeMutablePointer<VipsImage>?
            guard assetd_vips_flatten_white(current, &flat) == 0, let flat else { throw .vips("cannot flatten the alpha channel") }
            assetd_vips_unref(current)
            current = flat
        }
        if current.pointee.Type != VIPS_INTERPRETATION_sRGB || current.pointee.BandFmt != VIPS_FORMAT_UCHAR {
            var srgb: UnsafeMutablePointer<VipsImage>?
            guard assetd_vips_to_srgb8(current, &srgb) == 0, let srgb else { throw .vips("cannot convert to sRGB") }
            assetd_vips_unref(current)
            current = srgb
        }
        var buffer: UnsafeMutableRawPointer?
        var length = 0
        guard assetd_vips_jpegsave(current, &buffer, &length, Int32(quality)) == 0, let buffer else {
            throw .vips("cannot encode the JPEG")
        }
        defer { g_free(buffer) }
        return Array(UnsafeRawBufferPointer(start: buffer, count: length))
    }
}
