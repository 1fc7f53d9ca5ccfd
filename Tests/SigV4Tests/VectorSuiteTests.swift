import Foundation
import Testing
@testable import SigV4

/// AWS's SigV4 test suite (a copy in Resources/sigv4, from awslabs/aws-c-auth): every case,
/// header form and query form. Every case of the suite applies: the `*-normalized` ones
/// through the signer's `normalizePath`, which S3 leaves off.
struct VectorSuiteTests {
    static let root: URL = {
        if let dir = ProcessInfo.processInfo.environment["ASSETD_SIGV4_VECTORS"] {
            return URL(fileURLWithPath: dir)
        }
        return Bundle.module.resourceURL!.appendingPathComponent("sigv4")
    }()

    /// The suite's 38 cases, named here rather than listed from the folder: a case that is
    /// missing fails by its name, instead of running nothing.
    static let cases = [
        "get-header-key-duplicate", "get-header-value-multiline", "get-header-value-order",
        "get-header-value-trim", "get-relative-normalized", "get-relative-relative-normalized",
        "get-relative-relative-unnormalized", "get-relative-unnormalized", "get-slash-dot-slash-normalized",
        "get-slash-dot-slash-unnormalized", "get-slash-normalized", "get-slash-pointless-dot-normalized",
        "get-slash-pointless-dot-unnormalized", "get-slash-unnormalized", "get-slashes-normalized",
        "get-slashes-unnormalized", "get-space-normalized", "get-space-unnormalized", "get-unreserved",
        "get-utf8", "get-vanilla", "get-vanilla-empty-query-key", "get-vanilla-query",
        "get-vanilla-query-order-encoded", "get-vanilla-query-order-key-case", "get-vanilla-query-unreserved",
        "get-vanilla-utf8-query", "get-vanilla-with-session-token", "post-header-key-case",
        "post-header-key-sort", "post-header-value-case", "post-sts-header-after", "post-sts-header-before",
        "post-vanilla", "post-vanilla-empty-query-value", "post-vanilla-query", "post-x-www-form-urlencoded",
        "post-x-www-form-urlencoded-parameters",
    ]

    /// The folder holds exactly these cases, each with every file the two forms read.
    @Test func suiteIsComplete() throws {
        #expect(Self.cases.count == 38)
        let folders = try FileManager.default.contentsOfDirectory(atPath: Self.root.path).filter { !$0.hasSuffix(".md") }
        #expect(folders.sorted() == Self.cases, "the cases under \(Self.root.path)")
        let files = ["context.json", "request.txt", "header-canonical-request.txt", "header-string-to-sign.txt",
                     "header-signature.txt", "header-signed-request.txt", "query-signature.txt", "query-signed-request.txt"]
        for name in Self.cases {
            for file in files {
                let path = Self.root.appendingPathComponent(name).appendingPathComponent(file).path
                #expect(FileManager.default.fileExists(atPath: path), "\(name)/\(file) is missing")
            }
        }
    }

    @Test(arguments: cases)
    func headerForm(name: String) throws {
        let vector = try Vector(directory: Self.root.appendingPathComponent(name))
        let signer = vector.signer
        var headers = vector.request.headers
        if vector.signBody { headers.append(("x-amz-content-sha256", vector.payloadHash)) }
        var signed = headers + [("x-amz-date", "20150830T123600Z")]
        if let token = vector.token, !vector.omitSessionToken { signed.append(("x-amz-security-token", token)) }

        let canonical = signer.canonicalRequest(
            method: vector.request.method, path: vector.request.path, query: vector.request.query,
            headers: signed, payloadHash: vector.payloadHash, normalizePath: vector.normalize
        )
        #expect(canonical.text == (try vector.file("header-canonical-request.txt")))
        let time = AmzTime(vector.date)
        let toSign = signer.stringToSign(canonicalRequest: canonical.text, time: time)
        #expect(toSign == (try vector.file("header-string-to-sign.txt")))
        #expect(signer.signature(stringToSign: toSign, time: time) == (try vector.file("header-signature.txt")))

        // The public entry point gives the same Authorization header as the signed request.
        let added = signer.signHeaders(
            method: vector.request.method, path: vector.request.path, query: vector.request.query,
            headers: headers, payloadHash: vector.payloadHash, date: vector.date,
            normalizePath: vector.normalize, omitSessionToken: vector.omitSessionToken
        )
        let expectedAuthorization = try vector.file("header-signed-request.txt")
            .split(separator: "\n").first { $0.hasPrefix("Authorization:") }
            .map { String($0.dropFirst("Authorization:".count)) }
        #expect(added.first { $0.name == "authorization" }?.value == expectedAuthorization)
    }

