import AssetStore
import Foundation
import Hashing
public import Logging
import S3Client
import Thumbnails

/// `assetd check-config`: every setting, then what assetd will touch at start-up: the
/// database, the socket, the spool directory, the bucket (HeadBucket, then a small put,
/// get and delete under `_assetd_check/`) and the event sinks (each webhook receiver
/// connected to, Typesense's collection read). One OK or FAIL line per item, with its reason,
/// and OK lines with a warning naming the settings it does not know, and those set that this
/// configuration does not use (assetd starts, ignoring them);
/// it changes nothing but that one object, which it deletes.
public struct ConfigCheck {
    public struct Item: Sendable {
        public var name: String
        public var ok: Bool
        public var reason: String
        /// An OK line that starts its reason with "warning:": something to look at that does not keep assetd from starting (so
        /// no FAIL, and no non-zero exit).
        public var warning = false

        public var line: String { "\(ok ? "OK  " : "FAIL") \(name): \(warning ? "warning: " : "")\(reason)" }
    }

    let environment: [String: String]
    let file: String?
    let logger: Logger

    public init(environment: [String: String], file: String?, logger: Logger) {
        self.environment = environment
        self.file = file
        self.logger = logger
    }

    /// ASSETD_PART_CHECKSUM, said in words: what a client without MD5s meets.
    func partChecksums(_ mode: PartChecksumMode) -> Item {
        let meaning = switch mode {
        case .optional: "part URLs sign content-md5 when the client gives contentMD5; clients without it keep working"
        case .required: "every part URL must carry contentMD5; clients that send none are refused (400)"
        case .off: "contentMD5 is ignored; part URLs sign no checksum"
        }
        return Item(name: "part checksums", ok: true, reason: "ASSETD_PART_CHECKSUM=\(mode.rawValue): \(meaning)")
    }

    /// Runs every check, reporting each item as it is done; true when none failed.
    public func run(report: (Item) -> Void = { Swift.print($0.line) }) -> Bool {
        var failed = false
        func note(_ item: Item) {
            failed = failed || !item.ok
            report(item)
        }
        let configuration: Configuration
        do {
            configuration = try Configuration(environment: environment, file: file)
            note(Item(name: "settings", ok: true, reason: "read from \(file.map { "\($0) and " } ?? "")the environment"))
            if let unknown = configuration.unknownSettingsList {
                note(Item(name: "settings", ok: true, reason: "unknown, ignored: \(unknown); check their spelling in docs/CONFIGURATION.md",
                          warning: true))
            }
            if let ignored = configuration.ignoredSettingsList {
                note(Item(name: "settings", ok: true, reason: "\(ignored) (docs/CONFIGURATION.md)", warning: true))
            }
        } catch {
            note(Item(name: "settings", ok: false, reason: "\(error)"))
            return false
        }
        note(partChecksums(configuration.partChecksum))
        note(database(configuration.databasePath))
        if DatabaseLocation.isPostgres(configuration.databasePath), let item = connections(configuration) { note(item) }
        note(socket(configuration.socketPath))
        note(spool(configuration.tmpDirectory))
        if let item = decoder(configuration) { note(item) }
        for item in bucket(configuration) { note(item) }
        for item in sinks(configuration) { note(item) }
        return !failed
    }

    func database(_ path: String) -> Item {
        let name = "database"
        if DatabaseLocation.isPostgres(path) { return postgres(path) }
        if FileManager.default.fileExists(atPath: path) {
            guard access(path, R_OK | W_OK) == 0 else {
                return Item(name: name, ok: false, reason: "\(path) is not readable and writable by uid \(geteuid())")
            }
            guard let handle = FileHandle(forReadingAtPath: path), let head = try? handle.read(upToCount: 16),
                  head.isEmpty || head == Data("SQLite format 3\0".utf8)
            else {
                return Item(name: name, ok: false, reason: "\(path) is not an SQLite database")
            }
            return Item(name: name, ok: true, reason: "\(path) is an SQLite database this user may write")
        }
        let directory = (path as NSString).deletingLastPathComponent
        guard access(directory.isEmpty ? "." : directory, W_OK | X_OK) == 0 else {
            return Item(name: name, ok: false, reason: "\(path) does not exist and its directory \(Self.missingOrLocked(directory))")
        }
        return Item(name: name, ok: true, reason: "\(path) will be created at the first start")
    }

