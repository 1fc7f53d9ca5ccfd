internal import COpenSSL

/// An HMAC-SHA256 key prepared once: the SHA-256 states after `key ⊕ ipad` and
/// `key ⊕ opad` (RFC 2104) are kept, so each message costs the digest of the message and
/// one block more, instead of padding and hashing the key again on every call.
///
/// The states are plain `SHA256_CTX` values, never written after `init`; `authenticate`
/// works on copies, so one key may be used from many threads at once.
public final class HMACKey: @unchecked Sendable {
    private let inner: SHA256_CTX
    private let outer: SHA256_CTX

    public init<Key: Collection>(_ key: Key) where Key.Element == UInt8 {
        var block = Array(key)
        if block.count > 64 { block = SHA256.hash(block) }
        block += [UInt8](repeating: 0, count: 64 - block.count)
        inner = Self.prepared(block.map { $0 ^ 0x36 })
        outer = Self.prepared(block.map { $0 ^ 0x5c })
    }

    private static func prepared(_ pad: [UInt8]) -> SHA256_CTX {
        var context = SHA256_CTX()
        assetd_sha256_init(&context)
        pad.withUnsafeBytes { assetd_sha256_update(&context, $0.baseAddress, $0.count) }
        return context
    }

    /// Writes HMAC-SHA256 of `message` into `out`, which must hold 32 bytes.
    public func authenticate(_ message: UnsafeRawBufferPointer, into out: UnsafeMutablePointer<UInt8>) {
        var context = inner
        assetd_sha256_update(&context, message.baseAddress, message.count)
        assetd_sha256_final(&context, out)
        context = outer
        assetd_sha256_update(&context, out, 32)
        assetd_sha256_final(&context, out)
    }

    /// HMAC-SHA256 of `message`.
    public func authenticate(_ message: UnsafeRawBufferPointer) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: 32) { out, count in
            authenticate(message, into: out.baseAddress!)
            count = 32
        }
    }

    /// HMAC-SHA256 of a string's UTF-8 bytes.
    public func authenticate(_ message: String) -> [UInt8] {
        var message = message
        return message.withUTF8 { authenticate(UnsafeRawBufferPointer($0)) }
    }
}
