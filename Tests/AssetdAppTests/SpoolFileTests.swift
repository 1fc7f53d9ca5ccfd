import Foundation
import Hashing
import Testing
@testable import AssetdApp

/// The spool: nameless from the start, digests of what was written (inline below 256 KiB,
/// on threads above), and its descriptor closed after it is dropped.
final class SpoolFileTests {
    let directory: String

    init() throws {
        let path = NSTemporaryDirectory() + "spool-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        // As /proc shows it: with any symbolic link in TMPDIR resolved.
        directory = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    /// Where an open descriptor of this process points, as /proc/self/fd shows it.
    static func target(of descriptor: Int32) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(descriptor)")
    }

    @Test(arguments: [1000, 300 * 1024])
    func namelessWithTheDigestsOfItsBytes(size: Int) throws {
        let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let spool = try SpoolFile(directory: directory, expectedSize: size)
        // No name in the directory at any time; /proc shows it as deleted.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == [])
        let target = try #require(Self.target(of: spool.descriptor))
        #expect(target.hasPrefix(directory + "/") && target.hasSuffix(" (deleted)"), "\(target)")
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + 64 * 1024, bytes.count)
            try bytes[offset..<end].withUnsafeBytes { try spool.write($0) }
            offset = end
        }
        let digests = try spool.digests()
        let sha256 = Digest(.sha256), md5 = Digest(.md5)
        sha256.update(bytes)
        md5.update(bytes)
        #expect(digests.sha256Hex == Encoding.hex(sha256.finalize()))
        #expect(digests.md5 == md5.finalize())
        #expect(spool.size == size)
        var stat = stat()
        #expect(fstat(spool.descriptor, &stat) == 0 && Int(stat.st_size) == size)
        #expect(fcntl(spool.descriptor, F_GETFD) & FD_CLOEXEC != 0, "a spawned ffmpeg must not inherit it")
    }

    @Test func itsDescriptorIsClosedSoonAfterItIsDropped() throws {
        var spool: SpoolFile? = try SpoolFile(directory: directory, expectedSize: nil)
        let descriptor = spool!.descriptor
        try [UInt8](repeating: 1, count: 4096).withUnsafeBytes { try spool!.write($0) }
        spool = nil
        // Closed on a background queue: wait for it, a little.
        let deadline = Date().addingTimeInterval(5)
        while Self.target(of: descriptor)?.hasPrefix(directory + "/") == true && Date() < deadline {
            usleep(10_000)
        }
        #expect(Self.target(of: descriptor)?.hasPrefix(directory + "/") != true, "the spool's descriptor is still open")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == [])
    }
}
