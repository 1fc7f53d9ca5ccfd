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
        let endpoint = configuration.publicEndpoint
        let path = endpoint.path(bucket: configuration.bucket, key: key)
        var url: [UInt8] = []
        url.reserveCapacity(512)
        url.append(contentsOf: publicOrigin)
        signer.appendPresignedQuery(
            to: &url, includingPath: true, method: method, path: path, query: query.map { ($0.0, $0.1) },
            headers: headers.isEmpty ? publicHostHeader : publicHostHeader + headers.map { ($0.0, $0.1) },
            expires: expires, date: date
        )
        return String(decoding: url, as: UTF8.self)
    }
}
