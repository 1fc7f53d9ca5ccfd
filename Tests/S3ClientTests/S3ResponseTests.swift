import Testing
@testable import S3Client

struct S3ResponseTests {
    @Test func errorBodyGivesS3Code() {
        let body = Array("""
        <?xml version="1.0" encoding="UTF-8"?>
        <Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message><RequestId>R1</RequestId></Error>
        """.utf8)
        let error = S3Client.error(status: 404, body: body, headers: [:], method: "GET")
        guard case .service(.noSuchUpload, 404, _, "R1") = error else {
            Issue.record("\(error)")
            return
        }
        #expect(!error.isTransient)
        #expect(!error.isAmbiguous)
    }

    @Test func answersWithoutBodyMapStatus() {
        #expect(S3Client.error(status: 404, body: [], headers: [:], method: "HEAD").code == .notFound)
        #expect(S3Client.error(status: 403, body: [], headers: [:], method: "HEAD").code == .accessDenied)
        let slow = S3Client.error(status: 503, body: [], headers: [:], method: "PUT")
        #expect(slow.isTransient)
    }

    /// A 404 without a body used to become NoSuchKey, which the app read as "the upload
    /// is gone": it is `.notFound` now, whatever the method, and says nothing more.
    @Test func aBodiless404IsNotFoundNotNoSuchKey() {
        for method in ["GET", "POST", "DELETE", "HEAD"] {
            #expect(S3Client.error(status: 404, body: [], headers: [:], method: method).code == .notFound)
        }
    }

    @Test func codesKeepS3sSpelling() {
        for text in ["NoSuchUpload", "NoSuchKey", "InvalidPart", "SlowDown", "SomethingNew"] {
            #expect(S3Error.Code(text).description == text)
        }
        #expect(S3Error.Code("SomethingNew") == .other("SomethingNew"))
        #expect(S3Error.timeout("x").isAmbiguous && S3Error.network("x").isAmbiguous)
        #expect(!S3Error.refused("x", retryAfter: 1).isAmbiguous)
        #expect(S3Error.timeout("x").label == "Timeout")
    }

    @Test func listPartsXMLWithNamespace() throws {
        let xml = """
        <ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>b</Bucket><IsTruncated>true</IsTruncated>
        <NextPartNumberMarker>2</NextPartNumberMarker>
        <Part><PartNumber>1</PartNumber><ETag>&quot;abc&quot;</ETag><Size>5242880</Size></Part>
        <Part><PartNumber>2</PartNumber><ETag>"def"</ETag><Size>10</Size></Part></ListPartsResult>
        """
        let tree = try #require(XMLTree.parse(Array(xml.utf8)))
        #expect(tree.name == "ListPartsResult")
        #expect(tree.all("Part").count == 2)
        #expect(tree.all("Part")[0].value("ETag") == "\"abc\"")
        #expect(tree.value("NextPartNumberMarker") == "2")
    }

    @Test func malformedXMLIsNil() {
        #expect(XMLTree.parse(Array("<a><b></a>".utf8)) == nil)
        #expect(XMLTree.parse([]) == nil)
    }

    @Test func externalEntitiesAreNotResolved() throws {
        let xml = """
        <?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/hostname">]><Error><Code>&x;</Code></Error>
        """
        let code = XMLTree.parse(Array(xml.utf8))?.value("Code") ?? ""
        #expect(code.isEmpty)
    }

    @Test func escapesXML() {
        #expect(xmlEscape("a<b>&\"'") == "a&lt;b&gt;&amp;&quot;&apos;")
    }

