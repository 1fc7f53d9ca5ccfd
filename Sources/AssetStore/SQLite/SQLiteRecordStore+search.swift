import Foundation
import GRDB
internal import GRDBSQLite
import Glibc

// Titles, tags and the listing: filters, sorts, keyset pages, and search over the FTS5
// tables of migrations v7 and v10 (asset_words, asset_trigrams, scoped to a workspace).
// `AssetQuery` and `SearchText` say what the results are; this file says how SQLite finds them.
extension SQLiteRecordStore {
    public func describeAsset(id: Int64, workspaceID: Int64, title: FieldEdit<String?>, tags: FieldEdit<[String]>) throws -> AssetRecord? {
        try run {
            try pool.write { db in
                var assignments: [String] = []
                var arguments: StatementArguments = []
                if case .set(let value) = title {
                    assignments.append("title = ?")
                    arguments += [value]
                }
                if case .set(let value) = tags {
                    assignments.append("tags = ?")
                    arguments += [Self.storedText(of: value)]
                }
                arguments += [id, workspaceID]
                let set = assignments.isEmpty ? "id = id" : assignments.joined(separator: ", ")
                // updated_at is the clock of status changes (the repairs read it): a label
                // is not one.
                try db.execute(sql: "UPDATE asset SET \(set) WHERE id = ? AND workspace_id = ? AND status NOT IN ('deleting', 'deleted')",
                               arguments: arguments)
                guard db.changesCount == 1, let asset = try Self.currentAsset(db, id: id) else { return nil }
                // Search indexes hold titles and tags: a ready asset's change of them is an
                // event (asset.updated), in this transaction. A pending asset's asset.ready
                // will carry them.
                if asset.status == .ready, title != .keep || tags != .keep {
                    try Self.recordEvent(db, .assetUpdated, asset: asset, now: Date())
                }
                return asset
            }
        }
    }

    public func searchAssets(_ query: AssetQuery) throws -> [(asset: AssetRecord, position: AssetPosition)] {
        try run {
            try pool.read { db in
                try withDeadline(db) {
                    if query.sort == .relevance {
                        guard let text = query.text else { return [] }
                        return try relevancePage(query, text, db)
                    }
                    return try sortedPage(query, db)
                }
            }
        }
    }

    // MARK: - A deadline for the listing's statements

    /// Runs `body` with SQLite's progress handler checking, every 1,000 virtual machine
    /// steps, that `statementTimeout` (ASSETD_DATABASE_STATEMENT_TIMEOUT) has not passed
    /// since it began: past it, the running statement stops (SQLITE_INTERRUPT) and the
    /// request gets 503, as a PostgreSQL statement timeout does, instead of holding a
    /// reader. The whole listing (its probes and tiers) shares the one deadline.
    private func withDeadline<T>(_ db: GRDB.Database, _ body: () throws -> T) throws -> T {
        guard let timeout = statementTimeout else { return try body() }
        let nanoseconds = UInt64(timeout.components.seconds) * 1_000_000_000
            + UInt64(timeout.components.attoseconds / 1_000_000_000)
        let deadline = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
        deadline.initialize(to: monotonicNanoseconds() &+ nanoseconds)
        let connection = db.sqliteConnection
        sqlite3_progress_handler(connection, 1000, { context in
            monotonicNanoseconds() >= context!.load(as: UInt64.self) ? 1 : 0
        }, deadline)
        defer {
            sqlite3_progress_handler(connection, 0, nil, nil)
            deadline.deallocate()
        }
        do {
            return try body()
        } catch let error as DatabaseError where error.resultCode == .SQLITE_INTERRUPT {
            throw RecordStoreError.unavailable(
                "database: the listing ran past ASSETD_DATABASE_STATEMENT_TIMEOUT (\(nanoseconds / 1_000_000) ms) and was stopped")
        }
    }

    // MARK: - Relevance: tier by tier, each newest first

