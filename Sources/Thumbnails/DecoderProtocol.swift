import MediaInfo
import CSystem
import Glibc

/// The wire between assetd and its decoder (`assetd-thumbnailer`), one task a connection.
/// assetd connects to the decoder zygote's socket (`assetd-thumbnailer.socket` under
/// systemd, a socket in assetd's scratch directory when assetd runs the zygote itself);
/// the zygote forks a child for the connection, which the child serves (DecoderZygote).
///
/// Request, assetd to decoder, in one `sendmsg`: "ATQ1", a 4-byte big-endian length, then
/// that many bytes of `key=value` lines (at most 4 KiB); the source file rides along as a
/// descriptor (SCM_RIGHTS), so the decoder never needs a path to assetd's files.
///
/// Answer, decoder to assetd: first, when the decode succeeded, an `M` record (4-byte
/// length, then at most 4 KiB of MediaMetadata' `key=value` lines, which assetd checks
/// strictly: the child is untrusted); then one byte, `J` (a JPEG follows) or `F` (refused: the same
/// bytes would fail the same way again; a UTF-8 reason follows), a 4-byte big-endian
/// length, then the payload (a JPEG at most `maxJPEGBytes`, a reason at most 4 KiB). `E`
/// comes from the zygote, not the child: the child ended without an answer, and how
/// ("it was killed by SIGKILL"). Anything else, or the connection closing first, is a
/// decoder that died.
///
/// A request with `facts_only=1` (the media backfill) asks for the facts alone: the child
/// reads the header (ffprobe for a video), decodes no pixel, and answers the `M` record
/// then `D` (done) with length 0, or `F` as above. `D` is accepted only in that mode.
public enum DecoderProtocol {
    static let requestMagic: [UInt8] = Array("ATQ1".utf8)
    static let maxRequestBytes = 4096
    /// The largest JPEG assetd accepts (a 4096-pixel thumbnail at quality 100 stays well below).
    public static let maxJPEGBytes = 32 << 20
    static let maxReasonBytes = 4096
    static let jpeg = UInt8(ascii: "J")
    static let refused = UInt8(ascii: "F")
    static let ended = UInt8(ascii: "E")
    static let media = UInt8(ascii: "M")
    static let factsDone = UInt8(ascii: "D")

    static func header(_ kind: [UInt8], _ length: Int) -> [UInt8] {
        let n = UInt32(length)
        return kind + [UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)]
    }

    static func length(_ bytes: ArraySlice<UInt8>) -> Int {
        bytes.reduce(0) { $0 << 8 | Int($1) }
    }

    /// Writes all of `bytes`; false when the peer is gone.
    static func write(_ descriptor: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written < 0 {
                if errno == EINTR { continue }
                if errno == ENOTSOCK {
                    let plain = bytes[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
                    if plain > 0 { offset += plain; continue }
                }
                return false
            }
            offset += written
        }
        return true
    }

    /// Reads exactly `count` bytes before `deadline` (nil: no deadline). nil on EOF, an
    /// error or the deadline (`timedOut` says which).
    static func read(_ descriptor: Int32, _ count: Int, deadline: ContinuousClock.Instant?, timedOut: inout Bool) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: count)
        var offset = 0
        let clock = ContinuousClock()
        while offset < count {
            if let deadline {
                let left = deadline - clock.now
                if left <= .zero { timedOut = true; return nil }
                var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                let milliseconds = Int32(min(Int64(Int32.max), left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1))
                let ready = poll(&poller, 1, milliseconds)
                if ready < 0 && errno == EINTR { continue }
                if ready < 0 { return nil }
                if ready == 0 { continue }
            }
            let got = buffer[offset...].withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if got < 0 && errno == EINTR { continue }
            if got <= 0 { return nil }
            offset += got
        }
        return buffer
    }
}

