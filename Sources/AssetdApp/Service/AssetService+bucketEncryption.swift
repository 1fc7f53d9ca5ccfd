import Logging
import S3Client
import Synchronization

/// Whether the bucket was found to encrypt with SSE-KMS by default while ASSETD_SSE is
/// unset (`AssetService.readBucketEncryption`): then its ETags are no MD5s, whatever
/// ASSETD_SSE says. Once set it stays so until the process restarts: an upload begun under
/// KMS ETags would be refused at complete if ETags were taken as MD5s again, while taking
/// none as an MD5 is always safe (the checks that remain are those of ASSETD_SSE=aws:kms).
final class BucketDefaultKMS: Sendable {
    private let found = Atomic<Bool>(false)
    /// The last outcome of reading the bucket's default encryption, so that a periodic
    /// read logs only a change.
    private let lastRead = Mutex<String?>(nil)

    var isSet: Bool { found.load(ordering: .relaxed) }

    /// Whether it was not set until this call.
    func set() -> Bool { !found.exchange(true, ordering: .relaxed) }

    /// Records `outcome`; whether it differs from the last one recorded.
    func changed(to outcome: String) -> Bool {
        lastRead.withLock { last in
            defer { last = outcome }
            return last != outcome
        }
    }
}

extension AssetService {
    /// Whether complete-upload compares part and object ETags with MD5s: the configuration's
    /// `objectETagsAreMD5` (false under ASSETD_SSE=aws:kms), and false once the bucket's
    /// default is found to be KMS.
    var objectETagsAreMD5: Bool { configuration.objectETagsAreMD5 && !bucketDefaultKMS.isSet }

    /// Whether the encryption objects get keeps their ETags MD5s: ASSETD_SSE's
    /// `etagsAreMD5`, and false once the bucket's default is found to be KMS. A direct
    /// upload's `md5` metadata and the recovery of a completed upload ask this.
    var encryptionKeepsMD5ETags: Bool { configuration.serverSideEncryption.etagsAreMD5 && !bucketDefaultKMS.isSet }

    /// What was found of the bucket's default encryption, for the "starting" line.
    enum BucketEncryption: CustomStringConvertible {
        /// ASSETD_SSE is set: every write names its encryption, the default is not read.
        case notRead
        case found(ServerSideEncryption)
        case unreadable

        var description: String {
            switch self {
            case .notRead: "not read (ASSETD_SSE is set)"
            case .found(let encryption): "\(encryption)"
            case .unreadable: "unknown (could not be read)"
            }
        }
    }

    /// Reads the bucket's default encryption (GetBucketEncryption), at start-up and before
    /// each reconciler pass, when ASSETD_SSE is unset (objects then get the bucket's
    /// default). A default of SSE-KMS (or DSSE-KMS) makes the objects' ETags no MD5s: from
    /// then on the service treats them exactly as under ASSETD_SSE=aws:kms (no ETag compared
    /// with an MD5, a direct upload's MD5 kept in its metadata) and says so in an error line
    /// naming what to set; while the bucket's default then reads none or AES256 again, an
    /// error line each pass says a restart returns to MD5 ETags. Best effort: a failure to read is a notice (at start-up, and
    /// then only when the outcome changes), never a refusal to start.
    /// `bucket`: where to read it (start-up's client has short deadlines); the service's store by default.
    @discardableResult
    func readBucketEncryption(startUp: Bool, from bucket: (any BucketProbe)? = nil) -> BucketEncryption {
        guard configuration.serverSideEncryption == .none else { return .notRead }
        let found: ServerSideEncryption
        do {
            found = try (bucket ?? objects).bucketDefaultEncryption()
        } catch {
            if bucketDefaultKMS.changed(to: "unreadable") || startUp {
                logger.notice("the bucket's default encryption could not be read (GetBucketEncryption, which needs s3:GetEncryptionConfiguration): if it is SSE-KMS, set ASSETD_SSE=aws:kms and ASSETD_SSE_KMS_KEY_ID, or completed uploads may be refused",
                              metadata: ["error": "\(error)"])
            }
            return .unreadable
        }
        let changed = bucketDefaultKMS.changed(to: found.description)
        if !found.etagsAreMD5 {
            if bucketDefaultKMS.set() || changed {
                logger.error("the bucket encrypts with \(found) by default but ASSETD_SSE is unset: its ETags are no MD5s, so assetd compares none with an MD5 (as under ASSETD_SSE=aws:kms); set ASSETD_SSE=aws:kms and ASSETD_SSE_KMS_KEY_ID to the bucket's key to say so, and check-config to compare them")
            }
        } else if bucketDefaultKMS.isSet {
            // At every pass, not only at the change (review L5): the switch never goes back,
            // so one who can set the bucket's encryption for a moment (or a spoofed
            // plain-http endpoint) leaves every host without its ETag checks until a
            // restart; said loudly, and in assetd_etags_md5.
            logger.error("the bucket's default encryption is now \(found == .none ? "none" : "\(found)") but was SSE-KMS earlier, so ETags stay taken as no MD5s (no ETag compared with an MD5): restart assetd to compare them with MD5s again, or set ASSETD_SSE (then the bucket's default no longer matters)")
        }
        return .found(found)
    }
}
