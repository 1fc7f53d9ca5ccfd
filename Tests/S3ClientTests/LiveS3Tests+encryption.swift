import Foundation
import Hashing
import Testing
@testable import S3Client

extension LiveS3Tests {
    /// The encryption HeadObject reports for a key: algorithm and KMS key id.
    func encryption(of key: String, in s3: S3Client) throws -> String {
        let headers = try s3.send(.headObject, "HEAD", key: key).headers
        return [headers["x-amz-server-side-encryption"], headers["x-amz-server-side-encryption-aws-kms-key-id"]]
            .compactMap { $0 }.joined(separator: " ")
    }

    /// Every write that makes an object carries ASSETD_SSE: PutObject (from a file and
    /// from memory), CreateMultipartUpload with its UploadPartCopy parts (which send none
    /// and inherit it), and CopyObject (which does not keep its source's). The copies'
    /// source is unencrypted, so a copy that carried no header would show none.
    @Test(.enabled(if: endpoint != nil && ProcessInfo.processInfo.environment["ASSETD_TEST_S3_STRICT"] != "1",
                   "needs an S3 server that takes SSE-S3 and SSE-KMS (moto); Ceph RGW 16 here answers 400 InvalidRequest"))
    func everyWriteCarriesTheConfiguredEncryption() throws {
        let plain = try client()
        let bytes = partBytes(6 * 1024 * 1024 + 5, seed: 9)
        let fd = try temporaryFile(bytes)
        defer { close(fd) }
        _ = try plain.putObject(key: "source.bin", file: fd, size: bytes.count, contentType: "application/pdf", metadata: [:],
                                sha256Hex: sha256Hex(bytes), md5: md5(bytes))
        #expect(try encryption(of: "source.bin", in: plain) == "")
        for (encryption, expected) in [(ServerSideEncryption.aes256, "AES256"),
                                       (.kms(keyID: "assetd-live-key", bucketKey: true), "aws:kms assetd-live-key")] {
            var configuration = plain.configuration
            configuration.serverSideEncryption = encryption
            let s3 = S3Client(configuration: configuration, logger: plain.logger)
            _ = try s3.putObject(key: "put-file.bin", file: fd, size: bytes.count, contentType: "application/pdf", metadata: [:],
                                 sha256Hex: sha256Hex(bytes), md5: md5(bytes))
            _ = try s3.putObject(key: "put-bytes.jpg", bytes: [1, 2, 3], contentType: "image/jpeg", metadata: [:], cacheControl: "max-age=1")
            try s3.copy(from: "source.bin", to: "copied-once.bin", size: Int64(bytes.count), contentType: "application/pdf", metadata: [:])
            try s3.copy(from: "source.bin", to: "copied-in-parts.bin", size: Int64(bytes.count), contentType: "application/pdf", metadata: [:],
                        partSize: 5 * 1024 * 1024, singleCopyLimit: 5 * 1024 * 1024)
            #expect(try s3.headObject(key: "copied-in-parts.bin")?.etag.hasSuffix("-2\"") == true, "copied by UploadPartCopy")
            for key in ["put-file.bin", "put-bytes.jpg", "copied-once.bin", "copied-in-parts.bin"] {
                #expect(try self.encryption(of: key, in: s3) == expected, "\(key) under \(encryption)")
            }
            #expect(try s3.getObject(key: "copied-in-parts.bin") == bytes)
        }
        try plain.deleteObjects(keys: ["source.bin", "put-file.bin", "put-bytes.jpg", "copied-once.bin", "copied-in-parts.bin"])
    }
}
