public import struct Foundation.Date
import SigV4

extension S3Client {
    /// A presigned URL for `method` on `key` under the public endpoint, valid for
    /// `expires` seconds from `date`.
    public func presignedURL(method: String, key: String, query: [(String, String)] = [], expires: Int, date: Date = Date()) -> String {
        let endpoint = configuration.publicEndpoint
        let path = endpoint.path(bucket: configuration.bucket, key: key)
        var url: [UInt8] = []
        url.reserveCapacity(512)
        url.append(contentsOf: endpoint.scheme.utf8)
        url.append(contentsOf: "://".utf8)
        url.append(contentsOf: endpoint.host.utf8)
        signer.appendPresignedQuery(
            to: &url, includingPath: true, method: method, path: path, query: query.map { ($0.0, $0.1) }, headers: [("host", endpoint.host)],
            expires: expires, date: date
        )
        return String(decoding: url, as: UTF8.self)
    }

    /// A presigned UploadPart URL: the browser PUTs the part's bytes to it.
    public func presignedUploadPartURL(key: String, uploadID: String, partNumber: Int, expires: Int, date: Date = Date()) -> String {
        presignedURL(method: "PUT", key: key, query: [("partNumber", String(partNumber)), ("uploadId", uploadID)], expires: expires, date: date)
    }
}
