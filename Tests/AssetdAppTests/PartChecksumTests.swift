import AssetStore
import Foundation
import JSON
import Testing
@testable import AssetdApp

/// Per-part checksums (issue 20): contentMD5 parsed strictly, signed into part URLs,
/// recorded, and checked at complete-upload, against the fake object store whose ETags
/// are S3's (MD5s).
@Suite struct PartChecksumTests {
    // MD5("first part") and MD5("second"), in base64 and hex; their multipart ETag.
    static let md5One = "VQz2tuYPZaDjEEom5w/qQg==", hexOne = "550cf6b6e60f65a0e3104a26e70fea42"
    static let md5Two = "qfDmGhN9hqqdtTRl4IAWEg==", hexTwo = "a9f0e61a137d86aa9db53465e0801612"
    static let objectETag = "93f26da1291790e1134809a03511cd15-2" // Python: md5(md5_1 + md5_2).hexdigest() + "-2"

    static func encoded(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
    }

    func start(_ routes: RouteTests) throws -> (assetID: String, uploadID: String, key: String) {
        let (status, body) = routes.call("GET", "/s3/start-upload", "workspaceId=1&fileType=image/jpeg")
        try #require(status == 200)
        return (body["assetId"]!.stringValue!, body["uploadId"]!.stringValue!, body["key"]!.stringValue!)
    }

    func partURL(_ routes: RouteTests, _ started: (assetID: String, uploadID: String, key: String), part: Int, md5: String? = nil)
        -> (Int, JSONValue) {
        var query = "workspaceId=1&assetId=\(started.assetID)&UploadId=\(started.uploadID)&PartNumber=\(part)"
        if let md5 { query += "&contentMD5=\(Self.encoded(md5))" }
        return routes.call("GET", "/s3/get-upload-url", query)
    }

    func partURLs(_ routes: RouteTests, _ started: (assetID: String, uploadID: String, key: String), numbers: String, md5s: String?)
        -> (Int, JSONValue) {
        var query = "workspaceId=1&assetId=\(started.assetID)&UploadId=\(started.uploadID)&partNumbers=\(numbers)"
        if let md5s { query += "&contentMD5=\(Self.encoded(md5s))" }
        return routes.call("GET", "/s3/get-upload-urls", query)
    }

