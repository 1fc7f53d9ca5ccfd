import Foundation

// Titles, tags and the listing on PostgreSQL, with the results of SQLiteRecordStore+search.swift
// (`AssetQuery` and `SearchText` say what they are) over migration "v2: titles, tags and
// search": the `search_words` tsvector (the words of file name, title and tags, case and
// accents folded by unaccent) for tiers 0 and 1, to_tsquery prefixes (`:*`) for tier 1, and
// LIKE over the case-folded texts (stored by migration v7: `search_text`) under a pg_trgm
// index for tier 2. Every value is a bound
// parameter; words become tsquery lexemes quoted by `assetd_query`, and the substring's
// `\ % _` are escaped for LIKE: nothing typed is syntax.
extension PostgresRecordStore {
    public func describeAsset(id: Int64, workspaceID: Int64, title: FieldEdit<String?>, tags: FieldEdit<[String]>) throws -> AssetRecord? {
        try run {
            try pool.transaction { connection in
                let sql = SQLParameters()
                var assignments: [String] = []
                if case .set(let value) = title { assignments.append("title = \(sql.bind(value))") }
                if case .set(let value) = tags { assignments.append("tags = \(sql.bind(SQLiteRecordStore.storedText(of: value)))") }
                let set = assignments.isEmpty ? "id = id" : assignments.joined(separator: ", ")
                // updated_at is the clock of status changes (the repairs read it): a label is not one.
                guard let asset = try connection.query("""
                    UPDATE asset SET \(set) WHERE id = \(sql.bind(id)) AND workspace_id = \(sql.bind(workspaceID))
                    AND status NOT IN ('deleting', 'deleted')
                    RETURNING \(Self.assetColumns)
                    """, sql.values).first.map(Self.asset(from:)) else { return nil }
                // Search indexes hold titles and tags: a ready asset's change of them is an
                // event (asset.updated), in this transaction, after the row lock of its UPDATE
                // (so that its id follows the asset's earlier events). A pending asset's
                // asset.ready will carry them.
                if asset.status == .ready, title != .keep || tags != .keep {
                    try Self.recordEvent(connection, .assetUpdated, asset: asset, now: Date())
                }
                return asset
            }
        }
    }

    public func searchAssets(_ query: AssetQuery) throws -> [(asset: AssetRecord, position: AssetPosition)] {
        try run {
            guard let text = query.text else {
                guard query.sort != .relevance else { return [] }
                // No text: one walk down the order's index, as cheap as the plain list.
                return try pool.with { connection in try sortedPage(query, connection) }
            }
            // A search waits for its turn before it takes a connection (`SearchGate`), one of
            // the search connections, whose session has the plan settings (`searchSession`).
            return try searchGate.run { deadline in
                try searchPool.with(until: deadline) { connection in
                    query.sort == .relevance ? try relevancePage(query, text, connection) : try sortedPage(query, connection)
                }
            }
        }
    }

    /// The session of a search connection (`searchPool`), set once when it connects:
    /// read only, plans without a sequential scan, and the walk's plan until a step says
    /// otherwise (`page` says which plan each of its steps uses, and why). These settings
    /// were SET LOCAL in a transaction of each search, 0.2-0.3 ms of PostgreSQL's time and
    /// two round trips a search; these connections run searches only, so they keep them.
    /// Each statement of a page has its own snapshot, as it had in that READ COMMITTED
    /// transaction.
    static let searchSession =
        // No parallel workers either: a request's statement is short, and forking
        // workers for it costs more than it saves on a busy host; and a relevance page's
        // gather (`gather(_:_:_:then:)`) needs its UNION ALL's branches in order, which a
        // Parallel Append does not keep (it checks, and fails the search, rather than
        // mis-order a page). No JIT: a plan that must
        // sort with enable_sort off costs 10^10 to the planner, far above jit_above_cost,
        // and compiling it took 0.5-1 s (a relevance walk's count, in EXPLAIN ANALYZE).
        // Generic plans: each step's plan is forced, so that a custom plan for the values at
        // hand finds nothing better, but PostgreSQL kept planning each statement anew (a
        // gather's custom plan costs less than its generic one, estimated with default
        // selectivities), about 1 ms of planning a statement against 0.03 ms for the
        // generic plan, the same plan (EXPLAIN ANALYZE of a prepared gather). No
        // incremental sort (which enable_sort does not forbid): with the statistics of an
        // ANALYZE, a walk with a type read every row of that type by the newest-first index
        // and sorted them on the workspace's presorted key (18-36 ms at 10,000 videos)
        // instead of walking the type's sort index.
        "SET default_transaction_read_only = on; SET enable_seqscan = off; SET max_parallel_workers_per_gather = 0; SET jit = off; "
        + "SET plan_cache_mode = force_generic_plan; SET enable_incremental_sort = off; " + settings(of: .walk)

    /// The case-folded texts that tier 2 searches, stored (migration v7) as the trigram index has them.
    static let searchedText = "asset.search_text"

