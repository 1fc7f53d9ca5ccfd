import AssetStore
import FastCGIServer
import Foundation
import Hashing
import JSON
import Logging
import Media
import S3Client
import Synchronization
import Testing
@testable import AssetdApp

/// ASSETD_SSE: its settings, check-config's verdict, and every check that compared an ETag
/// with an MD5, run under SSE-KMS on the fake store (`kmsETags`), whose ETags then are not
/// MD5s, as S3's are not under aws:kms.
@Suite struct ServerSideEncryptionSettingsTests {
    let base = ["AWS_BUCKET": "b", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s",
                "ASSETD_JWT_SECRET": String(repeating: "j", count: 32), "ASSETD_DATABASE": "/tmp/x.sqlite"]

    func parse(_ settings: [String: String]) throws -> ServerSideEncryption {
        try Configuration(environment: base.merging(settings) { $1 }).serverSideEncryption
    }

    func error(_ settings: [String: String]) -> String {
        do { _ = try parse(settings); return "" } catch { return "\(error)" }
    }

    @Test func validSettings() throws {
        #expect(try parse([:]) == .none)
        #expect(try parse(["ASSETD_SSE": ""]) == .none)
        #expect(try parse(["ASSETD_SSE": "AES256"]) == .aes256)
        #expect(try parse(["ASSETD_SSE": "aws:kms"]) == .kms(keyID: nil, bucketKey: nil))
        #expect(try parse(["ASSETD_SSE": "aws:kms", "ASSETD_SSE_KMS_KEY_ID": "alias/assets", "ASSETD_SSE_BUCKET_KEY": "on"])
            == .kms(keyID: "alias/assets", bucketKey: true))
        #expect(try parse(["ASSETD_SSE": "aws:kms", "ASSETD_SSE_BUCKET_KEY": "off"]) == .kms(keyID: nil, bucketKey: false))
        // The S3 client gets it: every write then carries it.
        let configuration = try Configuration(environment: base.merging(["ASSETD_SSE": "AES256"]) { $1 })
        #expect(configuration.s3().serverSideEncryption == .aes256)
        #expect(configuration.s3(gated: true).serverSideEncryption == .aes256)
        // complete-upload's ETag checks (per-part checksums) run only where ETags are MD5s.
        #expect(configuration.objectETagsAreMD5)
        #expect(try Configuration(environment: base).objectETagsAreMD5)
        #expect(try !Configuration(environment: base.merging(["ASSETD_SSE": "aws:kms"]) { $1 }).objectETagsAreMD5)
    }

    @Test func mistakesStopStartUpNamingTheSetting() {
        #expect(error(["ASSETD_SSE": "aes256"]) == "ASSETD_SSE must be AES256 or aws:kms (or unset for none), not aes256")
        #expect(error(["ASSETD_SSE": "kms"]).hasPrefix("ASSETD_SSE must be AES256 or aws:kms"))
        #expect(error(["ASSETD_SSE": "AES256", "ASSETD_SSE_KMS_KEY_ID": "k"]).hasPrefix("ASSETD_SSE_KMS_KEY_ID applies only to ASSETD_SSE=aws:kms"))
        #expect(error(["ASSETD_SSE": "AES256", "ASSETD_SSE_BUCKET_KEY": "on"]).hasPrefix("ASSETD_SSE_BUCKET_KEY applies only to ASSETD_SSE=aws:kms"))
        #expect(error(["ASSETD_SSE_KMS_KEY_ID": "k"]).hasPrefix("ASSETD_SSE_KMS_KEY_ID is set but ASSETD_SSE is not"))
        #expect(error(["ASSETD_SSE_BUCKET_KEY": "on"]).hasPrefix("ASSETD_SSE_BUCKET_KEY is set but ASSETD_SSE is not"))
        #expect(error(["ASSETD_SSE": "aws:kms", "ASSETD_SSE_BUCKET_KEY": "maybe"]) == "ASSETD_SSE_BUCKET_KEY must be on or off, not maybe")
        #expect(error(["ASSETD_SSE": "aws:kms", "ASSETD_SSE_KMS_KEY_ID": "alias/a b"]).hasPrefix("ASSETD_SSE_KMS_KEY_ID must be"))
    }

    /// The switch that the multipart ETag check of complete-upload reads.
    @Test func etagsAreMD5sExceptUnderKMS() {
        #expect(ServerSideEncryption.none.etagsAreMD5)
        #expect(ServerSideEncryption.aes256.etagsAreMD5)
        #expect(!ServerSideEncryption.kms(keyID: "k", bucketKey: nil).etagsAreMD5)
    }

    @Test func checkConfigSaysWhetherTheBucketDefaultAgrees() {
        let check = ConfigCheck(environment: [:], file: nil, logger: Logger(label: "test"))
        func verdict(_ configured: ServerSideEncryption, _ found: ServerSideEncryption) -> Bool {
            check.encryption(configured: configured) { found }.ok
        }
        let key = "1234abcd-12ab-34cd-56ef-1234567890ab"
        let arn = "arn:aws:kms:us-east-1:111122223333:key/\(key)"
        #expect(verdict(.none, .none))
        #expect(verdict(.none, .aes256), "every AWS bucket's default since 2023; ETags stay MD5s")
        #expect(!verdict(.none, .kms(keyID: arn, bucketKey: nil)), "KMS ETags where assetd expects MD5s")
        #expect(verdict(.aes256, .aes256))
        #expect(!verdict(.aes256, .none))
        #expect(!verdict(.aes256, .kms(keyID: nil, bucketKey: nil)))
        #expect(verdict(.kms(keyID: key, bucketKey: true), .kms(keyID: arn, bucketKey: true)), "a key id and its ARN")
        #expect(verdict(.kms(keyID: "alias/assets", bucketKey: nil), .kms(keyID: "arn:aws:kms:us-east-1:111122223333:alias/assets", bucketKey: nil)))
        #expect(verdict(.kms(keyID: nil, bucketKey: nil), .kms(keyID: nil, bucketKey: nil)))
        #expect(!verdict(.kms(keyID: key, bucketKey: nil), .kms(keyID: "arn:aws:kms:us-east-1:111122223333:key/other", bucketKey: nil)))
        #expect(!verdict(.kms(keyID: nil, bucketKey: nil), .kms(keyID: arn, bucketKey: nil)), "no key id means aws/s3, not the bucket's key")
        #expect(!verdict(.kms(keyID: key, bucketKey: nil), .none))
        #expect(!verdict(.kms(keyID: key, bucketKey: nil), .aes256))
        let unreadable = check.encryption(configured: .aes256) { throw S3Error.service(.accessDenied, status: 403, message: "", requestID: nil) }
        #expect(!unreadable.ok)
        #expect(unreadable.line.hasPrefix("FAIL encryption: ASSETD_SSE is AES256, but the bucket's default encryption could not be read"))
        #expect(check.encryption(configured: .none) { throw S3Error.service(.accessDenied, status: 403, message: "", requestID: nil) }.ok)
    }
}

