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
    /// How often, at most, a full `capacity` looks through every hint for expired ones.
    static let sweepInterval: Duration = .seconds(1)

    /// The shares: when read, by workspace, and whether the statistics were fresh enough
    /// to be trusted then; and whether v10's index is there.
    private let shares = Mutex<(read: ContinuousClock.Instant?, statistics: Statistics)>((nil, Statistics()))
    private let sparse = Mutex(Remembered())

    /// What a search connection read of the catalog at most once a `lifetime`.
    private struct Statistics {
        var byWorkspace: [Int64: Double] = [:]
        /// Whether migration v10's index of the joined text is valid (`joinedTextIndexed`).
        var joinedTextIndexed = false
    }

    /// The sparse queries of each workspace, each in the order first remembered: `order`
    /// from `head` on holds (key, serial) for each hint, and the entries of forgotten or
    /// renewed ones (whose serial is not the hint's), dropped when they reach the head or
    /// when they are half of it (so that forgetting is a dictionary removal, not a scan).
    private struct Remembered {
        struct Workspace {
            var hints: [String: (until: ContinuousClock.Instant, laterTiers: Bool, serial: Int)] = [:]
            var order: [(key: String, serial: Int)] = []
            var head = 0
        }
        var byWorkspace: [Int64: Workspace] = [:]
        var count = 0
        var serial = 0
        /// When `makeRoom` may next look through every hint for expired ones.
        var nextSweep: ContinuousClock.Instant?

        mutating func forget(_ key: String, of workspace: Int64) {
            guard byWorkspace[workspace]?.hints.removeValue(forKey: key) != nil else { return }
            count -= 1
            if byWorkspace[workspace]!.hints.isEmpty { byWorkspace[workspace] = nil; return }
            compact(workspace)
        }

        /// The order's entries of forgotten hints, and those before its head, dropped once
        /// the order is twice the hints (amortised: a workspace that forgets its oldest for
        /// each new one does not grow its order).
        private mutating func compact(_ workspace: Int64) {
            guard let remembered = byWorkspace[workspace], remembered.order.count > 2 * remembered.hints.count + 8 else { return }
            byWorkspace[workspace]!.order = remembered.order[remembered.head...].filter { remembered.hints[$0.key]?.serial == $0.serial }
            byWorkspace[workspace]!.head = 0
        }

        mutating func forgetOldest(of workspace: Int64) {
            while true {
                // The head entry, and whether it is a hint's (not one forgotten or remembered again since).
                guard let (key, live) = byWorkspace[workspace].flatMap({ remembered -> (String, Bool)? in
                    guard remembered.head < remembered.order.count else { return nil }
                    let (key, serial) = remembered.order[remembered.head]
                    return (key, remembered.hints[key]?.serial == serial)
                }) else { return }
                byWorkspace[workspace]!.head += 1
                if live { forget(key, of: workspace); return }
            }
        }

        /// The entries in a workspace's order, live or not (the tests).
        func orderCount(of workspace: Int64) -> Int { byWorkspace[workspace]?.order.count ?? 0 }

        mutating func add(_ key: String, of workspace: Int64, until: ContinuousClock.Instant, laterTiers: Bool) {
            serial += 1
            byWorkspace[workspace, default: Workspace()].hints[key] = (until, laterTiers, serial)
            byWorkspace[workspace]!.order.append((key, serial))
            count += 1
        }

        /// Every expired hint forgotten, at most once a `sweepInterval` (review14 P3: at
        /// capacity, each new hint walked all 1,024 under the mutex that every search's
        /// lookup takes); then, if still `capacity`, the oldest of the workspace that has the most.
        mutating func makeRoom(_ now: ContinuousClock.Instant) {
            if nextSweep.map({ now >= $0 }) ?? true {
                nextSweep = now + SearchHints.sweepInterval
                for (workspace, remembered) in byWorkspace {
                    for (key, hint) in remembered.hints where hint.until <= now { forget(key, of: workspace) }
                }
            }
            if count >= SearchHints.capacity, let largest = byWorkspace.max(by: { $0.value.hints.count < $1.value.hints.count })?.key {
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

    /// How long a count of the other workspaces' rows (`otherRows`) is trusted: an import
    /// into another workspace is seen within this (review14 P1).
    static let countLifetime: Duration = .seconds(5)
    private let counts = Mutex<[Int64: (read: ContinuousClock.Instant, rows: Int)]>([:])

    /// The rows of the asset table outside the workspace, counted up to `bound` (two
    /// index-only scans of at most `bound` entries of the workspace index, each side of
    /// the workspace; UNION ALL, so that a bitmap plan cannot read them all), read again on
    /// `connection` after `countLifetime`. Only a workspace whose share is `keylessShare`
    /// or more asks (`PostgresRecordStore.workspaceKeyed`), so only it pays the count.
    func otherRows(besides workspace: Int64, upTo bound: Int, _ connection: PGConnection) throws -> Int {
        let now = ContinuousClock.now
        if let known = counts.withLock({ $0[workspace].flatMap { now - $0.read < Self.countLifetime ? $0.rows : nil } }) {
            return known
        }
        let rows = try connection.query("""
            SELECT count(*) FROM ((SELECT 1 FROM asset WHERE asset.workspace_id < $1 LIMIT $2)
                UNION ALL (SELECT 1 FROM asset WHERE asset.workspace_id > $1 LIMIT $2) LIMIT $2) AS other
            """, [workspace, Int64(bound)]).first?.int(0) ?? bound
        counts.withLock { known in
            // Dominant workspaces are few (one in a table, at 98%): this never grows past a handful.
            known = known.filter { now - $0.value.read < Self.countLifetime }
            known[workspace] = (now, rows)
        }
        return rows
    }

    /// Whether migration v10's trigram index of the joined text (`asset_joined_text_by_workspace`)
    /// is valid, read with the statistics: until it is built (CREATE INDEX CONCURRENTLY after
    /// the migration, `buildIndexes`) a gather's substring condition is the plain LIKE, which
    /// v7's index serves (`PostgresRecordStore.TextConditions.substring`).
    func joinedTextIndexed(_ connection: PGConnection) throws -> Bool {
        try statistics(connection).joinedTextIndexed
    }

    private func statistics(_ connection: PGConnection) throws -> Statistics {
        let now = ContinuousClock.now
        if let known = shares.withLock({ $0.read.map { now - $0 < Self.lifetime } == true ? $0.statistics : nil }) {
            return known
        }
        // One row at least (NULL shares when none is known or trusted), the table's
        // `reltuples` read once for the staleness of the shares.
        var read = Statistics()
        for row in try connection.query("""
            WITH asset_table AS (SELECT greatest(reltuples, 0) AS rows FROM pg_catalog.pg_class WHERE oid = to_regclass('asset'))
            SELECT share.workspace, share.frequency,
                   coalesce((SELECT indisvalid FROM pg_catalog.pg_index
                             WHERE indexrelid = to_regclass('asset_joined_text_by_workspace')), false)
            FROM asset_table LEFT JOIN LATERAL (
                SELECT unnest(most_common_vals::text::bigint[]) AS workspace, unnest(most_common_freqs) AS frequency
                FROM pg_catalog.pg_stats
                WHERE schemaname = current_schema() AND tablename = 'asset' AND attname = 'workspace_id'
                AND coalesce((SELECT changed.n_mod_since_analyze FROM pg_catalog.pg_stat_user_tables AS changed
                              WHERE changed.schemaname = current_schema() AND changed.relname = 'asset'), 0)
                    <= $1 * asset_table.rows) AS share ON true
            """, [Self.staleShare]).rows {
            if let workspace = row.int64(0), let share = row.double(1) { read.byWorkspace[workspace] = share }
            read.joinedTextIndexed = row.bool(2) ?? false
        }
        shares.withLock { $0 = (now, read) }
        return read
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
            if let hint = remembered.byWorkspace[workspace]?.hints[key] {
                remembered.byWorkspace[workspace]!.hints[key] = (now + Self.lifetime, laterTiers, hint.serial)
                return
            }
            if (remembered.byWorkspace[workspace]?.hints.count ?? 0) >= Self.workspaceCapacity {
                remembered.forgetOldest(of: workspace)
            }
            if remembered.count >= Self.capacity { remembered.makeRoom(now) }
            remembered.add(key, of: workspace, until: now + Self.lifetime, laterTiers: laterTiers)
        }
    }

    /// How many queries are remembered (for tests).
    var remembered: Int { sparse.withLock { $0.count } }

    /// How many entries a workspace's order holds, forgotten ones included (for tests).
    func orderCount(of workspace: Int64) -> Int { sparse.withLock { $0.orderCount(of: workspace) } }
}