    /// How many matches and rows each step of a page reads (`page`): the defaults, or a
    /// test's small ones (`Settings.searchBounds`), so that a small corpus takes every step.
    struct SearchBounds: Sendable {
        /// Rows of the workspace first walked in the order.
        var firstWalkedRows = 300
        /// Rows of the workspace then walked, when the first walk met enough matches.
        var walkedRows = 1500
        /// Matches read from the GIN indexes at most, when a walk met few, before the walk goes on.
        var gatheredMatches = 20_000
        /// Whether a gather's GIN scans use the workspace's key (`WorkspaceKey`).
        var workspaceKey = WorkspaceKey.byShare
        /// Whether a query whose first walk lately met few matches gathers at once (`SearchHints`).
        var gathersFirst = true
        /// The other workspaces' rows from which a dominant workspace keeps its key
        /// (`keylessOtherRows`; a test's small one).
        var keylessOtherRows = PostgresRecordStore.keylessOtherRows
    }

    /// Whether a gather's GIN scans take the workspace's key (migrations v5 and v7 put it
    /// first in the GIN indexes) or the words or trigrams only. The key leaves out other
    /// workspaces' matches before the heap, but intersecting its postings costs in
    /// proportion to the workspace: 1.2 of the 2.2 ms of a title's bitmap at 100,000 assets
    /// in one workspace (EXPLAIN ANALYZE, BENCHMARKS.md "pgsearch8"), where it leaves out
    /// nothing. Without the key the workspace is still a condition on every row
    /// (`asset.workspace_id + 0 = $n`, which no index serves), so another workspace's row
    /// never comes back; it only costs a heap visit.
    enum WorkspaceKey: Sendable {
        /// The key unless the workspace holds `keylessShare` of the table or more by the
        /// planner's statistics (`SearchHints.share`) and the other workspaces fewer than
        /// `keylessOtherRows` rows, counted (`SearchHints.otherRows`).
        case byShare
        case always
        case never
    }

    /// The share of the table from which a workspace's gathers leave its key out, with
    /// the other workspaces' rows fewer than `keylessOtherRows`: a workspace that is (nearly)
    /// the whole table, whose key leaves out (nearly) nothing. Keyless, a gather visits the
    /// other workspaces' matches too (each a heap visit, ~1 µs): its time depends on them,
    /// and their number could be timed by the workspace's users (review13 P1: at half the
    /// table, 12,000 foreign matches made a search 3x slower). The bound makes that at most
    /// 2,000 visits (~2 ms) of rows that are not its own, in a table that is all but its own:
    /// the other rows are counted (up to the bound, two index-only scans, at most every
    /// `SearchHints.countLifetime`), not taken from the last ANALYZE, whose statistics are
    /// trusted until 10% of the table changed (review14 P1: 20,000 foreign rows were taken
    /// for 1,113 at 200,000 rows).
    static let keylessShare = 0.98
    static let keylessOtherRows = 2_000

    /// The conditions of a text's tiers: every word whole, every word a prefix, the substring.
    /// Each tsquery is an InitPlan (`(SELECT ...)`): built once a statement, in a custom
    /// plan or a generic one (never once a row), and served by the GIN index as a bitmap;
    /// `assetd_query` is PL/pgSQL (migration v8), whose plans stay for the connection.
    struct TextConditions {
        let words: String?
        let substring: String?

        init(_ text: SearchText) {
            words = text.words.isEmpty ? nil : text.words.joined(separator: " ")
            // libpq's parameters end at a NUL: such a text matches as words only (as on SQLite).
            substring = text.substring.flatMap { $0.unicodeScalars.contains("\u{0}") ? nil : Self.likeEscaped($0) }
        }

        /// By scalar, not by Character: `%` followed by a combining mark is one Character
        /// that equals no `%`, and would stay a wildcard.
        static func likeEscaped(_ text: String) -> String {
            var escaped = String.UnicodeScalarView()
            for scalar in text.unicodeScalars {
                if scalar == "\\" || scalar == "%" || scalar == "_" { escaped.append("\\") }
                escaped.append(scalar)
            }
            return String(escaped)
        }

        /// Every word whole (tier 0) or as a prefix. The tsquery is NULL when PostgreSQL finds
        /// no word in them: no row matches.
        func words(prefix: Bool, _ sql: SQLParameters) -> String? {
            words.map { "asset.search_words @@ (SELECT assetd_query(\(sql.bind($0)), \(prefix)))" }
        }

        /// Tier 1: every word a prefix, not every word whole, in one tsquery (`a && !!b`), which
        /// the GIN index answers exactly: the rows of tier 0 cost nothing here (q=beach, whose
        /// prefixes match no other word, finds its empty tier 1 in the index alone).
        func prefixOnly(_ sql: SQLParameters) -> String? {
            words.map {
                let words = sql.bind($0)
                return "asset.search_words @@ (SELECT assetd_query(\(words), true) && !!assetd_query(\(words), false))"
            }
        }

        /// An earlier tier left out; a NULL tsquery excludes none.
        func excluding(prefix: Bool, _ sql: SQLParameters) -> String? {
            words.map { "NOT coalesce(asset.search_words @@ (SELECT assetd_query(\(sql.bind($0)), \(prefix))), false)" }
        }