/// Each place that compared an ETag with an MD5, under SSE-KMS. Before the KMS handling,
/// each of these failed: the reconciler discarded a whole direct upload, undid a whole new
/// version, and complete-upload's recovery answered 409 for an upload S3 had completed.
@Suite struct KMSETagTests {
    let routes: RouteTests
    init() throws {
        routes = try RouteTests(environment: ["ASSETD_SSE": "aws:kms", "ASSETD_SSE_KMS_KEY_ID": "alias/assetd"])
        routes.store.state.withLock { $0.kmsETags = true }
    }

    var md5OfPNG: String {
        let digest = Digest(.md5)
        digest.update(RouteTests.png)
        return Encoding.hex(digest.finalize())
    }

    /// The direct upload's PutObject records the bytes' MD5 as metadata, which S3 checked
    /// against Content-MD5; the stored ETag is S3's, not the MD5.
    @Test func aDirectUploadRecordsItsMD5AsMetadata() throws {
        let (status, body) = routes.upload(routes.form([("file", "a.png", nil, RouteTests.png)]))
        #expect(status == 200, "\(body)")
        let key = try #require(body["asset"]?["key"]?.stringValue)
        let metadata = routes.store.state.withLock { $0.metadata[key] }
        #expect(metadata == ["workspace_id": "1", "asset_id": body["asset"]?["id"]?.stringValue ?? "", "md5": md5OfPNG])
        let etag = try #require(body["asset"]?["etag"]?.stringValue)
        #expect(AssetService.unquoted(etag) != md5OfPNG, "the fake answers KMS ETags")
        #expect(etag == routes.store.state.withLock { $0.etags[key] })
    }

