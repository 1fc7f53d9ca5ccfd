import Foundation
import GRDB
import Testing
@testable import AssetStore
import TestFiles

/// The search corpus, shared by every backend's tests (Tests/fixtures/search-corpus.json).
struct SearchCorpus: Decodable {
    struct Asset: Decodable {
        var workspace: Int64
        var fileName: String
        var fileType: String
        var size: Int64
        var title: String?
        var tags: [String]?
    }

    struct Search: Decodable {
        var q: String
        var type: String?
        var workspace: Int64?
        var expect: [String]
    }

    var assets: [Asset]
    var searches: [Search]
    var punctuation: String

    static func load() throws -> SearchCorpus {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("fixtures/search-corpus.json")
        return try JSONDecoder().decode(SearchCorpus.self, from: Data(contentsOf: url))
    }

    /// Creates the corpus's assets, ready, in order; their records by file name.
    @discardableResult
    func seed(_ store: any RecordStore) throws -> [String: AssetRecord] {
        var records: [String: AssetRecord] = [:]
        for asset in assets {
            let created = try store.createAsset(
                NewAsset(workspaceID: asset.workspace, fileType: asset.fileType, fileExtension: "bin", fileName: asset.fileName, size: asset.size),
                status: .ready, now: Date())
            let described = try #require(try store.describeAsset(
                id: created.id, workspaceID: asset.workspace, title: .set(asset.title), tags: .set(asset.tags ?? [])))
            records[asset.fileName] = described
        }
        return records
    }
}

extension SearchRecords {
    /// Every page of a query, followed to its end; the pages' sizes are `limit`.
    func allPages(_ query: AssetQuery, between: (Int) throws -> Void = { _ in }) throws -> [AssetRecord] {
        var query = query
        var all: [AssetRecord] = []
        for page in 0..<1000 {
            let results = try searchAssets(query)
            all += results.map(\.asset)
            guard results.count == query.limit, let last = results.last else { return all }
            query.after = last.position
            try between(page)
        }
        Issue.record("more than 1000 pages")
        return all
    }
}

/// The corpus and the listing's rules on every backend of `Backend.all`; what reaches into
/// SQLite's own tables (the migration, the bulk insert) on SQLite only.
struct SearchTests {
    let path = TestFiles.sqlitePath()
    func open() throws -> SQLiteRecordStore { try SQLiteRecordStore(path: path) }

    func query(_ workspace: Int64, _ q: String?, kind: AssetKind? = nil, sort: AssetSort? = nil, order: ListOrder = .descending,
               limit: Int = 50) -> AssetQuery {
        let text = q.flatMap(SearchText.init)
        return AssetQuery(workspaceID: workspace, text: text, kind: kind, sort: sort ?? (text == nil ? .created : .relevance),
                          order: order, limit: limit)
    }