        /// Every match of a sorted page (tiers 0 to 2): every word a prefix, or the substring.
        /// A NULL tsquery leaves the OR to the substring (NULL OR true is true).
        func either(_ sql: SQLParameters) -> String? {
            let either = [words(prefix: true, sql), substring(sql)].compactMap { $0 }
            return either.isEmpty ? nil : "(" + either.joined(separator: " OR ") + ")"
        }

        /// What tier `tier` or a later one matches; nil when none can. Tier 0's rows match
        /// every word as a prefix too, so the tiers from 0 on are `either`, and those from 1
        /// on leave out tier 0.
        func fromTier(_ tier: Int, _ sql: SQLParameters) -> String? {
            switch tier {
            case 0: return either(sql)
            case 1: return either(sql).map { either in excluding(prefix: false, sql).map { "\(either) AND \($0)" } ?? either }
            default: return self.tier(tier, sql)
            }
        }

        /// A matching row's tier: 0 for every word whole, 1 for every word a prefix, else 2
        /// (the substring). A NULL tsquery matches no row (CASE takes NULL as false).
        func tierOfRow(_ sql: SQLParameters) -> String {
            guard let whole = self.words(prefix: false, sql), let prefix = self.words(prefix: true, sql) else { return "2" }
            return "CASE WHEN \(whole) THEN 0 WHEN \(prefix) THEN 1 ELSE 2 END"
        }

        /// The searched text holds the substring (LIKE, case folded). In a gather once v10's
        /// index is there (`SQLParameters.joinedText`), the joined text holds the joined
        /// substring too, which that index serves: a condition every match meets (`joinedText`
        /// maps character for character), where v7's index loses what is around the
        /// substring's punctuation (`ch_be`: every `beach` a candidate). The exact LIKE is
        /// then `IS TRUE`, which no index serves, so that the planner cannot add v7's bitmap
        /// to the joined one's (BitmapAnd: its 8,822 candidates collected for nothing). The
        /// joined pattern is the escaped one joined (`joinedText`), the same parameter.
        func substring(_ sql: SQLParameters) -> String? {
            guard let substring else { return nil }
            let pattern = "lower(\(sql.bind(substring)))"
            let like = "\(PostgresRecordStore.searchedText) LIKE '%' || \(pattern) || '%'"
            guard sql.joinedText else { return like }
            let joined = PostgresRecordStore.joinedText(of: PostgresRecordStore.searchedText)
            return "(\(joined) LIKE '%' || \(PostgresRecordStore.joinedText(of: pattern)) || '%' AND (\(like)) IS TRUE)"
        }

        /// What tier `tier` matches, leaving out the tiers before it; nil when it cannot match.
        func tier(_ tier: Int, _ sql: SQLParameters) -> String? {
            switch tier {
            case 0: return words(prefix: false, sql)
            case 1: return prefixOnly(sql)
            case 2:
                guard let substring = substring(sql) else { return nil }
                return excluding(prefix: true, sql).map { "\(substring) AND \($0)" } ?? substring
            default: return nil
            }
        }
    }

    /// What a page's statements are written from. Each statement binds its own parameters
    /// (a prepared statement takes exactly the ones it names), so each part is written
    /// into the statement's `SQLParameters` as the statement needs it.
    struct PageQuery {
        let workspaceID: Int64
        /// After the cursor; nil from the start.
        let position: (SQLParameters) -> String?
        /// What the rows must match (a tier, or every match for a sorted page).
        let text: (SQLParameters) -> String
        /// Not gone, and the query's filters.
        let filters: (SQLParameters) -> String
        /// The walks' rows: the workspace's, or with a type that type's only (`walking`).
        let type: AssetKind?
        /// The sort key's expression (no parameters in it); nil: the id.
        let key: String?
        let descending: Bool
        let limit: Int
        /// Relevance: the tiers after this one, at once (`page`).
        let laterTiers: LaterTiers?
        /// What `SearchHints` remembers this query by (its cursor left out); nil: nothing.
        let hint: String?
    }

    /// The tiers of a relevance page after its current one, as one set (from their start).
    struct LaterTiers {
        /// What any of them matches.
        let matched: (SQLParameters) -> String
        /// A row's tier (an integer expression).
        let tier: (SQLParameters) -> String
    }

