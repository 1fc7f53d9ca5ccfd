import Foundation
import Synchronization

/// What searches on PostgreSQL remember between them to choose their statements
/// (`PostgresRecordStore.page`): guesses, each trusted for `lifetime`. A wrong one costs a
/// search speed, never a row: every statement it chooses answers the same page.
final class SearchHints: Sendable {
    /// How long a workspace's share of the table, or a query's sparse walk, is trusted.
    static let lifetime: Duration = .seconds(60)
    /// Queries remembered at most; past it all are forgotten (so that a flood of distinct
    /// texts costs memory of this bound only).
    static let capacity = 1024

    private let shares = Mutex<(read: ContinuousClock.Instant?, byWorkspace: [Int64: Double])>((nil, [:]))
    private let sparse = Mutex<[String: (until: ContinuousClock.Instant, laterTiers: Bool)]>([:])

    /// The workspace's share of the asset table (0 to 1) by the planner's statistics:
    /// pg_stats' most common values of workspace_id and their frequencies, which ANALYZE
    /// (autovacuum's) keeps, read again on `connection` after `lifetime`. 0 when unknown
    /// (never analyzed, or a workspace too small to be among them).
    func share(of workspace: Int64, _ connection: PGConnection) throws -> Double {
        let now = ContinuousClock.now
        if let known = shares.withLock({ $0.read.map { now - $0 < Self.lifetime } == true ? $0.byWorkspace : nil }) {
            return known[workspace] ?? 0
        }
        var read: [Int64: Double] = [:]
        for row in try connection.query("""
            SELECT unnest(most_common_vals::text::bigint[]), unnest(most_common_freqs) FROM pg_catalog.pg_stats
            WHERE schemaname = current_schema() AND tablename = 'asset' AND attname = 'workspace_id'
            """).rows {
            if let workspace = row.int64(0), let share = row.double(1) { read[workspace] = share }
        }
        shares.withLock { $0 = (now, read) }
        return read[workspace] ?? 0
    }

    /// Whether the query `key` lately had a first walk that met few matches and then a
    /// gather that answered, and whether that gather took the later tiers too; nil when not
    /// known (or forgotten: older than `lifetime`).
    func gathered(_ key: String) -> Bool? {
        let now = ContinuousClock.now
        return sparse.withLock { hints in
            guard let hint = hints[key] else { return nil }
            guard hint.until > now else { hints[key] = nil; return nil }
            return hint.laterTiers
        }
    }

    /// Remembers the query `key`'s gather (`laterTiers`: with the later tiers), or forgets
    /// it (nil).
    func remember(_ key: String, gathered laterTiers: Bool?) {
        let until = ContinuousClock.now + Self.lifetime
        sparse.withLock { hints in
            guard let laterTiers else { hints[key] = nil; return }
            if hints.count >= Self.capacity, hints[key] == nil { hints.removeAll(keepingCapacity: true) }
            hints[key] = (until, laterTiers)
        }
    }
}
