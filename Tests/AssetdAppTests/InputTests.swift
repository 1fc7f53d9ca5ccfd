import Foundation
import Testing
import FastCGIServer
import Logging
@testable import AssetdApp

struct InputTests {
    /// `Input.token`'s check eight bytes at a time against a byte at a time, for every byte
    /// value at every position of one and two words and of the tail, and every length to 24.
    @Test func printableTokenEightBytesAtATimeEqualsTheByteLoop() throws {
        func byByte(_ bytes: [UInt8]) -> Bool { bytes.allSatisfy { $0 > 0x20 && $0 < 0x7f } }
        func eightAtATime(_ bytes: [UInt8]) -> Bool { bytes.withUnsafeBufferPointer(Input.isPrintableToken) }
        for value in 0...255 {
            for length in [8, 9, 13, 16, 21] {
                for position in 0..<length {
                    var bytes = [UInt8](repeating: UInt8(ascii: "A") + UInt8(position % 26), count: length)
                    bytes[position] = UInt8(value)
                    #expect(eightAtATime(bytes) == byByte(bytes), "byte \(value) at \(position) of \(length)")
                    // Next to the edges of the range, the neighbours of the byte tested.
                    bytes[(position + 1) % length] = [0x21, 0x7e, 0x20, 0x7f][value % 4]
                    #expect(eightAtATime(bytes) == byByte(bytes), "byte \(value) at \(position) of \(length), neighbour")
                }
            }
        }
        for length in 0...24 {
            let bytes = (0..<length).map { UInt8(0x21 + ($0 * 7) % 94) }
            #expect(eightAtATime(bytes) == byByte(bytes))
        }
        #expect(throws: HTTPError.self) { try Input.token("2~abc def", field: "UploadId") }
        #expect(throws: HTTPError.self) { try Input.token("2~abcdefgh\u{7f}", field: "UploadId") }
        #expect(throws: HTTPError.self) { try Input.token("é-not-ascii-at-all", field: "UploadId") }
        #expect(throws: HTTPError.self) { try Input.token(String(repeating: "a", count: 1025), field: "UploadId") }
        #expect(try Input.token(String(repeating: "a", count: 1024), field: "UploadId").utf8.count == 1024)
        #expect(try Input.token("0mSDx7ICHA5675WOXCr3uatcEMotHHIDsOXtIObmPmDjN8uJIt15tCjsNw", field: "UploadId").count == 58)
    }

    @Test(arguments: ["1", "42", "1000000000000000000", "9223372036854775806", "9223372036854775807"])
    func acceptsPlainIDs(text: String) {
        #expect(Input.parseID(Substring(text)) == Int64(text))
    }

    /// A slice is read from where it starts to where it ends, not the String around it.
    @Test func parsesASlice() {
        let text = "x12y"
        #expect(Input.parseID(text.dropFirst().dropLast()) == 12)
        #expect(Input.parseID(text.dropFirst()) == nil)
    }

    @Test(arguments: ["", "0", "01", "-1", "+1", " 1", "1 ", "1e3", "1.0", "0x1", "../1", "1/2",
                      "9223372036854775808", "9223372036854775810", "9999999999999999999", "99999999999999999999",
                      "１", "\u{663}", "1\u{0}", "1\u{301}"])
    func refusesEverythingElse(text: String) {
        #expect(Input.parseID(Substring(text)) == nil)
    }

    @Test func partNumberSpecs() throws {
        #expect(try Input.partNumbers("1-3,7,2", field: "p", max: 100) == [1, 2, 3, 7])
        #expect(try Input.partNumbers("9901-10000", field: "p", max: 100).count == 100)
        for bad in ["0-2", "1-101", "3-1", "1,,2", "x", "1-2-3", "10000-10001", "-", "1-"] {
            #expect(throws: HTTPError.self) { try Input.partNumbers(bad, field: "p", max: 100) }
        }
    }

