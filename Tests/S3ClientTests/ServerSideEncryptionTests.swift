import Foundation
import Logging
import SigV4
import Testing
@testable import S3Client

/// ASSETD_SSE in the S3 client: the headers of each kind, that the signature covers them,
/// and the bucket's default encryption as GetBucketEncryption answers it.
struct ServerSideEncryptionTests {
    func client(_ encryption: ServerSideEncryption) -> S3Client {
        var configuration = S3Client.Configuration(
            bucket: "assets", region: "us-east-1", credentials: Credentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "secret"),
            endpoint: S3Endpoint(url: "http://127.0.0.1:9000"))
        configuration.serverSideEncryption = encryption
        return S3Client(configuration: configuration, logger: Logger(label: "test"))
    }

    @Test func headersOfEachKind() {
        #expect(ServerSideEncryption.none.headers.isEmpty)
        #expect(ServerSideEncryption.aes256.headers.map { "\($0.0): \($0.1)" } == ["x-amz-server-side-encryption: AES256"])
        #expect(ServerSideEncryption.kms(keyID: nil, bucketKey: nil).headers.map { "\($0.0): \($0.1)" } == ["x-amz-server-side-encryption: aws:kms"])
        #expect(ServerSideEncryption.kms(keyID: "alias/assets", bucketKey: true).headers.map { "\($0.0): \($0.1)" } == [
            "x-amz-server-side-encryption: aws:kms",
            "x-amz-server-side-encryption-aws-kms-key-id: alias/assets",
            "x-amz-server-side-encryption-bucket-key-enabled: true",
        ])
        #expect(ServerSideEncryption.kms(keyID: nil, bucketKey: false).headers.last?.1 == "false")
    }

    /// The writes that make an object carry the headers: PutObject and CreateMultipartUpload
    /// share `writeHeaders`.
    @Test func writesCarryTheHeaders() {
        let headers = client(.aes256).writeHeaders(contentType: "image/png", metadata: ["workspace_id": "1"])
        #expect(headers.map(\.0) == ["content-type", "x-amz-meta-workspace_id", "x-amz-server-side-encryption"])
        #expect(client(.none).writeHeaders(contentType: "image/png", metadata: [:]).map(\.0) == ["content-type"])
    }

    static func signedHeaderNames(_ headers: [(String, String)]) -> [String] {
        let authorization = headers.first { $0.0 == "authorization" }?.1 ?? ""
        guard let range = authorization.range(of: "SignedHeaders=") else { return [] }
        return authorization[range.upperBound...].prefix { $0 != "," }.split(separator: ";").map(String.init)
    }

    /// AWS and Ceph RGW refuse a request with an `x-amz-*` header that the signature does
    /// not cover: the SSE headers are in SignedHeaders, and their values change the signature.
    @Test func theSignatureCoversTheSSEHeaders() {
        let date = Date(timeIntervalSince1970: 1_440_938_160)
        let s3 = client(.kms(keyID: "alias/assets", bucketKey: true))
        let headers = s3.writeHeaders(contentType: "image/png", metadata: [:])
        let signed = s3.signedHeaders("PUT", key: "1/digital_assets/1.png", query: [], headers: headers, payloadHash: SigV4Signer.unsignedPayload, date: date)
        #expect(Self.signedHeaderNames(signed) == [
            "content-type", "host", "x-amz-content-sha256", "x-amz-date", "x-amz-server-side-encryption",
            "x-amz-server-side-encryption-aws-kms-key-id", "x-amz-server-side-encryption-bucket-key-enabled",
        ])
        let otherKey = client(.kms(keyID: "alias/other", bucketKey: true))
        let resigned = otherKey.signedHeaders("PUT", key: "1/digital_assets/1.png", query: [],
                                              headers: otherKey.writeHeaders(contentType: "image/png", metadata: [:]),
                                              payloadHash: SigV4Signer.unsignedPayload, date: date)
        let authorization = { (headers: [(String, String)]) in headers.first { $0.0 == "authorization" }?.1 }
        #expect(authorization(signed) != nil)
        #expect(authorization(signed) != authorization(resigned), "the key id's value is signed")
        #expect(!Self.signedHeaderNames(client(.none).signedHeaders("PUT", key: "k", query: [], headers: client(.none).writeHeaders(
            contentType: "image/png", metadata: [:]), payloadHash: SigV4Signer.unsignedPayload, date: date)).contains { $0.contains("encryption") })
    }

    @Test func bucketDefaultEncryptionIsParsed() throws {
        func parse(_ xml: String) throws -> ServerSideEncryption {
            try S3Client.defaultEncryption(Array(xml.utf8))
        }
        let ns = "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""
        #expect(try parse("<ServerSideEncryptionConfiguration \(ns)><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault><BucketKeyEnabled>false</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>") == .aes256)
        #expect(try parse("<ServerSideEncryptionConfiguration \(ns)><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm><KMSMasterKeyID>arn:aws:kms:us-east-1:1:key/k</KMSMasterKeyID></ApplyServerSideEncryptionByDefault><BucketKeyEnabled>true</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>")
            == .kms(keyID: "arn:aws:kms:us-east-1:1:key/k", bucketKey: true))
        #expect(try parse("<ServerSideEncryptionConfiguration \(ns)><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>")
            == .kms(keyID: nil, bucketKey: nil))
        let dsse = try parse("<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms:dsse</SSEAlgorithm><KMSMasterKeyID>k</KMSMasterKeyID></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>")
        #expect(dsse == .kmsDSSE(keyID: "k") && !dsse.etagsAreMD5)
        #expect(throws: S3Error.self) {
            try parse("<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:rot13</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>")
        }
        #expect(throws: S3Error.self) { try parse("<Other/>") }
        #expect(S3Error.Code("ServerSideEncryptionConfigurationNotFoundError") == .serverSideEncryptionConfigurationNotFound)
        #expect(S3Error.Code.serverSideEncryptionConfigurationNotFound.description == "ServerSideEncryptionConfigurationNotFoundError")
    }

    /// setup-bucket's CORS rule lets a browser read which encryption an object got.
    @Test func corsExposesTheEncryptionHeader() {
        let rule = S3Client.CORSRule(allowedOrigins: ["*"]).element
        #expect(rule.children.contains { $0.name == "ExposeHeader" && $0.text == "x-amz-server-side-encryption" })
    }

    @Test func userMetadataComesBackByName() {
        let headers = ["x-amz-meta-md5": "abc", "x-amz-meta-workspace-id": "1", "etag": "\"e\"", "x-amz-server-side-encryption": "aws:kms"]
        #expect(S3Client.userMetadata(headers) == ["md5": "abc", "workspace-id": "1"])
    }
}
