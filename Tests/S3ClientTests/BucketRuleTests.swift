import Testing
@testable import S3Client

/// setup-bucket's merge: its own rules by ID, every other rule kept as read.
struct BucketRuleTests {
    let foreign = BucketRule(name: "CORSRule", children: [
        BucketRule(name: "ID", text: "partner"), BucketRule(name: "AllowedOrigin", text: "https://partner.example"),
        BucketRule(name: "AllowedMethod", text: "GET"),
    ])

    /// A checksummed part PUT sends Content-MD5, which a preflight must be allowed to ask for.
    @Test func corsAllowsTheContentMD5OfAPartPUT() {
        let rule = S3Client.CORSRule(allowedOrigins: ["https://app.example"])
        let allowed = rule.element.children.filter { $0.name == "AllowedHeader" }.map(\.text)
        #expect(allowed.contains("*") || allowed.contains { $0.lowercased() == "content-md5" }, "\(allowed)")
        #expect(rule.element.children.contains { $0.name == "AllowedMethod" && $0.text == "PUT" })
        #expect(rule.element.children.contains { $0.name == "ExposeHeader" && $0.text == "ETag" })
    }

    @Test func addsThenLeavesUnchanged() {
        let own = S3Client.CORSRule(allowedOrigins: ["*"]).element
        let first = BucketRule.merge(own, into: [foreign])
        #expect(first.change == .added)
        #expect(first.rules == [foreign, own])
        let second = BucketRule.merge(own, into: first.rules)
        #expect(second.change == .unchanged)
        #expect(second.rules == first.rules)
    }

    @Test func updatesOwnRuleInPlace() {
        let old = S3Client.CORSRule(allowedOrigins: ["https://old.example"]).element
        let own = S3Client.CORSRule(allowedOrigins: ["https://new.example"]).element
        let merged = BucketRule.merge(own, into: [old, foreign])
        #expect(merged.change == .updated)
        #expect(merged.rules == [own, foreign])
    }

    @Test func cephsTopLevelPrefixIsTheSameRule() throws {
        let ceph = Array("""
        <LifecycleConfiguration><Rule><ID>assetd-abort-incomplete-multipart-uploads</ID><Prefix></Prefix><Status>Enabled</Status>\
        <AbortIncompleteMultipartUpload><DaysAfterInitiation>7</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule></LifecycleConfiguration>
        """.utf8)
        let rules = try #require(XMLTree.parse(ceph)).all("Rule").map(BucketRule.init(tree:))
        #expect(BucketRule.merge(S3Client.abortIncompleteUploadsRule(days: 7), into: rules).change == .unchanged)
        #expect(BucketRule.merge(S3Client.abortIncompleteUploadsRule(days: 3), into: rules).change == .updated)
    }

    @Test func serializesEscaped() {
        let rule = BucketRule(name: "Rule", children: [BucketRule(name: "ID", text: "a<b&c")])
        #expect(rule.xml == "<Rule><ID>a&lt;b&amp;c</ID></Rule>")
    }
}