    /// At most `limit` rows of the workspace after `position` matching `text` and `filters`,
    /// in the order of `key` (nil: the id) and the id, descending or not (each row the
    /// record's columns, then `key`'s value if any); with `laterTiers`, the rows of those
    /// tiers may follow, in the order of tier and id, each with its tier in that column
    /// (`laterTiersRead` true: the page holds every match of the later tiers it needs).
    ///
    /// Which plan is fast depends on how many rows match, which the planner cannot know:
    /// its estimates multiply selectivities that are far from independent here (a tier
    /// leaves out the one before it, which matches nearly the same rows; a type filter;
    /// a substring's trigrams). Walking the order's index wins when matches are many and
    /// spread (the page fills soon), and reads every row of the workspace when they are few
    /// or crowd the far end of the order; the GIN indexes win when matches are few, and
    /// read every one of them when they are many. So the walk goes first, a short one and
    /// then a longer one, and what each meets decides (each step's plan forced, `use`):
    /// 1. the walk down the order's index over the next `firstWalkedRows` rows of the
    ///    workspace, then over `walkedRows`: the whole answer when they hold the page (a
    ///    common word). It stops at the page's last match;
    /// 2. after either walk, when it met at most 1 match in 60 rows: the matches from
    ///    the GIN indexes (bitmap scans; migration v5 puts the workspace and the type in
    ///    them), their ids and sort keys only, at most `gatheredMatches` of them, the
    ///    page's rows then read by id: the whole answer when there were no more (nothing,
    ///    a rare word, a substring, a title's 1 row in 40 that a walk would find only past
    ///    50,000 rows in the bench's order). A walked row and a gathered match cost about
    ///    the same (0.4-1 µs), so walking beats gathering where a density d makes
    ///    `limit / d` rows fewer than the `d × rows of the workspace` matches: above 2.2% at
    ///    100,000 rows and 50 a page; 1 in 60 is 1.7%. The gather is not first: its
    ///    bitmap alone costs a common word 1.5 ms (q=beach intersected with its workspace's
    ///    100,000 entries in the GIN index), 3 times its walk. When they do not fill a
    ///    relevance page, whose first walk also counted the walked rows that any later tier
    ///    matches, and those were at most 1 in 60 too: the rest of the page from the matches
    ///    of all the later tiers at once, gathered the same way, each row's tier computed,
    ///    in the order of tier and id (nothing, a rare word, a substring: one statement for
    ///    the later tiers where each took a walk and a gather), in the same statement as
    ///    this tier's gather, run only when this tier leaves the page short (UNION ALL).
    ///    Not all tiers at once from the start: a page that tier 0 fills (a title) gathers
    ///    its whole words only, which the GIN index intersects in a third of the time that
    ///    prefixes take;
    /// 3. otherwise the walk on, unbounded (matches are common, or more than
    ///    `gatheredMatches` of the workspace's rows match, so the walk meets them soon).
    /// Either way a search reads its own workspace's rows only, never in proportion to
    /// other workspaces' matches, but for the gathers of a workspace that is nearly the whole
    /// table (`WorkspaceKey`), which read the others' matches too (of fewer than 2,000 rows);
    /// statement_timeout bounds what a crowded corpus makes of it.
    private func page(_ connection: PGConnection, _ query: PageQuery) throws -> (rows: [PGRow], laterTiersRead: Bool) {
        let direction = query.descending ? "DESC" : "ASC"
        let key = query.key
        let order = "asset.workspace_id \(direction), " + (key.map { "\($0) \(direction), " } ?? "") + "asset.id \(direction)"
        let bounds = settings.searchBounds
        // The sort key a column of the walked rows, so that the planner sees them in the
        // outer order (an expression over the subquery's columns is another expression to
        // it: it would sort, reading every walked row to fill a page that the first 533 fill).
        let walkedOrder = "asset.workspace_id \(direction), " + (key == nil ? "" : "asset.sort_key \(direction), ") + "asset.id \(direction)"
        var gatheredTooMany = false
        var countsTiers = query.laterTiers != nil && key == nil
        let thisTier = Gathered(position: query.position, text: query.text, key: { _ in key }, keyDirection: direction, idDirection: direction)
        // A query whose first walk lately met few matches (a title, a substring: their
        // walks meet none in the bench's order) gathers at once, as that walk would have
        // led it to, without the walk (0.5-0.9 ms) nor its plan's SETs.
        if bounds.gathersFirst, let hint = query.hint, let laterTiers = searchHints.gathered(hint, workspace: query.workspaceID) {
            if let gathered = try gatherPage(connection, query, thisTier, laterTiers: laterTiers) { return gathered }
            searchHints.remember(hint, workspace: query.workspaceID, gathered: nil)
            gatheredTooMany = true
        }
        for rows in [bounds.firstWalkedRows, bounds.walkedRows] {
            let sql = SQLParameters()
            let workspace = sql.bind(query.workspaceID)
            let after = query.position(sql).map { " AND \($0)" } ?? ""
            let filters = query.filters(sql)
            let text = query.text(sql)
            let walked: [PGRow]
            var walkedInLaterTiers: Int?
            if let tiers = query.laterTiers, countsTiers {
                countsTiers = false
                // The walked rows once (MATERIALIZED): the page's matches of this tier, and
                // how many any later tier matches (one row at least, NULL columns when this
                // tier has none).
                let matched = tiers.matched(sql)
                let result = try self.query(.walk, connection, """
                    WITH walked AS MATERIALIZED (
                        SELECT asset.* FROM asset WHERE \(Self.walking(workspace, query.type))\(after) ORDER BY \(order) LIMIT \(rows))
                    SELECT \(Self.assetColumns), NULL, total.found
                    FROM (SELECT count(*) AS found FROM walked AS asset WHERE \(filters) AND \(matched)) AS total
                    LEFT JOIN LATERAL (SELECT * FROM walked AS asset WHERE \(filters) AND \(text)
                        ORDER BY \(walkedOrder) LIMIT \(sql.bind(query.limit))) AS asset ON true
                    ORDER BY \(walkedOrder)
                    """, sql.values).rows
                walkedInLaterTiers = result.first?.int(Self.assetColumnCount + 1) ?? 0
                walked = result.filter { $0.int64(0) != nil }
            } else {
                walked = try self.query(.walk, connection, """
                    SELECT \(Self.assetColumns), \(key == nil ? "NULL" : "asset.sort_key") FROM (
                        SELECT asset.*, \(key ?? "NULL") AS sort_key FROM asset WHERE \(Self.walking(workspace, query.type))\(after)
                        ORDER BY \(order) LIMIT \(rows)
                    ) AS asset WHERE \(filters) AND \(text) ORDER BY \(walkedOrder) LIMIT \(sql.bind(query.limit))
                    """, sql.values).rows
            }
            if walked.count == query.limit { return (walked, false) }
            guard walked.count * 60 <= rows, !gatheredTooMany else { continue }
            let laterTiers = walkedInLaterTiers.map { $0 * 60 <= rows } ?? false
            if let gathered = try gatherPage(connection, query, thisTier, laterTiers: laterTiers) {
                if let hint = query.hint { searchHints.remember(hint, workspace: query.workspaceID, gathered: laterTiers) }
                return gathered
            }
            gatheredTooMany = true
        }
        let sql = SQLParameters()
        let workspace = sql.bind(query.workspaceID)
        let after = query.position(sql).map { " AND \($0)" } ?? ""
        return (try self.query(.walk, connection, """
            SELECT \(Self.assetColumns), \(key ?? "NULL") FROM asset WHERE \(Self.walking(workspace, query.type))\(after)
            AND \(query.filters(sql)) AND \(query.text(sql)) ORDER BY \(order) LIMIT \(sql.bind(query.limit))
            """, sql.values).rows, false)
    }

