import Testing
@testable import FormData

/// Collects what the parser reports.
struct Collector: MultipartHandler {
    var parts: [(headers: PartHeaders, data: [UInt8])] = []
    var open = false

    mutating func beginPart(_ headers: PartHeaders) throws {
        #expect(!open)
        parts.append((headers, []))
        open = true
    }

    mutating func partData(_ bytes: UnsafeRawBufferPointer) throws {
        #expect(open)
        parts[parts.count - 1].data.append(contentsOf: bytes)
    }

    mutating func endPart() throws {
        #expect(open)
        open = false
    }
}

func parse(_ body: [UInt8], boundary: String, chunk: Int) throws -> Collector {
    var parser = try MultipartParser(boundary: boundary)
    var collector = Collector()
    var offset = 0
    while offset < body.count {
        let end = min(offset + chunk, body.count)
        try body[offset..<end].withUnsafeBytes { try parser.feed($0, to: &collector) }
        offset = end
    }
    try parser.finish()
    return collector
}

struct MultipartParserTests {
    static let boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
    static let fileBytes: [UInt8] = Array("line one\r\n--not-the-boundary\r\n\r\n----WebKitFormBoundary7MA4\r\n".utf8) + (0..<300).map { UInt8($0 % 256) }
    static let body: [UInt8] = {
        var body: [UInt8] = Array("preamble to ignore\r\n--\(boundary)\r\n".utf8)
        body += Array("Content-Disposition: form-data; name=\"workspaceId\"\r\n\r\n7\r\n--\(boundary)\r\n".utf8)
        body += Array("Content-Disposition: form-data; name=\"file\"; filename=\"a \\\"b\\\".jpg\"\r\nContent-Type: image/jpeg\r\n\r\n".utf8)
        body += fileBytes
        body += Array("\r\n--\(boundary)--\r\nepilogue, ignored".utf8)
        return body
    }()

    /// Every chunk size from 1 byte up, so that a delimiter is split at every offset.
    @Test(arguments: Array(1...120) + [1000, 65536])
    func anyChunkSizeGivesTheSameParts(chunk: Int) throws {
        let result = try parse(Self.body, boundary: Self.boundary, chunk: chunk)
        #expect(result.parts.count == 2)
        #expect(result.parts[0].headers.name == "workspaceId")
        #expect(result.parts[0].data == Array("7".utf8))
        #expect(result.parts[1].headers.name == "file")
        #expect(result.parts[1].headers.fileName == "a \"b\".jpg")
        #expect(result.parts[1].headers.contentType == "image/jpeg")
        #expect(result.parts[1].data == Self.fileBytes)
        #expect(!result.open)
    }

    /// Part data made of near-misses of the delimiter (CR, LF, dashes, pieces of the
    /// boundary), fed in random chunk sizes: the data must come back byte for byte, so a
    /// search that skips or stops early on a candidate byte fails here.
    @Test func nearMissesOfTheDelimiterSurvive() throws {
        var generator = SystemRandomNumberGenerator()
        let boundary = "xYz"
        let delimiter = Array("\r\n--\(boundary)".utf8)
        let pieces: [[UInt8]] = [[0x0d], [0x0a], [0x2d], [0x0d, 0x0a], Array("\r\n-".utf8), Array("\r\n--".utf8),
                                 Array("\r\n--xY".utf8), Array("xYz".utf8), [0x00], Array("abc".utf8)]
        for _ in 0..<200 {
            var data: [UInt8] = []
            let length = Int.random(in: 0...400, using: &generator)
            while data.count < length {
                data += pieces.randomElement(using: &generator)!
            }
            // Never the whole delimiter, which would end the part. (The delimiter has no
            // prefix that is also its suffix, so none can start in the data and end in
            // the closing one.)
            guard !(0..<max(0, data.count - delimiter.count + 1)).contains(where: { data[$0..<($0 + delimiter.count)].elementsEqual(delimiter) })
            else { continue }
            let body = Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\n".utf8)
                + data + Array("\r\n--\(boundary)--\r\n".utf8)
            let chunk = Int.random(in: 1...64, using: &generator)
            let result = try parse(body, boundary: boundary, chunk: chunk)
            #expect(result.parts.count == 1)
            #expect(result.parts.first?.data == data, "chunks of \(chunk), data: \(data)")
        }
    }

