import Foundation
import CSystem
import Glibc
import Testing
@testable import Thumbnails

@Suite struct ThumbnailerTests {
    let thumbnailer = try! Thumbnailer(settings: .init())
    let directory = TestImages.directory()

    /// Width and height of a JPEG, from its SOF0/SOF2 segment.
    func jpegSize(_ bytes: [UInt8]) -> (width: Int, height: Int)? {
        var i = 2
        while i + 9 < bytes.count, bytes[i] == 0xFF {
            let marker = bytes[i + 1]
            let length = Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            if marker == 0xC0 || marker == 0xC2 {
                return (Int(bytes[i + 7]) << 8 | Int(bytes[i + 8]), Int(bytes[i + 5]) << 8 | Int(bytes[i + 6]))
            }
            i += 2 + length
        }
        return nil
    }

    @Test func theLongestEdgeBecomesTheSetSize() throws {
        let path = TestImages.write(TestImages.png(width: 1200, height: 300), to: directory + "/wide.png")
        #expect(Thumbnailer.loader(forFile: path) == "pngload")
        let jpeg = try thumbnailer.thumbnail(ofFile: path, detectedType: "image/png", scratch: directory)
        #expect(Array(jpeg.prefix(3)) == [0xFF, 0xD8, 0xFF])
        let size = try #require(jpegSize(jpeg))
        #expect(size.width == 512)
        #expect(size.height == 128)
    }

    @Test func aSmallImageIsNotEnlarged() throws {
        let path = TestImages.write(TestImages.png(width: 40, height: 30), to: directory + "/small.png")
        let jpeg = try thumbnailer.thumbnail(ofFile: path, detectedType: "image/png", scratch: directory)
        let size = try #require(jpegSize(jpeg))
        #expect(size.width == 40 && size.height == 30)
    }