    /// The page from the GIN indexes: this tier's matches (a sorted page's: all of them),
    /// then with `laterTiers` the later tiers' in the same statement; nil when more than
    /// `gatheredMatches` matched this tier.
    private func gatherPage(_ connection: PGConnection, _ query: PageQuery, _ thisTier: Gathered, laterTiers: Bool) throws
        -> (rows: [PGRow], laterTiersRead: Bool)? {
        let keyed = try workspaceKeyed(query.workspaceID, connection)
        let joinedText = try searchHints.joinedTextIndexed(connection)
        if laterTiers, let tiers = query.laterTiers {
            let later = Gathered(position: { _ in nil }, text: tiers.matched, key: tiers.tier, keyDirection: "ASC", idDirection: "DESC")
            return try gather(connection, query, thisTier, then: later, keyed: keyed, joinedText: joinedText)
        }
        return try gather(connection, workspaceID: query.workspaceID, filters: query.filters, thisTier, limit: query.limit, keyed: keyed,
                          joinedText: joinedText).map { ($0, false) }
    }

    /// Whether a gather in the workspace takes its key in the GIN scans (`WorkspaceKey`).
    func workspaceKeyed(_ workspaceID: Int64, _ connection: PGConnection) throws -> Bool {
        switch settings.searchBounds.workspaceKey {
        case .always: true
        case .never: false
        case .byShare: try searchHints.share(of: workspaceID, connection) < Self.keylessShare
            || searchHints.otherRows(besides: workspaceID, upTo: settings.searchBounds.keylessOtherRows, connection)
                >= settings.searchBounds.keylessOtherRows
        }
    }

    /// What a gather reads: the matches of `text` after `position`, in the order of `key`
    /// (nil: NULL) and the id.
    struct Gathered {
        let position: (SQLParameters) -> String?
        let text: (SQLParameters) -> String
        let key: (SQLParameters) -> String?
        let keyDirection: String
        let idDirection: String
    }

