public import AssetStore
import Hashing
import Logging

/// One part URL to presign: its number and, when the client gave it, the part's MD5
/// (16 bytes, decoded from `contentMD5`).
public typealias PartToSign = (partNumber: Int, contentMD5: [UInt8]?)

/// Per-part checksums (ASSETD_PART_CHECKSUM, issue 20). The rules, in one place:
///
/// - Presign: a part with an MD5 gets `content-md5` signed into its URL, so S3 refuses
///   the PUT without that exact Content-MD5 header, and refuses other bytes (BadDigest).
///   The MD5 is recorded for the part (the last one signed wins) before the URL is
///   handed out. `required` refuses a part without one; `off` ignores them all.
/// - Complete, while ETags are MD5s (`AssetService.objectETagsAreMD5`): every submitted
///   part that was signed with an MD5 must carry that MD5 as its ETag; under `required`
///   every submitted part must have been signed with one. Then, after S3 has built the
///   object, its ETag must be the MD5 of the parts' binary MD5s followed by `-N`; if
///   not, the object is deleted and the upload refused, as a failed content check is.
/// - A part presigned without an MD5 under `optional` (an older client, or one that chose
///   not to) is taken as S3 lists it: its bytes are proven only by the object's ETag
///   adding up, which shows that S3 stored the parts the client named, not that they are
///   the bytes the client read. A part once signed with an MD5 stays bound to the last MD5
///   signed for it, even if a URL without one is asked for later: bytes PUT through that
///   unbound URL must still match the recorded MD5, or complete refuses them.
extension AssetService {
    /// Presigned UploadPart URLs for the browser, in the order given; the signed MD5s are
    /// recorded first (one write), so no URL leaves before its MD5 is on record.
    public func partURLs(_ upload: UploadRecord, parts: [PartToSign]) throws -> [(partNumber: Int, url: String)] {
        try recordSignedParts(upload, parts)
        return parts.map { part in (part.partNumber, signedPartURL(upload, part)) }
    }

    /// `partURLs` for one part (GET /s3/get-upload-url), without the arrays around it.
    public func partURL(_ upload: UploadRecord, part: PartToSign) throws -> String {
        try recordSignedParts(upload, CollectionOfOne(part))
        return signedPartURL(upload, part)
    }

    /// `partURL`'s UTF-8 appended to `out` (the response body), without a String of it.
    /// Returns what `ObjectURLs.appendPresignedURL` says: whether the bytes are known to
    /// need no JSON escape.
    public func appendPartURL(_ upload: UploadRecord, part: PartToSign, to out: inout [UInt8]) throws -> Bool {
        try recordSignedParts(upload, CollectionOfOne(part))
        let (query, headers) = partPresign(upload, part)
        return objects.appendPresignedURL(to: &out, method: "PUT", key: upload.key, query: query, headers: headers,
                                          expires: configuration.presignExpires, date: now())
    }

    /// ASSETD_PART_CHECKSUM's rule for the parts about to be signed, and their MD5s recorded.
    private func recordSignedParts(_ upload: UploadRecord, _ parts: some Collection<PartToSign>) throws {
        let mode = configuration.partChecksum
        if mode == .required, let unsigned = parts.first(where: { $0.contentMD5 == nil }) {
            throw AssetError.invalid(
                "contentMD5 is required (ASSETD_PART_CHECKSUM=required): give the base64 MD5 of part \(unsigned.partNumber).")
        }
        guard mode != .off, parts.contains(where: { $0.contentMD5 != nil }) else { return }
        let md5s = parts.compactMap { part in part.contentMD5.map { (partNumber: part.partNumber, md5: Encoding.hex($0)) } }
        if try !records.recordSignedPartMD5s(uploadID: upload.uploadID, md5s: md5s, now: now()) {
            // Completed, aborted or expired since the route read it.
            guard let again = try records.upload(uploadID: upload.uploadID, assetID: upload.assetID, workspaceID: upload.workspaceID)
            else { throw AssetError.notFound("Upload \(upload.uploadID) was not found.") }
            try Self.requirePending(again)
            throw AssetError.conflict("Upload \(upload.uploadID) no longer takes parts.")
        }
    }

    /// One part's presigned PUT, `content-md5` signed in when it has one (unless `off`).
    private func signedPartURL(_ upload: UploadRecord, _ part: PartToSign) -> String {
        let (query, headers) = partPresign(upload, part)
        return presign("PUT", key: upload.key, query: query, headers: headers, expires: configuration.presignExpires)
    }