    /// Each tier is one FTS5 scan in descending rowid order, joined to its asset and
    /// stopped at the page's end, so a page costs about its own rows, whatever the
    /// number of matches. A tier leaves out the rows of the tiers before it.
    private func relevancePage(_ query: AssetQuery, _ text: SearchText, _ db: GRDB.Database) throws -> [(asset: AssetRecord, position: AssetPosition)] {
        let fts = FTSQuery(text, workspaceID: query.workspaceID, kind: query.kind)
        var page: [(asset: AssetRecord, position: AssetPosition)] = []
        var startTier = 0
        var afterID: Int64?
        if case .relevance(let tier, let id)? = query.after {
            guard (0...2).contains(tier) else { throw RecordStoreError.database("relevance position with tier \(tier)") }
            startTier = tier
            afterID = id
        }
        // From the first tier on, a tier that ends before the page does has listed every
        // one of its rows that the filters keep: what the next tiers leave out is then
        // these ids (as a JSON array to json_each), not the earlier tiers' FTS5 queries
        // run again. A row of an earlier tier that the filters drop, they drop again.
        var listed: [Int64]? = startTier == 0 && afterID == nil ? [] : nil
        for tier in startTier...2 where page.count < query.limit {
            guard let (table, match, exclusion) = fts.tier(tier) else { continue }
            // FTS5 reads a rare text's lists about twice as fast in rowid order as in
            // descending order: a tier without a prefix past the indexed 1-3 characters
            // (whose merge a probe would pay twice) is first read ascending, up to
            // `smallTier + 1` rowids; when that is all of it, its rows are read by id.
            var small: [Int64]?
            if fts.readsCheaplyAscending(tier) {
                let rowids = try Int64.fetchAll(db.cachedStatement(sql: "SELECT rowid FROM \(table)(?) LIMIT ?"),
                                                arguments: [match, Self.smallTier + 1])
                if rowids.count <= Self.smallTier { small = rowids }
            }
            let id = small == nil ? "m.rowid" : "m.value"
            var sql: String
            var arguments: StatementArguments
            if let small {
                sql = "SELECT \(Self.assetColumns) FROM json_each(?) AS m CROSS JOIN asset ON asset.id = m.value WHERE "
                arguments = ["[" + small.map(String.init).joined(separator: ",") + "]"]
            } else {
                sql = "SELECT \(Self.assetColumns) FROM \(table)(?) AS m CROSS JOIN asset ON asset.id = m.rowid WHERE "
                arguments = [match]
            }
            if tier == startTier, let afterID {
                sql += "\(id) < ? AND "
                arguments += [afterID]
            }
            if let listed, exclusion != nil {
                sql += "\(id) NOT IN (SELECT value FROM json_each(?)) AND "
                arguments += ["[" + listed.map(String.init).joined(separator: ",") + "]"]
            } else if let (excludedTable, excludedMatch) = exclusion {
                sql += "\(id) NOT IN (SELECT rowid FROM \(excludedTable)(?)) AND "
                arguments += [excludedMatch]
            }
            let filters = Self.filters(query)
            sql += filters.sql + (small == nil ? " ORDER BY m.rowid DESC LIMIT ?" : " ORDER BY asset.id DESC LIMIT ?")
            arguments += filters.arguments
            arguments += [query.limit - page.count]
            for row in try Row.fetchAll(db.cachedStatement(sql: sql), arguments: arguments) {
                let asset = try Self.asset(from: row)
                page.append((asset, .relevance(tier: tier, id: asset.id)))
                listed?.append(asset.id)
            }
        }
        return page
    }

    /// Up to this many rowids, a relevance tier is read ascending and then by id.
    static let smallTier = 64

    // MARK: - Created, name, size: one index scan from the position