    @Test func aFileNeverReachesTheLoaderOfAnotherType() throws {
        let path = TestImages.write(TestImages.png(width: 20, height: 20), to: directory + "/png-as-jpeg.jpg")
        #expect(throws: ThumbnailError("the content would be read by pngload, not jpegload")) {
            try thumbnailer.thumbnail(ofFile: path, detectedType: "image/jpeg", scratch: directory)
        }
    }

    @Test(arguments: [("svg", TestImages.svg, "svgload"), ("miff", TestImages.miff, "magickload")])
    func untrustedLoadersAreBlocked(name: String, bytes: [UInt8], loader: String) throws {
        let path = TestImages.write(bytes, to: directory + "/\(name).jpg")
        // Declared a JPEG: refused before any loader opens it.
        #expect(throws: ThumbnailError("the content would be read by \(loader), not jpegload")) {
            try thumbnailer.thumbnail(ofFile: path, detectedType: "image/jpeg", scratch: directory)
        }
        // And libvips itself refuses to run that loader: it is blocked.
        let error = #expect(throws: ThumbnailError.self) { try Vips.header(ofFile: path) }
        #expect(error?.description.contains("blocked") == true, "\(error.map(String.init(describing:)) ?? "no error")")
    }

    @Test func aDecompressionBombFailsFromItsHeader() throws {
        let path = TestImages.write(TestImages.png(width: 30_000, height: 30_000, bomb: true), to: directory + "/bomb.png")
        let clock = ContinuousClock()
        let started = clock.now
        let error = #expect(throws: ThumbnailError.self) {
            try thumbnailer.thumbnail(ofFile: path, detectedType: "image/png", scratch: directory)
        }
        #expect(error?.description.hasPrefix("image too large") == true)
        #expect(clock.now - started < .seconds(1))
    }

    @Test func aTypeWithoutAThumbnailIsRefused() {
        #expect(!Thumbnailer.makesThumbnail(of: "text/plain"))
        #expect(Thumbnailer.makesThumbnail(of: "video/mp4"))
        #expect(Thumbnailer.makesThumbnail(of: "application/pdf"))
    }

    @Test func aProgramThatRunsPastItsDeadlineIsKilled() throws {
        let clock = ContinuousClock()
        let started = clock.now
        let error = #expect(throws: ThumbnailError.self) {
            _ = try VideoFrame.run(["sleep", "10"], timeout: .milliseconds(300))
        }
        #expect(error?.description.contains("was killed") == true)
        #expect(error?.crash == true, "past its deadline (a busy host) is not the file's fault")
        #expect(clock.now - started < .seconds(3))
    }

    /// ffmpeg killed at its deadline is a crash (another attempt later), not a refusal that
    /// would mark the thumbnail failed for good (the attacker's review, low).
    @Test func anFfmpegPastItsDeadlineIsACrashNotTheFiles() throws {
        let error = try extractError(ffmpeg: "exec sleep 10", timeout: .milliseconds(300))
        #expect(error?.description.contains("ran past") == true, "\(String(describing: error))")
        #expect(error?.crash == true, "\(String(describing: error))")
    }

    /// RLIMIT_FSIZE bounds what a program writes to a memfd (a shmem file, whose pages
    /// RLIMIT_AS does not count): the write stops at the limit, with SIGXFSZ or EFBIG.
    @Test func aMemfdWriteStopsAtTheFileSizeLimit() throws {
        let name = strdup("bounded")!
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: 8192, alignment: 16)
        defer { free(name); bytes.deallocate() }
        let pid = assetd_system_fork()
        if pid == 0 {
            signal(SIGXFSZ, SIG_IGN)
            if assetd_system_limit(ASSETD_LIMIT_FILE_BYTES, 4096) != 0 { _exit(10) }
            let memory = assetd_system_memfd(name)
            if memory < 0 { _exit(11) }
            if write(memory, bytes, 8192) != 4096 { _exit(12) } // a short write up to the limit
            if write(memory, bytes, 1) != -1 || errno != EFBIG { _exit(13) }
            _exit(0)
        }
        try #require(pid > 0)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        #expect(status & 0x7f == 0 && (status >> 8) & 0xff == 0, "status \(status): 12 the whole write went through, 13 no EFBIG")
    }

    /// A frame past RLIMIT_FSIZE (ffmpeg killed by SIGXFSZ with part of a PNG written) is a
    /// clear refusal, never a partial frame handed to libvips. A stand-in for ffmpeg writes
    /// 100 kB under a 1 KiB limit.
    @Test func aFramePastTheFileSizeLimitIsRefused() throws {
        let error = try extractError(ffmpeg: "ulimit -f 2\nexec head -c 100000 /dev/zero")
        #expect(error?.description.contains("larger than the decoder allows") == true, "\(String(describing: error))")
    }

    @Test func theFrameLimitFollowsThePixelLimit() {
        #expect(VideoFrame.frameBytes(maxPixels: 100_000_000) == 128 << 20)
        #expect(VideoFrame.frameBytes(maxPixels: 10_000_000) == 40_000_000)
        #expect(VideoFrame.frameBytes(maxPixels: 1000) == 1 << 20)
        #expect(VideoFrame.frameBytes(maxPixels: Int.max) == 128 << 20)
    }

    @Test func aMissingProgramIsAnError() {
        #expect(throws: ThumbnailError.self) {
            let frame = try VideoFrame.memoryFile("frame")
            defer { close(frame) }
            try VideoFrame.extract(from: "/dev/null", type: "video/mp4", into: frame, executable: "/nonexistent/ffmpeg")
        }
    }

    /// What VideoFrame.extract throws with a shell script (`body`) standing in for ffmpeg.
    func extractError(ffmpeg body: String, timeout: Duration = .seconds(30)) throws -> ThumbnailError? {
        let script = NSTemporaryDirectory() + "assetd-ffmpeg-\(UUID().uuidString).sh"
        try "#!/bin/sh\n\(body)\n".write(toFile: script, atomically: true, encoding: .utf8)
        defer { unlink(script) }
        chmod(script, 0o700)
        let frame = try VideoFrame.memoryFile("frame")
        defer { close(frame) }
        do throws(ThumbnailError) {
            try VideoFrame.extract(from: "/dev/null", type: "video/mp4", into: frame, timeout: timeout, executable: script)
        } catch {
            return error
        }
        return nil
    }
}