/// One task's parameters, as assetd sends them.
public struct DecodeRequest: Sendable, Equatable {
    /// The type libmagic detected (it picks the loader the content must reach).
    public var type: String
    public var size: Int
    public var quality: Int
    public var maxPixels: Int
    public var maxDecodeBytes: Int
    public var vipsThreads: Int
    /// RLIMIT_AS for the decoder (and ffmpeg under it).
    public var memoryBytes: Int
    /// The wall-clock deadline; the decoder also takes it as RLIMIT_CPU and alarm(2).
    public var timeoutSeconds: Int
    /// A directory for a video's frame; nil: the decoder's own /tmp (a private one under systemd).
    public var scratch: String?
    /// Whether the decoder reads GPS coordinates at all (ASSETD_KEEP_GPS).
    public var keepGPS = false
    /// The media facts only, no thumbnail (the backfill): answered `M` then `D`.
    public var factsOnly = false

    public init(type: String, settings: Thumbnailer.Settings, memoryBytes: Int, timeoutSeconds: Int, scratch: String?) {
        self.type = type
        size = settings.size
        quality = settings.quality
        maxPixels = settings.maxPixels
        maxDecodeBytes = settings.maxDecodeBytes
        vipsThreads = settings.vipsThreads
        self.memoryBytes = memoryBytes
        self.timeoutSeconds = timeoutSeconds
        self.scratch = scratch
    }

    var encoded: [UInt8] {
        var lines = "type=\(type)\nsize=\(size)\nquality=\(quality)\nmax_pixels=\(maxPixels)\nmax_decode_bytes=\(maxDecodeBytes)\n"
        lines += "vips_threads=\(vipsThreads)\nmemory_bytes=\(memoryBytes)\ntimeout_s=\(timeoutSeconds)\n"
        if let scratch { lines += "scratch=\(scratch)\n" }
        if keepGPS { lines += "keep_gps=1\n" }
        if factsOnly { lines += "facts_only=1\n" }
        return Array(lines.utf8)
    }

    init?(decoding bytes: [UInt8]) {
        var values: [Substring: Substring] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { return nil }
            values[line[..<eq]] = line[line.index(after: eq)...]
        }
        func int(_ key: Substring) -> Int? { values[key].flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil } }
        guard let type = values["type"], let size = int("size"), let quality = int("quality"), let maxPixels = int("max_pixels"),
              let maxDecodeBytes = int("max_decode_bytes"), let threads = int("vips_threads"), let memory = int("memory_bytes"),
              let timeout = int("timeout_s") else { return nil }
        var settings = Thumbnailer.Settings()
        settings.size = min(size, 8192)
        settings.quality = min(quality, 100)
        settings.maxPixels = maxPixels
        settings.maxDecodeBytes = maxDecodeBytes
        settings.vipsThreads = min(threads, 64)
        settings.videoTimeout = .seconds(timeout)
        self.init(type: String(type), settings: settings, memoryBytes: memory, timeoutSeconds: timeout,
                  scratch: values["scratch"].map(String.init))
        keepGPS = values["keep_gps"] == "1"
        factsOnly = values["facts_only"] == "1"
    }

    var settings: Thumbnailer.Settings {
        var settings = Thumbnailer.Settings()
        settings.size = size
        settings.quality = quality
        settings.maxPixels = maxPixels
        settings.maxDecodeBytes = maxDecodeBytes
        settings.vipsThreads = vipsThreads
        settings.videoTimeout = .seconds(timeoutSeconds)
        return settings
    }
}

