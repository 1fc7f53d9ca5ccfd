import AssetStore
import Foundation
import Logging

/// The checks every stored object passes before it counts: its size, and its content
/// against the type declared (libmagic on its first 64 KiB).
extension AssetService {
    /// The first 64 KiB of an object decide its type: read back from S3 after a multipart
    /// upload, kept as they arrived on the direct path.
    static let contentCheckBytes = 64 * 1024

    /// libmagic's type for the first bytes of a file.
    func detectType(of head: [UInt8]) throws -> String {
        do {
            return try head.withUnsafeBytes { try detector.mimeType(of: $0) }
        } catch {
            logger.error("content detection failed", metadata: ["error": "\(error)"])
            throw AssetError.internalFailure("The file's type could not be detected; the details are in the server log.")
        }
    }

    /// The size and content check of a completed multipart object: its size against the
    /// declared fileSize and ASSETD_MAX_UPLOAD_BYTES, then libmagic on its first 64 KiB (one
    /// ranged GET) against the declared type. On failure the object is deleted, the upload
    /// recorded as rejected, and the refusal thrown: too large (or short of fileSize) or refused content.
    func checkCompleted(_ upload: UploadRecord, declaredType: String, size: Int64, logger: Logger) throws {
        var refusal: AssetError?
        let limit = min(configuration.maxUploadBytes, Configuration.s3MaxObjectBytes)
        if let declared = upload.fileSize, size != declared {
            // 413 either way (CONTRACT.md: "its size against the declared fileSize: 415 or 413").
            refusal = .tooLarge(size > declared
                ? "The upload is \(size) bytes, more than the fileSize of \(declared) declared at start-upload."
                : "The upload is \(size) bytes, short of the fileSize of \(declared) declared at start-upload.")
        } else if size > limit {
            refusal = .tooLarge("The upload is \(size) bytes, over the limit of \(limit) bytes.")
        } else {
            let detected = try detectType(of: objects.getObject(key: upload.key, range: 0...(Self.contentCheckBytes - 1)))
            if configuration.mediaTypes.resolve(detected)?.type != MediaTypes.normalize(declaredType) {
                refusal = .refusedContent("The uploaded content is \(detected), not the \(declaredType) declared at start-upload.")
            }
        }
        guard let refusal else { return }
        try objects.deleteObjects(keys: [upload.key])
        try records.rejectUpload(uploadID: upload.uploadID, now: now())
        logger.notice("completed upload refused; its object was deleted", metadata: [
            "upload": "\(upload.uploadID)", "key": "\(upload.key)", "reason": "\(refusal)",
        ])
        throw refusal
    }
}
