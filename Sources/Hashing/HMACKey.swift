internal import COpenSSL

/// An HMAC-SHA256 key prepared once: the SHA-256 states after `key ⊕ ipad` and
/// `key ⊕ opad` (RFC 2104) are kept, so each message costs two digest continuations
/// instead of OpenSSL 3's one-shot `HMAC()`, which fetches the digest and pads the key
/// on every call.
///
/// The prepared states are never written after `init`; `authenticate` only copies them,
/// so one key may be used from many threads at once.
public final class HMACKey: @unchecked Sendable {
    private let inner: OpaquePointer
    private let outer: OpaquePointer

    public init<Key: Collection>(_ key: Key) where Key.Element == UInt8 {
        var block = Array(key)
        if block.count > 64 { block = SHA256.hash(block) }
        block += [UInt8](repeating: 0, count: 64 - block.count)
        inner = Self.prepared(block.map { $0 ^ 0x36 })
        outer = Self.prepared(block.map { $0 ^ 0x5c })
    }

    deinit {
        EVP_MD_CTX_free(inner)
        EVP_MD_CTX_free(outer)
    }

    private static func prepared(_ pad: [UInt8]) -> OpaquePointer {
        guard let context = EVP_MD_CTX_new(), EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1 else {
            fatalError("libcrypto could not prepare an HMAC key (out of memory)")
        }
        pad.withUnsafeBytes { _ = EVP_DigestUpdate(context, $0.baseAddress, $0.count) }
        return context
    }

    /// HMAC-SHA256 of `message`.
    public func authenticate(_ message: UnsafeRawBufferPointer) -> [UInt8] {
        guard let context = EVP_MD_CTX_new() else { fatalError("libcrypto could not allocate a digest context") }
        defer { EVP_MD_CTX_free(context) }
        var innerHash = [UInt8](repeating: 0, count: 32)
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_MD_CTX_copy_ex(context, inner)
        EVP_DigestUpdate(context, message.baseAddress, message.count)
        innerHash.withUnsafeMutableBufferPointer { _ = EVP_DigestFinal_ex(context, $0.baseAddress, &length) }
        EVP_MD_CTX_copy_ex(context, outer)
        innerHash.withUnsafeBytes { _ = EVP_DigestUpdate(context, $0.baseAddress, 32) }
        out.withUnsafeMutableBufferPointer { _ = EVP_DigestFinal_ex(context, $0.baseAddress, &length) }
        return out
    }

    /// HMAC-SHA256 of a string's UTF-8 bytes.
    public func authenticate(_ message: String) -> [UInt8] {
        var message = message
        return message.withUTF8 { authenticate(UnsafeRawBufferPointer($0)) }
    }
}
