public import Logging

/// A log handler that escapes control characters (C0, DEL and C1: CR, LF, NEL and the
/// rest) in the message and in every metadata key and value before the handler it wraps
/// sees them, so that no input (a path nginx decoded, a file name, an S3 message) can
/// start a line of its own or hide one in the log. Text without control characters
/// passes through as it is.
public struct EscapingLogHandler: LogHandler {
    private var inner: any LogHandler

    public init(_ inner: any LogHandler) {
        self.inner = inner
        self.inner.metadata = Self.escape(inner.metadata)
    }

    public var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    // The logger's own metadata is escaped once, as it is set, not on every line.
    public var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = Self.escape(newValue) }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: Self.escape(key)] = newValue.map(Self.escape) }
    }

    public func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String,
                    file: String, function: String, line: UInt) {
        inner.log(level: level, message: "\(Self.escape(message.description))", metadata: explicit.map(Self.escape), source: source,
                  file: file, function: function, line: line)
    }

    /// The metadata with its keys and values escaped; the same dictionary when none needs it.
    static func escape(_ metadata: Logger.Metadata) -> Logger.Metadata {
        guard metadata.contains(where: { needsEscape($0.key) || needsEscape($0.value) }) else { return metadata }
        var escaped: Logger.Metadata = [:]
        for (key, value) in metadata { escaped[escape(key)] = escape(value) }
        return escaped
    }

    private static func needsEscape(_ value: Logger.Metadata.Value) -> Bool {
        switch value {
        case .string(let text): needsEscape(text)
        case .stringConvertible: true
        case .array(let values): values.contains(where: needsEscape)
        case .dictionary(let values): values.contains { needsEscape($0.key) || needsEscape($0.value) }
        }
    }

    private static func needsEscape(_ text: String) -> Bool {
        text.utf8.contains { $0 < 0x20 || $0 == 0x7f || $0 == 0xc2 }  // 0xc2 leads C1 (U+0080-U+009F) and some Latin-1
    }

    static func escape(_ value: Logger.Metadata.Value) -> Logger.Metadata.Value {
        switch value {
        case .string(let text): .string(escape(text))
        case .stringConvertible(let convertible): .string(escape(convertible.description))
        case .array(let values): .array(values.map(escape))
        case .dictionary(let values): .dictionary(values.reduce(into: [:]) { $0[escape($1.key)] = escape($1.value) })
        }
    }

    /// `text` with each control character written as `\n`, `\r`, `\t` or `\u{XX}`.
    static func escape(_ text: String) -> String {
        guard needsEscape(text), text.unicodeScalars.contains(where: isControl) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where isControl(scalar): out += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7f...0x9f).contains(scalar.value)
    }
}
