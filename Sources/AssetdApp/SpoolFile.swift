import Foundation
import Glibc
import Hashing

/// A private temporary file that an upload streams into, with its SHA-256 and MD5
/// computed on the way. The file is unlinked as soon as it is created, so it disappears
/// with its descriptor whatever happens: an error, a refusal or a crash.
final class SpoolFile {
    let descriptor: Int32
    private(set) var size = 0
    private let sha256 = Digest(.sha256)
    private let md5 = Digest(.md5)

    init(directory: String) throws {
        var template = Array("\(directory)/upload-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            throw SpoolError(description: "cannot create a spool file in \(directory): \(String(cString: strerror(errno)))")
        }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        descriptor = fd
    }

    deinit { close(descriptor) }

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
        sha256.update(bytes)
        md5.update(bytes)
        size += bytes.count
    }

    /// The digests; call once, when the file is complete.
    func digests() -> (sha256Hex: String, md5: [UInt8]) {
        (Encoding.hex(sha256.finalize()), md5.finalize())
    }
}

struct SpoolError: Error, CustomStringConvertible {
    let description: String
}
