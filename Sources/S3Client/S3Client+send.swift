import Foundation
import Hashing
import Logging
import SigV4

extension S3Client {
    /// Signs and sends one request, retrying a transient failure; throws `S3Error` for
    /// any answer that is not 2xx.
    func send(
        _ method: String, key: String, query: [(String, String)] = [], headers: [(String, String)] = [],
        body: RequestBody = .none, payloadHash: String? = nil, largeTransfer: Bool = false
    ) throws -> TransportResponse {
        let endpoint = configuration.endpoint
        let path = endpoint.path(bucket: configuration.bucket, key: key)
        let hash: String
        switch body {
        case .none: hash = payloadHash ?? SHA256.emptyHex
        case .bytes(let bytes): hash = payloadHash ?? Encoding.hex(SHA256.hash(bytes))
        case .file: hash = payloadHash ?? SigV4Signer.unsignedPayload
        }
        let canonicalQuery = query.isEmpty ? "" : "?" + URIEncoding.canonicalQuery(query.map { ($0.0, $0.1) })
        let url = "\(endpoint.scheme)://\(endpoint.host)\(URIEncoding.encodePath(path))\(canonicalQuery)"
        let unsignedHeaders = [("host", endpoint.host), ("x-amz-content-sha256", hash)] + headers

        var lastError: S3Error?
        for attempt in 1...attempts {
            // Signed anew on each attempt: x-amz-date moves with the clock.
            let signed = signer.signHeaders(
                method: method, path: path, query: query.map { ($0.0, $0.1) }, headers: unsignedHeaders, payloadHash: hash
            )
            do {
                let response = try transport.perform(
                    method: method, url: url, headers: unsignedHeaders + signed, body: body, largeTransfer: largeTransfer
                )
                if (200..<300).contains(response.status) { return response }
                throw Self.error(status: response.status, body: response.body, headers: response.headers, method: method)
            } catch let error as S3Error {
                lastError = error
                guard error.isTransient, attempt < attempts else { throw error }
                logger.warning("S3 call failed; retrying", metadata: [
                    "method": "\(method)", "key": "\(key)", "attempt": "\(attempt)", "error": "\(error)",
                ])
                usleep(UInt32(100_000 * attempt * attempt))
            }
        }
        throw lastError ?? S3Error(code: "NetworkError", message: "no attempt was made")
    }

    /// The S3Error for an HTTP error answer: S3's `<Error>` body when there is one,
    /// otherwise a code from the status (HEAD answers have no body).
    static func error(status: Int, body: [UInt8], headers: [String: String], method: String) -> S3Error {
        if let tree = XMLTree.parse(body), tree.name == "Error" {
            return error(from: tree, status: status, headers: headers)
        }
        let code = switch status {
        case 301, 307: "PermanentRedirect"
        case 400: "BadRequest"
        case 403: "AccessDenied"
        case 404: method == "HEAD" ? "NotFound" : "NoSuchKey"
        case 409: "Conflict"
        case 412: "PreconditionFailed"
        case 503: "SlowDown"
        default: "HTTP\(status)"
        }
        return S3Error(code: code, message: "", httpStatus: status, requestID: headers["x-amz-request-id"])
    }

    static func error(from tree: XMLTree, status: Int, headers: [String: String]) -> S3Error {
        S3Error(
            code: tree.value("Code") ?? "HTTP\(status)",
            message: tree.value("Message") ?? "",
            httpStatus: status,
            requestID: tree.value("RequestId") ?? headers["x-amz-request-id"]
        )
    }
}