    @Test func fileNamesAreCleanLabels() throws {
        #expect(try Input.fileName("../../etc/passwd") == "passwd")
        #expect(try Input.fileName("C:\\Users\\me\\photo.jpg") == "photo.jpg")
        #expect(try Input.fileName("..") == nil)
        let long = try #require(try Input.fileName(String(repeating: "é", count: 300)))
        #expect(long.utf8.count == 254 && long.allSatisfy { $0 == "é" })
        #expect(try Input.fileName("résumé ✓.pdf") == "résumé ✓.pdf")
        // Control characters are refused, naming the field, never dropped.
        for bad in ["a\u{0}b.png", "report\r\nSet-Cookie: x.pdf", "tab\t.jpg", "del\u{7f}.jpg", "c1\u{85}.jpg", "rlo\u{202E}gpj.exe"] {
            #expect(throws: HTTPError.self, "\(bad.debugDescription)") { try Input.fileName(bad) }
        }
    }

    @Test func partSizes() {
        let mib: Int64 = 1024 * 1024
        #expect(AssetService.partSize(for: 1) == 5 * mib)
        #expect(AssetService.partSize(for: 50_000 * mib) == 5 * mib)
        #expect(AssetService.partSize(for: 50_000 * mib + 1) == 6 * mib)
        let fiveTiB: Int64 = 5 * 1024 * 1024 * mib
        #expect(AssetService.partSize(for: fiveTiB) * 10_000 >= fiveTiB)
        #expect(AssetService.partSize(for: fiveTiB) == 525 * mib)
    }

    @Test func mediaTypesNormalize() throws {
        let types = try MediaTypes(allowed: MediaTypes.defaultAllowed)
        #expect(types.resolve("image/JPG; charset=x")! == ("image/jpeg", "jpg"))
        #expect(types.resolve("video/quicktime")! == ("video/quicktime", "mov"))
        #expect(types.resolve("text/html") == nil)
        #expect(types.resolve("image/svg+xml") == nil)
        #expect(throws: MediaTypeError.self) { try MediaTypes(allowed: ["text/html"]) }
    }
}

struct ConfigurationTests {
    let base = ["AWS_BUCKET": "b", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "very-secret-value",
                "ASSETD_JWT_SECRET": String(repeating: "j", count: 32), "ASSETD_DATABASE": "/tmp/x.sqlite"]

    func error(_ env: [String: String]) -> String {
        do { _ = try Configuration(environment: env); return "" } catch { return "\(error)" }
    }

    @Test func missingRequiredSettingIsNamed() {
        for key in base.keys {
            var env = base
            env[key] = nil
            #expect(error(env) == "\(key) is required but not set")
        }
    }

    @Test func malformedSettingsAreNamedWithoutSecrets() {
        #expect(error(base.merging(["ASSETD_THREADS": "many"]) { $1 }).hasPrefix("ASSETD_THREADS must be"))
        #expect(error(base.merging(["AWS_ENDPOINT_URL_S3": "localhost:9000"]) { $1 }).hasPrefix("AWS_ENDPOINT_URL_S3 must be"))
        #expect(error(base.merging(["ASSETD_ALLOWED_TYPES": "image/png,text/html"]) { $1 }).contains("text/html"))
        let short = error(base.merging(["ASSETD_JWT_SECRET": "short-secret"]) { $1 })
        #expect(short.hasPrefix("ASSETD_JWT_SECRET must be at least 32"))
        #expect(!short.contains("short-secret"))
    }

