import Foundation
public import S3Client
public import SigV4

/// A setting that is missing or malformed; `description` is the one line start-up prints.
/// It names the setting and never contains a secret's value.
public struct ConfigurationError: Error, CustomStringConvertible {
    public let description: String
}

/// ASSETD_PART_CHECKSUM: what assetd does with a part's MD5 (`contentMD5`) when it
/// presigns part URLs.
public enum PartChecksumMode: String, Sendable, CaseIterable {
    /// Signs `content-md5` into the URL when the client gives the MD5; URLs without it
    /// stay as before (clients that send none keep working).
    case optional
    /// Refuses part URLs without a contentMD5 (400, naming contentMD5), and completes only
    /// uploads whose every part was signed with one.
    case required
    /// Ignores contentMD5: no part URL signs it, and nothing is recorded.
    case off
}

/// assetd's settings, from the environment and optionally a KEY=VALUE file (the same
/// file serves systemd's EnvironmentFile=). The environment wins over the file.
public struct Configuration: Sendable {
    public var region: String
    public var bucket: String
    public var credentials: Credentials
    /// AWS_ENDPOINT_URL_S3: nil for AWS itself.
    public var endpoint: S3Endpoint?
    public var publicEndpoint: S3Endpoint?
    /// ASSETD_JWT_SECRET: the one secret tokens (and list cursors) are signed with, taken
    /// verbatim (a comma or a space in it is part of it); "" when unset (`assetd token`).
    public var jwtSecret: String
    /// ASSETD_JWT_ACCEPTED_SECRETS: the other secrets that verify tokens and list cursors
    /// but never sign, only while secrets are rotated (docs/OPERATIONS.md, "Rotating secrets").
    public var jwtAcceptedSecrets: [String] = []
    /// Every secret that verifies, the signing one first (JWTVerifier, ListCursor).
    public var jwtSecrets: [String] { [jwtSecret] + jwtAcceptedSecrets }
    /// ASSETD_DATABASE: an SQLite path (one host) or a postgres:// URL (several hosts).
    /// Never logged as it is: `DatabaseLocation.redacted` hides a password.
    public var databasePath: String
    /// ASSETD_DATABASE_POOL: PostgreSQL connections per process.
    public var databasePool: Int
    /// ASSETD_DATABASE_SEARCHES: PostgreSQL text searches at once per process (the others
    /// wait their turn); 0 is this host's cores, 2 to 4.
    public var databaseSearches: Int
    /// ASSETD_DATABASE_STATEMENT_TIMEOUT: milliseconds a statement may run. PostgreSQL: every
    /// statement (and lock wait); SQLite: the listing and search of GET /api/assets.
    public var databaseStatementTimeout: Int
    /// ASSETD_DATABASE_UPLOAD_CACHE: PostgreSQL's pending-upload cache (LISTEN/NOTIFY), on or off.
    public var databaseUploadCache: Bool
    /// ASSETD_THUMBNAIL_LEASE: seconds a host holds a thumbnail task (PostgreSQL) without renewing it.
    public var thumbnailLease: Int
    /// ASSETD_SOCKET; nil to inherit a listening socket on standard input.
    public var socketPath: String?
    public var socketMode: UInt32
    /// ASSETD_SOCKET_GROUP: the group (name or gid) of the socket assetd creates, so that
    /// nginx's user, alone in that group (assetd-web), may connect with ASSETD_SOCKET_MODE 0660; nil keeps assetd's.
    public var socketGroup: UInt32?
    public var threads: Int
    public var mediaTypes: MediaTypes
    public var maxUploadBytes: Int64
    public var maxDirectUploadBytes: Int64
    public var maxJSONBodyBytes: Int
    public var presignExpires: Int
    public var abortIncompleteDays: Int
    public var corsOrigins: [String]
    /// ASSETD_RECONCILE_INTERVAL: seconds between the reconciler's passes.
    public var reconcileInterval: Int
    /// ASSETD_MEDIA_BACKFILL_BATCH: assets from before media metadata whose media each
    /// reconciler pass reads (MediaBackfill); 0 turns the reconciler's backfill off.
    public var mediaBackfillBatch: Int
    /// ASSETD_RECONCILE_GRACE: seconds a record must be left untouched before the
    /// reconciler repairs it (the requests still working on younger ones finish them).
    public var reconcileGrace: Int
    /// ASSETD_PENDING_UPLOAD_TTL: seconds a multipart upload may stay pending before the
    /// reconciler aborts it (the bucket's lifecycle rule does the same in S3).
    public var pendingUploadTTL: Int
    /// ASSETD_S3_TIMEOUT: seconds one S3 call without a large body may take.
    public var s3Timeout: Int
    /// ASSETD_S3_CONCURRENCY: S3 calls at once (the bulkhead); below `threads`, so that
    /// workers stay free for the routes that need no S3 while S3 hangs.
    public var s3Concurrency: Int
    /// ASSETD_SSE, ASSETD_SSE_KMS_KEY_ID, ASSETD_SSE_BUCKET_KEY: the encryption of every
    /// object assetd writes. Its `etagsAreMD5` says whether ETags may be compared with MD5s.
    public var serverSideEncryption: ServerSideEncryption
    public var stateDirectory: String
    public var tmpDirectory: String
    public var logLevel: String
    /// ASSETD_ACCESS_LOG_BUFFER: bytes of access-log lines each worker holds before one
    /// write (0: a write a line); ASSETD_ACCESS_LOG_FLUSH: seconds a held line waits at
    /// most (see AccessLogBuffer).
    public var accessLogBuffer: Int
    public var accessLogFlush: Int
    // Thumbnails (see Bootstrap.thumbnailWorker).
    /// ASSETD_THUMBNAILS (on/off): off for deployments that make thumbnails elsewhere.
    public var thumbnailsEnabled: Bool
    /// ASSETD_THUMBNAIL_SIZE: the longest edge in pixels.
    public var thumbnailSize: Int
    /// ASSETD_THUMBNAIL_QUALITY: JPEG quality.
    public var thumbnailQuality: Int
    /// ASSETD_THUMBNAIL_CONCURRENCY: tasks at once; half the cores by default, at least 1.
    public var thumbnailConcurrency: Int
    /// ASSETD_THUMBNAIL_MAX_PIXELS: larger images fail from their header (an integer, or
    /// with an M suffix for millions: 100M).
    public var thumbnailMaxPixels: Int
    /// ASSETD_THUMBNAIL_MAX_SOURCE_BYTES: larger objects get no thumbnail (the task
    /// downloads the source whole to the state disk).
    public var thumbnailMaxSourceBytes: Int64
    // The decoder process (IsolatedThumbnailer, docs/OPERATIONS.md).
    /// ASSETD_THUMBNAIL_MAX_DECODE_BYTES: an image whose decoded pixels (width x height x
    /// bands x bytes per band, from its header) would take more fails before decoding.
    public var thumbnailMaxDecodeBytes: Int = 512 << 20
    /// ASSETD_THUMBNAIL_TIMEOUT: seconds one decode may take (wall clock; also the
    /// decoder's CPU limit). Past it the decoder is killed and the task retried.
    public var thumbnailTimeout: Int = 60
    /// ASSETD_THUMBNAILER_MAX_MEMORY: the decoder's address-space limit (RLIMIT_AS), bytes.
    public var thumbnailerMaxMemory: Int = 1536 << 20
    /// ASSETD_KEEP_GPS (on/off, default off): record EXIF GPS coordinates in the media
    /// metadata. Off: the decoder does not read them and assetd drops any it is sent.
    public var keepGPS = false
    /// ASSETD_THUMBNAILER_SOCKET: the socket of assetd-thumbnailer.socket (systemd's decoder
    /// zygote); nil: assetd runs the zygote as its own child.
    public var thumbnailerSocket: String?
    /// ASSETD_THUMBNAILER: the decoder executable to run as the zygote; nil: assetd-thumbnailer beside assetd.
    public var thumbnailerPath: String?

