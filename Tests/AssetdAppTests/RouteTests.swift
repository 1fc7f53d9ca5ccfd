import AssetStore
import FastCGIServer
import Foundation
import JSON
import Media
import Logging
import S3Client
import Testing
@testable import AssetdApp
import TestFiles

/// The routes in process: a real SQLite file, a fake object store.
struct RouteTests {
    static let secret = String(repeating: "s", count: 40)
    let store = FakeObjectStore()
    let app: Routes
    let router: Router
    let token: String

    /// `thumbnails` makes the service's thumbnail worker from its records and this store.
    /// `environment` adds settings. The fake's ETags are no MD5s unless `md5ETags` (then
    /// they are S3's, and complete-upload's ETag checks run, as they do by default).
    init(environment: [String: String] = [:], md5ETags: Bool = false,
         thumbnails: ((any RecordStore, FakeObjectStore) throws -> ThumbnailWorker)? = nil) throws {
        let path = TestFiles.sqlitePath("assetd-routes")
        var configuration = try Configuration(environment: [
            "AWS_BUCKET": "b", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s",
            "ASSETD_JWT_SECRET": Self.secret, "ASSETD_DATABASE": path, "ASSETD_TMP_DIR": NSTemporaryDirectory(),
        ].merging(environment) { $1 })
        configuration.objectETagsAreMD5 = md5ETags
        store.state.withLock { $0.multipartMD5ETags = md5ETags }
        let records = try SQLiteRecordStore(path: path)
        let service = AssetService(configuration: configuration, records: records, objects: store,
                                   detector: try ContentDetector(), logger: Logger(label: "test"),
                                   thumbnails: try thumbnails?(records, store))
        app = Routes(service: service)
        router = app.router()
        token = JWTVerifier(secret: Self.secret).mint(subject: "u", workspaces: [1], ttl: 60)
    }

    var records: any RecordStore { app.service.records }

    func call(_ method: String, _ path: String, _ query: String = "", body: String? = nil) -> (Int, JSONValue) {
        let request = Request(method: method, path: path, queryString: query,
                              headers: ["authorization": "Bearer \(token)"],
                              contentLength: body?.utf8.count, body: BytesBody(Array((body ?? "").utf8)))
        let response = router.respond(to: request)
        return (response.status.code, (try? JSONParser.parse(response.body)) ?? .null)
    }

    @Test func startUploadStoresMetadataTypeAndKey() throws {
        let (status, body) = call("GET", "/s3/start-upload", "workspaceId=1&fileType=Image/JPG&fileName=..%2Fx.jpg")
        #expect(status == 200)
        let assetID = try #require(body["assetId"]?.stringValue)
        #expect(body["key"] == .string("1/digital_assets/\(assetID).jpg"))
        let created = try #require(store.state.withLock { $0.created.first })
        #expect(created.contentType == "image/jpeg")
        #expect(created.metadata == ["workspace_id": "1", "asset_id": assetID])
        let record = try #require(try records.asset(id: Int64(assetID)!, workspaceID: 1))
        #expect(record.fileName == "x.jpg")
        #expect(record.status == .pending)
    }

    @Test func s3FailureAtStartLeavesNoRecord() throws {
        store.fail("create", with: S3Error.service(.accessDenied, status: 403, message: "no", requestID: nil))
        let (status, body) = call("GET", "/s3/start-upload", "workspaceId=1&fileType=image/png")
        #expect(status == 502)
        #expect(body["error"]?.stringValue?.contains("AccessDenied") == true)
        #expect(try records.assets(workspaceID: 1, limit: 10, before: nil).isEmpty)
    }

