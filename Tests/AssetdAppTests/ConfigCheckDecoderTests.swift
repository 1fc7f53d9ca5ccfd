import Foundation
import Glibc
import Logging
import Testing
import TestFiles
@testable import AssetdApp

/// check-config's `decoder` line (review M10): a configured decoder socket must accept a
/// connection, or the service starts with thumbnails that wait forever.
struct ConfigCheckDecoderTests {
    let base = ["AWS_BUCKET": "b", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s",
                "ASSETD_JWT_SECRET": String(repeating: "j", count: 32), "ASSETD_DATABASE": "/tmp/x.sqlite"]

    func item(_ settings: [String: String], packagedSocket: String = "/nonexistent/packaged/decoder.sock") throws -> ConfigCheck.Item? {
        let check = ConfigCheck(environment: [:], file: nil, logger: Logger(label: "test"))
        return check.decoder(try Configuration(environment: base.merging(settings) { $1 }), packagedSocket: packagedSocket)
    }

    /// A listening Unix socket at a fresh path; closed (and removed) by the caller.
    func listening() throws -> (path: String, descriptor: Int32) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("assetd-decoder-\(UUID().uuidString.prefix(8)).sock").path
        let descriptor = TestFiles.boundUnixSocket(at: path, type: Int32(SOCK_STREAM.rawValue))
        try #require(descriptor >= 0 && listen(descriptor, 4) == 0)
        return (path, descriptor)
    }

    @Test func aSocketThatAcceptsIsOKAndOneThatDoesNotFails() throws {
        let (path, descriptor) = try listening()
        defer { unlink(path) }
        let ok = try #require(try item(["ASSETD_THUMBNAILER_SOCKET": path]))
        #expect(ok.ok && ok.line == "OK   decoder: \(path) accepts connections (ASSETD_THUMBNAILER_SOCKET)", "\(ok.line)")
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
        #expect(!absent.ok && absent.line.hasPrefix("FAIL decoder: the decoder /nonexistent/assetd-thumbnailer is not an executable"), "\(absent.line)")
        let present = try #require(try item(["ASSETD_THUMBNAILER": "/bin/sh"]))
        #expect(present.ok, "\(present.line)")
    }

    /// With no decoder named, the line says what `serve` would use (review 10, L4): the
    /// packaged socket when it is there (probed: FAIL when nobody listens), not "assetd runs
    /// the decoder as its own child".
    @Test func thePackagedSocketIsReportedAndProbed() throws {
        let (path, descriptor) = try listening()
        defer { unlink(path) }
        let found = try #require(try item([:], packagedSocket: path))
        #expect(found.ok && found.line == "OK   decoder: \(path) accepts connections (the packaged decoder's socket)", "\(found.line)")
        close(descriptor)
        let stale = try #require(try item([:], packagedSocket: path))
        #expect(!stale.ok && stale.line.contains("the packaged decoder's socket \(path): ") && stale.line.contains("Connection refused"),
                "\(stale.line)")
        unlink(path)
        let spawned = try #require(try item(["ASSETD_THUMBNAILER": "/bin/sh"], packagedSocket: path))
        #expect(spawned.ok && spawned.line.contains("assetd runs /bin/sh as its own child"), "\(spawned.line)")
    }
}