    @Test func endpoints() throws {
        let local = try #require(S3Endpoint(url: "http://127.0.0.1:9000"))
        #expect(local.host == "127.0.0.1:9000")
        #expect(local.pathStyle)
        #expect(local.path(bucket: "b", key: "1/digital_assets/2.jpg") == "/b/1/digital_assets/2.jpg")
        #expect(try #require(S3Endpoint(url: "https://minio.example:443/")).host == "minio.example")
        #expect(S3Endpoint(url: "ftp://x") == nil)
        #expect(S3Endpoint(url: "http://host/prefix") == nil)
        let aws = S3Endpoint.aws(region: "eu-west-1", bucket: "assets")
        #expect(aws.host == "assets.s3.eu-west-1.amazonaws.com")
        #expect(aws.path(bucket: "assets", key: "k") == "/k")
        // Each part copied into the path's storage: the bucket alone, empty parts, long and
        // non-ASCII keys (bytes kept as they are), a bucket made of a longer String's slice.
        #expect(local.path(bucket: "b", key: "") == "/b")
        #expect(aws.path(bucket: "assets", key: "") == "/")
        #expect(local.path(bucket: "", key: "k") == "//k")
        let long = String(repeating: "x/é☃", count: 200)
        #expect(local.path(bucket: "assets-bucket", key: long) == "/assets-bucket/" + long)
        #expect(aws.path(bucket: "assets", key: long) == "/" + long)
        let sliced = String("--bucket--".dropFirst(2).dropLast(2))
        #expect(local.path(bucket: sliced, key: "1/k.jpg") == "/bucket/1/k.jpg")
    }
}

/// The answers in which S3 servers differ (docs/TESTING.md, "Tested against").
struct ServerQuirkTests {
    @Test func lifecycleRuleWithFilterOrTopLevelPrefix() {
        let aws = Array("""
        <LifecycleConfiguration><Rule><ID>x</ID><Filter><Prefix></Prefix></Filter><Status>Enabled</Status>
        <AbortIncompleteMultipartUpload><DaysAfterInitiation>7</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule></LifecycleConfiguration>
        """.utf8)
        let ceph = Array("""
        <LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Rule><ID>x</ID><Prefix></Prefix><Status>Enabled</Status>
        <AbortIncompleteMultipartUpload><DaysAfterInitiation>3</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule></LifecycleConfiguration>
        """.utf8)
        let disabled = Array("""
        <LifecycleConfiguration><Rule><Status>Disabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation>
        </AbortIncompleteMultipartUpload></Rule></LifecycleConfiguration>
        """.utf8)
        #expect(S3Client.abortIncompleteUploadsDays(lifecycle: aws) == 7)
        #expect(S3Client.abortIncompleteUploadsDays(lifecycle: ceph) == 3)
        #expect(S3Client.abortIncompleteUploadsDays(lifecycle: disabled) == nil)
    }

    @Test func emptyCompleteETagAsksHeadObject() throws {
        func tree(_ text: String) throws -> XMLTree { try #require(XMLTree.parse(Array(text.utf8))) }
        #expect(S3Client.completedETag(try tree("<CompleteMultipartUploadResult><ETag>\"abc-2\"</ETag></CompleteMultipartUploadResult>")) == "\"abc-2\"")
        #expect(S3Client.completedETag(try tree("<CompleteMultipartUploadResult><ETag></ETag></CompleteMultipartUploadResult>")) == nil)
        #expect(S3Client.completedETag(try tree("<CompleteMultipartUploadResult><ETag>\"\"</ETag></CompleteMultipartUploadResult>")) == nil)
        #expect(S3Client.completedETag(try tree("<CompleteMultipartUploadResult><Key>k</Key></CompleteMultipartUploadResult>")) == nil)
    }

    @Test func motoResponseRootsCountAsResults() throws {
        #expect(try #require(XMLTree.parse(Array("<ListPartsResponse/>".utf8))).isResult(of: "ListParts"))
        #expect(try #require(XMLTree.parse(Array("<ListPartsResult/>".utf8))).isResult(of: "ListParts"))
        #expect(try !#require(XMLTree.parse(Array("<Error/>".utf8))).isResult(of: "ListParts"))
    }
}
