import Foundation

/// Where S3 is and how buckets are addressed there.
///
/// AWS uses virtual-hosted style (`https://bucket.s3.region.amazonaws.com/key`); a custom
/// endpoint (MinIO, Ceph, moto) uses path style (`http://host:port/bucket/key`).
public struct S3Endpoint: Sendable, Equatable, CustomStringConvertible {
    public let scheme: String
    /// The Host header: the host name, and the port when it is not the scheme's default.
    public let host: String
    public let pathStyle: Bool

    public init(scheme: String, host: String, pathStyle: Bool) {
        self.scheme = scheme
        self.host = host
        self.pathStyle = pathStyle
    }

    /// AWS's regional endpoint for `bucket`, virtual-hosted style.
    public static func aws(region: String, bucket: String) -> S3Endpoint {
        S3Endpoint(scheme: "https", host: "\(bucket).s3.\(region).amazonaws.com", pathStyle: false)
    }

    /// A custom endpoint URL such as `http://127.0.0.1:9000`, path style; nil when it is
    /// not an http(s) URL with a host and nothing but `/` for a path.
    public init?(url text: String) {
        guard let components = URLComponents(string: text),
              let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let hostName = components.host, !hostName.isEmpty,
              components.path.isEmpty || components.path == "/",
              components.query == nil, components.user == nil
        else { return nil }
        let defaultPort = scheme == "https" ? 443 : 80
        let bracketed = hostName.contains(":") ? "[\(hostName)]" : hostName
        let host = components.port.map { $0 == defaultPort ? bracketed : "\(bracketed):\($0)" } ?? bracketed
        self.init(scheme: scheme, host: host, pathStyle: true)
    }

    /// The unencoded request path for `key` in `bucket` (`key` empty: the bucket itself).
    func path(bucket: String, key: String) -> String {
        // Written into the new String's own storage, each part in one copy: an interpolation
        // costs several times more, and three `+=` cost ~1,250 instructions a presign
        // (callgrind).
        var bucket = bucket, key = key
        let withBucket = pathStyle
        let count = 1 + (withBucket ? bucket.utf8.count + (key.isEmpty ? 0 : 1) : 0) + key.utf8.count
        return String(unsafeUninitializedCapacity: count) { out in
            // `put` is static and takes `at` inout: a nested function capturing it, passed
            // as `withUTF8`'s closure, made it a boxed variable checked for exclusive access
            // at run time on every use (~190 instructions a presign, callgrind).
            var at = 0
            let slash: StaticString = "/"
            let slashBytes = UnsafeBufferPointer(start: slash.utf8Start, count: 1)
            Self.put(slashBytes, into: out, at: &at)
            if withBucket {
                bucket.withUTF8 { Self.put($0, into: out, at: &at) }
                if key.isEmpty { return at }
                Self.put(slashBytes, into: out, at: &at)
            }
            key.withUTF8 { Self.put($0, into: out, at: &at) }
            return at
        }
    }

    /// Copies `bytes` into `out` at `at`, and moves `at` past them.
    private static func put(_ bytes: UnsafeBufferPointer<UInt8>, into out: UnsafeMutableBufferPointer<UInt8>, at: inout Int) {
        precondition(at >= 0 && out.count - at >= bytes.count, "the path's parts fit the length measured")
        if let base = bytes.baseAddress, let target = out.baseAddress { (target + at).update(from: base, count: bytes.count) }
        at += bytes.count
    }

    public var description: String { "\(scheme)://\(host)\(pathStyle ? " (path style)" : "")" }
}