    /// Without SSE-KMS the metadata is as it always was: the ETag is the MD5.
    @Test func withoutKMSNoMD5Metadata() throws {
        let plain = try RouteTests(environment: ["ASSETD_SSE": "AES256"])
        let (status, body) = plain.upload(plain.form([("file", "a.png", nil, RouteTests.png)]))
        #expect(status == 200)
        let key = try #require(body["asset"]?["key"]?.stringValue)
        #expect(plain.store.state.withLock { $0.metadata[key]?["md5"] } == nil)
    }

    /// A direct upload whose PutObject landed but got no answer, settled by the reconciler:
    /// the object's ETag is not the recorded MD5, its `md5` metadata is.
    @Test func theReconcilerFindsAWholeDirectUploadByItsMD5Metadata() throws {
        routes.store.fail("put", with: S3Error.network("reset"))
        routes.store.fail("head", with: S3Error.network("still down"))
        #expect(routes.upload(routes.form([("file", "a.png", nil, RouteTests.png)])).0 == 502)
        let pending = try #require(try routes.records.asset(id: 1, workspaceID: 1))
        #expect(pending.status == .pending)
        #expect(routes.store.state.withLock { $0.etags[pending.key] } != "\"\(md5OfPNG)\"")
        let fixes = Reconciler(service: routes.app.service, interval: .seconds(60)).pass(startUp: true)
        #expect(fixes.directReady == 1)
        #expect(fixes.directDiscarded == 0)
        let ready = try #require(try routes.records.asset(id: 1, workspaceID: 1))
        #expect(ready.status == .ready)
        #expect(ready.etag == routes.store.state.withLock { $0.etags[pending.key] }, "S3's ETag is recorded once ready")
    }

    /// Other bytes at the key (a different MD5 in the metadata, or none) are still not ours.
    @Test func theReconcilerStillDiscardsOtherBytes() throws {
        let asset = try routes.records.createAsset(
            NewAsset(workspaceID: 1, fileType: "image/png", fileExtension: "png", fileName: nil, size: 10, etag: md5OfPNG))
        routes.store.state.withLock {
            $0.objects[asset.key] = 10
            $0.etags[asset.key] = FakeObjectStore.kmsETag()
            $0.metadata[asset.key] = ["md5": String(repeating: "0", count: 32)]
        }
        let fixes = Reconciler(service: routes.app.service, interval: .seconds(60)).pass(startUp: true)
        #expect(fixes.directDiscarded == 1)
        #expect(routes.store.state.withLock { $0.objects[asset.key] } == nil)
    }

    /// A direct new version whose PutObject landed unanswered: the reconciler switches it in.
    @Test func theReconcilerFinishesADirectVersionByItsMD5Metadata() throws {
        let (first, body) = routes.upload(routes.form([("file", "a.png", nil, RouteTests.png)]))
        #expect(first == 200)
        let id = try #require(body["asset"]?["id"]?.stringValue)
        routes.store.fail("put", with: S3Error.timeout("no answer"))
        let (status, _) = routes.upload(routes.form([("assetId", nil, nil, Array(id.utf8)), ("file", "b.png", nil, RouteTests.png)]))
        #expect(status == 502)
        #expect(try routes.records.versionSwitch(assetID: Int64(id)!)?.state == .uploading)
        let fixes = Reconciler(service: routes.app.service, interval: .seconds(60)).pass(startUp: true)
        #expect(fixes.versionsFinished == 1)
        #expect(fixes.versionsUndone == 0)
        #expect(try routes.records.versions(assetID: Int64(id)!).count == 1)
        #expect(try routes.records.asset(id: Int64(id)!, workspaceID: 1)?.currentVersion == 2)
    }

    func start() throws -> (assetID: String, uploadID: String, key: String) {
        let (status, body) = routes.call("GET", "/s3/start-upload", "workspaceId=1&fileType=image/jpeg")
        try #require(status == 200)
        return (body["assetId"]!.stringValue!, body["uploadId"]!.stringValue!, body["key"]!.stringValue!)
    }

