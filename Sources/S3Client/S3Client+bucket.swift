import Foundation
import Hashing

extension S3Client {
    /// assetd's CORS rule for the bucket: browsers PUT parts and GET objects by presigned URL.
    public struct CORSRule: Sendable {
        public var id = "assetd"
        public var allowedOrigins: [String]
        public var allowedMethods = ["GET", "POST", "PUT", "DELETE", "HEAD"]
        /// Every request header: the part PUT's Content-MD5 (per-part checksums) is not
        /// CORS-safelisted, so the preflight must allow it; `*` does, and whatever a later
        /// client sends (checksum headers of other kinds).
        public var allowedHeaders = ["*"]
        public var exposeHeaders = ["ETag", "x-amz-server-side-encryption"]
        public var maxAgeSeconds = 3000

        public init(allowedOrigins: [String]) { self.allowedOrigins = allowedOrigins }

        public var element: BucketRule {
            var children = [BucketRule(name: "ID", text: id)]
            children += allowedOrigins.map { BucketRule(name: "AllowedOrigin", text: $0) }
            children += allowedMethods.map { BucketRule(name: "AllowedMethod", text: $0) }
            children += allowedHeaders.map { BucketRule(name: "AllowedHeader", text: $0) }
            children += exposeHeaders.map { BucketRule(name: "ExposeHeader", text: $0) }
            children.append(BucketRule(name: "MaxAgeSeconds", text: String(maxAgeSeconds)))
            return BucketRule(name: "CORSRule", children: children)
        }
    }

    /// The ID of assetd's lifecycle rule; other rules of the bucket are kept as they are.
    public static let abortIncompleteUploadsRuleID = "assetd-abort-incomplete-multipart-uploads"

    /// assetd's lifecycle rule: abort multipart uploads left incomplete for `days` days.
    public static func abortIncompleteUploadsRule(days: Int) -> BucketRule {
        BucketRule(name: "Rule", children: [
            BucketRule(name: "ID", text: abortIncompleteUploadsRuleID),
            BucketRule(name: "Filter", children: [BucketRule(name: "Prefix", text: "")]),
            BucketRule(name: "Status", text: "Enabled"),
            BucketRule(name: "AbortIncompleteMultipartUpload", children: [BucketRule(name: "DaysAfterInitiation", text: String(days))]),
        ])
    }

    /// HeadBucket: true when the bucket exists and the credentials may use it.
    public func bucketExists() throws -> Bool {
        do {
            _ = try send(.headBucket, "HEAD", key: "")
            return true
        } catch let error as S3Error where error.httpStatus == 404 {
            return false
        }
    }

    /// CreateBucket; an existing bucket of ours is not an error.
    public func createBucket() throws {
        var body: RequestBody = .none
        if configuration.region != "us-east-1" {
            body = .bytes(Array("<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>\(xmlEscape(configuration.region))</LocationConstraint></CreateBucketConfiguration>".utf8))
        }
        do {
            _ = try send(.createBucket, "PUT", key: "", body: body)
        } catch let error as S3Error where error.code == .bucketAlreadyOwnedByYou {
            return
        }
    }

    /// The bucket's CORS rules (GetBucketCors); empty when it has none.
    public func bucketCORSRules() throws -> [BucketRule] {
        try bucketSubresource("cors", missing: .noSuchCORSConfiguration, rule: "CORSRule")
    }

    /// The bucket's lifecycle rules (GetBucketLifecycleConfiguration); empty when it has none.
    public func bucketLifecycleRules() throws -> [BucketRule] {
        try bucketSubresource("lifecycle", missing: .noSuchLifecycleConfiguration, rule: "Rule")
    }

    /// PutBucketCors with exactly these rules (an empty list deletes the configuration).
    public func putBucketCORS(rules: [BucketRule]) throws {
        guard !rules.isEmpty else {
            _ = try send(.bucketConfiguration, "DELETE", key: "", query: [("cors", "")])
            return
        }
        try putBucketSubresource("cors", xml: Self.configurationXML("CORSConfiguration", rules))
    }

    /// PutBucketLifecycleConfiguration with exactly these rules.
    public func putBucketLifecycle(rules: [BucketRule]) throws {
        guard !rules.isEmpty else {
            _ = try send(.bucketConfiguration, "DELETE", key: "", query: [("lifecycle", "")])
            return
        }
        try putBucketSubresource("lifecycle", xml: Self.configurationXML("LifecycleConfiguration", rules))
    }

    /// The days of the abort-incomplete-uploads rule, read back; nil when there is none.
    /// Accepts a rule with a Filter (AWS) or a top-level Prefix (Ceph RGW 16).
    public func abortIncompleteUploadsDays() throws -> Int? {
        let response: TransportResponse
        do {
            response = try send(.bucketConfiguration, "GET", key: "", query: [("lifecycle", "")])
        } catch let error as S3Error where error.code == .noSuchLifecycleConfiguration {
            return nil
        }
        return Self.abortIncompleteUploadsDays(lifecycle: response.body)
    }

