import Foundation
import Logging
import Testing
import TestFiles
@testable import AssetdApp

/// What "unknown" and "ignored" mean in the settings warnings: unknown is a name assetd
/// never reads (Configuration.knownSettings), ignored is a known setting that is set but
/// has no effect in this configuration.
struct ConfigurationSettingsTests {
    let base = ["AWS_BUCKET": "b", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "very-secret-value",
                "ASSETD_JWT_SECRET": String(repeating: "j", count: 32), "ASSETD_DATABASE": "/tmp/x.sqlite"]

    /// The one list of settings is the quoted ASSETD_* names of Configuration.swift, both
    /// ways: a setting added there without the list (or left in the list after its
    /// removal) fails here, as Tests/scripts/test_settings_documented.sh fails for the docs.
    @Test func knownSettingsAreTheNamesConfigurationSwiftReads() throws {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/AssetdApp/Configuration.swift")
        let text = try String(contentsOf: source, encoding: .utf8)
        let names = Set(text.matches(of: #/"ASSETD_[A-Z0-9_]+"/#).map { String(text[$0.range].dropFirst().dropLast()) })
        #expect(names.count > 40, "the names were found in \(source.path)")
        #expect(names.subtracting(Configuration.knownSettings).sorted() == [], "read but not in Configuration.knownSettings")
        #expect(Configuration.knownSettings.subtracting(names).sorted() == [], "listed but not read by Configuration.swift")
        #expect(Set(Configuration.thumbnailSettings).isSubset(of: Configuration.knownSettings))
    }

    /// Every known setting, in the file and in the environment at once, is never called
    /// unknown, whatever this configuration reads of it.
    @Test func noKnownSettingIsUnknown() {
        let environment = Dictionary(uniqueKeysWithValues: Configuration.knownSettings.map { ($0, "x") })
        #expect(Configuration.unknownSettings(file: "/etc/assetd/assetd.env", fileKeys: Array(Configuration.knownSettings),
                                              environmentKeys: environment.keys) == [])
    }

    /// A known setting set where it has no effect is named as ignored, with why, and not
    /// as unknown; a setting set where it is used, or left empty, is named nowhere.
    @Test func aKnownSettingWithoutEffectHereIsIgnoredNotUnknown() throws {
        let file = try TestFiles.scratchDirectory("assetd-settings") + "/assetd.env"
        try "ASSETD_THUMBNAIL_SIZE=256\nASSETD_THUMBNAILER_SOCKET=/run/x.sock\nASSETD_SOCKET_GROUP=0\nASSETD_SOCKET_MODE=\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        let environment = base.merging([
            "ASSETD_THUMBNAILS": "off", "ASSETD_DATABASE_POOL": "5", "ASSETD_THUMBNAIL_LEASE": "30",
            "ASSETD_ACCESS_LOG_FLUSH": "2", "ASSETD_KEEP_GPS": "on", "ASSETD_THREADS": "4",
        ]) { $1 }
        let configuration = try Configuration(environment: environment, file: file)
        #expect(configuration.unknownSettings == [])
        #expect(configuration.ignoredSettings.map(\.name) == [
            "ASSETD_THUMBNAIL_SIZE", "ASSETD_THUMBNAIL_LEASE", "ASSETD_THUMBNAILER_SOCKET", "ASSETD_DATABASE_POOL", "ASSETD_SOCKET_GROUP",
            "ASSETD_ACCESS_LOG_FLUSH",
        ])
        #expect(configuration.ignoredSettingsList == "ASSETD_THUMBNAIL_SIZE, ASSETD_THUMBNAIL_LEASE, ASSETD_THUMBNAILER_SOCKET are ignored "
            + "with ASSETD_THUMBNAILS=off; ASSETD_DATABASE_POOL is ignored with an SQLite ASSETD_DATABASE; ASSETD_SOCKET_GROUP is "
            + "ignored without ASSETD_SOCKET (the socket is inherited); ASSETD_ACCESS_LOG_FLUSH is ignored with ASSETD_ACCESS_LOG_BUFFER=0")

        var lines: [String] = []
        _ = ConfigCheck(environment: environment.merging(["AWS_ENDPOINT_URL_S3": "http://127.0.0.1:1", "ASSETD_S3_TIMEOUT": "1"]) { $1 },
                        file: file, logger: Logger(label: "test")).run { lines.append($0.line) }
        #expect(lines.filter { $0.contains(": warning: ") } == [
            "OK   settings: warning: \(configuration.ignoredSettingsList!) (docs/CONFIGURATION.md)",
        ], "\(lines)")

        // Where they are used, nothing is said.
        let used = try Configuration(environment: base.merging([
            "ASSETD_DATABASE": "postgres://u@127.0.0.1/db", "ASSETD_DATABASE_POOL": "5", "ASSETD_THUMBNAIL_LEASE": "30",
            "ASSETD_THUMBNAIL_SIZE": "256", "ASSETD_SOCKET": "/run/assetd/a.sock", "ASSETD_SOCKET_GROUP": "0",
            "ASSETD_ACCESS_LOG_BUFFER": "4096", "ASSETD_ACCESS_LOG_FLUSH": "2", "ASSETD_THUMBNAILER": "/bin/true",
        ]) { $1 })
        #expect(used.ignoredSettings == [] && used.ignoredSettingsList == nil)
        #expect(try Configuration(environment: base).ignoredSettings == [])
    }

    /// The decoder executable is ignored when systemd's zygote socket is named; the webhook
    /// secret without an endpoint to sign for.
    @Test func theDecoderPathWithItsSocketAndASecretWithoutEndpointsAreIgnored() throws {
        let configuration = try Configuration(environment: base.merging([
            "ASSETD_THUMBNAILER": "/usr/lib/assetd/assetd-thumbnailer", "ASSETD_THUMBNAILER_SOCKET": "/run/x.sock",
            "ASSETD_WEBHOOK_SECRET": "whsec_" + Data(repeating: 7, count: 24).base64EncodedString(),
        ]) { $1 })
        #expect(configuration.ignoredSettings == [
            IgnoredSetting(name: "ASSETD_THUMBNAILER", because: "with ASSETD_THUMBNAILER_SOCKET set"),
            IgnoredSetting(name: "ASSETD_WEBHOOK_SECRET", because: "without ASSETD_WEBHOOK_URLS"),
        ])
    }

    /// ASSETD_EVENT_CLAIM_MARGIN: the margin of a claim's lease over its batch's timeouts.
    @Test func theEventClaimMarginIsASettingWithBounds() throws {
        #expect(try Configuration(environment: base).eventClaimMargin == 30)
        #expect(try Configuration(environment: base.merging(["ASSETD_EVENT_CLAIM_MARGIN": "2"]) { $1 }).eventClaimMargin == 2)
        for bad in ["0", "3601", "x"] {
            #expect(throws: ConfigurationError.self) {
                try Configuration(environment: base.merging(["ASSETD_EVENT_CLAIM_MARGIN": bad]) { $1 })
            }
        }
    }
}
