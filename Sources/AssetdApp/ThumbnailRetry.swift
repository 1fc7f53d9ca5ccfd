public import AssetStore
import Foundation
public import Logging

/// `assetd thumbnails --retry-failed`: ready assets whose thumbnail failed go back to
/// pending with their attempts reset (after a decoder fix, an S3 outage that outlasted
/// the retries, a limit raised), oldest first, a compare-and-set each (a newer version's
/// task is left alone). Who makes them: on PostgreSQL the fleet's pollers, at once; on
/// SQLite the next start of assetd (the command takes the database's lock, so assetd is
/// stopped while it runs).
public enum ThumbnailRetry {
    public struct Summary: Sendable, Equatable, CustomStringConvertible {
        /// Failed thumbnails found (within the limit and the workspace).
        public var failed = 0
        /// Of those, requeued (0 in a dry run; fewer when an asset moved on meanwhile).
        public var requeued = 0

        public var description: String { "\(requeued) of \(failed) failed thumbnail\(failed == 1 ? "" : "s") requeued" }
    }

    /// Assets read and requeued a batch at a time; a progress line after each.
    static let batchSize = 500

    /// Requeues up to `limit` failed thumbnails (`dryRun`: lists them, one line each, and
    /// changes nothing), in one workspace or all.
    public static func run(records: any ThumbnailRecords, limit: Int, workspaceID: Int64?, dryRun: Bool,
                           output: (String) -> Void) throws -> Summary {
        var summary = Summary()
        var after: Int64 = 0
        while summary.failed < limit {
            let page = try records.failedThumbnails(workspaceID: workspaceID, afterID: after, limit: min(batchSize, limit - summary.failed))
            guard let last = page.last else { break }
            after = last.assetID
            summary.failed += page.count
            for failed in page {
                if dryRun {
                    output("asset \(failed.assetID) (workspace \(failed.workspaceID)): \(printable(failed.reason ?? "no reason recorded"))")
                } else if try records.requeueFailedThumbnail(assetID: failed.assetID, now: Date()) {
                    summary.requeued += 1
                }
            }
            if !dryRun { output("requeued \(summary.requeued) of \(summary.failed) failed thumbnails so far") }
        }
        return summary
    }

    /// The command: the store of `configuration`, opened as a command's (SQLite: its lock).
    public static func run(_ configuration: Configuration, logger: Logger, limit: Int, workspaceID: Int64?, dryRun: Bool,
                           output: (String) -> Void) throws -> Summary {
        guard configuration.thumbnailsEnabled else {
            throw ConfigurationError(description: "ASSETD_THUMBNAILS is off: no worker would make the requeued thumbnails")
        }
        let records = try Bootstrap.openRecords(configuration, logger: logger, command: true)
        return try run(records: records, limit: limit, workspaceID: workspaceID, dryRun: dryRun, output: output)
    }

    /// A reason as one terminal line: control characters (a decoder's message may quote
    /// the file) shown as `?`, at most 300 characters.
    static func printable(_ text: String) -> String {
        let clean = String(String.UnicodeScalarView(text.unicodeScalars.map { $0.value < 0x20 || (0x7f...0x9f).contains($0.value) ? "?" : $0 }))
        return clean.count > 300 ? String(clean.prefix(300)) + "…" : clean
    }
}
