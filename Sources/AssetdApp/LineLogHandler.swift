import Glibc
public import Logging
import Locking
import Synchronization

/// The process's log handler: one line per event on a file descriptor (standard error,
/// which journald or the dev stack's log file reads), with every control character
/// escaped, in the layout of swift-log's `StreamLogHandler`, which sysadmins and the tests
/// already read:
///
///     2026-12-01T05:38:00+0000 info assetd: duration_ms=0.21 route=/s3/get-upload-url [AssetdApp] request
///
/// It exists for speed: every request writes an access-log line, and StreamLogHandler
/// spent about a quarter of a presign's instructions on it (`bench/callgrind-presign.sh`).
/// It asked `localtime` for every line (which re-reads the time zone each call), built the
/// line through several intermediate strings, and wrote it with `fwrite` plus `fflush`
/// under the FILE lock. Here the timestamp is formatted once a second, the line is built
/// in one byte buffer, and one `write(2)` sends it, so lines of different threads never
/// interleave (a pipe or an O_APPEND file takes a write of up to 4 KiB whole).
///
/// Escaping: control characters (C0, DEL and C1: CR, LF, NEL and the rest) in the message
/// and in every metadata key and value are written as `\n`, `\r`, `\t` or `\u{XX}`, so
/// that no input (a path nginx decoded, a file name, an S3 message) can start a line of its
/// own or hide one in the log. Text without them is copied as it is.
public struct LineLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    /// The label, escaped once: every line carries it.
    private let escapedLabel: [UInt8]
    let descriptor: Int32
    let stallLimit: Int32

    /// `descriptor` 2 is standard error. `stallLimitMilliseconds`: how long one line waits
    /// for room in a descriptor that would block (see `writeLine`) before it is given up.
    public init(label: String, descriptor: Int32 = 2, stallLimitMilliseconds: Int32 = 100) {
        escapedLabel = Array(Self.escape(label).utf8)
        self.descriptor = descriptor
        stallLimit = stallLimitMilliseconds
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        writeLine(level: event.level, source: event.source, message: event.message.description) { line in
            Self.appendFields(of: metadata, overriddenBy: event.metadata, to: &line)
        }
    }

    /// Writes one line whose fields `appendFields` writes (` key=value`, sorted by key,
    /// escaped, the handler's own metadata merged in: the caller's task), without a
    /// `LogEvent` or a metadata dictionary: the access log's path (`AccessLog`). The
    /// caller checks the level.
    func writeLine(level: Logger.Level, source: String, message: String, appendFields: (inout [UInt8]) -> Void) {
        var line: [UInt8] = []
        line.reserveCapacity(256)
        appendLine(level: level, source: source, message: message, appendFields: appendFields, to: &line)
        line.withUnsafeBytes { Self.write(line: $0, to: descriptor, stallLimit: stallLimit) }
    }

    /// The line `writeLine` writes, newline included, appended to `line` (an access-log
    /// buffer, see `AccessLogBuffer`).
    func appendLine(level: Logger.Level, source: String, message: String, appendFields: (inout [UInt8]) -> Void,
                    to line: inout [UInt8]) {
        Timestamp.append(to: &line)
        appendHead(level: level, to: &line)
        appendFields(&line)
        Self.appendTail(source: source, message: message, to: &line)
    }

    /// What a line holds between its timestamp and its fields: ` level label:`.
    private func appendHead(level: Logger.Level, to line: inout [UInt8]) {
        line.append(UInt8(ascii: " "))
        line.append(contentsOf: level.rawValue.utf8)
        if !escapedLabel.isEmpty {
            line.append(UInt8(ascii: " "))
            line.append(contentsOf: escapedLabel)
        }
        line.append(UInt8(ascii: ":"))
    }

    /// What a line holds after its fields: ` [source] message` and the newline.
    private static func appendTail(source: String, message: String, to line: inout [UInt8]) {
        line.append(contentsOf: " [".utf8)
        appendEscaped(source, to: &line)
        line.append(contentsOf: "] ".utf8)
        appendEscaped(message, to: &line)
        line.append(UInt8(ascii: "\n"))
    }

    /// The bytes of the lines of one level, source and message around their timestamp and
    /// fields, made once by `lineParts` for a caller that writes many such lines (the
    /// access log: escaping and appending the same source and message a request cost ~600
    /// instructions, callgrind).
    struct LineParts: Sendable {
        let head: [UInt8]
        let tail: [UInt8]
    }

    func lineParts(level: Logger.Level, source: String, message: String) -> LineParts {
        var head: [UInt8] = [], tail: [UInt8] = []
        appendHead(level: level, to: &head)
        Self.appendTail(source: source, message: message, to: &tail)
        return LineParts(head: head, tail: tail)
    }

    /// `appendLine` with the level, source and message of `parts`: the same bytes.
    func appendLine(_ parts: LineParts, appendFields: (inout [UInt8]) -> Void, to line: inout [UInt8]) {
        Timestamp.append(to: &line)
        line.append(contentsOf: parts.head)
        appendFields(&line)
        line.append(contentsOf: parts.tail)
    }

    /// `writeLine` with the level, source and message of `parts`, in the calling thread's
    /// spare line buffer (`spareLine`).
    func writeLine(_ parts: LineParts, appendFields: (inout [UInt8]) -> Void) {
        // Taken out of the thread's slot while in use (a line that logged another would
        // find the slot empty and make its own), put back after the write.
        var line = Self.spareLine.withValue { spare in
            defer { spare = [] }
            return spare
        }
        line.removeAll(keepingCapacity: true)
        line.reserveCapacity(256)
        appendLine(parts, appendFields: appendFields, to: &line)
        line.withUnsafeBytes { Self.write(line: $0, to: descriptor, stallLimit: stallLimit) }
        if line.capacity <= Self.spareLineLimit { Self.spareLine.withValue { $0 = line } }
    }

    /// Each thread's buffer for the access lines it writes (`writeLine(_:appendFields:)`),
    /// kept from one line to the next rather than allocated and freed a request (~320
    /// instructions, callgrind). One line's worth, at most `spareLineLimit` bytes kept.
    private static let spareLine = PerThread<[UInt8]> { [] }
    static let spareLineLimit = 4096

    @available(*, deprecated, renamed: "log(event:)")
    public func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String,
                    file: String, function: String, line: UInt) {
        log(event: LogEvent(level: level, message: message, metadata: metadata, source: source, file: file,
                            function: function, line: line))
    }

    /// ` key=value` for each field, sorted by key; an explicit field replaces the logger's own.
    static func appendFields(of base: Logger.Metadata, overriddenBy explicit: Logger.Metadata?, to line: inout [UInt8]) {
        let fields: Logger.Metadata
        if let explicit, !explicit.isEmpty {
            fields = base.isEmpty ? explicit : base.merging(explicit) { $1 }
        } else {
            fields = base
        }
        for key in fields.keys.sorted() {
            line.append(UInt8(ascii: " "))
            appendEscaped(key, to: &line)
            line.append(UInt8(ascii: "="))
            switch fields[key]! {
            case .string(let text): appendEscaped(text, to: &line)
            case let other: appendEscaped(other.description, to: &line)
            }
        }
    }

    /// `text`'s UTF-8 with each control character written as `\n`, `\r`, `\t` or `\u{XX}`.
    static func appendEscaped(_ text: String, to line: inout [UInt8]) {
        var text = text
        text.withUTF8 { bytes in
            // Control characters are bytes below 0x20, 0x7F, and U+0080-U+009F (C2 80-C2 9F).
            guard bytes.contains(where: { $0 < 0x20 || $0 == 0x7f || $0 == 0xc2 }) else {
                line.append(contentsOf: bytes)
                return
            }
            var index = 0
            while index < bytes.count {
                let byte = bytes[index]
                if byte == 0xc2, index + 1 < bytes.count, (0x80...0x9f).contains(bytes[index + 1]) {
                    appendEscape(UInt32(bytes[index + 1]), to: &line)
                    index += 2
                    continue
                }
                switch byte {
                case 0x0a: line.append(contentsOf: "\\n".utf8)
                case 0x0d: line.append(contentsOf: "\\r".utf8)
                case 0x09: line.append(contentsOf: "\\t".utf8)
                case ..<0x20, 0x7f: appendEscape(UInt32(byte), to: &line)
                default: line.append(byte)
                }
                index += 1
            }
        }
    }

    private static func appendEscape(_ value: UInt32, to line: inout [UInt8]) {
        line.append(contentsOf: "\\u{".utf8)
        line.append(contentsOf: String(value, radix: 16).utf8)
        line.append(UInt8(ascii: "}"))
    }

    /// `text` as `appendEscaped` writes it.
    static func escape(_ text: String) -> String {
        var line: [UInt8] = []
        appendEscaped(text, to: &line)
        return String(decoding: line, as: UTF8.self)
    }

    /// The descriptor whose last line was cut short (-1: none): the next line written to it
    /// begins with a newline, so that the cut one ends there and the next is whole.
    private static let torn = Atomic<Int32>(-1)

    /// One `write(2)` sends a line on the usual path. A partial write (a line longer than a
    /// pipe takes at once, a signal, a full disk) is continued until the line is complete,
    /// EINTR retried; a descriptor that would block (EAGAIN: a non-blocking pipe that is
    /// full) is waited for, up to `stallLimit` ms for the line. A line that cannot be
    /// completed is given up (a log is not a reason to fail a request), and when part of it
    /// went out, the next line on the descriptor ends it first.
    static func write(line bytes: UnsafeRawBufferPointer, to descriptor: Int32, stallLimit: Int32) {
        if torn.load(ordering: .relaxed) == descriptor,
           torn.compareExchange(expected: descriptor, desired: -1, ordering: .relaxed).exchanged {
            var newline = UInt8(ascii: "\n")
            if writeAll(UnsafeRawBufferPointer(start: &newline, count: 1), to: descriptor, stallLimit: stallLimit) == 0 {
                torn.store(descriptor, ordering: .relaxed)
                return  // still stuck: this line would only join the cut one
            }
        }
        let sent = writeAll(bytes, to: descriptor, stallLimit: stallLimit)
        if sent > 0 && sent < bytes.count { torn.store(descriptor, ordering: .relaxed) }
    }

    /// Writes `bytes` as far as it can; returns how many went out.
    private static func writeAll(_ bytes: UnsafeRawBufferPointer, to descriptor: Int32, stallLimit: Int32) -> Int {
        var offset = 0
        var deadline: ContinuousClock.Instant?
        while offset < bytes.count {
            let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written > 0 {
                offset += written
                continue
            }
            guard written < 0 else { break }
            let error = errno
            if error == EINTR { continue }
            guard error == EAGAIN || error == EWOULDBLOCK else { break }
            // Full for now: wait for room, the line's stall limit at most in all.
            let now = ContinuousClock.now
            let end = deadline ?? now + .milliseconds(Int(stallLimit))
            deadline = end
            guard now < end else { break }
            let left = (end - now).components
            let milliseconds = Int32(min(Int64(stallLimit), left.seconds * 1000 + left.attoseconds / 1_000_000_000_000_000 + 1))
            var waiting = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
            if poll(&waiting, 1, milliseconds) < 0 && errno != EINTR { break }
        }
        return offset
    }

    /// `2026-12-01T05:38:00+0000` in local time, formatted once for each second.
    enum Timestamp {
        /// Each thread's last second formatted: a worker's own, not one behind a lock that
        /// every worker takes for every line (as SigV4's `AmzTime`).
        private static let cache = PerThread<(second: time_t, text: [UInt8])> { (-1, []) }

        static func append(to line: inout [UInt8]) {
            let now = time(nil)
            cache.withValue { cached in
                if cached.second != now { cached = (now, format(now)) }
                line.append(contentsOf: cached.text)
            }
        }

        static func format(_ second: time_t) -> [UInt8] {
            var second = second
            var local = tm()
            // localtime_r reads the time zone once per process; localtime re-reads it per call.
            guard localtime_r(&second, &local) != nil else { return Array("<unknown>".utf8) }
            var buffer = [CChar](repeating: 0, count: 64)
            let count = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &local)
            return buffer.prefix(count).map { UInt8(bitPattern: $0) }
        }
    }
}