    /// PostgreSQL: it answers (with the password from the URL or PGPASSFILE), and its
    /// schema is the one this assetd expects (or none yet: the first start migrates it).
    func postgres(_ url: String) -> Item {
        let name = "database", shown = DatabaseLocation.redacted(url)
        do {
            let schema = try PostgresRecordStore.inspectSchema(url: url)
            guard let current = schema.current else {
                return Item(name: name, ok: true, reason: "\(shown) answers; its schema will be created at the first start (version \(schema.expected))")
            }
            guard current <= schema.expected else {
                return Item(name: name, ok: false, reason: "\(shown) has schema version \(current), newer than this assetd's \(schema.expected): upgrade assetd")
            }
            let note = current == schema.expected ? "" : "; the next start migrates it to \(schema.expected)"
            return Item(name: name, ok: true, reason: "\(shown) answers, schema version \(current)\(note)")
        } catch {
            return Item(name: name, ok: false, reason: "\(shown): \(error)")
        }
    }

    /// A warning when this process's connections exceed a quarter of the server's
    /// `max_connections` (as at start), else what they are; nil when the server did not answer
    /// (the database line says why).
    func connections(_ configuration: Configuration) -> Item? {
        guard let maximum = (try? PostgresRecordStore.inspectSchema(url: configuration.databasePath))?.maxConnections else { return nil }
        let budget = PostgresRecordStore.connectionBudget(Bootstrap.postgresSettings(configuration, command: false))
        if let warning = budget.warning(maxConnections: maximum) {
            return Item(name: "database connections", ok: true, reason: warning, warning: true)
        }
        return Item(name: "database connections", ok: true,
                    reason: "this process may open \(budget) of the server's max_connections \(maximum); every host counts")
    }

    /// "D does not exist; create it: install -d ..." or "D is not writable by uid N; ...":
    /// what the administrator runs. The Debian package's postinst makes /var/lib/assetd
    /// (assetd:assetd, 0700); without the package, or for another path, nothing does until
    /// systemd's StateDirectory= at the service's first start.
    static func missingOrLocked(_ directory: String) -> String {
        let shown = directory.isEmpty ? "." : directory
        let uid = geteuid()
        // As root, name the service's user: check-config is meant to run as it.
        let user = uid == 0 ? "assetd" : (getpwuid(uid).map { String(cString: $0.pointee.pw_name) } ?? "\(uid)")
        let group = uid == 0 ? "assetd" : (getgrgid(getegid()).map { String(cString: $0.pointee.gr_name) } ?? "\(getegid())")
        let command = "install -d -o \(user) -g \(group) -m 0700 \(shown)"
        var info = stat()
        if stat(shown, &info) != 0 {
            return "\(shown) does not exist; create it as root: \(command) (the Debian package's postinst does, for /var/lib/assetd)"
        }
        return "\(shown) is not writable by uid \(uid) (\(user)); as root: chown \(user):\(group) \(shown) && chmod 0700 \(shown)"
    }

    func socket(_ path: String?) -> Item {
        let name = "socket"
        guard let path else {
            return Item(name: name, ok: true, reason: "ASSETD_SOCKET is unset: assetd takes systemd's socket (LISTEN_FDS) or a listening socket on fd 0")
        }
        if path.contains(":") { return Item(name: name, ok: true, reason: "TCP \(path)") }
        var info = stat()
        let exists = lstat(path, &info) == 0
        if exists, (info.st_mode & S_IFMT) != S_IFSOCK {
            return Item(name: name, ok: false, reason: "\(path) exists and is not a socket")
        }
        let directory = (path as NSString).deletingLastPathComponent
        guard access(directory, W_OK | X_OK) == 0 else {
            return Item(name: name, ok: false, reason: "the socket's directory \(directory) is missing or not writable by uid \(geteuid())")
        }
        return Item(name: name, ok: true, reason: exists ? "\(path) is a socket, replaced at start" : "\(path) can be created")
    }