    private func sortedPage(_ query: AssetQuery, _ db: GRDB.Database) throws -> [(asset: AssetRecord, position: AssetPosition)] {
        let filters = Self.filters(query)
        var conditions = [filters.sql]
        var arguments: StatementArguments = []
        var with = ""
        var from = "asset"
        // With a type too: the kind's sort indexes (migration v11) hold that kind's rows only.
        if let text = query.text, let matcher = ASCIIMatcher(text),
           let page = try walkedPage(query, matcher, filters, db) {
            return page
        }
        if let text = query.text {
            let fts = FTSQuery(text, workspaceID: query.workspaceID, kind: query.kind)
            var sets: [(table: String, match: String)] = []
            // Both sets, always: the trigram table folds case but not accents, so `cafe`
            // begins a word of `Café.pdf` without being a substring of it.
            if let prefix = fts.prefix { sets.append(("asset_words", prefix)) }
            if let substring = fts.substring { sets.append(("asset_trigrams", substring)) }
            guard !sets.isEmpty else { return [] }
            // Few matches: read them and sort them. Many: walk the sort index and keep the
            // matches, which then fill a page soon (unless a filter is selective too). Each
            // set's first `fewMatches + 1` rowids tell which, so that a rare word does not
            // walk the whole workspace; when they are all, they are the matches, handed to
            // the query as a JSON array rather than searched for again.
            var matched = Set<Int64>()
            var few = true
            for set in sets {
                let probe = "SELECT rowid FROM \(set.table)(?) LIMIT ?"
                let rowids = try Int64.fetchAll(db.cachedStatement(sql: probe), arguments: [set.match, Self.fewMatches + 1])
                guard rowids.count <= Self.fewMatches else { few = false; break }
                matched.formUnion(rowids)
            }
            if few {
                with = "WITH matched(id) AS MATERIALIZED (SELECT value FROM json_each(?)) "
                from = "matched CROSS JOIN asset ON asset.id = matched.id"
                arguments += ["[" + matched.map(String.init).joined(separator: ",") + "]"]
                arguments += filters.arguments
            } else {
                arguments += filters.arguments
                // UNION ALL: IN makes a set of it anyway (UNION would build a second one first).
                let selects = sets.map { "SELECT rowid FROM \($0.table)(?)" }
                conditions.append("asset.id IN (\(selects.joined(separator: " UNION ALL ")))")
                arguments += StatementArguments(sets.map(\.match))
            }
        } else {
            arguments += filters.arguments
        }
        let order = try Self.sortOrder(query)
        conditions += order.conditions
        arguments += order.arguments
        let sql = """
            \(with)SELECT \(Self.assetColumns), \(order.key) FROM \(from) WHERE \(conditions.joined(separator: " AND ")) \
            ORDER BY \(order.orderBy) LIMIT ?
            """
        arguments += [query.limit]
        // Cached: the SQL depends only on the kind of query (filters, sort, order, which
        // sets), never on the values, so there are few of them, each prepared once a connection.
        return try Row.fetchAll(db.cachedStatement(sql: sql), arguments: arguments).map { row in
            let asset = try Self.asset(from: row)
            return (asset, Self.position(of: asset, row, query.sort))
        }
    }

    /// The sort key's SQL (NULL for created), the ORDER BY, and the conditions that start
    /// the page after `query.after`.
    private static func sortOrder(_ query: AssetQuery) throws
        -> (key: String, orderBy: String, conditions: [String], arguments: StatementArguments) {
        let descending = query.order == .descending
        let (less, direction) = descending ? ("<", "DESC") : (">", "ASC")
        let key: String?
        switch query.sort {
        case .name: key = "lower(coalesce(asset.file_name, ''))"
        case .size: key = "coalesce(asset.size, -1)"
        case .created, .relevance: key = nil
        }
        var conditions: [String] = []
        var arguments: StatementArguments = []
        // `key <= ? AND (key < ? OR id < ?)`: the same as the row value `(key, id) < (?, ?)`,
        // written so that SQLite seeks the expression index rather than scans it.
        switch query.after {
        case .created(let id)? where query.sort == .created:
            conditions.append("asset.id \(less) ?")
            arguments += [id]
        case .name(let value, let id)? where query.sort == .name:
            conditions.append("\(key!) \(less)= ? AND (\(key!) \(less) ? OR asset.id \(less) ?)")
            arguments += [value, value, id]
        case .size(let value, let id)? where query.sort == .size:
            conditions.append("\(key!) \(less)= ? AND (\(key!) \(less) ? OR asset.id \(less) ?)")
            arguments += [value, value, id]
        case nil:
            break
        default:
            throw RecordStoreError.database("a \(String(describing: query.after)) position does not fit sort \(query.sort)")
        }
        let orderBy = key.map { "\($0) \(direction), asset.id \(direction)" } ?? "asset.id \(direction)"
        return (key ?? "NULL", orderBy, conditions, arguments)
    }