    @Test(arguments: Backend.all) func theCorpusFindsWhatItExpects(_ backend: Backend) throws {
        let store = try backend.fresh().open()
        let corpus = try SearchCorpus.load()
        try corpus.seed(store)
        #expect(corpus.searches.count >= 30)
        for search in corpus.searches {
            let kind = try search.type.map { try #require(AssetKind(rawValue: $0)) }
            for limit in [50, 1, 2] {
                let found = try store.allPages(query(search.workspace ?? 1, search.q, kind: kind, limit: limit))
                #expect(found.map(\.fileName) == search.expect, "q=\(search.q) type=\(search.type ?? "-") limit=\(limit)")
            }
        }
    }

    /// Whatever a user types is text: no FTS5 syntax error, for any sort, and never another
    /// workspace's asset.
    @Test(arguments: Backend.all) func punctuationIsNeverSyntax(_ backend: Backend) throws {
        let store = try backend.fresh().open()
        let corpus = try SearchCorpus.load()
        try corpus.seed(store)
        var generator = SeededGenerator(seed: 19)
        let alphabet = Array(corpus.punctuation) + Array("beach cafe é\u{301}\"\"") + ["\u{0}", "\u{FFFF}", "🏖️"]
        for round in 0..<1500 {
            let length = Int.random(in: 1...24, using: &generator)
            let text = String((0..<length).map { _ in alphabet.randomElement(using: &generator)! })
            let sort: AssetSort = [.relevance, .name, .created, .size][round % 4]
            guard let search = SearchText(text) else { continue }
            let found = try store.searchAssets(AssetQuery(workspaceID: 1, text: search, sort: sort, limit: 50))
            #expect(found.allSatisfy { $0.asset.workspaceID == 1 }, "q=\(text.debugDescription)")
        }
        for keyword in ["AND", "OR", "NOT", "NEAR", "NEAR(a b)", "a:b", "{file_name}: x", "-x", "x*", "\"x\"*", "^x", "x + y"] {
            _ = try store.searchAssets(query(1, keyword))
        }
    }

    @Test(arguments: Backend.all) func sortsAndOrdersPageByPage(_ backend: Backend) throws {
        let store = try backend.fresh().open()
        let corpus = try SearchCorpus.load()
        try corpus.seed(store)
        let byName = ["beach_2024.jpg", "beaches.png", "Café.pdf", "chair_2023.png", "clip.mp4", "IMG_0042.JPG", "naïve résumé.pdf",
                      "report (final) [v2].pdf", "seabeach-panorama.jpg"]
        let bySize = ["naïve résumé.pdf", "Café.pdf", "report (final) [v2].pdf", "beaches.png", "chair_2023.png", "beach_2024.jpg",
                      "IMG_0042.JPG", "clip.mp4", "seabeach-panorama.jpg"]
        let created = corpus.assets.filter { $0.workspace == 1 }.map(\.fileName)
        for limit in [50, 1, 2, 4] {
            func names(_ sort: AssetSort, _ order: ListOrder, q: String? = nil) throws -> [String?] {
                try store.allPages(query(1, q, sort: sort, order: order, limit: limit)).map(\.fileName)
            }
            #expect(try names(.name, .ascending) == byName)
            #expect(try names(.name, .descending) == byName.reversed())
            #expect(try names(.size, .ascending) == bySize)
            #expect(try names(.size, .descending) == bySize.reversed())
            #expect(try names(.created, .ascending) == created)
            #expect(try names(.created, .descending) == created.reversed())
            // A search with a sort lists every tier's matches in that sort's order.
            #expect(try names(.name, .ascending, q: "bea") == ["beach_2024.jpg", "beaches.png", "clip.mp4", "seabeach-panorama.jpg"])
            #expect(try names(.size, .descending, q: "bea") == ["seabeach-panorama.jpg", "clip.mp4", "beach_2024.jpg", "beaches.png"])
            // Accents fold in a sorted search too: one ASCII word is not only a substring
            // (the trigram table folds case, not accents).
            #expect(try names(.name, .ascending, q: "cafe") == ["Café.pdf"])
            #expect(try names(.size, .ascending, q: "resume") == ["naïve résumé.pdf"])
        }
    }

    /// Equal keys (the same name, the same size) page by id, and a page never repeats or
    /// skips one, whatever the page size.
    @Test(arguments: Backend.all) func tiesPageById(_ backend: Backend) throws {
        let store = try backend.fresh().open()
        for i in 0..<7 {
            _ = try store.createAsset(NewAsset(workspaceID: 1, fileType: "image/png", fileExtension: "png",
                                               fileName: i % 2 == 0 ? "Same.png" : "same.png", size: 10), status: .ready, now: Date())
        }
        for sort in [AssetSort.name, .size, .created] {
            for order in [ListOrder.ascending, .descending] {
                let all = try store.allPages(query(1, nil, sort: sort, order: order, limit: 50)).map(\.id)
                #expect(all.count == 7)
                #expect(all == (order == .ascending ? all.sorted() : all.sorted(by: >)))
                for limit in 1...3 {
                    #expect(try store.allPages(query(1, nil, sort: sort, order: order, limit: limit)).map(\.id) == all)
                }
            }
        }
    }

    /// Assets added between pages neither shift a page nor repeat in it: the pages hold
    /// every asset there was at the start, once.
    @Test(arguments: Backend.all) func aCursorNeitherSkipsNorRepeatsWhileAssetsAreAdded(_ backend: Backend) throws {
        let store = try backend.fresh().open()
        func add(_ name: String, size: Int64) throws -> AssetRecord {
            try store.createAsset(NewAsset(workspaceID: 1, fileType: "image/jpeg", fileExtension: "jpg", fileName: name, size: size),
                                  status: .ready, now: Date())
        }
        var before: [Int64] = []
        for i in 0..<20 { before.append(try add("beach_\(i).jpg", size: Int64(i % 5)).id) }
        for i in 0..<5 { before.append(try add("seabeach_\(i).jpg", size: Int64(i)).id) }
        for (q, sort, order) in [(nil, AssetSort.created, ListOrder.descending), (nil, .created, .ascending), (nil, .name, .ascending),
                                 (nil, .size, .descending), ("beach", .relevance, .descending), ("bea", .name, .descending)] {
            var added = 0
            let seen = try store.allPages(query(1, q, sort: sort, order: order, limit: 3)) { page in
                // Before and after the position, and a name equal to one listed, for a few
                // pages (in ascending order, what is added goes ahead and is listed too).
                guard page < 4 else { return }
                _ = try add("beach_\(page).jpg", size: 2)
                _ = try add("aaa beach new.jpg", size: 0)
                _ = try add("zzz beach new.jpg", size: 100)
                added += 3
            }.map(\.id)
            #expect(Set(seen).count == seen.count, "repeated: q=\(q ?? "-") sort=\(sort) order=\(order)")
            #expect(Set(before).subtracting(seen).isEmpty, "skipped: q=\(q ?? "-") sort=\(sort) order=\(order)")
            #expect(added == 12)
        }
    }

    /// Past `fewMatches`, a search with a sort walks the sort index instead of sorting its
    /// matches: the same pages either way.
    @Test func manyMatchesSortTheSameAsFew() throws {
        let store = try open()
        let count = SQLiteRecordStore.fewMatches + 100
        try store.pool.write { db in
            for i in 0..<count {
                try db.execute(sql: """
                    INSERT INTO asset (workspace_id, key, file_name, file_type, size, status, created_at, updated_at)
                    VALUES (1, 'k' || ?, 'bulk_' || ?, 'image/png', ? % 97, 'ready', 0, 0)
                    """, arguments: [i, i, i])
            }
        }
        _ = try store.createAsset(NewAsset(workspaceID: 1, fileType: "image/png", fileExtension: "png", fileName: "bulk_rare_x", size: 5),
                                  status: .ready, now: Date())
        for q in ["bulk", "bulk_", "bulk 1", "rare", "ulk_rar"] {
            for sort in [AssetSort.name, .size] {
                let pages = try store.allPages(query(1, q, sort: sort, order: .ascending, limit: 500))
                let all = try store.allPages(query(1, nil, sort: sort, order: .ascending, limit: 200))
                let expected = all.filter { asset in
                    let name = asset.fileName!
                    switch q {
                    case "bulk", "bulk_": return true
                    case "bulk 1": return name.split(separator: "_").contains { $0.hasPrefix("1") }
                    default: return name.contains("rar")
                    }
                }
                #expect(pages.map(\.id) == expected.map(\.id), "q=\(q) sort=\(sort)")
            }
        }
    }

    /// A search on PostgreSQL pages by steps (`PostgresRecordStore.page`): walks of
    /// `firstWalkedRows` and `walkedRows` in order, up to `gatheredMatches` from the GIN
    /// indexes after a walk that met few, and the walk on. With small bounds every search
    /// here takes each step in some tier, sort or page (with the defaults, the walks and
    /// the gather): the same pages either way, in every tier and sort, and another
    /// workspace's as many matches never show.
    @Test(arguments: [PostgresRecordStore.SearchBounds(firstWalkedRows: 3, walkedRows: 5, gatheredMatches: 40),
                      PostgresRecordStore.SearchBounds(firstWalkedRows: 0, walkedRows: 0, gatheredMatches: 1000),
                      PostgresRecordStore.SearchBounds(firstWalkedRows: 0, walkedRows: 40, gatheredMatches: 0),
                      PostgresRecordStore.SearchBounds(firstWalkedRows: 120, walkedRows: 240, gatheredMatches: 100),
                      // The later tiers gathered at once (below: `mixa`), and too many for that.
                      PostgresRecordStore.SearchBounds(firstWalkedRows: 960, walkedRows: 960, gatheredMatches: 1000),
                      PostgresRecordStore.SearchBounds(firstWalkedRows: 960, walkedRows: 960, gatheredMatches: 10),
                      // The gathers without the workspace's key in their GIN scans (workspace
                      // 2 has as many matches, interleaved), with it, and without the hints.
                      PostgresRecordStore.SearchBounds(firstWalkedRows: 3, walkedRows: 5, gatheredMatches: 40, workspaceKey: .never),
                      PostgresRecordStore.SearchBounds(firstWalkedRows: 0, walkedRows: 40, gatheredMatches: 1000, workspaceKey: .never),
                      PostgresRecordStore.SearchBounds(firstWalkedRows: 960, walkedRows: 960, gatheredMatches: 1000, workspaceKey: .never),
                      PostgresRecordStore.SearchBounds(workspaceKey: .never),
                      PostgresRecordStore.SearchBounds(firstWalkedRows: 3, walkedRows: 5, gatheredMatches: 40, workspaceKey: .always,
                                                       gathersFirst: false),
                      PostgresRecordStore.SearchBounds()])
    func manyMatchesOnPostgresPageTheSameAsFew(_ bounds: PostgresRecordStore.SearchBounds) throws {
        guard Backend.all.contains(.postgres), case .postgres(let url) = try Backend.postgres.fresh() else { return }
        var settings = PostgresRecordStore.Settings()
        settings.searchBounds = bounds
        let store = try PostgresRecordStore(url: url, settings: settings)
        let count = 300
        try store.pool.with { connection in
            try connection.execute("""
                INSERT INTO asset (workspace_id, key, file_name, file_type, size, status, created_at, updated_at)
                SELECT w, 'k' || w || '-' || i, 'bulk_' || i,
                       (ARRAY['image/png', 'video/mp4', 'application/pdf', 'application/zip'])[i % 4 + 1], i % 97, 'ready', 0, 0
                FROM generate_series(0, \(count - 1)) AS i CROSS JOIN (VALUES (1), (2)) AS v(w) ORDER BY i, w
                """)
        }
        _ = try store.createAsset(NewAsset(workspaceID: 1, fileType: "image/png", fileExtension: "png", fileName: "bulk_rare_x", size: 5),
                                  status: .ready, now: Date())
        let newest = try store.allPages(query(1, nil, limit: 200))
        #expect(newest.count == count + 1)
        for q in ["bulk", "bul", "ulk_", "rare", "ulk_rar", "bulk 1", "bulk 29", "zzz"] {
            let expected = newest.filter { asset in
                let name = asset.fileName!
                switch q {
                case "bulk", "bul", "ulk_": return true
                case "bulk 1": return name.split(separator: "_").contains { $0.hasPrefix("1") }
                case "bulk 29": return name.split(separator: "_").contains { $0.hasPrefix("29") }
                case "zzz": return false
                default: return name.contains("rar")
                }
            }
            // By relevance, tier by tier (whole words, prefixes, the substring), newest first:
            // each of these falls in one tier, but for `bulk 1` and `bulk 29`, whose
            // `bulk_1` and `bulk_29` are whole.
            let wholeName = ["bulk 1": "bulk_1", "bulk 29": "bulk_29"][q]
            let whole = expected.filter { $0.fileName == wholeName }
            let rest = expected.filter { $0.fileName != wholeName }
            for limit in [7, 50] {
                let pages = try store.allPages(query(1, q, limit: limit))
                #expect(pages.map(\.id) == (whole + rest).map(\.id), "q=\(q) limit=\(limit)")
                // With a type, the walks go over that type's rows only (migration v9's
                // indexes): the same matches of that type, in the same order.
                for kind in AssetKind.allCases where limit == 7 {
                    let typed = try store.allPages(query(1, q, kind: kind, limit: limit))
                    #expect(typed.map(\.id) == (whole + rest).filter { Self.isOf(kind, $0) }.map(\.id), "q=\(q) type=\(kind)")
                }
                for sort in [AssetSort.name, .size, .created] {
                    for order in [ListOrder.ascending, .descending] {
                        let all = try store.allPages(query(1, nil, sort: sort, order: order, limit: 200))
                        let ids = Set(expected.map(\.id))
                        let sorted = try store.allPages(query(1, q, sort: sort, order: order, limit: limit))
                        #expect(sorted.map(\.id) == all.filter { ids.contains($0.id) }.map(\.id), "q=\(q) sort=\(sort) \(order) limit=\(limit)")
                        for kind in AssetKind.allCases where limit == 7 {
                            let typed = try store.allPages(query(1, q, kind: kind, sort: sort, order: order, limit: limit))
                            #expect(typed.map(\.id) == all.filter { ids.contains($0.id) && Self.isOf(kind, $0) }.map(\.id),
                                    "q=\(q) type=\(kind) sort=\(sort) \(order)")
                            if q == "bulk" {
                                let listed = try store.allPages(query(1, nil, kind: kind, sort: sort, order: order, limit: limit))
                                #expect(listed.map(\.id) == all.filter { Self.isOf(kind, $0) }.map(\.id), "type=\(kind) sort=\(sort) \(order)")
                            }
                        }
                    }
                }
            }
        }
        // The three tiers at once, a few rows each and interleaved (whole `mixa`, a prefix of
        // `mixab`, inside `zmixa`), cursors inside each tier: tier by tier, newest first,
        // whether the tiers' matches are gathered together or tier by tier.
        var tiers: [[Int64]] = [[], [], []]
        for i in 0..<8 {
            for (tier, stem) in ["mixa", "mixab", "zmixa"].enumerated() {
                tiers[tier].append(try store.createAsset(
                    NewAsset(workspaceID: 1, fileType: "image/png", fileExtension: "png", fileName: "\(stem)_\(i)", size: 5),
                    status: .ready, now: Date()).id)
            }
        }
        for limit in [1, 7, 9, 50] {
            #expect(try store.allPages(query(1, "mixa", limit: limit)).map(\.id) == tiers.flatMap { $0.reversed() }, "limit=\(limit)")
            #expect(try store.allPages(query(1, "mixa", kind: .video, limit: limit)).isEmpty)
        }
    }

