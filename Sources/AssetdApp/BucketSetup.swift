import Foundation
import JSON
public import Logging
import S3Client

/// `assetd setup-bucket`: makes the bucket ready for browsers' uploads. assetd's CORS rule
/// (ID `assetd`) and lifecycle rule (ID `assetd-abort-incomplete-multipart-uploads`) are
/// added or updated in place; every other rule of the bucket is put back as it was read.
public struct BucketSetup {
    public var create = false
    public var dryRun = false
    let configuration: Configuration
    let logger: Logger
    /// Where the report goes: one line per thing looked at or changed (standard output).
    let print: (String) -> Void

    public init(configuration: Configuration, create: Bool, dryRun: Bool, logger: Logger,
                print: @escaping (String) -> Void = { Swift.print($0) }) {
        self.configuration = configuration
        self.create = create
        self.dryRun = dryRun
        self.logger = logger
        self.print = print
    }

    public func run() throws {
        let s3 = S3Client(configuration: configuration.s3(), logger: logger)
        let bucket = configuration.bucket
        var exists = try s3.bucketExists()
        if !exists {
            if dryRun {
                // A dry run reports what a real run would do, and succeeds either way.
                print(create ? "bucket \(bucket): does not exist; would create it"
                             : "bucket \(bucket): does not exist; would create it with --create (without --create, setup-bucket stops here with an error)")
            } else {
                guard create else {
                    throw ConfigurationError(description: "the bucket \(bucket) does not exist; `assetd setup-bucket --create` creates it")
                }
                try s3.createBucket()
                exists = true
                print("bucket \(bucket): created")
            }
        } else {
            print("bucket \(bucket): exists")
        }

        let cors = BucketRule.merge(S3Client.CORSRule(allowedOrigins: configuration.corsOrigins).element,
                                    into: exists ? try s3.bucketCORSRules() : [])
        let lifecycle = BucketRule.merge(S3Client.abortIncompleteUploadsRule(days: configuration.abortIncompleteDays),
                                         into: exists ? try s3.bucketLifecycleRules() : [])
        if dryRun {
            let plan: JSONValue = .object([
                .init("bucket", .string(bucket)),
                .init("CORSConfiguration", .object([.init("CORSRules", .array(cors.rules.map(Self.json)))])),
                .init("LifecycleConfiguration", .object([.init("Rules", .array(lifecycle.rules.map(Self.json)))])),
            ])
            print(String(decoding: plan.serialized(), as: UTF8.self))
            print("dry run: CORS rule assetd would be \(cors.change.rawValue), lifecycle rule \(S3Client.abortIncompleteUploadsRuleID) \(lifecycle.change.rawValue); nothing was changed")
            return
        }
        if cors.change != .unchanged { try s3.putBucketCORS(rules: cors.rules) }
        print("CORS rule assetd: \(cors.change.rawValue) (origins \(configuration.corsOrigins.joined(separator: ","))); \(Self.others(cors.rules.count - 1)) kept")
        if lifecycle.change != .unchanged { try s3.putBucketLifecycle(rules: lifecycle.rules) }
        let days = try s3.abortIncompleteUploadsDays()
        guard days == configuration.abortIncompleteDays else {
            throw ConfigurationError(description: "the lifecycle rule reads back as \(days.map { "\($0) days" } ?? "missing"), not \(configuration.abortIncompleteDays) days")
        }
        print("lifecycle rule \(S3Client.abortIncompleteUploadsRuleID): \(lifecycle.change.rawValue) (abort incomplete uploads after \(configuration.abortIncompleteDays) days); \(Self.others(lifecycle.rules.count - 1)) kept")
    }

    static func others(_ count: Int) -> String { count == 1 ? "1 other rule" : "\(count) other rules" }

    /// Names that S3 repeats inside a rule: always arrays in the JSON, as in AWS's CLI.
    static let listNames: Set<String> = ["AllowedOrigin", "AllowedMethod", "AllowedHeader", "ExposeHeader", "Transition", "NoncurrentVersionTransition", "Tag"]

    /// A rule as JSON in the shape of AWS's CLI (`AllowedOrigins: [...]`), for --dry-run.
    static func json(_ rule: BucketRule) -> JSONValue {
        guard !rule.children.isEmpty else { return .string(rule.text) }
        var members: [JSONValue.Member] = []
        for child in rule.children {
            let repeated = listNames.contains(child.name)
            let key = repeated ? child.name + "s" : child.name
            if let index = members.firstIndex(where: { $0.key == key }) {
                if case .array(let items) = members[index].value {
                    members[index].value = .array(items + [json(child)])
                } else {
                    members[index].value = .array([members[index].value, json(child)])
                }
            } else {
                members.append(.init(key, repeated ? .array([json(child)]) : json(child)))
            }
        }
        return .object(members)
    }
}