/// The decoder's side: what a child of the zygote runs, once, on its connection.
public enum DecoderServer {
    /// Serves one request on `connection` (standard input, a socket), answering on
    /// `output`. Returns the exit status. Before the source is touched, the process is
    /// already under its limits: no new privileges (the zygote's, inherited), then
    /// RLIMIT_AS, RLIMIT_CPU and an alarm at the deadline from the request.
    static func serve(connection: Int32, output: Int32) -> Int32 {
        // assetd sends the request as soon as it has connected.
        alarm(30)
        var buffer = [UInt8](repeating: 0, count: DecoderProtocol.maxRequestBytes + 8)
        var received = 0
        var source: Int32 = -1
        // The descriptor arrives with the first bytes; the rest may come in more reads.
        while received < 8 || received < 8 + DecoderProtocol.length(buffer[4..<8]) {
            var descriptor: Int32 = -1
            let got = buffer[received...].withUnsafeMutableBytes {
                assetd_system_receive_with_descriptor(connection, $0.baseAddress, UInt($0.count), &descriptor)
            }
            if descriptor >= 0 {
                if source < 0 { source = descriptor } else { close(descriptor) }
            }
            guard got > 0 else { return 65 }
            received += got
            if received >= 8 {
                guard Array(buffer[0..<4]) == DecoderProtocol.requestMagic,
                      DecoderProtocol.length(buffer[4..<8]) <= DecoderProtocol.maxRequestBytes else { return 65 }
            }
        }
        let length = DecoderProtocol.length(buffer[4..<8])
        guard source >= 0, let request = DecodeRequest(decoding: Array(buffer[8..<(8 + length)])) else { return 65 }

        // The limits, before the first byte of the source is read. ffmpeg inherits them.
        // They fail closed: a child that cannot set one (a system-call filter that refuses
        // setrlimit, say) decodes nothing.
        let limits: [(resource: Int32, value: UInt64, name: String)] = [
            (ASSETD_LIMIT_ADDRESS_SPACE, UInt64(request.memoryBytes), "RLIMIT_AS"),
            (ASSETD_LIMIT_CPU_SECONDS, UInt64(request.timeoutSeconds + 1), "RLIMIT_CPU"),
            (ASSETD_LIMIT_CORE_BYTES, 0, "RLIMIT_CORE"),
            // A video's frame (a memfd, which RLIMIT_AS does not count) is the one file
            // written: bounded by the pixel limit.
            (ASSETD_LIMIT_FILE_BYTES, VideoFrame.frameBytes(maxPixels: request.maxPixels), "RLIMIT_FSIZE"),
        ]
        for limit in limits where assetd_system_limit(limit.resource, limit.value) != 0 {
            let reason = "the decoder cannot set \(limit.name): \(String(cString: strerror(errno)))"
            let line = Array("assetd-thumbnailer: \(reason)\n".utf8)
            _ = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
            return 71
        }
        alarm(UInt32(request.timeoutSeconds + 2))

        let answer: [UInt8]
        do throws(ThumbnailError) {
            let thumbnailer = try Thumbnailer(settings: request.settings)
            let scratch = request.scratch ?? "/tmp"
            if request.factsOnly {
                let facts = try thumbnailer.facts(ofDescriptor: source, detectedType: request.type, scratch: scratch,
                                                  keepGPS: request.keepGPS)
                let record = facts.encoded.count <= MediaMetadata.maxBytes ? facts.encoded : []
                let answer = DecoderProtocol.header([DecoderProtocol.media], record.count) + record
                    + DecoderProtocol.header([DecoderProtocol.factsDone], 0)
                return DecoderProtocol.write(output, answer) ? 0 : 74
            }
            let (jpeg, facts) = try thumbnailer.decode(ofDescriptor: source, detectedType: request.type, scratch: scratch,
                                                       keepGPS: request.keepGPS)
            guard jpeg.count <= DecoderProtocol.maxJPEGBytes else {
                throw ThumbnailError("the JPEG (\(jpeg.count) bytes) is over \(DecoderProtocol.maxJPEGBytes) bytes")
            }
            // Facts over the record's bound (they cannot be: each field is bounded) go as none.
            let record = facts.encoded.count <= MediaMetadata.maxBytes ? facts.encoded : []
            answer = DecoderProtocol.header([DecoderProtocol.media], record.count) + record
                + DecoderProtocol.header([DecoderProtocol.jpeg], jpeg.count) + jpeg
        } catch {
            // Not the content's fault (ffprobe did not start or ran out of time): no answer,
            // so that assetd counts a crash and tries again later instead of a refusal.
            if error.crash {
                let line = Array("assetd-thumbnailer: \(error.description.prefix(1024))\n".utf8)
                _ = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
                return 75
            }
            let reason = Array(String(error.description.prefix(1024)).utf8.prefix(DecoderProtocol.maxReasonBytes))
            answer = DecoderProtocol.header([DecoderProtocol.refused], reason.count) + reason
        }
        return DecoderProtocol.write(output, answer) ? 0 : 74
    }
}
