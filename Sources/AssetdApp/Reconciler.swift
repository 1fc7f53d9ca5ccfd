import AssetStore
import Foundation
import Logging
import Synchronization

/// Runs the service's repairs (`AssetService.repair`) once at start-up and then every
/// ASSETD_RECONCILE_INTERVAL seconds, on a thread of its own, and logs what each pass fixed.
/// Records younger than `grace` are left to the requests still working on them.
final class Reconciler: Sendable {
    let service: AssetService
    let interval: Duration
    /// How old a record must be before a periodic pass touches it. At start-up no request
    /// of this process can own a record, so the first pass takes every one.
    let grace: Duration
    /// When this process started: a record older than that cannot belong to a live
    /// request of it, which is what the start-up pass relies on.
    let processStarted: Date
    /// Several hosts on one database: a pass runs on one host at a time, once per interval
    /// across the fleet, and never with the start-up shortcut (another host's requests may
    /// own any record, however old this process is).
    let fleet: (any FleetCoordination)?
    /// Where the media backfill goes on at the next pass: assets it had to leave (S3
    /// refusing them, an archived object) must not be read again every pass ahead of the
    /// rest. Back to 0 once a pass reaches the end of the list. Per host: on PostgreSQL
    /// another host's pass starts from its own (at worst, assets read again). In memory
    /// only: after a restart it starts at 0, and an asset the decoder fails on every time
    /// is read again only until its failures, counted in the database, reach
    /// MediaBackfill.maxAttempts.
    let backfillCursor = Mutex<Int64>(0)
    /// serve's metrics: assetd_reconciler_last_pass_timestamp_seconds, set as a pass ends.
    let metrics: Metrics?

    init(service: AssetService, interval: Duration, grace: Duration = .seconds(120), fleet: (any FleetCoordination)? = nil,
         metrics: Metrics? = nil) {
        self.metrics = metrics
        self.service = service
        self.interval = interval
        self.grace = grace
        self.processStarted = service.now()
        self.fleet = fleet
    }

    /// Starts the passes on their own thread: the first at once, then one per interval.
    /// Before each later pass, on every host (one GET): the bucket's default encryption,
    /// which start-up read first (`AssetService.readBucketEncryption`).
    func start() {
        let thread = Thread { [self] in
            var first = true
            while true {
                if !first { service.readBucketEncryption(startUp: false) }
                pass(startUp: first)
                first = false
                Thread.sleep(forTimeInterval: Double(interval.components.seconds))
            }
        }
        thread.name = "reconciler"
        thread.start()
    }

    @discardableResult
    func pass(startUp: Bool = false) -> AssetService.Repairs {
        guard let fleet else { return localPass(startUp: startUp) }
        let seconds = Int(interval.components.seconds)
        do {
            let repairs = try fleet.asReconcilerPass(minimumInterval: max(1, seconds - max(1, seconds / 10))) {
                service.logger.info("reconciler pass on this host", metadata: ["host": "\(fleet.hostName)"])
                return localPass(startUp: false)
            }
            return repairs ?? AssetService.Repairs()
        } catch {
            service.logger.error("reconciler pass skipped: the database failed", metadata: ["host": "\(fleet.hostName)", "error": "\(error)"])
            return AssetService.Repairs()
        }
    }

    private func localPass(startUp: Bool) -> AssetService.Repairs {
        let now = service.now()
        // At start-up: whatever this process's requests cannot own yet, however young; later,
        // only what no request has touched for the grace period.
        let settledBefore = startUp ? processStarted : now.addingTimeInterval(-Double(grace.components.seconds))
        let expireBefore = now.addingTimeInterval(-Double(service.configuration.pendingUploadTTL))
        // A deleted asset is swept once the slowest direct upload that may have raced its
        // delete has landed or given up: twice (a call and its retry) its transfer deadline.
        let configuration = service.configuration
        let longestPut = 2 * (configuration.s3Timeout + Int(configuration.maxDirectUploadBytes >> 20))
        let sweepBefore = startUp ? processStarted : now.addingTimeInterval(-Double(max(longestPut, Int(grace.components.seconds))))
        let repairs = service.repair(settledBefore: settledBefore, expireBefore: expireBefore, sweepBefore: sweepBefore)
        // Media of assets from before "v8: media metadata", a bounded batch a pass (on
        // PostgreSQL under the fleet-wide lock this pass holds, so one host at a time).
        if configuration.mediaBackfillBatch > 0, let worker = service.thumbnails {
            do {
                // At most half an interval (10 s at least), whatever the batch's files cost.
                let budget = Duration.seconds(max(10, Int(interval.components.seconds) / 2))
                let after = backfillCursor.withLock { $0 }
                let done = try MediaBackfill(worker: worker, logger: service.logger).run(limit: configuration.mediaBackfillBatch,
                                                                                         budget: budget, after: after)
                backfillCursor.withLock { $0 = done.reachedEnd ? 0 : done.cursor }
                if done.examined > 0 {
                    service.logger.info("media backfill batch done", metadata: [
                        "host": "\(fleet?.hostName ?? "local")", "recorded": "\(done.recorded)",
                        "unreadable": "\(done.unreadable)", "left": "\(done.left)", "given_up": "\(done.givenUp)", "cursor": "\(done.reachedEnd ? 0 : done.cursor)",
                    ])
                }
            } catch {
                service.logger.error("media backfill: the database failed", metadata: ["error": "\(error)"])
            }
        }
        if repairs != AssetService.Repairs() {
            service.logger.info("reconciler pass done", metadata: [
                "host": "\(fleet?.hostName ?? "local")",
                "direct_ready": "\(repairs.directReady)", "direct_discarded": "\(repairs.directDiscarded)",
                "uploads_expired": "\(repairs.uploadsExpired)", "deletes_finished": "\(repairs.deletesFinished)",
                "versions_finished": "\(repairs.versionsFinished)", "versions_undone": "\(repairs.versionsUndone)",
                "orphans_swept": "\(repairs.orphansSwept)",
                "failures": "\(repairs.failures)",
            ])
        }
        metrics?.reconcilerPassed(at: service.now())
        return repairs
    }
}
