// swift-tools-version:6.0
import PackageDescription

// One setting for every Swift target: Swift 6 language mode (strict concurrency).
let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "assetd",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "assetd", targets: ["assetd"]),
        // The decoder: thumbnails in a process that holds no secret (docs/OPERATIONS.md).
        .executable(name: "assetd-thumbnailer", targets: ["assetd-thumbnailer"]),
    ],
    // Exact versions: Package.resolved is not in git, so with `from:` a release build could
    // pick up versions that were never tested. A bump is a reviewed edit here. The
    // transitive ones (swift-metrics, swift-atomics, via swift-prometheus) are recorded,
    // with every revision, by scripts/package in the .deb (/usr/share/doc/assetd/).
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        // GET /metrics: Prometheus's text format, counters and histograms behind a lock each.
        .package(url: "https://github.com/swift-server/swift-prometheus", exact: "2.4.1"),
    ],
    targets: [
        // C libraries, each behind a module map and a shim of static inline wrappers.
        .systemLibrary(name: "CFastCGI", pkgConfig: "fcgi", providers: [.apt(["libfcgi-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CMagic", pkgConfig: "libmagic", providers: [.apt(["libmagic-dev"])]),
        .systemLibrary(name: "CVips", pkgConfig: "vips", providers: [.apt(["libvips-dev"])]),
        // PostgreSQL's client library, for the records of several hosts (ASSETD_DATABASE=postgres://...).
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        // glibc extras behind _GNU_SOURCE or macros: O_TMPFILE, gettid, closefrom for posix_spawn,
        // prctl (dumpable, no new privileges), setrlimit, SCM_RIGHTS; and, before main, libcrypto
        // told to register no atexit cleanup (threads still hashing at exit crashed it).
        .target(name: "CSystem", linkerSettings: [.linkedLibrary("crypto")]),

        // A read-write lock around a value, for the caches on the request path.
        .target(name: "Locking", swiftSettings: swiftSettings),
        // A strict JSON parser and writer, small enough to fuzz.
        .target(name: "JSON", swiftSettings: swiftSettings),
        // A streaming multipart/form-data parser.
        .target(name: "FormData", swiftSettings: swiftSettings),
        // Digests, HMAC and encodings over libcrypto.
        .target(name: "Hashing", dependencies: ["COpenSSL"], swiftSettings: swiftSettings),
        // AWS Signature Version 4: canonical request, signing key, headers and presigned URLs.
        .target(name: "SigV4", dependencies: ["Hashing", "Locking"], swiftSettings: swiftSettings),
        // S3 over libcurl, signed with SigV4.
        .target(
            name: "S3Client",
            dependencies: ["CCurl", "SigV4", "Hashing", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // libfcgi accept loops on their own threads; Request, Response, Router, HTTPError.
        .target(
            name: "FastCGIServer",
            dependencies: ["CFastCGI", "JSON", "Locking", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // The storage protocol (RecordStore) and its backends, each with its migrations:
        // SQLite (GRDB) for one host, PostgreSQL (libpq) for several.
        .target(
            name: "AssetStore",
            dependencies: ["Locking", "JSON", "MediaInfo", "CLibPQ", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        // Content detection with libmagic.
        .target(name: "Media", dependencies: ["CMagic"], swiftSettings: swiftSettings),
        // MediaMetadata: what the decoder learns of a file, as its wire record, the store's
        // records and the asset JSON carry it (one type for Thumbnails and AssetStore).
        .target(name: "MediaInfo", dependencies: ["JSON"], swiftSettings: swiftSettings),
        // JPEG thumbnails with libvips (ffmpeg for a video's frame), and the bounded task queue.
        .target(
            name: "Thumbnails",
            dependencies: ["CVips", "CSystem", "MediaInfo", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // Configuration, JWT, the service (workflows with domain errors), thin routes, the
        // reconciler and the thumbnail worker; C only through CSystem's O_TMPFILE for the spool.
        .target(
            name: "AssetdApp",
            dependencies: [
                "FastCGIServer", "FormData", "JSON", "S3Client", "SigV4", "Hashing", "AssetStore", "Media", "MediaInfo", "Locking", "Thumbnails", "CSystem",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "assetd",
            dependencies: [
                "AssetdApp",
                // Serve blocks the stop signals and sets the socket's group before start-up.
                "FastCGIServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The decoder process: libvips and ffmpeg on one source descriptor, nothing else.
        .executableTarget(
            name: "assetd-thumbnailer",
            dependencies: ["Thumbnails", "CSystem", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),

        // The unit tests' SQLite files, removed when the test process exits.
        .target(name: "TestFiles", path: "Tests/TestFiles", swiftSettings: swiftSettings),
        .testTarget(name: "FormDataTests", dependencies: ["FormData"], swiftSettings: swiftSettings),
        .testTarget(name: "JSONTests", dependencies: ["JSON"], swiftSettings: swiftSettings),
        .testTarget(name: "LockingTests", dependencies: ["Locking"], swiftSettings: swiftSettings),
        .testTarget(name: "HashingTests", dependencies: ["Hashing"], swiftSettings: swiftSettings),
        // AWS's SigV4 test suite, a copy, so that the tests need nothing beside the repository.
        .testTarget(
            name: "SigV4Tests", dependencies: ["SigV4"], resources: [.copy("Resources/sigv4")],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "S3ClientTests", dependencies: ["S3Client", "Hashing"], swiftSettings: swiftSettings),
        .testTarget(name: "FastCGIServerTests", dependencies: ["FastCGIServer", "CFastCGI"], swiftSettings: swiftSettings),
        // GRDB too: the tests write what the store would refuse to (a corrupt record) straight into the file.
        .testTarget(
            name: "AssetStoreTests", dependencies: ["AssetStore", "JSON", "MediaInfo", "TestFiles", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "MediaTests", dependencies: ["Media"], swiftSettings: swiftSettings),
        // CSystem: the decoder child's confinement, tried in a forked process.
        .testTarget(name: "ThumbnailsTests", dependencies: ["Thumbnails", "CSystem", "MediaInfo", "TestFiles"], swiftSettings: swiftSettings),
        .testTarget(name: "AssetdAppTests", dependencies: ["AssetdApp", "MediaInfo", "TestFiles",
                                                    // MetricsTests renders with the registry to compare.
                                                    .product(name: "Prometheus", package: "swift-prometheus")],
                    swiftSettings: swiftSettings),
    ]
)