    @Test func noPreambleAndTransportPadding() throws {
        let body = Array("--b\r\nContent-Disposition: form-data; name=x\r\n\r\nv\r\n--b  \r\nContent-Disposition: form-data; name=y\r\n\r\n\r\n--b--".utf8)
        let result = try parse(body, boundary: "b", chunk: 3)
        #expect(result.parts.map(\.headers.name) == ["x", "y"])
        #expect(result.parts[0].data == Array("v".utf8))
        #expect(result.parts[1].data.isEmpty)
    }

    @Test func dataEndingInCRLFKeepsIt() throws {
        let body = Array("--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"t.txt\"\r\n\r\nab\r\n\r\n\r\n--b--\r\n".utf8)
        #expect(try parse(body, boundary: "b", chunk: 2).parts[0].data == Array("ab\r\n\r\n".utf8))
    }

    @Test(arguments: [1, 7, 4096])
    func truncatedBodyIsRefused(chunk: Int) {
        let cut = Array(Self.body[0..<(Self.body.count - 40)])
        #expect(throws: MultipartError.self) { try parse(cut, boundary: Self.boundary, chunk: chunk) }
    }

    @Test func wrongBoundaryIsTruncated() {
        #expect(throws: MultipartError.self) { try parse(Self.body, boundary: "other", chunk: 100) }
    }

    @Test func partWithoutDispositionIsRefused() {
        let body = Array("--b\r\nContent-Type: text/plain\r\n\r\nv\r\n--b--".utf8)
        #expect(throws: MultipartError.self) { try parse(body, boundary: "b", chunk: 5) }
    }

    @Test func headerFlood() {
        let body = Array("--b\r\nX: \(String(repeating: "a", count: 9000))".utf8)
        #expect(throws: MultipartError.self) { try parse(body, boundary: "b", chunk: 512) }
    }

    @Test func garbageAfterBoundary() {
        let body = Array("--bXYZ\r\nContent-Disposition: form-data; name=x\r\n\r\nv\r\n--b--".utf8)
        #expect(throws: MultipartError.self) { try parse(body, boundary: "b", chunk: 64) }
    }

    @Test func boundaryFromContentType() {
        #expect(MultipartParser.boundary(contentType: "multipart/form-data; boundary=abc") == "abc")
        #expect(MultipartParser.boundary(contentType: "Multipart/Form-Data; charset=utf-8; boundary=\"a b;c\"") == "a b;c")
        #expect(MultipartParser.boundary(contentType: "multipart/form-data") == nil)
        #expect(MultipartParser.boundary(contentType: "multipart/form-data; boundary=") == nil)
        #expect(MultipartParser.boundary(contentType: "application/json") == nil)
        #expect(MultipartParser.boundary(contentType: nil) == nil)
        #expect(throws: MultipartError.self) { try MultipartParser(boundary: String(repeating: "x", count: 71)) }
    }

    @Test func parameters() {
        let split = HeaderParameters.split(#"form-data; name=file; filename="x;y.png"; filename*=UTF-8''na%C3%AFve.png"#)
        #expect(split.value == "form-data")
        #expect(split.parameters["name"] == "file")
        #expect(split.parameters["filename"] == "x;y.png")
        #expect(HeaderParameters.decodeRFC5987(split.parameters["filename*"]!) == "naïve.png")
        #expect(HeaderParameters.decodeRFC5987("latin-1''x") == nil)
        #expect(HeaderParameters.decodeRFC5987("UTF-8''%G1") == nil)
    }
}
