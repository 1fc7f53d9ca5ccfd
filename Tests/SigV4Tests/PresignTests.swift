import Foundation
import Testing
@testable import SigV4

struct PresignTests {
    let signer = SigV4Signer(
        credentials: Credentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        region: "us-east-1"
    )

    /// AWS's own presigned GET example for S3 (Authenticating Requests: Using Query Parameters).
    @Test func awsDocumentedS3Example() {
        let date = Date(timeIntervalSince1970: 1_369_353_600) // 2013-05-24T00:00:00Z
        let query = signer.presignedQuery(
            method: "GET", path: "/test.txt", headers: [("host", "examplebucket.s3.amazonaws.com")],
            expires: 86400, date: date
        )
        #expect(query.hasSuffix("X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"))
        #expect(query.contains("X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"))
    }

    /// AWS's documented GET Object header-signing example, with a Range header.
    @Test func awsDocumentedHeaderExample() {
        let date = Date(timeIntervalSince1970: 1_369_353_600)
        let added = signer.signHeaders(
            method: "GET", path: "/test.txt",
            headers: [("host", "examplebucket.s3.amazonaws.com"), ("range", "bytes=0-9"),
                      ("x-amz-content-sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")],
            payloadHash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", date: date
        )
        #expect(added.first { $0.name == "authorization" }?.value ==
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test func keysAreEncodedOnceAndSlashesKept() {
        #expect(URIEncoding.encodePath("/1/digital_assets/a b+c.jpg") == "/1/digital_assets/a%20b%2Bc.jpg")
        #expect(URIEncoding.encode("a/b=c") == "a%2Fb%3Dc")
    }

    @Test func sessionTokenIsSigned() {
        let withToken = SigV4Signer(
            credentials: Credentials(accessKeyID: "AK", secretAccessKey: "SK", sessionToken: "TOKEN/+="),
            region: "eu-west-1"
        )
        let query = withToken.presignedQuery(method: "PUT", path: "/k", headers: [("host", "h")], expires: 60, date: Date(timeIntervalSince1970: 0))
        #expect(query.contains("X-Amz-Security-Token=TOKEN%2F%2B%3D"))
        let plain = SigV4Signer(credentials: Credentials(accessKeyID: "AK", secretAccessKey: "SK"), region: "eu-west-1")
            .presignedQuery(method: "PUT", path: "/k", headers: [("host", "h")], expires: 60, date: Date(timeIntervalSince1970: 0))
        #expect(!plain.contains("Security-Token"))
        #expect(plain.suffix(64) != query.suffix(64))
    }

    @Test func signingKeyFollowsTheDay() {
        let day1 = signer.presignedQuery(method: "GET", path: "/k", headers: [("host", "h")], expires: 60, date: Date(timeIntervalSince1970: 0))
        let day2 = signer.presignedQuery(method: "GET", path: "/k", headers: [("host", "h")], expires: 60, date: Date(timeIntervalSince1970: 86400))
        let day1Again = signer.presignedQuery(method: "GET", path: "/k", headers: [("host", "h")], expires: 60, date: Date(timeIntervalSince1970: 0))
        #expect(day1 == day1Again)
        #expect(day1 != day2)
    }
}

struct PresignedPathTests {
    @Test func includingPathPutsTheSignedPathFirst() {
        let signer = SigV4Signer(credentials: Credentials(accessKeyID: "AK", secretAccessKey: "SK"), region: "us-east-1")
        let date = Date(timeIntervalSince1970: 1_800_000_000)
        let path = "/bucket/1/digital_assets/a b+ä.jpg"
        let query = signer.presignedQuery(method: "PUT", path: path, query: [("partNumber", "1")], headers: [("host", "h")],
                                          expires: 60, date: date)
        var out = Array("http://h".utf8)
        signer.appendPresignedQuery(to: &out, includingPath: true, method: "PUT", path: path, query: [("partNumber", "1")],
                                    headers: [("host", "h")], expires: 60, date: date)
        #expect(String(decoding: out, as: UTF8.self) == "http://h" + URIEncoding.encodePath(path) + "?" + query)
    }
}

struct URIEncodingTests {
    /// Every byte value, against the rule spelled out: `A-Z a-z 0-9 - _ . ~` stay, the rest
    /// becomes `%XX`; `/` stays only in a path.
    @Test func everyByte() {
        for value in 0...255 {
            let byte = UInt8(value)
            let unreserved = (0x41...0x5a).contains(value) || (0x61...0x7a).contains(value) || (0x30...0x39).contains(value)
                || [0x2d, 0x5f, 0x2e, 0x7e].contains(value)
            let escaped = Array(String(format: "%%%02X", value).utf8)
            for keepSlash in [false, true] {
                var out: [UInt8] = []
                [byte].withUnsafeBufferPointer { URIEncoding.appendEncoded($0, to: &out, keepSlash: keepSlash) }
                let kept = unreserved || (keepSlash && byte == UInt8(ascii: "/"))
                #expect(out == (kept ? [byte] : escaped), "byte \(value), keepSlash \(keepSlash)")
            }
            // The fresh fields of a presign go through the table, not `isKept`.
            #expect(URIEncoding.unreservedTable.utf8CodeUnitCount == 256)
            #expect(URIEncoding.pathTable.utf8CodeUnitCount == 256)
            var merged: [UInt8] = []
            URIEncoding.appendCanonicalQuery([], plus: (String(decoding: [byte], as: UTF8.self), ""), merging: EncodedQuery([]), to: &merged)
            let expected = value < 0x80 ? (unreserved ? [byte] : escaped) : Array("%EF%BF%BD".utf8)
            #expect(merged == expected + [UInt8(ascii: "=")], "byte \(value) through the fresh fields")
        }
    }

