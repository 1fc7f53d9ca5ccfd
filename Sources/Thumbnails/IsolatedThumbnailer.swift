public import MediaInfo
import CSystem
import Glibc
public import Logging

/// Why the decoder made no thumbnail.
public enum DecodeFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// The decoder looked at the content and refused it (the decode budget, a corrupt
    /// file, a loader mismatch): the same bytes fail the same way again. Final.
    case refused(String)
    /// The decoder died (a crash, SIGKILL, its memory or CPU limit) or ran past its
    /// deadline on this file: this attempt is lost, another may succeed.
    case crashed(String)
    /// The decoder was not there to try the file (its socket unreachable, no socket to
    /// be made, the request not taken, the source not reopened): no fault of the file's,
    /// and nothing learnt about it.
    case unavailable(String)

    public var description: String {
        switch self {
        case .refused(let reason), .crashed(let reason), .unavailable(let reason): reason
        }
    }
}

/// A decoder's answer: the JPEG, and what the same pass learned about the file (checked
/// by the parent; nil when the decoder sent none).
public struct DecodedThumbnail: Sendable, Equatable {
    public var jpeg: [UInt8]
    public var facts: MediaMetadata?

    public init(jpeg: [UInt8], facts: MediaMetadata?) {
        self.jpeg = jpeg
        self.facts = facts
    }
}

/// What the thumbnail worker needs: the JPEG of an open file of a detected type, and its
/// facts; and the facts alone, for the media backfill.
public protocol ThumbnailDecoding: Sendable {
    func thumbnail(ofFile descriptor: Int32, detectedType: String) throws(DecodeFailure) -> DecodedThumbnail
    func facts(ofFile descriptor: Int32, detectedType: String) throws(DecodeFailure) -> MediaMetadata
}

extension ThumbnailDecoding {
    /// A decoder without a facts-only mode: the facts of a whole thumbnail pass.
    public func facts(ofFile descriptor: Int32, detectedType: String) throws(DecodeFailure) -> MediaMetadata {
        try thumbnail(ofFile: descriptor, detectedType: detectedType).facts ?? MediaMetadata()
    }
}

/// Thumbnails made by `assetd-thumbnailer`, the decoder zygote, which holds no secret and
/// forks a fresh child for each task (empty environment, no descriptor but its connection,
/// its limits, killed at the deadline): either the systemd unit behind
/// `assetd-thumbnailer.socket` (its own dynamic user, no network, no view of assetd's
/// files), or assetd's own child (ZygoteProcess). See DecoderZygote and DecoderProtocol.
public final class IsolatedThumbnailer: ThumbnailDecoding {
    public enum Endpoint: Sendable, Equatable {
        /// Runs this executable as the zygote, a child of assetd's, restarted when it ends.
        case spawn(executable: String)
        /// Connects to this socket (ASSETD_THUMBNAILER_SOCKET): the unit's zygote.
        case socket(path: String)
    }

    public struct Settings: Sendable {
        public var endpoint: Endpoint
        public var thumbnail: Thumbnailer.Settings
        /// RLIMIT_AS of the decoder and of ffmpeg under it (ASSETD_THUMBNAILER_MAX_MEMORY).
        public var memoryBytes: Int
        /// The wall-clock deadline of one task (ASSETD_THUMBNAIL_TIMEOUT); also its RLIMIT_CPU.
        public var timeoutSeconds: Int
        /// A private directory (0700): the zygote's socket and a video's frame when assetd
        /// runs the zygote; unused under systemd (the unit's own /tmp).
        public var scratch: String?
        /// ASSETD_KEEP_GPS: the decoder reads GPS coordinates, and assetd keeps them.
        public var keepGPS: Bool

        public init(endpoint: Endpoint, thumbnail: Thumbnailer.Settings = .init(), memoryBytes: Int = 1 << 30,
                    timeoutSeconds: Int = 60, scratch: String? = nil, keepGPS: Bool = false) {
            self.keepGPS = keepGPS
            self.endpoint = endpoint
            self.thumbnail = thumbnail
            self.memoryBytes = memoryBytes
            self.timeoutSeconds = timeoutSeconds
            self.scratch = scratch
        }
    }