    /// A gather's three CTEs: `name`, the matches' ids and sort keys from the GIN indexes (at
    /// most `gatheredMatches` + 1), `name_found`, how many, and `name_page`, the page's ids
    /// sorted from those. Without a sort key (a relevance page's tier, a title's), the
    /// matches are counted and the page's ids collected in one pass (`array_agg` sorted by
    /// id, its first `limit`), not kept in a materialized CTE that a top-N sort and the
    /// count read again: 1.4-2.2 ms against 1.9-4.4 for a cold title's 2,499-6,559 matches
    /// (BENCHMARKS.md, pgsearch11). `keyed` false: the workspace is a condition on each row,
    /// not a key of the GIN scans (`WorkspaceKey`).
    private func gathering(_ name: String, _ sql: SQLParameters, workspace: String, keyed: Bool, filters: (SQLParameters) -> String,
                           _ gathered: Gathered, limit: Int) -> String {
        let after = gathered.position(sql).map { " AND \($0)" } ?? ""
        let filters = filters(sql)
        let text = gathered.text(sql)
        let condition = "\(keyed ? "asset.workspace_id" : "asset.workspace_id + 0") = \(workspace)\(after) AND \(filters) AND \(text)"
        let bound = settings.searchBounds.gatheredMatches + 1
        guard let key = gathered.key(sql) else {
            return """
                \(name) AS MATERIALIZED (
                    SELECT count(*) AS found, (array_agg(matched.id ORDER BY matched.id \(gathered.idDirection)))[1:\(sql.bind(limit))] AS ids
                    FROM (SELECT asset.id FROM asset WHERE \(condition) LIMIT \(bound)) AS matched),
                \(name)_found AS (SELECT \(name).found FROM \(name)),
                \(name)_page AS (SELECT page.id, NULL::bigint AS sort_key FROM \(name), unnest(\(name).ids) AS page(id))
                """
        }
        return """
            \(name) AS MATERIALIZED (
                SELECT asset.id, \(key) AS sort_key FROM asset WHERE \(condition) LIMIT \(bound)),
            \(name)_found AS (SELECT count(*) AS found FROM \(name)),
            \(name)_page AS (SELECT \(name).id, \(name).sort_key FROM \(name)
                ORDER BY \(name).sort_key \(gathered.keyDirection), \(name).id \(gathered.idDirection) LIMIT \(sql.bind(limit)))
            """
    }

    /// The matches' ids and sort keys from the GIN indexes (at most `gatheredMatches` + 1),
    /// the page's ids sorted from those, and its rows read by id, each with its sort key;
    /// nil when more than `gatheredMatches` matched.
    private func gather(_ connection: PGConnection, workspaceID: Int64, filters: (SQLParameters) -> String, _ gathered: Gathered,
                        limit: Int, keyed: Bool, joinedText: Bool) throws -> [PGRow]? {
        let sql = SQLParameters()
        sql.joinedText = joinedText
        let workspace = sql.bind(workspaceID)
        let ctes = gathering("matched", sql, workspace: workspace, keyed: keyed, filters: filters, gathered, limit: limit)
        // One row at least, the count of matches read in the last column (NULL columns
        // before it when there is none).
        let rows = try self.query(.bitmap, connection, """
            WITH \(ctes)
            SELECT \(Self.assetColumns), page.sort_key, total.found FROM (SELECT found FROM matched_found) AS total
            LEFT JOIN (matched_page AS page JOIN asset ON asset.id = page.id) ON true
            ORDER BY page.sort_key \(gathered.keyDirection), page.id \(gathered.idDirection)
            """, sql.values).rows
        guard (rows.first?.int(Self.assetColumnCount + 1) ?? 0) <= settings.searchBounds.gatheredMatches else { return nil }
        return rows.filter { $0.int64(0) != nil }
    }

    /// A relevance page's gather of its tier and, when that leaves the page short, of the
    /// later tiers after it, in one statement: `(this tier's page) UNION ALL (the later
    /// tiers' page) LIMIT limit`, whose Append runs the second branch only when the first
    /// returned fewer rows than the limit (EXPLAIN ANALYZE: "never executed" for a page
    /// that its tier fills, a title's). Each row carries its branch's count of matches
    /// (the count of a branch without rows is 0, and more than `gatheredMatches` matches
    /// leave a row in it); this tier's rows have no sort key (NULL), the later tiers' have
    /// their tier. nil when more than `gatheredMatches` matched this tier; this tier's rows
    /// alone (`laterTiersRead` false) when more matched the later ones.
    private func gather(_ connection: PGConnection, _ query: PageQuery, _ thisTier: Gathered, then later: Gathered, keyed: Bool,
                        joinedText: Bool) throws -> (rows: [PGRow], laterTiersRead: Bool)? {
        let sql = SQLParameters()
        sql.joinedText = joinedText
        let workspace = sql.bind(query.workspaceID)
        let ctes = [gathering("tier", sql, workspace: workspace, keyed: keyed, filters: query.filters, thisTier, limit: query.limit),
                    gathering("later", sql, workspace: workspace, keyed: keyed, filters: query.filters, later, limit: query.limit)]
        let rows = try self.query(.bitmap, connection, """
            WITH \(ctes.joined(separator: ",\n"))
            (SELECT \(Self.assetColumns), tier_page.sort_key, (SELECT found FROM tier_found) FROM tier_page JOIN asset ON asset.id = tier_page.id
                ORDER BY tier_page.sort_key \(thisTier.keyDirection), tier_page.id \(thisTier.idDirection))
            UNION ALL
            (SELECT \(Self.assetColumns), later_page.sort_key, (SELECT found FROM later_found) FROM later_page JOIN asset ON asset.id = later_page.id
                ORDER BY later_page.sort_key \(later.keyDirection), later_page.id \(later.idDirection))
            LIMIT \(sql.bind(query.limit))
            """, sql.values).rows
        let bound = settings.searchBounds.gatheredMatches
        // The branch of each row is its sort key: NULL in this tier's, the tier in the later
        // ones'. SQL does not promise UNION ALL's order; PostgreSQL's Append gives the first
        // branch's rows first when it runs one branch after the other (no parallel workers,
        // `searchSession`; no ORDER BY around it). Checked, not assumed: rows in another
        // order would give a mis-ordered page and a cursor that skips or repeats.
        let tierRows = Array(rows.prefix { $0.int64(Self.assetColumnCount) == nil })
        let laterRows = rows.dropFirst(tierRows.count)
        guard laterRows.allSatisfy({ $0.int64(Self.assetColumnCount) != nil }) else {
            throw RecordStoreError.database("""
                a relevance gather's rows came out of branch order (this tier's after the later tiers'): \
                the plan of its UNION ALL changed (parallel workers?)
                """)
        }
        guard (tierRows.first?.int(Self.assetColumnCount + 1) ?? 0) <= bound else { return nil }
        guard tierRows.count < query.limit, (laterRows.first?.int(Self.assetColumnCount + 1) ?? 0) <= bound else { return (tierRows, false) }
        return (tierRows + laterRows, true)
    }