    /// The query and the signed headers of one part's presigned PUT.
    private func partPresign(_ upload: UploadRecord, _ part: PartToSign) -> (query: [(name: String, value: String)], headers: [(String, String)]) {
        let headers = configuration.partChecksum != .off ? part.contentMD5.map { [("content-md5", Encoding.base64($0))] } ?? [] : []
        return ([("partNumber", String(part.partNumber)), ("uploadId", upload.uploadID)], headers)
    }

    /// Before CompleteMultipartUpload: each submitted part against the MD5 signed for it.
    /// Refuses (nothing sent to S3, the upload stays pending, so the client may PUT the
    /// part again and complete again) a part whose ETag is not its signed MD5, and under
    /// `required` a part never signed with one.
    func checkSignedParts(_ upload: UploadRecord, _ parts: [CompletedPart]) throws {
        let signed = try records.signedPartMD5s(uploadID: upload.uploadID)
        let required = configuration.partChecksum == .required
        guard required || !signed.isEmpty else { return }
        for (index, part) in parts.enumerated() {
            guard let md5 = signed[part.partNumber] else {
                if required {
                    throw AssetError.invalid(
                        "parts[\(index)]: part \(part.partNumber) was never presigned with a contentMD5 (ASSETD_PART_CHECKSUM=required).")
                }
                continue
            }
            // With ETags that are no MD5 (SSE-KMS), S3 still checked each part's bytes
            // against the signed Content-MD5 when it was PUT, but its ETag cannot show
            // it: what is left to check is that the part was signed with an MD5 (above).
            guard objectETagsAreMD5 else { continue }
            guard part.etag.lowercased() == md5 else {
                throw AssetError.invalid(
                    "parts[\(index)].ETag: part \(part.partNumber) was presigned for the MD5 \(md5), but its ETag is \(part.etag); PUT the part again and complete with the ETag S3 answers.")
            }
        }
    }

    /// After CompleteMultipartUpload: the object's ETag must be the multipart ETag of the
    /// submitted parts (the MD5 of their binary MD5s, then `-N`). If it is not, S3 built
    /// the object from other parts than the ones named: the object is deleted, the upload
    /// recorded as rejected, and the refusal thrown.
    ///
    /// It runs only where it proves something and cannot destroy a good upload:
    /// - while ETags are MD5s (not SSE-KMS: neither ASSETD_SSE=aws:kms nor, with ASSETD_SSE
    ///   unset, a bucket whose default encryption `readBucketEncryption` found to be KMS, at
    ///   start-up or before a reconciler pass): there the signed part MD5s, checked by S3 at
    ///   each PUT, are the proof;
    /// - for an upload with at least one part signed with an MD5: without one, S3's own
    ///   check of the part ETags in CompleteMultipartUpload is all there is to add up;
    /// - when the sum can be computed: a part ETag that is no MD5 (a store whose ETags are
    ///   something else) is logged and the object kept, never deleted for it.
    func checkObjectETag(_ upload: UploadRecord, parts: [CompletedPart], etag: String, logger: Logger) throws {
        guard objectETagsAreMD5, configuration.partChecksum != .off,
              try !records.signedPartMD5s(uploadID: upload.uploadID).isEmpty else { return }
        let actual = Self.unquoted(etag).lowercased()
        guard let expected = Self.multipartETag(parts) else {
            logger.warning("completed upload's ETag not checked: a part's ETag is no MD5 (is the bucket encrypted with SSE-KMS by default? set ASSETD_SSE)",
                           metadata: ["upload": "\(upload.uploadID)", "etag": "\(actual)"])
            return
        }
        guard actual != expected else { return }
        let refusal = AssetError.invalid(
            "parts: the object's ETag \(actual) is not the MD5 of the submitted parts' MD5s (\(expected)); the object was deleted, start a new upload.")
        try objects.deleteObjects(keys: [upload.key])
        try records.rejectUpload(uploadID: upload.uploadID, now: now())
        logger.notice("completed upload refused: its ETag does not add up; its object was deleted", metadata: [
            "upload": "\(upload.uploadID)", "key": "\(upload.key)", "etag": "\(actual)", "expected": "\(expected)",
        ])
        throw refusal
    }
}
