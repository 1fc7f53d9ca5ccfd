import MediaInfo
import Foundation
import CSystem
import Glibc

/// One frame of a video, taken by Debian's `ffmpeg`: spawned with an argument list (never
/// a shell), reading only local files, with no descriptor of assetd's but /dev/null (and
/// the memfd it writes to), and killed when it runs past its deadline.
enum VideoFrame {
    /// ffmpeg's demuxer for each video type libmagic names; the input format is forced,
    /// so that a file is never read as a format other than the one it was accepted as.
    static let demuxers = ["video/mp4": "mov", "video/quicktime": "mov", "video/webm": "matroska", "video/x-matroska": "matroska"]

    /// Writes a PNG of the frame at about `second` (or the first frame of a shorter clip)
    /// into `output`, a memfd (`memoryFile`): ffmpeg gets it as its standard output, so the
    /// frame is never a file that another process of the decoder's user could open by name.
    /// With `inputDescriptor`, ffmpeg gets that descriptor as its 3 and reads
    /// /proc/self/fd/3 (the decoder holds its source as a descriptor, not a path).
    static func extract(from input: String, type: String, into output: Int32, second: Double = 1,
                        timeout: Duration = .seconds(30), executable: String = "ffmpeg",
                        inputDescriptor: Int32? = nil) throws(ThumbnailError) {
        let input = inputDescriptor == nil ? input : "/proc/self/fd/3"
        guard let demuxer = demuxers[type] else { throw ThumbnailError("no video demuxer for \(type)") }
        for seek in [second, 0] {
            // A first attempt may have written part of a frame.
            guard ftruncate(output, 0) == 0, lseek(output, 0, SEEK_SET) == 0 else {
                throw ThumbnailError("cannot empty the frame's memfd: errno \(errno)")
            }
            var arguments = [executable, "-nostdin", "-hide_banner", "-loglevel", "error", "-protocol_whitelist", "file",
                             "-threads", "1", "-f", demuxer]
            if seek > 0 { arguments += ["-ss", String(seek)] }
            arguments += ["-i", input, "-map", "0:v:0", "-frames:v", "1", "-an", "-sn", "-dn", "-f", "image2pipe", "-c:v", "png", "pipe:1"]
            let status = try run(arguments, timeout: timeout, inheriting: inputDescriptor, output: output)
            // Past RLIMIT_FSIZE (frameBytes, in the decoder child) the kernel stops the write
            // with SIGXFSZ: a partial PNG is never read.
            if status == 128 + SIGXFSZ {
                throw ThumbnailError("the video's frame is larger than the decoder allows (RLIMIT_FSIZE, from the pixel limit): refused")
            }
            var info = stat()
            if fstat(output, &info) == 0, info.st_size > 0 { return }
            if seek == 0 {
                throw ThumbnailError(status == 0 ? "the video has no frame" : "ffmpeg could not decode the video (exit status \(status))")
            }
        }
    }

    /// The decoder child's RLIMIT_FSIZE, which ffmpeg and ffprobe inherit: a frame's PNG
    /// goes to a memfd, whose pages RLIMIT_AS does not count but RLIMIT_FSIZE bounds (as any
    /// shmem file's), so a hostile video cannot fill memory with a frame before libvips'
    /// `maxPixels` check reads its header. About 4 bytes a pixel of `maxPixels` (RGBA; a
    /// PNG compresses), at least 1 MiB (small limits in tests), at most 128 MiB.
    static func frameBytes(maxPixels: Int) -> UInt64 {
        let pixels = UInt64(clamping: max(maxPixels, 0))
        return max(1 << 20, min(pixels.multipliedReportingOverflow(by: 4).overflow ? UInt64.max : pixels * 4, 128 << 20))
    }

    /// A memfd for a program's output (`extract`'s frame, `probe`'s lines): it has no name
    /// in any directory, so the decoder needs no writable /tmp and no sibling can open it.
    static func memoryFile(_ name: String) throws(ThumbnailError) -> Int32 {
        let descriptor = assetd_system_memfd(name)
        guard descriptor >= 0 else { throw ThumbnailError("cannot make a memfd: errno \(errno)") }
        return descriptor
    }