    enum Plan { case walk, bitmap }

    /// Runs a step's statement under `plan`, of the plans a step may use, for the
    /// connection's session (a search connection): the walk (an index scan; no bitmap, and
    /// no sort, else the planner, misled by its estimates, reads every row of the workspace
    /// by another index and sorts them) or bitmaps only. The connection remembers which its
    /// session has, so that a step of the same plan sends its statement alone; another
    /// plan's SETs go in the statement's round trip (`PGConnection.query(after:_:_:)`), and
    /// the connection's plan changes only once PostgreSQL has applied them.
    private func query(_ plan: Plan, _ connection: PGConnection, _ sql: String, _ values: [any PGBindable]) throws -> PGResult {
        guard connection.searchPlan != plan else { return try connection.query(sql, values) }
        let result = try connection.query(after: Self.settingStatements(of: plan), sql, values)
        connection.searchPlan = plan
        return result
    }

    private static func settings(of plan: Plan) -> String {
        settingStatements(of: plan).joined(separator: "; ")
    }

    private static func settingStatements(of plan: Plan) -> [String] {
        switch plan {
        case .walk: ["SET enable_bitmapscan = off", "SET enable_sort = off", "SET enable_indexscan = on"]
        case .bitmap: ["SET enable_bitmapscan = on", "SET enable_sort = on", "SET enable_indexscan = off"]
        }
    }

    /// Tier by tier, each newest first, from the position's tier on; the later tiers at once
    /// when few rows match any of them (`page`).
    private func relevancePage(_ query: AssetQuery, _ text: SearchText, _ connection: PGConnection) throws
        -> [(asset: AssetRecord, position: AssetPosition)] {
        let conditions = TextConditions(text)
        var page: [(asset: AssetRecord, position: AssetPosition)] = []
        var startTier = 0
        var afterID: Int64?
        if case .relevance(let tier, let id)? = query.after {
            guard (0...2).contains(tier) else { throw RecordStoreError.database("relevance position with tier \(tier)") }
            startTier = tier
            afterID = id
        }
        for tier in startTier...2 where page.count < query.limit {
            guard conditions.tier(tier, SQLParameters()) != nil else { continue }
            let position: (SQLParameters) -> String? = { sql in
                tier == startTier ? afterID.map { "asset.id < \(sql.bind($0))" } : nil
            }
            let laterTiers = tier < 2 && conditions.fromTier(tier + 1, SQLParameters()) != nil
                ? LaterTiers(matched: { conditions.fromTier(tier + 1, $0)! }, tier: { conditions.tierOfRow($0) }) : nil
            let (rows, laterTiersRead) = try self.page(connection, PageQuery(
                workspaceID: query.workspaceID, position: position, text: { conditions.tier(tier, $0)! },
                filters: { Self.filters(query, $0) }, type: query.kind, key: nil, descending: true, limit: query.limit - page.count,
                laterTiers: laterTiers, hint: Self.hint(query, step: "tier \(tier)", text)))
            for row in rows {
                let asset = try Self.asset(from: row)
                // This tier's rows have no tier column (NULL); the later tiers' have theirs.
                let rowTier = laterTiersRead ? row.int(Self.assetColumnCount) ?? tier : tier
                page.append((asset, .relevance(tier: rowTier, id: asset.id)))
            }
            if laterTiersRead { break }
        }
        return page
    }

