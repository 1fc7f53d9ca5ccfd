import Foundation
import S3Client
import Synchronization
@testable import AssetdApp

/// An in-memory object store that records every call, and fails when told to.
final class FakeObjectStore: ObjectStore {
    struct State {
        var calls: [String] = []
        var created: [(key: String, contentType: String, metadata: [String: String])] = []
        var uploads: [String: String] = [:] // uploadID -> key
        var uploadsCreated = 0
        var objects: [String: Int] = [:]    // key -> size
        var etags: [String: String] = [:]   // key -> ETag, when not "head"
        var contents: [String: [UInt8]] = [:] // key -> bytes, for the objects a test reads back
        /// The size of the next completed multipart object (else 5 bytes a part).
        var completedSize: Int?
        /// The bytes of the next completed multipart object (else the magic of its extension).
        var completedContent: [UInt8]?
        /// Make completed objects' ETags as S3 does (the MD5 of the parts' MD5s, `-N`)
        /// when every submitted part ETag is an MD5; `completedETag` overrides the next one.
        var multipartMD5ETags = false
        var completedETag: String?
        var failNext: [String: S3Error] = [:]
        /// Run once, inside the named operation after its effect: another request racing it.
        var during: [String: @Sendable () -> Void] = [:]
        /// Run once, inside the named operation before its effect: a request that wins the race.
        var before: [String: @Sendable () -> Void] = [:]
        var deleted: [[String]] = []
        var copies: [(source: String, key: String, contentType: String, metadata: [String: String])] = []
        /// The user metadata of the objects that PutObject and copies wrote.
        var metadata: [String: [String: String]] = [:]
        /// SSE-KMS: S3 answers and keeps ETags that are not MD5s (random hex here, `-N`
        /// for a multipart object, a new one for a copy), as AWS does under aws:kms.
        var kmsETags = false
        /// What GetBucketEncryption answers.
        var bucketEncryption: ServerSideEncryption = .none
    }

