import GRDB

/// The schema, one migration a change; GRDB records which ran.
extension SQLiteRecordStore {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: assets and uploads") { db in
            try db.execute(sql: """
                CREATE TABLE asset (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    workspace_id INTEGER NOT NULL,
                    key TEXT NOT NULL UNIQUE,
                    file_name TEXT,
                    file_type TEXT NOT NULL,
                    size INTEGER,
                    etag TEXT,
                    sha256 TEXT,
                    status TEXT NOT NULL,
                    thumbnail_status TEXT NOT NULL DEFAULT 'none',
                    created_at REAL NOT NULL,
                    updated_at REAL NOT NULL
                );
                CREATE INDEX asset_by_workspace ON asset(workspace_id, id);
                CREATE TABLE upload (
                    upload_id TEXT PRIMARY KEY,
                    asset_id INTEGER NOT NULL REFERENCES asset(id),
                    workspace_id INTEGER NOT NULL,
                    key TEXT NOT NULL,
                    file_size INTEGER,
                    part_size INTEGER,
                    status TEXT NOT NULL,
                    parts_digest TEXT,
                    location TEXT,
                    etag TEXT,
                    created_at REAL NOT NULL,
                    updated_at REAL NOT NULL
                );
                CREATE INDEX upload_by_asset ON upload(asset_id);
                """)
        }
        migrator.registerMigration("v2: the reconciler's work lists") { db in
            // Small partial indexes: the reconciler reads only records that are mid-way.
            try db.execute(sql: """
                CREATE INDEX asset_unsettled ON asset(status, updated_at) WHERE status IN ('pending', 'deleting');
                CREATE INDEX upload_pending ON upload(created_at) WHERE status = 'pending';
                """)
        }
        migrator.registerMigration("v3: thumbnail tasks") { db in
            // A thumbnail task's state lives on its asset: thumbnail_status (none, pending,
            // ready, failed), why it failed or has none, and how many attempts began.
            // `none` with no reason on a ready asset is a task never queued (a crash came
            // between the two writes); assets stored before this migration get a reason.
            try db.execute(sql: """
                ALTER TABLE asset ADD COLUMN thumbnail_reason TEXT;
                ALTER TABLE asset ADD COLUMN thumbnail_attempts INTEGER NOT NULL DEFAULT 0;
                UPDATE asset SET thumbnail_reason = 'stored before assetd made thumbnails'
                    WHERE thumbnail_status = 'none' AND status != 'pending';
                CREATE INDEX asset_thumbnail_unsettled ON asset(id)
                    WHERE status = 'ready' AND (thumbnail_status = 'pending' OR (thumbnail_status = 'none' AND thumbnail_reason IS NULL));
                """)
        }
        migrator.registerMigration("v4: versions") { db in
            try db.execute(sql: """
                ALTER TABLE asset ADD COLUMN current_version INTEGER NOT NULL DEFAULT 1;
                ALTER TABLE asset ADD COLUMN version_created_at REAL;
                ALTER TABLE upload ADD COLUMN version INTEGER;
                ALTER TABLE upload ADD COLUMN file_type TEXT;
                ALTER TABLE upload ADD COLUMN file_name TEXT;
                CREATE TABLE asset_version (
                    asset_id INTEGER NOT NULL REFERENCES asset(id),
                    version INTEGER NOT NULL,
                    key TEXT NOT NULL,
                    file_type TEXT NOT NULL,
                    file_name TEXT,
                    size INTEGER,
                    etag TEXT,
                    created_at REAL NOT NULL,
                    PRIMARY KEY (asset_id, version)
                );
                CREATE TABLE version_switch (
                    asset_id INTEGER PRIMARY KEY REFERENCES asset(id),
                    workspace_id INTEGER NOT NULL,
                    version INTEGER NOT NULL,
                    staging_key TEXT NOT NULL,
                    new_key TEXT NOT NULL,
                    file_type TEXT NOT NULL,
                    file_name TEXT,
                    size INTEGER NOT NULL,
                    etag TEXT NOT NULL,
                    state TEXT NOT NULL,
                    created_at REAL NOT NULL
                );
                """)
        }
        migrator.registerMigration("v5: sweeps after deletes") { db in
            // A deleted asset's versions prefix is listed once more after the delete, when
            // any PutObject of a new version that raced it has landed or given up. Assets
            // deleted before this migration get that sweep too (a race could orphan keys).
            try db.execute(sql: """
                CREATE TABLE delete_sweep (
                    asset_id INTEGER PRIMARY KEY REFERENCES asset(id),
                    deleted_at REAL NOT NULL
                );
                INSERT INTO delete_sweep (asset_id, deleted_at) SELECT id, updated_at FROM asset WHERE status = 'deleted';
                """)
        }
        migrator.registerMigration("v6: signed part MD5s") { db in
            // The MD5 each part URL was signed for (content-md5), the last one signed per
            // part: complete-upload checks every submitted part's ETag against it. Rows
            // go in the transaction that ends their upload (completed, aborted, expired,
            // rejected: markUploadCompleted, endPendingUpload) or discards it.
            try db.execute(sql: """
                CREATE TABLE upload_part_md5 (
                    upload_id TEXT NOT NULL REFERENCES upload(upload_id),
                    part_number INTEGER NOT NULL,
                    md5 TEXT NOT NULL,
                    signed_at REAL NOT NULL,
                    PRIMARY KEY (upload_id, part_number)
                ) WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("v7: titles, tags and search") { db in
            // Two FTS5 tables over the asset's file name, title and tags (external content:
            // they hold only the index), kept in step by triggers, so that every write of
            // those columns, in any transaction, and rows seeded by hand are indexed:
            // - asset_words: unicode61, case and accents folded, prefix indexes for 1 to 3
            //   characters; words split at anything but letters and digits (`_ . -` too);
            // - asset_trigrams: trigram (case folded), for substrings of 3+ characters.
            // Both match every workspace: queries join asset and filter on workspace_id.
            // The sort indexes give `name` and `size` keyset pages a range seek, and carry
            // status and file_type so that filters skip rows without reading them.
            try db.execute(sql: """
                ALTER TABLE asset ADD COLUMN title TEXT;
                ALTER TABLE asset ADD COLUMN tags TEXT NOT NULL DEFAULT '';
                CREATE VIRTUAL TABLE asset_words USING fts5(
                    file_name, title, tags, content = 'asset', content_rowid = 'id',
                    tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2 3');
                CREATE VIRTUAL TABLE asset_trigrams USING fts5(
                    file_name, title, tags, content = 'asset', content_rowid = 'id', tokenize = 'trigram');
                CREATE TRIGGER asset_search_insert AFTER INSERT ON asset BEGIN
                    INSERT INTO asset_words (rowid, file_name, title, tags) VALUES (new.id, new.file_name, new.title, new.tags);
                    INSERT INTO asset_trigrams (rowid, file_name, title, tags) VALUES (new.id, new.file_name, new.title, new.tags);
                END;
                CREATE TRIGGER asset_search_delete AFTER DELETE ON asset BEGIN
                    INSERT INTO asset_words (asset_words, rowid, file_name, title, tags)
                        VALUES ('delete', old.id, old.file_name, old.title, old.tags);
                    INSERT INTO asset_trigrams (asset_trigrams, rowid, file_name, title, tags)
                        VALUES ('delete', old.id, old.file_name, old.title, old.tags);
                END;
                CREATE TRIGGER asset_search_update AFTER UPDATE OF file_name, title, tags ON asset BEGIN
                    INSERT INTO asset_words (asset_words, rowid, file_name, title, tags)
                        VALUES ('delete', old.id, old.file_name, old.title, old.tags);
                    INSERT INTO asset_trigrams (asset_trigrams, rowid, file_name, title, tags)
                        VALUES ('delete', old.id, old.file_name, old.title, old.tags);
                    INSERT INTO asset_words (rowid, file_name, title, tags) VALUES (new.id, new.file_name, new.title, new.tags);
                    INSERT INTO asset_trigrams (rowid, file_name, title, tags) VALUES (new.id, new.file_name, new.title, new.tags);
                END;
                INSERT INTO asset_words (asset_words) VALUES ('rebuild');
                INSERT INTO asset_trigrams (asset_trigrams) VALUES ('rebuild');
                CREATE INDEX asset_by_name ON asset(workspace_id, lower(coalesce(file_name, '')), id, status, file_type);
                CREATE INDEX asset_by_size ON asset(workspace_id, coalesce(size, -1), id, status, file_type);
                """)
        }
        migrator.registerMigration("v8: media metadata") { db in
            // What the decoder learned in the thumbnail's pass (recordMedia), for the version
            // whose ETag is media_etag: a newer version's record shows none until its own task.
            try db.execute(sql: """
                ALTER TABLE asset ADD COLUMN media_etag TEXT;
                ALTER TABLE asset ADD COLUMN media_width INTEGER;
                ALTER TABLE asset ADD COLUMN media_height INTEGER;
                ALTER TABLE asset ADD COLUMN media_duration_s REAL;
                ALTER TABLE asset ADD COLUMN media_pages INTEGER;
                ALTER TABLE asset ADD COLUMN media_taken_at TEXT;
                ALTER TABLE asset ADD COLUMN media_camera_make TEXT;
                ALTER TABLE asset ADD COLUMN media_camera_model TEXT;
                ALTER TABLE asset ADD COLUMN media_gps_latitude REAL;
                ALTER TABLE asset ADD COLUMN media_gps_longitude REAL;
                """)
        }
        migrator.registerMigration("v9: event outbox") { db in
            // The transactional outbox: SQLiteRecordStore+events.swift.
            try db.execute(sql: Self.eventOutboxSchema)
        }
        migrator.registerMigration("v10: search scoped to a workspace") { db in
            // The FTS5 tables of v7 matched every workspace's rows, and the queries kept
            // one workspace's after joining the asset: a search cost in proportion to all
            // tenants' matches. Each row now also indexes a `scope` column (first), two
            // tokens: the workspace (its id in hex), and the workspace with the asset's kind
            // (i, v, p, o for image, video, pdf, other), between U+E000s (a private-use
            // character, which unicode61 keeps in a token and no file name normally holds):
            // `\u{E000}1f\u{E000} \u{E000}1f\u{E000}v` for a video of workspace 31. A query
            // matches one of them AND its text in the other columns (FTSQuery), so that
            // FTS5 intersects two lists of this workspace instead of the asset table
            // filtering all of them, and a type filter is an index too. The content is the view asset_search_source, so that
            // 'rebuild' and 'integrity-check' still work; the triggers compute the scope
            // the same way, and an update of file_type (a new version) re-indexes the row.
            try db.execute(sql: """
                DROP TRIGGER asset_search_insert;
                DROP TRIGGER asset_search_delete;
                DROP TRIGGER asset_search_update;
                DROP TABLE asset_words;
                DROP TABLE asset_trigrams;
                CREATE VIEW asset_search_source AS
                    SELECT id, \(Self.searchScope("asset")) AS scope, file_name, title, tags FROM asset;
                CREATE VIRTUAL TABLE asset_words USING fts5(
                    scope, file_name, title, tags, content = 'asset_search_source', content_rowid = 'id',
                    tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2 3');
                CREATE VIRTUAL TABLE asset_trigrams USING fts5(
                    scope, file_name, title, tags, content = 'asset_search_source', content_rowid = 'id', tokenize = 'trigram');
                CREATE TRIGGER asset_search_insert AFTER INSERT ON asset BEGIN
                    INSERT INTO asset_words (rowid, scope, file_name, title, tags)
                        VALUES (new.id, \(Self.searchScope("new")), new.file_name, new.title, new.tags);
                    INSERT INTO asset_trigrams (rowid, scope, file_name, title, tags)
                        VALUES (new.id, \(Self.searchScope("new")), new.file_name, new.title, new.tags);
                END;
                CREATE TRIGGER asset_search_delete AFTER DELETE ON asset BEGIN
                    INSERT INTO asset_words (asset_words, rowid, scope, file_name, title, tags)
                        VALUES ('delete', old.id, \(Self.searchScope("old")), old.file_name, old.title, old.tags);
                    INSERT INTO asset_trigrams (asset_trigrams, rowid, scope, file_name, title, tags)
                        VALUES ('delete', old.id, \(Self.searchScope("old")), old.file_name, old.title, old.tags);
                END;
                CREATE TRIGGER asset_search_update AFTER UPDATE OF workspace_id, file_type, file_name, title, tags ON asset BEGIN
                    INSERT INTO asset_words (asset_words, rowid, scope, file_name, title, tags)
                        VALUES ('delete', old.id, \(Self.searchScope("old")), old.file_name, old.title, old.tags);
                    INSERT INTO asset_trigrams (asset_trigrams, rowid, scope, file_name, title, tags)
                        VALUES ('delete', old.id, \(Self.searchScope("old")), old.file_name, old.title, old.tags);
                    INSERT INTO asset_words (rowid, scope, file_name, title, tags)
                        VALUES (new.id, \(Self.searchScope("new")), new.file_name, new.title, new.tags);
                    INSERT INTO asset_trigrams (rowid, scope, file_name, title, tags)
                        VALUES (new.id, \(Self.searchScope("new")), new.file_name, new.title, new.tags);
                END;
                INSERT INTO asset_words (asset_words) VALUES ('rebuild');
                INSERT INTO asset_trigrams (asset_trigrams) VALUES ('rebuild');
                """)
        }
        migrator.registerMigration("v11: sort indexes by kind") { db in
            // A listing with a type walks its sort order over that kind's rows only: a
            // sorted search with a type tests the rows of these indexes one by one
            // (walkedPage) instead of reading its FTS5 sets, which for a prefix longer
            // than 3 characters merge every tenant's lists. The kind is the expression of
            // `kindLetter` (the v10 scope tokens' letter), which the filters write as it is
            // here, so that SQLite seeks these indexes; status is carried so that deleted
            // rows are skipped without reading them.
            let kind = Self.kindLetter("")
            try db.execute(sql: """
                CREATE INDEX asset_by_kind ON asset(workspace_id, \(kind), id, status);
                CREATE INDEX asset_by_kind_name ON asset(workspace_id, \(kind), lower(coalesce(file_name, '')), id, status);
                CREATE INDEX asset_by_kind_size ON asset(workspace_id, \(kind), coalesce(size, -1), id, status);
                """)
        }
        migrator.registerMigration("v12: media backfill attempts") { db in
            // The media backfill's decoder failures (a crash or its deadline; a refusal is
            // final and recorded as unknown media) on the version whose ETag is
            // media_attempts_etag: after MediaBackfill.maxAttempts of them the backfill
            // leaves that version alone until `assetd backfill-media --retry-failed` clears
            // them. A new version (another ETag) starts from none.
            try db.execute(sql: """
                ALTER TABLE asset ADD COLUMN media_attempts INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE asset ADD COLUMN media_attempts_etag TEXT;
                """)
        }
        return migrator
    }
}

extension SQLiteRecordStore {
    /// Runs the migrations this database lacks, one at a time, each in its own transaction
    /// (GRDB's), telling `log` "migrating schema N -> M" and each step's duration. A
    /// database with a migration this assetd does not know (a newer assetd migrated it: a
    /// downgrade) is refused, as PostgreSQL's is: GRDB alone would skip the unknown ones
    /// and run against a schema it does not know.
    static func migrate(_ pool: DatabasePool, log: MigrationLog?) throws {
        let migrator = Self.migrator
        let known = migrator.migrations
        let applied = try pool.read { db in try migrator.appliedIdentifiers(db) }
        let unknown = applied.subtracting(known).sorted()
        guard unknown.isEmpty else {
            throw RecordStoreError.database("""
                the database's schema is newer than this assetd knows: it has migrations \(unknown.map { "\"\($0)\"" }.joined(separator: ", ")) \
                that this assetd does not (a newer assetd migrated it); upgrade assetd, or restore the backup taken before the upgrade \
                (docs/OPERATIONS.md, "Backups")
                """)
        }
        let pending = known.filter { !applied.contains($0) }
        guard !pending.isEmpty else { return }
        log?("migrating schema \(known.count - pending.count) -> \(known.count) (SQLite: \(pending.count) step\(pending.count == 1 ? "" : "s"))")
        // Step by step only in order: GRDB refuses a target below a migration already applied.
        let lastApplied = known.lastIndex { applied.contains($0) } ?? -1
        guard let firstPending = known.firstIndex(of: pending[0]), firstPending > lastApplied else {
            let start = ContinuousClock.now
            try migrator.migrate(pool)
            log?("migrated \(pending.joined(separator: ", ")) in \((ContinuousClock.now - start).migrationSeconds)")
            return
        }
        for name in pending {
            let start = ContinuousClock.now
            try migrator.migrate(pool, upTo: name)
            log?("migrated \"\(name)\" in \((ContinuousClock.now - start).migrationSeconds)")
        }
    }
}
