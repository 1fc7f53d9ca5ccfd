/// A key of the settings file or of the environment that looks like a setting of assetd
/// (ASSETD_*) but names none: a misspelling (ASSETD_MAX_UPLOAD_BYTE), or a setting of
/// another version. assetd ignores it, and says so once at start-up and in check-config.
public struct UnknownSetting: Sendable, Equatable {
    public enum Source: Sendable, Equatable {
        case file(String)
        case environment
    }

    public var name: String
    public var source: Source

    public init(name: String, source: Source) {
        self.name = name
        self.source = source
    }
}

/// The names one reading of the settings asked for (a reference, so that the Reader stays a value).
final class NamesAsked {
    var names: Set<String> = []
}

extension Configuration {
    /// Variables of the dev stack, the test suite and the bench scripts (scripts/, Tests/,
    /// bench/), and ASSETD_FAULT (the crash tests', read from the environment alone): at
    /// home in the environment that runs assetd there, so not warned of when they come from
    /// it. In the settings file every unknown key is.
    static let toolingPrefixes = ["ASSETD_DEV_", "ASSETD_TEST_", "ASSETD_PG_", "ASSETD_NGINX_", "ASSETD_CEPH_"]
    static let toolingNames: Set<String> = [
        "ASSETD_HTTPS_PORT", "ASSETD_S3_PORT", "ASSETD_BUILD_CONFIGURATION", "ASSETD_URL", "ASSETD_ENV_FILE", "ASSETD_BIN",
        "ASSETD_TOKEN", "ASSETD_SEED", "ASSETD_VERSION", "ASSETD_THUMBNAIL_SAMPLES", "ASSETD_FAULT",
    ]

    static func unknownSettings(file: String?, fileKeys: [String], environmentKeys: Dictionary<String, String>.Keys,
                                known: NamesAsked) -> [UnknownSetting] {
        // A name only (the file's keys are checked to be; the environment's are filtered),
        // so that nothing but a name is ever logged.
        func unknown(_ key: String) -> Bool { key.hasPrefix("ASSETD_") && isVariableName(key) && !known.names.contains(key) }
        let inFile = Set(fileKeys.filter(unknown))
        let inEnvironment = environmentKeys.filter { key in
            unknown(key) && !inFile.contains(key) && !toolingNames.contains(key) && !toolingPrefixes.contains { key.hasPrefix($0) }
        }
        return inFile.sorted().map { UnknownSetting(name: $0, source: .file(file ?? "")) }
            + inEnvironment.sorted().map { UnknownSetting(name: $0, source: .environment) }
    }

    /// `ASSETD_A (in /etc/assetd/assetd.env), ASSETD_B (in the environment)`, or nil when
    /// every key is known. Keys of one source are named together.
    public var unknownSettingsList: String? {
        guard !unknownSettings.isEmpty else { return nil }
        var groups: [(UnknownSetting.Source, [String])] = []
        for setting in unknownSettings {
            if let last = groups.last, last.0 == setting.source {
                groups[groups.count - 1].1.append(setting.name)
            } else {
                groups.append((setting.source, [setting.name]))
            }
        }
        return groups.map { source, names in
            let place = switch source {
            case .file(let path): "in \(path)"
            case .environment: "in the environment"
            }
            return "\(names.joined(separator: ", ")) (\(place))"
        }.joined(separator: ", ")
    }
}
