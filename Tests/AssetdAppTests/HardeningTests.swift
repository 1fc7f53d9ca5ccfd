import AssetStore
import FastCGIServer
import Foundation
import Hashing
import JSON
import S3Client
import Testing
@testable import AssetdApp

/// Races, lost answers and crashes, in process: the fake store runs the racing request in
/// the middle of an S3 call, exactly between the S3 effect and the database's
/// compare-and-set.
@Suite struct HardeningTests {
    let routes: RouteTests
    init() throws { routes = try RouteTests() }

    static let etag = "0123456789abcdef0123456789abcdef"

    func start() throws -> (assetID: String, uploadID: String, key: String) {
        let (status, body) = routes.call("GET", "/s3/start-upload", "workspaceId=1&fileType=image/jpeg")
        try #require(status == 200)
        return (body["assetId"]!.stringValue!, body["uploadId"]!.stringValue!, body["key"]!.stringValue!)
    }

    func completeBody(_ started: (assetID: String, uploadID: String, key: String), etag: String = etag) -> String {
        #"{"uploadId":"\#(started.uploadID)","assetId":"\#(started.assetID)","workspaceId":1,"parts":[{"ETag":"\#(etag)","PartNumber":1}]}"#
    }

    func abortBody(_ started: (assetID: String, uploadID: String, key: String)) -> String {
        #"{"uploadId":"\#(started.uploadID)","assetId":"\#(started.assetID)","workspaceId":1}"#
    }

    func status(of assetID: String) throws -> AssetStatus? {
        try routes.records.asset(id: Int64(assetID)!, workspaceID: 1)?.status
    }

    func objectExists(_ key: String) -> Bool {
        routes.store.state.withLock { $0.objects[key] != nil }
    }

    @Test func headOnStartUploadIs405AndCreatesNothing() throws {
        let (status, body) = routes.call("HEAD", "/s3/start-upload", "workspaceId=1&fileType=image/jpeg")
        #expect(status == 405)
        #expect(body["error"]?.stringValue?.contains("HEAD") == true)
        #expect(routes.store.state.withLock { $0.calls }.isEmpty)
        #expect(try routes.records.assets(workspaceID: 1, limit: 10, before: nil).isEmpty)
        // A GET without side effects answers HEAD.
        #expect(routes.call("HEAD", "/api/assets", "workspaceId=1").0 == 200)
    }

    @Test func abortLosingToCompleteIs409AndTheObjectStays() throws {
        let started = try start()
        #expect(routes.call("POST", "/s3/complete-upload", body: completeBody(started)).0 == 200)
        let (status, body) = routes.call("POST", "/s3/abort-upload", body: abortBody(started))
        #expect(status == 409, "\(body)")
        #expect(try self.status(of: started.assetID) == .ready)
        #expect(objectExists(started.key))
    }

    @Test func completeLosingToAbortIs409AndLeavesNoObject() throws {
        let started = try start()
        let database = routes.records
        // The abort's compare-and-set lands between S3's complete and the complete's own.
        routes.store.during("complete") { _ = try? database.abortUpload(uploadID: started.uploadID) }
        let (status, body) = routes.call("POST", "/s3/complete-upload", body: completeBody(started))
        #expect(status == 409, "\(body)")
        #expect(try self.status(of: started.assetID) == .aborted)
        #expect(!objectExists(started.key))
        // The abort's own answer, retried by the client: a success.
        #expect(routes.call("POST", "/s3/abort-upload", body: abortBody(started)).0 == 200)
    }

    @Test func completeRetriedAfterADeleteIs404() throws {
        let started = try start()
        #expect(routes.call("POST", "/s3/complete-upload", body: completeBody(started)).0 == 200)
        #expect(routes.call("DELETE", "/s3/delete", "workspaceId=1&assetId=\(started.assetID)").0 == 200)
        #expect(routes.call("POST", "/s3/complete-upload", body: completeBody(started)).0 == 404)
        #expect(routes.call("POST", "/s3/abort-upload", body: abortBody(started)).0 == 404)
        #expect(routes.call("DELETE", "/s3/delete", "workspaceId=1&assetId=\(started.assetID)").0 == 200)
    }