    @Test func fileThenEnvironment() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("assetd-\(UUID().uuidString).env").path
        try "# comment\nexport AWS_BUCKET=\"from-file\"\nAWS_DEFAULT_REGION=eu-west-1\n".write(toFile: path, atomically: true, encoding: .utf8)
        var env = base
        env["AWS_BUCKET"] = nil
        let fromFile = try Configuration(environment: env, file: path)
        #expect(fromFile.bucket == "from-file")
        #expect(fromFile.region == "eu-west-1")
        #expect(try Configuration(environment: base, file: path).bucket == "b")
        #expect("\(fromFile.credentials)".contains("very-secret-value") == false)
    }

    func temporaryFile(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("assetd-\(UUID().uuidString).env").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The file's read error keeps its cause (it used to be dropped: "cannot read" alone).
    @Test func anUnreadableFileSaysWhy() {
        func error(file: String) -> String {
            do { _ = try Configuration(environment: base, file: file); return "" } catch { return "\(error)" }
        }
        let missing = "/nonexistent-\(UUID().uuidString)/assetd.env"
        #expect(error(file: missing) == "cannot read the configuration file \(missing): No such file or directory")
        let directory = NSTemporaryDirectory()
        #expect(error(file: directory) == "cannot read the configuration file \(directory): Is a directory")
    }

    /// `assetd check-config`: a misspelled setting is an OK line whose reason starts with
    /// "warning:" and names it (CONTRACT.md: OK/FAIL per item; assetd starts, ignoring it); the variables of the dev stack and the tests are no settings, but only
    /// when they come from the environment.
    @Test func checkConfigWarnsOfUnknownSettings() throws {
        let file = try temporaryFile("ASSETD_MAX_UPLOAD_BYTE=5\nASSETD_HTTPS_PORT=8443\nAWS_PROFILE=x\n")
        let environment = base.merging([
            "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:1", "ASSETD_S3_TIMEOUT": "1",
            "ASSETD_THREDS": "4", "ASSETD_TEST_HTTPS_PORT": "45543", "ASSETD_DEV_DB": "postgres", "ASSETD_S3_PORT": "9000",
        ]) { $1 }
        var lines: [String] = []
        _ = ConfigCheck(environment: environment, file: file, logger: Logger(label: "test")).run { lines.append($0.line) }
        let warnings = lines.filter { $0.contains(": warning: ") }
        #expect(lines.allSatisfy { $0.hasPrefix("OK   ") || $0.hasPrefix("FAIL ") }, "\(lines)")
        #expect(warnings == [
            "OK   settings: warning: unknown, ignored: ASSETD_HTTPS_PORT, ASSETD_MAX_UPLOAD_BYTE (in \(file)), ASSETD_THREDS (in the environment); check their spelling in docs/CONFIGURATION.md",
        ], "\(lines)")
        #expect(!lines.contains { $0.hasPrefix("FAIL settings") })
    }

    /// Start-up logs the same, once: `unknownSettings` names each key and where it came from.
    @Test func unknownSettingsAreNamedWithTheirSource() throws {
        let file = try temporaryFile("ASSETD_LOG_LEVL=debug\nASSETD_TEST_S3_PORT=1\nASSETD_LOG_LEVEL=info\n")
        let configuration = try Configuration(environment: base.merging([
            "ASSETD_NGINX_KEEP_CONN": "1", "ASSETD_PG_PORT": "5433", "ASSETD_URL": "https://x", "ASSETD_FAULT": "",
            "ASSETD_THUMBNAIL_SIZ": "256", "ASSETD_STATE_DIR": "/tmp",
        ]) { $1 }, file: file)
        #expect(configuration.unknownSettings == [
            .init(name: "ASSETD_LOG_LEVL", source: .file(file)), .init(name: "ASSETD_TEST_S3_PORT", source: .file(file)),
            .init(name: "ASSETD_THUMBNAIL_SIZ", source: .environment),
        ])
        #expect(try Configuration(environment: base).unknownSettings.isEmpty)
    }

    /// A key that is no variable name is refused without being echoed: it may hold a secret
    /// (`ASSETD_JWT_SECRET abc==`), which would otherwise be named as an unknown setting.
    @Test func aMalformedKeyIsRefusedWithoutItsText() throws {
        let file = try temporaryFile("AWS_BUCKET=b\nASSETD_JWT_SECRET s3cr3tvalue0123456789==\n")
        let message: String
        do { _ = try Configuration(environment: base, file: file); message = "" } catch { message = "\(error)" }
        #expect(message == "\(file):2: the name before = must be letters, digits and _ (not starting with a digit)")
        #expect(try Configuration(environment: base.merging(["ASSETD_BAD NAME": "x"]) { $1 }).unknownSettings.isEmpty)
    }
}
