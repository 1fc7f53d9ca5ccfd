internal import CSystem
import Foundation
import Glibc
import Hashing

/// A private temporary file that an upload streams into, with its SHA-256 and MD5
/// computed on the way. The file has no name (O_TMPFILE; or, where the file system cannot
/// do that, it is unlinked as soon as it is made), so it disappears with its descriptor
/// whatever happens: an error, a refusal or a crash.
///
/// The descriptor is closed on a background queue: closing the last descriptor of an
/// unlinked file frees its pages there and then (about 1 ms for 10 MB), which would
/// otherwise come before the answer.
///
/// Small files are digested inline. From `backgroundDigestBytes` on, the digests follow
/// the file on threads of their own (FileDigests), so that receiving is not held up by
/// MD5, the slowest stage of a large upload.
final class SpoolFile {
    let descriptor: Int32
    private(set) var size = 0
    private let digester: Digester

    private enum Digester {
        case inline(sha256: Digest, md5: Digest)
        case background(FileDigests)
    }

    static let backgroundDigestBytes = 256 * 1024

    /// `expectedSize`: the request's Content-Length, when it has one.
    init(directory: String, expectedSize: Int?) throws {
        let fd = try Self.makeNameless(in: directory)
        descriptor = fd
        if let expectedSize, expectedSize >= Self.backgroundDigestBytes {
            digester = .background(FileDigests(descriptor: fd, algorithms: [.sha256, .md5]))
        } else {
            digester = .inline(sha256: Digest(.sha256), md5: Digest(.md5))
        }
    }

    deinit {
        // The digest threads read this descriptor: they stop before it closes.
        if case .background(let digests) = digester { digests.cancel() }
        let descriptor = descriptor
        Self.closer.async { close(descriptor) }
    }

    /// Closes finished spool files, one at a time, off the request's path.
    private static let closer = DispatchQueue(label: "assetd.spool-closer", qos: .utility)

    /// A new file in `directory` that no other process can open: O_TMPFILE, or, where the
    /// file system has none, a new name opened exclusively and unlinked at once.
    private static func makeNameless(in directory: String) throws -> Int32 {
        // O_EXCL: it can never be linked into the file system (linkat via /proc) either.
        let fd = assetd_system_open_tmpfile(directory, O_RDWR | O_EXCL | O_CLOEXEC, 0o600)
        if fd >= 0 { return fd }
        guard errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL else {
            throw SpoolError(description: "cannot create a spool file in \(directory): \(String(cString: strerror(errno)))")
        }
        // As mkstemp, but close-on-exec from the start (mkostemp is not imported): a
        // thread spawning ffmpeg meanwhile must not pass the upload on to it.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<100 {
            let path = "\(directory)/upload-\(String(generator.next(), radix: 36))"
            let named = open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0o600)
            if named >= 0 {
                unlink(path)
                return named
            }
            guard errno == EEXIST else { break }
        }
        throw SpoolError(description: "cannot create a spool file in \(directory): \(String(cString: strerror(errno)))")
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw SpoolError(description: "cannot write the spool file: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
        size += bytes.count
        switch digester {
        case .inline(let sha256, let md5):
            sha256.update(bytes)
            md5.update(bytes)
        case .background(let digests):
            digests.advance(to: size)
        }
    }

    /// The digests; call once, when the file is complete.
    func digests() throws -> (sha256Hex: String, md5: [UInt8]) {
        switch digester {
        case .inline(let sha256, let md5):
            return (Encoding.hex(sha256.finalize()), md5.finalize())
        case .background(let digests):
            do {
                let both = try digests.finish()
                return (Encoding.hex(both[0]), both[1])
            } catch {
                throw SpoolError(description: "\(error)")
            }
        }
    }
}

struct SpoolError: Error, CustomStringConvertible {
    let description: String
}
