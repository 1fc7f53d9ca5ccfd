@testable import AssetdApp
import Foundation
import Glibc
import Testing
import TestFiles
import Thumbnails

/// Which decoder a command or `serve` uses (the sysadmin's review, H1): `sudo -u assetd
/// assetd backfill-media --config /etc/assetd/assetd.env` with a settings file that names no
/// socket used to run the decoder as assetd's own child, as the assetd user, outside the
/// unit's sandbox.
struct DecoderEndpointTests {
    let base = ["AWS_BUCKET": "b", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "very-secret-value",
                "ASSETD_JWT_SECRET": String(repeating: "j", count: 32), "ASSETD_DATABASE": "/tmp/x.sqlite"]

    func configuration(_ extra: [String: String] = [:]) throws -> Configuration {
        try Configuration(environment: base.merging(extra) { $1 })
    }

    /// A unix socket at `path`, bound by this process (so owned by its user).
    static func bindSocket(_ path: String) throws -> Int32 {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        try #require(descriptor >= 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.enumerated() { buffer[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0)
        return descriptor
    }

    @Test func thePackagedSocketOfOwnUserIsUsedWhenNoDecoderIsNamed() throws {
        let directory = try TestFiles.scratchDirectory("decoder-endpoint")
        let path = directory + "/decoder.sock"
        // No socket there: assetd's own child.
        guard case .spawn = try Bootstrap.decoderEndpoint(try configuration(), packagedSocket: path) else {
            Issue.record("no packaged socket: expected the decoder as assetd's child")
            return
        }
        let descriptor = try Self.bindSocket(path)
        defer { close(descriptor) }
        #expect(try Bootstrap.decoderEndpoint(try configuration(), packagedSocket: path) == .socket(path: path))
        // ASSETD_THUMBNAILER_SOCKET wins; ASSETD_THUMBNAILER (a decoder named) is kept.
        #expect(try Bootstrap.decoderEndpoint(try configuration(["ASSETD_THUMBNAILER_SOCKET": "/elsewhere.sock"]), packagedSocket: path)
                == .socket(path: "/elsewhere.sock"))
        #expect(try Bootstrap.decoderEndpoint(try configuration(["ASSETD_THUMBNAILER": "/bin/true"]), packagedSocket: path)
                == .spawn(executable: "/bin/true"))
        // A file that is no socket is not taken for one.
        let plain = directory + "/plain.sock"
        FileManager.default.createFile(atPath: plain, contents: Data())
        guard case .spawn = try Bootstrap.decoderEndpoint(try configuration(), packagedSocket: plain) else {
            Issue.record("a plain file was taken for the decoder's socket")
            return
        }
    }
}