    // Per-part checksums (AssetService+multipart.swift, "Part checksums").
    /// ASSETD_PART_CHECKSUM: whether part URLs sign the part's MD5 (`contentMD5`).
    public var partChecksum: PartChecksumMode = .optional
    /// Whether S3 gives objects and parts ETags that are MD5s: a part's ETag is the MD5
    /// of its bytes, and a multipart object's ETag is the MD5 of its parts' binary MD5s
    /// followed by `-N`. True for plain S3, SSE-S3 (AES256), MinIO, Ceph and moto; false
    /// under SSE-KMS (and SSE-C), whose ETags are no MD5. complete-upload's ETag checks
    /// (each part's ETag against the MD5 signed for it, and the object's ETag against the
    /// parts') run only while this is true. Not a setting of its own: it follows from the
    /// encryption that the service writes with (ASSETD_SSE sets it false for aws:kms).
    public var objectETagsAreMD5: Bool = true

    // Events (docs/CONFIGURATION.md, "Events"; EventDelivery.swift).
    /// ASSETD_WEBHOOK_URLS: the endpoints every event is delivered to.
    public var webhookURLs: [String] = []
    /// ASSETD_WEBHOOK_SECRET: `whsec_` + base64, comma-separated; each signs every delivery.
    public var webhookSecrets: [WebhookSecret] = []
    /// ASSETD_TYPESENSE_URL, _API_KEY, _COLLECTION: all three, or none.
    public var typesense: TypesenseSettings?
    /// ASSETD_EVENT_MAX_AGE: seconds an event is retried for before it is dead (3 days).
    public var eventMaxAge: Int = 259_200
    /// ASSETD_EVENT_RETENTION: seconds a delivered event is kept (7 days).
    public var eventRetention: Int = 604_800
    /// ASSETD_EVENT_DEAD_RETENTION: seconds a dead delivery is kept after it died, for
    /// `assetd events --dead` and a redelivery (30 days); at least ASSETD_EVENT_RETENTION.
    public var eventDeadRetention: Int = 2_592_000
    /// ASSETD_EVENT_CLAIM_MARGIN: seconds a claim of deliveries is leased beyond the longest
    /// its batch can take (a webhook: its 15 s timeout); after a crash, what was in flight
    /// is sent again once that lease ends.
    public var eventClaimMargin: Int = 30

