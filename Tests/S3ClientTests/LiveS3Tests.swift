import Foundation
import Logging
import Testing
import SigV4
import Hashing
@testable import S3Client

/// Against the real S3 server that scripts/test starts (moto, or Ceph RGW): set
/// ASSETD_TEST_S3_ENDPOINT. Without it these tests are skipped, and say so.
struct LiveS3Tests {
    static let endpoint = ProcessInfo.processInfo.environment["ASSETD_TEST_S3_ENDPOINT"]

    func client(bucket: String = "assetd-live-\(UInt32.random(in: 0...UInt32.max))") throws -> S3Client {
        let env = ProcessInfo.processInfo.environment
        let configuration = S3Client.Configuration(
            bucket: bucket, region: env["AWS_DEFAULT_REGION"] ?? "us-east-1",
            credentials: Credentials(accessKeyID: env["AWS_ACCESS_KEY_ID"] ?? "test", secretAccessKey: env["AWS_SECRET_ACCESS_KEY"] ?? "test"),
            endpoint: try #require(S3Endpoint(url: Self.endpoint ?? ""))
        )
        let client = S3Client(configuration: configuration, logger: Logger(label: "test"))
        try client.createBucket()
        return client
    }

    func partBytes(_ size: Int, seed: UInt8) -> [UInt8] {
        (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(seed)) }
    }

    @Test(.enabled(if: endpoint != nil, "ASSETD_TEST_S3_ENDPOINT is not set"))
    func multipartRoundTripThroughPresignedURLs() throws {
        let s3 = try client()
        let key = "1/digital_assets/1.bin"
        let uploadID = try s3.createMultipartUpload(key: key, contentType: "application/octet-stream", metadata: ["workspace_id": "1", "asset_id": "1"])
        let sizes = [5 * 1024 * 1024, 1000]
        var etags: [(Int, String)] = []
        for (index, size) in sizes.enumerated() {
            // As assetd presigns a part (AssetService.partURLs).
            let url = s3.presignedURL(method: "PUT", key: key, query: [("partNumber", String(index + 1)), ("uploadId", uploadID)], expires: 300)
            etags.append((index + 1, try curlPut(url: url, bytes: partBytes(size, seed: UInt8(index)))))
        }
        let listed = try s3.listParts(key: key, uploadID: uploadID)
        #expect(listed.map(\.partNumber) == [1, 2])
        #expect(listed.map(\.size) == sizes)

        let done = try s3.completeMultipartUpload(key: key, uploadID: uploadID, parts: etags.map { ($0.0, $0.1) })
        #expect(!done.etag.isEmpty)
        let info = try #require(try s3.headObject(key: key))
        #expect(info.size == sizes.reduce(0, +))
        #expect(info.contentType == "application/octet-stream")
        let range = try s3.getObject(key: key, range: 5 * 1024 * 1024...(5 * 1024 * 1024 + 9))
        #expect(range == Array(partBytes(1000, seed: 1).prefix(10)))

        #expect(done.location.hasSuffix("/1/digital_assets/1.bin"))
        // A second Complete is refused by AWS (NoSuchUpload) but accepted by moto 5: the
        // app keeps its own record of completed uploads rather than rely on either.
        try s3.deleteObjects(keys: [key])
        #expect(try s3.headObject(key: key) == nil)
    }

    /// Over CopyObject's limit, `copy` copies part by part (UploadPartCopy). The limit is
    /// 5 GiB; here it is lowered to 5 MiB so that an 11 MiB object takes three parts.
    @Test(.enabled(if: endpoint != nil, "ASSETD_TEST_S3_ENDPOINT is not set"))
    func copyPartByPartOverTheLimit() throws {
        let s3 = try client()
        let bytes = partBytes(11 * 1024 * 1024 + 17, seed: 3)
        let md5 = Digest(.md5)
        md5.update(bytes)
        let source = "1/digital_assets/7.bin"
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("assetd-copy-\(UUID().uuidString)").path
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        defer { unlink(path) }
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        _ = try s3.putObject(key: source, file: fd, size: bytes.count, contentType: "application/pdf", metadata: ["asset_id": "7"],
                             sha256Hex: Encoding.hex(SHA256.hash(bytes)), md5: md5.finalize())
        try s3.copy(from: source, to: "1/versions/7/v1.bin", size: Int64(bytes.count), contentType: "application/pdf",
                    metadata: ["asset_id": "7"], partSize: 5 * 1024 * 1024, singleCopyLimit: 5 * 1024 * 1024)
        let copied = try #require(try s3.headObject(key: "1/versions/7/v1.bin"))
        #expect(copied.size == bytes.count)
        #expect(copied.etag.hasSuffix("-3\""), "a copy in three parts has a three-part multipart ETag")
        #expect(copied.contentType == "application/pdf")
        #expect(try s3.getObject(key: "1/versions/7/v1.bin", range: nil) == bytes)
        // Under the limit: one CopyObject, the same bytes, and the type it was given (it
        // used to keep the source's).
        try s3.copy(from: source, to: "1/versions/7/v2.bin", size: Int64(bytes.count), contentType: "image/png",
                    metadata: ["asset_id": "7"], partSize: 5 * 1024 * 1024, singleCopyLimit: S3Client.singleCopyLimit)
        #expect(try s3.getObject(key: "1/versions/7/v2.bin", range: nil) == bytes)
        #expect(try s3.headObject(key: "1/versions/7/v2.bin")?.contentType == "image/png")
        #expect(try s3.listKeys(prefix: "1/versions/7/", limit: 100) == ["1/versions/7/v1.bin", "1/versions/7/v2.bin"])
        #expect(try s3.listKeys(prefix: "1/versions/7/", limit: 1) == ["1/versions/7/v1.bin"], "at most the limit")
        try s3.deleteObjects(keys: [source, "1/versions/7/v1.bin", "1/versions/7/v2.bin"])
    }

    @Test(.enabled(if: endpoint != nil, "ASSETD_TEST_S3_ENDPOINT is not set"))
    func abortThenListPartsFails() throws {
        let s3 = try client()
        let key = "2/digital_assets/9.jpg"
        let uploadID = try s3.createMultipartUpload(key: key, contentType: "image/jpeg", metadata: [:])
        try s3.abortMultipartUpload(key: key, uploadID: uploadID)
        #expect { try s3.listParts(key: key, uploadID: uploadID) } throws: { [.noSuchUpload, .noSuchKey].contains(($0 as? S3Error)?.code) }
    }

    @Test(.enabled(if: endpoint != nil, "ASSETD_TEST_S3_ENDPOINT is not set"))
    func putFromFileCopyAndDelete() throws {
        let s3 = try client()
        let bytes = partBytes(100_000, seed: 3)
        let fd = try temporaryFile(bytes)
        defer { close(fd) }
        let etag = try s3.putObject(
            key: "3/digital_assets/1.png", file: fd, size: bytes.count, contentType: "image/png",
            metadata: ["workspace_id": "3"], sha256Hex: sha256Hex(bytes), md5: md5(bytes)
        )
        #expect(etag.contains(hex(md5(bytes))))
        #expect(try s3.getObject(key: "3/digital_assets/1.png") == bytes)
        _ = try s3.copyObject(from: "3/digital_assets/1.png", to: "3/versions/1/v1.png")
        #expect(try s3.headObject(key: "3/versions/1/v1.png")?.size == bytes.count)
        try s3.deleteObject(key: "3/versions/1/v1.png")
        try s3.deleteObject(key: "3/versions/1/v1.png") // twice: still fine
    }

    /// moto 5 does not check Content-MD5; Ceph RGW and AWS do (ASSETD_TEST_S3_STRICT=1).
    @Test(.enabled(if: endpoint != nil && ProcessInfo.processInfo.environment["ASSETD_TEST_S3_STRICT"] == "1",
                   "needs an S3 server that checks Content-MD5 (ASSETD_TEST_S3_STRICT=1)"))
    func wrongContentMD5IsRefused() throws {
        let s3 = try client()
        let bytes = partBytes(1000, seed: 9)
        let fd = try temporaryFile(bytes)
        defer { close(fd) }
        #expect(throws: S3Error.self) {
            try s3.putObject(key: "4/digital_assets/1.png", file: fd, size: bytes.count, contentType: "image/png",
                             metadata: [:], sha256Hex: sha256Hex(bytes), md5: md5(Array(bytes.dropFirst())))
        }
    }

    @Test(.enabled(if: endpoint != nil, "ASSETD_TEST_S3_ENDPOINT is not set"))
    func bucketConfiguration() throws {
        let s3 = try client()
        #expect(try s3.bucketExists())
        try s3.putBucketCORS(rules: [S3Client.CORSRule(allowedOrigins: ["*"]).element])
        try s3.putBucketLifecycle(rules: [S3Client.abortIncompleteUploadsRule(days: 7)])
        #expect(try s3.abortIncompleteUploadsDays() == 7)
        try s3.createBucket() // idempotent
    }
}

