import Testing
@testable import FastCGIServer
import JSON

struct RouterTests {
    func body(_ response: Response) -> String { String(decoding: response.body, as: UTF8.self) }

    @Test func literalAndPatternRoutes() {
        var router = Router()
        router.on("GET", "/s3/start-upload") { _ in .json(["route": "start"]) }
        router.on("GET", "/api/assets/{assetId}") { request in .json(["id": .string(request.parameters["assetId"] ?? "")]) }
        #expect(body(router.respond(to: Request(method: "GET", path: "/s3/start-upload"))) == #"{"route":"start"}"#)
        #expect(body(router.respond(to: Request(method: "GET", path: "/api/assets/42"))) == #"{"id":"42"}"#)
        let missing = router.respond(to: Request(method: "GET", path: "/api/assets/42/x"))
        #expect(missing.status == .notFound)
        #expect(body(missing).hasPrefix(#"{"error":"#))
    }

    /// One match gives the access log its label and the router its handler.
    @Test func oneMatchGivesPatternAndParameters() {
        var router = Router()
        router.on("GET", "/s3/start-upload") { _ in .json(["route": "start"]) }
        router.on("GET", "/api/assets/{assetId}") { request in .json(["id": .string(request.parameters["assetId"] ?? "")]) }
        #expect(router.match("/s3/start-upload")?.pattern == "/s3/start-upload")
        let match = router.match("/api/assets/7")
        #expect(match?.pattern == "/api/assets/{assetId}")
        let request = Request(method: "GET", path: "/api/assets/7")
        #expect(body(router.respond(to: request, matched: match)) == #"{"id":"7"}"#)
        #expect(request.parameters == ["assetId": "7"])
        #expect(router.match("/api/assets") == nil)
        #expect(router.respond(to: Request(method: "GET", path: "/nowhere"), matched: nil).status == .notFound)
    }

    @Test func wrongMethodIs405WithAllow() {
        var router = Router()
        router.on("POST", "/s3/complete-upload") { _ in .json([:]) }
        let response = router.respond(to: Request(method: "GET", path: "/s3/complete-upload"))
        #expect(response.status == .methodNotAllowed)
        #expect(response.headers.contains { $0.0 == "Allow" && $0.1 == "POST" })
    }

    @Test func unknownErrorsBecomeOpaque500() {
        struct Secret: Error {}
        var router = Router()
        router.on("GET", "/boom") { _ in throw Secret() }
        let response = router.respond(to: Request(method: "GET", path: "/boom"))
        #expect(response.status == .internalServerError)
        #expect(!body(response).contains("Secret"))
    }

    @Test func serializedResponseHasStatusAndLength() {
        var response = Response.json(["a": 1])
        response.headers.append(("X-Evil", "a\r\nSet-Cookie: x"))
        let text = String(decoding: response.serialized(), as: UTF8.self)
        #expect(text.hasPrefix("Status: 200 OK\r\nContent-Type: application/json\r\n"))
        #expect(text.contains("X-Evil: aSet-Cookie: x\r\n"))
        #expect(text.hasSuffix("Content-Length: 7\r\n\r\n{\"a\":1}"))
    }

    @Test func decimalLengths() {
        for value in [0, 1, 9, 10, 99, 100, 12_345, 1_000_000, Int(Int32.max), Int.max] {
            var out: [UInt8] = []
            Response.appendDecimal(value, to: &out)
            #expect(String(decoding: out, as: UTF8.self) == String(value))
        }
    }

    @Test func bodyLimitIs413() {
        let big = Request(method: "POST", path: "/", contentLength: nil, body: BytesBody(Array(repeating: 1, count: 2000)))
        #expect(throws: HTTPError.self) { try big.readBody(limit: 1000) }
        let declared = Request(method: "POST", path: "/", contentLength: 5000, body: BytesBody([]))
        do { _ = try declared.readBody(limit: 1000); Issue.record("expected 413") } catch let error as HTTPError {
            #expect(error.status == .payloadTooLarge)
        } catch { Issue.record("\(error)") }
        let small = Request(method: "POST", path: "/", body: BytesBody(Array("{}".utf8)))
        #expect((try? small.readBody(limit: 1000)) == Array("{}".utf8))
    }
}