    /// The position of a row of `assetColumns` followed by the sort key.
    private static func position(of asset: AssetRecord, _ row: Row, _ sort: AssetSort) -> AssetPosition {
        let keyColumn = assetColumnCount
        return switch sort {
        case .name: .name(key: row[keyColumn], id: asset.id)
        case .size: .size(key: row[keyColumn], id: asset.id)
        case .created, .relevance: .created(id: asset.id)
        }
    }

    // MARK: - A sorted search over many matches: the sort index, each row tested

    /// A sorted search whose matches are common fills its page within a few rows of the
    /// sort order, while reading its FTS5 sets costs every match (every tenant's, for a
    /// prefix longer than the indexed 1-3 characters: FTS5 merges the whole lists of the
    /// prefix's terms before the AND with the scope). For a text of ASCII only, this walks
    /// the sort index from the position (with a type, the kind's index of migration v11)
    /// and tests each row's own file name, title and tags (`ASCIIMatcher`, exact for
    /// ASCII), for at most `walkedRows` rows; it reads only the id and those three columns
    /// of each row, their bytes in place, and the page's rows whole at the end. nil when
    /// it cannot answer (a row with other characters, or the page not filled within the
    /// bound): the FTS5 plan then answers, with the same results.
    private func walkedPage(_ query: AssetQuery, _ matcher: ASCIIMatcher,
                            _ filters: (sql: String, arguments: StatementArguments),
                            _ db: GRDB.Database) throws -> [(asset: AssetRecord, position: AssetPosition)]? {
        let order = try Self.sortOrder(query)
        let conditions = [filters.sql] + order.conditions
        let statement = try db.cachedStatement(sql: """
            SELECT asset.id, asset.file_name, asset.title, asset.tags FROM asset WHERE \(conditions.joined(separator: " AND ")) \
            ORDER BY \(order.orderBy) LIMIT ?
            """)
        // Past `walkedRows`, on only while the matches seen so far promise a full page
        // within 4 times as many rows; never past that.
        let bound = 4 * walkedRows
        let ids = try Int64.fetchCursor(statement, arguments: filters.arguments + order.arguments + [bound])
        var matched: [Int64] = []
        var walked = 0
        var scratch = ASCIIMatcher.Scratch()
        while matched.count < query.limit, let id = try ids.next() {
            walked += 1
            // The cursor stands on the row: its columns 1-3 are read where SQLite holds them.
            guard let matches = matcher.matches(statement.sqliteStatement, columns: 1...3, &scratch) else { return nil }
            if matches { matched.append(id) }
            if walked >= walkedRows, walked * query.limit > matched.count * bound { return nil }
        }
        // A full page, or the workspace's end within the bound: every match after the
        // position was seen.
        guard matched.count == query.limit || walked < bound else { return nil }
        guard !matched.isEmpty else { return [] }
        // The page's rows whole, in the walk's order (json_each's key), in the same read
        // transaction as the walk.
        let rows = try Row.fetchAll(db.cachedStatement(sql: """
            SELECT \(Self.assetColumns), \(order.key) FROM json_each(?) AS m CROSS JOIN asset ON asset.id = m.value ORDER BY m.key
            """), arguments: ["[" + matched.map(String.init).joined(separator: ",") + "]"])
        return try rows.map { row in
            let asset = try Self.asset(from: row)
            return (asset, Self.position(of: asset, row, query.sort))
        }
    }

