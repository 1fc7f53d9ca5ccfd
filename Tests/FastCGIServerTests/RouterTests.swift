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