struct QueryParametersTests {
    /// `value` and `values` of a literal answer as the String lookups do: escaped names and
    /// values, `+`, non-ASCII names (canonical equivalence), absent names, a name without
    /// `=`; on a fresh parse and on a thread's spare reused after a query with escapes and
    /// after one without (the spare's "no escape anywhere" must not carry over).
    @Test func literalLookupsAnswerAsStringLookups() {
        let queries = ["%61b=1&a+b=2&K=3&%C3%A9=4&e%CC%81=5&ab=6&flag&v=%2B+x", "ab=1&ab=2&UploadId=2~abc&v=plain", "",
                       "v=a%20b&ab=%41", "ab=x&v=1+1", "UploadId=0mSDx7ICHA5675WOXCr3uatcEMotHHIDsOXtIObmPmDjN8uJIt15tCjsNw&v="]
        func check(_ query: QueryParameters, _ text: String) {
            #expect(query.value("ab") == query["ab"], "\(text)")
            #expect(query.value("v") == query["v"], "\(text)")
            #expect(query.value("a b") == query["a b"], "\(text)")
            #expect(query.value("é") == query["é"], "\(text)")
            #expect(query.value("e\u{301}") == query["e\u{301}"], "\(text)")
            #expect(query.value("\u{212A}") == query["\u{212A}"], "\(text)")
            #expect(query.value("flag") == query["flag"], "\(text)")
            #expect(query.value("UploadId") == query["UploadId"], "\(text)")
            #expect(query.value("missing") == nil)
            #expect(query.values("ab" as StaticString) == query.values("ab"), "\(text)")
            #expect(query.values("e\u{301}" as StaticString) == query.values("e\u{301}"), "\(text)")
        }
        for text in queries { check(QueryParameters(text), text) }
        for order in [queries, queries.reversed()] {
            for text in order {
                let reused = QueryParameters.reusing(text)
                check(reused, text)
                #expect(reused.value("v") == QueryParameters(text)["v"], "\(text)")
                QueryParameters.keepForReuse(reused)
            }
        }
    }

    /// Names are matched as the decoded Strings were: escaped names, `+`, and String
    /// equality (canonical equivalence) where a side is not ASCII.
    @Test func namesMatchAsDecodedStrings() {
        let query = QueryParameters("%61b=1&a+b=2&K=3&%C3%A9=4&e%CC%81=5&ab=6")
        #expect(query["ab"] == "1")
        #expect(query.values("ab") == ["1", "6"])
        #expect(query["a b"] == "2")
        #expect(query["\u{212A}"] == "3")  // KELVIN SIGN is canonically "K"
        #expect(query["é"] == "4")
        #expect(query.values("e\u{301}") == ["4", "5"])
        #expect(query["%61b"] == nil)
        #expect(QueryParameters("")["a"] == nil)
        #expect(QueryParameters("").pairs.isEmpty)
    }

    @Test func decodesPercentAndPlus() {
        let query = QueryParameters("a=1&b=x+y%2Fz&c&d=%E1%88%B4&a=2&bad=%zz%4")
        #expect(query["a"] == "1")
        #expect(query.values("a") == ["1", "2"])
        #expect(query["b"] == "x y/z")
        #expect(query["c"] == "")
        #expect(query["d"] == "ሴ")
        #expect(query["bad"] == "%zz%4")
        #expect(query["missing"] == nil)
    }

    /// Values with nothing to decode (no `%`, no `+`) are copied as they are: short and long
    /// (a String's small and heap forms), ASCII and not; a single escape or `+` anywhere,
    /// first or last, still decodes.
    @Test func valuesWithoutEscapesAsSent() {
        let id = "2~aB3dEf-GhIjK_LmNoPqRsTuVwXyZ0123456789.aB3dEfGhIjKLmNoPqRsTuVwXyZ0123456789aB3dEfGhIjKLmNoPqRsTu"
        let query = QueryParameters("id=\(id)&n=42&s=caf\u{E9}&long=\(String(repeating: "\u{1F600}", count: 8))&p=\(id)+&q=%41\(id)&r=+")
        #expect(query["id"] == id)
        #expect(query["n"] == "42")
        #expect(query["s"] == "caf\u{E9}")
        #expect(query["long"] == String(repeating: "\u{1F600}", count: 8))
        #expect(query["p"] == id + " ")
        #expect(query["q"] == "A" + id)
        #expect(query["r"] == " ")
        #expect(query.pairs.map(\.value) == [id, "42", "caf\u{E9}", String(repeating: "\u{1F600}", count: 8), id + " ", "A" + id, " "])
    }

