// What several hosts share besides the records (`FleetCoordination`): an asset held for a
// switch or a delete, and the reconciler's turn.
extension PostgresRecordStore {
    /// A compare-and-set on the asset's `motion_*` columns, with an expiry on the
    /// database's clock so that a host that died holding an asset lets go of it. This
    /// process's own hold is taken again: the caller's in-process lock already keeps a
    /// second request of this process out, and a hold of its own is one whose UPDATE
    /// committed while the answer was lost (the pool then replays it), or whose release
    /// failed; refusing it would lock the asset until the hold expired.
    public func holdAsset(_ assetID: Int64, seconds: Int) throws -> Bool {
        try run {
            try pool.with { connection in
                let taken = try connection.query("""
                    UPDATE asset SET motion_owner = $2, motion_until = \(Self.databaseNow) + $3
                    WHERE id = $1 AND (motion_owner IS NULL OR motion_owner = $2 OR motion_until < \(Self.databaseNow))
                    """, [assetID, settings.owner, Double(seconds)]).affectedRows == 1
                if taken { return true }
                return try connection.query("SELECT 1 FROM asset WHERE id = $1", [assetID]).count == 0
            }
        }
    }

    public func releaseAsset(_ assetID: Int64) throws {
        try run {
            try pool.with { connection in
                try connection.query("UPDATE asset SET motion_owner = NULL, motion_until = NULL WHERE id = $1 AND motion_owner = $2",
                                     [assetID, settings.owner])
            }
        }
    }

    /// The advisory lock key of the reconciler's pass ("assetd-r").
    static let reconcilerLock: Int64 = 0x6173_7365_7464_2d72

    /// Under `pg_try_advisory_xact_lock`, held by a transaction on one pooled connection
    /// for the whole pass (idle while S3 answers): a second host finds it taken and skips.
    /// `reconciler_pass` records the last pass, so that the fleet makes one per interval
    /// rather than one per host.
    public func asReconcilerPass<T>(minimumInterval: Int, _ body: () throws -> T) throws -> T? {
        try run {
            try pool.transaction { connection -> T? in
                guard try connection.query("SELECT pg_try_advisory_xact_lock($1)", [Self.reconcilerLock]).first?.bool(0) == true else {
                    return nil
                }
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
}
