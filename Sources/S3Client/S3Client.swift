import Foundation
public import Logging
public import SigV4
import Hashing

/// The S3 operations assetd uses, over libcurl, signed with SigV4.
///
/// Calls block the calling thread (a FastCGI worker or a Dispatch queue). Each borrows
/// a pooled easy handle, so connections are reused. It knows nothing of FastCGI or SQL.
public final class S3Client: Sendable {
    public struct Configuration: Sendable {
        public var bucket: String
        public var region: String
        public var credentials: Credentials
        /// Where assetd itself sends requests.
        public var endpoint: S3Endpoint
        /// What presigned URLs name (ASSETD_S3_PUBLIC_ENDPOINT); the same as `endpoint` by default.
        public var publicEndpoint: S3Endpoint
        public var deadlines = Deadlines()
        /// The encryption every write asks for (ASSETD_SSE); `.none` leaves it to the bucket.
        public var serverSideEncryption: ServerSideEncryption = .none
        /// The bulkhead and breaker every call passes; nil for none (one-shot commands).
        public var gate: S3Gate.Configuration?
        /// Told of every call once it ends (its retries included): the operation's name
        /// (`PutObject`), its error if it failed, and how long it took. For metrics.
        public var observer: (@Sendable (_ operation: String, _ error: S3Error?, _ duration: Duration) -> Void)?

        public init(bucket: String, region: String, credentials: Credentials, endpoint: S3Endpoint? = nil, publicEndpoint: S3Endpoint? = nil) {
            self.bucket = bucket
            self.region = region
            self.credentials = credentials
            let resolved = endpoint ?? .aws(region: region, bucket: bucket)
            self.endpoint = resolved
            self.publicEndpoint = publicEndpoint ?? resolved
        }
    }

    /// How long calls may take. Every call has a total deadline, so that a hung S3 costs a
    /// bounded time; only CompleteMultipartUpload and CopyObject get minutes.
    public struct Deadlines: Sendable {
        /// One attempt of a call without a large body.
        public var call: Duration = .seconds(10)
        /// A call and its retries together.
        public var budget: Duration = .seconds(20)
        /// The slowest rate a transfer is given time for: an attempt to send N bytes may
        /// take `call + N / transferBytesPerSecond`.
        public var transferBytesPerSecond = 1 << 20
        /// A transfer that moves under 1 KiB/s for this long is stopped.
        public var stalledSeconds = 20
        /// CompleteMultipartUpload and CopyObject, never retried.
        public var complete: Duration = .seconds(600)
        /// ... stopped when not a byte came for this long (AWS sends whitespace while it works).
        public var completeSilenceSeconds = 60

        public init() {}
    }

    public struct Part: Sendable, Equatable {
        public var partNumber: Int
        public var etag: String
        public var size: Int
        public init(partNumber: Int, etag: String, size: Int) {
            self.partNumber = partNumber
            self.etag = etag
            self.size = size
        }
    }

    public struct CompletedUpload: Sendable, Equatable {
        public var location: String
        public var etag: String
        public init(location: String, etag: String) {
            self.location = location
            self.etag = etag
        }
    }

    public struct ObjectInfo: Sendable, Equatable {
        public var size: Int
        public var etag: String
        public var contentType: String?
        /// The user metadata (`x-amz-meta-NAME`), by NAME in lower case.
        public var metadata: [String: String]
        public init(size: Int, etag: String, contentType: String?, metadata: [String: String] = [:]) {
            self.size = size
            self.etag = etag
            self.contentType = contentType
            self.metadata = metadata
        }
    }