    /// Rows a sorted search walks before it reads its FTS5 sets instead, by default
    /// (up to 4 times as many while its matches promise a full page): matches of 1 row in
    /// 20 or more fill a page of 50 within it.
    static let defaultWalkedRows = 1000

    /// Up to this many matches a set, a search with a sort reads its matches and sorts them.
    static let fewMatches = 2000

    /// The number of columns in `assetColumns` (counted, so that a column added there
    /// cannot shift the sort key read after them).
    static let assetColumnCount = assetColumns.split(separator: ",").count

    /// The conditions every listing has: the workspace, not gone, and the filters.
    private static func filters(_ query: AssetQuery) -> (sql: String, arguments: StatementArguments) {
        var sql = "asset.workspace_id = ? AND asset.status NOT IN ('deleting', 'deleted')"
        var arguments: StatementArguments = [query.workspaceID]
        if let status = query.status {
            sql += " AND asset.status = ?"
            arguments += [status.rawValue]
        }
        if let kind = query.kind {
            // The expression of the kind indexes (migration v11), so that SQLite seeks them.
            sql += " AND \(kindLetter("asset.")) = '\(kindLetter(of: kind))'"
        }
        return (sql, arguments)
    }
}

/// The `scope` column of the FTS5 rows (migration v10), as SQL over the asset columns of
/// `row` (`new`, `old`, `asset`): `\u{E000}<workspace id in hex>\u{E000}` and the same
/// followed by the kind's letter. Migration v10's triggers and view are made from it and
/// `FTSQuery.scope` matches it: change neither without a migration that rebuilds both tables.
extension SQLiteRecordStore {
    static func searchScope(_ row: String) -> String {
        """
        char(57344) || printf('%x', \(row).workspace_id) || char(57344, 32, 57344) || printf('%x', \(row).workspace_id) || char(57344) || \
        \(kindLetter("\(row)."))
        """
    }

    /// The asset's kind as one letter (i, v, p, o for image, video, pdf, other), as SQL over
    /// the columns of `table` ("asset.", "new.", or "" in an index): the scope tokens of
    /// migration v10 and the kind indexes of v11 are made of it, and a type filter is
    /// written with it so that SQLite seeks those indexes. Change it only with a migration
    /// that rebuilds both.
    static func kindLetter(_ table: String) -> String {
        """
        CASE WHEN substr(\(table)file_type, 1, 6) = 'image/' THEN 'i' WHEN substr(\(table)file_type, 1, 6) = 'video/' THEN 'v' \
        WHEN \(table)file_type = 'application/pdf' THEN 'p' ELSE 'o' END
        """
    }

    static func kindLetter(of kind: AssetKind) -> String {
        switch kind {
        case .image: "i"
        case .video: "v"
        case .pdf: "p"
        }
    }
}

/// A `SearchText` as FTS5 queries of one workspace. Every word and the substring go in
/// double quotes (a quote inside doubled), so that nothing a user types is FTS5 syntax:
/// `AND`, `*`, `:`, `^`, `(`, `NEAR` are text like any other. Each query is
/// `scope : "<scope>" AND - scope : (<text>)`: the workspace's (and kind's) token in the
/// scope column, and the text in the other columns only, so that a user's text never
/// matches a scope token.
struct FTSQuery {
    /// Every word, whole: `"beach" "2024"`.
    let exact: String?
    /// Every word as a prefix: `"bea"* "20"*`.
    let prefix: String?
    /// The whole text as one trigram phrase: `"ch_20"`.
    let substring: String?
    /// The text's words, unquoted.
    let words: [String]

    init(_ text: SearchText, workspaceID: Int64, kind: AssetKind?) {
        let scope = Self.scope(workspaceID: workspaceID, kind: kind)
        let scoped = { (expression: String) in "scope : \(scope) AND - scope : (\(expression))" }
        self.words = text.words
        let words = text.words.map(Self.quoted)
        exact = words.isEmpty ? nil : scoped(words.joined(separator: " "))
        prefix = words.isEmpty ? nil : scoped(words.map { $0 + "*" }.joined(separator: " "))
        // FTS5 reads its query up to a NUL: a text with one cannot be quoted, and matches
        // as words only (the routes refuse control characters before this).
        substring = text.substring.flatMap { $0.unicodeScalars.contains("\u{0}") ? nil : scoped(Self.quoted($0)) }
    }

