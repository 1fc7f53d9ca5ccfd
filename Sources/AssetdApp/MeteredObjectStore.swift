public import struct Foundation.Date
public import S3Client

/// An object store that counts and times each S3 call of the one it wraps, for /metrics.
/// Presigning is no S3 call and passes through uncounted.
public struct MeteredObjectStore: ObjectStore {
    let base: any ObjectStore
    let metrics: Metrics

    public init(_ base: any ObjectStore, metrics: Metrics) {
        self.base = base
        self.metrics = metrics
    }

    private func measure<T>(_ operation: String, _ body: () throws -> T) throws -> T {
        let start = ContinuousClock.now
        do {
            let value = try body()
            metrics.s3Call(operation: operation, error: nil, duration: ContinuousClock.now - start)
            return value
        } catch let error as S3Error {
            metrics.s3Call(operation: operation, error: error.code, duration: ContinuousClock.now - start)
            throw error
        } catch {
            metrics.s3Call(operation: operation, error: "Other", duration: ContinuousClock.now - start)
            throw error
        }
    }

    public func createMultipartUpload(key: String, contentType: String, metadata: [String: String]) throws -> String {
        try measure("CreateMultipartUpload") { try base.createMultipartUpload(key: key, contentType: contentType, metadata: metadata) }
    }

    public func listParts(key: String, uploadID: String) throws -> [S3Client.Part] {
        try measure("ListParts") { try base.listParts(key: key, uploadID: uploadID) }
    }

    public func completeMultipartUpload(key: String, uploadID: String, parts: [(partNumber: Int, etag: String)]) throws -> S3Client.CompletedUpload {
        try measure("CompleteMultipartUpload") { try base.completeMultipartUpload(key: key, uploadID: uploadID, parts: parts) }
    }

    public func abortMultipartUpload(key: String, uploadID: String) throws {
        try measure("AbortMultipartUpload") { try base.abortMultipartUpload(key: key, uploadID: uploadID) }
    }

    public func putObject(key: String, file descriptor: Int32, size: Int, contentType: String, metadata: [String: String],
                          sha256Hex: String, md5: [UInt8], cacheControl: String?) throws -> String {
        try measure("PutObject") {
            try base.putObject(key: key, file: descriptor, size: size, contentType: contentType, metadata: metadata,
                               sha256Hex: sha256Hex, md5: md5, cacheControl: cacheControl)
        }
    }

    public func headObject(key: String) throws -> S3Client.ObjectInfo? {
        try measure("HeadObject") { try base.headObject(key: key) }
    }

    public func deleteObjects(keys: [String]) throws {
        try measure("DeleteObjects") { try base.deleteObjects(keys: keys) }
    }

    public func getObject(key: String, range: ClosedRange<Int>?) throws -> [UInt8] {
        try measure("GetObject") { try base.getObject(key: key, range: range) }
    }

    public func copy(from source: String, to key: String, size: Int64, contentType: String, metadata: [String: String],
                     partSize: Int64, singleCopyLimit: Int64) throws {
        try measure(size > singleCopyLimit ? "UploadPartCopy" : "CopyObject") {
            try base.copy(from: source, to: key, size: size, contentType: contentType, metadata: metadata,
                          partSize: partSize, singleCopyLimit: singleCopyLimit)
        }
    }

    public func getObject(key: String, toFile descriptor: Int32, expectedSize: Int) throws -> Int {
        try measure("GetObject") { try base.getObject(key: key, toFile: descriptor, expectedSize: expectedSize) }
    }

    public func putObject(key: String, bytes: [UInt8], contentType: String, metadata: [String: String], cacheControl: String?) throws -> String {
        try measure("PutObject") {
            try base.putObject(key: key, bytes: bytes, contentType: contentType, metadata: metadata, cacheControl: cacheControl)
        }
    }

    public func listKeys(prefix: String, limit: Int) throws -> [String] {
        try measure("ListObjectsV2") { try base.listKeys(prefix: prefix, limit: limit) }
    }

    public func presignedURL(method: String, key: String, query: [(String, String)], expires: Int, date: Date) -> String {
        base.presignedURL(method: method, key: key, query: query, expires: expires, date: date)
    }

    public func bucketExists() throws -> Bool {
        try measure("HeadBucket") { try base.bucketExists() }
    }

    public func objectURL(key: String) -> String { base.objectURL(key: key) }
}
