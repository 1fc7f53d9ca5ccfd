internal import CMagic
import Glibc
import Synchronization

/// Why detection failed; `description` is for the log.
public struct MediaError: Error, Sendable, CustomStringConvertible {
    public let description: String
}

/// Detects a file's MIME type from its content with libmagic (MAGIC_MIME_TYPE).
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

    private static func open() throws -> Handle {
        guard let raw = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR) else {
            throw MediaError(description: "libmagic could not allocate a handle")
        }
        guard magic_load(raw, nil) == 0 else {
            let message = magic_error(raw).map { String(cString: $0) } ?? "unknown error"
            magic_close(raw)
            throw MediaError(description: "libmagic cannot load its database: \(message) (is libmagic-mgc installed?)")
        }
        return Handle(raw: raw)
    }

    /// The MIME type of the open file `descriptor`, read from its start.
    public func mimeType(ofFile descriptor: Int32) throws -> String {
        let handle = try pool.withLock { $0.popLast() } ?? Self.open()
        defer { pool.withLock { $0.append(handle) } }
        guard lseek(descriptor, 0, SEEK_SET) == 0 else {
            throw MediaError(description: "cannot rewind the spooled file: errno \(errno)")
        }
        // libmagic may close the descriptor it is given: give it a duplicate.
        let copy = dup(descriptor)
        guard copy >= 0 else { throw MediaError(description: "cannot duplicate the spooled file: errno \(errno)") }
        defer { close(copy) }
        guard let result = magic_descriptor(handle.raw, copy) else {
            let message = magic_error(handle.raw).map { String(cString: $0) } ?? "unknown error"
            throw MediaError(description: "libmagic failed: \(message)")
        }
        return String(cString: result)
    }

    /// The MIME type of bytes in memory.
    public func mimeType(of bytes: UnsafeRawBufferPointer) throws -> String {
        let handle = try pool.withLock { $0.popLast() } ?? Self.open()
        defer { pool.withLock { $0.append(handle) } }
        guard let result = magic_buffer(handle.raw, bytes.baseAddress, bytes.count) else {
            let message = magic_error(handle.raw).map { String(cString: $0) } ?? "unknown error"
            throw MediaError(description: "libmagic failed: \(message)")
        }
        return String(cString: result)
    }
}
