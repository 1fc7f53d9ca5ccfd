import Foundation
import Logging
import SigV4
import Testing
@testable import S3Client

/// `appendPresignedURL`, which writes a part URL straight into a response body, against
/// `presignedURL`, and its claim that the bytes need no JSON escape.
struct PresignedURLBytesTests {
    func client(_ publicEndpoint: S3Endpoint, session: String? = nil) -> S3Client {
        let configuration = S3Client.Configuration(
            bucket: "assets", region: "us-east-1",
            credentials: Credentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "secret", sessionToken: session),
            endpoint: S3Endpoint(url: "http://127.0.0.1:9000"), publicEndpoint: publicEndpoint)
        return S3Client(configuration: configuration, logger: Logger(label: "presigned-url-bytes-test"))
    }

    /// JSON's rule (`JSONValue.needsEscape`): a control character, DEL, `"` or `\`.
    func needsJSONEscape(_ bytes: [UInt8]) -> Bool {
        bytes.contains { $0 < 0x20 || $0 == 0x7f || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }
    }

    @Test func sameBytesAsTheStringAndNoEscapeWhenItSaysSo() throws {
        let date = Date(timeIntervalSince1970: 1_700_000_000)
        let hostile = "a\"b\\c\u{1}d\u{7f}e é ☃/../%2F?&=#\n\t"
        let keys = ["1/digital_assets/2.jpg", "", hostile, String(repeating: "k/", count: 300), "\u{0}"]
        let queries: [[(String, String)]] = [[], [("partNumber", "7"), ("uploadId", "2~abc")], [("uploadId", hostile), (hostile, "v")]]
        let headers: [[(String, String)]] = [[], [("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==")], [("x-hostile", hostile)]]
        for endpoint in [try #require(S3Endpoint(url: "https://s3.example:8443")), S3Endpoint.aws(region: "eu-west-1", bucket: "assets")] {
            for session in [nil, "token/with+\"odd\"\\bytes"] {
                let s3 = client(endpoint, session: session)
                for key in keys {
                    for query in queries {
                        for signed in headers {
                            let url = s3.presignedURL(method: "PUT", key: key, query: query, headers: signed, expires: 300, date: date)
                            var out: [UInt8] = Array("prefix".utf8)
                            let plain = s3.appendPresignedURL(to: &out, method: "PUT", key: key, query: query, headers: signed,
                                                              expires: 300, date: date)
                            #expect(out == Array("prefix".utf8) + Array(url.utf8))
                            #expect(plain)
                            #expect(!needsJSONEscape(Array(url.utf8)))
                        }
                    }
                }
            }
        }
    }

    /// An origin that would need an escape (a host that `S3Endpoint(url:)` refuses, made
    /// directly): the bytes are the same, and they are not called plain.
    @Test func anOddOriginIsNotCalledPlain() {
        for host in ["we\"ird", "back\\slash", "tab\there", "del\u{7f}", "space here"] {
            let s3 = client(S3Endpoint(scheme: "https", host: host, pathStyle: true))
            var out: [UInt8] = []
            let plain = s3.appendPresignedURL(to: &out, method: "PUT", key: "k", expires: 60, date: Date(timeIntervalSince1970: 0))
            #expect(!plain)
            #expect(out == Array(s3.presignedURL(method: "PUT", key: "k", expires: 60, date: Date(timeIntervalSince1970: 0)).utf8))
        }
        let idn = client(S3Endpoint(scheme: "https", host: "bücher.example", pathStyle: true))
        var out: [UInt8] = []
        #expect(!idn.appendPresignedURL(to: &out, method: "GET", key: "k", expires: 60, date: Date()))
    }
}