    /// The scope token as a phrase (SQLiteRecordStore.searchScope makes the indexed ones).
    static func scope(workspaceID: Int64, kind: AssetKind?) -> String {
        let letter = kind.map(SQLiteRecordStore.kindLetter(of:)) ?? ""
        return "\"\u{E000}\(String(UInt64(bitPattern: workspaceID), radix: 16))\u{E000}\(letter)\""
    }

    /// By scalars, not characters: a quote followed by a combining mark is one Character
    /// that is not `"`, and must be doubled all the same.
    static func quoted(_ text: String) -> String {
        var quoted = String.UnicodeScalarView()
        quoted.append("\"")
        for scalar in text.unicodeScalars {
            quoted.append(scalar)
            if scalar == "\"" { quoted.append(scalar) }
        }
        quoted.append("\"")
        return String(quoted)
    }

    /// Whether a tier's query has no prefix past the indexed 1-3 characters, whose
    /// merge of every term it begins FTS5 pays whichever way it reads.
    func readsCheaplyAscending(_ tier: Int) -> Bool {
        tier != 1 || longestPrefix <= 3
    }

    /// The tier's query has a prefix past the indexed 1-3 characters (in characters, as
    /// FTS5 counts them).
    var longestPrefix: Int { words.map(\.unicodeScalars.count).max() ?? 0 }

    /// The table and match of a tier, and what it leaves out (the tiers before it); nil
    /// when the text cannot match in that tier.
    func tier(_ tier: Int) -> (table: String, match: String, exclusion: (table: String, match: String)?)? {
        switch tier {
        case 0: exact.map { ("asset_words", $0, nil) }
        case 1: prefix.map { ("asset_words", $0, exact.map { ("asset_words", $0) }) }
        case 2: substring.map { ("asset_trigrams", $0, prefix.map { ("asset_words", $0) }) }
        default: nil
        }
    }
}

/// `SearchText`'s matching for a text of ASCII only, to test one row without FTS5, exact
/// for rows of ASCII and the accented letters of Latin-1 (`À` to `ÿ` that have a base
/// letter): there unicode61's tokens are the runs of ASCII letters, digits and those
/// letters, folded to lower case and their base letter (`Café` is `cafe`;
/// `SearchText.words` splits the same way), and the trigram table's phrase of the text
/// matches where a column holds the text with ASCII case folded (an accented letter folds
/// to another accented letter, never to ASCII). A row matches when every word begins one
/// of its words (in any of the columns: tiers 0 and 1) or a column holds the substring
/// (tier 2). Tests/AssetStoreTests/SearchTests.swift compares it with the FTS5 tables,
/// and the table of base letters was checked letter by letter against SQLite 3.40's
/// unicode61 and trigram tokenizers.
struct ASCIIMatcher {
    let words: [[UInt8]]
    let substring: [UInt8]?

    /// nil for a text with other characters, or one that matches nothing.
    init?(_ text: SearchText) {
        guard text.text.utf8.allSatisfy({ $0 < 0x80 }) else { return nil }
        words = text.words.map { Array($0.utf8).map(Self.lowered) }
        // As FTSQuery: a substring with a NUL does not match as one.
        substring = text.substring.flatMap { $0.utf8.contains(0) ? nil : Array($0.utf8).map(Self.lowered) }
        guard !words.isEmpty || substring != nil else { return nil }
    }

    /// Buffers for one row's folded columns, kept from row to row.
    struct Scratch {
        /// The columns as unicode61 folds them, a space between two.
        var words: [UInt8] = []
        /// The columns as the trigram tokenizer folds them, 0xFF between two.
        var trigrams: [UInt8] = []
    }

