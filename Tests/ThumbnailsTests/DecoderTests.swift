import Foundation
import Glibc
import Testing
@testable import Thumbnails

/// The decoder process (issue 17) with the real `assetd-thumbnailer` from this build: the
/// protocol, its sandbox (environment, descriptors), and what a crash or a deadline costs.
@Suite struct DecoderTests {
    let directory = TestImages.directory()
    let executable = IsolatedThumbnailer.executableBesideSelf()

    func decoder(spares: Int = 0, timeout: Int = 60, endpoint: IsolatedThumbnailer.Endpoint? = nil) -> IsolatedThumbnailer {
        IsolatedThumbnailer(settings: .init(endpoint: endpoint ?? .spawn(executable: executable), timeoutSeconds: timeout,
                                            scratch: directory, spares: spares))
    }

    func open(_ bytes: [UInt8], _ name: String) -> Int32 {
        let path = TestImages.write(bytes, to: directory + "/" + name)
        chmod(path, 0o600)
        return Glibc.open(path, O_RDONLY | O_CLOEXEC)
    }

    /// Issue 17: a 1 MB interlaced 16-bit RGBA PNG of 10000 x 10000 decodes whole to 800 MB.
    /// Its pixel count is within ASSETD_THUMBNAIL_MAX_PIXELS; the budget refuses it.
    @Test func theDecodeBudgetRefusesAnInterlaced16BitRGBAPNGFromItsHeader() throws {
        let path = TestImages.write(TestImages.pngHeader(width: 10_000, height: 10_000, bitDepth: 16, colourType: 6, interlaced: true),
                                    to: directory + "/bomb.png")
        let thumbnailer = try Thumbnailer(settings: .init())
        let error = #expect(throws: ThumbnailError.self) {
            try thumbnailer.thumbnail(ofFile: path, detectedType: "image/png", scratch: directory)
        }
        #expect(error?.description.contains("decode budget exceeded: 10000x10000, 4 bands of 2 bytes, would take 800000000 bytes") == true,
                "\(String(describing: error))")
        // An 8-bit RGB one of the same size (300 MB) is within it: it fails only when decoded.
        let small = TestImages.write(TestImages.pngHeader(width: 10_000, height: 10_000, bitDepth: 8, colourType: 2, interlaced: true),
                                     to: directory + "/rgb.png")
        let other = #expect(throws: ThumbnailError.self) {
            try thumbnailer.thumbnail(ofFile: small, detectedType: "image/png", scratch: directory)
        }
        #expect(other?.description.contains("budget") == false)
    }

    @Test func aThumbnailComesBackFromTheChildAndARefusalWithItsReason() throws {
        let decoder = decoder()
        let png = open(TestImages.png(width: 1200, height: 800), "photo.png")
        defer { close(png) }
        let jpeg = try decoder.thumbnail(ofFile: png, detectedType: "image/png")
        #expect(jpeg.starts(with: [0xFF, 0xD8, 0xFF]))
        let bomb = open(TestImages.pngHeader(width: 10_000, height: 10_000, bitDepth: 16, colourType: 6, interlaced: true), "bomb.png")
        defer { close(bomb) }
        #expect(throws: DecodeFailure.self) { try decoder.thumbnail(ofFile: bomb, detectedType: "image/png") }
        do {
            _ = try decoder.thumbnail(ofFile: bomb, detectedType: "image/png")
        } catch {
            guard case .refused(let reason) = error else { Issue.record("not refused: \(error)"); return }
            #expect(reason.contains("decode budget exceeded"))
        }
        #expect(decoder.childPIDs.running.isEmpty)
    }

    /// A spare waits with an empty environment, no privileges to gain, and no descriptor
    /// but its connection (0, 1) and /dev/null (2).
    @Test func aDecoderHasAnEmptyEnvironmentAndOnlyItsConnection() throws {
        let decoder = decoder(spares: 1)
        let png = open(TestImages.png(width: 64, height: 64), "small.png")
        defer { close(png) }
        setenv("ASSETD_JWT_SECRET", "a-secret-the-decoder-must-never-see-0123456789", 1)
        defer { unsetenv("ASSETD_JWT_SECRET") }
        _ = try decoder.thumbnail(ofFile: png, detectedType: "image/png")
        let pid = try #require(decoder.childPIDs.spares.first)
        usleep(200_000)
        let environ = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ"))
        #expect(environ.isEmpty, "\(String(decoding: environ, as: UTF8.self))")
        let descriptors = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").compactMap(Int.init).sorted()
        #expect(descriptors == [0, 1, 2])
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        #expect(status.contains("NoNewPrivs:\t1"))
        // Its standard error is the parent's (libvips' warnings reach assetd's log), and no
        // other descriptor of the parent's went along.
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/2")
            == FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/2"))
    }

    /// SIGKILL mid-decode costs that attempt only: a crash, with the signal, to retry.
    @Test func aDecoderKilledMidTaskIsACrashWithItsSignal() throws {
        let decoder = decoder()
        let pdf = open(TestImages.slowPDF(rectangles: 100_000), "slow.pdf")
        defer { close(pdf) }
        let killer = Thread {
            for _ in 0..<500 {
                if let pid = decoder.childPIDs.running.first {
                    usleep(300_000)
                    kill(pid, SIGKILL)
                    return
                }
                usleep(10_000)
            }
        }
        killer.start()
        let error = #expect(throws: DecodeFailure.self) { try decoder.thumbnail(ofFile: pdf, detectedType: "application/pdf") }
        guard case .crashed(let reason) = error else { Issue.record("not a crash: \(String(describing: error))"); return }
        #expect(reason.contains("SIGKILL"), "\(reason)")
    }

    @Test func aDecodePastItsDeadlineIsKilled() throws {
        let decoder = decoder(timeout: 1)
        // Several seconds of poppler on an idle machine (100,000 rectangles once finished
        // within the 1 s deadline when nothing else ran).
        let pdf = open(TestImages.slowPDF(rectangles: 800_000), "slow.pdf")
        defer { close(pdf) }
        let clock = ContinuousClock()
        let started = clock.now
        let error = #expect(throws: DecodeFailure.self) { try decoder.thumbnail(ofFile: pdf, detectedType: "application/pdf") }
        #expect(clock.now - started < .seconds(4))
        guard case .crashed(let reason) = error else { Issue.record("not a crash: \(String(describing: error))"); return }
        #expect(reason.contains("deadline"), "\(reason)")
    }

    /// The systemd path: the decoder behind a listening socket, one instance per
    /// connection with the connection as its standard input and output (Accept=yes),
    /// here under Debian's systemd-socket-activate.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-socket-activate")))
    func theDecoderServesOverASocketActivatedUnixSocket() throws {
        let socket = directory + "/decoder.sock"
        // posix_spawn and waitpid, not Foundation's Process: its child monitoring kept the
        // test process from exiting after a SIGKILL.
        var pid = pid_t()
        let arguments = ["/usr/bin/systemd-socket-activate", "--inetd", "--accept", "--listen=" + socket, executable]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var envp: [UnsafeMutablePointer<CChar>?] = [nil]
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        try #require(posix_spawn(&pid, arguments[0], &actions, nil, &argv, &envp) == 0)
        defer {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        }
        for _ in 0..<200 where !FileManager.default.fileExists(atPath: socket) { usleep(10_000) }
        try socketActivated(decoder(spares: 1, endpoint: .socket(path: socket)))
    }

    func socketActivated(_ decoder: IsolatedThumbnailer) throws {
        let png = open(TestImages.png(width: 800, height: 600), "photo.png")
        defer { close(png) }
        for _ in 0..<2 {
            let jpeg = try decoder.thumbnail(ofFile: png, detectedType: "image/png")
            #expect(jpeg.starts(with: [0xFF, 0xD8, 0xFF]))
        }
        let bomb = open(TestImages.pngHeader(width: 10_000, height: 10_000, bitDepth: 16, colourType: 6, interlaced: true), "bomb.png")
        defer { close(bomb) }
        #expect(throws: DecodeFailure.refused(
            "decode budget exceeded: 10000x10000, 4 bands of 2 bytes, would take 800000000 bytes, over ASSETD_THUMBNAIL_MAX_DECODE_BYTES (536870912)")) {
            try decoder.thumbnail(ofFile: bomb, detectedType: "image/png")
        }
    }
}
