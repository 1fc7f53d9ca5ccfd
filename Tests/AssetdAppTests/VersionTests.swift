import AssetStore
import FastCGIServer
import Foundation
import JSON
import S3Client
import Testing
@testable import AssetdApp

/// New versions, the content and size check after complete-upload, downloads under the
/// asset's name, and a delete that leaves no key: in process, with the fake store.
@Suite struct VersionTests {
    let routes: RouteTests
    init() throws { routes = try RouteTests() }

    /// Start (optionally a new version of `assetID`), complete with one part; the answer.
    @discardableResult
    func upload(type: String, assetID: String? = nil, extra: String = "", content: [UInt8]? = nil, size: Int? = nil) throws -> (Int, JSONValue, String) {
        var query = "workspaceId=1&fileType=\(type)" + extra
        if let assetID { query += "&assetId=\(assetID)" }
        let (status, started) = routes.call("GET", "/s3/start-upload", query)
        try #require(status == 200, "\(started)")
        let id = started["assetId"]!.stringValue!, uploadID = started["uploadId"]!.stringValue!
        routes.store.state.withLock {
            $0.completedContent = content
            $0.completedSize = size
        }
        let body = #"{"uploadId":"\#(uploadID)","assetId":"\#(id)","workspaceId":1,"parts":[{"ETag":"0123456789abcdef0123456789abcdef","PartNumber":1}]}"#
        let (completeStatus, answer) = routes.call("POST", "/s3/complete-upload", body: body)
        return (completeStatus, answer, id)
    }

    var keys: [String] { routes.store.state.withLock { $0.objects.keys.sorted() } }

    func asset(_ id: String) -> JSONValue {
        routes.call("GET", "/api/assets/\(id)", "workspaceId=1").1["asset"] ?? .null
    }