    /// The ASSETD_* keys of the settings file and the environment that name no setting (a
    /// misspelling, a setting of another version): ignored, and warned of at start-up and
    /// by `assetd check-config`. Those of the file first, each list by name.
    public var unknownSettings: [UnknownSetting] = []
    /// The settings set (not empty) that this configuration does not use (ASSETD_THUMBNAIL_SIZE
    /// with ASSETD_THUMBNAILS=off): warned of as ignored, at start-up and by check-config.
    public var ignoredSettings: [IgnoredSetting] = []

    /// ASSETD_JWT_ACCEPTED_SECRETS: split at commas, spaces around each trimmed, as
    /// ASSETD_WEBHOOK_SECRET's; each at least 32 characters, named by its position in an
    /// error, never by its value. One equal to ASSETD_JWT_SECRET is dropped (it would only
    /// cost a second HMAC for a token that fails).
    static func jwtAcceptedSecrets(_ text: String?, signing: String) throws -> [String] {
        guard let text else { return [] }
        let secrets = text.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmingSpaces() }
        for (index, secret) in secrets.enumerated() where secret.utf8.count < JWTVerifier.minimumSecretLength {
            throw ConfigurationError(description: "ASSETD_JWT_ACCEPTED_SECRETS: secret \(index + 1) of \(secrets.count) must be at least \(JWTVerifier.minimumSecretLength) characters long (commas separate secrets)")
        }
        var kept: [String] = []
        for secret in secrets where secret != signing && !kept.contains(secret) { kept.append(secret) }
        return kept
    }

    /// S3's limit on an object built by a multipart upload: 5 TiB.
    public static let s3MaxObjectBytes: Int64 = 5 * 1024 * 1024 * 1024 * 1024

    /// Reads the settings. `required` false lets commands that need no S3 or database
    /// (`assetd token`) run with only the settings they use.
    public init(environment: [String: String], file: String? = nil, requireAll: Bool = true) throws {
        var values: [String: String] = [:]
        if let file {
            values = try Self.readFile(file)
        }
        let fileKeys = Array(values.keys)
        for (key, value) in environment { values[key] = value }
        let reader = Reader(values: values, requireAll: requireAll)

        region = reader.string("AWS_DEFAULT_REGION", default: "us-east-1")
        bucket = try reader.required("AWS_BUCKET")
        credentials = Credentials(
            accessKeyID: try reader.required("AWS_ACCESS_KEY_ID"),
            secretAccessKey: try reader.required("AWS_SECRET_ACCESS_KEY"),
            sessionToken: reader.optional("AWS_SESSION_TOKEN")
        )
        endpoint = try reader.endpoint("AWS_ENDPOINT_URL_S3")
        publicEndpoint = try reader.endpoint("ASSETD_S3_PUBLIC_ENDPOINT")
        jwtSecret = try reader.required("ASSETD_JWT_SECRET")
        if requireAll || !jwtSecret.isEmpty, jwtSecret.utf8.count < 32 {
            throw ConfigurationError(description: "ASSETD_JWT_SECRET must be at least 32 characters long")
        }
        jwtAcceptedSecrets = try Self.jwtAcceptedSecrets(reader.optional("ASSETD_JWT_ACCEPTED_SECRETS"), signing: jwtSecret)
        databasePath = try reader.required("ASSETD_DATABASE")
        databasePool = try reader.integer("ASSETD_DATABASE_POOL", default: 10, in: 1...500)
        databaseSearches = try reader.integer("ASSETD_DATABASE_SEARCHES", default: 0, in: 0...500)
        databaseStatementTimeout = try reader.integer("ASSETD_DATABASE_STATEMENT_TIMEOUT", default: 10_000, in: 100...600_000)
        thumbnailLease = try reader.integer("ASSETD_THUMBNAIL_LEASE", default: 60, in: 5...86_400)
        switch reader.string("ASSETD_DATABASE_UPLOAD_CACHE", default: "on").lowercased() {
        case "on", "true", "1", "yes": databaseUploadCache = true
        case "off", "false", "0", "no": databaseUploadCache = false
        case let other: throw ConfigurationError(description: "ASSETD_DATABASE_UPLOAD_CACHE must be on or off, not \(other)")
        }
        socketPath = reader.optional("ASSETD_SOCKET")
        let mode = reader.string("ASSETD_SOCKET_MODE", default: "0660")
        guard let parsedMode = UInt32(mode, radix: 8), parsedMode <= 0o777 else {
            throw ConfigurationError(description: "ASSETD_SOCKET_MODE must be an octal file mode such as 0660, not \(mode)")
        }
        socketMode = parsedMode
        socketGroup = nil
        if let group = reader.optional("ASSETD_SOCKET_GROUP") {
            if let gid = UInt32(group) {
                socketGroup = gid
            } else if let entry = getgrnam(group) {
                socketGroup = entry.pointee.gr_gid
            } else {
                throw ConfigurationError(description: "ASSETD_SOCKET_GROUP names no group of this host: \(group)")
            }
        }
        threads = try reader.integer("ASSETD_THREADS", default: 16, in: 1...512)
        let types = reader.optional("ASSETD_ALLOWED_TYPES").map { $0.split(separator: ",").map { String($0).trimmingSpaces() }.filter { !$0.isEmpty } }
        do {
            mediaTypes = try MediaTypes(allowed: types ?? MediaTypes.defaultAllowed)
        } catch {
            throw ConfigurationError(description: "ASSETD_ALLOWED_TYPES names \(error.type), which assetd cannot store (known: \(MediaTypes.extensions.keys.sorted().joined(separator: ", ")))")
        }
        maxUploadBytes = Int64(try reader.integer("ASSETD_MAX_UPLOAD_BYTES", default: Int(Self.s3MaxObjectBytes), in: 1...Int(Self.s3MaxObjectBytes)))
        maxDirectUploadBytes = Int64(try reader.integer("ASSETD_MAX_DIRECT_UPLOAD_BYTES", default: 25 * 1024 * 1024, in: 1...(5 * 1024 * 1024 * 1024)))
        maxJSONBodyBytes = try reader.integer("ASSETD_MAX_JSON_BYTES", default: 1024 * 1024, in: 1024...(16 * 1024 * 1024))
        presignExpires = try reader.integer("ASSETD_PRESIGN_EXPIRES", default: 3600, in: 1...604_800)
        abortIncompleteDays = try reader.integer("ASSETD_ABORT_INCOMPLETE_DAYS", default: 7, in: 1...3650)
        reconcileInterval = try reader.integer("ASSETD_RECONCILE_INTERVAL", default: 300, in: 1...86_400)
        reconcileGrace = try reader.integer("ASSETD_RECONCILE_GRACE", default: 120, in: 1...86_400)
        mediaBackfillBatch = try reader.integer("ASSETD_MEDIA_BACKFILL_BATCH", default: 100, in: 0...10_000)
        pendingUploadTTL = try reader.integer("ASSETD_PENDING_UPLOAD_TTL", default: abortIncompleteDays * 86_400, in: 1...(3650 * 86_400))
        s3Timeout = try reader.integer("ASSETD_S3_TIMEOUT", default: 10, in: 1...600)
        s3Concurrency = try reader.integer("ASSETD_S3_CONCURRENCY", default: max(1, threads - max(2, threads / 4)), in: 1...512)
        serverSideEncryption = try reader.serverSideEncryption()
        objectETagsAreMD5 = serverSideEncryption.etagsAreMD5
        corsOrigins = reader.string("ASSETD_CORS_ORIGINS", default: "*").split(separator: ",").map { String($0).trimmingSpaces() }
        stateDirectory = reader.string("ASSETD_STATE_DIR", default: "/var/lib/assetd")
        tmpDirectory = reader.string("ASSETD_TMP_DIR", default: stateDirectory + "/tmp")
        logLevel = reader.string("ASSETD_LOG_LEVEL", default: "info")
        accessLogBuffer = try reader.integer("ASSETD_ACCESS_LOG_BUFFER", default: 0, in: 0...65_536)
        accessLogFlush = try reader.integer("ASSETD_ACCESS_LOG_FLUSH", default: 1, in: 1...60)
        switch reader.string("ASSETD_KEEP_GPS", default: "off").lowercased() {
        case "on", "true", "1", "yes": keepGPS = true
        case "off", "false", "0", "no": keepGPS = false
        case let other: throw ConfigurationError(description: "ASSETD_KEEP_GPS must be on or off, not \(other)")
        }
        switch reader.string("ASSETD_THUMBNAILS", default: "on").lowercased() {
        case "on", "true", "1", "yes": thumbnailsEnabled = true
        case "off", "false", "0", "no": thumbnailsEnabled = false
        case let other: throw ConfigurationError(description: "ASSETD_THUMBNAILS must be on or off, not \(other)")
        }
        thumbnailSize = try reader.integer("ASSETD_THUMBNAIL_SIZE", default: 512, in: 16...4096)
        thumbnailQuality = try reader.integer("ASSETD_THUMBNAIL_QUALITY", default: 80, in: 1...100)
        thumbnailConcurrency = try reader.integer("ASSETD_THUMBNAIL_CONCURRENCY",
                                                  default: max(1, ProcessInfo.processInfo.activeProcessorCount / 2), in: 1...64)
        let pixels = reader.string("ASSETD_THUMBNAIL_MAX_PIXELS", default: "100M")
        let millions = pixels.uppercased().hasSuffix("M")
        guard let count = Int(millions ? String(pixels.dropLast()) : pixels), count > 0,
              count <= (millions ? 10_000 : 10_000_000_000) else {
            throw ConfigurationError(description: "ASSETD_THUMBNAIL_MAX_PIXELS must be a pixel count such as 100000000 or 100M, not \(pixels)")
        }
        thumbnailMaxPixels = millions ? count * 1_000_000 : count
        thumbnailMaxSourceBytes = Int64(try reader.integer("ASSETD_THUMBNAIL_MAX_SOURCE_BYTES", default: 2 << 30, in: 1...(1 << 40)))
        thumbnailMaxDecodeBytes = try reader.integer("ASSETD_THUMBNAIL_MAX_DECODE_BYTES", default: 512 << 20, in: (1 << 20)...(1 << 40))
        thumbnailTimeout = try reader.integer("ASSETD_THUMBNAIL_TIMEOUT", default: 60, in: 1...3600)
        thumbnailerMaxMemory = try reader.integer("ASSETD_THUMBNAILER_MAX_MEMORY", default: 1536 << 20, in: (256 << 20)...(1 << 40))
        let checksum = reader.string("ASSETD_PART_CHECKSUM", default: "optional")
        guard let mode = PartChecksumMode(rawValue: checksum.lowercased()) else {
            throw ConfigurationError(description: "ASSETD_PART_CHECKSUM must be optional, required or off, not \(checksum)")
        }
        partChecksum = mode
        try readEventSettings(reader)
        thumbnailerSocket = reader.optional("ASSETD_THUMBNAILER_SOCKET")
        thumbnailerPath = reader.optional("ASSETD_THUMBNAILER")
        guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(logLevel) else {
            throw ConfigurationError(description: "ASSETD_LOG_LEVEL must be one of trace, debug, info, notice, warning, error, critical")
        }
        unknownSettings = Self.unknownSettings(file: file, fileKeys: fileKeys, environmentKeys: environment.keys)
        ignoredSettings = Self.ignoredSettings(of: self) { values[$0].map { !$0.isEmpty } ?? false }
    }

    /// The S3 client's settings; `gated` adds the bulkhead and breaker that `serve` uses.
    public func s3(gated: Bool = false) -> S3Client.Configuration {
        var s3 = S3Client.Configuration(bucket: bucket, region: region, credentials: credentials, endpoint: endpoint,
                                        publicEndpoint: publicEndpoint ?? endpoint)
        s3.deadlines.call = .seconds(s3Timeout)
        s3.deadlines.budget = .seconds(2 * s3Timeout)
        s3.serverSideEncryption = serverSideEncryption
        if gated { s3.gate = S3Gate.Configuration(permits: s3Concurrency) }
        return s3
    }

    /// KEY=VALUE lines; blank lines and `#` comments skipped; values may be quoted.
    static func readFile(_ path: String) throws -> [String: String] {
        let text = try readText(path)
        var values: [String: String] = [:]
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = String(raw).trimmingSpaces()
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst(7)) }
            guard let eq = line.firstIndex(of: "="), eq != line.startIndex else {
                throw ConfigurationError(description: "\(path):\(number + 1): expected KEY=VALUE")
            }
            let key = String(line[..<eq]).trimmingSpaces()
            // Not echoed: a line such as `ASSETD_JWT_SECRET abc==` would put a secret in the
            // error (and, ignored, in the unknown settings' warning).
            guard Self.isVariableName(key) else {
                throw ConfigurationError(description: "\(path):\(number + 1): the name before = must be letters, digits and _ (not starting with a digit)")
            }
            var value = String(line[line.index(after: eq)...]).trimmingSpaces()
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            }
            values[key] = value
        }
        return values
    }

    /// A shell variable's name: ASCII letters, digits and `_`, not starting with a digit.
    static func isVariableName(_ text: String) -> Bool {
        guard let first = text.utf8.first, !(0x30...0x39).contains(first) else { return false }
        return text.utf8.allSatisfy { ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7a) || (0x30...0x39).contains($0) || $0 == 0x5f }
    }

    /// The settings file's text, at most 1 MiB of UTF-8; else an error with its cause, the
    /// errno's text (`No such file or directory`, `Permission denied`, `Is a directory`).
    static func readText(_ path: String) throws(ConfigurationError) -> String {
        func failure(_ cause: String) -> ConfigurationError {
            ConfigurationError(description: "cannot read the configuration file \(path): \(cause)")
        }
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw failure(String(cString: strerror(errno))) }
        defer { close(descriptor) }
        let limit = 1 << 20
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { throw failure(String(cString: strerror(errno))) }
            if count == 0 { break }
            bytes += chunk[0..<count]
            guard bytes.count <= limit else { throw failure("it is larger than 1 MiB") }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw failure("it is not UTF-8 text") }
        return text
    }

    /// The event sinks' settings; a bad URL or secret is one line naming the setting, and
    /// never shows a secret's value.
    private mutating func readEventSettings(_ reader: Reader) throws {
        webhookURLs = try (reader.optional("ASSETD_WEBHOOK_URLS") ?? "").split(separator: ",").map { piece in
            let url = String(piece).trimmingSpaces()
            guard EventEndpoint.isValidURL(url) else {
                throw ConfigurationError(description: "ASSETD_WEBHOOK_URLS must be comma-separated http(s) URLs such as https://hooks.example.com/assetd, not \(EventEndpoint.redacted(url))")
            }
            return url
        }
        webhookSecrets = try (reader.optional("ASSETD_WEBHOOK_SECRET") ?? "").split(separator: ",").enumerated().map { index, piece in
            guard let secret = WebhookSecret(String(piece).trimmingSpaces()) else {
                throw ConfigurationError(description: "ASSETD_WEBHOOK_SECRET: secret \(index + 1) must be whsec_ followed by the base64 of 16 to 64 random bytes")
            }
            return secret
        }
        if !webhookURLs.isEmpty, webhookSecrets.isEmpty {
            throw ConfigurationError(description: "ASSETD_WEBHOOK_SECRET is required when ASSETD_WEBHOOK_URLS is set")
        }
        let url = reader.optional("ASSETD_TYPESENSE_URL"), key = reader.optional("ASSETD_TYPESENSE_API_KEY")
        let collection = reader.optional("ASSETD_TYPESENSE_COLLECTION")
        if url != nil || key != nil || collection != nil {
            guard let url, EventEndpoint.isValidURL(url), !url.contains("?") else {
                throw ConfigurationError(description: "ASSETD_TYPESENSE_URL must be an http(s) URL such as http://127.0.0.1:8108 (set with ASSETD_TYPESENSE_API_KEY and ASSETD_TYPESENSE_COLLECTION)")
            }
            guard let key, !key.contains(where: { $0.isWhitespace || $0.asciiValue.map { $0 < 0x20 || $0 == 0x7f } == true }) else {
                throw ConfigurationError(description: "ASSETD_TYPESENSE_API_KEY is required with ASSETD_TYPESENSE_URL, without spaces or control characters")
            }
            guard let collection, collection.utf8.count <= 128,
                  collection.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7a) || $0 == 0x5f || $0 == 0x2d }) else {
                throw ConfigurationError(description: "ASSETD_TYPESENSE_COLLECTION is required with ASSETD_TYPESENSE_URL: letters, digits, _ and - (at most 128)")
            }
            typesense = TypesenseSettings(url: url.hasSuffix("/") ? String(url.dropLast()) : url, apiKey: key, collection: collection)
        }
        eventMaxAge = try reader.integer("ASSETD_EVENT_MAX_AGE", default: 259_200, in: 1...(30 * 86_400))
        eventClaimMargin = try reader.integer("ASSETD_EVENT_CLAIM_MARGIN", default: 30, in: 1...3600)
        eventRetention = try reader.integer("ASSETD_EVENT_RETENTION", default: 604_800, in: 3600...(365 * 86_400))
        eventDeadRetention = try reader.integer("ASSETD_EVENT_DEAD_RETENTION", default: max(2_592_000, eventRetention),
                                                in: 3600...(3650 * 86_400))
        guard eventDeadRetention >= eventRetention else {
            throw ConfigurationError(description: "ASSETD_EVENT_DEAD_RETENTION (\(eventDeadRetention)) must be at least ASSETD_EVENT_RETENTION (\(eventRetention)): a dead delivery is kept at least as long as a delivered one")
        }
    }

    /// Reads the values by name; every ASSETD_* name it is asked for must be one of
    /// `knownSettings` (a debug build stops on one that is not).
    private struct Reader {
        let values: [String: String]
        let requireAll: Bool

        func optional(_ name: String) -> String? {
            assert(!name.hasPrefix("ASSETD_") || Configuration.knownSettings.contains(name), "\(name) is missing from Configuration.knownSettings")
            guard let value = values[name], !value.isEmpty else { return nil }
            return value
        }

        func string(_ name: String, default fallback: String) -> String { optional(name) ?? fallback }

        func required(_ name: String) throws -> String {
            if let value = optional(name) { return value }
            if !requireAll { return "" }
            throw ConfigurationError(description: "\(name) is required but not set")
        }

        func integer(_ name: String, default fallback: Int, in range: ClosedRange<Int>) throws -> Int {
            guard let text = optional(name) else { return fallback }
            guard let value = Int(text), range.contains(value) else {
                throw ConfigurationError(description: "\(name) must be an integer from \(range.lowerBound) to \(range.upperBound), not \(text)")
            }
            return value
        }

        /// ASSETD_SSE (AES256 or aws:kms; unset: none), ASSETD_SSE_KMS_KEY_ID and
        /// ASSETD_SSE_BUCKET_KEY (on/off), which only aws:kms takes.
        func serverSideEncryption() throws -> ServerSideEncryption {
            let keyID = optional("ASSETD_SSE_KMS_KEY_ID")
            var bucketKey: Bool?
            if let text = optional("ASSETD_SSE_BUCKET_KEY") {
                switch text.lowercased() {
                case "on", "true", "1", "yes": bucketKey = true
                case "off", "false", "0", "no": bucketKey = false
                default: throw ConfigurationError(description: "ASSETD_SSE_BUCKET_KEY must be on or off, not \(text)")
                }
            }
            switch optional("ASSETD_SSE") {
            case nil:
                if keyID != nil || bucketKey != nil {
                    let name = keyID != nil ? "ASSETD_SSE_KMS_KEY_ID" : "ASSETD_SSE_BUCKET_KEY"
                    throw ConfigurationError(description: "\(name) is set but ASSETD_SSE is not; set ASSETD_SSE=aws:kms to use it")
                }
                return .none
            case "AES256":
                if keyID != nil {
                    throw ConfigurationError(description: "ASSETD_SSE_KMS_KEY_ID applies only to ASSETD_SSE=aws:kms, not AES256; unset one of them")
                }
                if bucketKey != nil {
                    throw ConfigurationError(description: "ASSETD_SSE_BUCKET_KEY applies only to ASSETD_SSE=aws:kms (S3 Bucket Keys are for KMS keys), not AES256")
                }
                return .aes256
            case "aws:kms":
                if let keyID, keyID.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7f }) {
                    throw ConfigurationError(description: "ASSETD_SSE_KMS_KEY_ID must be a KMS key id, ARN or alias without spaces or control characters")
                }
                return .kms(keyID: keyID, bucketKey: bucketKey)
            case let other?:
                throw ConfigurationError(description: "ASSETD_SSE must be AES256 or aws:kms (or unset for none), not \(other)")
            }
        }

        func endpoint(_ name: String) throws -> S3Endpoint? {
            guard let text = optional(name) else { return nil }
            guard let endpoint = S3Endpoint(url: text) else {
                throw ConfigurationError(description: "\(name) must be an http(s) URL such as http://127.0.0.1:9000, not \(text)")
            }
            return endpoint
        }
    }
}