    /// Every byte value at offsets on both sides of the 16-byte steps of the fast check.
    @Test func everyByteInsideLongerText() {
        for value in 0...255 {
            for offset in [0, 1, 15, 16, 17, 31, 32, 39] {
                var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: 40)
                bytes[offset] = UInt8(value)
                for keepSlash in [false, true] {
                    var single: [UInt8] = []
                    [UInt8(value)].withUnsafeBufferPointer { URIEncoding.appendEncoded($0, to: &single, keepSlash: keepSlash) }
                    var out: [UInt8] = []
                    bytes.withUnsafeBufferPointer { URIEncoding.appendEncoded($0, to: &out, keepSlash: keepSlash) }
                    let expected = [UInt8](repeating: UInt8(ascii: "a"), count: offset) + single
                        + [UInt8](repeating: UInt8(ascii: "a"), count: 39 - offset)
                    #expect(out == expected, "byte \(value) at \(offset), keepSlash \(keepSlash)")
                }
            }
        }
    }

    /// The fresh fields' encoding, eight bytes at a time while all eight are unreserved,
    /// against `appendEncoded` (the `isKept` rule): every ASCII byte at offsets on both sides
    /// of the 8-byte steps, and non-ASCII characters across a step.
    @Test func freshFieldsEveryByteInsideLongerText() {
        func fresh(_ text: String) -> [UInt8] {
            var merged: [UInt8] = []
            URIEncoding.appendCanonicalQuery([], plus: (text, ""), merging: EncodedQuery([]), to: &merged)
            return merged
        }
        func byRule(_ text: String) -> [UInt8] {
            var out: [UInt8] = []
            URIEncoding.appendEncoded(text, to: &out, keepSlash: false)
            return out + [UInt8(ascii: "=")]
        }
        for value in 0...127 {
            for offset in [0, 1, 7, 8, 9, 15, 16, 23, 24, 30] {
                var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: 31)
                bytes[offset] = UInt8(value)
                let text = String(decoding: bytes, as: UTF8.self)
                #expect(fresh(text) == byRule(text), "byte \(value) at \(offset)")
            }
        }
        for length in 0...20 {
            for special in ["é", "☃", "/", "~", "%"] {
                let text = String(repeating: "Ab9-_.~", count: 3).prefix(length) + special + "tail0123456789"
                #expect(fresh(String(text)) == byRule(String(text)), "\(text)")
            }
        }
    }

    /// One header: kept as it is only when it is already canonical; otherwise lower-cased
    /// and folded as any header is.
    @Test func oneHeaderSortedAsAnyOther() {
        func sorted(_ headers: [SigV4Signer.Field]) -> ([String], [String], String) {
            let result = SigV4Signer.sortedHeaders(headers)
            return (result.fields.map(\.name), result.fields.map(\.value), result.signedHeaders)
        }
        #expect(sorted([("host", "s3.example:9000")]) == (["host"], ["s3.example:9000"], "host"))
        #expect(sorted([("Host", "s3.example")]) == (["host"], ["s3.example"], "host"))
        #expect(sorted([("host", "  a \t b  ")]) == (["host"], ["a b"], "host"))
        #expect(sorted([("host", "a\r\nb")]) == (["host"], ["a b"], "host"))
        #expect(sorted([("x-É", "v")]) == (["x-É"], ["v"], "x-É"))
        // The same header among others comes out the same way.
        #expect(sorted([("Host", " a  b "), ("a", "1")]) == (["a", "host"], ["1", "a b"], "a;host"))
    }

    @Test func mixedRunsAndSorting() {
        #expect(URIEncoding.encode("a b/c~d%") == "a%20b%2Fc~d%25")
        #expect(URIEncoding.encodePath("/k/ä b.jpg") == "/k/%C3%A4%20b.jpg")
        #expect(URIEncoding.canonicalQuery([("b", "2"), ("a", "z"), ("a", "y"), ("A", "x"), ("a b", "")])
                == "A=x&a=y&a=z&a%20b=&b=2")
    }
}