    func completeBody(_ started: (assetID: String, uploadID: String, key: String), parts: Int) -> String {
        let list = (1...parts).map { #"{"ETag":"\#(AssetService.unquoted(FakeObjectStore.kmsETag()))","PartNumber":\#($0)}"# }
        return #"{"uploadId":"\#(started.uploadID)","assetId":"\#(started.assetID)","workspaceId":1,"parts":[\#(list.joined(separator: ","))]}"#
    }

    /// S3 completed the upload and the answer was lost: the retry meets NoSuchUpload. Under
    /// KMS no ETag can be computed from the parts; a multipart object of as many parts at
    /// the upload's own key, passing the content check, is the one completed.
    @Test func aCompleteThatS3FinishedIsRecoveredUnderKMS() throws {
        let started = try start()
        routes.store.state.withLock {
            $0.objects[started.key] = 10
            $0.etags[started.key] = FakeObjectStore.kmsETag(parts: 2)
            $0.contents[started.key] = FakeObjectStore.magic(forKey: started.key)
        }
        routes.store.fail("complete", with: S3Error.service(.noSuchUpload, status: 404, message: "", requestID: nil))
        let (status, body) = routes.call("POST", "/s3/complete-upload", body: completeBody(started, parts: 2))
        #expect(status == 200, "\(body)")
        #expect(try routes.records.asset(id: Int64(started.assetID)!, workspaceID: 1)?.status == .ready)
    }

    @Test func aNoSuchUploadWithAnObjectOfOtherPartsIsNotRecoveredUnderKMS() throws {
        let started = try start()
        routes.store.state.withLock {
            $0.objects[started.key] = 10
            $0.etags[started.key] = FakeObjectStore.kmsETag(parts: 3)
            $0.contents[started.key] = FakeObjectStore.magic(forKey: started.key)
        }
        routes.store.fail("complete", with: S3Error.service(.noSuchUpload, status: 404, message: "", requestID: nil))
        #expect(routes.call("POST", "/s3/complete-upload", body: completeBody(started, parts: 2)).0 == 409)
        #expect(try routes.records.asset(id: Int64(started.assetID)!, workspaceID: 1)?.status == .pending)
    }

    /// The ordinary path under KMS: S3's multipart ETag answered and recorded.
    @Test func anOrdinaryCompleteUnderKMSAnswersS3sETag() throws {
        let started = try start()
        let (status, body) = routes.call("POST", "/s3/complete-upload", body: completeBody(started, parts: 1))
        #expect(status == 200, "\(body)")
        #expect(body["etag"]?.stringValue?.hasSuffix("-1\"") == true)
    }
}

/// ASSETD_SSE unset over a bucket that encrypts with SSE-KMS by default (review M1): the
/// service reads the default (at start-up, before each reconciler pass) and from then on
/// treats ETags exactly as under ASSETD_SSE=aws:kms.
@Suite struct BucketDefaultKMSTests {
    let routes: RouteTests
    var service: AssetService { routes.app.service }
    init() throws {
        routes = try RouteTests(md5ETags: true)
        routes.store.state.withLock {
            $0.kmsETags = true
            $0.bucketEncryption = .kms(keyID: "arn:aws:kms:us-east-1:1:key/k", bucketKey: true)
        }
    }

    /// Before this, the direct upload wrote no `md5` metadata (the ETag was taken for the
    /// MD5), and the reconciler discarded the whole upload whose answer was lost.
    @Test func aKMSDefaultMakesETagsNoMD5s() throws {
        #expect(service.objectETagsAreMD5 && service.encryptionKeepsMD5ETags)
        guard case .found(.kms) = service.readBucketEncryption(startUp: true) else { Issue.record("not read"); return }
        #expect(!service.objectETagsAreMD5 && !service.encryptionKeepsMD5ETags)
        routes.store.fail("put", with: S3Error.network("reset"))
        routes.store.fail("head", with: S3Error.network("still down"))
        #expect(routes.upload(routes.form([("file", "a.png", nil, RouteTests.png)])).0 == 502)
        let pending = try #require(try routes.records.asset(id: 1, workspaceID: 1))
        #expect(routes.store.state.withLock { $0.metadata[pending.key]?["md5"] } != nil, "the MD5 S3 checked, as metadata")
        let fixes = Reconciler(service: service, interval: .seconds(60)).pass(startUp: true)
        #expect(fixes.directReady == 1 && fixes.directDiscarded == 0)
        #expect(try routes.records.asset(id: 1, workspaceID: 1)?.status == .ready)
    }

    /// DSSE-KMS too; and once seen, ETags stay no MD5s until a restart, even if the bucket's
    /// default changes back (an upload begun under KMS must still complete).
    @Test func dsseCountsAndTheSwitchStays() {
        routes.store.state.withLock { $0.bucketEncryption = .kmsDSSE(keyID: nil) }
        service.readBucketEncryption(startUp: true)
        #expect(!service.objectETagsAreMD5)
        routes.store.state.withLock { $0.bucketEncryption = .aes256 }
        guard case .found(.aes256) = service.readBucketEncryption(startUp: false) else { Issue.record("not read"); return }
        #expect(!service.objectETagsAreMD5 && !service.encryptionKeepsMD5ETags)
    }

