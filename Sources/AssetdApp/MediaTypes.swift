import Foundation

/// The media types assetd stores, and the key extension of each.
public struct MediaTypes: Sendable {
    /// Every type assetd knows an extension for.
    public static let extensions: [String: String] = [
        "image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp",
        "image/heic": "heic", "image/heif": "heif", "image/tiff": "tif", "image/avif": "avif",
        "video/mp4": "mp4", "video/quicktime": "mov", "video/webm": "webm",
        "application/pdf": "pdf",
    ]

    /// The type a file name's extension stands for (`JPEG` is image/jpeg), for the types
    /// assetd knows; nil for any other.
    public static func type(ofExtension fileExtension: String) -> String? {
        let lowered = fileExtension.lowercased()
        return otherExtensions[lowered] ?? extensions.first { $0.value == lowered }?.key
    }

    /// Extensions in use besides the one assetd gives each type.
    static let otherExtensions = ["jpeg": "image/jpeg", "jpe": "image/jpeg", "tiff": "image/tiff", "qt": "video/quicktime", "m4v": "video/mp4"]

    /// ASSETD_ALLOWED_TYPES' default.
    public static let defaultAllowed = [
        "image/jpeg", "image/png", "image/gif", "image/webp", "image/heic", "image/tiff",
        "video/mp4", "video/quicktime", "video/webm", "application/pdf",
    ]

    /// Names that browsers and libmagic use for the same type.
    static let aliases = ["image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png", "image/heic-sequence": "image/heic"]

    public let allowed: Set<String>

    /// nil with the offending entry when one is not a type assetd can store.
    public init(allowed: [String]) throws(MediaTypeError) {
        var set = Set<String>()
        for entry in allowed {
            let type = Self.normalize(entry)
            guard Self.extensions[type] != nil else { throw MediaTypeError(type: entry) }
            set.insert(type)
        }
        self.allowed = set
    }

    /// Lower case, parameters dropped, aliases resolved: `Image/JPG; q=1` is `image/jpeg`.
    public static func normalize(_ type: String) -> String {
        let bare = type.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        return aliases[bare] ?? bare
    }

    /// The normalized type and its extension when the type is allowed; nil otherwise.
    public func resolve(_ type: String) -> (type: String, fileExtension: String)? {
        let normalized = Self.normalize(type)
        guard allowed.contains(normalized), let ext = Self.extensions[normalized] else { return nil }
        return (normalized, ext)
    }
}

public struct MediaTypeError: Error {
    public let type: String
}
