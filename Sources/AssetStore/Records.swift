public import struct Foundation.Date
public import MediaInfo

/// Where an asset is in its life.
public enum AssetStatus: String, Sendable, Codable {
    /// Its multipart upload has started; its object is not complete yet.
    case pending
    /// Its object is stored and complete.
    case ready
    /// Its upload was aborted before it completed.
    case aborted
    /// Its content or size check failed; its object was deleted.
    case rejected
    /// Its multipart upload never completed within ASSETD_PENDING_UPLOAD_TTL.
    case expired
    /// A delete has begun: the record says so before the first S3 call, so that a delete
    /// that failed midway is finished (by a repeated DELETE or the reconciler).
    case deleting
    /// Deleted: its objects are gone; the record stays so that a repeated delete is a success.
    case deleted

    /// Deleted or being deleted: the asset answers 404 everywhere but a repeated DELETE.
    public var isGone: Bool { self == .deleting || self == .deleted }
}

/// Where a thumbnail is: none wanted (or possible), queued, made, or failed.
public enum ThumbnailStatus: String, Sendable, Codable {
    case none, pending, ready, failed
}

public enum UploadStatus: String, Sendable, Codable {
    /// Parts may still be sent.
    case pending
    case completed
    /// Completed in S3, but its content or size check failed: its object was deleted.
    case rejected
    /// Aborted by the client, or by a delete of its asset.
    case aborted
    /// Aborted by the reconciler after ASSETD_PENDING_UPLOAD_TTL.
    case expired
}

public struct AssetRecord: Sendable, Equatable {
    public var id: Int64
    public var workspaceID: Int64
    public var key: String
    public var fileName: String?
    public var fileType: String
    public var size: Int64?
    public var etag: String?
    public var sha256: String?
    public var status: AssetStatus
    public var thumbnailStatus: ThumbnailStatus
    public var createdAt: Date
    public var updatedAt: Date
    /// The number of the current version: 1 for the first upload.
    public var currentVersion: Int = 1
    /// When the current version became current.
    public var versionCreatedAt: Date? = nil
    /// A label set with PATCH /api/assets/{assetId}; searched with the file name.
    public var title: String? = nil
    /// Labels set with PATCH /api/assets/{assetId}, in the order given, without repeats.
    public var tags: [String] = []
    /// What the decoder learned about the current version (migration "v8: media
    /// metadata"); nil until its thumbnail task recorded it for this ETag.
    public var media: MediaMetadata? = nil

    /// The extension of the current key (`jpg`).
    public var fileExtension: String { AssetKeys.fileExtension(of: key) }
}

/// A version that is no longer current, kept at `{ws}/versions/{id}/v{N}.{ext}`.
public struct AssetVersionRecord: Sendable, Equatable {
    public var assetID: Int64
    public var version: Int
    public var key: String
    public var fileType: String
    /// The asset's file name while this version was current.
    public var fileName: String?
    public var size: Int64?
    public var etag: String?
    public var createdAt: Date
}

/// A new version on its way to becoming current, recorded before the first S3 call that
/// stores or moves its bytes, so that the reconciler can finish it or undo it after a crash.
public struct VersionSwitch: Sendable, Equatable {
    public enum State: String, Sendable {
        /// A direct upload is storing the bytes at `stagingKey`: they may not be there yet.
        case uploading
        /// The bytes are complete at `stagingKey` and checked: what is left is to archive the
        /// current object, promote these bytes and record it.
        case stored
    }

    public var assetID: Int64
    public var workspaceID: Int64
    /// The number the new version will have.
    public var version: Int
    /// Where the new bytes are until they become current: the version's own archive key.
    public var stagingKey: String
    /// Where they go: `{ws}/digital_assets/{id}.{ext}` with the new type's extension.
    public var newKey: String
    public var fileType: String
    public var fileName: String?
    public var size: Int64
    public var etag: String
    public var state: State
    public var createdAt: Date

    public init(assetID: Int64, workspaceID: Int64, version: Int, stagingKey: String, newKey: String, fileType: String,
                fileName: String?, size: Int64, etag: String, state: State, createdAt: Date) {
        self.assetID = assetID
        self.workspaceID = workspaceID
        self.version = version
        self.stagingKey = stagingKey
        self.newKey = newKey
        self.fileType = fileType
        self.fileName = fileName
        self.size = size
        self.etag = etag
        self.state = state
        self.createdAt = createdAt
    }
}

