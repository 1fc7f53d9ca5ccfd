internal import CMagic
import Glibc
import Synchronization

/// Why detection failed; `description` is for the log.
public struct MediaError: Error, Sendable, CustomStringConvertible {
    public let description: String
}

/// Detects a file's MIME type from its content with libmagic (MAGIC_MIME_TYPE).
///
/// It runs in assetd on bytes an uploader chose, so libmagic runs only the checks that
/// can name a type assetd stores (images, video, PDF: all from its magic database) or
/// name the content it refuses, and reads at most `maxBytes` of a file.
///
/// A `magic_t` is not thread-safe, so each call borrows one from a pool: a thread never
/// shares a handle with another while it uses it. Handles are made on demand (loading
/// the compiled magic database) and kept.
public final class ContentDetector: Sendable {
    private struct Handle: @unchecked Sendable {
        let raw: OpaquePointer
    }

    private let pool = Mutex<[Handle]>([])

    public init() throws {
        // Load one handle now, so that a missing magic database stops start-up.
        let handle = try Self.open()
        pool.withLock { $0.append(handle) }
    }

    deinit {
        pool.withLock { handles in
            for handle in handles { magic_close(handle.raw) }
        }
    }

    /// The most of a file libmagic reads: the 64 KiB the content checks of uploads read, so
    /// that a thumbnail's source is judged by the same bytes (libmagic's default is 7 MiB).
    public static let maxBytes = 64 * 1024

    /// libmagic's own parsers that cannot name a stored type: OLE2/CDF documents, ELF
    /// details, tar, compressed files (not opened anyway), application types, CSV and
    /// JSON. Their inputs still get a type from the magic database (a tar, an ELF file) or
    /// from the text checks (JSON and CSV are text/plain), and none of them is accepted.
    static let skippedParsers = MAGIC_NO_CHECK_CDF | MAGIC_NO_CHECK_ELF | MAGIC_NO_CHECK_TAR | MAGIC_NO_CHECK_COMPRESS
        | MAGIC_NO_CHECK_APPTYPE | MAGIC_NO_CHECK_CSV | MAGIC_NO_CHECK_JSON

    private static func open() throws -> Handle {
        guard let raw = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR | skippedParsers) else {
            throw MediaError(description: "libmagic could not allocate a handle")
        }
        var bytesMax = maxBytes
        guard magic_setparam(raw, MAGIC_PARAM_BYTES_MAX, &bytesMax) == 0 else {
            magic_close(raw)
            throw MediaError(description: "libmagic refused its read limit (MAGIC_PARAM_BYTES_MAX)")
        }
        guard magic_load(raw, nil) == 0 else {
            let message = magic_error(raw).map { String(cString: $0) } ?? "unknown error"
            magic_close(raw)
            throw MediaError(description: "libmagic cannot load its database: \(message) (is libmagic-mgc installed?)")
        }
        return Handle(raw: raw)
    }

    /// Runs `body` with a handle of the pool's, or a new one, kept afterwards.
    private func withHandle<T>(_ body: (OpaquePointer) throws -> T) throws -> T {
        let handle = try pool.withLock { $0.popLast() } ?? Self.open()
        defer { pool.withLock { $0.append(handle) } }
        return try body(handle.raw)
    }

    /// libmagic's read limit as a handle has it (MAGIC_PARAM_BYTES_MAX), for tests.
    func bytesMax() throws -> Int {
        try withHandle { handle in
            var value = 0
            guard magic_getparam(handle, MAGIC_PARAM_BYTES_MAX, &value) == 0 else {
                throw MediaError(description: "libmagic has no read limit to tell")
            }
            return value
        }
    }

    /// The MIME type of the open file `descriptor`, read from its start (its first `maxBytes`).
    public func mimeType(ofFile descriptor: Int32) throws -> String {
        guard lseek(descriptor, 0, SEEK_SET) == 0 else {
            throw MediaError(description: "cannot rewind the spooled file: errno \(errno)")
        }
        // libmagic may close the descriptor it is given: give it a duplicate.
        let copy = dup(descriptor)
        guard copy >= 0 else { throw MediaError(description: "cannot duplicate the spooled file: errno \(errno)") }
        defer { close(copy) }
        return try withHandle { try Self.result(magic_descriptor($0, copy), of: $0) }
    }

    /// The MIME type of bytes in memory.
    public func mimeType(of bytes: UnsafeRawBufferPointer) throws -> String {
        try withHandle { try Self.result(magic_buffer($0, bytes.baseAddress, bytes.count), of: $0) }
    }

    /// libmagic's answer, or its error.
    private static func result(_ text: UnsafePointer<CChar>?, of handle: OpaquePointer) throws -> String {
        guard let text else {
            let message = magic_error(handle).map { String(cString: $0) } ?? "unknown error"
            throw MediaError(description: "libmagic failed: \(message)")
        }
        return String(cString: text)
    }
}