    @Test func completeRacingADeleteLeavesNothing() throws {
        let started = try start()
        let router = routes.router, token = routes.token
        routes.store.during("complete") {
            let request = Request(method: "DELETE", path: "/s3/delete", queryString: "workspaceId=1&assetId=\(started.assetID)",
                                  headers: ["authorization": "Bearer \(token)"])
            #expect(router.respond(to: request).status == .ok)
        }
        #expect(routes.call("POST", "/s3/complete-upload", body: completeBody(started)).0 == 404)
        #expect(try self.status(of: started.assetID) == .deleted)
        #expect(!objectExists(started.key))
    }

    @Test func aCompleteThatS3FinishedIsRecovered() throws {
        let started = try start()
        // S3 completed it, but the answer was lost: the retry meets NoSuchUpload, and the
        // object's ETag is the multipart ETag of the submitted parts.
        let expected = AssetService.multipartETag([(1, Self.etag)])!
        routes.store.state.withLock {
            $0.objects[started.key] = 5
            $0.etags[started.key] = "\"\(expected)\""
            $0.contents[started.key] = FakeObjectStore.magic(forKey: started.key)
        }
        routes.store.fail("complete", with: S3Error.service(.noSuchUpload, status: 404, message: "", requestID: nil))
        let (status, body) = routes.call("POST", "/s3/complete-upload", body: completeBody(started))
        #expect(status == 200, "\(body)")
        #expect(try self.status(of: started.assetID) == .ready)
    }

    @Test func aNoSuchUploadWithAnotherObjectIsNotRecovered() throws {
        let started = try start()
        routes.store.state.withLock {
            $0.objects[started.key] = 5
            $0.etags[started.key] = "\"ffffffffffffffffffffffffffffffff-1\""
        }
        routes.store.fail("complete", with: S3Error.service(.noSuchUpload, status: 404, message: "", requestID: nil))
        #expect(routes.call("POST", "/s3/complete-upload", body: completeBody(started)).0 == 409)
        #expect(try self.status(of: started.assetID) == .pending)
    }

    @Test func multipartETagIsTheMD5OfThePartMD5s() {
        // Two parts whose MD5s are all zero and all 0xff bytes: MD5 of their 32 bytes, "-2".
        let digest = Digest(.md5)
        digest.update([UInt8](repeating: 0, count: 16) + [UInt8](repeating: 0xff, count: 16))
        let expected = Encoding.hex(digest.finalize()) + "-2"
        #expect(AssetService.multipartETag([(1, String(repeating: "0", count: 32)), (2, String(repeating: "F", count: 32))]) == expected)
        #expect(AssetService.multipartETag([(1, "not-an-md5")]) == nil)
    }

    @Test func deleteRacingADirectUploadWins() throws {
        let router = routes.router, token = routes.token, database = routes.records
        routes.store.during("put") {
            // The asset the upload is storing: the newest of workspace 1.
            let id = try! database.assets(workspaceID: 1, limit: 1, before: nil)[0].id
            let request = Request(method: "DELETE", path: "/s3/delete", queryString: "workspaceId=1&assetId=\(id)",
                                  headers: ["authorization": "Bearer \(token)"])
            #expect(router.respond(to: request).status == .ok)
        }
        let (status, body) = routes.upload(routes.form([("file", "a.png", nil, RouteTests.png)]))
        #expect(status == 409, "\(body)")
        #expect(routes.store.state.withLock { $0.objects.isEmpty })
        let asset = try #require(try database.asset(id: 1, workspaceID: 1))
        #expect(asset.status == .deleted)
    }

    @Test func anUnansweredPutThatLandedIsDeleted() throws {
        routes.store.fail("put", with: S3Error.timeout("no answer"))
        let (status, _) = routes.upload(routes.form([("file", "a.png", nil, RouteTests.png)]))
        #expect(status == 502)
        #expect(routes.store.state.withLock { $0.objects.isEmpty })
        #expect(try routes.records.asset(id: 1, workspaceID: 1) == nil)
        #expect(routes.store.state.withLock { $0.calls } == ["put", "head", "deleteObjects"])
    }