    /// The video's frame size (first video stream) and duration, by `ffprobe` under the
    /// same rules as ffmpeg (forced demuxer, local files only, killed at the deadline). Its
    /// standard output is a memfd, read back bounded; an empty MediaMetadata when ffprobe
    /// could not read the file. Throws (a crash-class error) when it did not answer: it
    /// could not be started, or ran past the deadline: that says nothing of the file.
    static func probe(_ input: String, type: String, timeout: Duration, executable: String = "ffprobe",
                      inputDescriptor: Int32? = nil) throws(ThumbnailError) -> MediaMetadata {
        let input = inputDescriptor == nil ? input : "/proc/self/fd/3"
        guard let demuxer = demuxers[type] else { return MediaMetadata() }
        let output: Int32
        do { output = try memoryFile("probe") } catch { throw ThumbnailError(error.description, crash: true) }
        defer { close(output) }
        let arguments = [executable, "-hide_banner", "-loglevel", "error", "-protocol_whitelist", "file", "-f", demuxer,
                         "-select_streams", "v:0", "-show_entries", "stream=width,height:format=duration",
                         "-of", "default=noprint_wrappers=1", "-i", input]
        let status: Int32
        status = try run(arguments, timeout: timeout, inheriting: inputDescriptor, output: output)
        guard status == 0 else { return MediaMetadata() }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let got = buffer.withUnsafeMutableBytes { pread(output, $0.baseAddress, $0.count, 0) }
        guard got > 0 else { return MediaMetadata() }
        return MediaMetadata.probed(String(decoding: buffer[0..<got], as: UTF8.self))
    }

    /// Runs a program to its end and returns its exit status; kills it at the deadline.
    /// `inheriting`: a descriptor the program gets as its 3 (its input file); `output`: one
    /// it gets as its standard output (else /dev/null).
    static func run(_ arguments: [String], timeout: Duration, inheriting: Int32? = nil, output: Int32? = nil) throws(ThumbnailError) -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd: Int32 in 0...2 {
            posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0)
        }
        if let output { posix_spawn_file_actions_adddup2(&actions, output, 1) }
        if let inheriting { posix_spawn_file_actions_adddup2(&actions, inheriting, 3) }
        // Nothing else goes along (in assetd: the FastCGI socket, the database, curl's
        // connections; in the decoder: its connection to assetd).
        _ = assetd_system_spawn_addclosefrom(&actions, inheriting == nil ? 3 : 4)

        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let environment = ["PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C"]
        var envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer { for pointer in envp { free(pointer) } }

        var pid = pid_t()
        // Default signal dispositions and an empty mask: assetd's own are not the child's.
        let spawned = SpawnAttributes.withDefaultSignals { attributes in
            posix_spawnp(&pid, arguments[0], &actions, &attributes, &argv, &envp)
        }
        // None of these failures is the file's (ThumbnailError.crash): a program that did not
        // start, was lost, or ran past its deadline on a busy host is tried again later.
        guard spawned == 0 else { throw ThumbnailError("cannot run \(arguments[0]): \(String(cString: strerror(spawned)))", crash: true) }

        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var status: Int32 = 0
        while true {
            let done = waitpid(pid, &status, WNOHANG)
            if done == pid { break }
            if done < 0 && errno != EINTR { throw ThumbnailError("lost \(arguments[0]): errno \(errno)", crash: true) }
            if clock.now >= deadline {
                // A confined decoder child may signal nothing but itself (assetd_system_confine):
                // the kill is refused there, and the zygote kills the program with the
                // child's process group once the child has answered and ended.
                guard kill(pid, SIGKILL) == 0 else {
                    var error = ThumbnailError("\(arguments[0]) ran past \(timeout) and is killed with the decoder child", crash: true)
                    error.leftRunning = true
                    throw error
                }
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                throw ThumbnailError("\(arguments[0]) ran past \(timeout) and was killed", crash: true)
            }
            usleep(10_000)
        }
        // WIFEXITED / WEXITSTATUS are macros: the bits, as glibc lays them out.
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}

