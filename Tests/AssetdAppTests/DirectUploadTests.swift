import AssetStore
import FastCGIServer
import Foundation
import JSON
import S3Client
import Testing
@testable import AssetdApp

extension RouteTests {
    static let png: [UInt8] = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52,
                               0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0, 0x90, 0x77, 0x53, 0xde]

    func form(_ parts: [(name: String, fileName: String?, type: String?, data: [UInt8])], boundary: String = "XyZ") -> [UInt8] {
        var body: [UInt8] = []
        for part in parts {
            var head = "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(part.name)\""
            if let fileName = part.fileName { head += "; filename=\"\(fileName)\"" }
            if let type = part.type { head += "\r\nContent-Type: \(type)" }
            body += Array((head + "\r\n\r\n").utf8) + part.data + Array("\r\n".utf8)
        }
        return body + Array("--\(boundary)--\r\n".utf8)
    }

    func upload(_ body: [UInt8], query: String = "workspaceId=1", contentType: String = "multipart/form-data; boundary=XyZ") -> (Int, JSONValue) {
        let request = Request(method: "POST", path: "/api/assets/upload", queryString: query,
                              headers: ["authorization": "Bearer \(token)", "content-type": contentType],
                              contentLength: body.count, body: BytesBody(body))
        let response = router.respond(to: request)
        return (response.status.code, (try? JSONParser.parse(response.body)) ?? .null)
    }
}

@Suite struct DirectUploadRouteTests {
    let routes: RouteTests
    init() throws { routes = try RouteTests() }

    @Test func pngClaimedAsJPEGIsStoredAsPNG() throws {
        let (status, body) = routes.upload(routes.form([("file", "photo.jpg", "image/jpeg", RouteTests.png)]))
        #expect(status == 200)
        let asset = try #require(body["asset"])
        #expect(asset["fileType"] == "image/png")
        #expect(asset["key"]?.stringValue?.hasSuffix(".png") == true)
        #expect(asset["fileName"] == "photo.jpg")
        #expect(asset["status"] == "ready")
        #expect(asset["size"] == .int(RouteTests.png.count))
        #expect(routes.store.state.withLock { $0.calls } == ["put"])
    }

    @Test func workspaceFromTheForm() throws {
        let (status, body) = routes.upload(routes.form([("workspaceId", nil, nil, Array("1".utf8)), ("file", "a.png", nil, RouteTests.png)]), query: "")
        #expect(status == 200)
        #expect(body["asset"]?["workspaceId"] == "1")
        #expect(routes.upload(routes.form([("workspaceId", nil, nil, Array("2".utf8)), ("file", "a.png", nil, RouteTests.png)]), query: "").0 == 403)
    }

    @Test func refusalsLeaveNothing() throws {
        let html = Array("<!DOCTYPE html><html><body><script>alert(1)</script></body></html>".utf8)
        let cases: [([UInt8], String, Int)] = [
            (routes.form([("file", "x.jpg", "image/jpeg", html)]), "multipart/form-data; boundary=XyZ", 415),
            (routes.form([("file", "a.png", nil, RouteTests.png), ("file", "b.png", nil, RouteTests.png)]), "multipart/form-data; boundary=XyZ", 400),
            (routes.form([("file", "e.png", nil, [])]), "multipart/form-data; boundary=XyZ", 400),
            (routes.form([("other", nil, nil, Array("x".utf8))]), "multipart/form-data; boundary=XyZ", 400),
            (routes.form([("picture", "a.png", nil, RouteTests.png)]), "multipart/form-data; boundary=XyZ", 400),
            (Array(routes.form([("file", "a.png", nil, RouteTests.png)]).dropLast(12)), "multipart/form-data; boundary=XyZ", 400),
            (routes.form([("file", "a.png", nil, RouteTests.png)]), "multipart/form-data", 400),
            (routes.form([("file", "a.png", nil, RouteTests.png)]), "application/json", 400),
        ]
        for (body, contentType, expected) in cases {
            let (status, answer) = routes.upload(body, contentType: contentType)
            #expect(status == expected, "\(answer)")
            #expect(answer["error"]?.stringValue?.isEmpty == false)
        }
        #expect(routes.store.state.withLock { $0.calls }.isEmpty)
        #expect(try routes.records.assets(workspaceID: 1, limit: 10, before: nil).isEmpty)
    }

    @Test func s3FailureLeavesNoRecord() throws {
        routes.store.fail("put", with: S3Error.service(.internalError, status: 500, message: "", requestID: nil))
        #expect(routes.upload(routes.form([("file", "a.png", nil, RouteTests.png)])).0 == 502)
        #expect(try routes.records.assets(workspaceID: 1, limit: 10, before: nil).isEmpty)
    }
}