    @Test func completeFlowAndRetry() throws {
        let (_, started) = call("GET", "/s3/start-upload", "workspaceId=1&fileType=image/png&fileSize=6000000")
        #expect(started["partSize"] == .number("5242880"))
        let upload = started["uploadId"]!.stringValue!, asset = started["assetId"]!.stringValue!
        let body = #"{"uploadId":"\#(upload)","assetId":"\#(asset)","workspaceId":1,"parts":[{"ETag":"\"a\"","PartNumber":1},{"ETag":"b","PartNumber":2}]}"#
        store.state.withLock { $0.completedSize = 6_000_000 }
        let (status, first) = call("POST", "/s3/complete-upload", body: body)
        #expect(status == 200)
        #expect(first["etag"] == "\"etag-2\"")
        let (again, second) = call("POST", "/s3/complete-upload", body: body.replacingOccurrences(of: #""\"a\"""#, with: #""a""#))
        #expect(again == 200)
        #expect(second == first)
        #expect(store.state.withLock { $0.calls.filter { $0 == "complete" }.count } == 1)
        #expect(try records.asset(id: Int64(asset)!, workspaceID: 1)?.status == .ready)
    }

    @Test func s3PartErrorsAre400AndGoneUploadIs409() throws {
        let (_, started) = call("GET", "/s3/start-upload", "workspaceId=1&fileType=image/png")
        let upload = started["uploadId"]!.stringValue!, asset = started["assetId"]!.stringValue!
        let body = #"{"uploadId":"\#(upload)","assetId":\#(asset),"workspaceId":"1","parts":[{"ETag":"a","PartNumber":1}]}"#
        store.fail("complete", with: S3Error.service(.invalidPart, status: 400, message: "bad etag", requestID: nil))
        #expect(call("POST", "/s3/complete-upload", body: body).0 == 400)
        store.fail("complete", with: S3Error.service(.noSuchUpload, status: 404, message: "", requestID: nil))
        #expect(call("POST", "/s3/complete-upload", body: body).0 == 409)
        store.fail("complete", with: S3Error.service(.internalError, status: 500, message: "", requestID: nil))
        #expect(call("POST", "/s3/complete-upload", body: body).0 == 502)
        #expect(try records.asset(id: Int64(asset)!, workspaceID: 1)?.status == .pending)
    }

    @Test func deleteRemovesOriginalAndThumbnailAndAbortsPending() throws {
        let (_, started) = call("GET", "/s3/start-upload", "workspaceId=1&fileType=image/webp")
        let asset = started["assetId"]!.stringValue!
        #expect(call("DELETE", "/s3/delete", "workspaceId=1&assetId=\(asset)").0 == 200)
        let deleted = store.state.withLock { $0.deleted }
        #expect(deleted == [["1/digital_assets/\(asset).webp", "1/thumbnails/\(asset).jpg"]])
        #expect(store.state.withLock { $0.calls.contains("abort") })
        #expect(call("DELETE", "/s3/delete", "workspaceId=1&assetId=\(asset)").0 == 200)
        #expect(store.state.withLock { $0.calls.filter { $0 == "deleteObjects" }.count } == 1)
    }

    @Test func batchPresignNamesEachPart() throws {
        let (_, started) = call("GET", "/s3/start-upload", "workspaceId=1&fileType=application/pdf")
        let upload = started["uploadId"]!.stringValue!, asset = started["assetId"]!.stringValue!
        let (status, body) = call("GET", "/s3/get-upload-urls", "workspaceId=1&assetId=\(asset)&UploadId=\(upload)&partNumbers=2-4,9")
        #expect(status == 200)
        let urls = try #require(body["urls"]?.arrayValue)
        #expect(urls.map { $0["partNumber"] } == [.number("2"), .number("3"), .number("4"), .number("9")])
        #expect(urls[0]["url"]?.stringValue?.contains("partNumber=2&uploadId=\(upload)") == true)
    }

    @Test func livenessMakesNoS3Call() {
        store.fail("headBucket", with: S3Error.network("down"))
        #expect(router.respond(to: Request(method: "GET", path: "/healthz")).status == .ok)
        #expect(router.respond(to: Request(method: "HEAD", path: "/healthz")).status == .ok)
        #expect(store.state.withLock { $0.calls }.isEmpty)
    }

    @Test func readinessProbesOnceThenReadsTheCache() throws {
        let first = router.respond(to: Request(method: "GET", path: "/readyz"))
        #expect(first.status == .ok)
        #expect(try JSONParser.parse(first.body) == ["ok": true, "database": true, "s3": true])
        store.fail("headBucket", with: S3Error.network("down"))
        // Within the cache's few seconds: the same answer, and no second S3 call.
        #expect(router.respond(to: Request(method: "GET", path: "/readyz")).status == .ok)
        #expect(store.state.withLock { $0.calls } == ["headBucket"])
        // A fresh probe sees S3 down; the answer is 503, with Retry-After, and names no bucket.
        let state = app.service.probeDependencies()
        #expect(state.database && !state.s3 && !state.ok)
        store.fail("headBucket", with: S3Error.network("down"))
        let fresh = Routes(service: app.service, readinessMaxAge: .zero).router().respond(to: Request(method: "GET", path: "/readyz"))
        #expect(fresh.status == .serviceUnavailable)
        #expect(try JSONParser.parse(fresh.body) == ["ok": false, "database": true, "s3": false])
        #expect(fresh.headers.contains { $0.0 == "Retry-After" && $0.1 == "5" })
    }

    /// An asset whose delete began but did not finish answers 404 by id: the list must not
    /// show it either, nor presign its thumbnail (it used to list every status but deleted).
    @Test func anAssetBeingDeletedIsNotListed() throws {
        let (_, kept) = call("GET", "/s3/start-upload", "workspaceId=1&fileType=image/png")
        let (_, going) = call("GET", "/s3/start-upload", "workspaceId=1&fileType=image/png")
        let goingID = try #require(going["assetId"]?.stringValue)
        guard case .deleting? = try records.beginDelete(id: Int64(goingID)!, now: Date()) else {
            Issue.record("beginDelete did not start the delete")
            return
        }
        #expect(call("GET", "/api/assets/\(goingID)", "workspaceId=1").0 == 404)
        let (status, list) = call("GET", "/api/assets", "workspaceId=1")
        #expect(status == 200)
        #expect(list["assets"]?.arrayValue?.map { $0["id"] } == [kept["assetId"]!])
    }

    /// CONTRACT.md names list-parts' query `uploadId` (get-upload-url's is S3's `UploadId`):
    /// a missing or malformed one is refused naming the field the route reads.
    @Test func eachPartRouteNamesItsOwnUploadIdField() throws {
        let (_, started) = call("GET", "/s3/start-upload", "workspaceId=1&fileType=application/pdf")
        let upload = try #require(started["uploadId"]?.stringValue), asset = try #require(started["assetId"]?.stringValue)
        let missing = call("GET", "/s3/list-parts", "workspaceId=1&assetId=\(asset)")
        #expect(missing.0 == 400)
        #expect(missing.1["error"] == "uploadId is required.")
        #expect(call("GET", "/s3/list-parts", "workspaceId=1&assetId=\(asset)&uploadId=a%20b").1["error"] == "uploadId is not a valid upload id.")
        #expect(call("GET", "/s3/list-parts", "workspaceId=1&assetId=\(asset)&uploadId=\(upload)").0 == 200)
        #expect(call("GET", "/s3/get-upload-url", "workspaceId=1&assetId=\(asset)&PartNumber=1").1["error"] == "UploadId is required.")
        #expect(call("GET", "/s3/get-upload-urls", "workspaceId=1&assetId=\(asset)&partNumbers=1").1["error"] == "UploadId is required.")
    }

    /// docs/API.md: `order` alone is taken, but a search without `sort` lists its best
    /// matches first, so `order=asc` there is a 400 naming order (not a silent reversal).
    @Test func orderWithoutSortIsRefusedOnlyForAscendingSearches() throws {
        #expect(call("GET", "/api/assets", "workspaceId=1&order=asc").0 == 200)
        #expect(call("GET", "/api/assets", "workspaceId=1&q=beach&order=desc").0 == 200)
        #expect(call("GET", "/api/assets", "workspaceId=1&q=beach&sort=name&order=asc").0 == 200)
        let (status, body) = call("GET", "/api/assets", "workspaceId=1&q=beach&order=asc")
        #expect(status == 400)
        #expect(body["error"]?.stringValue?.hasPrefix("order=asc needs a sort") == true, "\(body)")
    }
}