    func complete(_ routes: RouteTests, _ started: (assetID: String, uploadID: String, key: String), _ etags: [String]) -> (Int, JSONValue) {
        let parts = etags.enumerated().map { #"{"ETag":"\"\#($1)\"","PartNumber":\#($0 + 1)}"# }.joined(separator: ",")
        return routes.call("POST", "/s3/complete-upload",
                           body: #"{"uploadId":"\#(started.uploadID)","assetId":"\#(started.assetID)","workspaceId":1,"parts":[\#(parts)]}"#)
    }

    func completeCalls(_ routes: RouteTests) -> Int {
        routes.store.state.withLock { $0.calls.filter { $0 == "complete" }.count }
    }

    // MARK: - Parsing

    @Test func contentMD5IsStrictBase64OfSixteenBytes() throws {
        #expect(try Input.contentMD5("1B2M2Y8AsgTpgAmY7PhCfg==") == Array(Data(base64Encoded: "1B2M2Y8AsgTpgAmY7PhCfg==")!))
        #expect(try Input.contentMD5(Substring(Self.md5One)).count == 16)
        for bad in ["", "1B2M2Y8AsgTpgAmY7PhCfg=", "1B2M2Y8AsgTpgAmY7PhCfg", "1B2M2Y8AsgTpgAmY7PhCfh==", // not canonical: spare bits set
                    "1B2M2Y8AsgTpgAmY7PhCfg===", "1B2M2Y8AsgTpgAmY7PhC-g==", "1B2M2Y8AsgTpgAmY7PhC_g==", " 1B2M2Y8AsgTpgAmY7PhCfg==",
                    "d41d8cd98f00b204e9800998ecf8427e", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "1B2M2Y8AsgTpgAmY7PhCf===", "1B2M2Y8A gTpgAmY7PhCfg=="] {
            #expect(throws: (any Error).self, "\(bad)") { try Input.contentMD5(Substring(bad)) }
        }
    }

    @Test func partChecksumSettingIsParsed() throws {
        let base = ["AWS_BUCKET": "b", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s",
                    "ASSETD_JWT_SECRET": RouteTests.secret, "ASSETD_DATABASE": "/tmp/x.sqlite"]
        #expect(try Configuration(environment: base).partChecksum == .optional)
        #expect(try Configuration(environment: base).objectETagsAreMD5)
        for mode in PartChecksumMode.allCases {
            #expect(try Configuration(environment: base.merging(["ASSETD_PART_CHECKSUM": mode.rawValue.uppercased()]) { $1 }).partChecksum == mode)
        }
        do {
            _ = try Configuration(environment: base.merging(["ASSETD_PART_CHECKSUM": "md5"]) { $1 })
            Issue.record("ASSETD_PART_CHECKSUM=md5 was accepted")
        } catch {
            #expect("\(error)" == "ASSETD_PART_CHECKSUM must be optional, required or off, not md5")
        }
    }

    // MARK: - Presign

    @Test func aGivenMD5IsSignedAndRecorded() throws {
        let routes = try RouteTests(md5ETags: true)
        let started = try start(routes)
        let (status, body) = partURL(routes, started, part: 1, md5: Self.md5One)
        #expect(status == 200, "\(body)")
        #expect(body["url"]?.stringValue?.hasSuffix("&signed-content-md5=\(Self.md5One)") == true)
        #expect(try routes.records.signedPartMD5s(uploadID: started.uploadID) == [1: Self.hexOne])
        // Without one (optional): a plain URL, and the part stays bound to its MD5.
        let (plain, unsigned) = partURL(routes, started, part: 1)
        #expect(plain == 200)
        #expect(unsigned["url"]?.stringValue?.contains("signed-") == false)
        #expect(try routes.records.signedPartMD5s(uploadID: started.uploadID) == [1: Self.hexOne])
    }

    @Test func aMalformedMD5IsRefusedNamingIt() throws {
        let routes = try RouteTests(md5ETags: true)
        let started = try start(routes)
        for bad in ["abc", Self.hexOne, "VQz2tuYPZaDjEEom5w_qQg=="] {
            let (status, body) = partURL(routes, started, part: 1, md5: bad)
            #expect(status == 400)
            #expect(body["error"]?.stringValue?.hasPrefix("contentMD5 must be the base64") == true, "\(body)")
        }
        // A raw + arrives as a space: the error says how to send it.
        let (status, body) = routes.call("GET", "/s3/get-upload-url",
                                         "workspaceId=1&assetId=\(started.assetID)&UploadId=\(started.uploadID)&PartNumber=1&contentMD5=ab+cdefghijklmnopqrstu==")
        #expect(status == 400)
        #expect(body["error"]?.stringValue?.contains("%2B") == true)
        let (twice, _) = routes.call("GET", "/s3/get-upload-url",
                                     "workspaceId=1&assetId=\(started.assetID)&UploadId=\(started.uploadID)&PartNumber=1&contentMD5=\(Self.encoded(Self.md5One))&contentMD5=\(Self.encoded(Self.md5Two))")
        #expect(twice == 400)
        #expect(try routes.records.signedPartMD5s(uploadID: started.uploadID).isEmpty)
    }

    @Test func batchesPairMD5sWithPartNumbersInOrder() throws {
        let routes = try RouteTests(md5ETags: true)
        let started = try start(routes)
        // Written 2,1: the first MD5 is part 2's. The answer is in part order.
        let (status, body) = partURLs(routes, started, numbers: "2,1", md5s: "\(Self.md5Two),\(Self.md5One)")
        #expect(status == 200, "\(body)")
        let urls = try #require(body["urls"]?.arrayValue)
        #expect(urls.map { $0["partNumber"] } == [.number("1"), .number("2")])
        #expect(urls[0]["url"]?.stringValue?.hasSuffix("partNumber=1&uploadId=\(started.uploadID)&signed-content-md5=\(Self.md5One)") == true)
        #expect(urls[1]["url"]?.stringValue?.hasSuffix("partNumber=2&uploadId=\(started.uploadID)&signed-content-md5=\(Self.md5Two)") == true)
        #expect(try routes.records.signedPartMD5s(uploadID: started.uploadID) == [1: Self.hexOne, 2: Self.hexTwo])

        let (short, shortBody) = partURLs(routes, started, numbers: "1-3", md5s: "\(Self.md5One),\(Self.md5Two)")
        #expect(short == 400)
        #expect(shortBody["error"]?.stringValue == "contentMD5 must hold one MD5 for each of the 3 parts of partNumbers, comma-separated in the same order; it holds 2.")
        let (empty, _) = partURLs(routes, started, numbers: "1-2", md5s: "\(Self.md5One),")
        #expect(empty == 400)
        let (repeated, _) = partURLs(routes, started, numbers: "1,1", md5s: "\(Self.md5One),\(Self.md5One)")
        #expect(repeated == 400)
        let (bad, badBody) = partURLs(routes, started, numbers: "1-2", md5s: "\(Self.md5One),nope")
        #expect(bad == 400)
        #expect(badBody["error"]?.stringValue?.hasPrefix("contentMD5[1] (part 2) must be") == true, "\(badBody)")
    }

    @Test func requiredRefusesAPartURLWithoutMD5() throws {
        let routes = try RouteTests(environment: ["ASSETD_PART_CHECKSUM": "required"], md5ETags: true)
        let started = try start(routes)
        let (status, body) = partURL(routes, started, part: 3)
        #expect(status == 400)
        #expect(body["error"]?.stringValue?.hasPrefix("contentMD5 is required") == true, "\(body)")
        #expect(partURLs(routes, started, numbers: "1-2", md5s: nil).0 == 400)
        #expect(partURL(routes, started, part: 3, md5: Self.md5One).0 == 200)
    }

    @Test func offIgnoresMD5s() throws {
        let routes = try RouteTests(environment: ["ASSETD_PART_CHECKSUM": "off"], md5ETags: true)
        let started = try start(routes)
        let (status, body) = partURL(routes, started, part: 1, md5: Self.md5One)
        #expect(status == 200)
        #expect(body["url"]?.stringValue?.contains("signed-") == false)
        #expect(try routes.records.signedPartMD5s(uploadID: started.uploadID).isEmpty)
    }

    @Test func noMD5IsRecordedForAnUploadThatEnded() throws {
        let routes = try RouteTests(md5ETags: true)
        let started = try start(routes)
        #expect(try routes.records.recordSignedPartMD5s(uploadID: started.uploadID, md5s: [(1, Self.hexOne)]))
        _ = try routes.records.abortUpload(uploadID: started.uploadID)
        #expect(try !routes.records.recordSignedPartMD5s(uploadID: started.uploadID, md5s: [(2, Self.hexTwo)]))
        #expect(try routes.records.signedPartMD5s(uploadID: started.uploadID).isEmpty)  // gone with the upload
        #expect(partURL(routes, started, part: 2, md5: Self.md5Two).0 == 409)
    }

    // MARK: - Complete

    @Test func partsWhoseETagsAreTheirSignedMD5sComplete() throws {
        let routes = try RouteTests(md5ETags: true)
        let started = try start(routes)
        #expect(partURLs(routes, started, numbers: "1-2", md5s: "\(Self.md5One),\(Self.md5Two)").0 == 200)
        let (status, body) = complete(routes, started, [Self.hexOne, Self.hexTwo.uppercased()])
        #expect(status == 200, "\(body)")
        #expect(body["etag"]?.stringValue == "\"\(Self.objectETag)\"")
        #expect(try routes.records.asset(id: Int64(started.assetID)!, workspaceID: 1)?.etag == "\"\(Self.objectETag)\"")
    }

    @Test func aPartETagThatIsNotItsSignedMD5IsRefusedBeforeS3() throws {
        let routes = try RouteTests(md5ETags: true)
        let started = try start(routes)
        #expect(partURLs(routes, started, numbers: "1-2", md5s: "\(Self.md5One),\(Self.md5Two)").0 == 200)
        // A client that lies about part 2 (or whose part 2 S3 holds other bytes of).
        let (status, body) = complete(routes, started, [Self.hexOne, Self.hexOne])
        #expect(status == 400)
        #expect(body["error"]?.stringValue?.hasPrefix("parts[1].ETag: part 2 was presigned for the MD5 \(Self.hexTwo)") == true, "\(body)")
        #expect(completeCalls(routes) == 0)
        // Swapped parts do not add up either; the upload stays pending for a correct complete.
        #expect(complete(routes, started, [Self.hexTwo, Self.hexOne]).0 == 400)
        #expect(try routes.records.asset(id: Int64(started.assetID)!, workspaceID: 1)?.status == .pending)
        #expect(complete(routes, started, [Self.hexOne, Self.hexTwo]).0 == 200)
    }

    @Test func anObjectETagThatDoesNotAddUpIsRefusedAndDeleted() throws {
        let routes = try RouteTests(md5ETags: true)
        let started = try start(routes)
        #expect(partURLs(routes, started, numbers: "1-2", md5s: "\(Self.md5One),\(Self.md5Two)").0 == 200)
        routes.store.state.withLock { $0.completedETag = "\"\(Self.hexOne)-2\"" }
        let (status, body) = complete(routes, started, [Self.hexOne, Self.hexTwo])
        #expect(status == 400)
        #expect(body["error"]?.stringValue == "parts: the object's ETag \(Self.hexOne)-2 is not the MD5 of the submitted parts' MD5s (\(Self.objectETag)); the object was deleted, start a new upload.")
        #expect(routes.store.state.withLock { $0.objects[started.key] } == nil)
        #expect(try routes.records.asset(id: Int64(started.assetID)!, workspaceID: 1)?.status == .rejected)
    }

    /// A store whose ETags are no MD5s (a bucket encrypted with SSE-KMS by default while
    /// ASSETD_SSE is unset), with a client that signs no MD5: the upload completes and
    /// keeps its object. An ETag sum proves nothing there, and must never delete an upload.
    @Test func anUploadWithoutSignedPartsIsNeverDeletedForItsETag() throws {
        let routes = try RouteTests(md5ETags: true)
        let started = try start(routes)
        routes.store.state.withLock { $0.completedETag = "\"whatever-1\"" }
        let (status, body) = complete(routes, started, ["not-an-md5"])
        #expect(status == 200, "\(body)")
        #expect(routes.store.state.withLock { $0.objects[started.key] } != nil)
        #expect(try routes.records.asset(id: Int64(started.assetID)!, workspaceID: 1)?.status == .ready)
    }

    @Test func requiredRefusesAPartNeverSignedWithAnMD5() throws {
        let routes = try RouteTests(environment: ["ASSETD_PART_CHECKSUM": "required"], md5ETags: true)
        let started = try start(routes)
        #expect(partURL(routes, started, part: 1, md5: Self.md5One).0 == 200)
        // Part 2 was never signed (a part number the client was never given a URL for).
        let (status, body) = complete(routes, started, [Self.hexOne, Self.hexTwo])
        #expect(status == 400)
        #expect(body["error"]?.stringValue == "parts[1]: part 2 was never presigned with a contentMD5 (ASSETD_PART_CHECKSUM=required).")
        #expect(completeCalls(routes) == 0)
    }

    @Test func optionalTakesUnsignedPartsAsS3ListsThem() throws {
        let routes = try RouteTests(md5ETags: true)
        let started = try start(routes)
        #expect(partURL(routes, started, part: 1, md5: Self.md5One).0 == 200)
        #expect(partURL(routes, started, part: 2).0 == 200)
        #expect(complete(routes, started, [Self.hexOne, Self.hexTwo]).0 == 200)
    }

    /// With ETags that are no MD5s (SSE-KMS), neither ETag check can run: S3 checked each
    /// signed part's bytes at its PUT, and `required` still insists every part was signed.
    @Test func withoutMD5ETagsOnlyTheSigningIsChecked() throws {
        let routes = try RouteTests(environment: ["ASSETD_PART_CHECKSUM": "required"], md5ETags: false)
        let started = try start(routes)
        #expect(partURL(routes, started, part: 1, md5: Self.md5One).0 == 200)
        #expect(complete(routes, started, ["kms-etag-1", "kms-etag-2"]).0 == 400) // part 2 never signed
        #expect(partURL(routes, started, part: 2, md5: Self.md5Two).0 == 200)
        let (status, body) = complete(routes, started, ["kms-etag-1", "kms-etag-2"])
        #expect(status == 200, "\(body)")
    }

    /// ASSETD_SSE unset over a bucket whose default encryption is SSE-KMS (review M1): once
    /// the service has read that default, parts signed with an MD5 and answered with KMS
    /// ETags complete. Before, every such part was refused (its ETag is not its MD5).
    @Test func aBucketDefaultOfKMSCompletesSignedParts() throws {
        let routes = try RouteTests(md5ETags: true)
        routes.store.state.withLock { $0.bucketEncryption = .kms(keyID: nil, bucketKey: nil) }
        let started = try start(routes)
        #expect(partURLs(routes, started, numbers: "1-2", md5s: "\(Self.md5One),\(Self.md5Two)").0 == 200)
        #expect(complete(routes, started, ["kms-etag-1", "kms-etag-2"]).0 == 400, "ETags taken for MD5s until the default is read")
        routes.app.service.readBucketEncryption(startUp: true)
        routes.store.state.withLock { $0.completedETag = "\"0123456789abcdef0123456789abcdef-2\"" }
        let (status, body) = complete(routes, started, ["kms-etag-1", "kms-etag-2"])
        #expect(status == 200, "\(body)")
        #expect(routes.store.state.withLock { $0.objects[started.key] } != nil)
    }

    @Test func multipartETagArithmetic() {
        #expect(AssetService.multipartETag([(1, Self.hexOne), (2, Self.hexTwo)]) == Self.objectETag)
        #expect(AssetService.multipartETag([(1, Self.hexOne.uppercased()), (2, Self.hexTwo)]) == Self.objectETag)
        #expect(AssetService.multipartETag([(1, Self.hexTwo), (2, Self.hexOne)]) != Self.objectETag)
        #expect(AssetService.multipartETag([(1, Self.hexOne)])?.hasSuffix("-1") == true)
    }
}
