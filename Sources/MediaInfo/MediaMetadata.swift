public import JSON

/// What the decoder learned about a file in the same pass as its thumbnail (issue 19), as
/// the decoder's wire record, assetd's records (AssetStore, "v8: media metadata") and the
/// asset JSON's `media` object all carry it: one type, its checks and its JSON here, in a
/// module of its own that both the decoder (Thumbnails) and the store depend on.
///
/// The fields:
/// pixel size after EXIF orientation, a video's duration and frame size, a PDF's page
/// count, the EXIF capture time and camera, and GPS only when asked for
/// (ASSETD_KEEP_GPS). Nil: unknown.
///
/// On the wire (DecoderProtocol's `M` record) it is `key=value` lines. The decoder child
/// is untrusted, so `init?(decoding:keepGPS:)` is strict: known keys only, each once, every
/// value in its range and form, the whole record at most `maxBytes`; anything else is a
/// malformed answer and the task's attempt is lost.
public struct MediaMetadata: Sendable, Equatable {
    /// Pixel size after EXIF orientation (a video's frame size; a PDF's first page at 72 dpi).
    public var width: Int?
    public var height: Int?
    public var durationSeconds: Double?
    public var pages: Int?
    /// EXIF DateTimeOriginal as `YYYY-MM-DDTHH:MM:SS` (EXIF's local time, no zone).
    public var takenAt: String?
    public var cameraMake: String?
    public var cameraModel: String?
    /// Kept only with ASSETD_KEEP_GPS=on.
    public var gpsLatitude: Double?
    public var gpsLongitude: Double?

    public init(width: Int? = nil, height: Int? = nil, durationSeconds: Double? = nil, pages: Int? = nil, takenAt: String? = nil,
                cameraMake: String? = nil, cameraModel: String? = nil, gpsLatitude: Double? = nil, gpsLongitude: Double? = nil) {
        self.width = width
        self.height = height
        self.durationSeconds = durationSeconds
        self.pages = pages
        self.takenAt = takenAt
        self.cameraMake = cameraMake
        self.cameraModel = cameraModel
        self.gpsLatitude = gpsLatitude
        self.gpsLongitude = gpsLongitude
    }

    package static let maxBytes = 4096
    /// The longest camera make or model kept, in bytes of UTF-8.
    package static let maxTextBytes = 128
    package static let maxDimension = 1 << 20
    package static let maxPages = 1_000_000
    /// About 116 days: no real video is longer, and a Double past it is a made-up one.
    package static let maxDurationSeconds = 10_000_000.0

    package var encoded: [UInt8] {
        var lines = ""
        if let width { lines += "width=\(width)\n" }
        if let height { lines += "height=\(height)\n" }
        if let durationSeconds { lines += "duration_s=\(durationSeconds)\n" }
        if let pages { lines += "pages=\(pages)\n" }
        if let takenAt { lines += "taken_at=\(takenAt)\n" }
        if let cameraMake { lines += "camera_make=\(cameraMake)\n" }
        if let cameraModel { lines += "camera_model=\(cameraModel)\n" }
        if let gpsLatitude, let gpsLongitude { lines += "gps_latitude=\(gpsLatitude)\ngps_longitude=\(gpsLongitude)\n" }
        return Array(lines.utf8)
    }

