import AssetStore

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

/// A setting of assetd that is set (not empty) but has no effect in this configuration:
/// ASSETD_THUMBNAIL_SIZE with ASSETD_THUMBNAILS=off, ASSETD_DATABASE_POOL with an SQLite
/// database. Named, with why, at start-up and in check-config, instead of "unknown".
public struct IgnoredSetting: Sendable, Equatable {
    public var name: String
    /// What makes it ignored: `with ASSETD_THUMBNAILS=off`.
    public var because: String

    public init(name: String, because: String) {
        self.name = name
        self.because = because
    }
}

extension Configuration {
    /// Every ASSETD_* setting assetd has, whatever this configuration reads: the quoted
    /// names of Configuration.swift (ConfigurationSettingsTests compares the two, and a
    /// Reader asked for a name not listed stops a debug build), so that "unknown" means
    /// a name assetd never reads, never one it only skips here.
    public static let knownSettings: Set<String> = [
        "ASSETD_ABORT_INCOMPLETE_DAYS", "ASSETD_ACCESS_LOG_BUFFER", "ASSETD_ACCESS_LOG_FLUSH", "ASSETD_ALLOWED_TYPES",
        "ASSETD_CORS_ORIGINS", "ASSETD_DATABASE", "ASSETD_DATABASE_POOL", "ASSETD_DATABASE_SEARCHES", "ASSETD_DATABASE_STATEMENT_TIMEOUT",
        "ASSETD_DATABASE_UPLOAD_CACHE", "ASSETD_EVENT_CLAIM_MARGIN", "ASSETD_EVENT_DEAD_RETENTION", "ASSETD_EVENT_MAX_AGE", "ASSETD_EVENT_RETENTION",
        "ASSETD_JWT_ACCEPTED_SECRETS", "ASSETD_JWT_SECRET", "ASSETD_KEEP_GPS", "ASSETD_LOG_LEVEL", "ASSETD_MAX_DIRECT_UPLOAD_BYTES", "ASSETD_MAX_JSON_BYTES",
        "ASSETD_MAX_UPLOAD_BYTES", "ASSETD_MEDIA_BACKFILL_BATCH", "ASSETD_PART_CHECKSUM", "ASSETD_PENDING_UPLOAD_TTL",
        "ASSETD_PRESIGN_EXPIRES", "ASSETD_RECONCILE_GRACE", "ASSETD_RECONCILE_INTERVAL", "ASSETD_S3_CONCURRENCY",
        "ASSETD_S3_PUBLIC_ENDPOINT", "ASSETD_S3_TIMEOUT", "ASSETD_SOCKET", "ASSETD_SOCKET_GROUP", "ASSETD_SOCKET_MODE",
        "ASSETD_SSE", "ASSETD_SSE_BUCKET_KEY", "ASSETD_SSE_KMS_KEY_ID", "ASSETD_STATE_DIR", "ASSETD_THREADS",
        "ASSETD_THUMBNAILER", "ASSETD_THUMBNAILER_MAX_MEMORY", "ASSETD_THUMBNAILER_SOCKET", "ASSETD_THUMBNAILS",
        "ASSETD_THUMBNAIL_CONCURRENCY", "ASSETD_THUMBNAIL_LEASE", "ASSETD_THUMBNAIL_MAX_DECODE_BYTES",
        "ASSETD_THUMBNAIL_MAX_PIXELS", "ASSETD_THUMBNAIL_MAX_SOURCE_BYTES", "ASSETD_THUMBNAIL_QUALITY", "ASSETD_THUMBNAIL_SIZE",
        "ASSETD_THUMBNAIL_TIMEOUT", "ASSETD_TMP_DIR", "ASSETD_TYPESENSE_API_KEY", "ASSETD_TYPESENSE_COLLECTION",
        "ASSETD_TYPESENSE_URL", "ASSETD_WEBHOOK_SECRET", "ASSETD_WEBHOOK_URLS",
    ]