    @Test(arguments: cases)
    func queryForm(name: String) throws {
        let vector = try Vector(directory: Self.root.appendingPathComponent(name))
        let expectedSignature = try vector.file("query-signature.txt")
        let query = vector.signer.presignedQuery(
            method: vector.request.method, path: vector.request.path, query: vector.request.query,
            headers: vector.request.headers, expires: vector.expires, payloadHash: vector.payloadHash,
            date: vector.date, normalizePath: vector.normalize, omitSessionToken: vector.omitSessionToken
        )
        #expect(query.hasSuffix("&X-Amz-Signature=" + expectedSignature))

        // Every parameter of AWS's signed request is in ours with the same value.
        let signedLine = try vector.file("query-signed-request.txt").split(separator: "\n")[0]
        let target = signedLine.split(separator: " ").dropFirst().dropLast().joined(separator: " ")
        func decoded<S: StringProtocol>(_ text: S) -> Set<String> {
            Set(text.split(separator: "&").map { String($0).removingPercentEncoding ?? String($0) })
        }
        let expectedParameters = decoded(target.split(separator: "?", maxSplits: 1)[1])
        let ourParameters = decoded(query)
        #expect(ourParameters == expectedParameters)
    }
}

/// One folder of the suite.
struct Vector {
    struct Request {
        var method: String
        var path: String
        var query: [SigV4Signer.Field]
        var headers: [SigV4Signer.Field]
        var body: [UInt8]
    }

    let directory: URL
    let request: Request
    let signer: SigV4Signer
    let token: String?
    let date: Date
    let expires: Int
    let normalize: Bool
    let signBody: Bool
    let omitSessionToken: Bool
    var payloadHash: String { SHA256Hex.of(request.body) }

    init(directory: URL) throws {
        self.directory = directory
        let context = try JSONSerialization.jsonObject(with: Data(contentsOf: directory.appendingPathComponent("context.json"))) as! [String: Any]
        let credentials = context["credentials"] as! [String: Any]
        token = credentials["token"] as? String
        signer = SigV4Signer(
            credentials: Credentials(
                accessKeyID: credentials["access_key_id"] as! String,
                secretAccessKey: credentials["secret_access_key"] as! String,
                sessionToken: token
            ),
            region: context["region"] as! String,
            service: context["service"] as! String
        )
        date = ISO8601DateFormatter().date(from: context["timestamp"] as! String)!
        expires = context["expiration_in_seconds"] as? Int ?? 3600
        normalize = context["normalize"] as? Bool ?? true
        signBody = context["sign_body"] as? Bool ?? false
        omitSessionToken = context["omit_session_token"] as? Bool ?? false
        request = try Self.parse(Data(contentsOf: directory.appendingPathComponent("request.txt")))
    }

    func file(_ name: String) throws -> String {
        try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
    }

    /// Parses the suite's raw request: request line, headers (with folded lines), body.
    static func parse(_ data: Data) throws -> Request {
        let text = String(decoding: data, as: UTF8.self)
        let (head, body) = text.range(of: "\n\n").map { (String(text[..<$0.lowerBound]), Array(text[$0.upperBound...].utf8)) } ?? (text, [])
        var lines = head.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let requestLine = lines.removeFirst()
        let words = requestLine.split(separator: " ")
        let method = String(words[0])
        let target = words.dropFirst().dropLast().joined(separator: " ")
        let pieces = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let query: [SigV4Signer.Field] = pieces.count > 1 ? pieces[1].split(separator: "&").map { pair in
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (String(kv[0]).removingPercentEncoding ?? String(kv[0]),
                    kv.count > 1 ? (String(kv[1]).removingPercentEncoding ?? String(kv[1])) : "")
        } : []
        var headers: [SigV4Signer.Field] = []
        for line in lines where !line.isEmpty {
            if line.first == " " || line.first == "\t", !headers.isEmpty {
                headers[headers.count - 1].value += " " + line.trimmingCharacters(in: .whitespaces)
            } else if let colon = line.firstIndex(of: ":") {
                headers.append((String(line[..<colon]), String(line[line.index(after: colon)...])))
            }
        }
        return Request(method: method, path: String(pieces[0]), query: query, headers: headers, body: body)
    }
}