    /// The parent's reading of a child's record. Nil when anything is out of place. GPS
    /// is dropped unless `keepGPS` (a child must not have sent it; it is never stored).
    package init?(decoding bytes: [UInt8], keepGPS: Bool) {
        guard bytes.count <= Self.maxBytes, let text = String(validating: bytes, as: UTF8.self) else { return nil }
        var values: [Substring: Substring] = [:]
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            guard let eq = line.firstIndex(of: "="), values[line[..<eq]] == nil else { return nil }
            values[line[..<eq]] = line[line.index(after: eq)...]
        }
        guard text.isEmpty || text.hasSuffix("\n") else { return nil }
        let known: Set<Substring> = ["width", "height", "duration_s", "pages", "taken_at", "camera_make", "camera_model",
                                     "gps_latitude", "gps_longitude"]
        guard values.keys.allSatisfy(known.contains) else { return nil }
        func integer(_ key: Substring, _ range: ClosedRange<Int>) -> Int?? {
            guard let raw = values[key] else { return .some(nil) }
            guard raw.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(raw), range.contains(value) else { return nil }
            return .some(value)
        }
        func real(_ key: Substring, _ range: ClosedRange<Double>) -> Double?? {
            guard let raw = values[key] else { return .some(nil) }
            guard raw.count <= 32, raw.allSatisfy({ $0.isASCII && ($0.isNumber || "-.e+".contains($0)) }),
                  let value = Double(raw), value.isFinite, range.contains(value) else { return nil }
            return .some(value)
        }
        func label(_ key: Substring) -> String?? {
            guard let raw = values[key] else { return .some(nil) }
            guard let clean = Self.cleanText(String(raw)), clean == raw else { return nil }
            return .some(clean)
        }
        guard let width = integer("width", 1...Self.maxDimension), let height = integer("height", 1...Self.maxDimension),
              (width == nil) == (height == nil),
              let pages = integer("pages", 1...Self.maxPages),
              let duration = real("duration_s", 0...Self.maxDurationSeconds),
              let latitude = real("gps_latitude", -90...90), let longitude = real("gps_longitude", -180...180),
              (latitude == nil) == (longitude == nil),
              let make = label("camera_make"), let model = label("camera_model")
        else { return nil }
        var takenAt: String?
        if let raw = values["taken_at"] {
            guard Self.isTimestamp(raw) else { return nil }
            takenAt = String(raw)
        }
        self.init(width: width, height: height, durationSeconds: duration, pages: pages, takenAt: takenAt, cameraMake: make,
                  cameraModel: model, gpsLatitude: keepGPS ? latitude : nil, gpsLongitude: keepGPS ? longitude : nil)
    }

    /// `YYYY-MM-DDTHH:MM:SS` with every field in its range (year 1800 to 9999).
    package static func isTimestamp(_ text: Substring) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 19, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"),
              bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":") else { return false }
        func number(_ range: Range<Int>) -> Int? {
            bytes[range].allSatisfy { (0x30...0x39).contains($0) } ? bytes[range].reduce(0) { $0 * 10 + Int($1 - 0x30) } : nil
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
              let minute = number(14..<16), let second = number(17..<19) else { return false }
        return (1800...9999).contains(year) && (1...12).contains(month) && (1...31).contains(day) && hour < 24 && minute < 60
            && second < 61
    }

    /// A camera make or model as kept: no control character (C0, DEL, C1), no line or
    /// paragraph separator and no bidirectional override, embedding, isolate or mark (the
    /// characters a title refuses: they would reorder what a page shows around the
    /// value), spaces trimmed, at most `maxTextBytes` of UTF-8 cut at a character; nil when
    /// nothing is left.
    package static func cleanText(_ raw: String) -> String? {
        let scalars = raw.unicodeScalars.filter { !isRefused($0) }
        var text = String(String.UnicodeScalarView(scalars)).trimmingSpaces
        while text.utf8.count > maxTextBytes { text.removeLast() }
        text = text.trimmingSpaces
        return text.isEmpty ? nil : text
    }

    package static func isRefused(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        return value < 0x20 || (0x7f...0x9f).contains(value) || value == 0x2028 || value == 0x2029
            || (0x202A...0x202E).contains(value) || (0x2066...0x2069).contains(value) || value == 0x200E || value == 0x200F
    }
}

extension MediaMetadata {
    /// The asset JSON's `media` object (CONTRACT.md), also sent in an asset.updated event:
    /// every field null when unknown; `gps` is {latitude, longitude} when this value has
    /// them. Whoever shows it drops them first unless ASSETD_KEEP_GPS=on (`withoutGPS`).
    public var json: JSONValue {
        func int(_ value: Int?) -> JSONValue { value.map { .int($0) } ?? .null }
        func real(_ value: Double?) -> JSONValue { value.map { .number(String($0)) } ?? .null }
        var gps = JSONValue.null
        if let gpsLatitude, let gpsLongitude {
            gps = ["latitude": real(gpsLatitude), "longitude": real(gpsLongitude)]
        }
        return [
            "width": int(width), "height": int(height), "durationSeconds": real(durationSeconds),
            "pages": int(pages), "takenAt": .optional(takenAt), "cameraMake": .optional(cameraMake),
            "cameraModel": .optional(cameraModel), "gps": gps,
        ]
    }

    /// The same without coordinates: what is shown and recorded while ASSETD_KEEP_GPS is off.
    public var withoutGPS: MediaMetadata {
        var media = self
        media.gpsLatitude = nil
        media.gpsLongitude = nil
        return media
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        String(self.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
