import MediaInfo
import Foundation
import Glibc
import Testing
@testable import Thumbnails

/// The media backfill's facts of a video (ffprobe): an ffprobe that did not answer (not
/// started, past its deadline) is a crash-class error, which the decoder child turns into
/// no answer (assetd retries later); only ffprobe's own "cannot read this" is the file's.
@Suite struct ProbeFailureTests {
    /// An executable script in a fresh directory.
    func script(_ body: String) throws -> String {
        let path = NSTemporaryDirectory() + "assetd-ffprobe-\(UUID().uuidString)"
        try "#!/bin/sh\n\(body)\n".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return path
    }

    func source() throws -> Int32 {
        let path = NSTemporaryDirectory() + "assetd-video-\(UUID().uuidString).mp4"
        try Data("not really a video".utf8).write(to: URL(fileURLWithPath: path))
        let descriptor = open(path, O_RDONLY)
        unlink(path)
        return descriptor
    }

    func facts(ffprobe: String, timeout: Duration = .seconds(5)) throws -> Result<MediaMetadata, ThumbnailError> {
        var settings = Thumbnailer.Settings()
        settings.videoTimeout = timeout
        let thumbnailer = try Thumbnailer(settings: settings)
        let descriptor = try source()
        defer { close(descriptor) }
        do throws(ThumbnailError) {
            return .success(try thumbnailer.facts(ofDescriptor: descriptor, detectedType: "video/mp4", scratch: "/tmp", keepGPS: false,
                                                  ffprobe: ffprobe))
        } catch {
            return .failure(error)
        }
    }

    @Test func anFfprobeThatCannotStartIsACrashNotTheFiles() throws {
        let result = try facts(ffprobe: "/nonexistent/assetd-ffprobe")
        guard case .failure(let error) = result else { Issue.record("no error: \(result)"); return }
        #expect(error.crash, "\(error)")
    }

    @Test func anFfprobePastItsDeadlineIsACrashNotTheFiles() throws {
        let result = try facts(ffprobe: try script("exec sleep 5"), timeout: .milliseconds(200))
        guard case .failure(let error) = result else { Issue.record("no error: \(result)"); return }
        #expect(error.crash, "\(error)")
    }

    @Test func anFfprobeThatCannotReadTheFileIsFinal() throws {
        let result = try facts(ffprobe: try script("exit 1"))
        guard case .failure(let error) = result else { Issue.record("no error: \(result)"); return }
        #expect(!error.crash, "\(error)")
    }
}
