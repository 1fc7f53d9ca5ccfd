public import MediaInfo

/// The decoder child's side of MediaMetadata: its fields from libvips' EXIF strings and
/// ffprobe's output (the parent checks the record it sends: MediaMetadata(decoding:)).
extension MediaMetadata {
    /// The value of libvips' rendering of an ASCII EXIF entry, `V (V, ASCII, N components,
    /// M bytes)`: V, checked against its repeat.
    static func exifASCII(_ rendered: String) -> String? {
        guard rendered.hasSuffix(")") else { return nil }
        let parts = rendered.dropLast().components(separatedBy: ", ")
        guard parts.count >= 4, parts[parts.count - 3] == "ASCII" else { return nil }
        let doubled = parts[..<(parts.count - 3)].joined(separator: ", ")
        // "V (V": 2 x V plus " (".
        let count = doubled.count
        guard count >= 2, (count - 2) % 2 == 0 else { return nil }
        let value = String(doubled.prefix((count - 2) / 2))
        guard doubled == value + " (" + value else { return nil }
        return cleanText(value)
    }

    /// `YYYY:MM:DD HH:MM:SS` (EXIF) as `YYYY-MM-DDTHH:MM:SS`; nil for anything else (the
    /// all-zero "unknown" date included).
    static func exifTimestamp(_ value: String) -> String? {
        var bytes = Array(value.utf8)
        guard bytes.count == 19, bytes[4] == UInt8(ascii: ":"), bytes[7] == UInt8(ascii: ":"), bytes[10] == UInt8(ascii: " ") else {
            return nil
        }
        bytes[4] = UInt8(ascii: "-")
        bytes[7] = UInt8(ascii: "-")
        bytes[10] = UInt8(ascii: "T")
        let text = String(decoding: bytes, as: UTF8.self)
        return isTimestamp(Substring(text)) ? text : nil
    }

    /// Degrees from libvips' rendering of a GPS coordinate, `d/1 m/1 s/100 (...)`, and its
    /// reference (N, S, E or W).
    static func exifCoordinate(_ rendered: String, reference: String?) -> Double? {
        guard let open = rendered.range(of: " (") else { return nil }
        let rationals = rendered[..<open.lowerBound].split(separator: " ")
        guard rationals.count == 3 else { return nil }
        var parts: [Double] = []
        for rational in rationals {
            let fraction = rational.split(separator: "/")
            guard fraction.count == 2, let top = Double(fraction[0]), let bottom = Double(fraction[1]), bottom > 0 else { return nil }
            parts.append(top / bottom)
        }
        let degrees = parts[0] + parts[1] / 60 + parts[2] / 3600
        guard degrees.isFinite else { return nil }
        switch reference {
        case "N", "E": return degrees
        case "S", "W": return -degrees
        default: return nil
        }
    }

    /// ffprobe's `default=noprint_wrappers=1` output: width, height (of the first video
    /// stream) and the container's duration.
    static func probed(_ output: String) -> MediaMetadata {
        var facts = MediaMetadata()
        for line in output.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            let value = line[line.index(after: eq)...]
            switch line[..<eq] {
            case "width": facts.width = Int(value).flatMap { (1...maxDimension).contains($0) ? $0 : nil }
            case "height": facts.height = Int(value).flatMap { (1...maxDimension).contains($0) ? $0 : nil }
            case "duration":
                facts.durationSeconds = Double(value).flatMap { $0.isFinite && (0...maxDurationSeconds).contains($0) ? $0 : nil }
            default: continue
            }
        }
        if facts.width == nil || facts.height == nil { (facts.width, facts.height) = (nil, nil) }
        return facts
    }
}
