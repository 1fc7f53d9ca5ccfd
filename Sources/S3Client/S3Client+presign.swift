public import struct Foundation.Date
import SigV4

extension S3Client {
    /// A presigned URL for `method` on `key` under the public endpoint, valid for
    /// `expires` seconds from `date`. `headers` (besides `host`) are signed into
    /// `X-Amz-SignedHeaders`: the request must then send each with exactly that value
    /// (`content-md5` makes S3 refuse other bytes).
    public func presignedURL(
        method: String, key: String, query: [(String, String)] = [], headers: [(String, String)] = [], expires: Int, date: Date = Date()
    ) -> String {
        var url: [UInt8] = []
        url.reserveCapacity(512)
        appendPresignedURL(to: &url, method: method, key: key, query: query.map { ($0.0, $0.1) }, headers: headers, expires: expires, date: date)
        return String(decoding: url, as: UTF8.self)
    }

    /// `presignedURL`'s UTF-8 appended to `out` (a response body), without a String made
    /// of it and read again (~700 instructions a part URL, callgrind).
    ///
    /// Returns `publicOriginIsPlain`: the rest of the URL is the signer's percent-encoded
    /// path and query (unreserved characters, `%XX`, `/`, `?`, `=`, `&`), so when the origin
    /// holds only printable ASCII other than `"` and `\`, so does every byte appended, and
    /// a JSON string of it needs no escape (a test checks this against JSON's own rule).
    ///
    /// `query` is labeled as the signer's fields are, so that it is passed as it is: an
    /// array of unlabeled pairs is copied into a new array to become one (~280 instructions
    /// a presign, callgrind).
    @discardableResult
    public func appendPresignedURL(
        to out: inout [UInt8], method: String, key: String, query: [(name: String, value: String)] = [], headers: [(String, String)] = [],
        expires: Int, date: Date = Date()
    ) -> Bool {
        let path = configuration.publicEndpoint.path(bucket: configuration.bucket, key: key)
        out.append(contentsOf: publicOrigin)
        signer.appendPresignedQuery(
            to: &out, includingPath: true, method: method, path: path, query: query,
            headers: headers.isEmpty ? publicHostHeader : publicHostHeader + headers.map { ($0.0, $0.1) },
            expires: expires, date: date
        )
        return publicOriginIsPlain
    }

    /// Whether every byte of `bytes` is printable ASCII (0x21-0x7E) other than `"` and `\`.
    static func isPlain(_ bytes: some Sequence<UInt8>) -> Bool {
        bytes.allSatisfy { $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }
    }
}