    /// The settings the thumbnail worker and its decoder alone use (Bootstrap.thumbnailWorker;
    /// the media backfill runs through that worker), so ignored with ASSETD_THUMBNAILS=off.
    static let thumbnailSettings = [
        "ASSETD_THUMBNAIL_SIZE", "ASSETD_THUMBNAIL_QUALITY", "ASSETD_THUMBNAIL_CONCURRENCY", "ASSETD_THUMBNAIL_MAX_PIXELS",
        "ASSETD_THUMBNAIL_MAX_SOURCE_BYTES", "ASSETD_THUMBNAIL_MAX_DECODE_BYTES", "ASSETD_THUMBNAIL_TIMEOUT", "ASSETD_THUMBNAIL_LEASE",
        "ASSETD_THUMBNAILER", "ASSETD_THUMBNAILER_SOCKET", "ASSETD_THUMBNAILER_MAX_MEMORY", "ASSETD_MEDIA_BACKFILL_BATCH",
    ]

    /// Variables of the dev stack, the test suite and the bench scripts (scripts/, Tests/,
    /// bench/), and ASSETD_FAULT (the crash tests', read from the environment alone): at
    /// home in the environment that runs assetd there, so not warned of when they come from
    /// it. In the settings file every unknown key is.
    static let toolingPrefixes = ["ASSETD_DEV_", "ASSETD_TEST_", "ASSETD_PG_", "ASSETD_NGINX_", "ASSETD_CEPH_"]
    static let toolingNames: Set<String> = [
        "ASSETD_HTTPS_PORT", "ASSETD_S3_PORT", "ASSETD_BUILD_CONFIGURATION", "ASSETD_URL", "ASSETD_ENV_FILE", "ASSETD_BIN",
        "ASSETD_TOKEN", "ASSETD_SEED", "ASSETD_VERSION", "ASSETD_THUMBNAIL_SAMPLES", "ASSETD_FAULT",
    ]

    static func unknownSettings(file: String?, fileKeys: [String], environmentKeys: Dictionary<String, String>.Keys) -> [UnknownSetting] {
        // A name only (the file's keys are checked to be; the environment's are filtered),
        // so that nothing but a name is ever logged.
        func unknown(_ key: String) -> Bool { key.hasPrefix("ASSETD_") && isVariableName(key) && !knownSettings.contains(key) }
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

    /// The settings that `isSet` (a value that is not empty, as the Reader sees it) but that
    /// this configuration does not use, in the order of the rules below.
    static func ignoredSettings(of configuration: Configuration, isSet: (String) -> Bool) -> [IgnoredSetting] {
        var ignored: [IgnoredSetting] = []
        func note(_ names: [String], _ because: String) {
            for name in names where isSet(name) && !ignored.contains(where: { $0.name == name }) {
                ignored.append(IgnoredSetting(name: name, because: because))
            }
        }
        if !configuration.thumbnailsEnabled {
            note(thumbnailSettings, "with ASSETD_THUMBNAILS=off")
        } else if configuration.thumbnailerSocket != nil {
            note(["ASSETD_THUMBNAILER"], "with ASSETD_THUMBNAILER_SOCKET set")
        }
        if !DatabaseLocation.isPostgres(configuration.databasePath) {
            note(["ASSETD_DATABASE_POOL", "ASSETD_DATABASE_SEARCHES", "ASSETD_DATABASE_UPLOAD_CACHE", "ASSETD_THUMBNAIL_LEASE"], "with an SQLite ASSETD_DATABASE")
        }
        if configuration.socketPath == nil {
            note(["ASSETD_SOCKET_MODE", "ASSETD_SOCKET_GROUP"], "without ASSETD_SOCKET (the socket is inherited)")
        }
        if configuration.accessLogBuffer == 0 {
            note(["ASSETD_ACCESS_LOG_FLUSH"], "with ASSETD_ACCESS_LOG_BUFFER=0")
        }
        if configuration.webhookURLs.isEmpty {
            note(["ASSETD_WEBHOOK_SECRET"], "without ASSETD_WEBHOOK_URLS")
        }
        return ignored
    }

    /// `ASSETD_A, ASSETD_B are ignored with ASSETD_THUMBNAILS=off; ASSETD_C is ignored
    /// without ...`, or nil when every setting that is set is used.
    public var ignoredSettingsList: String? {
        guard !ignoredSettings.isEmpty else { return nil }
        var groups: [(String, [String])] = []
        for setting in ignoredSettings {
            if let index = groups.firstIndex(where: { $0.0 == setting.because }) {
                groups[index].1.append(setting.name)
            } else {
                groups.append((setting.because, [setting.name]))
            }
        }
        return groups.map { because, names in
            "\(names.joined(separator: ", ")) \(names.count == 1 ? "is" : "are") ignored \(because)"
        }.joined(separator: "; ")
    }
}