    /// Review L5: the switch only goes on, so one who set the bucket's default to KMS for a
    /// moment (s3:PutEncryptionConfiguration, a spoofed plain-http endpoint) would leave
    /// every host without MD5 checks, silently, until a restart. While it is on and the
    /// bucket reads none or AES256 again: an error line at each pass, and assetd_etags_md5 0.
    @Test func aSwitchLeftOnIsAnErrorEachPassAndAGauge() throws {
        let captured = CapturedLines()
        let logged = Logger(label: "test") { _ in CapturingLogHandler(captured: captured) }
        let service = AssetService(configuration: self.service.configuration, records: routes.records, objects: routes.store,
                                   detector: try ContentDetector(), logger: logged)
        let metrics = Metrics()
        func gauge() -> String? {
            String(decoding: metrics.render(), as: UTF8.self).split(separator: "\n").first { $0.hasPrefix("assetd_etags_md5 ") }.map(String.init)
        }
        func errors() -> [String] { captured.lines.withLock { $0.filter { $0.0 == .error }.map(\.1) } }
        routes.store.state.withLock { $0.bucketEncryption = .aes256 }
        service.readBucketEncryption(startUp: true)
        Bootstrap.scrape(metrics, records: routes.records, service: service)
        #expect(gauge() == "assetd_etags_md5 1.0")
        #expect(errors().isEmpty)
        routes.store.state.withLock { $0.bucketEncryption = .kms(keyID: nil, bucketKey: nil) }
        service.readBucketEncryption(startUp: false)
        Bootstrap.scrape(metrics, records: routes.records, service: service)
        #expect(gauge() == "assetd_etags_md5 0.0")
        #expect(errors().count == 1)
        routes.store.state.withLock { $0.bucketEncryption = .aes256 }
        for _ in 0..<3 { service.readBucketEncryption(startUp: false) }
        let reverted = errors().dropFirst()
        #expect(reverted.count == 3, "one a pass, not only at the change: \(errors())")
        #expect(reverted.allSatisfy { $0.contains("restart assetd") && $0.contains("set ASSETD_SSE") }, "\(reverted)")
        Bootstrap.scrape(metrics, records: routes.records, service: service)
        #expect(gauge() == "assetd_etags_md5 0.0", "until a restart")
        routes.store.state.withLock { $0.bucketEncryption = .none }
        service.readBucketEncryption(startUp: false)
        #expect(errors().count == 5 && errors().last?.contains("is now none") == true)
    }

    /// A failure to read is no refusal: ETags stay what ASSETD_SSE says.
    @Test func anUnreadableDefaultChangesNothing() {
        routes.store.fail("bucketEncryption", with: S3Error.service(.accessDenied, status: 403, message: "", requestID: nil))
        guard case .unreadable = service.readBucketEncryption(startUp: true) else { Issue.record("read"); return }
        #expect(service.objectETagsAreMD5 && service.encryptionKeepsMD5ETags)
        routes.store.state.withLock { $0.bucketEncryption = .aes256 }
        service.readBucketEncryption(startUp: false)
        #expect(service.objectETagsAreMD5 && service.encryptionKeepsMD5ETags)
    }

    /// With ASSETD_SSE set, every write names its encryption: the default is not read.
    @Test func aConfiguredEncryptionIsNotSecondGuessed() throws {
        let configured = try RouteTests(environment: ["ASSETD_SSE": "AES256"], md5ETags: true)
        configured.store.state.withLock { $0.bucketEncryption = .kms(keyID: nil, bucketKey: nil) }
        guard case .notRead = configured.app.service.readBucketEncryption(startUp: true) else { Issue.record("read"); return }
        #expect(configured.app.service.objectETagsAreMD5)
        #expect(!configured.store.state.withLock { $0.calls }.contains("bucketEncryption"))
    }
}

/// Each line's level and message.
private final class CapturedLines: Sendable {
    let lines = Mutex<[(Logger.Level, String)]>([])
}

private struct CapturingLogHandler: LogHandler {
    let captured: CapturedLines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        captured.lines.withLock { $0.append((event.level, "\(event.message)")) }
    }
}