    /// A KMS ETag: 32 random hex digits, quoted, and `-parts` for a multipart object.
    static func kmsETag(parts: Int? = nil) -> String {
        "\"" + (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined() + (parts.map { "-\($0)" } ?? "") + "\""
    }

    let state = Mutex(State())

    func fail(_ operation: String, with error: S3Error) {
        state.withLock { $0.failNext[operation] = error }
    }

    /// Runs `body` once, in the middle of the next `operation` (after its effect in S3).
    func during(_ operation: String, _ body: @escaping @Sendable () -> Void) {
        state.withLock { $0.during[operation] = body }
    }

    /// Runs `body` once, at the start of the next `operation` (before its effect in S3).
    func before(_ operation: String, _ body: @escaping @Sendable () -> Void) {
        state.withLock { $0.before[operation] = body }
    }

    private func raceAhead(_ operation: String) {
        if let body = state.withLock({ $0.before.removeValue(forKey: operation) }) { body() }
    }

    private func race(_ operation: String) {
        if let body = state.withLock({ $0.during.removeValue(forKey: operation) }) { body() }
    }

    private func record(_ operation: String) throws {
        let failure: S3Error? = state.withLock {
            $0.calls.append(operation)
            return $0.failNext.removeValue(forKey: operation)
        }
        if let failure { throw failure }
    }

    func createMultipartUpload(key: String, contentType: String, metadata: [String: String]) throws -> String {
        try record("create")
        return state.withLock {
            $0.uploadsCreated += 1
            let id = "upload-\($0.uploadsCreated)"
            $0.uploads[id] = key
            $0.created.append((key, contentType, metadata))
            return id
        }
    }

    func listParts(key: String, uploadID: String) throws -> [S3Client.Part] {
        try record("listParts")
        return [S3Client.Part(partNumber: 1, etag: "\"e1\"", size: 5)]
    }

    func completeMultipartUpload(key: String, uploadID: String, parts: [(partNumber: Int, etag: String)]) throws -> S3Client.CompletedUpload {
        try record("complete")
        // Content a test gave makes the ETag differ, as S3's does.
        let (tag, s3ETag) = state.withLock { state -> (String, String?) in
            defer { state.completedETag = nil }
            // Under SSE-KMS an ETag is no MD5: a random one, as S3 answers.
            let s3ETag = state.kmsETags ? Self.kmsETag(parts: parts.count)
                : state.completedETag ?? (state.multipartMD5ETags ? AssetService.multipartETag(parts).map { "\"\($0)\"" } : nil)
            let tag = Self.completeLocked(&state, key: key, uploadID: uploadID, parts: parts)
            if state.kmsETags { state.etags[key] = s3ETag }
            return (tag, s3ETag)
        }
        race("complete")
        return S3Client.CompletedUpload(location: "http://s3.test/bucket/\(key)", etag: s3ETag ?? "\"etag-\(parts.count)\(tag)\"")
    }

    private static func completeLocked(_ state: inout State, key: String, uploadID: String, parts: [(partNumber: Int, etag: String)]) -> String {
        state.uploads[uploadID] = nil
        state.objects[key] = state.completedSize ?? parts.count * 5
        state.contents[key] = state.completedContent ?? Self.magic(forKey: key)
        return state.completedContent.map { "-\($0.count)-\($0.last ?? 0)" } ?? ""
    }

    func abortMultipartUpload(key: String, uploadID: String) throws {
        try record("abort")
        state.withLock { $0.uploads[uploadID] = nil }
    }

    func putObject(key: String, file descriptor: Int32, size: Int, contentType: String, metadata: [String: String],
                   sha256Hex: String, md5: [UInt8]) throws -> String {
        // A failure without an answer (timeout, reset) comes after the object landed, as
        // when S3 stored it but its answer was lost; any other failure stores nothing.
        raceAhead("put")
        do {
            try record("put")
        } catch let error as S3Error where error.isAmbiguous {
            stored(key, size: size, metadata: metadata)
            throw error
        }
        let etag = stored(key, size: size, metadata: metadata)
        race("put")
        return etag ?? "\"put\""
    }

    /// A PutObject's effect; its KMS ETag when `kmsETags` is on.
    @discardableResult
    private func stored(_ key: String, size: Int, metadata: [String: String]) -> String? {
        state.withLock {
            $0.objects[key] = size
            $0.metadata[key] = metadata
            guard $0.kmsETags else { return nil }
            $0.etags[key] = Self.kmsETag()
            return $0.etags[key]
        }
    }

    func headObject(key: String) throws -> S3Client.ObjectInfo? {
        try record("head")
        return state.withLock { state in
            state.objects[key].map {
                S3Client.ObjectInfo(size: $0, etag: state.etags[key] ?? "\"head\"", contentType: nil, metadata: state.metadata[key] ?? [:])
            }
        }
    }

    func deleteObjects(keys: [String]) throws {
        try record("deleteObjects")
        state.withLock {
            $0.deleted.append(keys)
            for key in keys { $0.objects[key] = nil }
        }
    }

    func presignedURL(method: String, key: String, query: [(String, String)], headers: [(String, String)], expires: Int, date: Date) -> String {
        "https://s3.test/\(key)?method=\(method)&expires=\(expires)" + query.map { "&\($0.0)=\($0.1)" }.joined()
            + headers.map { "&signed-\($0.0)=\($0.1)" }.joined()
    }

    /// The first bytes of a file of the key's extension: enough for libmagic.
    static func magic(forKey key: String) -> [UInt8] {
        switch key.split(separator: ".").last {
        case "png": RouteTests.png
        case "jpg": [0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10] + Array("JFIF".utf8) + [0, 1, 1, 0, 0, 1, 0, 1, 0, 0]
        case "pdf": Array("%PDF-1.4\n%\u{e2}\u{e3}\n1 0 obj\n<<>>\nendobj\n".utf8)
        default: []
        }
    }

    func getObject(key: String, range: ClosedRange<Int>?) throws -> [UInt8] {
        try record("get")
        let bytes = state.withLock { $0.contents[key] } ?? []
        guard let range else { return bytes }
        return Array(bytes[min(range.lowerBound, bytes.count)..<min(range.upperBound + 1, bytes.count)])
    }

    func copy(from source: String, to key: String, size: Int64, contentType: String, metadata: [String: String]) throws {
        try record("copy")
        state.withLock {
            $0.copies.append((source, key, contentType, metadata))
            $0.objects[key] = $0.objects[source]
            $0.etags[key] = $0.kmsETags ? Self.kmsETag() : $0.etags[source]
            $0.metadata[key] = metadata
            $0.contents[key] = $0.contents[source]
        }
        race("copy")
    }

    func listKeys(prefix: String, limit: Int) throws -> [String] {
        try record("list")
        return state.withLock { $0.objects.keys.filter { $0.hasPrefix(prefix) }.sorted() }
    }

    func objectURL(key: String) -> String {
        "http://s3.test/bucket/\(key)"
    }

    func bucketExists() throws -> Bool {
        try record("headBucket")
        return true
    }

    func bucketDefaultEncryption() throws -> ServerSideEncryption {
        try record("bucketEncryption")
        return state.withLock { $0.bucketEncryption }
    }
}