    @Test func anUnsettledPutStaysPendingForTheReconciler() throws {
        routes.store.fail("put", with: S3Error.network("reset"))
        routes.store.fail("head", with: S3Error.network("still down"))
        #expect(routes.upload(routes.form([("file", "a.png", nil, RouteTests.png)])).0 == 502)
        #expect(try routes.records.asset(id: 1, workspaceID: 1)?.status == .pending)
        // S3 is back: the reconciler finds the whole object and marks the asset ready.
        let key = try #require(try routes.records.asset(id: 1, workspaceID: 1)?.key)
        let md5 = Digest(.md5)
        md5.update(RouteTests.png)
        routes.store.state.withLock { $0.etags[key] = "\"\(Encoding.hex(md5.finalize()))\"" }
        let fixes = Reconciler(service: routes.app.service, interval: .seconds(60)).pass(startUp: true)
        #expect(fixes.directReady == 1)
        #expect(try routes.records.asset(id: 1, workspaceID: 1)?.status == .ready)
    }

    @Test func reconcilerDiscardsAPendingDirectUploadWithoutItsObject() throws {
        let asset = try routes.records.createAsset(
            NewAsset(workspaceID: 1, fileType: "image/png", fileExtension: "png", fileName: nil, size: 10, etag: Self.etag))
        // A partial object of another size: deleted with the record.
        routes.store.state.withLock { $0.objects[asset.key] = 3 }
        let reconciler = Reconciler(service: routes.app.service, interval: .seconds(60))
        // A periodic pass leaves a young record to the request that may still own it.
        #expect(reconciler.pass().directDiscarded == 0)
        #expect(reconciler.pass(startUp: true).directDiscarded == 1)
        #expect(try routes.records.asset(id: asset.id, workspaceID: 1) == nil)
        #expect(!objectExists(asset.key))
    }

    @Test func reconcilerExpiresOldPendingUploadsAndFinishesDeletes() throws {
        let started = try start()
        let done = try start()
        #expect(routes.call("POST", "/s3/complete-upload", body: completeBody(done)).0 == 200)
        // A delete that stopped after its first step.
        guard case .deleting? = try routes.records.beginDelete(id: Int64(done.assetID)!, now: Date()) else {
            Issue.record("beginDelete did not start the delete")
            return
        }
        #expect(routes.call("GET", "/api/assets/\(done.assetID)", "workspaceId=1").0 == 404)
        let later = Date().addingTimeInterval(Double(routes.app.configuration.pendingUploadTTL) + 1)
        let service = AssetService(configuration: routes.app.configuration, records: routes.records, objects: routes.store,
                                   detector: routes.app.service.detector, logger: routes.app.logger, now: { later })
        let fixes = Reconciler(service: service, interval: .seconds(60)).pass()
        #expect(fixes.uploadsExpired == 1)
        #expect(fixes.deletesFinished == 1)
        #expect(try status(of: started.assetID) == .expired)
        #expect(try status(of: done.assetID) == .deleted)
        #expect(!objectExists(done.key))
        #expect(routes.store.state.withLock { $0.uploads[started.uploadID] } == nil)
        #expect(routes.call("GET", "/s3/get-upload-url", "workspaceId=1&assetId=\(started.assetID)&UploadId=\(started.uploadID)&PartNumber=1").0 == 409)
    }

    @Test func s3RefusalsAreBoundedStatuses() throws {
        routes.store.fail("create", with: S3Error.refused("paused", retryAfter: 4))
        let request = Request(method: "GET", path: "/s3/start-upload", queryString: "workspaceId=1&fileType=image/jpeg",
                              headers: ["authorization": "Bearer \(routes.token)"])
        let response = routes.router.respond(to: request)
        #expect(response.status == .serviceUnavailable)
        #expect(response.headers.contains { $0.0 == "Retry-After" && $0.1 == "4" })
        #expect(try routes.records.assets(workspaceID: 1, limit: 10, before: nil).isEmpty)
        // A timeout is S3 failing: 502 (CONTRACT.md lists no 504), with when to try again.
        routes.store.fail("create", with: S3Error.timeout("slow"))
        let timedOut = routes.router.respond(to: request)
        #expect(timedOut.status == .badGateway)
        #expect(timedOut.headers.contains { $0.0 == "Retry-After" && $0.1 == "5" })
        #expect(try JSONParser.parse(timedOut.body)["error"] == "S3 did not answer in time; try again shortly.")
    }
}
