import CFastCGI
import Foundation
import Logging
import Testing
@testable import FastCGIServer

/// `makeRequest` from libfcgi's parameters as nginx passes them: an ASCII query parsed
/// from its bytes at once, any other as the String repairs it; DOCUMENT_URI's String
/// reused from the thread's last one only when the bytes are the same.
struct MakeRequestTests {
    /// A request made from `entries` (`NAME=value` as bytes, as libfcgi holds them).
    func request(_ entries: [[UInt8]]) -> Request {
        let strings = entries.map { entry -> UnsafeMutablePointer<CChar> in
            let copy = UnsafeMutablePointer<CChar>.allocate(capacity: entry.count + 1)
            for (i, byte) in entry.enumerated() { copy[i] = CChar(bitPattern: byte) }
            copy[entry.count] = 0
            return copy
        }
        let envp = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: strings.count + 1)
        for (i, string) in strings.enumerated() { envp[i] = string }
        envp[strings.count] = nil
        let raw = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
        raw.initialize(to: FCGX_Request())
        raw.pointee.envp = envp
        defer {
            strings.forEach { $0.deallocate() }
            envp.deallocate()
            raw.deallocate()
        }
        return FastCGIServer.makeRequest(raw, body: FastCGIInput(raw), logger: Logger(label: "make-request-test"))
    }

    func entry(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// review14 S1: a `Request` kept past its response, its body read while the same worker
    /// serves a later request, must read nothing, not the later request's body.
    @Test func aRequestKeptPastItsResponseReadsNoLaterBody() throws {
        // Two requests' stdin as libfcgi's reader streams over bytes in memory (FCGX_GetStr
        // copies from `rdNext` up to `stop`).
        func stream(_ text: String) -> (UnsafeMutablePointer<FCGX_Stream>, UnsafeMutableBufferPointer<UInt8>) {
            let bytes = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: text.utf8.count)
            _ = bytes.initialize(from: text.utf8)
            let stream = UnsafeMutablePointer<FCGX_Stream>.allocate(capacity: 1)
            stream.initialize(to: FCGX_Stream())
            stream.pointee.rdNext = bytes.baseAddress
            stream.pointee.stop = bytes.baseAddress! + bytes.count
            stream.pointee.stopUnget = bytes.baseAddress
            stream.pointee.isReader = 1
            return (stream, bytes)
        }
        let first = stream("first"), second = stream("second")
        let raw = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
        raw.initialize(to: FCGX_Request())
        defer {
            for (s, b) in [first, second] { s.deallocate(); b.deallocate() }
            raw.deallocate()
        }
        let input = FastCGIInput(raw)
        let logger = Logger(label: "make-request-test")
        func read(_ request: Request, _ count: Int) throws -> String {
            var buffer = [UInt8](repeating: 0, count: count)
            let n = try buffer.withUnsafeMutableBytes { try request.body.read(into: $0) }
            return String(decoding: buffer.prefix(n), as: UTF8.self)
        }

        raw.pointee.in = first.0
        input.open()
        let kept = FastCGIServer.makeRequest(raw, body: input, logger: logger)
        #expect(try read(kept, 2) == "fi")
        input.close()
        #expect(try read(kept, 3) == "")  // between requests: nothing

        raw.pointee.in = second.0
        input.open()
        let later = FastCGIServer.makeRequest(raw, body: input, logger: logger)
        #expect(try read(kept, 6) == "", "the kept request must not read the later one's body")
        #expect(try read(later, 6) == "second")
        input.close()
    }

    @Test func anASCIIQueryIsParsedFromItsBytes() {
        let query = "workspaceId=1&assetId=42&UploadId=2~abc&PartNumber=7&a=%41+b&e=%C3%A9"
        let made = request([entry("REQUEST_METHOD=GET"), entry("DOCUMENT_URI=/s3/get-upload-url"), entry("QUERY_STRING=" + query),
                            entry("HTTP_HOST=example"), entry("CONTENT_LENGTH=")])
        let expected = QueryParameters(query)
        #expect(made.queryString == query)
        #expect(made.path == "/s3/get-upload-url")
        for name in ["workspaceId", "assetId", "UploadId", "PartNumber", "a", "e", "missing"] {
            #expect(made.query[name] == expected[name], "\(name)")
        }
        #expect(made.query.value("a") == "A b")
        #expect(made.query.value("e") == "é")
        #expect(made.headers["host"] == "example")
        #expect(made.contentLength == nil)
    }

    /// Non-ASCII and invalid UTF-8 bytes: the query is the repaired String, parsed from it,
    /// as before (an invalid byte next to an escape must not combine with it).
    @Test func anyOtherQueryIsTheRepairedString() {
        let bytes: [UInt8] = Array("x=".utf8) + [0xC3] + Array("%A9&y=é&z=%FF".utf8)
        let made = request([entry("DOCUMENT_URI=/p"), entry("QUERY_STRING=") + bytes])
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(made.queryString == text)
        for name in ["x", "y", "z"] { #expect(made.query[name] == QueryParameters(text)[name], "\(name)") }
        #expect(made.query["x"] == "\u{FFFD}\u{FFFD}")
        // Without QUERY_STRING: empty.
        #expect(request([entry("DOCUMENT_URI=/p")]).queryString == "")
        #expect(request([entry("DOCUMENT_URI=/p"), entry("QUERY_STRING=")]).queryString == "")
    }

    /// A header is a parameter named HTTP_ and more, compared as a word and a byte.
    @Test func headersAreTheParametersNamedHTTPAndMore() {
        func prefixed(_ name: String) -> Bool { Array(name.utf8).withUnsafeBufferPointer(FastCGIServer.hasHTTPPrefix) }
        #expect(prefixed("HTTP_X"))
        #expect(prefixed("HTTP_AUTHORIZATION"))
        for name in ["HTTP_", "HTTP", "", "HTTPX_A", "http_x", "HTTP-X", "XHTTP_A", "HTTQ_A", "GTTP_A", "HTTP\u{0}A"] {
            #expect(!prefixed(name), "\(name)")
        }
        let made = request([entry("HTTP_X_REQUEST_ID=abc"), entry("HTTP_=odd"), entry("HTTPS=on"), entry("HTTP_ACCEPT=*/*")])
        #expect(made.headers["x-request-id"] == "abc")
        #expect(made.headers["accept"] == "*/*")
        #expect(made.headers[""] == nil)
        #expect(made.headers["s"] == nil)
    }

    @Test func thePathIsTheStringOfItsBytes() {
        let paths: [[UInt8]] = [entry("/s3/get-upload-url"), entry("/s3/get-upload-url"), entry("/s3/get-upload-urm"), entry("/"),
                                entry(""), entry("/a") + [0xFF], entry("/a\u{FFFD}"), entry("/a") + [0xFF],
                                entry("/" + String(repeating: "long/", count: 80)), entry("/" + String(repeating: "long/", count: 80)),
                                entry("/s3/get-upload-url")]
        for bytes in paths {
            let made = request([entry("DOCUMENT_URI=") + bytes])
            #expect(made.path == String(decoding: bytes, as: UTF8.self))
            #expect(Array(made.path.utf8) == Array(String(decoding: bytes, as: UTF8.self).utf8))
        }
        // Without DOCUMENT_URI: REQUEST_URI up to the query.
        #expect(request([entry("REQUEST_URI=/x/y?z=1")]).path == "/x/y")
    }
}
