import Foundation
import Glibc
import Logging
import Testing
@testable import AssetdApp

/// check-config's `decoder` line (review M10): a configured decoder socket must accept a
/// connection, or the service starts with thumbnails that wait forever.
struct ConfigCheckDecoderTests {
    let base = ["AWS_BUCKET": "b", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s",
                "ASSETD_JWT_SECRET": String(repeating: "j", count: 32), "ASSETD_DATABASE": "/tmp/x.sqlite"]

    func item(_ settings: [String: String]) throws -> ConfigCheck.Item? {
        let check = ConfigCheck(environment: [:], file: nil, logger: Logger(label: "test"))
        return check.decoder(try Configuration(environment: base.merging(settings) { $1 }))
    }

    /// A listening Unix socket at a fresh path; closed (and removed) by the caller.
    func listening() throws -> (path: String, descriptor: Int32) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("assetd-decoder-\(UUID().uuidString.prefix(8)).sock").path
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0 && listen(descriptor, 4) == 0)
        return (path, descriptor)
    }

    @Test func aSocketThatAcceptsIsOKAndOneThatDoesNotFails() throws {
        let (path, descriptor) = try listening()
        defer { unlink(path) }
        let ok = try #require(try item(["ASSETD_THUMBNAILER_SOCKET": path]))
        #expect(ok.ok && ok.line == "OK   decoder: \(path) accepts connections", "\(ok.line)")
        close(descriptor)  // a stale socket file: nobody listens
        let stale = try #require(try item(["ASSETD_THUMBNAILER_SOCKET": path]))
        #expect(!stale.ok && stale.line.contains("Connection refused") && stale.line.contains("assetd-thumbnailer.socket"), "\(stale.line)")
        unlink(path)
        let missing = try #require(try item(["ASSETD_THUMBNAILER_SOCKET": path]))
        #expect(!missing.ok && missing.line.contains("No such file"), "\(missing.line)")
    }

    @Test func withoutASocketTheChildsExecutableIsChecked() throws {
        #expect(try item(["ASSETD_THUMBNAILS": "off", "ASSETD_THUMBNAILER_SOCKET": "/nonexistent/decoder.sock"]) == nil)
        let absent = try #require(try item(["ASSETD_THUMBNAILER": "/nonexistent/assetd-thumbnailer"]))
        #expect(!absent.ok && absent.line.hasPrefix("FAIL decoder: /nonexistent/assetd-thumbnailer is not an executable"), "\(absent.line)")
        let present = try #require(try item(["ASSETD_THUMBNAILER": "/bin/sh"]))
        #expect(present.ok, "\(present.line)")
    }
}