    /// Created, name or size: every match (tiers 0 to 2: a prefix or the substring) in that order.
    private func sortedPage(_ query: AssetQuery, _ connection: PGConnection) throws -> [(asset: AssetRecord, position: AssetPosition)] {
        let descending = query.order == .descending
        let (less, direction) = descending ? ("<", "DESC") : (">", "ASC")
        let key: String?
        switch query.sort {
        case .name: key = "(translate(coalesce(asset.file_name, ''), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') COLLATE \"C\")"
        case .size: key = "coalesce(asset.size, -1)"
        case .created, .relevance: key = nil
        }
        let position: (SQLParameters) -> String?
        switch query.after {
        case .created(let id)? where query.sort == .created:
            position = { "asset.id \(less) \($0.bind(id))" }
        case .name(let value, let id)? where query.sort == .name:
            position = { sql in
                let value = sql.bind(value)
                return "\(key!) \(less)= \(value) AND (\(key!) \(less) \(value) OR asset.id \(less) \(sql.bind(id)))"
            }
        case .size(let value, let id)? where query.sort == .size:
            position = { sql in
                let value = sql.bind(value)
                return "\(key!) \(less)= \(value) AND (\(key!) \(less) \(value) OR asset.id \(less) \(sql.bind(id)))"
            }
        case nil:
            position = { _ in nil }
        default:
            throw RecordStoreError.database("a \(String(describing: query.after)) position does not fit sort \(query.sort)")
        }
        let order = "asset.workspace_id \(direction), " + (key.map { "\($0) \(direction), " } ?? "") + "asset.id \(direction)"
        let rows: [PGRow]
        if let text = query.text {
            let conditions = TextConditions(text)
            guard conditions.either(SQLParameters()) != nil else { return [] }
                rows = try page(connection, PageQuery(
                workspaceID: query.workspaceID, position: position, text: { conditions.either($0)! },
                filters: { Self.filters(query, $0) }, type: query.kind, key: key, descending: descending, limit: query.limit, laterTiers: nil,
                hint: Self.hint(query, step: "sort", text))).rows
        } else {
            // No text: the filters alone, by the order's index (they match most rows).
            let sql = SQLParameters()
            let workspace = sql.bind(query.workspaceID)
            rows = try connection.query("""
                SELECT \(Self.assetColumns), \(key ?? "NULL") FROM asset WHERE \(Self.walking(workspace, query.kind))\(position(sql).map { " AND \($0)" } ?? "")
                AND \(Self.filters(query, sql)) ORDER BY \(order) LIMIT \(sql.bind(query.limit))
                """, sql.values).rows
        }
        return try rows.map { row in
            let asset = try Self.asset(from: row)
            let position: AssetPosition = switch query.sort {
            case .name: .name(key: row.string(Self.assetColumnCount) ?? "", id: asset.id)
            case .size: .size(key: row.int64(Self.assetColumnCount) ?? -1, id: asset.id)
            case .created, .relevance: .created(id: asset.id)
            }
            return (asset, position)
        }
    }

    /// What `SearchHints` remembers a page's step by: the query but its cursor and limit
    /// (later pages, and a page's rest after a tier, walk alike), and the step; the text
    /// last, so that the fields before it cannot run into each other.
    private static func hint(_ query: AssetQuery, step: String, _ text: SearchText) -> String {
        "\(query.workspaceID) \(query.kind?.rawValue ?? "-") \(query.status?.rawValue ?? "-") \(query.sort.rawValue) \(query.order.rawValue) \(step)\n\(text.text)"
    }

    /// The workspace of a walk down an index, as a range of one value, with the orders all
    /// beginning with the workspace: an equality would let the planner drop the workspace
    /// from the order (a constant) and walk the primary key for an order by id, reading
    /// every other workspace's newer rows when this one holds many of the table's. The
    /// range keeps it on the indexes that begin with the workspace. The GIN indexes get
    /// the equality (a range is a partial match there, which reads all the workspace's
    /// entries). With a type, the walk is over that type's rows only, by the sort indexes
    /// that have the type's first 6 characters after the workspace (migration v9): an
    /// equality there leaves the rest of the index in the walk's order.
    private static func walking(_ workspace: String, _ type: AssetKind?) -> String {
        "asset.workspace_id >= \(workspace) AND asset.workspace_id <= \(workspace)" + (type.map { " AND \(typePrefix($0))" } ?? "")
    }

    /// A type's first 6 characters, as the type-scoped indexes have them (migrations v5 and v9).
    private static func typePrefix(_ type: AssetKind) -> String {
        switch type {
        case .image: "left(asset.file_type, 6) = 'image/'"
        case .video: "left(asset.file_type, 6) = 'video/'"
        case .pdf: "left(asset.file_type, 6) = 'applic'"
        }
    }

    /// The conditions every listing has besides its workspace: not gone, and the filters.
    private static func filters(_ query: AssetQuery, _ sql: SQLParameters) -> String {
        var filters = "asset.status NOT IN ('deleting', 'deleted')"
        if let status = query.status { filters += " AND asset.status = \(sql.bind(status.rawValue))" }
        // The first 6 characters as the GIN indexes have them (migration v5), so that the
        // index narrows a search by type too: said again for PDFs.
        switch query.kind {
        case .image?: filters += " AND \(typePrefix(.image))"
        case .video?: filters += " AND \(typePrefix(.video))"
        case .pdf?: filters += " AND asset.file_type = 'application/pdf' AND \(typePrefix(.pdf))"
        case nil: break
        }
        return filters
    }
}

/// The parameters of a statement being written: `bind` appends a value and answers its `$n`.
final class SQLParameters {
    private(set) var values: [any PGBindable] = []
    /// The statement is a gather, and v10's index of the joined text is there: a substring
    /// is searched through it (`TextConditions.substring`). Walks test the plain LIKE.
    var joinedText = false

    func bind(_ value: any PGBindable) -> String {
        values.append(value)
        return "$\(values.count)"
    }
}
