import Hashing

extension S3Client {
    public struct CORSRule: Sendable {
        public var allowedOrigins: [String]
        public var allowedMethods = ["GET", "POST", "PUT", "DELETE", "HEAD"]
        public var allowedHeaders = ["*"]
        public var exposeHeaders = ["ETag", "x-amz-server-side-encryption"]
        public var maxAgeSeconds = 3000

        public init(allowedOrigins: [String]) { self.allowedOrigins = allowedOrigins }
    }

    /// HeadBucket: true when the bucket exists and the credentials may use it.
    public func bucketExists() throws -> Bool {
        do {
            _ = try send("HEAD", key: "")
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
            _ = try send("PUT", key: "", body: body)
        } catch let error as S3Error where error.code == "BucketAlreadyOwnedByYou" {
            return
        }
    }

    public func putBucketCORS(_ rules: [CORSRule]) throws {
        var xml = "<CORSConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for rule in rules {
            xml += "<CORSRule>"
            for origin in rule.allowedOrigins { xml += "<AllowedOrigin>\(xmlEscape(origin))</AllowedOrigin>" }
            for method in rule.allowedMethods { xml += "<AllowedMethod>\(method)</AllowedMethod>" }
            for header in rule.allowedHeaders { xml += "<AllowedHeader>\(xmlEscape(header))</AllowedHeader>" }
            for header in rule.exposeHeaders { xml += "<ExposeHeader>\(xmlEscape(header))</ExposeHeader>" }
            xml += "<MaxAgeSeconds>\(rule.maxAgeSeconds)</MaxAgeSeconds></CORSRule>"
        }
        xml += "</CORSConfiguration>"
        try putBucketSubresource("cors", xml: xml)
    }

    /// A lifecycle rule that aborts multipart uploads left incomplete for `days` days.
    public func putAbortIncompleteUploadsRule(days: Int) throws {
        let xml = "<LifecycleConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Rule><ID>assetd-abort-incomplete-multipart-uploads</ID><Filter><Prefix></Prefix></Filter><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>\(days)</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule></LifecycleConfiguration>"
        try putBucketSubresource("lifecycle", xml: xml)
    }

    /// The days of the abort-incomplete-uploads rule, read back; nil when there is none.
    /// Accepts a rule with a Filter (AWS) or a top-level Prefix (Ceph RGW 16).
    public func abortIncompleteUploadsDays() throws -> Int? {
        let response: TransportResponse
        do {
            response = try send("GET", key: "", query: [("lifecycle", "")])
        } catch let error as S3Error where error.code == "NoSuchLifecycleConfiguration" {
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

    private func putBucketSubresource(_ name: String, xml: String) throws {
        let body = Array(xml.utf8)
        let md5 = Digest(.md5)
        md5.update(body)
        _ = try send("PUT", key: "", query: [(name, "")],
                     headers: [("content-type", "application/xml"), ("content-md5", Encoding.base64(md5.finalize()))],
                     body: .bytes(body))
    }
}