/// A part URL with `content-md5` signed in: S3 then refuses the PUT without that exact
/// Content-MD5, and refuses other bytes (BadDigest). The pinned URL is botocore's
/// `generate_presigned_url("upload_part", ..., ContentMD5=...)` at the same time
/// (botocore 1.29, path style), so the header's place in the canonical request, its
/// value as signed and `X-Amz-SignedHeaders=content-md5;host` are AWS's, not ours.
struct PresignedContentMD5Tests {
    let signer = SigV4Signer(
        credentials: Credentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        region: "us-east-1"
    )
    let date = Date(timeIntervalSince1970: 1_800_014_400) // 2027-01-15T12:00:00Z

    func query(md5: String?) -> String {
        var headers: [SigV4Signer.Field] = [("host", "127.0.0.1:9000")]
        if let md5 { headers.append(("content-md5", md5)) }
        return signer.presignedQuery(method: "PUT", path: "/assets/1/digital_assets/2.jpg",
                                     query: [("partNumber", "3"), ("uploadId", "up-1")], headers: headers, expires: 3600, date: date)
    }

    @Test func equalsBotocoresPresignWithContentMD5() {
        let signed = query(md5: "MwPhKvR0yhHYXtKWapMpkg==") // base64 MD5 of "part one"
        #expect(signed.contains("X-Amz-SignedHeaders=content-md5%3Bhost"))
        #expect(signed.hasSuffix("X-Amz-Signature=4d804e81b11497ff69cbf8036164631b4c8a5b00dcfff9b2966fb5209f7545a4"))
    }

    @Test func theMD5IsPartOfTheSignature() {
        let one = query(md5: "MwPhKvR0yhHYXtKWapMpkg==")
        let other = query(md5: "1B2M2Y8AsgTpgAmY7PhCfg==")
        let none = query(md5: nil)
        #expect(one.suffix(64) != other.suffix(64))
        #expect(none.contains("X-Amz-SignedHeaders=host&"))
        #expect(none.suffix(64) != one.suffix(64))
        // The MD5 travels as a header, never in the URL.
        #expect(!one.contains("MwPhKvR0yhHYXtKWapMpkg"))
    }
}