    @Test func threeVersionsAreKeptAndListed() throws {
        let (status, _, id) = try upload(type: "application/pdf")
        #expect(status == 200)
        let (second, answer, _) = try upload(type: "application/pdf", assetID: id)
        #expect(second == 200, "\(answer)")
        #expect(answer["key"] == .string("1/digital_assets/\(id).pdf"))
        #expect(answer["version"] == .int(2))
        #expect(try upload(type: "application/pdf", assetID: id).0 == 200)
        #expect(keys == ["1/digital_assets/\(id).pdf", "1/versions/\(id)/v1.pdf", "1/versions/\(id)/v2.pdf"])
        let record = asset(id)
        #expect(record["versions"]?.arrayValue?.map { $0["version"] } == [.int(1), .int(2), .int(3)])
        #expect(record["status"] == "ready")
        let (v1Status, v1) = routes.call("GET", "/s3/download-url", "workspaceId=1&assetId=\(id)&version=1")
        #expect(v1Status == 200)
        #expect(v1["url"]?.stringValue?.contains("/versions/\(id)/v1.pdf") == true)
        #expect(routes.call("GET", "/s3/download-url", "workspaceId=1&assetId=\(id)&version=3").1["url"]?.stringValue?
            .contains("/digital_assets/\(id).pdf") == true)
        #expect(routes.call("GET", "/s3/download-url", "workspaceId=1&assetId=\(id)&version=4").0 == 404)
    }

    @Test func aVersionOfAnotherTypeMovesTheCurrentKeyAndLeavesNoOrphan() throws {
        let (_, _, id) = try upload(type: "application/pdf")
        let (status, answer, _) = try upload(type: "image/png", assetID: id)
        #expect(status == 200, "\(answer)")
        #expect(keys == ["1/digital_assets/\(id).png", "1/versions/\(id)/v1.pdf"])
        let record = asset(id)
        #expect(record["key"] == .string("1/digital_assets/\(id).png"))
        #expect(record["fileType"] == "image/png")
        #expect(record["versions"]?.arrayValue?.map { $0["fileType"] } == ["application/pdf", "image/png"])
        // The promoted copy carries the new type, the archived one the old.
        let copies = routes.store.state.withLock { $0.copies.map { "\($0.key) \($0.contentType)" } }
        #expect(copies == ["1/versions/\(id)/v1.pdf application/pdf", "1/digital_assets/\(id).png image/png"])
    }

    @Test func contentThatIsNotTheDeclaredTypeIs415AndRemoved() throws {
        let html = Array("<!DOCTYPE html><html><script>alert(1)</script></html>".utf8)
        let (status, answer, id) = try upload(type: "image/jpeg", content: html)
        #expect(status == 415, "\(answer)")
        #expect(answer["error"]?.stringValue?.contains("text/html") == true)
        #expect(keys.isEmpty)
        #expect(try routes.records.asset(id: Int64(id)!, workspaceID: 1)?.status == .rejected)
        // As a new version: the previous bytes stay current.
        let (_, _, ready) = try upload(type: "image/jpeg")
        #expect(try upload(type: "image/jpeg", assetID: ready, content: html).0 == 415)
        #expect(keys == ["1/digital_assets/\(ready).jpg"])
        #expect(asset(ready)["versions"]?.arrayValue?.count == 1)
        // And the asset takes a new version afterwards.
        #expect(try upload(type: "image/jpeg", assetID: ready).0 == 200)
    }

    @Test func aSizeOtherThanDeclaredIsRefused() throws {
        let (big, answer, _) = try upload(type: "image/jpeg", extra: "&fileSize=6291456", size: 12_582_912)
        #expect(big == 413, "\(answer)")
        // Short of it too: CONTRACT.md's "415 or 413, and the object deleted", naming both sizes.
        let (short, shortAnswer, shortID) = try upload(type: "image/jpeg", extra: "&fileSize=6291456", size: 100)
        #expect(short == 413, "\(shortAnswer)")
        let message = shortAnswer["error"]?.stringValue ?? ""
        #expect(message.contains("100 bytes") && message.contains("fileSize of 6291456"), "\(message)")
        #expect(keys.isEmpty)
        #expect(try routes.records.asset(id: Int64(shortID)!, workspaceID: 1)?.status == .rejected)
    }

    @Test func versionsOnlyOfReadyAssetsOfTheWorkspace() throws {
        let (_, _, id) = try upload(type: "image/png")
        let mallory = JWTVerifier(secret: RouteTests.secret).mint(subject: "m", workspaces: [2], ttl: 60)
        let request = Request(method: "GET", path: "/s3/start-upload", queryString: "workspaceId=2&fileType=image/png&assetId=\(id)",
                              headers: ["authorization": "Bearer \(mallory)"])
        #expect(routes.router.respond(to: request).status == .notFound)
        // One upload of a version at a time.
        #expect(routes.call("GET", "/s3/start-upload", "workspaceId=1&fileType=image/png&assetId=\(id)").0 == 200)
        #expect(routes.call("GET", "/s3/start-upload", "workspaceId=1&fileType=image/png&assetId=\(id)").0 == 409)
        #expect(routes.call("GET", "/s3/start-upload", "workspaceId=1&fileType=image/png&assetId=99").0 == 404)
    }

    @Test func aDirectUploadCanBeANewVersion() throws {
        let (_, _, id) = try upload(type: "image/png")
        let (status, body) = routes.upload(routes.form([("assetId", nil, nil, Array(id.utf8)), ("file", "b.png", nil, RouteTests.png)]))
        #expect(status == 200, "\(body)")
        #expect(body["asset"]?["versions"]?.arrayValue?.count == 2)
        #expect(keys == ["1/digital_assets/\(id).png", "1/versions/\(id)/v1.png"])
        #expect(try routes.records.versionSwitch(assetID: Int64(id)!) == nil)
    }

    /// A delete that wins the race with a direct new version's PutObject: the delete lists
    /// and removes the keys before the bytes land, and drops the switch. The upload then
    /// finds its switch gone and removes what it stored (it used to leave it for ever).
    @Test func aDirectVersionThatLosesToADeleteLeavesNothing() throws {
        let (_, _, id) = try upload(type: "image/png")
        let router = routes.router, token = routes.token
        routes.store.before("put") {
            let delete = Request(method: "DELETE", path: "/s3/delete", queryString: "workspaceId=1&assetId=\(id)",
                                 headers: ["authorization": "Bearer \(token)"])
            #expect(router.respond(to: delete).status == .ok)
        }
        let (status, body) = routes.upload(routes.form([("assetId", nil, nil, Array(id.utf8)), ("file", "b.png", nil, RouteTests.png)]))
        #expect(status == 404, "\(body)")
        #expect(keys.isEmpty)
    }

    /// A delete that holds the asset while the new version's bytes land: the version's
    /// switch is refused, and the bytes the delete may have missed are removed.
    @Test func aDirectVersionRefusedByARunningDeleteLeavesNothing() throws {
        let (_, _, id) = try upload(type: "image/png")
        let service = routes.app.service, assetID = Int64(id)!
        routes.store.during("put") {
            // The delete has begun and holds the asset; it listed the keys before this PUT.
            _ = service.assetsInMotion.write { $0.insert(assetID) }
            _ = try? service.records.beginDelete(id: assetID, now: Date())
        }
        let (status, body) = routes.upload(routes.form([("assetId", nil, nil, Array(id.utf8)), ("file", "b.png", nil, RouteTests.png)]))
        #expect(status == 404, "\(body)")
        #expect(!keys.contains { $0.hasPrefix("1/versions/\(id)/") })
    }

    /// What a crash left behind such a race is found by the reconciler's sweep of a
    /// deleted asset's versions prefix, once.
    @Test func theReconcilerSweepsADeletedAssetsVersions() throws {
        let (_, _, id) = try upload(type: "image/png")
        #expect(routes.call("DELETE", "/s3/delete", "workspaceId=1&assetId=\(id)").0 == 200)
        routes.store.state.withLock { $0.objects["1/versions/\(id)/v2.png"] = 1 }
        let reconciler = Reconciler(service: routes.app.service, interval: .seconds(60))
        #expect(reconciler.pass(startUp: true).orphansSwept == 1)
        #expect(keys.isEmpty)
        #expect(reconciler.pass(startUp: true).orphansSwept == 0, "a deleted asset is swept once")
    }

    @Test func deleteRemovesEveryKeyOfTheAsset() throws {
        let (_, _, id) = try upload(type: "application/pdf")
        _ = try upload(type: "application/pdf", assetID: id)
        _ = try upload(type: "image/png", assetID: id)
        // A stray key under the versions prefix, recorded nowhere, goes too.
        routes.store.state.withLock { $0.objects["1/versions/\(id)/stray.bin"] = 1 }
        #expect(routes.call("GET", "/s3/start-upload", "workspaceId=1&fileType=image/png&assetId=\(id)").0 == 200)
        #expect(routes.call("DELETE", "/s3/delete", "workspaceId=1&assetId=\(id)").0 == 200)
        #expect(keys.isEmpty)
        #expect(routes.store.state.withLock { $0.uploads.isEmpty })
        for (method, path, query) in [("GET", "/s3/download-url", "workspaceId=1&assetId=\(id)"), ("GET", "/api/assets/\(id)", "workspaceId=1")] {
            #expect(routes.call(method, path, query).0 == 404)
        }
        #expect(routes.call("DELETE", "/s3/delete", "workspaceId=1&assetId=\(id)").0 == 200)
        #expect(routes.call("DELETE", "/s3/delete", "workspaceId=1&assetId=12345").0 == 404)
    }

    @Test func aSwitchCutOffMidwayIsFinishedByTheReconciler() throws {
        let (_, _, id) = try upload(type: "application/pdf")
        let assetID = Int64(id)!
        // The new bytes are staged and the switch recorded; then the process died.
        let staging = "1/versions/\(id)/v2.png"
        routes.store.state.withLock {
            $0.objects[staging] = RouteTests.png.count
            $0.contents[staging] = RouteTests.png
        }
        let change = VersionSwitch(assetID: assetID, workspaceID: 1, version: 2, stagingKey: staging, newKey: "1/digital_assets/\(id).png",
                                   fileType: "image/png", fileName: nil, size: Int64(RouteTests.png.count), etag: "e", state: .stored, createdAt: Date())
        _ = try routes.records.beginDirectVersion(change)
        try routes.records.markVersionStored(assetID: assetID, etag: "e")
        let fixes = Reconciler(service: routes.app.service, interval: .seconds(60)).pass(startUp: true)
        #expect(fixes.versionsFinished == 1)
        #expect(keys == ["1/digital_assets/\(id).png", "1/versions/\(id)/v1.pdf"])
        #expect(asset(id)["versions"]?.arrayValue?.count == 2)
    }

    @Test func aDirectVersionCutOffBeforeItsBytesIsUndone() throws {
        let (_, _, id) = try upload(type: "application/pdf")
        let change = VersionSwitch(assetID: Int64(id)!, workspaceID: 1, version: 2, stagingKey: "1/versions/\(id)/v2.png",
                                   newKey: "1/digital_assets/\(id).png", fileType: "image/png", fileName: nil, size: 100, etag: "e",
                                   state: .uploading, createdAt: Date())
        _ = try routes.records.beginDirectVersion(change)
        #expect(Reconciler(service: routes.app.service, interval: .seconds(60)).pass(startUp: true).versionsUndone == 1)
        #expect(keys == ["1/digital_assets/\(id).pdf"])
        #expect(try routes.records.versionSwitch(assetID: Int64(id)!) == nil)
    }

    @Test func downloadsCarryTheRecordedNameEncodedPerRFC6266() throws {
        let (_, _, id) = try upload(type: "application/pdf", extra: "&fileName=r%C3%A9sum%C3%A9%20%E2%9C%93.pdf")
        let (status, body) = routes.call("GET", "/s3/download-url", "workspaceId=1&assetId=\(id)&disposition=attachment")
        #expect(status == 200)
        let url = try #require(body["url"]?.stringValue)
        let disposition = URLComponents(string: url)?.queryItems?.first { $0.name == "response-content-disposition" }?.value
        #expect(disposition == #"attachment; filename="r_sum_ _.pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%E2%9C%93.pdf"#)
        #expect(AssetService.contentDisposition("inline", fileName: "a \"b\".jpg") == #"inline; filename="a _b_.jpg"; filename*=UTF-8''a%20%22b%22.jpg"#)
        #expect(routes.call("GET", "/s3/download-url", "workspaceId=1&assetId=\(id)&disposition=evil").0 == 400)
        _ = try upload(type: "application/pdf", assetID: id)
        let versioned = routes.call("GET", "/s3/download-url", "workspaceId=1&assetId=\(id)&version=1&disposition=attachment").1
        let versionedName = URLComponents(string: versioned["url"]?.stringValue ?? "")?.queryItems?
            .first { $0.name == "response-content-disposition" }?.value
        #expect(versionedName?.hasSuffix("filename*=UTF-8''r%C3%A9sum%C3%A9%20%E2%9C%93%20%28v1%29.pdf") == true)
        // A name with CR LF is refused at start-upload, naming the field.
        let (refused, error) = routes.call("GET", "/s3/start-upload", "workspaceId=1&fileType=image/png&fileName=a%0D%0Ab.png")
        #expect(refused == 400)
        #expect(error["error"]?.stringValue?.contains("fileName") == true)
    }

    /// A PNG uploaded as `x.html` downloads as `x.png`, served as image/png: the client's
    /// extension stays only when it names the detected type (`.jpeg` for a JPEG).
    @Test func downloadsCarryTheDetectedTypeAndItsExtension() throws {
        func query(_ id: String, _ name: String) throws -> [String: String] {
            let (status, body) = routes.call("GET", "/s3/download-url", "workspaceId=1&assetId=\(id)&disposition=attachment")
            #expect(status == 200)
            let items = URLComponents(string: try #require(body["url"]?.stringValue))?.queryItems ?? []
            return Dictionary(items.map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        }
        let (_, polyglot) = routes.upload(routes.form([("file", "x.html", "text/html", RouteTests.png)]))
        let html = try query(try #require(polyglot["asset"]?["id"]?.stringValue), "x.html")
        #expect(html["response-content-disposition"] == #"attachment; filename="x.png"; filename*=UTF-8''x.png"#)
        #expect(html["response-content-type"] == "image/png")
        let (_, _, jpeg) = try upload(type: "image/jpeg", extra: "&fileName=holiday.JPEG")
        #expect(try query(jpeg, "holiday.JPEG")["response-content-disposition"]?.hasSuffix("UTF-8''holiday.JPEG") == true)
        #expect(try query(jpeg, "holiday.JPEG")["response-content-type"] == "image/jpeg")
    }

    @Test func aDeleteWaitsWhileAVersionIsSwitchedIn() throws {
        let (_, _, id) = try upload(type: "application/pdf")
        let router = routes.router, token = routes.token
        routes.store.during("copy") {
            let request = Request(method: "DELETE", path: "/s3/delete", queryString: "workspaceId=1&assetId=\(id)",
                                  headers: ["authorization": "Bearer \(token)"])
            let response = router.respond(to: request)
            #expect(response.status == .conflict)
            #expect(response.headers.contains { $0.0 == "Retry-After" })
        }
        #expect(try upload(type: "image/png", assetID: id).0 == 200)
        #expect(keys == ["1/digital_assets/\(id).png", "1/versions/\(id)/v1.pdf"])
        #expect(routes.call("DELETE", "/s3/delete", "workspaceId=1&assetId=\(id)").0 == 200)
        #expect(keys.isEmpty)
    }

    @Test func aVersionNumberReadBeforeAnotherVersionCameInIsRefused() throws {
        let (_, _, id) = try upload(type: "application/pdf")
        #expect(try upload(type: "application/pdf", assetID: id).0 == 200)
        let asset = try #require(try routes.records.asset(id: Int64(id)!, workspaceID: 1))
        #expect(asset.currentVersion == 2)
        // Version 2 again, as a request that read version 1 before the switch would ask.
        #expect(throws: VersionConflict.busy) {
            try routes.records.createVersionUpload(uploadID: "late", asset: asset, version: 2, stagingKey: "1/versions/\(id)/v2.pdf",
                                                        fileType: "application/pdf", fileName: nil, fileSize: nil, partSize: nil)
        }
        // And a stale switch is dropped only by its own version.
        #expect(try routes.records.discardVersionSwitch(assetID: Int64(id)!, version: 2) == false)
    }
}