    public let configuration: Configuration
    let signer: SigV4Signer
    let transport: CurlTransport
    /// Every call passes it: see S3Gate.
    public let gate: S3Gate?
    let logger: Logger
    /// Attempts for a call that failed in a way that may pass (network, 5xx, SlowDown).
    let attempts = 3
    /// The `host` header every presigned URL signs: made once, not an array a presign.
    let publicHostHeader: [SigV4Signer.Field]
    /// "scheme://host" of the public endpoint, the start of every presigned URL: made once
    /// (three `append(contentsOf:)` of Strings' UTF-8 cost ~500 instructions a presign).
    let publicOrigin: [UInt8]
    /// Whether `publicOrigin` is all printable ASCII but `"` and `\` (`appendPresignedURL`).
    let publicOriginIsPlain: Bool

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.publicHostHeader = [("host", configuration.publicEndpoint.host)]
        self.publicOrigin = Array("\(configuration.publicEndpoint.scheme)://\(configuration.publicEndpoint.host)".utf8)
        self.publicOriginIsPlain = Self.isPlain(publicOrigin)
        self.signer = SigV4Signer(credentials: configuration.credentials, region: configuration.region, service: "s3")
        self.transport = CurlTransport()
        self.gate = configuration.gate.map(S3Gate.init(configuration:))
        self.logger = logger
    }

    // MARK: - Multipart uploads

    /// CreateMultipartUpload; returns the upload id. The upload's encryption is set here:
    /// its parts, presigned UploadParts and UploadPartCopy alike, inherit it.
    public func createMultipartUpload(key: String, contentType: String, metadata: [String: String]) throws -> String {
        let response = try send(.createMultipartUpload, "POST", key: key, query: [("uploads", "")],
                                headers: writeHeaders(contentType: contentType, metadata: metadata))
        guard let uploadID = XMLTree.parse(response.body)?.value("UploadId"), !uploadID.isEmpty else {
            throw S3Error.malformed("CreateMultipartUpload answered without an UploadId")
        }
        return uploadID
    }

    /// ListParts, following its pagination to the end.
    public func listParts(key: String, uploadID: String) throws -> [Part] {
        var parts: [Part] = []
        var marker: String?
        for _ in 0..<100 { // 10,000 parts at 1,000 a page: 10 pages; more is a server bug
            var query = [("uploadId", uploadID), ("max-parts", "1000")]
            if let marker { query.append(("part-number-marker", marker)) }
            let response = try send(.listParts, "GET", key: key, query: query)
            guard let tree = XMLTree.parse(response.body), tree.isResult(of: "ListParts") else {
                throw S3Error.malformed("ListParts answered without a ListPartsResult")
            }
            for part in tree.all("Part") {
                guard let number = part.value("PartNumber").flatMap(Int.init), let etag = part.value("ETag") else { continue }
                parts.append(Part(partNumber: number, etag: etag, size: part.value("Size").flatMap(Int.init) ?? 0))
            }
            guard tree.value("IsTruncated") == "true", let next = tree.value("NextPartNumberMarker"), next != marker else { break }
            marker = next
        }
        return parts
    }

    /// CompleteMultipartUpload. S3 may answer 200 with an `<Error>` body: that is a failure.
    /// When the server leaves the ETag empty (Ceph RGW 16), HeadObject supplies it.
    public func completeMultipartUpload(key: String, uploadID: String, parts: [(partNumber: Int, etag: String)]) throws -> CompletedUpload {
        var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for part in parts {
            xml += "<Part><PartNumber>\(part.partNumber)</PartNumber><ETag>\(xmlEscape(Self.quoted(part.etag)))</ETag></Part>"
        }
        xml += "</CompleteMultipartUpload>"
        let response = try send(.completeMultipartUpload, "POST", key: key, query: [("uploadId", uploadID)], headers: [("content-type", "application/xml")],
                                body: .bytes(Array(xml.utf8)), kind: .once)
        guard let tree = XMLTree.parse(response.body) else {
            throw S3Error.malformed("CompleteMultipartUpload answered without XML")
        }
        if tree.name == "Error" { throw Self.error(from: tree, status: response.status, headers: response.headers) }
        guard tree.isResult(of: "CompleteMultipartUpload") else {
            throw S3Error.malformed("CompleteMultipartUpload answered with <\(tree.name)>")
        }
        // Ceph RGW 16.2 may answer with an empty ETag: HeadObject knows it.
        let etag = try Self.completedETag(tree) ?? headObject(key: key)?.etag ?? ""
        // Servers disagree on Location (moto names an AWS host, Ceph its own): the public
        // endpoint's URL of the key is the same answer everywhere.
        return CompletedUpload(location: objectURL(key: key), etag: etag)
    }

    public func abortMultipartUpload(key: String, uploadID: String) throws {
        _ = try send(.abortMultipartUpload, "DELETE", key: key, query: [("uploadId", uploadID)])
    }

    // MARK: - Objects

    /// PutObject from an open file. `sha256Hex` and `md5` (raw digest) let S3 prove it
    /// received the bytes intact.
    public func putObject(
        key: String, file descriptor: Int32, size: Int, contentType: String, metadata: [String: String],
        sha256Hex: String, md5: [UInt8]
    ) throws -> String {
        let headers = [("content-md5", Encoding.base64(md5))] + writeHeaders(contentType: contentType, metadata: metadata)
        let response = try send(.putObject, "PUT", key: key, headers: headers, body: .file(descriptor: descriptor, size: size),
                                payloadHash: sha256Hex, kind: .transfer(bytes: size))
        return response.headers["etag"] ?? ""
    }

    /// PutObject of bytes in memory (thumbnails, small objects).
    public func putObject(key: String, bytes: [UInt8], contentType: String, metadata: [String: String], cacheControl: String? = nil) throws -> String {
        let md5 = Digest(.md5)
        md5.update(bytes)
        var headers = [("content-md5", Encoding.base64(md5.finalize()))]
        if let cacheControl { headers.append(("cache-control", cacheControl)) }
        headers += writeHeaders(contentType: contentType, metadata: metadata)
        let response = try send(.putObject, "PUT", key: key, headers: headers, body: .bytes(bytes), kind: .transfer(bytes: bytes.count))
        return response.headers["etag"] ?? ""
    }

    /// GetObject, whole or a byte range, into memory (at most 64 MiB). An answer to a range
    /// with more bytes than the range is stopped (`S3Error.malformed`), and so is a 200 to a
    /// range that does not start at 0 (a server that ignored it): a 200 whose body fits a
    /// range from 0 is the same bytes (an object shorter than the range).
    public func getObject(key: String, range: ClosedRange<Int>? = nil) throws -> [UInt8] {
        guard let range else {
            return try send(.getObject, "GET", key: key, kind: .transfer(bytes: CurlTransport.maxResponseBody)).body
        }
        let response = try send(.getObject, "GET", key: key, headers: [("range", "bytes=\(range.lowerBound)-\(range.upperBound)")],
                                kind: .transfer(bytes: range.count), sink: .memoryUpTo(limit: range.count))
        guard response.status == 206 || range.lowerBound == 0 else {
            throw S3Error.malformed("GetObject of bytes \(range.lowerBound)-\(range.upperBound) answered \(response.status), not 206")
        }
        return response.body
    }

    /// HeadObject; nil when there is no such object.
    public func headObject(key: String) throws -> ObjectInfo? {
        do {
            let response = try send(.headObject, "HEAD", key: key)
            return ObjectInfo(
                size: response.headers["content-length"].flatMap(Int.init) ?? 0,
                etag: response.headers["etag"] ?? "",
                contentType: response.headers["content-type"],
                metadata: Self.userMetadata(response.headers)
            )
        } catch let error as S3Error where error.httpStatus == 404 {
            return nil
        }
    }

    /// DeleteObject; deleting a missing object succeeds, as in S3.
    public func deleteObject(key: String) throws {
        do {
            _ = try send(.deleteObject, "DELETE", key: key)
        } catch let error as S3Error where error.httpStatus == 404 {
            return
        }
    }

    /// DeleteObjects, 1,000 keys a call (S3's limit); throws on the first key S3 could not
    /// delete. Deleting a missing key succeeds, as in S3.
    public func deleteObjects(keys: [String]) throws {
        var start = 0
        while start < keys.count {
            try deleteObjectsCall(keys: keys[start..<min(start + 1000, keys.count)])
            start += 1000
        }
    }

    private func deleteObjectsCall(keys: ArraySlice<String>) throws {
        var xml = "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>"
        for key in keys { xml += "<Object><Key>\(xmlEscape(key))</Key></Object>" }
        xml += "</Delete>"
        let body = Array(xml.utf8)
        let md5 = Digest(.md5)
        md5.update(body)
        let response = try send(.deleteObjects, "POST", key: "", query: [("delete", "")],
                                headers: [("content-type", "application/xml"), ("content-md5", Encoding.base64(md5.finalize()))],
                                body: .bytes(body))
        if let tree = XMLTree.parse(response.body), let failed = tree.child("Error") {
            throw S3Error.service(S3Error.Code(failed.value("Code") ?? "InternalError"), status: response.status,
                                  message: S3Error.excerpt("could not delete \(failed.value("Key") ?? "an object"): \(failed.value("Message") ?? "")"),
                                  requestID: S3Error.requestID(response.headers["x-amz-request-id"]))
        }
    }

    /// CopyObject within the bucket (for versions). Returns the new ETag. The copy is
    /// encrypted as configured: CopyObject does not keep its source's encryption.
    public func copyObject(from source: String, to key: String, metadata: [String: String]? = nil, contentType: String? = nil) throws -> String {
        var headers = [("x-amz-copy-source", URIEncoding.encodePath("/\(configuration.bucket)/\(source)"))]
        if let metadata {
            headers.append(("x-amz-metadata-directive", "REPLACE"))
            if let contentType { headers.append(("content-type", contentType)) }
            headers += metadata.sorted { $0.key < $1.key }.map { ("x-amz-meta-\($0.key)", $0.value) }
        }
        headers += configuration.serverSideEncryption.headers
        let response = try send(.copyObject, "PUT", key: key, headers: headers, kind: .once)
        guard let tree = XMLTree.parse(response.body) else {
            throw S3Error.malformed("CopyObject answered without XML")
        }
        if tree.name == "Error" { throw Self.error(from: tree, status: response.status, headers: response.headers) }
        return tree.value("ETag") ?? ""
    }

    /// CopyObject's own limit: larger objects are copied part by part.
    public static let singleCopyLimit: Int64 = 5 * 1024 * 1024 * 1024

    /// Copies an object within the bucket; the copy gets `contentType` and `metadata`
    /// whatever its size. Objects over `singleCopyLimit` (CopyObject's 5 GiB) are copied
    /// with a multipart upload of UploadPartCopy parts of `partSize`; a failure midway
    /// aborts that upload. Either way the copy gets the configured encryption: CopyObject
    /// sends it, and UploadPartCopy inherits it from CreateMultipartUpload (S3 takes no
    /// SSE-S3 or SSE-KMS header on a part).
    public func copy(from source: String, to key: String, size: Int64, contentType: String, metadata: [String: String]) throws {
        try copy(from: source, to: key, size: size, contentType: contentType, metadata: metadata,
                 partSize: 512 * 1024 * 1024, singleCopyLimit: Self.singleCopyLimit)
    }

    /// `copy` with its part size and single-copy limit set (tests lower both).
    public func copy(from source: String, to key: String, size: Int64, contentType: String, metadata: [String: String],
                     partSize: Int64, singleCopyLimit: Int64) throws {
        guard size > singleCopyLimit else {
            _ = try copyObject(from: source, to: key, metadata: metadata, contentType: contentType)
            return
        }
        let uploadID = try createMultipartUpload(key: key, contentType: contentType, metadata: metadata)
        do {
            var parts: [(partNumber: Int, etag: String)] = []
            var offset: Int64 = 0
            while offset < size {
                let last = min(offset + partSize, size) - 1
                let response = try send(.uploadPartCopy, "PUT", key: key, query: [("partNumber", String(parts.count + 1)), ("uploadId", uploadID)],
                                        headers: [("x-amz-copy-source", URIEncoding.encodePath("/\(configuration.bucket)/\(source)")),
                                                  ("x-amz-copy-source-range", "bytes=\(offset)-\(last)")],
                                        kind: .once)
                guard let tree = XMLTree.parse(response.body), tree.name != "Error", let etag = tree.value("ETag") else {
                    throw S3Error.malformed("UploadPartCopy answered without an ETag")
                }
                parts.append((parts.count + 1, etag))
                offset = last + 1
            }
            _ = try completeMultipartUpload(key: key, uploadID: uploadID, parts: parts)
        } catch {
            try? abortMultipartUpload(key: key, uploadID: uploadID)
            throw error
        }
    }

    /// ListObjectsV2: every key under `prefix`, following pagination, at most `limit`.
    ///
    /// What comes back is deleted, so the server is not trusted to keep to the prefix or to
    /// end its pages: a key outside `prefix`, a truncated page without a continuation
    /// token or with one seen before, or more pages than `limit` keys need (1,000 a page, and two
    /// more) is `S3Error.malformed`, and nothing is returned.
    public func listKeys(prefix: String, limit: Int = 100_000) throws -> [String] {
        var keys: [String] = []
        var token: String?
        var tokens: Set<String> = []
        for _ in 0..<(limit / 1000 + 2) {
            var query = [("list-type", "2"), ("prefix", prefix), ("max-keys", "1000")]
            if let token { query.append(("continuation-token", token)) }
            let response = try send(.listObjects, "GET", key: "", query: query)
            guard let tree = XMLTree.parse(response.body), tree.isResult(of: "ListBucket") else {
                throw S3Error.malformed("ListObjectsV2 answered without a ListBucketResult")
            }
            let page = tree.all("Contents").compactMap { $0.value("Key") }
            if let stray = page.first(where: { !$0.hasPrefix(prefix) }) {
                logger.error("ListObjectsV2 answered a key outside the prefix asked for: nothing listed is deleted", metadata: [
                    "prefix": "\(prefix)", "key": "\(S3Error.excerpt(stray))",
                ])
                throw S3Error.malformed("ListObjectsV2 of \(prefix) answered a key outside it")
            }
            keys += page
            guard keys.count < limit, tree.value("IsTruncated") == "true" else { return Array(keys.prefix(limit)) }
            // A truncated page may hold no keys (AWS, GCS and MinIO have been seen to answer
            // so): it is progress as long as its token is new; the tokens seen and the page
            // bound above stop a listing that goes round or never ends.
            guard let next = tree.value("NextContinuationToken"), tokens.insert(next).inserted else {
                throw S3Error.malformed("ListObjectsV2 of \(prefix) answered a truncated page without a new continuation token")
            }
            token = next
        }
        throw S3Error.malformed("ListObjectsV2 of \(prefix) was still truncated after \(limit / 1000 + 2) pages for at most \(limit) keys")
    }

    /// The unsigned URL of an object (the `location` of a completed upload).
    public func objectURL(key: String) -> String {
        let endpoint = configuration.publicEndpoint
        return "\(endpoint.scheme)://\(endpoint.host)\(URIEncoding.encodePath(endpoint.path(bucket: configuration.bucket, key: key)))"
    }

    /// The ETag of a CompleteMultipartUpload answer; nil when it is empty or missing.
    static func completedETag(_ tree: XMLTree) -> String? {
        guard let etag = tree.value("ETag"), !etag.isEmpty, etag != "\"\"" else { return nil }
        return etag
    }

    /// The headers of a write that makes an object (PutObject, CreateMultipartUpload):
    /// its type, its metadata and the configured encryption.
    func writeHeaders(contentType: String, metadata: [String: String]) -> [(String, String)] {
        [("content-type", contentType)] + metadata.sorted { $0.key < $1.key }.map { ("x-amz-meta-\($0.key)", $0.value) }
            + configuration.serverSideEncryption.headers
    }

    /// The `x-amz-meta-*` headers of an answer, by the name after the prefix.
    static func userMetadata(_ headers: [String: String]) -> [String: String] {
        var metadata: [String: String] = [:]
        for (name, value) in headers where name.hasPrefix("x-amz-meta-") {
            metadata[String(name.dropFirst("x-amz-meta-".count))] = value
        }
        return metadata
    }

    static func quoted(_ etag: String) -> String {
        etag.hasPrefix("\"") ? etag : "\"\(etag)\""
    }
}
