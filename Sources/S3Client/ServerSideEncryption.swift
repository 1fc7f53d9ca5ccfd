/// How S3 encrypts at rest the objects assetd writes (ASSETD_SSE).
///
/// Every write that makes an object carries its headers: PutObject, CreateMultipartUpload
/// and CopyObject. The parts of a multipart upload (the browser's presigned UploadParts
/// and UploadPartCopy) take the encryption of their CreateMultipartUpload and send none:
/// S3 refuses these headers on UploadPart. A CopyObject does not keep its source's
/// encryption unless asked, so it is asked every time.
/// https://docs.aws.amazon.com/AmazonS3/latest/userguide/serv-side-encryption.html
public enum ServerSideEncryption: Sendable, Equatable, CustomStringConvertible {
    /// No header: the bucket's default encryption, if any, applies.
    case none
    /// SSE-S3: `x-amz-server-side-encryption: AES256`, with keys S3 manages.
    case aes256
    /// SSE-KMS: `aws:kms` with this KMS key (an id, ARN or alias; nil: the account's
    /// `aws/s3` key), and, when `bucketKey` is set, S3 Bucket Keys on or off (nil: the
    /// bucket's setting).
    case kms(keyID: String?, bucketKey: Bool?)
    /// DSSE-KMS: `aws:kms:dsse` (two layers, with this KMS key). Found as a bucket's default
    /// encryption; ASSETD_SSE does not offer it. Its ETags are no MD5s either.
    case kmsDSSE(keyID: String?)

    /// The value of `x-amz-server-side-encryption`; nil for `.none`.
    public var algorithm: String? {
        switch self {
        case .none: nil
        case .aes256: "AES256"
        case .kms: "aws:kms"
        case .kmsDSSE: "aws:kms:dsse"
        }
    }

    /// The request headers of a write (PutObject, CreateMultipartUpload, CopyObject). They
    /// are signed like every header assetd sends: AWS and Ceph RGW refuse an `x-amz-*`
    /// header that the signature does not cover.
    public var headers: [(String, String)] {
        switch self {
        case .none:
            return []
        case .aes256:
            return [("x-amz-server-side-encryption", "AES256")]
        case .kms(let keyID, let bucketKey):
            var headers = [("x-amz-server-side-encryption", "aws:kms")]
            if let keyID { headers.append(("x-amz-server-side-encryption-aws-kms-key-id", keyID)) }
            if let bucketKey { headers.append(("x-amz-server-side-encryption-bucket-key-enabled", bucketKey ? "true" : "false")) }
            return headers
        case .kmsDSSE(let keyID):
            var headers = [("x-amz-server-side-encryption", "aws:kms:dsse")]
            if let keyID { headers.append(("x-amz-server-side-encryption-aws-kms-key-id", keyID)) }
            return headers
        }
    }

    /// Whether an object's ETag is the MD5 of its bytes (a multipart object's: the MD5 of
    /// its parts' MD5s, then `-N`). True without encryption and with SSE-S3; false with
    /// SSE-KMS and DSSE-KMS, whose ETags are not MD5 digests
    /// (https://docs.aws.amazon.com/AmazonS3/latest/API/API_Object.html, "ETag"). Every
    /// check that compares an ETag with an MD5 asks the service's `objectETagsAreMD5`: this
    /// value of ASSETD_SSE, or false when ASSETD_SSE is unset over a bucket whose default
    /// encryption is one of these.
    public var etagsAreMD5: Bool {
        switch self {
        case .none, .aes256: true
        case .kms, .kmsDSSE: false
        }
    }

    /// `AES256`, `aws:kms (key K, bucket key on)`, or `none`: for check-config and logs.
    public var description: String {
        switch self {
        case .none: return "none"
        case .aes256: return "AES256"
        case .kms(let keyID, let bucketKey):
            var details = [keyID.map { "key \($0)" } ?? "the account's aws/s3 key"]
            if let bucketKey { details.append("bucket key \(bucketKey ? "on" : "off")") }
            return "aws:kms (\(details.joined(separator: ", ")))"
        case .kmsDSSE(let keyID):
            return "aws:kms:dsse (\(keyID.map { "key \($0)" } ?? "the account's aws/s3 key"))"
        }
    }
}