/// An open descriptor of a file holding `bytes`; the file itself is already unlinked.
func temporaryFile(_ bytes: [UInt8]) throws -> Int32 {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("assetd-live-\(UUID().uuidString)").path
    FileManager.default.createFile(atPath: path, contents: Data(bytes))
    defer { unlink(path) }
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw S3Error.local("cannot open \(path)") }
    return fd
}

func curlPut(url: String, bytes: [UInt8]) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("assetd-part-\(UUID().uuidString)").path
    FileManager.default.createFile(atPath: path, contents: Data(bytes))
    defer { unlink(path) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
    process.arguments = ["-sS", "-f", "-m", "60", "-D", "-", "-o", "/dev/null", "-H", "Content-Type: application/octet-stream", "-T", path, url]
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw S3Error.local("curl exited \(process.terminationStatus)") }
    let headers = String(decoding: data, as: UTF8.self).split(separator: "\r\n")
    let etag = headers.first { $0.lowercased().hasPrefix("etag:") }.map { $0.dropFirst(5).trimmingCharacters(in: .whitespaces) }
    return etag ?? ""
}

func shell(_ arguments: [String], input: [UInt8]) -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let stdin = Pipe(), stdout = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    try! process.run()
    stdin.fileHandleForWriting.write(Data(input))
    try! stdin.fileHandleForWriting.close()
    let data = stdout.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}

func sha256Hex(_ bytes: [UInt8]) -> String { String(shell(["sha256sum"], input: bytes).prefix(64)) }
func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
func md5(_ bytes: [UInt8]) -> [UInt8] {
    let text = String(shell(["md5sum"], input: bytes).prefix(32))
    var out: [UInt8] = []
    var index = text.startIndex
    while index < text.endIndex {
        let next = text.index(index, offsetBy: 2)
        out.append(UInt8(text[index..<next], radix: 16)!)
        index = next
    }
    return out
}
