internal import COpenSSL

/// A streaming SHA-256 or MD5 digest over libcrypto's EVP interface.
///
/// Feed it with `update(_:)` as bytes arrive and read the result once with `finalize()`.
/// Not thread-safe: one object per stream.
public final class Digest {
    public enum Algorithm: Sendable {
        case sha256
        case md5

        var size: Int {
            switch self {
            case .sha256: 32
            case .md5: 16
            }
        }
    }

    private let context: OpaquePointer
    public let algorithm: Algorithm

    public init(_ algorithm: Algorithm) {
        guard let context = EVP_MD_CTX_new() else {
            fatalError("libcrypto could not allocate a digest context (out of memory)")
        }
        let md = switch algorithm {
        case .sha256: EVP_sha256()
        case .md5: EVP_md5()
        }
        guard EVP_DigestInit_ex(context, md, nil) == 1 else {
            fatalError("libcrypto refused to initialise \(algorithm)")
        }
        self.context = context
        self.algorithm = algorithm
    }

    deinit {
        EVP_MD_CTX_free(context)
    }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        EVP_DigestUpdate(context, base, bytes.count)
    }

    @inlinable
    public func update<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        let done: Void? = bytes.withContiguousStorageIfAvailable { update(UnsafeRawBufferPointer($0)) }
        if done == nil {
            Array(bytes).withUnsafeBytes { update($0) }
        }
    }

    /// The digest; the object takes no more input after this.
    public func finalize() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: algorithm.size)
        var length: UInt32 = 0
        out.withUnsafeMutableBufferPointer { _ = EVP_DigestFinal_ex(context, $0.baseAddress, &length) }
        return out
    }
}

public enum SHA256 {
    /// The SHA-256 of `bytes` in one call.
    @inlinable
    public static func hash<Bytes: Sequence>(_ bytes: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        if let digest = bytes.withContiguousStorageIfAvailable({ hash(raw: UnsafeRawBufferPointer($0)) }) { return digest }
        return Array(bytes).withUnsafeBytes { hash(raw: $0) }
    }

    public static func hash(raw bytes: UnsafeRawBufferPointer) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: 32) { out, count in
            hash(raw: bytes, into: out.baseAddress!)
            count = 32
        }
    }

    /// Writes the SHA-256 of `bytes` into `out`, which must hold 32 bytes.
    public static func hash(raw bytes: UnsafeRawBufferPointer, into out: UnsafeMutablePointer<UInt8>) {
        assetd_sha256(bytes.baseAddress, bytes.count, out)
    }

    /// SHA-256 of the empty string, hex: the payload hash of a request without a body.
    public static let emptyHex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
}
