public import AssetStore
public import Foundation
public import Logging
public import Media
import Hashing
import Locking
import S3Client

/// The workflows of assetd: multipart uploads, direct uploads, versions, delete, and the
/// repairs the reconciler asks for. Routes parse and authorize, then call one method here;
/// every method is synchronous (FastCGI worker threads may block) and throws `AssetError`
/// for what the caller did or asked at the wrong time, `S3Error` when S3 failed, and
/// `RecordStoreError` when the database did. It knows nothing of HTTP.
///
/// Files: `AssetService+multipart`, `+direct`, `+versions`, `+delete`, `+repairs`,
/// `+contentCheck`.
public final class AssetService: Sendable {
    public let configuration: Configuration
    public let records: any RecordStore
    let objects: any ObjectStore
    let detector: ContentDetector
    let logger: Logger
    let now: @Sendable () -> Date
    /// Thumbnail tasks; nil when ASSETD_THUMBNAILS is off.
    let thumbnails: ThumbnailWorker?
    /// Direct uploads between their record and their object, by asset id: the repairs
    /// leave these alone (one assetd process owns its database).
    let directUploadsInFlight = ReadWriteLocked<Set<Int64>>([])
    /// Assets whose objects a version switch or a delete is moving right now, in this
    /// process: one at a time per asset, so that two runs of the same switch (a retried
    /// complete, a repair) or a switch and a delete never interleave their copies.
    let assetsInMotion = ReadWriteLocked<Set<Int64>>([])
    /// Whether the bucket's default encryption was found to be KMS (`readBucketEncryption`).
    let bucketDefaultKMS = BucketDefaultKMS()

    public init(configuration: Configuration, records: any RecordStore, objects: any ObjectStore, detector: ContentDetector,
                logger: Logger, thumbnails: ThumbnailWorker? = nil, now: @escaping @Sendable () -> Date = { Date() }) {
        self.configuration = configuration
        self.records = records
        self.objects = objects
        self.detector = detector
        self.logger = logger
        self.thumbnails = thumbnails
        self.now = now
    }

    // MARK: - Records as the caller may see them

    /// The asset, if it is in the workspace and not deleted (or being deleted).
    public func asset(_ id: Int64, in workspaceID: Int64) throws -> AssetRecord {
        guard let asset = try records.asset(id: id, workspaceID: workspaceID), !asset.status.isGone else {
            throw AssetError.notFound("Asset \(id) was not found in workspace \(workspaceID).")
        }
        return asset
    }

    /// The archived versions of an asset, oldest first.
    public func versions(of asset: AssetRecord) throws -> [AssetVersionRecord] {
        try records.versions(assetID: asset.id)
    }

    /// The upload, if it belongs to the asset in the workspace.
    func upload(_ uploadID: String, asset assetID: Int64, in workspaceID: Int64) throws -> UploadRecord {
        guard let upload = try records.upload(uploadID: uploadID, assetID: assetID, workspaceID: workspaceID) else {
            throw AssetError.notFound("Upload \(uploadID) was not found for asset \(assetID) in workspace \(workspaceID).")
        }
        return upload
    }

    /// A presigned URL under the public endpoint.
    public func presign(_ method: String, key: String, query: [(String, String)] = [], headers: [(String, String)] = [],
                        expires: Int) -> String {
        objects.presignedURL(method: method, key: key, query: query, headers: headers, expires: expires, date: now())
    }

    /// The presigned GET of a ready thumbnail, or nil.
    public func thumbnailURL(_ asset: AssetRecord) -> String? {
        guard asset.thumbnailStatus == .ready else { return nil }
        return presign("GET", key: AssetKeys.thumbnail(workspaceID: asset.workspaceID, assetID: asset.id),
                       expires: configuration.presignExpires)
    }

    // MARK: - Shared steps

    /// Every asset passes here once, right after its record says ready, whichever path
    /// stored it. Work that follows a stored file, its thumbnail, starts here. Returns the
    /// record with the thumbnail state that follows (`pending` once its task is queued).
    @discardableResult
    func didBecomeReady(_ asset: AssetRecord, logger: Logger) -> AssetRecord {
        logger.info("asset ready", metadata: [
            "asset": "\(asset.id)", "workspace": "\(asset.workspaceID)", "key": "\(asset.key)",
            "type": "\(asset.fileType)", "size": "\(asset.size ?? 0)",
        ])
        var ready = asset
        if let thumbnails {
            ready.thumbnailStatus = thumbnails.enqueue(asset)
            return ready
        }
        do {
            try records.recordNoThumbnail(assetID: asset.id, reason: "thumbnails are off (ASSETD_THUMBNAILS)", now: now())
        } catch {
            logger.error("could not record the thumbnail state", metadata: ["asset": "\(asset.id)", "error": "\(error)"])
        }
        return ready
    }

