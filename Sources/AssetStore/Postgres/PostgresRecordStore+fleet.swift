import Foundation

// What several hosts share besides the records (`FleetCoordination`): an asset held for a
// switch or a delete, and the reconciler's turn.
extension PostgresRecordStore {
    /// A compare-and-set on the asset's `motion_*` columns, with an expiry on the
    /// database's clock so that a host that died holding an asset lets go of it. This
    /// process's own hold is taken again: the caller's in-process lock already keeps a
    /// second request of this process out, and a hold of its own is one whose UPDATE
    /// committed while the answer was lost (the pool then replays it), or whose release
    /// failed; refusing it would lock the asset until the hold expired.
    ///
    /// A hold taken is renewed every third of `seconds` until it is released (a heartbeat,
    /// `startHoldRenewal`): an operation longer than the hold (a big version copy) keeps
    /// it, and only a host that stopped renewing (dead, stalled, cut off) loses it.
    public func holdAsset(_ assetID: Int64, seconds: Int) throws -> Bool {
        // 1: taken; 0: no such asset; -1: another host holds it.
        let held: Int = try run {
            try pool.with { connection -> Int in
                let taken = try connection.query("""
                    UPDATE asset SET motion_owner = $2, motion_until = \(Self.databaseNow) + $3
                    WHERE id = $1 AND (motion_owner IS NULL OR motion_owner = $2 OR motion_until < \(Self.databaseNow))
                    """, [assetID, settings.owner, Double(seconds)]).affectedRows == 1
                if taken { return 1 }
                return try connection.query("SELECT 1 FROM asset WHERE id = $1", [assetID]).count == 0 ? 0 : -1
            }
        }
        if held == 1 {
            holds.withLock { $0[assetID] = AssetHold(seconds: seconds, serial: UInt64.random(in: 0...UInt64.max)) }
            startHoldRenewal(every: seconds)
        }
        return held >= 0
    }

    public func releaseAsset(_ assetID: Int64) throws {
        // Out of the heartbeat first: a renewal after the release changes nothing either
        // (it names this owner, which the release cleared).
        holds.withLock { _ = $0.removeValue(forKey: assetID) }
        try run {
            try pool.with { connection in
                try connection.query("UPDATE asset SET motion_owner = NULL, motion_until = NULL WHERE id = $1 AND motion_owner = $2",
                                     [assetID, settings.owner])
            }
        }
    }

    /// The holds' heartbeat: one thread per process, started by the first hold, waking
    /// every third of the shortest hold it has been asked for.
    private func startHoldRenewal(every seconds: Int) {
        holdRenewer.withLock { state in
            state.shortest = min(state.shortest ?? seconds, seconds)
            guard !state.started, settings.renewsLeases else { return }
            state.started = true
            let thread = Thread { [weak self] in
                while let self {
                    let third = Double(max(1, self.holdRenewer.withLock { $0.shortest } ?? 60)) / 3
                    Thread.sleep(forTimeInterval: third)
                    self.renewHolds()
                }
            }
            thread.name = "asset-holds"
            thread.start()
        }
    }

    /// Extends every hold this process has, fenced on its owner: a hold that was lost (it
    /// expired while the database was away, and another host took it) is not taken back,
    /// and is dropped from the heartbeat.
    func renewHolds() {
        for (assetID, hold) in holds.withLock({ $0 }) {
            let kept = try? run {
                try pool.with { connection in
                    try connection.query("""
                        UPDATE asset SET motion_until = \(Self.databaseNow) + $3 WHERE id = $1 AND motion_owner = $2
                        """, [assetID, settings.owner, Double(hold.seconds)]).affectedRows == 1
                }
            }
            // A failed renewal (the database away) keeps the hold: the next one may succeed.
            // A lost one is dropped, unless the asset was held again since (another serial).
            if kept == false { holds.withLock { if $0[assetID] == hold { $0[assetID] = nil } } }
        }
    }

    /// The advisory lock key of the reconciler's pass ("assetd-r").
    static let reconcilerLock: Int64 = 0x6173_7365_7464_2d72

    /// Under a session-level `pg_try_advisory_lock`, taken on a connection of its own
    /// (outside the pool) that holds no transaction: it sits idle while S3 answers, so it
    /// keeps no snapshot from vacuum, no pool slot, and no `idle_in_transaction_session_timeout`
    /// applies. The lock is unlocked at the end, and the connection closed; a host that dies
    /// mid-pass loses it with its connection (TCP keepalives: about 25 s), and another then
    /// waits for the interval that `reconciler_pass` records, as after any pass, so that the
    /// fleet makes one pass per interval rather than one per host. A second host finds the
    /// lock taken and skips.
    public func asReconcilerPass<T>(minimumInterval: Int, _ body: () throws -> T) throws -> T? {
        try run {
            let connection = try pool.connect()
            guard try connection.query("SELECT pg_try_advisory_lock($1)", [Self.reconcilerLock]).first?.bool(0) == true else {
                return nil
            }
            // Closing the connection (its deinit, at the end of this call) would let go of
            // the lock too; unlocking says so at once, even while libpq lingers.
            defer { _ = try? connection.query("SELECT pg_advisory_unlock($1)", [Self.reconcilerLock]) }
            let due = try connection.query("""
                SELECT NOT EXISTS (SELECT 1 FROM reconciler_pass WHERE started_at > \(Self.databaseNow) - $1)
                """, [Double(minimumInterval)]).first?.bool(0) ?? false
            guard due else { return nil }
            try connection.query("""
                INSERT INTO reconciler_pass (id, host, started_at) VALUES (1, $1, \(Self.databaseNow))
                ON CONFLICT (id) DO UPDATE SET host = excluded.host, started_at = excluded.started_at
                """, [settings.owner])
            return try body()
        }
    }
}

/// An asset this process holds (`holdAsset`): the seconds each renewal extends it by, and
/// a serial that tells this hold from a later one of the same asset.
struct AssetHold: Equatable {
    var seconds: Int
    var serial: UInt64
}
