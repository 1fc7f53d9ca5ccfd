import Foundation

// Titles, tags and the listing on PostgreSQL, with the results of SQLiteRecordStore+search.swift
// (`AssetQuery` and `SearchText` say what they are) over migration "v2: titles, tags and
// search": the `search_words` tsvector (the words of file name, title and tags, case and
// accents folded by unaccent) for tiers 0 and 1, to_tsquery prefixes (`:*`) for tier 1, and
// LIKE over the case-folded texts under a pg_trgm index for tier 2. Every value is a bound
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
            try pool.with { connection in
                if query.sort == .relevance {
                    guard let text = query.text else { return [] }
                    return try relevancePage(query, text, connection)
                }
                return try sortedPage(query, connection)
            }
        }
    }

    /// The case-folded texts that tier 2 searches, as the trigram index has them.
    static let searchedText = "lower(coalesce(asset.file_name, '') || E'\\n' || coalesce(asset.title, '') || E'\\n' || asset.tags)"

    /// The conditions of a text's tiers: every word whole, every word a prefix, the substring.
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

        /// Tier 0 or 1: a bare `@@` that the GIN index serves, on the words' tsquery. The call
        /// is immutable: a custom plan folds it into a constant, whose selectivity then picks
        /// the GIN index (a rare word) or the id order (a common one). It is NULL when
        /// PostgreSQL finds no word in them: no row matches, and `excluding` excludes none.
        /// `once`: the tsquery an InitPlan instead, which the sorted pages' OR with the
        /// substring plans better (measured at 100,000 assets: 5.8 against 126 ms for
        /// q=beach&type=video&sort=size).
        func words(prefix: Bool, once: Bool = false, _ sql: SQLParameters) -> String? {
            words.map {
                once ? "asset.search_words @@ (SELECT assetd_query(\(sql.bind($0)), \(prefix)))"
                     : "asset.search_words @@ assetd_query(\(sql.bind($0)), \(prefix))"
            }
        }

        /// An earlier tier left out: its tsquery an InitPlan (`(SELECT ...)`), built once a
        /// statement even in a generic plan, never once a row.
        func excluding(prefix: Bool, _ sql: SQLParameters) -> String? {
            words.map { "NOT coalesce(asset.search_words @@ (SELECT assetd_query(\(sql.bind($0)), \(prefix))), false)" }
        }

        func substring(_ sql: SQLParameters) -> String? {
            substring.map { "\(PostgresRecordStore.searchedText) LIKE '%' || lower(\(sql.bind($0))) || '%'" }
        }

        /// What tier `tier` matches, leaving out the tiers before it; nil when it cannot match.
        func tier(_ tier: Int, _ sql: SQLParameters) -> String? {
            switch tier {
            case 0: return words(prefix: false, sql)
            case 1:
                guard let prefix = words(prefix: true, sql), let exact = excluding(prefix: false, sql) else { return nil }
                return "\(prefix) AND \(exact)"
            case 2:
                guard let substring = substring(sql) else { return nil }
                return excluding(prefix: true, sql).map { "\(substring) AND \($0)" } ?? substring
            default: return nil
            }
        }
    }

    /// Tier by tier, each newest first, from the position's tier on.
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
            let sql = SQLParameters()
            guard let match = conditions.tier(tier, sql) else { continue }
            var wheres = [Self.filters(query, sql), match]
            if tier == startTier, let afterID { wheres.append("asset.id < \(sql.bind(afterID))") }
            let statement = """
                SELECT \(Self.assetColumns) FROM asset WHERE \(wheres.joined(separator: " AND "))
                ORDER BY asset.id DESC LIMIT \(sql.bind(query.limit - page.count))
                """
            for row in try connection.query(statement, sql.values).rows {
                let asset = try Self.asset(from: row)
                page.append((asset, .relevance(tier: tier, id: asset.id)))
            }
        }
        return page
    }

    /// Created, name or size: every match (tiers 0 to 2: a prefix or the substring) in that order.
    private func sortedPage(_ query: AssetQuery, _ connection: PGConnection) throws -> [(asset: AssetRecord, position: AssetPosition)] {
        let sql = SQLParameters()
        var wheres = [Self.filters(query, sql)]
        if let text = query.text {
            let conditions = TextConditions(text)
            // A NULL tsquery leaves the OR to the substring (NULL OR true is true).
            let either = [conditions.words(prefix: true, once: true, sql), conditions.substring(sql)].compactMap { $0 }
            guard !either.isEmpty else { return [] }
            wheres.append("(" + either.joined(separator: " OR ") + ")")
        }
        let descending = query.order == .descending
        let (less, direction) = descending ? ("<", "DESC") : (">", "ASC")
        let key: String?
        switch query.sort {
        case .name: key = "(translate(coalesce(asset.file_name, ''), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') COLLATE \"C\")"
        case .size: key = "coalesce(asset.size, -1)"
        case .created, .relevance: key = nil
        }
        switch query.after {
        case .created(let id)? where query.sort == .created:
            wheres.append("asset.id \(less) \(sql.bind(id))")
        case .name(let value, let id)? where query.sort == .name:
            let value = sql.bind(value)
            wheres.append("\(key!) \(less)= \(value) AND (\(key!) \(less) \(value) OR asset.id \(less) \(sql.bind(id)))")
        case .size(let value, let id)? where query.sort == .size:
            let value = sql.bind(value)
            wheres.append("\(key!) \(less)= \(value) AND (\(key!) \(less) \(value) OR asset.id \(less) \(sql.bind(id)))")
        case nil:
            break
        default:
            throw RecordStoreError.database("a \(String(describing: query.after)) position does not fit sort \(query.sort)")
        }
        let order = key.map { "\($0) \(direction), asset.id \(direction)" } ?? "asset.id \(direction)"
        let statement = """
            SELECT \(Self.assetColumns), \(key ?? "NULL") FROM asset WHERE \(wheres.joined(separator: " AND "))
            ORDER BY \(order) LIMIT \(sql.bind(query.limit))
            """
        return try connection.query(statement, sql.values).rows.map { row in
            let asset = try Self.asset(from: row)
            let position: AssetPosition = switch query.sort {
            case .name: .name(key: row.string(Self.assetColumnCount) ?? "", id: asset.id)
            case .size: .size(key: row.int64(Self.assetColumnCount) ?? -1, id: asset.id)
            case .created, .relevance: .created(id: asset.id)
            }
            return (asset, position)
        }
    }

    /// The conditions every listing has: the workspace, not gone, and the filters.
    private static func filters(_ query: AssetQuery, _ sql: SQLParameters) -> String {
        var filters = "asset.workspace_id = \(sql.bind(query.workspaceID)) AND asset.status NOT IN ('deleting', 'deleted')"
        if let status = query.status { filters += " AND asset.status = \(sql.bind(status.rawValue))" }
        switch query.kind {
        case .image?: filters += " AND left(asset.file_type, 6) = 'image/'"
        case .video?: filters += " AND left(asset.file_type, 6) = 'video/'"
        case .pdf?: filters += " AND asset.file_type = 'application/pdf'"
        case nil: break
        }
        return filters
    }
}

/// The parameters of a statement being written: `bind` appends a value and answers its `$n`.
final class SQLParameters {
    private(set) var values: [any PGBindable] = []

    func bind(_ value: any PGBindable) -> String {
        values.append(value)
        return "$\(values.count)"
    }
}
