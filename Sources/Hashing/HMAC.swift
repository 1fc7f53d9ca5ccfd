internal import COpenSSL

public enum HMAC {
    /// HMAC-SHA256 of `message` under `key`.
    @inlinable
    public static func sha256<Key: Collection, Message: Collection>(key: Key, message: Message) -> [UInt8]
    where Key.Element == UInt8, Message.Element == UInt8 {
        withContiguous(key) { k in withContiguous(message) { m in sha256(rawKey: k, rawMessage: m) } }
    }

    /// HMAC-SHA256 of a string's UTF-8 bytes.
    @inlinable
    public static func sha256<Key: Collection>(key: Key, message: String) -> [UInt8] where Key.Element == UInt8 {
        var message = message
        return message.withUTF8 { m in withContiguous(key) { k in sha256(rawKey: k, rawMessage: UnsafeRawBufferPointer(m)) } }
    }

    public static func sha256(rawKey key: UnsafeRawBufferPointer, rawMessage message: UnsafeRawBufferPointer) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        let ok = out.withUnsafeMutableBufferPointer { o in
            assetd_crypto_hmac_sha256(key.baseAddress, key.count, message.baseAddress, message.count, o.baseAddress)
        }
        precondition(ok == 1, "libcrypto HMAC-SHA256 failed")
        return out
    }

    @inlinable
    static func withContiguous<Bytes: Collection, R>(_ bytes: Bytes, _ body: (UnsafeRawBufferPointer) -> R) -> R where Bytes.Element == UInt8 {
        if let result = bytes.withContiguousStorageIfAvailable({ body(UnsafeRawBufferPointer($0)) }) { return result }
        return Array(bytes).withUnsafeBytes(body)
    }
}

/// Compares two byte strings in time that depends only on their lengths.
public func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    if a.isEmpty { return true }
    return a.withUnsafeBytes { pa in
        b.withUnsafeBytes { pb in CRYPTO_memcmp(pa.baseAddress, pb.baseAddress, a.count) == 0 }
    }
}