    /// The raw value is the first one given, as sent; nil only when the name is absent.
    @Test func rawValuesAsSent() {
        func raw(_ query: QueryParameters, _ name: StaticString) -> String? {
            var text: String?
            query.withRawValue(name) { bytes in text = bytes.map { String(decoding: $0, as: UTF8.self) } }
            return text
        }
        let query = QueryParameters("a=1%32&b&a=3&%63=4&d=")
        #expect(raw(query, "a") == "1%32")
        #expect(raw(query, "b") == "")
        #expect(raw(query, "c") == "4")
        #expect(raw(query, "d") == "")
        #expect(raw(query, "e") == nil)
        #expect(raw(QueryParameters(""), "a") == nil)
    }

    @Test func edgesOfTheSyntax() {
        let query = QueryParameters("&&=v&x==y&e=%FF%41&t=%4&u=%&k")
        #expect(query.pairs.map(\.name) == ["", "x", "e", "t", "u", "k"])
        #expect(query[""] == "v")
        #expect(query["x"] == "=y")
        #expect(query["e"] == "\u{FFFD}A")
        #expect(query["t"] == "%4")
        #expect(query["u"] == "%")
        #expect(query["k"] == "")
    }
}

struct HostileRequestTests {
    @Test func negativeDeclaredLengthDoesNotTrap() throws {
        let request = Request(method: "POST", path: "/", contentLength: -5, body: BytesBody(Array("{}".utf8)))
        #expect(try request.readBody(limit: 100) == Array("{}".utf8))
    }
}

/// Headers kept as bytes answer as the dictionary of Strings did.
struct RequestHeadersTests {
    func cgi(_ pairs: [(String, String)]) -> Request.Headers {
        var headers = Request.Headers(capacity: 64)
        for (name, value) in pairs {
            Array((name + "=" + value).utf8).withUnsafeBufferPointer { headers.append(cgiEntry: $0, nameCount: name.utf8.count) }
        }
        return headers
    }

    @Test func cgiNamesAreLowerCasedWithDashes() {
        let headers = cgi([("USER_AGENT", "curl/8"), ("AUTHORIZATION", "Bearer a b"), ("X_REQUEST_ID", ""), ("X_Request_ID", "2")])
        #expect(headers["user-agent"] == "curl/8")
        #expect(headers["authorization"] == "Bearer a b")
        #expect(headers["x-request-id"] == "2")  // the last one given, as the dictionary kept it
        #expect(headers["USER_AGENT"] == nil)
        #expect(headers["user-agen"] == nil)
        #expect(headers["host"] == nil)
    }

    /// The name ends at the first "=": a value may hold more of them, or be empty.
    @Test func cgiValuesKeepTheirEqualsSigns() {
        let headers = cgi([("COOKIE", "a=b; c=d="), ("X_EMPTY", ""), ("X_EQ", "=")])
        #expect(headers["cookie"] == "a=b; c=d=")
        #expect(headers["x-empty"] == "")
        #expect(headers["x-eq"] == "=")
        #expect(headers["cookie=a"] == nil)
    }

    @Test func valuesThatAreNotUTF8AreRepairedAsBefore() {
        var headers = Request.Headers(capacity: 16)
        headers.append(name: "x-a".utf8, value: [0x61, 0xFF])
        #expect(headers["x-a"] == "a\u{FFFD}")
        #expect(headers["x-\u{0061}"] == "a\u{FFFD}")
    }

    /// The bytes the token and the request id are read through: the subscript's answer,
    /// unrepaired, and nil where the subscript is nil.
    @Test func withValueGivesTheSubscriptsBytes() {
        var headers = cgi([("AUTHORIZATION", "Bearer a"), ("X_REQUEST_ID", "1"), ("X_REQUEST_ID", "2")])
        headers.append(name: "x-a".utf8, value: [0x61, 0xFF])
        #expect(headers.withValue("authorization") { $0.map(Array.init) } == Array("Bearer a".utf8))
        #expect(headers.withValue("x-request-id") { $0.map(Array.init) } == Array("2".utf8))
        #expect(headers.withValue("x-a") { $0.map(Array.init) } == [0x61, 0xFF])
        #expect(headers.withValue("host") { $0 == nil })
        #expect(Request.Headers([:]).withValue("host") { $0 == nil })
    }