    /// A workspace that holds most of the table (by the planner's statistics, after an
    /// ANALYZE) gathers without its key in the GIN scans (`WorkspaceKey.byShare`): the same
    /// pages as with the key, and the small workspace's matches never among them, nor the
    /// dominant one's among the small one's (which keeps its key). The same query again
    /// gathers at once (`SearchHints`), with the same pages.
    @Test func aDominantWorkspaceGathersWithoutItsKeyAndSeesItsOwnOnly() throws {
        guard Backend.all.contains(.postgres), case .postgres(let url) = try Backend.postgres.fresh() else { return }
        var keyed = PostgresRecordStore.Settings()
        keyed.searchBounds = PostgresRecordStore.SearchBounds(firstWalkedRows: 3, walkedRows: 5, gatheredMatches: 1000, workspaceKey: .always)
        let store = try PostgresRecordStore(url: url, settings: keyed)
        var settings = keyed
        settings.searchBounds.workspaceKey = .byShare
        let dominant = try PostgresRecordStore(url: url, settings: settings)
        // Workspace 1: 400 assets; workspace 2: 4, named alike, sharing heap pages.
        try store.pool.with { connection in
            try connection.execute("""
                INSERT INTO asset (workspace_id, key, file_name, file_type, size, status, created_at, updated_at, title)
                SELECT w, 'k' || w || '-' || i, 'trip_' || i || '_x', (ARRAY['image/png', 'video/mp4'])[i % 2 + 1], i % 97, 'ready', 0, 0,
                       CASE WHEN i % 3 = 0 THEN 'Trip to snow' END
                FROM generate_series(0, 399) AS i CROSS JOIN (VALUES (1), (2)) AS v(w) WHERE w = 1 OR i % 100 = 0 ORDER BY i, w
                """)
            _ = try connection.query("SELECT pg_stat_force_next_flush()")
            try connection.execute("ANALYZE asset")
        }
        let shares = try dominant.searchPool.with { connection throws -> (Double, Double) in
            (try dominant.searchHints.share(of: 1, connection), try dominant.searchHints.share(of: 2, connection))
        }
        #expect(shares.0 > PostgresRecordStore.keylessShare && shares.1 < PostgresRecordStore.keylessShare, "\(shares)")
        for q in ["trip to snow", "snow", "trip", "rip_1", "ip_3", "zzz", "sno"] {
            for workspace: Int64 in [1, 2] {
                for sort in [AssetSort.relevance, .size] {
                    for kind in [nil, AssetKind.video] {
                        let expected = try store.allPages(query(workspace, q, kind: kind, sort: sort, limit: 7))
                        #expect(expected.allSatisfy { $0.workspaceID == workspace })
                        for round in 0..<2 {
                            let pages = try dominant.allPages(query(workspace, q, kind: kind, sort: sort, limit: 7))
                            #expect(pages.map(\.id) == expected.map(\.id),
                                    "q=\(q) workspace=\(workspace) sort=\(sort) type=\(String(describing: kind)) round \(round)")
                        }
                    }
                }
            }
        }
        #expect(try dominant.searchPool.with { (try dominant.workspaceKeyed(1, $0), try dominant.workspaceKeyed(2, $0)) } == (false, true))
        #expect(try dominant.allPages(query(2, "snow", limit: 50)).count == 2)
        #expect(try dominant.allPages(query(1, "trip to snow", limit: 50)).count == 134)
    }

    /// `count` ready assets into `workspace`, their count of changed rows into the statistics
    /// now (pg_stat_user_tables), not up to a second later.
    static func insertCounted(_ store: PostgresRecordStore, _ workspace: Int64, _ count: Int) throws {
        try store.pool.with { connection in
            try connection.execute("""
                INSERT INTO asset (workspace_id, key, file_name, file_type, size, status, created_at, updated_at)
                SELECT \(workspace), 'k\(workspace)-' || i || '-' || random(), 'f_' || i, 'image/png', i, 'ready', 0, 0
                FROM generate_series(1, \(count)) AS i
                """)
            _ = try connection.query("SELECT pg_stat_force_next_flush()")
        }
    }

    /// A workspace's share is not trusted from statistics that more than `staleShare` of the
    /// table changed since (review13 P1): after an import into another workspace, the one
    /// that was most of the table keeps its key in the GIN scans until an ANALYZE.
    @Test func aShareFromStaleStatisticsIsNotTrusted() throws {
        guard Backend.all.contains(.postgres), case .postgres(let url) = try Backend.postgres.fresh() else { return }
        let store = try PostgresRecordStore(url: url)
        func insert(_ workspace: Int64, _ count: Int) throws { try Self.insertCounted(store, workspace, count) }
        func share(_ workspace: Int64) throws -> Double {
            let fresh = try PostgresRecordStore(url: url)
            return try fresh.searchPool.with { try fresh.searchHints.share(of: workspace, $0) }
        }
        try insert(1, 400)
        try insert(2, 5)
        try store.pool.with { try $0.execute("ANALYZE asset") }
        #expect(try share(1) > PostgresRecordStore.keylessShare)
        // 10 % of the table changed since: still trusted; more: not (0, the key kept).
        try insert(2, 30)
        #expect(try share(1) > PostgresRecordStore.keylessShare)
        try insert(2, 400)
        #expect(try share(1) == 0)
        try store.pool.with { try $0.execute("ANALYZE asset") }
        #expect(try share(1) > 0.4 && share(1) < PostgresRecordStore.keylessShare)
    }

    /// Review14 P1: the other workspaces' rows are counted, not taken from the last ANALYZE,
    /// whose statistics stay trusted until 10% of the table changed: rows added to another
    /// workspace since (here 35 beside 5, past a test-sized bound of 20) give the dominant
    /// workspace its key back at once, though its share by the statistics is unchanged.
    @Test func aDominantWorkspaceCountsTheOthersRowsSinceTheStatistics() throws {
        guard Backend.all.contains(.postgres), case .postgres(let url) = try Backend.postgres.fresh() else { return }
        var settings = PostgresRecordStore.Settings()
        settings.searchBounds.keylessOtherRows = 20
        let store = try PostgresRecordStore(url: url, settings: settings)
        func insert(_ workspace: Int64, _ count: Int) throws { try Self.insertCounted(store, workspace, count) }
        func keyed() throws -> (share: Double, keyed: Bool) {
            let fresh = try PostgresRecordStore(url: url, settings: settings)
            return try fresh.searchPool.with { (try fresh.searchHints.share(of: 1, $0), try fresh.workspaceKeyed(1, $0)) }
        }
        try insert(1, 400)
        try insert(2, 5)
        try store.pool.with { try $0.execute("ANALYZE asset") }
        let before = try keyed()
        #expect(before.share > PostgresRecordStore.keylessShare && !before.keyed, "\(before)")
        try insert(2, 35)
        let after = try keyed()
        #expect(after.share == before.share && after.keyed, "\(after)")
    }

    /// A workspace that holds half the table, or most of it beside 2,000 rows of others or
    /// more, keeps its key in the GIN scans (review13 P1): keyless, its searches' time would
    /// grow with the other workspaces' matches of its words, which its users could time.
    @Test func aWorkspaceOfHalfTheTableKeepsItsKey() throws {
        guard Backend.all.contains(.postgres), case .postgres(let url) = try Backend.postgres.fresh() else { return }
        let store = try PostgresRecordStore(url: url)
        try store.pool.with { connection in
            try connection.execute("""
                INSERT INTO asset (workspace_id, key, file_name, file_type, size, status, created_at, updated_at, title)
                SELECT w, 'k' || w || '-' || i, 'f_' || i, 'image/png', i, 'ready', 0, 0, 'qqfoo ' || i
                FROM generate_series(1, 400) AS i CROSS JOIN (VALUES (1), (2)) AS v(w) WHERE w = 1 OR i <= 300
                """)
            _ = try connection.query("SELECT pg_stat_force_next_flush()")
            try connection.execute("ANALYZE asset")
        }
        let (share, keyed) = try store.searchPool.with { connection in
            (try store.searchHints.share(of: 1, connection), try store.workspaceKeyed(1, connection))
        }
        #expect(share > 0.5 && keyed, "share \(share)")
        #expect(try store.searchPool.with { try store.workspaceKeyed(2, $0) })
        #expect(try store.allPages(query(1, "qqfoo", limit: 50)).count == 400)
    }

    /// The sparse-query hints (review13 P2): one workspace's stream of distinct texts forgets
    /// its own oldest only, never another workspace's; all of them together stay within
    /// `capacity`, each workspace keeping its newest.
    @Test func oneWorkspacesStreamOfQueriesForgetsOnlyItsOwnHints() {
        let hints = SearchHints()
        for index in 0..<10 { hints.remember("a\(index)", workspace: 1, gathered: index % 2 == 0) }
        for index in 0..<5_000 { hints.remember("b\(index)", workspace: 2, gathered: true) }
        #expect((0..<10).allSatisfy { hints.gathered("a\($0)", workspace: 1) == ($0 % 2 == 0) })
        #expect(hints.gathered("b4999", workspace: 2) == true)
        #expect(hints.gathered("b\(4_999 - SearchHints.workspaceCapacity + 1)", workspace: 2) == true)
        #expect(hints.gathered("b\(4_999 - SearchHints.workspaceCapacity)", workspace: 2) == nil)
        #expect(hints.gathered("a1", workspace: 2) == nil)
        for workspace: Int64 in 10..<20 {
            for index in 0..<200 { hints.remember("c\(index)", workspace: workspace, gathered: false) }
        }
        #expect(hints.remembered <= SearchHints.capacity)
        #expect((Int64(10)..<20).allSatisfy { hints.gathered("c199", workspace: $0) == false })
        hints.remember("c199", workspace: 19, gathered: nil)
        #expect(hints.gathered("c199", workspace: 19) == nil)
    }

    /// Forgetting a hint (a gather that found too many, or an expired one) leaves the others
    /// in their order: the workspace's oldest is still the one forgotten for a new one past
    /// `workspaceCapacity`, also after hints in between were forgotten and remembered again.
    @Test func forgottenHintsKeepTheOthersInTheirOrder() {
        let hints = SearchHints()
        let capacity = SearchHints.workspaceCapacity
        for index in 0..<capacity { hints.remember("h\(index)", workspace: 1, gathered: true) }
        // Forgotten, then remembered again: newest now.
        for index in stride(from: 0, to: capacity, by: 3) { hints.remember("h\(index)", workspace: 1, gathered: nil) }
        for index in stride(from: 0, to: capacity, by: 6) { hints.remember("h\(index)", workspace: 1, gathered: false) }
        // Renewed in place: keeps its place.
        hints.remember("h1", workspace: 1, gathered: false)
        #expect(hints.remembered == capacity - (capacity + 2) / 3 + (capacity + 5) / 6)
        // Fill up to the capacity, then 3 more: the 3 oldest still remembered go (h1, h2, h4).
        var added = 0
        while hints.remembered < capacity { hints.remember("n\(added)", workspace: 1, gathered: true); added += 1 }
        for index in 0..<3 { hints.remember("m\(index)", workspace: 1, gathered: true) }
        #expect(hints.remembered == capacity)
        #expect(hints.gathered("h1", workspace: 1) == nil && hints.gathered("h2", workspace: 1) == nil)
        #expect(hints.gathered("h4", workspace: 1) == nil && hints.gathered("h5", workspace: 1) == true)
        #expect(hints.gathered("h0", workspace: 1) == false && hints.gathered("m2", workspace: 1) == true)
        // Forgetting every one, one by one, empties it; a new one is then alone.
        for index in 0..<capacity { hints.remember("h\(index)", workspace: 1, gathered: nil) }
        for index in 0..<added { hints.remember("n\(index)", workspace: 1, gathered: nil) }
        for index in 0..<3 { hints.remember("m\(index)", workspace: 1, gathered: nil) }
        #expect(hints.remembered == 0)
        hints.remember("last", workspace: 1, gathered: true)
        #expect(hints.remembered == 1 && hints.gathered("last", workspace: 1) == true)
        // A workspace at its capacity, a new text each time: its order stays within twice
        // its hints (the oldest forgotten for each new one, their entries dropped).
        for index in 0..<10 * capacity { hints.remember("s\(index)", workspace: 3, gathered: true) }
        #expect(hints.orderCount(of: 3) <= 2 * capacity + 8, "\(hints.orderCount(of: 3))")
        #expect(hints.gathered("s\(10 * capacity - 1)", workspace: 3) == true && hints.gathered("s0", workspace: 3) == nil)
    }

    /// A substring with `_`, a space, `-` or `.` (`ch_be`) is gathered through migration
    /// v10's trigram index of the joined text, not v7's, whose trigrams of `ch_be` (`ch `,
    /// ` be`) every `beach` has: the gather's plan scans the joined index only. The same
    /// rows as the walk (which tests the LIKE alone), for texts with every joined character,
    /// LIKE's own `% _ \`, and the joiner `q` itself, which the joined text holds for each of
    /// them but which matches itself only (and `ǂ`, the joiner before); and the same without
    /// v10's index (dropped: the plain LIKE).
    @Test func substringsWithPunctuationAreGatheredThroughTheJoinedText() throws {
        guard Backend.all.contains(.postgres), case .postgres(let url) = try Backend.postgres.fresh() else { return }
        var walking = PostgresRecordStore.Settings()
        walking.searchBounds = PostgresRecordStore.SearchBounds(firstWalkedRows: 100_000, walkedRows: 100_000, gatheredMatches: 0)
        var gathering = PostgresRecordStore.Settings()
        gathering.searchBounds = PostgresRecordStore.SearchBounds(firstWalkedRows: 0, walkedRows: 0, gatheredMatches: 1000)
        let walker = try PostgresRecordStore(url: url, settings: walking)
        let names = ["beach_river", "beach river", "beach-river", "beach.river", "beachǂriver", "beach\nriver", "beach%river",
                     "beach\\_river", "beachriver", "reach_bend", "each_be", "ch_be", "beach__river", "beach_-river", "beachqriver", "chqbe", "BEACH_RIVER",
                     "x_y.z-w v", "beach", "river"]
        for (index, name) in names.enumerated() {
            for workspace: Int64 in [1, 2] {
                _ = try walker.createAsset(NewAsset(workspaceID: workspace, fileType: index % 2 == 0 ? "image/png" : "video/mp4",
                                                    fileExtension: "bin", fileName: name, size: Int64(index)), status: .ready, now: Date())
            }
        }
        // Many rows with `beach` that `ch_be` does not match, as the bench's.
        try walker.pool.with { connection in
            try connection.execute("""
                INSERT INTO asset (workspace_id, key, file_name, file_type, size, status, created_at, updated_at)
                SELECT 1, 'k-' || i, 'beach_' || i || '_river', 'image/png', i, 'ready', 0, 0 FROM generate_series(1, 300) AS i
                """)
            try connection.execute("ANALYZE asset")
        }
        let texts = ["ch_be", "h_r", "h r", "h-r", "h.r", "hǂr", "h%r", "h\\_r", "_", "__", "h__r", "h_-r", "ch_ri", "y.z-w v", "x_y",
                     "h\nr", "%", "\\", "ǂ", "ach_", "_river", "ch.be", "each_be",
                     "q", "hqr", "chqbe", "h\\qr", "Q_R"]
        func pages(_ store: PostgresRecordStore) throws -> [[String]] {
            try texts.flatMap { text in
                try [query(1, text, limit: 7), query(1, text, kind: .video, limit: 7), query(1, text, sort: .name, order: .ascending, limit: 7),
                     query(2, text, limit: 50)].map { try store.allPages($0).map { "\($0.workspaceID) \($0.fileName ?? "")" } }
            }
        }
        let walked = try pages(walker)
        #expect(walked[0] == ["1 ch_be", "1 each_be", "1 reach_bend"], "\(walked[0])")
        let gatherer = try PostgresRecordStore(url: url, settings: gathering)
        #expect(try gatherer.searchPool.with { try gatherer.searchHints.joinedTextIndexed($0) })
        #expect(try pages(gatherer) == walked)
        // The gather's plan (bitmaps, as a gather's session has them): the joined index, not v7's.
        let sql = SQLParameters()
        sql.joinedText = true
        let text = try #require(SearchText("ch_be"))
        let condition = try #require(PostgresRecordStore.TextConditions(text).substring(sql))
        let plain = try PGPool(url: url, settings: .init()).connect()
        try plain.execute("SET enable_seqscan = off; SET enable_indexscan = off")
        let plan = try plain.query("EXPLAIN SELECT asset.id FROM asset WHERE \(condition)", ["ch\\_be"])
            .rows.compactMap { $0.string(0) }.joined(separator: "\n")
        #expect(plan.contains("asset_joined_text_by_workspace") && !plan.contains("asset_search_text_by_workspace"), "\(plan)")
        // A start builds v10's index again when it is missing; without it, the LIKE alone: the same rows.
        try plain.execute("DROP INDEX asset_joined_text_by_workspace")
        let without = try PostgresRecordStore(url: url, settings: gathering)
        #expect(try plain.query("SELECT to_regclass('asset_joined_text_by_workspace') IS NOT NULL").first?.bool(0) == true)
        try plain.execute("DROP INDEX asset_joined_text_by_workspace")
        #expect(try without.searchPool.with { try without.searchHints.joinedTextIndexed($0) } == false)
        #expect(try pages(without) == walked)
    }

    /// v10's joined text keeps a substring's trigrams across its punctuation whatever the
    /// database's LC_CTYPE: `ch_be` joined is `chqbe`, whose trigrams `chq hqb qbe` pg_trgm
    /// keeps whole in the test database and, when the run has one (scripts/test's
    /// ASSETD_TEST_POSTGRES_C_URL), in a database with LC_CTYPE C, where a non-ASCII joiner
    /// (`ǂ`, review14 C1) is a word end as `_` is, so that the index kept v7's candidates.
    @Test func theJoinedTextKeepsItsTrigramsInEveryCtype() throws {
        #expect(PostgresRecordStore.joiner.unicodeScalars.allSatisfy { $0.isASCII && $0.properties.isLowercase })
        guard Backend.all.contains(.postgres), case .postgres(let url) = try Backend.postgres.fresh() else { return }
        func trigrams(_ connection: PGConnection, _ text: String) throws -> Set<String> {
            let array = try connection.query("SELECT public.show_trgm(\(PostgresRecordStore.joinedText(of: "$1::text")))::text", [text])
                .first?.string(0) ?? ""
            return Set(array.dropFirst().dropLast().split(separator: ",").map { String($0).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) })
        }
        let store = try PostgresRecordStore(url: url)
        let here = try store.pool.with { try trigrams($0, "ch_be") }
        #expect(here.isSuperset(of: ["chq", "hqb", "qbe"]), "\(here)")
        guard let cURL = ProcessInfo.processInfo.environment["ASSETD_TEST_POSTGRES_C_URL"], !cURL.isEmpty else { return }
        let connection = try PGPool(url: cURL, settings: .init()).connect()
        #expect(try connection.query("SHOW lc_ctype").first?.string(0) == "C")
        try connection.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
        #expect(try trigrams(connection, "ch_be").isSuperset(of: ["chq", "hqb", "qbe"]))
        let joined = try trigrams(connection, "chqbeqriqveqr")
        #expect(try trigrams(connection, "ch be-ri.ve\nr") == joined)
        // What this guards against: under C, `ǂ` splits the words as `_` does.
        let old = try connection.query("SELECT public.show_trgm('chǂbe')::text").first?.string(0) ?? ""
        #expect(old == #"{"  b","  c"," be"," ch","be ","ch "}"#, "\(old)")
    }

    static func isOf(_ kind: AssetKind, _ asset: AssetRecord) -> Bool {
        switch kind {
        case .image: asset.fileType.hasPrefix("image/")
        case .video: asset.fileType.hasPrefix("video/")
        case .pdf: asset.fileType == "application/pdf"
        }
    }

    /// Searches run on connections of their own, whose sessions keep the plan settings (and
    /// are read only); the pool's connections, which every other statement uses, keep
    /// PostgreSQL's defaults; a search connection's remembered plan is the one its session has.
    @Test func searchSettingsStayOnTheSearchConnections() throws {
        guard Backend.all.contains(.postgres), case .postgres(let url) = try Backend.postgres.fresh() else { return }
        var settings = PostgresRecordStore.Settings()
        settings.poolSize = 1
        settings.searches = 1
        let store = try PostgresRecordStore(url: url, settings: settings)
        let beach = try store.createAsset(NewAsset(workspaceID: 1, fileType: "video/mp4", fileExtension: "mp4", fileName: "beach_1", size: 5),
                                          status: .ready, now: Date())
        func shown(_ connection: PGConnection) throws -> [String?] {
            try ["enable_seqscan", "enable_sort", "enable_bitmapscan", "enable_indexscan", "default_transaction_read_only", "plan_cache_mode",
                 "enable_incremental_sort"]
                .map { try connection.query("SHOW \($0)").first?.string(0) }
        }
        for (q, sort) in [("beach", AssetSort.relevance), ("each", .size), ("beach", .name), ("zzz", .relevance)] {
            let found = try store.searchAssets(query(1, q, kind: .video, sort: sort)).map(\.asset.id)
            #expect(found == (q == "zzz" ? [] : [beach.id]), "q=\(q) sort=\(sort)")
            let (session, plan) = try store.searchPool.with { connection in (try shown(connection), connection.searchPlan) }
            #expect(session == ["off", plan == .walk ? "off" : "on", plan == .walk ? "off" : "on", plan == .walk ? "on" : "off", "on",
                                "force_generic_plan", "off"], "q=\(q) sort=\(sort)")
            #expect(try store.pool.with(shown) == ["on", "on", "on", "on", "off", "auto", "on"])
        }
        #expect(throws: (any Error).self) { try store.searchPool.with { try $0.execute("UPDATE asset SET title = 'x'") } }
        #expect(try store.asset(id: beach.id, workspaceID: 1)?.title == nil)
    }

    /// A sorted search tests the rows of the sort index one by one (ASCII text) before it
    /// reads its FTS5 sets: the same pages whether it walks none, a few or all the rows,
    /// for the corpus (whose non-ASCII names stop the walk) and an ASCII-only workspace.
    @Test func walkingTheSortIndexFindsWhatTheFTSTablesFind() throws {
        let corpus = try SearchCorpus.load()
        try corpus.seed(try open())
        let ascii: [(String, String, Int64, String?, [String])] = [
            ("BEACH.JPG", "image/jpeg", 10, nil, []), ("xbeach_y.png", "image/png", 20, "Trip to SNOW 2011", ["beach"]),
            ("a_beach-b.mp4", "video/mp4", 10, nil, ["tag3", "ch_ri"]), ("IMG_0042.JPG", "image/jpeg", 30, nil, []),
            ("img0042.pdf", "application/pdf", 5, "0042", []), ("report (final) [v2].pdf", "application/pdf", 30, nil, ["x\"y"]),
            ("beaches.mp4", "video/mp4", 0, "each", ["sea", "beach ball"]), ("riverbeach", "image/png", 7, nil, []),
            // Latin-1's accented letters: folded to their base letter as words, not as substrings.
            ("Plage_Été_BEACH.mp4", "video/mp4", 12, "Crème brûlée", ["café"]), ("naïve_beach.jpg", "image/jpeg", 9, nil, ["Ærø"]),
        ]
        let store = try open()
        for (name, type, size, title, tags) in ascii {
            let created = try store.createAsset(NewAsset(workspaceID: 3, fileType: type, fileExtension: "bin", fileName: name, size: size),
                                                status: .ready, now: Date())
            _ = try store.describeAsset(id: created.id, workspaceID: 3, title: .set(title), tags: .set(tags))
        }
        let stores = try [0, 2, 5].map { try SQLiteRecordStore(path: path, statementTimeout: nil, walkedRows: $0) }
        let texts = corpus.searches.map(\.q) + ["beach", "bea", "EACH", "ach_", "0042", "img 0042", "IMG_0042", "h_r", "x\"y",
                                                "snow 2011", "trip", "each", "[v2]", "ch_ri", "beach ball", "b",
                                                "ete", "creme", "cafe", "naive", "e_b", "ge_", "aro", "brul"]
        for workspace: Int64 in [1, 3] {
            for text in Set(texts) {
                for sort in [AssetSort.name, .size, .created] {
                    for order in [ListOrder.ascending, .descending] {
                        for (kind, limit) in [(nil, 50), (nil, 1), (AssetKind.video, 2), (AssetKind.image, 1), (AssetKind.pdf, 50)]
                            as [(AssetKind?, Int)] {
                            let q = query(workspace, text, kind: kind, sort: sort, order: order, limit: limit)
                            let walked = try store.allPages(q).map(\.id)
                            for other in stores {
                                #expect(try other.allPages(q).map(\.id) == walked,
                                        "ws=\(workspace) q=\(text) sort=\(sort) order=\(order) kind=\(String(describing: kind)) limit=\(limit) walked=\(other.walkedRows)")
                            }
                        }
                    }
                }
            }
        }
    }

    /// A sorted search with a type walks that kind's sort index (migration v11) and tests
    /// its rows, so that it never reads the FTS5 sets, whose prefix lists hold every
    /// tenant's matches. Shown with the FTS5 index emptied: the walk still finds every
    /// match, where the FTS5 plan would find none.
    @Test func aSortedSearchWithATypeWalksTheKindsIndex() throws {
        let store = try open()
        try bulkInsert(store, workspace: 1, count: 600, stem: "beach_walk")
        try bulkInsert(store, workspace: 2, count: 600, stem: "beach_walk")
        try store.pool.write { db in
            try db.execute(sql: "INSERT INTO asset_words (asset_words) VALUES ('delete-all')")
            try db.execute(sql: "INSERT INTO asset_trigrams (asset_trigrams) VALUES ('delete-all')")
        }
        for sort in [AssetSort.size, .name, .created] {
            let found = try store.allPages(query(1, "beach", kind: .video, sort: sort, order: .ascending, limit: 50))
            #expect(found.count == 200, "sort=\(sort)")
            #expect(found.allSatisfy { $0.workspaceID == 1 && $0.fileType == "video/mp4" }, "sort=\(sort)")
        }
        // The filters' kind expression is the indexes': SQLite seeks them.
        let kind = SQLiteRecordStore.kindLetter("asset.")
        for (order, index) in [("coalesce(asset.size, -1)", "asset_by_kind_size"), ("lower(coalesce(asset.file_name, ''))", "asset_by_kind_name"),
                               ("asset.id", "asset_by_kind")] {
            let details = try store.pool.read { db in
                try Row.fetchAll(db, sql: """
                    EXPLAIN QUERY PLAN SELECT asset.id FROM asset WHERE asset.workspace_id = 1 AND asset.status NOT IN ('deleting', 'deleted') \
                    AND \(kind) = 'v' ORDER BY \(order) DESC, asset.id DESC LIMIT 50
                    """).map { $0["detail"] as String }.joined(separator: "; ")
            }
            #expect(details.contains("USING INDEX \(index) ") && !details.contains("TEMP B-TREE"), "\(details)")
        }
    }

    @Test(arguments: Backend.all) func titlesAndTagsAreSearchedAndScoped(_ backend: Backend) throws {
        let store = try backend.fresh().open()
        let asset = try store.createAsset(NewAsset(workspaceID: 1, fileType: "image/jpeg", fileExtension: "jpg", fileName: "x.jpg", size: 1),
                                          status: .ready, now: Date())
        #expect(try store.describeAsset(id: asset.id, workspaceID: 2, title: .set("Sunset"), tags: .keep) == nil)
        let described = try #require(try store.describeAsset(id: asset.id, workspaceID: 1, title: .set("Sunset"), tags: .set(["Bretagne", "été"])))
        #expect(described.title == "Sunset")
        #expect(described.tags == ["Bretagne", "été"])
        #expect(try store.asset(id: asset.id, workspaceID: 1)?.tags == ["Bretagne", "été"])
        #expect(try store.allPages(query(1, "sun")).map(\.id) == [asset.id])
        #expect(try store.allPages(query(1, "ete")).map(\.id) == [asset.id])
        #expect(try store.allPages(query(2, "sun")).isEmpty)
        // Keep one field, change the other; clear the title.
        let retitled = try #require(try store.describeAsset(id: asset.id, workspaceID: 1, title: .set(nil), tags: .keep))
        #expect(retitled.title == nil)
        #expect(retitled.tags == ["Bretagne", "été"])
        #expect(try store.allPages(query(1, "sun")).isEmpty)
        #expect(try store.allPages(query(1, "bret")).map(\.id) == [asset.id])
        _ = try store.describeAsset(id: asset.id, workspaceID: 1, title: .keep, tags: .set([]))
        #expect(try store.allPages(query(1, "bret")).isEmpty)
        // A new version's file name is searched; a deleted asset is neither listed nor described.
        try store.markAssetDeleted(id: asset.id)
        #expect(try store.describeAsset(id: asset.id, workspaceID: 1, title: .set("t"), tags: .keep) == nil)
        #expect(try store.allPages(query(1, "x")).isEmpty)
        #expect(try store.allPages(query(1, nil)).isEmpty)
    }

    @Test(arguments: Backend.all) func statusAndTypeFilter(_ backend: Backend) throws {
        let store = try backend.fresh().open()
        let ready = try store.createAsset(NewAsset(workspaceID: 1, fileType: "video/quicktime", fileExtension: "mov", fileName: "a.mov", size: 1),
                                          status: .ready, now: Date())
        let pending = try store.createAsset(NewAsset(workspaceID: 1, fileType: "image/heic", fileExtension: "heic", fileName: "b.heic", size: nil))
        var q = query(1, nil)
        q.status = .pending
        #expect(try store.allPages(q).map(\.id) == [pending.id])
        q.status = .ready
        #expect(try store.allPages(q).map(\.id) == [ready.id])
        q.status = nil
        q.kind = .video
        #expect(try store.allPages(q).map(\.id) == [ready.id])
        q.kind = .pdf
        #expect(try store.allPages(q).isEmpty)
        // Unknown sizes sort as -1: first ascending.
        #expect(try store.allPages(query(1, nil, sort: .size, order: .ascending)).map(\.id) == [pending.id, ready.id])
    }

    /// Migration v7 indexes the assets that were there before it.
    @Test func theMigrationIndexesExistingAssets() throws {
        let pool = try DatabasePool(path: path)
        try SQLiteRecordStore.migrator.migrate(pool, upTo: "v6: signed part MD5s")
        try pool.write { db in
            try db.execute(sql: """
                INSERT INTO asset (workspace_id, key, file_name, file_type, size, status, created_at, updated_at)
                VALUES (1, '1/digital_assets/1.jpg', 'Old_Beach.jpg', 'image/jpeg', 5, 'ready', 0, 0)
                """)
        }
        try pool.close()
        let store = try open()
        #expect(try store.allPages(query(1, "beach")).map(\.fileName) == ["Old_Beach.jpg"])
        #expect(try store.allPages(query(1, "d_bea")).map(\.fileName) == ["Old_Beach.jpg"])
        #expect(try store.asset(id: 1, workspaceID: 1)?.tags == [])
    }

    /// PostgreSQL migration v7 stores the search text of the assets that were there before it.
    @Test func postgresMigrationV7StoresExistingAssetsSearchText() throws {
        guard Backend.all.contains(.postgres), case .postgres(let url) = try Backend.postgres.fresh() else { return }
        try PGPool(url: url, settings: .init()).with { connection in
            try PostgresRecordStore.migrate(connection, through: 6)
            try connection.execute("""
                INSERT INTO asset (workspace_id, key, file_name, file_type, size, status, created_at, updated_at, title, tags)
                VALUES (1, '1/digital_assets/1.jpg', 'Old_Beach.jpg', 'image/jpeg', 5, 'ready', 0, 0, 'Under Sky', E'Red\\nblue')
                """)
        }
        let store = try PostgresRecordStore(url: url)
        #expect(try PostgresRecordStore.inspectSchema(url: url).current == PostgresRecordStore.migrations.count)
        for q in ["d_bea", "under sky", "unde", "red", "r sk"] {
            #expect(try store.allPages(query(1, q)).map(\.fileName) == ["Old_Beach.jpg"], "q=\(q)")
            #expect(try store.allPages(query(1, q, sort: .name)).map(\.fileName) == ["Old_Beach.jpg"], "q=\(q)")
        }
        let stored = try store.pool.with { try $0.query("SELECT search_text FROM asset").first?.string(0) }
        #expect(stored == "old_beach.jpg\nunder sky\nred\nblue")
    }

    @Test func searchTextWords() {
        #expect(SearchText("  ")  == nil)
        #expect(SearchText(" beach_2024.jpg ")?.words == ["beach", "2024", "jpg"])
        #expect(SearchText(" beach_2024.jpg ")?.text == "beach_2024.jpg")
        #expect(SearchText("naïve-résumé")?.words == ["naïve", "résumé"])
        #expect(SearchText("ab")?.substring == nil)
        #expect(SearchText("abc")?.substring == "abc")
        #expect(FTSQuery(SearchText("a\"b \"\u{301}c")!, workspaceID: 1, kind: nil).substring
                    == "scope : \"\u{E000}1\u{E000}\" AND - scope : (\"a\"\"b \"\"\u{301}c\")")
        #expect(FTSQuery(SearchText("bea 20")!, workspaceID: 31, kind: .video).prefix
                    == "scope : \"\u{E000}1f\u{E000}v\" AND - scope : (\"bea\"* \"20\"*)")
    }

    /// Inserts `count` ready assets into `workspace` straight into the table (the triggers
    /// index them): file names `<stem>_<i>.<ext>`, kinds in turn (image, video, pdf), sizes `i % 97`.
    func bulkInsert(_ store: SQLiteRecordStore, workspace: Int64, count: Int, stem: String) throws {
        try store.pool.write { db in
            let statement = try db.makeStatement(sql: """
                INSERT INTO asset (workspace_id, key, file_name, file_type, size, status, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, 'ready', 0, 0)
                """)
            let kinds = [("jpg", "image/jpeg"), ("mp4", "video/mp4"), ("pdf", "application/pdf")]
            for i in 0..<count {
                let (ext, type) = kinds[i % 3]
                try statement.execute(arguments: [workspace, "\(workspace)/\(stem)-\(i)", "\(stem)_\(i).\(ext)", type, i % 97])
            }
        }
    }

    /// Review finding M1: the FTS tables are scoped to a workspace (migration v10). Another
    /// workspace holding thousands of assets that match every search (before and after the
    /// small one's, by id) changes none of a small workspace's results, in any tier, sort,
    /// type filter or page; nor does a text that spells a scope token.
    @Test func anotherWorkspacesManyMatchesLeaveASmallOnesResults() throws {
        let store = try open()
        try bulkInsert(store, workspace: 2, count: SQLiteRecordStore.fewMatches + 500, stem: "beach_sunset")
        let small: [(name: String, type: String, size: Int64)] = [
            ("beach_sunset.jpg", "image/jpeg", 30), ("Beach-walk.mp4", "video/mp4", 10), ("sunset_beach.pdf", "application/pdf", 20),
            ("beachball.png", "image/png", 40), ("notes.txt", "text/plain", 5)]
        var ids: [String: Int64] = [:]
        for asset in small {
            ids[asset.name] = try store.createAsset(
                NewAsset(workspaceID: 1, fileType: asset.type, fileExtension: "bin", fileName: asset.name, size: asset.size),
                status: .ready, now: Date()).id
        }
        try bulkInsert(store, workspace: 3, count: 300, stem: "beach_sunset")
        func names(_ q: String, kind: AssetKind? = nil, sort: AssetSort? = nil, limit: Int = 2) throws -> [String] {
            try store.allPages(query(1, q, kind: kind, sort: sort, order: .ascending, limit: limit)).map { $0.fileName ?? "" }
        }
        // Relevance: whole words (newest first), then prefixes, then substrings.
        #expect(try names("beach") == ["sunset_beach.pdf", "Beach-walk.mp4", "beach_sunset.jpg", "beachball.png"])
        #expect(try names("bea") == ["beachball.png", "sunset_beach.pdf", "Beach-walk.mp4", "beach_sunset.jpg"])
        #expect(try names("each") == ["beachball.png", "sunset_beach.pdf", "Beach-walk.mp4", "beach_sunset.jpg"])
        #expect(try names("beach", kind: .video) == ["Beach-walk.mp4"])
        #expect(try names("beach", kind: .image) == ["beach_sunset.jpg", "beachball.png"])
        #expect(try names("sunset", kind: .pdf) == ["sunset_beach.pdf"])
        #expect(try names("beach", sort: .size) == ["Beach-walk.mp4", "sunset_beach.pdf", "beach_sunset.jpg", "beachball.png"])
        #expect(try names("beach", kind: .image, sort: .name) == ["beach_sunset.jpg", "beachball.png"])
        #expect(try names("ach_su", sort: .created) == ["beach_sunset.jpg"])
        #expect(try names("notes").count == 1)
        // The other workspaces see their own.
        #expect(try store.allPages(query(3, "beach", limit: 200)).count == 300)
        #expect(try store.allPages(query(3, "beach", kind: .video, sort: .size, limit: 200)).count == 100)
        // A text that spells a scope token is text: it matches no asset.
        for q in ["\u{E000}1\u{E000}", "\u{E000}1\u{E000}v", "\u{E000}", "\u{E000}2\u{E000} beach"] {
            #expect(try names(q).isEmpty, "q=\(q.debugDescription)")
        }
        // The index follows a change of type (a new version of another kind).
        try store.pool.write { db in
            try db.execute(sql: "UPDATE asset SET file_type = 'video/mp4' WHERE id = ?", arguments: [ids["notes.txt"]])
        }
        #expect(try names("notes", kind: .video) == ["notes.txt"])
        try store.pool.write { db in
            try db.execute(sql: "INSERT INTO asset_words (asset_words) VALUES ('integrity-check')")
            try db.execute(sql: "INSERT INTO asset_trigrams (asset_trigrams) VALUES ('integrity-check')")
        }
    }

    /// Migration v10 re-indexes, with their scope, the assets indexed before it.
    @Test func migrationV10ScopesExistingAssets() throws {
        let pool = try DatabasePool(path: path)
        try SQLiteRecordStore.migrator.migrate(pool, upTo: "v9: event outbox")
        try pool.write { db in
            try db.execute(sql: """
                INSERT INTO asset (workspace_id, key, file_name, file_type, size, status, created_at, updated_at, title, tags)
                VALUES (1, '1/digital_assets/1.mp4', 'Old_Beach.mp4', 'video/mp4', 5, 'ready', 0, 0, 'Dunes', 'sand'),
                       (2, '2/digital_assets/2.mp4', 'Old_Beach.mp4', 'video/mp4', 5, 'ready', 0, 0, NULL, '')
                """)
        }
        try pool.close()
        let store = try open()
        #expect(try store.allPages(query(1, "beach", kind: .video)).map(\.id) == [1])
        #expect(try store.allPages(query(1, "d_bea")).map(\.id) == [1])
        #expect(try store.allPages(query(1, "dune")).map(\.id) == [1])
        #expect(try store.allPages(query(1, "sand", sort: .size)).map(\.id) == [1])
        #expect(try store.allPages(query(1, "beach", kind: .video, sort: .size)).map(\.id) == [1])
        #expect(try store.allPages(query(1, nil, kind: .video, sort: .name)).map(\.id) == [1])
        #expect(try store.allPages(query(1, "beach", kind: .image)).isEmpty)
        #expect(try store.allPages(query(2, "beach")).map(\.id) == [2])
    }

    /// ASSETD_DATABASE_STATEMENT_TIMEOUT bounds a listing on SQLite: past it, the statement
    /// stops and the store answers `unavailable` (503), and the connection serves the next.
    @Test func aListingPastItsDeadlineStops() throws {
        try bulkInsert(try open(), workspace: 1, count: 3000, stem: "bulk")
        let hurried = try SQLiteRecordStore(path: path, statementTimeout: .zero)
        for q in [query(1, "bulk", sort: .size, limit: 3000), query(1, "ulk_1", limit: 3000), query(1, nil, kind: .pdf, sort: .name, limit: 3000)] {
            do {
                _ = try hurried.searchAssets(q)
                Issue.record("no deadline: \(q)")
            } catch RecordStoreError.unavailable(let reason) {
                #expect(reason.contains("ASSETD_DATABASE_STATEMENT_TIMEOUT"))
            }
        }
        let patient = try SQLiteRecordStore(path: path, statementTimeout: .seconds(10))
        #expect(try patient.searchAssets(query(1, "bulk", sort: .size, limit: 50)).count == 50)
        #expect(try patient.searchAssets(query(1, "ulk_1", limit: 50)).count == 50)
    }
}

/// A deterministic generator for the fuzz rounds (SplitMix64).
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