    /// The decoder that thumbnails and media metadata need (nil when ASSETD_THUMBNAILS is
    /// off), the one `serve` and the commands would use (`Bootstrap.decoderEndpoint`): a
    /// socket (ASSETD_THUMBNAILER_SOCKET, or the packaged one found), that it accepts a
    /// connection (under systemd, assetd-thumbnailer.socket; a connection starts its zygote,
    /// and decodes nothing); else that the decoder assetd would run as its child is an executable.
    func decoder(_ configuration: Configuration, packagedSocket: String = Bootstrap.packagedDecoderSocket) -> Item? {
        guard configuration.thumbnailsEnabled else { return nil }
        let name = "decoder"
        let endpoint: IsolatedThumbnailer.Endpoint
        do {
            endpoint = try Bootstrap.decoderEndpoint(configuration, packagedSocket: packagedSocket)
        } catch {
            return Item(name: name, ok: false, reason: "\(error); assetd would not start")
        }
        switch endpoint {
        case .socket(let socket):
            let origin = configuration.thumbnailerSocket == nil ? "the packaged decoder's socket" : "ASSETD_THUMBNAILER_SOCKET"
            if let failure = IsolatedThumbnailer.probe(socket: socket) {
                return Item(name: name, ok: false, reason: "\(origin) \(socket): \(failure) (systemctl enable --now assetd-thumbnailer.socket; the socket must be writable by uid \(geteuid())); thumbnails and media metadata would wait for it")
            }
            return Item(name: name, ok: true, reason: "\(socket) accepts connections (\(origin))")
        case .spawn(let executable):
            return Item(name: name, ok: true, reason: "assetd runs \(executable) as its own child, as uid \(geteuid()) (no ASSETD_THUMBNAILER_SOCKET, no packaged socket at \(packagedSocket) that uid \(geteuid()) may use)")
        }
    }

    /// How long check-config gives one sink's probe: name resolution, the connection (TLS
    /// too) and, for Typesense, the answer.
    static let sinkProbeTimeout: Duration = .seconds(5)

    /// The event sinks `serve` would deliver to (`EventDispatcher.sinks`), probed as it would
    /// reach them, through the same libcurl client. A webhook receiver: its host resolved and
    /// connected to (TLS too, certificate checked), then the connection dropped; no request,
    /// so no event or anything that looks like one. Typesense: `GET /collections/{c}` with the
    /// configured key, as every delivery sends it. Lines name URLs without their query, and
    /// never a key or secret.
    func sinks(_ configuration: Configuration, http: some HTTPSending & ConnectionProbing = HTTPClient()) -> [Item] {
        var items: [Item] = []
        for url in configuration.webhookURLs {
            let shown = EventEndpoint.redacted(url)
            do {
                try http.connect(url: url, timeout: Self.sinkProbeTimeout)
                items.append(Item(name: "webhook", ok: true, reason: "\(shown) accepts connections (nothing was sent)"))
            } catch {
                items.append(Item(name: "webhook", ok: false, reason: "\(shown): \(error.description); its events would wait in the outbox (assetd_event_backlog)"))
            }
        }
        if let settings = configuration.typesense { items.append(typesense(TypesenseSink(settings: settings, http: http, timeout: Self.sinkProbeTimeout))) }
        return items
    }

    /// Typesense's collection, read with the key every delivery sends.
    func typesense(_ sink: TypesenseSink) -> Item {
        let name = "typesense", collection = sink.settings.collection
        let shown = "\(EventEndpoint.redacted(sink.settings.url)) collection \(collection)"
        let answer: HTTPClient.Response
        do {
            answer = try sink.http.send(method: "GET", url: sink.collectionURL, headers: sink.headers, body: [], timeout: sink.timeout,
                                        maxResponseBytes: 64 * 1024)
        } catch {
            return Item(name: name, ok: false, reason: "\(shown): \(error.description)")
        }
        switch answer.status {
        case 200:
            return Item(name: name, ok: true, reason: "\(shown) exists and ASSETD_TYPESENSE_API_KEY may read it")
        case 401, 403:
            return Item(name: name, ok: false, reason: "\(shown): Typesense refused ASSETD_TYPESENSE_API_KEY (HTTP \(answer.status)): a wrong key, or one without access to this collection")
        case 404:
            return Item(name: name, ok: false, reason: "\(shown) does not exist (HTTP 404): `assetd setup-search` creates it")
        default:
            return Item(name: name, ok: false, reason: "\(shown): Typesense answered HTTP \(answer.status) to GET /collections/\(collection)")
        }
    }

    func spool(_ path: String) -> Item {
        let name = "spool directory"
        var info = stat()
        guard stat(path, &info) == 0 else {
            let parent = (path as NSString).deletingLastPathComponent
            guard access(parent, W_OK | X_OK) == 0 else {
                return Item(name: name, ok: false, reason: "\(path) does not exist and \(Self.missingOrLocked(parent))")
            }
            return Item(name: name, ok: true, reason: "\(path) will be created, mode 0700")
        }
        guard (info.st_mode & S_IFMT) == S_IFDIR else { return Item(name: name, ok: false, reason: "\(path) is not a directory") }
        guard info.st_mode & 0o077 == 0 else {
            return Item(name: name, ok: false, reason: "\(path) is mode \(String(info.st_mode & 0o777, radix: 8)); it must be private (0700): uploads are spooled there")
        }
        guard access(path, W_OK | X_OK) == 0 else {
            return Item(name: name, ok: false, reason: "\(path) is not writable by uid \(geteuid())")
        }
        return Item(name: name, ok: true, reason: "\(path) is private (0700) and writable")
    }