    /// The name's bytes as the byte-by-byte loop turned them (before the eight-at-a-time
    /// one): A-Z to a-z, "_" to "-", and whether all were ASCII.
    static func loweredByteByByte(_ name: [UInt8]) -> ([UInt8], Bool) {
        var ascii = true
        let out = name.map { byte -> UInt8 in
            switch byte {
            case UInt8(ascii: "_"): return UInt8(ascii: "-")
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): return byte + 32
            case 0x80...: ascii = false; return byte
            default: return byte
            }
        }
        return (out, ascii)
    }

    /// Every byte value at every place of names 1-17 bytes long, with and without eight
    /// bytes after the name in the buffer: the same bytes and the same answer as the
    /// byte-by-byte loop, and the bytes after the name (the "=" and the value) untouched.
    @Test func namesLowerCasedEightAtATimeAsByteByByte() {
        let after: [UInt8] = Array("=Value_AZ\u{80}".utf8)
        var checked = 0, mismatches: [[UInt8]] = []
        for length in 1...17 {
            for place in 0..<length {
                for value in 0...255 {
                    // A name of varied neighbours: "_", letters either side of A-Z, high bytes.
                    let fill: [UInt8] = [0x5f, 0x41, 0x5a, 0x40, 0x5b, 0x60, 0x61, 0x7a, 0x7b, 0x7f, 0x80, 0xff, 0x2d, 0x30]
                    var name = (0..<length).map { fill[($0 * 7 + length) % fill.count] }
                    name[place] = UInt8(value)
                    let (expected, expectedASCII) = Self.loweredByteByByte(name)
                    for tail in [after, [UInt8(ascii: "=")]] {
                        var buffer = [0x41, 0x5f] + name + tail
                        let ascii = buffer.withUnsafeMutableBytes { Request.Headers.lowerCGIName(in: $0, 2..<(2 + length)) }
                        if Array(buffer[2..<(2 + length)]) != expected || ascii != expectedASCII
                            || Array(buffer[0..<2]) != [0x41, 0x5f] || Array(buffer[(2 + length)...]) != tail {
                            mismatches.append(name)
                        }
                        checked += 1
                    }
                }
            }
        }
        #expect(mismatches.prefix(5).map { $0 } == [])
        #expect(checked == 2 * 256 * (1...17).reduce(0, +))
    }

    @Test func fromADictionary() {
        let headers = Request.Headers(["authorization": "Bearer t", "content-type": "image/png"])
        #expect(headers["authorization"] == "Bearer t")
        #expect(headers["content-type"] == "image/png")
        #expect(headers["x"] == nil)
        #expect(Request.Headers([:]).isEmpty)
    }
}