public struct UploadRecord: Sendable, Equatable {
    public var uploadID: String
    public var assetID: Int64
    public var workspaceID: Int64
    public var key: String
    public var fileSize: Int64?
    public var partSize: Int64?
    public var status: UploadStatus
    /// A digest of the parts the upload was completed with, so that a retried
    /// complete-upload can be told from a different one.
    public var partsDigest: String?
    public var location: String?
    public var etag: String?
    public var createdAt: Date
    /// The version this upload makes: nil for an asset's first upload.
    public var version: Int? = nil
    /// The type declared at start-upload for a new version (the asset's own otherwise).
    public var fileType: String? = nil
    /// The file name given with a new version.
    public var fileName: String? = nil
}

/// What a new asset is, before it has an id.
public struct NewAsset: Sendable {
    public var workspaceID: Int64
    public var fileType: String
    /// The extension of its key, without the dot (`jpg`).
    public var fileExtension: String
    public var fileName: String?
    public var size: Int64?
    /// The ETag its object will have, when known before it is stored (a direct upload's
    /// MD5): the reconciler compares it with the object after a crash.
    public var etag: String?

    public init(workspaceID: Int64, fileType: String, fileExtension: String, fileName: String?, size: Int64?, etag: String? = nil) {
        self.workspaceID = workspaceID
        self.fileType = fileType
        self.fileExtension = fileExtension
        self.fileName = fileName
        self.size = size
        self.etag = etag
    }
}

/// The S3 key layout of docs/API.md ("Rules every route keeps").
public enum AssetKeys {
    public static func original(workspaceID: Int64, assetID: Int64, fileExtension: String) -> String {
        "\(workspaceID)/digital_assets/\(assetID).\(fileExtension)"
    }

    public static func thumbnail(workspaceID: Int64, assetID: Int64) -> String {
        "\(workspaceID)/thumbnails/\(assetID).jpg"
    }

    public static func version(workspaceID: Int64, assetID: Int64, version: Int, fileExtension: String) -> String {
        "\(workspaceID)/versions/\(assetID)/v\(version).\(fileExtension)"
    }

    /// Every version key of an asset starts with this.
    public static func versionsPrefix(workspaceID: Int64, assetID: Int64) -> String {
        "\(workspaceID)/versions/\(assetID)/"
    }

    /// The extension of a key assetd made (`1/digital_assets/7.jpg` -> `jpg`).
    public static func fileExtension(of key: String) -> String {
        guard let dot = key.lastIndex(of: "."), !key[dot...].contains("/") else { return "" }
        return String(key[key.index(after: dot)...])
    }
}

/// What `beginDelete` found.
public enum DeleteStart: Sendable, Equatable {
    /// The asset was deleted already: a repeated DELETE, answered as a success.
    case alreadyDeleted
    /// The asset is now `deleting` (or was, after a delete that failed midway): these
    /// uploads (not completed; they may still exist in S3) are to be aborted, and these
    /// keys (current, thumbnail, every version, staged new versions) deleted.
    case deleting(AssetRecord, uploads: [UploadRecord], keys: [String])
}

/// Why a new version cannot start now.
public enum VersionConflict: Error, Sendable, Equatable {
    /// The asset is not ready (pending, deleted, being deleted, ...).
    case notReady(AssetStatus)
    /// Another upload of it is still pending, or a new version is still being switched in.
    case busy
}

/// A thumbnail task as the queue sees it: the asset, and which attempt this is.
public struct ThumbnailTask: Sendable, Equatable {
    public var asset: AssetRecord
    /// Attempts begun, this one included.
    public var attempts: Int
}

/// A ready asset whose thumbnail failed, and why (`assetd thumbnails --retry-failed`).
public struct FailedThumbnail: Sendable, Equatable {
    public var assetID: Int64
    public var workspaceID: Int64
    public var reason: String?

    public init(assetID: Int64, workspaceID: Int64, reason: String?) {
        self.assetID = assetID
        self.workspaceID = workspaceID
        self.reason = reason
    }
}

/// What a thumbnail task recorded, besides the status (for tests and operators).
public struct ThumbnailState: Sendable, Equatable {
    public var status: ThumbnailStatus
    public var reason: String?
    public var attempts: Int
}

