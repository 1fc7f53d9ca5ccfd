import Foundation
import Synchronization

/// What searches on PostgreSQL remember between them to choose their statements
/// (`PostgresRecordStore.page`): guesses, each trusted for `lifetime`. A wrong one costs a
/// search speed, never a row: every statement it chooses answers the same page.
final class SearchHints: Sendable {
    /// How long a workspace's share of the table, or a query's sparse walk, is trusted.
    static let lifetime: Duration = .seconds(60)
    /// Queries remembered at most, all workspaces together.
    static let capacity = 1024
    /// Queries of one workspace remembered at most: its oldest is forgotten for a new one,
    /// so that one tenant's stream of distinct texts forgets only its own (review13 P2).
    static let workspaceCapacity = 256

    /// The shares: when read, by workspace, and whether the statistics were fresh enough
    /// to be trusted then.
    private let shares = Mutex<(read: ContinuousClock.Instant?, byWorkspace: [Int64: Double], rows: Double)>((nil, [:], 0))
    private let sparse = Mutex(Remembered())

    /// The sparse queries of each workspace, each in the order first remembered.
    private struct Remembered {
        var byWorkspace: [Int64: (hints: [String: (until: ContinuousClock.Instant, laterTiers: Bool)], order: [String])] = [:]
        var count = 0

        mutating func forget(_ key: String, of workspace: Int64) {
            guard byWorkspace[workspace]?.hints.removeValue(forKey: key) != nil else { return }
            byWorkspace[workspace]!.order.removeAll { $0 == key }
            count -= 1
            if byWorkspace[workspace]!.hints.isEmpty { byWorkspace[workspace] = nil }
        }

        mutating func forgetOldest(of workspace: Int64) {
            guard let oldest = byWorkspace[workspace]?.order.first else { return }
            forget(oldest, of: workspace)
        }

        /// Every expired hint forgotten; then, if still `capacity`, the oldest of the
        /// workspace that has the most.
        mutating func makeRoom(_ now: ContinuousClock.Instant) {
            for (workspace, remembered) in byWorkspace {
                for (key, hint) in remembered.hints where hint.until <= now { forget(key, of: workspace) }
            }
            if count >= SearchHints.capacity, let largest = byWorkspace.max(by: { $0.value.order.count < $1.value.order.count })?.key {
                forgetOldest(of: largest)
            }
        }
    }

    /// Part of the table changed since its statistics were taken above which the shares are
    /// not trusted (review13 P1): after an import into another workspace, the one that was
    /// half the table keeps its key until autovacuum's ANALYZE has seen the change.
    static let staleShare = 0.1

    /// The workspace's share of the asset table (0 to 1) by the planner's statistics:
    /// pg_stats' most common values of workspace_id and their frequencies, which ANALYZE
    /// (autovacuum's) keeps, read again on `connection` after `lifetime`. 0 when unknown
    /// (never analyzed, a workspace too small to be among them, or statistics that more
    /// than `staleShare` of the table's rows changed since, by pg_stat_user_tables).
    func share(of workspace: Int64, _ connection: PGConnection) throws -> Double {
        try statistics(connection).byWorkspace[workspace] ?? 0
    }

    /// The rows of the asset table outside the workspace, by the same statistics (its
    /// share of pg_class's `reltuples`); the whole table when its share is unknown.
    func otherRows(besides workspace: Int64, _ connection: PGConnection) throws -> Double {
        let known = try statistics(connection)
        return (1 - (known.byWorkspace[workspace] ?? 0)) * known.rows
    }

    private func statistics(_ connection: PGConnection) throws -> (byWorkspace: [Int64: Double], rows: Double) {
        let now = ContinuousClock.now
        if let known = shares.withLock({ $0.read.map { now - $0 < Self.lifetime } == true ? ($0.byWorkspace, $0.rows) : nil }) {
            return known
        }
        var read: [Int64: Double] = [:]
        var rows = 0.0
        for row in try connection.query("""
            SELECT unnest(most_common_vals::text::bigint[]), unnest(most_common_freqs),
                   (SELECT greatest(reltuples, 0) FROM pg_catalog.pg_class WHERE oid = to_regclass('asset'))
            FROM pg_catalog.pg_stats
            WHERE schemaname = current_schema() AND tablename = 'asset' AND attname = 'workspace_id'
            AND coalesce((SELECT changed.n_mod_since_analyze FROM pg_catalog.pg_stat_user_tables AS changed
                          WHERE changed.schemaname = current_schema() AND changed.relname = 'asset'), 0)
                <= $1 * greatest((SELECT reltuples FROM pg_catalog.pg_class WHERE oid = to_regclass('asset')), 0)
            """, [Self.staleShare]).rows {
            if let workspace = row.int64(0), let share = row.double(1) { read[workspace] = share }
            rows = row.double(2) ?? rows
        }
        shares.withLock { $0 = (now, read, rows) }
        return (read, rows)
    }

    /// Whether the query `key` of `workspace` lately had a first walk that met few matches
    /// and then a gather that answered, and whether that gather took the later tiers too;
    /// nil when not known (or forgotten: older than `lifetime`).
    func gathered(_ key: String, workspace: Int64) -> Bool? {
        let now = ContinuousClock.now
        return sparse.withLock { remembered in
            guard let hint = remembered.byWorkspace[workspace]?.hints[key] else { return nil }
            guard hint.until > now else { remembered.forget(key, of: workspace); return nil }
            return hint.laterTiers
        }
    }

    /// Remembers the query `key` of `workspace`'s gather (`laterTiers`: with the later
    /// tiers), or forgets it (nil). A new one past `workspaceCapacity` forgets the
    /// workspace's oldest; past `capacity`, the expired ones of all, then the oldest of the
    /// workspace that has the most.
    func remember(_ key: String, workspace: Int64, gathered laterTiers: Bool?) {
        let now = ContinuousClock.now
        sparse.withLock { remembered in
            guard let laterTiers else { remembered.forget(key, of: workspace); return }
            if remembered.byWorkspace[workspace]?.hints[key] != nil {
                remembered.byWorkspace[workspace]!.hints[key] = (now + Self.lifetime, laterTiers)
                return
            }
            if (remembered.byWorkspace[workspace]?.order.count ?? 0) >= Self.workspaceCapacity {
                remembered.forgetOldest(of: workspace)
            }
            if remembered.count >= Self.capacity { remembered.makeRoom(now) }
            remembered.byWorkspace[workspace, default: ([:], [])].hints[key] = (now + Self.lifetime, laterTiers)
            remembered.byWorkspace[workspace]!.order.append(key)
            remembered.count += 1
        }
    }

    /// How many queries are remembered (for tests).
    var remembered: Int { sparse.withLock { $0.count } }
}