    /// Whether the bucket's default encryption (GetBucketEncryption) and ASSETD_SSE agree.
    /// They agree when both name the same algorithm and KMS key, and when ASSETD_SSE is
    /// unset over a bucket that has no default or AES256 (every AWS bucket's default since
    /// 2023): assetd's ETags are then MD5s. A bucket that encrypts with aws:kms by default
    /// while assetd believes its ETags are MD5s fails, as does an ASSETD_SSE the bucket's
    /// default does not match (objects that others write would be encrypted otherwise).
    func encryption(configured: ServerSideEncryption, bucketDefault: () throws -> ServerSideEncryption) -> Item {
        let name = "encryption"
        let setting = configured == .none ? "ASSETD_SSE is unset" : "ASSETD_SSE is \(configured)"
        let found: ServerSideEncryption
        do {
            found = try bucketDefault()
        } catch {
            if configured == .none {
                return Item(name: name, ok: true, reason: "\(setting); the bucket's default encryption could not be read (\(error))")
            }
            return Item(name: name, ok: false, reason: "\(setting), but the bucket's default encryption could not be read to compare (GetBucketEncryption: \(error); the role needs s3:GetEncryptionConfiguration)")
        }
        let bucketSays = found == .none ? "the bucket has no default encryption" : "the bucket's default encryption is \(found)"
        switch (configured, found) {
        case (.none, .none), (.none, .aes256):
            return Item(name: name, ok: true, reason: "\(setting) and \(bucketSays)")
        case (.none, let found) where !found.etagsAreMD5:
            return Item(name: name, ok: false, reason: "\(bucketSays) but \(setting): objects get KMS ETags, which are not MD5s (assetd notices and compares none, but logs an error); set ASSETD_SSE=aws:kms and ASSETD_SSE_KMS_KEY_ID to match")
        case (.aes256, .aes256):
            return Item(name: name, ok: true, reason: "\(setting) and so is the bucket's default")
        case (.kms(let key, _), .kms(let bucketKeyID, _)) where Self.sameKMSKey(key, bucketKeyID):
            return Item(name: name, ok: true, reason: "\(setting) and \(bucketSays)")
        default:
            return Item(name: name, ok: false, reason: "\(setting) but \(bucketSays); make them agree (aws s3api put-bucket-encryption, or ASSETD_SSE)")
        }
    }

    /// Whether two KMS key names (an id, an ARN, an alias; nil for the aws/s3 key) name the
    /// same key, as far as can be told without KMS: equal, or an ARN that ends in the other.
    static func sameKMSKey(_ a: String?, _ b: String?) -> Bool {
        guard let a, let b else { return a == nil && b == nil }
        return a == b || a.hasSuffix("/\(b)") || a.hasSuffix(":\(b)") || b.hasSuffix("/\(a)") || b.hasSuffix(":\(a)")
    }

    func bucket(_ configuration: Configuration) -> [Item] {
        let s3 = S3Client(configuration: configuration.s3(), logger: logger)
        let bucket = configuration.bucket
        do {
            guard try s3.bucketExists() else {
                return [Item(name: "bucket", ok: false, reason: "\(bucket) does not exist (`assetd setup-bucket --create` creates it)")]
            }
        } catch {
            return [Item(name: "bucket", ok: false, reason: "HeadBucket on \(bucket) failed: \(error)")]
        }
        var items = [Item(name: "bucket", ok: true, reason: "\(bucket) answers HeadBucket")]
        items.append(encryption(configured: configuration.serverSideEncryption) { try s3.bucketDefaultEncryption() })
        let key = "_assetd_check/\(Encoding.hex((0..<8).map { _ in UInt8.random(in: 0...255) }))"
        let payload = Array("assetd check-config \(Date())\n".utf8)
        var step = "put"
        do {
            _ = try s3.putObject(key: key, bytes: payload, contentType: "text/plain", metadata: [:])
            step = "get"
            let read = try s3.getObject(key: key)
            step = "delete"
            try s3.deleteObject(key: key)
            guard read == payload else {
                items.append(Item(name: "object round trip", ok: false, reason: "\(key) read back different bytes"))
                return items
            }
            items.append(Item(name: "object round trip", ok: true, reason: "put, get and delete of \(key)"))
        } catch {
            items.append(Item(name: "object round trip", ok: false, reason: "\(step) of \(key) failed: \(error)"))
        }
        return items
    }
}