    /// The days of the first enabled abort-incomplete-uploads rule in a lifecycle
    /// configuration, whether the rule has a Filter (AWS) or a top-level Prefix (Ceph 16).
    static func abortIncompleteUploadsDays(lifecycle body: [UInt8]) -> Int? {
        guard let tree = XMLTree.parse(body) else { return nil }
        for rule in tree.all("Rule") where rule.value("Status") == "Enabled" {
            if let days = rule.child("AbortIncompleteMultipartUpload")?.value("DaysAfterInitiation").flatMap(Int.init) {
                return days
            }
        }
        return nil
    }

    /// The bucket's default encryption (GetBucketEncryption): `.none` when it has none
    /// (AWS answers 404 ServerSideEncryptionConfigurationNotFoundError). Throws `.malformed`
    /// for an algorithm assetd does not know.
    public func bucketDefaultEncryption() throws -> ServerSideEncryption {
        let response: TransportResponse
        do {
            response = try send(.bucketConfiguration, "GET", key: "", query: [("encryption", "")])
        } catch let error as S3Error where error.code == .serverSideEncryptionConfigurationNotFound {
            return .none
        }
        return try Self.defaultEncryption(response.body)
    }

    /// The first rule of a ServerSideEncryptionConfiguration.
    static func defaultEncryption(_ body: [UInt8]) throws -> ServerSideEncryption {
        guard let tree = XMLTree.parse(body), tree.name == "ServerSideEncryptionConfiguration" else {
            throw S3Error.malformed("GetBucketEncryption answered without a ServerSideEncryptionConfiguration")
        }
        guard let rule = tree.child("Rule"), let byDefault = rule.child("ApplyServerSideEncryptionByDefault") else { return .none }
        switch byDefault.value("SSEAlgorithm") {
        case "AES256"?:
            return .aes256
        case "aws:kms"?:
            let keyID = byDefault.value("KMSMasterKeyID").flatMap { $0.isEmpty ? nil : $0 }
            return .kms(keyID: keyID, bucketKey: rule.value("BucketKeyEnabled").map { $0 == "true" })
        case "aws:kms:dsse"?:
            return .kmsDSSE(keyID: byDefault.value("KMSMasterKeyID").flatMap { $0.isEmpty ? nil : $0 })
        case let other:
            throw S3Error.malformed("the bucket's default encryption is \(other ?? "not named"), which assetd does not know")
        }
    }

    static func configurationXML(_ root: String, _ rules: [BucketRule]) -> String {
        "<\(root) xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">" + rules.map(\.xml).joined() + "</\(root)>"
    }

    private func bucketSubresource(_ name: String, missing: S3Error.Code, rule: String) throws -> [BucketRule] {
        let response: TransportResponse
        do {
            response = try send(.bucketConfiguration, "GET", key: "", query: [(name, "")])
        } catch let error as S3Error where error.code == missing {
            return []
        }
        guard let tree = XMLTree.parse(response.body) else {
            throw S3Error.malformed("the bucket's \(name) configuration is not XML")
        }
        return tree.all(rule).map(BucketRule.init(tree:))
    }

    private func putBucketSubresource(_ name: String, xml: String) throws {
        let body = Array(xml.utf8)
        let md5 = Digest(.md5)
        md5.update(body)
        _ = try send(.bucketConfiguration, "PUT", key: "", query: [(name, "")],
                     headers: [("content-type", "application/xml"), ("content-md5", Encoding.base64(md5.finalize()))],
                     body: .bytes(body))
    }
}

/// One rule of a bucket's CORS or lifecycle configuration, as an element tree: assetd
/// writes its own and puts the bucket's other rules back exactly as it read them.
public struct BucketRule: Sendable, Equatable {
    public var name: String
    public var text: String
    public var children: [BucketRule]

    public init(name: String, text: String = "", children: [BucketRule] = []) {
        self.name = name
        self.text = text
        self.children = children
    }

    init(tree: XMLTree) {
        let children = tree.children.map(BucketRule.init(tree:))
        self.init(name: tree.name, text: children.isEmpty ? tree.text.trimmingCharacters(in: .whitespacesAndNewlines) : "", children: children)
    }

    /// The rule's ID element, if it has one.
    public var id: String? { children.first { $0.name == "ID" }?.text }

    public var xml: String {
        "<\(name)>" + (children.isEmpty ? xmlEscape(text) : children.map(\.xml).joined()) + "</\(name)>"
    }

    /// The rule's non-empty leaves as sorted (name, text) pairs: two rules with the same
    /// leaves say the same, whatever order a server returns them in, and whether an empty
    /// prefix sits in a Filter (AWS) or at the top (Ceph RGW 16).
    public var leaves: [String] {
        if children.isEmpty { return text.isEmpty ? [] : ["\(name)=\(text)"] }
        return children.flatMap(\.leaves).sorted()
    }

    /// What setting `own` into `rules` did.
    public enum Change: String, Sendable {
        case added, updated, unchanged
    }

    /// `rules` with `own` in place of the rule of the same ID (or appended), and what changed.
    public static func merge(_ own: BucketRule, into rules: [BucketRule]) -> (rules: [BucketRule], change: Change) {
        guard let index = rules.firstIndex(where: { $0.id == own.id }) else { return (rules + [own], .added) }
        if rules[index].leaves == own.leaves { return (rules, .unchanged) }
        var merged = rules
        merged[index] = own
        return (merged, .updated)
    }
}
