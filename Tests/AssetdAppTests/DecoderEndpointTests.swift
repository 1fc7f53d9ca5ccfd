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
        let descriptor = TestFiles.boundUnixSocket(at: path, type: Int32(SOCK_STREAM.rawValue))
        try #require(descriptor >= 0)
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

    /// Root running a command (`sudo assetd backfill-media --config /etc/assetd/assetd.env`)
    /// uses the packaged socket, the assetd user's, rather than a decoder child of root's
    /// (review 10, L3), but only when no one but root could have put it there: its
    /// directory and every one above belong to root and are writable by no one else.
    @Test(.enabled(if: geteuid() == 0 && access("/run", W_OK) == 0, "needs root and /run"))
    func rootUsesAnotherUsersSocketOnlyInARootOwnedDirectory() throws {
        let directory = "/run/assetd-decoder-test-\(UUID().uuidString.prefix(8))"
        try #require(mkdir(directory, 0o755) == 0 && chmod(directory, 0o755) == 0)
        defer { rmdir(directory) }
        let path = directory + "/decoder.sock"
        let descriptor = try Self.bindSocket(path)
        defer { close(descriptor); unlink(path) }
        try #require(chown(path, 65534, 65534) == 0)
        #expect(Bootstrap.isTrustedSocket(path, user: 0))
        #expect(try Bootstrap.decoderEndpoint(try configuration(), packagedSocket: path) == .socket(path: path))
        // Another user than root does not take a socket that is not its own.
        #expect(!Bootstrap.isTrustedSocket(path, user: 1000))
        // A directory another user could write: someone could have planted the socket.
        try #require(chmod(directory, 0o775) == 0)
        #expect(!Bootstrap.isTrustedSocket(path, user: 0))
        guard case .spawn = try Bootstrap.decoderEndpoint(try configuration(), packagedSocket: path) else {
            Issue.record("a socket in a group-writable directory was taken")
            return
        }
        try #require(chmod(directory, 0o755) == 0)
        // Under a world-writable directory (the temporary directory, mode 1777): not taken
        // either, though its own directory is root's, mode 0755.
        let scratch = try TestFiles.scratchDirectory("decoder-endpoint")
        try #require(chmod(scratch, 0o755) == 0)
        let planted = scratch + "/decoder.sock"
        let other = try Self.bindSocket(planted)
        defer { close(other) }
        try #require(chown(planted, 65534, 65534) == 0)
        var temporary = stat()
        if stat(FileManager.default.temporaryDirectory.path, &temporary) == 0, temporary.st_mode & S_IWOTH != 0 {
            #expect(!Bootstrap.isTrustedSocket(planted, user: 0))
        }
        // Root's own socket anywhere is its own, as before.
        try #require(chown(planted, 0, 0) == 0)
        #expect(Bootstrap.isTrustedSocket(planted, user: 0))
    }
}