    /// Runs `body` holding `assetID` (see `assetsInMotion`); a conflict, with a retry time,
    /// when another request or a repair holds it.
    ///
    /// With several hosts on one database (`FleetCoordination`, PostgreSQL), the asset is
    /// held in the database too, renewed while `body` runs, so that one switch or delete
    /// per asset runs across the fleet however long it takes; the loser gets the same
    /// conflict. A host that dies holding it lets go after `motionLeaseSeconds`.
    func exclusively<T>(_ assetID: Int64, _ body: () throws -> T) throws -> T {
        guard assetsInMotion.write({ $0.insert(assetID).inserted }) else {
            throw AssetError.conflict("Asset \(assetID) is being changed by another request; try again shortly.", retryAfter: 1)
        }
        defer { assetsInMotion.write { _ = $0.remove(assetID) } }
        guard let fleet = records as? any FleetCoordination else { return try body() }
        guard try fleet.holdAsset(assetID, seconds: motionLeaseSeconds) else {
            throw AssetError.conflict("Asset \(assetID) is being changed by another request; try again shortly.", retryAfter: 1)
        }
        defer {
            do {
                try fleet.releaseAsset(assetID)
            } catch {
                // Its renewals stopped with the release: it expires after motionLeaseSeconds.
                logger.warning("could not let go of an asset", metadata: ["asset": "\(assetID)", "error": "\(error)"])
            }
        }
        return try body()
    }

    /// How long a host's hold on an asset outlives its last renewal before another may take
    /// it (the host died): longer than the S3 calls of one switch, retries included.
    var motionLeaseSeconds: Int { max(120, 8 * configuration.s3Timeout) }

    func isInMotion(_ assetID: Int64) -> Bool { assetsInMotion.read { $0.contains(assetID) } }

    func isDirectUploadInFlight(_ assetID: Int64) -> Bool { directUploadsInFlight.read { $0.contains(assetID) } }

    /// Runs `body` with `assetID` marked as a direct upload in flight.
    func directUpload<T>(_ assetID: Int64, _ body: () throws -> T) rethrows -> T {
        directUploadsInFlight.write { _ = $0.insert(assetID) }
        defer { directUploadsInFlight.write { _ = $0.remove(assetID) } }
        return try body()
    }

    /// The metadata every object of an asset carries.
    func metadata(_ asset: AssetRecord) -> [String: String] {
        ["workspace_id": String(asset.workspaceID), "asset_id": String(asset.id)]
    }

    /// The metadata of a direct upload's PutObject: the asset's, and under SSE-KMS (whose
    /// ETags are not MD5s; ASSETD_SSE or the bucket's default, `encryptionKeepsMD5ETags`) the MD5 of the bytes as `md5` (hex), for `isRecordedObject`.
    /// S3 stores the object only when its bytes have the Content-MD5 sent in the same
    /// PutObject, so this metadata is the MD5 that S3 checked the stored bytes against.
    func directUploadMetadata(_ asset: AssetRecord, md5: [UInt8]) -> [String: String] {
        var metadata = metadata(asset)
        if !encryptionKeepsMD5ETags { metadata[Self.md5MetadataName] = Encoding.hex(md5) }
        return metadata
    }

    /// `x-amz-meta-md5`: no underscore, which moto would drop and Ceph would turn into a dash.
    static let md5MetadataName = "md5"

    /// Whether the object HeadObject found is the one a direct upload recorded: its size
    /// and MD5 are those expected (`etag`, the hex MD5 recorded before the PutObject). The
    /// MD5 is the object's ETag (quoted or not, in any case) without encryption or with
    /// SSE-S3; under SSE-KMS the ETag is not an MD5 and the `md5` metadata the same
    /// PutObject wrote (and S3 checked, see `directUploadMetadata`) answers instead. False
    /// when there is no object or no record.
    static func isRecordedObject(_ info: S3Client.ObjectInfo?, size: Int64?, etag: String?) -> Bool {
        guard let info, let size, let etag else { return false }
        let expected = unquoted(etag).lowercased()
        guard Int64(info.size) == size else { return false }
        return unquoted(info.etag).lowercased() == expected || info.metadata[md5MetadataName]?.lowercased() == expected
    }

    static func unquoted(_ etag: String) -> String {
        etag.count >= 2 && etag.hasPrefix("\"") && etag.hasSuffix("\"") ? String(etag.dropFirst().dropLast()) : etag
    }
}