    public let settings: Settings
    private let socketPath: String
    private let zygote: ZygoteProcess?

    /// The zygote's pid when assetd runs it (for tests and operators); nil under systemd.
    public var zygotePID: Int32? { zygote?.pid }

    public init(settings: Settings, logger: Logger = Logger(label: "assetd.thumbnailer")) throws(DecodeFailure) {
        self.settings = settings
        switch settings.endpoint {
        case .socket(let path):
            socketPath = path
            zygote = nil
        case .spawn(let executable):
            guard let scratch = settings.scratch else { throw .unavailable("the decoder needs a scratch directory for its socket") }
            socketPath = scratch + "/decoder.sock"
            zygote = try ZygoteProcess(executable: executable, socketPath: socketPath, logger: logger)
        }
    }

    deinit {
        zygote?.stop()
    }

    /// `assetd-thumbnailer` beside the running executable (the build directory, /usr/bin).
    public static func executableBesideSelf() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return "/usr/bin/assetd-thumbnailer" }
        let path = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        return directory + "/assetd-thumbnailer"
    }

    public func thumbnail(ofFile descriptor: Int32, detectedType: String) throws(DecodeFailure) -> DecodedThumbnail {
        try exchange(descriptor, detectedType: detectedType, factsOnly: false)
    }

    /// The facts-only mode (`facts_only=1`): the child reads the header, decodes no pixel,
    /// makes no thumbnail, and answers `M` then `D`.
    public func facts(ofFile descriptor: Int32, detectedType: String) throws(DecodeFailure) -> MediaMetadata {
        guard let facts = try exchange(descriptor, detectedType: detectedType, factsOnly: true).facts else {
            throw .crashed("the decoder sent no media facts")
        }
        return facts
    }

    /// One task on a fresh child: the request, then its answer, checked strictly.
    private func exchange(_ descriptor: Int32, detectedType: String, factsOnly: Bool) throws(DecodeFailure) -> DecodedThumbnail {
        // A read-only descriptor of its own, which the decoder's user may open: the file's
        // mode allows reading, and its directory (assetd's, 0700) lets no one reach it by
        // path, so only a holder of the descriptor can.
        let source = Glibc.open("/proc/self/fd/\(descriptor)", O_RDONLY | O_CLOEXEC)
        guard source >= 0 else { throw .unavailable("cannot reopen the source read-only: errno \(errno)") }
        defer { close(source) }
        fchmod(source, 0o644)

        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(settings.timeoutSeconds)
        // A fresh child of the zygote for this connection; closing it ends that child.
        let connection = try Self.connect(to: socketPath, timeoutSeconds: settings.timeoutSeconds)
        defer { close(connection) }
        var request = DecodeRequest(type: detectedType, settings: settings.thumbnail, memoryBytes: settings.memoryBytes,
                                    timeoutSeconds: settings.timeoutSeconds, scratch: zygote == nil ? nil : settings.scratch)
        request.keepGPS = settings.keepGPS
        request.factsOnly = factsOnly
        let body = request.encoded
        let message = DecoderProtocol.header(DecoderProtocol.requestMagic, body.count) + body
        let sent = message.withUnsafeBytes { assetd_system_send_with_descriptor(connection, $0.baseAddress, UInt($0.count), source) }

        var timedOut = false
        var answer: Result<[UInt8], DecodeFailure>
        var facts: MediaMetadata?
        var header = sent == message.count ? DecoderProtocol.read(connection, 5, deadline: deadline, timedOut: &timedOut) : nil
        // The facts come first, once, bounded, and must parse strictly: a child that sends
        // anything else is treated as one that broke (the attempt is lost).
        var factsMalformed = false
        if let first = header, first[0] == DecoderProtocol.media {
            let length = DecoderProtocol.length(first[1..<5])
            if length <= MediaMetadata.maxBytes,
               let payload = length == 0 ? [] : DecoderProtocol.read(connection, length, deadline: deadline, timedOut: &timedOut),
               let parsed = MediaMetadata(decoding: payload, keepGPS: settings.keepGPS) {
                facts = parsed
                header = DecoderProtocol.read(connection, 5, deadline: deadline, timedOut: &timedOut)
            } else {
                factsMalformed = true
            }
        }
        if sent != message.count {
            answer = .failure(.unavailable("the decoder took no request: errno \(errno)"))
        } else if factsMalformed {
            answer = .failure(.crashed("the decoder's media facts are malformed"))
        } else if let header {
            let (kind, length) = (header[0], DecoderProtocol.length(header[1..<5]))
            // The success record of the mode asked for: a JPEG, or (facts only) D, empty.
            let success = factsOnly ? DecoderProtocol.factsDone : DecoderProtocol.jpeg
            let limit = kind == DecoderProtocol.jpeg ? DecoderProtocol.maxJPEGBytes : kind == success ? 0 : DecoderProtocol.maxReasonBytes
            if ![success, DecoderProtocol.refused, DecoderProtocol.ended].contains(kind) || length > limit
                || (kind == DecoderProtocol.jpeg && length == 0) || (kind == DecoderProtocol.factsDone && facts == nil) {
                answer = .failure(.crashed("the decoder's answer is malformed"))
            } else if kind == DecoderProtocol.factsDone {
                answer = .success([])
            } else if let payload = DecoderProtocol.read(connection, length, deadline: deadline, timedOut: &timedOut) {
                let text = String(decoding: payload, as: UTF8.self)
                switch kind {
                // A JPEG whole, from SOI to EOI: a child killed while it wrote leaves a
                // truncated payload, which the zygote's own "ended" record may follow.
                case DecoderProtocol.jpeg where payload.starts(with: [0xFF, 0xD8]) && payload.suffix(2).elementsEqual([0xFF, 0xD9]):
                    answer = .success(payload)
                case DecoderProtocol.jpeg: answer = .failure(.crashed("the decoder's JPEG is cut short or malformed"))
                case DecoderProtocol.refused: answer = .failure(.refused(text))
                default: answer = .failure(.crashed("the decoder closed the connection without an answer: \(text)"))
                }
            } else {
                answer = .failure(.crashed("the decoder's answer broke off"))
            }
        } else {
            answer = .failure(.crashed("the decoder closed the connection without an answer"))
        }
        if timedOut {
            // Closing the connection (the defer) makes the zygote kill the child; the child's
            // own alarm and CPU limit end it too.
            answer = .failure(.crashed("the decoder ran past its deadline (\(settings.timeoutSeconds) s) and was killed"))
        }
        return DecodedThumbnail(jpeg: try answer.get(), facts: facts)
    }

    /// Whether the zygote's socket (ASSETD_THUMBNAILER_SOCKET) accepts a connection, for
    /// check-config: nil when it does, else why not. The connection is closed at once,
    /// with no request: the zygote's child for it reads nothing and ends, decoding nothing.
    public static func probe(socket path: String, timeoutSeconds: Int = 5) -> String? {
        do throws(DecodeFailure) {
            close(try connect(to: path, timeoutSeconds: timeoutSeconds))
            return nil
        } catch {
            return error.description
        }
    }

    /// A connection to the zygote. The connect and the request's send give up after the
    /// task's deadline (SO_SNDTIMEO, which a Unix socket's connect honours too): a zygote
    /// that is stopped, or whose backlog is full, must cost the task, not a thread forever.
    private static func connect(to path: String, timeoutSeconds: Int) throws(DecodeFailure) -> Int32 {
        let connection = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard connection >= 0 else { throw .unavailable("cannot make a socket: errno \(errno)") }
        var timeout = timeval(tv_sec: max(1, timeoutSeconds), tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        guard ZygoteProcess.fill(&address, path: path) else {
            close(connection)
            throw .unavailable("the decoder's socket path is too long")
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(connection, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let error = errno
            close(connection)
            throw .unavailable("cannot reach the decoder at \(path): \(String(cString: strerror(error)))")
        }
        return connection
    }
}