/// REQUEST_METHOD's bytes become the usual methods as literals, any other as given.
struct RequestMethodTests {
    @Test(arguments: ["GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "get", "GETS", "GE", "", "PÜT"])
    func methodIsTheBytesGiven(_ method: String) {
        let bytes = Array(method.utf8)
        #expect(bytes.withUnsafeBufferPointer { FastCGIServer.method($0) } == method)
    }
}

/// The CGI head, measured and written in one copy, is the bytes the appends wrote.
struct ResponseHeadTests {
    /// The head as it was written before: one `append` after another.
    static func appendedHead(_ response: Response) -> [UInt8] {
        var out: [UInt8] = []
        out.append("Status: ")
        Response.appendDecimal(response.status.code, to: &out)
        out.append(UInt8(ascii: " "))
        out.append(contentsOf: response.status.reason.utf8)
        out.append("\r\n")
        for (name, value) in response.headers {
            out.append(contentsOf: name.utf8)
            out.append(": ")
            for byte in value.utf8 where byte != 0x0d && byte != 0x0a { out.append(byte) }
            out.append("\r\n")
        }
        out.append("Content-Length: ")
        Response.appendDecimal(response.body.count, to: &out)
        out.append("\r\n\r\n")
        return out
    }

    @Test func headsAsAppended() {
        let long = String(repeating: "https://bucket.example/key?X-Amz-Signature=abc&", count: 60)
        let responses = [
            Response(),
            Response(status: .badRequest, body: Array(repeating: 1, count: 9)),
            Response(status: HTTPStatus(0, ""), headers: [("", "")], body: Array(repeating: 1, count: 10)),
            Response(status: HTTPStatus(-3, "Odd"), body: Array(repeating: 1, count: 12_345)),
            Response(status: HTTPStatus(302, "Found"), headers: [("Location", long), ("Content-Type", "text/plain")]),
            Response(status: .ok, headers: [("X-Evil", "a\r\nSet-Cookie: x=1\n\r"), ("X-Only", "\r\n"), ("X-Käse", "grüß")]),
        ]
        var reused: [UInt8] = Array(repeating: 7, count: 3)
        for response in responses {
            response.writeHead(to: &reused)
            #expect(reused == Self.appendedHead(response))
            #expect(response.serialized() == Self.appendedHead(response) + response.body)
        }
    }
}

/// A freed request's header buffers go to the thread's next request: empty again, and
/// never shared with a copy that something still holds.
struct HeaderReuseTests {
    @Test func reusedHeadersAreEmptyAndKeptCopiesStayAsTheyWere() {
        var held: Request.Headers?
        do {
            let request = Request(method: "GET", path: "/", headers: ["authorization": "Bearer a", "x-request-id": "1"])
            held = request.headers
        }
        // This thread's spare is the request's headers, still held by `held`.
        var next = Request.Headers.reused(capacity: 64)
        #expect(next.isEmpty)
        #expect(next["authorization"] == nil)
        Array("X_REQUEST_ID=2".utf8).withUnsafeBufferPointer { next.append(cgiEntry: $0, nameCount: 12) }
        #expect(next["x-request-id"] == "2")
        #expect(held?["x-request-id"] == "1")
        #expect(held?["authorization"] == "Bearer a")
        // Without any other holder, the buffers are taken over in place and emptied.
        do { _ = Request(method: "GET", path: "/", headers: ["a": "b"]) }
        let again = Request.Headers.reused(capacity: 64)
        #expect(again.isEmpty)
        #expect(again["a"] == nil)
        // Nothing spare now: new ones.
        #expect(Request.Headers.reused(capacity: 64).isEmpty)
    }

    /// Thousands of empty headers fit in few bytes but a large fields array: neither buffer
    /// is kept when it is larger than the limits (review13 S1).
    @Test func manyTinyHeadersAreNotKept() {
        do {
            var headers = Request.Headers(capacity: 64)
            for _ in 0..<5_000 {
                Array("A=".utf8).withUnsafeBufferPointer { headers.append(cgiEntry: $0, nameCount: 1) }
            }
            #expect(headers.capacities.bytes <= Request.Headers.reuseLimit)
            #expect(headers.capacities.fields >= 5_000)
            Request.Headers.keepForReuse(headers)  // as a freed Request gives them
        }
        let next = Request.Headers.reused(capacity: 64)
        #expect(next.capacities.fields <= Request.Headers.fieldsReuseLimit)
        #expect(next.capacities.bytes <= Request.Headers.reuseLimit)
    }
}

/// A freed request's parsed query goes to the thread's next one: the same answers as a
/// fresh parse, and a copy that something still holds stays as it was.
struct QueryReuseTests {
    @Test func reusedQueriesAnswerAsFreshOnes() {
        let queries = [
            "workspaceId=1&assetId=2&UploadId=abc&PartNumber=7", "", "&&=v&x==y&e=%FF%41&t=%4&u=%&k",
            "a=1&a=2&b", String(repeating: "q=1&", count: 40), "a=%C3%A9&b+c=d+e", "x",
        ]
        var held: QueryParameters?
        for (i, text) in queries.enumerated() {
            do {
                let request = Request(method: "GET", path: "/", queryString: text)
                let query = request.query
                let fresh = QueryParameters(text)
                #expect(query.pairs.map(\.name) == fresh.pairs.map(\.name))
                #expect(query.pairs.map(\.value) == fresh.pairs.map(\.value))
                #expect(query.values("a") == fresh.values("a"))
                #expect(query["b c"] == fresh["b c"])
                if i == 0 { held = query }
            }
        }
        // The first request's query, held past its request, answers as it did.
        #expect(held?["UploadId"] == "abc")
        #expect(held?["PartNumber"] == "7")
        #expect(held?.pairs.count == 4)
    }

    /// A query of thousands of fields leaves no spare of that size to the thread.
    @Test func largeQueriesAreNotKept() {
        do { _ = Request(method: "GET", path: "/", queryString: String(repeating: "a&", count: 5_000)).query }
        let next = QueryParameters.reusing("x=1")
        #expect(next.capacities.fields <= QueryParameters.fieldsReuseLimit)
        #expect(next.capacities.raw <= QueryParameters.reuseLimit)
        #expect(next["x"] == "1")
    }
}