/// The presigned query merges the request's fields into the X-Amz-* fields kept encoded and
/// sorted: the same canonical query as encoding and sorting all of them each time.
struct MergedCanonicalQueryTests {
    @Test func mergingEqualsSortingEverything() {
        let constant: [(name: String, value: String)] = [
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"), ("X-Amz-Credential", "AKID/20150830/us-east-1/s3/aws4_request"),
            ("X-Amz-Expires", "900"), ("X-Amz-SignedHeaders", "content-md5;host"), ("X-Amz-Security-Token", "a/b+c="),
        ]
        let fresh: [[(name: String, value: String)]] = [
            [],
            [("X-Amz-Date", "20150830T123600Z")],
            [("partNumber", "7"), ("uploadId", "2~x/y z"), ("X-Amz-Date", "20150830T123600Z")],
            [("X-Amz-Expires", "900"), ("X-Amz-Expires", "1"), ("X-Amz-Expires", "9000"), ("X-Amz-D", "")],
            [("x-amz-algorithm", "z"), ("X-Amz-Algorithm", "AWS4"), ("", "e"), ("é", "ü"), ("~", "~"), ("X-Amz-Credential", "AKID")],
            [("X-Amz-Security-Token", "a/b+c="), ("X-Amz-SignedHeaders", "host"), ("Z", "1"), ("A", "2")],
        ]
        for count in 0...constant.count {
            let kept = Array(constant.prefix(count))
            for query in fresh {
                var merged: [UInt8] = []
                URIEncoding.appendCanonicalQuery(query, merging: EncodedQuery(kept), to: &merged)
                #expect(String(decoding: merged, as: UTF8.self) == URIEncoding.canonicalQuery(query + kept))
                // The last fresh field given apart (as the presign gives its X-Amz-Date).
                if let last = query.last {
                    var split: [UInt8] = []
                    URIEncoding.appendCanonicalQuery(Array(query.dropLast()), plus: last, merging: EncodedQuery(kept), to: &split)
                    #expect(split == merged)
                }
            }
        }
    }

    /// The kept fields follow the expiry, the signed headers and the day.
    @Test func keptFieldsFollowWhatTheyDependOn() {
        let signer = SigV4Signer(
            credentials: Credentials(accessKeyID: "AKID", secretAccessKey: "secret", sessionToken: "token/1"), region: "eu-west-1"
        )
        let day1 = Date(timeIntervalSince1970: 1_440_938_160), day2 = day1 + 86_400
        func query(_ expires: Int, _ headers: [(String, String)], _ date: Date, omit: Bool = false) -> String {
            signer.presignedQuery(method: "PUT", path: "/b/k", query: [("partNumber", "1"), ("uploadId", "u")],
                                  headers: [("host", "h")] + headers, expires: expires, date: date, omitSessionToken: omit)
        }
        for _ in 0..<2 {
            #expect(query(900, [], day1).contains("X-Amz-Expires=900&X-Amz-Security-Token=token%2F1&X-Amz-SignedHeaders=host&"))
            #expect(query(60, [], day1).contains("X-Amz-Expires=60&"))
            #expect(query(900, [("Content-MD5", "bQ==")], day1).contains("X-Amz-SignedHeaders=content-md5%3Bhost&"))
            #expect(query(900, [], day2).contains("X-Amz-Credential=AKID%2F20150831%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Date=20150831T"))
            #expect(query(900, [], day1, omit: true).contains("X-Amz-Expires=900&X-Amz-SignedHeaders=host&partNumber=1&uploadId=u&X-Amz-Security-Token=token%2F1&X-Amz-Signature="))
        }
    }
}
