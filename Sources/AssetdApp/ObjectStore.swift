public import struct Foundation.Date
public import S3Client

/// The S3 operations the routes use. `S3Client` is the real one; unit tests pass a fake.
public protocol ObjectStore: Sendable {
    func createMultipartUpload(key: String, contentType: String, metadata: [String: String]) throws -> String
    func listParts(key: String, uploadID: String) throws -> [S3Client.Part]
    func completeMultipartUpload(key: String, uploadID: String, parts: [(partNumber: Int, etag: String)]) throws -> S3Client.CompletedUpload
    func abortMultipartUpload(key: String, uploadID: String) throws
    func putObject(key: String, file descriptor: Int32, size: Int, contentType: String, metadata: [String: String],
                   sha256Hex: String, md5: [UInt8], cacheControl: String?) throws -> String
    func headObject(key: String) throws -> S3Client.ObjectInfo?
    func deleteObjects(keys: [String]) throws
    /// A byte range of an object, into memory (the content check reads 64 KiB).
    func getObject(key: String, range: ClosedRange<Int>?) throws -> [UInt8]
    /// Copies an object within the bucket, keeping its type and metadata (part by part over 5 GiB).
    func copy(from source: String, to key: String, size: Int64, contentType: String, metadata: [String: String],
              partSize: Int64, singleCopyLimit: Int64) throws
    /// Every key under a prefix.
    func listKeys(prefix: String, limit: Int) throws -> [String]
    func presignedURL(method: String, key: String, query: [(String, String)], expires: Int, date: Date) -> String
    func bucketExists() throws -> Bool
    /// The unsigned URL of an object (a completed upload's `location`).
    func objectURL(key: String) -> String
    /// GetObject streamed into an open file (thumbnail tasks); returns the bytes written.
    func getObject(key: String, toFile descriptor: Int32, expectedSize: Int) throws -> Int
    /// PutObject of bytes in memory (thumbnails).
    func putObject(key: String, bytes: [UInt8], contentType: String, metadata: [String: String], cacheControl: String?) throws -> String
}

extension S3Client: ObjectStore {}
