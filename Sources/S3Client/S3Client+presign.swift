public import struct Foundation.Date
import SigV4

extension S3Client {
    /// A presigned URL for `method` on `key` under the public endpoint, valid for
    /// `expires` seconds from `date`.
    public func presignedURL(method: String, key: String, query: [(String, String)] = [], expires: Int, date: Date = Date()) -> String {
        let endpoint = configuration.publicEndpoint
        let path = endpoint.path(bucket: configuration.bucket, key: key)
        let signed = signer.presignedQuery(
            method: method, path: path, query: query.map { ($0.0, $0.1) }, headers: [("host", endpoint.host)],
            expires: expires, date: date
        )
        return "\(endpoint.scheme)://\(endpoint.host)\(URIEncoding.encodePath(path))?\(signed)"
    }

    /// A presigned UploadPart URL: the browser PUTs the part's bytes to it.
    public func presignedUploadPartURL(key: String, uploadID: String, partNumber: Int, expires: Int, date: Date = Date()) -> String {
        presignedURL(method: "PUT", key: key, query: [("partNumber", String(partNumber)), ("uploadId", uploadID)], expires: expires, date: date)
    }
}