    /// Whether the row on which `statement` stands matches, from the UTF-8 of its text
    /// `columns` (NULL ones left out) where SQLite holds it. nil when a column holds a
    /// character outside ASCII and Latin-1's accented letters (the FTS5 tables must decide
    /// then).
    func matches(_ statement: OpaquePointer, columns: ClosedRange<Int32>, _ scratch: inout Scratch) -> Bool? {
        scratch.words.removeAll(keepingCapacity: true)
        scratch.trigrams.removeAll(keepingCapacity: true)
        for column in columns where sqlite3_column_type(statement, column) != SQLITE_NULL {
            // _text before _bytes, as SQLite asks (the length of the UTF-8 form).
            guard let text = sqlite3_column_text(statement, column) else { continue }
            let bytes = UnsafeBufferPointer(start: text, count: Int(sqlite3_column_bytes(statement, column)))
            guard Self.fold(bytes, into: &scratch) else { return nil }
        }
        return matches(scratch)
    }

    /// Whether folded columns match: every word begins one of their words, or one of
    /// them holds the substring.
    func matches(_ folded: Scratch) -> Bool {
        if !words.isEmpty, words.allSatisfy({ Self.hasWord(beginning: $0, in: folded.words) }) {
            return true
        }
        if let substring {
            return Self.contains(substring, in: folded.trigrams)
        }
        return false
    }

    static func lowered(_ byte: UInt8) -> UInt8 {
        (0x41...0x5A).contains(byte) ? byte | 0x20 : byte
    }

    /// Appends a column's UTF-8 as unicode61 folds it (an accented letter to its base
    /// letter) and as the trigram tokenizer does (an accented letter to 0xFF, which no
    /// ASCII text holds), each followed by a separator that no word or ASCII substring
    /// crosses (a space, 0xFF); false at any other character.
    static func fold(_ text: UnsafeBufferPointer<UInt8>, into scratch: inout Scratch) -> Bool {
        var index = 0
        while index < text.count {
            let byte = text[index]
            if byte < 0x80 {
                let lower = lowered(byte)
                scratch.words.append(lower)
                scratch.trigrams.append(lower)
                index += 1
            } else if byte == 0xC3, index + 1 < text.count, (0x80...0xBF).contains(text[index + 1]),
                      case let base = latin1Base[Int(text[index + 1] - 0x80)], base != 0 {
                // U+00C0 to U+00FF are C3 80 to C3 BF in UTF-8.
                scratch.words.append(base)
                scratch.trigrams.append(0xFF)
                index += 2
            } else {
                return false
            }
        }
        scratch.words.append(0x20)
        scratch.trigrams.append(0xFF)
        return true
    }

    /// The base letters of U+00C0 to U+00FF that unicode61 (remove_diacritics 2) folds to
    /// ASCII; 0 for the others (`×`, `÷`, `Æ`, `Ð`, `Ø`, `Þ`, `ß`, `æ`, `ð`, `ø`, `þ`).
    static let latin1Base: [UInt8] = Array("aaaaaa_ceeeeiiii_nooooo__uuuuy__aaaaaa_ceeeeiiii_nooooo__uuuuy_y".utf8)
        .map { $0 == UInt8(ascii: "_") ? 0 : $0 }

    static func isWordByte(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x61...0x7A).contains(byte)
    }

    /// Whether a token of `text` (folded) begins with `word`.
    static func hasWord(beginning word: [UInt8], in text: [UInt8]) -> Bool {
        guard word.count <= text.count else { return false }
        for start in 0...(text.count - word.count)
        where isWordByte(text[start]) && (start == 0 || !isWordByte(text[start - 1]))
            && text[start..<(start + word.count)].elementsEqual(word) {
            return true
        }
        return false
    }

    static func contains(_ needle: [UInt8], in text: [UInt8]) -> Bool {
        guard needle.count <= text.count else { return false }
        for start in 0...(text.count - needle.count) where text[start..<(start + needle.count)].elementsEqual(needle) {
            return true
        }
        return false
    }
}

/// CLOCK_MONOTONIC in nanoseconds (a free function: SQLite's progress handler is a C
/// callback, which captures nothing).
private func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}
