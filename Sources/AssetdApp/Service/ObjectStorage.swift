public import struct Foundation.Date
public import S3Client

// Object storage as the service and its workers use it, split by consumer. `S3Client` is
// the one implementation; unit tests pass a fake. Metering lives in the client's send path
// (`S3Client.Configuration.observer`), not in a wrapper.

/// Multipart uploads: the browser upload workflow.
public protocol MultipartUploads: Sendable {
    func createMultipartUpload(key: String, contentType: String, metadata: [String: String]) throws -> String
    func listParts(key: String, uploadID: String) throws -> [S3Client.Part]
    func completeMultipartUpload(key: String, uploadID: String, parts: [(partNumber: Int, etag: String)]) throws -> S3Client.CompletedUpload
    func abortMultipartUpload(key: String, uploadID: String) throws
}

/// Objects: what the direct upload, the version switch, delete, the repairs and the
/// thumbnail worker store, read and remove.
public protocol ObjectStorage: Sendable {
    /// PutObject from an open file; S3 checks `sha256Hex` and `md5`. Returns the ETag.
    func putObject(key: String, file descriptor: Int32, size: Int, contentType: String, metadata: [String: String],
                   sha256Hex: String, md5: [UInt8]) throws -> String
    /// PutObject of bytes in memory (thumbnails). Returns the ETag.
    func putObject(key: String, bytes: [UInt8], contentType: String, metadata: [String: String], cacheControl: String?) throws -> String
    /// HeadObject; nil when there is no such object.
    func headObject(key: String) throws -> S3Client.ObjectInfo?
    /// A byte range of an object, into memory (the content check reads 64 KiB).
    func getObject(key: String, range: ClosedRange<Int>?) throws -> [UInt8]
    /// GetObject streamed into an open file; returns the bytes written. A body longer than
    /// `expectedSize` is an error, written no further.
    func getObject(key: String, toFile descriptor: Int32, expectedSize: Int) throws -> Int
    /// Copies an object within the bucket; the copy gets `contentType` and `metadata`.
    func copy(from source: String, to key: String, size: Int64, contentType: String, metadata: [String: String]) throws
    /// Deletes these keys, however many; a missing key is no error.
    func deleteObjects(keys: [String]) throws
    /// Keys under a prefix, at most `limit`.
    func listKeys(prefix: String, limit: Int) throws -> [String]
}

/// URLs of objects: presigned for the browser, or plain. No S3 call.
public protocol ObjectURLs: Sendable {
    /// `headers` besides `host` are signed too (`content-md5` of a part).
    func presignedURL(method: String, key: String, query: [(String, String)], headers: [(String, String)], expires: Int, date: Date) -> String
    /// The unsigned URL of an object (a completed upload's `location`).
    func objectURL(key: String) -> String
    /// `presignedURL`'s UTF-8 appended to `out`. Returns true only when every byte appended
    /// is known to be printable ASCII other than `"` and `\` (a JSON string of it needs no
    /// escape); false when not known.
    func appendPresignedURL(to out: inout [UInt8], method: String, key: String, query: [(name: String, value: String)],
                            headers: [(String, String)], expires: Int, date: Date) -> Bool
}

extension ObjectURLs {
    /// The URL made as a String and appended: nothing known of its bytes.
    public func appendPresignedURL(to out: inout [UInt8], method: String, key: String, query: [(name: String, value: String)],
                                   headers: [(String, String)], expires: Int, date: Date) -> Bool {
        out.append(contentsOf: presignedURL(method: method, key: key, query: query, headers: headers, expires: expires, date: date).utf8)
        return false
    }
}

/// Readiness: whether the bucket answers.
public protocol BucketProbe: Sendable {
    func bucketExists() throws -> Bool
    /// GetBucketEncryption: `.none` when the bucket has no default encryption.
    func bucketDefaultEncryption() throws -> ServerSideEncryption
}

/// Everything the service needs of S3.
public typealias ObjectStore = MultipartUploads & ObjectStorage & ObjectURLs & BucketProbe

extension S3Client: MultipartUploads, ObjectStorage, ObjectURLs, BucketProbe {}

extension S3Error {
    /// The multipart upload is gone in S3 (aborted, expired or completed): AWS says
    /// NoSuchUpload; Ceph RGW 16 says NoSuchKey, with a body, for an aborted upload. A
    /// 404 without a body (`.notFound`) says neither.
    var uploadIsGone: Bool { code == .noSuchUpload || code == .noSuchKey }
}
