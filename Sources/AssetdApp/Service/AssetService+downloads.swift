public import AssetStore
import Foundation

/// Presigned downloads of an asset's current or earlier versions.
extension AssetService {
    public static let maxExpires: Int64 = 604_800

    /// How a browser should treat a download.
    public enum Disposition: String, Sendable {
        case attachment, inline
    }

    /// A presigned GET of version `version` (the current one when nil) of a ready asset,
    /// valid for `expires` seconds. S3 answers with the type libmagic detected, whatever
    /// the client said; with a `disposition`, the response names the file, with the
    /// extension of that type.
    public func downloadURL(of assetID: Int64, in workspaceID: Int64, version: Int?, disposition: Disposition?, expires: Int) throws -> String {
        let asset = try asset(assetID, in: workspaceID)
        guard asset.status == .ready else {
            throw AssetError.conflict("Asset \(assetID) has no stored file yet (status \(asset.status.rawValue)).")
        }
        var key = asset.key
        var recordedName = asset.fileName
        var fileType = asset.fileType
        if let version, version != asset.currentVersion {
            guard let archived = try records.versions(assetID: asset.id).first(where: { $0.version == version }) else {
                throw AssetError.notFound("Asset \(assetID) has no version \(version).")
            }
            key = archived.key
            recordedName = archived.fileName ?? asset.fileName
            fileType = archived.fileType
        }
        var query = [("response-content-type", fileType)]
        if let disposition {
            var named = asset
            named.fileName = recordedName
            let name = Self.downloadName(named, version: version, fileType: fileType, fileExtension: AssetKeys.fileExtension(of: key))
            query.append(("response-content-disposition", Self.contentDisposition(disposition.rawValue, fileName: name)))
        }
        return presign("GET", key: key, query: query, expires: expires)
    }

    /// A `Content-Disposition` value that names `fileName` (RFC 6266), with an ASCII
    /// fallback and the exact name as RFC 5987's `filename*=UTF-8''...`.
    static func contentDisposition(_ type: String, fileName: String) -> String {
        var fallback = ""
        for scalar in fileName.unicodeScalars {
            switch scalar.value {
            case 0x20...0x7e where scalar != "\"" && scalar != "\\" && scalar != "%": fallback.unicodeScalars.append(scalar)
            default: fallback += "_"
            }
        }
        var encoded = ""
        for byte in fileName.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "+"), UInt8(ascii: "-"),
                 UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                encoded += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return "\(type); filename=\"\(fallback)\"; filename*=UTF-8''\(encoded)"
    }

    /// The name a download of version `version` carries: the recorded name, with ` (vN)`
    /// before the extension for an earlier version. The extension is the client's when it
    /// names the stored type (`.jpeg` for a JPEG), else the key's: a JPEG/HTML polyglot
    /// uploaded as `x.html` downloads as `x.jpg`, never as a page.
    static func downloadName(_ asset: AssetRecord, version: Int?, fileType: String, fileExtension: String) -> String {
        let recorded = asset.fileName ?? "\(asset.id).\(fileExtension)"
        var base = recorded, ext = fileExtension
        if let dot = recorded.lastIndex(of: "."), dot != recorded.startIndex {
            base = String(recorded[..<dot])
            let given = String(recorded[recorded.index(after: dot)...])
            if MediaTypes.type(ofExtension: given) == MediaTypes.normalize(fileType) { ext = given }
        }
        guard let version, version != asset.currentVersion else { return "\(base).\(ext)" }
        return "\(base) (v\(version)).\(ext)"
    }
}
