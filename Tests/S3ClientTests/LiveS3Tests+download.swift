import Foundation
import Glibc
import Testing
@testable import S3Client

extension LiveS3Tests {
    /// A file to stream into, with junk already in it: the download must replace it all.
    func scratchFile() -> (path: String, descriptor: Int32) {
        let path = NSTemporaryDirectory() + "assetd-download-\(UUID().uuidString)"
        let descriptor = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o600)
        _ = [UInt8](repeating: 0xEE, count: 3 * 1024 * 1024).withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        return (path, descriptor)
    }

    @Test(.enabled(if: endpoint != nil, "ASSETD_TEST_S3_ENDPOINT is not set"))
    func getObjectStreamsIntoAFile() throws {
        let s3 = try client()
        let bytes = partBytes(2 * 1024 * 1024 + 17, seed: 3)
        _ = try s3.putObject(key: "1/digital_assets/5.bin", bytes: bytes, contentType: "application/octet-stream", metadata: [:])
        let (path, descriptor) = scratchFile()
        defer { close(descriptor); unlink(path) }
        let written = try s3.getObject(key: "1/digital_assets/5.bin", toFile: descriptor, expectedSize: bytes.count)
        #expect(written == bytes.count)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(bytes))
    }

    @Test(.enabled(if: endpoint != nil, "ASSETD_TEST_S3_ENDPOINT is not set"))
    func aMissingObjectIsA404AndWritesNothingToTheFile() throws {
        let s3 = try client()
        let (path, descriptor) = scratchFile()
        defer { close(descriptor); unlink(path) }
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect { try s3.getObject(key: "nothing/here.jpg", toFile: descriptor, expectedSize: 10) } throws: {
            ($0 as? S3Error)?.httpStatus == 404
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before, "S3's error body must not land in the file")
    }
}
