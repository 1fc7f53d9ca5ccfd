import Glibc

extension S3Client {
    /// GetObject streamed into an open file (from offset 0, truncated to what came), never
    /// held in memory. `expectedSize` sets the deadline, as for an upload of that size, and
    /// is the most written: a longer body is stopped there (`S3Error.malformed`), so that a
    /// server cannot fill the disk. Returns the bytes written; a body shorter than its
    /// Content-Length is an error.
    public func getObject(key: String, toFile descriptor: Int32, expectedSize: Int) throws -> Int {
        let response = try send(.getObject, "GET", key: key, kind: .transfer(bytes: expectedSize),
                                sink: .file(descriptor: descriptor, limit: expectedSize))
        guard ftruncate(descriptor, off_t(response.fileBytes)) == 0 else {
            throw S3Error.local("cannot truncate the downloaded file: errno \(errno)")
        }
        if let length = response.headers["content-length"].flatMap(Int.init), length != response.fileBytes {
            throw S3Error.network("GetObject \(key) sent \(response.fileBytes) of \(length) bytes")
        }
        return response.fileBytes
    }
}
