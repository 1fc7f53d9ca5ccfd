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
        url.append(contentsOf: endpoint.scheme.utf8)
        url.append(contentsOf: "://".utf8)
        url.append(contentsOf: endpoint.host.utf8)
        signer.appendPresignedQuery(
            to: &url, includingPath: true, method: method, path: path, query: query.map { ($0.0, $0.1) },
            headers: headers.isEmpty ? [("host", endpoint.host)] : [("host", endpoint.host)] + headers.map { ($0.0, $0.1) },
            expires: expires, date: date
        )
        return String(decoding: url, as: UTF8.self)
    }

    /// A presigned UploadPart URL: the browser PUTs the part's bytes to it. With
    /// `contentMD5` (base64 of the part's MD5), `content-md5` is a signed header: the PUT
    /// must send that Content-MD5, and S3 refuses other bytes (400 BadDigest).
    public func presignedUploadPartURL(
        key: String, uploadID: String, partNumber: Int, contentMD5: String? = nil, expires: Int, date: Date = Date()
    ) -> String {
        presignedURL(method: "PUT", key: key, query: [("partNumber", String(partNumber)), ("uploadId", uploadID)],
                     headers: contentMD5.map { [("content-md5", $0)] } ?? [], expires: expires, date: date)
    }
}
