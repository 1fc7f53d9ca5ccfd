/// The schema, one migration a change, in one list: `schema_version` records which ran.
/// To add one: append to `migrations` (never edit one that shipped); it runs in the
/// transaction that records it, under an advisory lock, so that hosts starting together
/// migrate once.
///
/// Columns and names are those of the SQLite schema (its migrations v1..v6 in one), plus
/// the leases that several hosts need: a thumbnail task's owner and expiry, an asset's
/// holder while it is switched or deleted (`motion_*`), and the reconciler's last pass.
extension PostgresRecordStore {
    static let migrations: [(name: String, sql: String)] = [
        ("v1: assets, uploads, versions, thumbnail leases", """
            CREATE TABLE asset (
                id BIGSERIAL PRIMARY KEY,
                workspace_id BIGINT NOT NULL,
                key TEXT NOT NULL UNIQUE,
                file_name TEXT,
                file_type TEXT NOT NULL,
                size BIGINT,
                etag TEXT,
                sha256 TEXT,
                status TEXT NOT NULL,
                thumbnail_status TEXT NOT NULL DEFAULT 'none',
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL,
                thumbnail_reason TEXT,
                thumbnail_attempts INTEGER NOT NULL DEFAULT 0,
                current_version INTEGER NOT NULL DEFAULT 1,
                version_created_at DOUBLE PRECISION,
                thumbnail_owner TEXT,
                thumbnail_lease_until DOUBLE PRECISION,
                motion_owner TEXT,
                motion_until DOUBLE PRECISION
            );
            CREATE INDEX asset_by_workspace ON asset (workspace_id, id);
            CREATE INDEX asset_unsettled ON asset (status, updated_at) WHERE status IN ('pending', 'deleting');
            CREATE INDEX asset_thumbnail_unsettled ON asset (id)
                WHERE status = 'ready' AND (thumbnail_status = 'pending' OR (thumbnail_status = 'none' AND thumbnail_reason IS NULL));
            CREATE TABLE upload (
                upload_id TEXT PRIMARY KEY,
                asset_id BIGINT NOT NULL REFERENCES asset (id),
                workspace_id BIGINT NOT NULL,
                key TEXT NOT NULL,
                file_size BIGINT,
                part_size BIGINT,
                status TEXT NOT NULL,
                parts_digest TEXT,
                location TEXT,
                etag TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL,
                version INTEGER,
                file_type TEXT,
                file_name TEXT
            );
            CREATE INDEX upload_by_asset ON upload (asset_id);
            CREATE INDEX upload_pending ON upload (created_at) WHERE status = 'pending';
            CREATE TABLE asset_version (
                asset_id BIGINT NOT NULL REFERENCES asset (id),
                version INTEGER NOT NULL,
                key TEXT NOT NULL,
                file_type TEXT NOT NULL,
                file_name TEXT,
                size BIGINT,
                etag TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (asset_id, version)
            );
            CREATE TABLE version_switch (
                asset_id BIGINT PRIMARY KEY REFERENCES asset (id),
                workspace_id BIGINT NOT NULL,
                version INTEGER NOT NULL,
                staging_key TEXT NOT NULL,
                new_key TEXT NOT NULL,
                file_type TEXT NOT NULL,
                file_name TEXT,
                size BIGINT NOT NULL,
                etag TEXT NOT NULL,
                state TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL
            );
            CREATE TABLE delete_sweep (
                asset_id BIGINT PRIMARY KEY REFERENCES asset (id),
                deleted_at DOUBLE PRECISION NOT NULL
            );
            CREATE TABLE upload_part_md5 (
                upload_id TEXT NOT NULL REFERENCES upload (upload_id),
                part_number INTEGER NOT NULL,
                md5 TEXT NOT NULL,
                signed_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (upload_id, part_number)
            );
            CREATE TABLE reconciler_pass (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                host TEXT NOT NULL,
                started_at DOUBLE PRECISION NOT NULL
            );
            """),
        ("v2: titles, tags and search", """
            -- As SQLite's "v7: titles, tags and search" (PostgresRecordStore+search.swift says
            -- how queries use it). unaccent and pg_trgm (postgresql-15's contrib; both
            -- trusted extensions, so the database's owner may create them) live in public,
            -- and are named with it, whatever the role's search_path.
            CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA public;
            CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
            ALTER TABLE asset ADD COLUMN title TEXT;
            ALTER TABLE asset ADD COLUMN tags TEXT NOT NULL DEFAULT '';
            -- The words of a text, case and accents folded, split at anything but letters and
            -- digits (`_ . -` and spaces too), as SQLite's unicode61 tokenizer has them; a word
            -- of 2 KiB or more (longer than a lexeme may be) is left out.
            CREATE FUNCTION assetd_words(text) RETURNS text[] LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
                SELECT coalesce(array_agg(word), '{}') FROM regexp_split_to_table(
                    public.unaccent('public.unaccent'::regdictionary, pg_catalog.lower($1)), '[^[:alnum:]]+') AS word
                WHERE word <> '' AND octet_length(word) < 2048
            $$;
            -- A tsvector of those words as they are (no parser, no stemming).
            CREATE FUNCTION assetd_search_vector(file_name text, title text, tags text) RETURNS tsvector
                LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
                SELECT pg_catalog.array_to_tsvector(assetd_words(
                    coalesce(file_name, '') || ' ' || coalesce(title, '') || ' ' || coalesce(tags, '')))
            $$;
            -- Every word of the text a lexeme, all of them required, whole or as prefixes:
            -- quoted (a quote doubled, a backslash escaped), so that nothing typed is syntax.
            CREATE FUNCTION assetd_query(text, prefix boolean) RETURNS tsquery LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
                SELECT pg_catalog.string_agg(
                    '''' || replace(replace(word, '\\', '\\\\'), '''', '''''') || '''' || CASE WHEN prefix THEN ':*' ELSE '' END,
                    ' & ')::tsquery
                FROM unnest(assetd_words($1)) AS word
            $$;
            ALTER TABLE asset ADD COLUMN search_words tsvector
                GENERATED ALWAYS AS (assetd_search_vector(file_name, title, tags)) STORED;
            CREATE INDEX asset_words ON asset USING gin (search_words);
            -- Substrings: file name, title and tags case folded, joined by a line feed (which
            -- no search text holds), under a trigram index that LIKE uses.
            CREATE INDEX asset_trigrams ON asset USING gin (
                (lower(coalesce(file_name, '') || E'\\n' || coalesce(title, '') || E'\\n' || tags)) public.gin_trgm_ops);
            -- The sorts: the name with ASCII letters lower-cased, in byte order (COLLATE "C").
            CREATE INDEX asset_by_name ON asset (workspace_id,
                (translate(coalesce(file_name, ''), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') COLLATE "C"), id);
            CREATE INDEX asset_by_size ON asset (workspace_id, (coalesce(size, -1)), id);
            """),
        ("v3: media metadata", """
            -- As SQLite's "v8: media metadata": for the version whose ETag is media_etag.
            ALTER TABLE asset ADD COLUMN media_etag TEXT;
            ALTER TABLE asset ADD COLUMN media_width INTEGER;
            ALTER TABLE asset ADD COLUMN media_height INTEGER;
            ALTER TABLE asset ADD COLUMN media_duration_s DOUBLE PRECISION;
            ALTER TABLE asset ADD COLUMN media_pages INTEGER;
            ALTER TABLE asset ADD COLUMN media_taken_at TEXT;
            ALTER TABLE asset ADD COLUMN media_camera_make TEXT;
            ALTER TABLE asset ADD COLUMN media_camera_model TEXT;
            ALTER TABLE asset ADD COLUMN media_gps_latitude DOUBLE PRECISION;
            ALTER TABLE asset ADD COLUMN media_gps_longitude DOUBLE PRECISION;
            """),
        ("v4: event outbox", eventOutboxSchema),
        ("v5: search indexes scoped to the workspace", """
            -- The GIN indexes of v2 with the workspace and the type's first 6 characters
            -- (`image/`, `video/`, `applic`: the type filters) before the words or trigrams
            -- (btree_gin, a trusted extension in postgresql-15's contrib, as unaccent and
            -- pg_trgm): a search's bitmap holds its own workspace's matches of its type only,
            -- so that it never reads, nor rechecks, another workspace's rows
            -- (PostgresRecordStore+search.swift). Either may be left unconstrained.
            -- Built in the migration's transaction: writes to asset wait for them (about 10 s
            -- at 100,000 assets on 2 busy cores); docs/OPERATIONS.md says how to build them
            -- beforehand with CREATE INDEX CONCURRENTLY on a large table.
            CREATE EXTENSION IF NOT EXISTS btree_gin SCHEMA public;
            DROP INDEX IF EXISTS asset_words;
            CREATE INDEX IF NOT EXISTS asset_words_by_workspace ON asset USING gin (workspace_id, (left(file_type, 6)), search_words);
            DROP INDEX IF EXISTS asset_trigrams;
            CREATE INDEX IF NOT EXISTS asset_trigrams_by_workspace ON asset USING gin (workspace_id, (left(file_type, 6)),
                (lower(coalesce(file_name, '') || E'\\n' || coalesce(title, '') || E'\\n' || tags)) public.gin_trgm_ops);
            """),
        ("v6: media backfill attempts", """
            -- As SQLite's "v12: media backfill attempts": the media backfill's decoder failures
            -- (not refusals) on the version whose ETag is media_attempts_etag; after
            -- MediaBackfill.maxAttempts the backfill leaves it until --retry-failed.
            ALTER TABLE asset ADD COLUMN media_attempts INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE asset ADD COLUMN media_attempts_etag TEXT;
            """),
        ("v7: stored search text", """
            -- Tier 2's case-folded text (file name, title and tags joined by a line feed, as
            -- v2's expression index has it) stored, so that a search's walk and the trigram
            -- index's recheck read it instead of computing lower() of the three columns for
            -- every row they test (PostgresRecordStore+search.swift); its trigram index,
            -- scoped as v5's, replaces the expression index. A stored column rewrites the
            -- table in the migration's transaction, which holds writes to asset meanwhile
            -- (docs/OPERATIONS.md says how long, and how to do it beforehand).
            ALTER TABLE asset ADD COLUMN IF NOT EXISTS search_text TEXT
                GENERATED ALWAYS AS (lower(coalesce(file_name, '') || E'\\n' || coalesce(title, '') || E'\\n' || tags)) STORED;
            DROP INDEX IF EXISTS asset_trigrams_by_workspace;
            CREATE INDEX IF NOT EXISTS asset_search_text_by_workspace ON asset
                USING gin (workspace_id, (left(file_type, 6)), search_text public.gin_trgm_ops);
            """),
        ("v8: search words in PL/pgSQL", """
            -- v2's assetd_words and assetd_query, the same bodies in PL/pgSQL: a SQL function
            -- that cannot be inlined (both aggregate) is parsed and planned again at every
            -- call site of every statement, 0.1-0.2 ms for each tsquery of a search's
            -- InitPlans (8 of them in a substring search's statements), where PL/pgSQL keeps
            -- its plans for the connection: 0.02-0.05 ms (EXPLAIN ANALYZE of a prepared
            -- `SELECT (SELECT assetd_query($1, true))`, 100,000 assets). The same words and
            -- tsqueries, so search_words (generated by assetd_search_vector) stays as it is.
            CREATE OR REPLACE FUNCTION assetd_words(text) RETURNS text[] LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
            BEGIN
                RETURN (SELECT coalesce(array_agg(word), '{}') FROM regexp_split_to_table(
                    public.unaccent('public.unaccent'::regdictionary, pg_catalog.lower($1)), '[^[:alnum:]]+') AS word
                    WHERE word <> '' AND octet_length(word) < 2048);
            END
            $$;
            CREATE OR REPLACE FUNCTION assetd_query(text, prefix boolean) RETURNS tsquery LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
            BEGIN
                RETURN (SELECT pg_catalog.string_agg(
                    '''' || replace(replace(word, '\\', '\\\\'), '''', '''''') || '''' || CASE WHEN prefix THEN ':*' ELSE '' END,
                    ' & ')::tsquery
                    FROM unnest(assetd_words($1)) AS word);
            END
            $$;
            """),
        ("v9: sort indexes by type", """
            -- As SQLite's "v11: sort indexes by kind": v1's and v2's sort indexes with the
            -- type's first 6 characters after the workspace, built after this transaction
            -- commits, with CREATE INDEX CONCURRENTLY (`concurrentIndexes`, `buildIndexes`):
            -- built here, they held every host's writes to asset until the COMMIT. Nothing
            -- to do in the transaction but record the version.
            SELECT 'v9'
            """),
        ("v10: joined search text", """
            -- A trigram index over tier 2's text with its punctuation and spaces joined into
            -- the words (`PostgresRecordStore.joinedText`), built after this transaction
            -- commits with CREATE INDEX CONCURRENTLY (`concurrentIndexes`), as v9's. Nothing
            -- to do in the transaction but record the version.
            SELECT 'v10'
            """),
    ]

    /// Indexes that the schema's version wants, built after its migration's transaction
    /// commits with CREATE INDEX CONCURRENTLY, which takes no lock that holds writes
    /// (`buildIndexes`). v9's: v1's and v2's sort indexes with the type's first 6 characters
    /// after the workspace (`image/`, `video/`, `applic`: the type filters, as v5's GIN
    /// indexes have them), so that a listing or search with a type walks its order over that
    /// type's rows only (PostgresRecordStore+search.swift). Until they are valid the same
    /// statements stay correct, only slower (the filters still test the type).
    static let concurrentIndexes: [(name: String, version: Int, definition: String)] = [
        ("asset_by_type", 9, "asset (workspace_id, (left(file_type, 6)), id)"),
        ("asset_by_type_name", 9, """
            asset (workspace_id, (left(file_type, 6)), \
            (translate(coalesce(file_name, ''), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') COLLATE "C"), id)
            """),
        ("asset_by_type_size", 9, "asset (workspace_id, (left(file_type, 6)), (coalesce(size, -1)), id)"),
        // v10's: v7's trigram index of the searched text, over that text with the characters
        // that pg_trgm takes for word ends turned into a letter (`joinedText`), so that a
        // substring's trigrams keep what is around its `_`, `.`, `-` or space: `ch_be` is
        // `chq`, `hqb`, `qbe` here, where v7's index has `ch ` and ` be`, which every
        // `beach` has (8,822 candidates to recheck against 215 at 100,000 assets).
        ("asset_joined_text_by_workspace", 10, "asset USING gin (workspace_id, (left(file_type, 6)), (\(joinedText(of: "search_text"))) public.gin_trgm_ops)"),
    ]

    /// The searched text (`search_text`, v7) with its `_`, spaces, `-`, `.` and line feeds
    /// each turned into `joiner`: character for character, so that a text holding a
    /// substring holds it joined too, and a condition on the joined text is one more that a
    /// match meets, never one it may fail (the exact LIKE stays beside it). Nested
    /// `replace`s: 0.25 µs a row of the bench's texts, where `translate` with 36 characters
    /// took 8.6 µs (a candidate's recheck computes it). The same of a LIKE pattern escaped
    /// with `\` is a pattern of the joined substring (`\_` becomes `\q`, a literal `q`; `\`
    /// and `%` are not joined). v10's index is built over this expression of `search_text`:
    /// it must not change once applied (a new one needs a new index name and migration).
    static func joinedText(of text: String) -> String {
        "replace(replace(replace(replace(replace(\(text), '_', '\(joiner)'), ' ', '\(joiner)'), '-', '\(joiner)'), '.', '\(joiner)'), E'\\n', '\(joiner)')"
    }

    /// What `joinedText` joins with: an ASCII letter, which pg_trgm takes for a word
    /// character whatever the database's LC_CTYPE (a non-ASCII one such as `ǂ` is one only
    /// under a UTF-8 ctype: under `C`, pg_trgm tests the first byte with `isalpha`, and `chǂbe`
    /// splits at it as at `_`, so the index kept v7's candidates there). A rare one in file
    /// names, since a text with `q` where the substring has punctuation is a candidate that
    /// the exact LIKE then drops; the answers are the same whatever the letter.
    static let joiner = "q"

    /// The session advisory lock under which one host at a time builds `concurrentIndexes`
    /// ("assetd-i", with the schema's name: test schemas, or deployments sharing a database,
    /// do not wait for each other).
    static let indexLock: Int32 = 0x6173_2d69

    /// The advisory lock key that serializes migrations across hosts ("assetd-m").
    static let migrationLock: Int64 = 0x6173_7365_7464_2d6d

    /// How long a host waits for another host's migration (the advisory lock, which blocks
    /// no one else): 10 minutes; systemd's start timeout is extended meanwhile (MigrationLog).
    static let migrationLockTimeout = "10min"
    /// How long a step waits for a table's lock. Shorter: while a step's ACCESS EXCLUSIVE
    /// request waits (behind a long transaction: pg_dump, a report), every read and write
    /// of that table on every host queues behind it. Past it the start fails, naming the
    /// cause, and systemd starts assetd again (RestartSec=2).
    static let migrationTableLockTimeout = "30s"

    /// Runs the migrations not yet recorded, up to the `last`th (a test's older schema) or all.
    static func migrate(_ connection: PGConnection, through last: Int? = nil, log: MigrationLog? = nil) throws {
        try connection.execute("BEGIN")
        do {
            // Not ASSETD_DATABASE_STATEMENT_TIMEOUT (the pool's, for requests): a migration
            // over many rows takes longer, and a cancelled one starts over at every restart.
            // Lock waits are bounded: another host's migration generously, a table less.
            try connection.execute("SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = '\(migrationLockTimeout)'")
            // The lock first: hosts starting together would otherwise race CREATE TABLE IF
            // NOT EXISTS, which PostgreSQL can fail with a unique violation on pg_type.
            // Tried first: when another host holds it, say so before waiting, since that line
            // (MigrationLog) is what extends systemd's start timeout (EXTEND_TIMEOUT_USEC)
            // past its 30 s while this host waits up to migrationLockTimeout.
            if try connection.query("SELECT pg_try_advisory_xact_lock($1)", [migrationLock]).first?.bool(0) != true {
                log?("waiting for another host's migration (the schema's lock, at most \(migrationLockTimeout))")
                try connection.query("SELECT pg_advisory_xact_lock($1)", [migrationLock])
            }
            try connection.execute("SET LOCAL lock_timeout = '\(migrationTableLockTimeout)'")
            try connection.execute("""
                CREATE TABLE IF NOT EXISTS schema_version (
                    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())
                """)
            let current = try connection.query("SELECT coalesce(max(version), 0) FROM schema_version").first?.int(0) ?? 0
            guard current <= migrations.count else {
                throw RecordStoreError.database(
                    "the database's schema is at version \(current), newer than this assetd knows (\(migrations.count)): upgrade assetd")
            }
            let target = min(last ?? migrations.count, migrations.count)
            if current < target {
                log?("migrating schema \(current) -> \(target) (PostgreSQL, one transaction: reads and writes of the tables it alters wait)")
            }
            for (index, migration) in migrations.enumerated().dropFirst(current) where index < target {
                let start = ContinuousClock.now
                do {
                    try connection.execute(migration.sql)
                } catch {
                    guard error.sqlState == "55P03" else { throw error }
                    throw RecordStoreError.database("""
                        migration "\(migration.name)" waited over \(migrationTableLockTimeout) for a table's lock held by another \
                        transaction (pg_dump, a long report? pg_stat_activity shows it): nothing was changed; it runs again at the next start (\(error))
                        """)
                }
                try connection.query("INSERT INTO schema_version (version, name) VALUES ($1, $2)", [index + 1, migration.name])
                log?("migrated \"\(migration.name)\" in \((ContinuousClock.now - start).migrationSeconds)")
            }
            try connection.execute("COMMIT")
        } catch {
            try? connection.execute("ROLLBACK")
            throw error
        }
    }

    /// Builds the `concurrentIndexes` of the schema's versions that are missing or INVALID,
    /// on `connection` (a plain one of its own, outside any transaction: CREATE INDEX
    /// CONCURRENTLY cannot run in one), after `migrate` committed. Writes to asset go on
    /// meanwhile on every host. An INVALID index (a CREATE INDEX CONCURRENTLY cancelled here
    /// or by hand: IF NOT EXISTS would keep it forever, and the planner never uses it) is
    /// dropped and built again. One host at a time: a session advisory lock, only tried, so
    /// that a host finding another one building starts at once (its searches correct, only
    /// slower until the indexes are valid). A build that fails is dropped again and logged:
    /// nothing half-built stays, and the next start tries again. Each step is logged with
    /// the index's name, the table's rows and the seconds (`log`).
    static func buildIndexes(_ connection: PGConnection, log: MigrationLog?) throws {
        // Not the pool's statement timeout (ASSETD_DATABASE_STATEMENT_TIMEOUT, for requests):
        // a build over millions of rows takes minutes. Lock waits bounded (the build waits
        // for transactions older than it: a pg_dump, a report).
        try connection.execute("SET statement_timeout = 0; SET lock_timeout = '\(migrationTableLockTimeout)'")
        let current = try connection.query("SELECT coalesce(max(version), 0) FROM schema_version").first?.int(0) ?? 0
        func valid(_ name: String) throws -> Bool? {
            try connection.query("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)", [name]).first?.bool(0)
        }
        let wanted = try concurrentIndexes.filter { try $0.version <= current && valid($0.name) != true }
        guard !wanted.isEmpty else { return }
        let lock = "\(indexLock), hashtext(current_schema())"
        guard try connection.query("SELECT pg_try_advisory_lock(\(lock))").first?.bool(0) == true else {
            log?("another host is building the indexes \(wanted.map(\.name).joined(separator: ", ")) (CREATE INDEX CONCURRENTLY): searches with a type or a substring are slower until it is done")
            return
        }
        defer { _ = try? connection.query("SELECT pg_advisory_unlock(\(lock))") }
        let rows = try connection.query("SELECT count(*) FROM asset").first?.int(0) ?? 0
        for index in wanted {
            let start = ContinuousClock.now
            do {
                // Again under the lock: another host may have built it meanwhile.
                switch try valid(index.name) {
                case true?: continue
                case false?:
                    log?("index \(index.name) is INVALID (a CREATE INDEX CONCURRENTLY that did not finish): dropping it to build it again")
                    try connection.execute("DROP INDEX CONCURRENTLY IF EXISTS \(index.name)")
                case nil: break
                }
                log?("building index \(index.name) (CREATE INDEX CONCURRENTLY over \(rows) assets; writes go on meanwhile)")
                try connection.execute("CREATE INDEX CONCURRENTLY \(index.name) ON \(index.definition)")
                log?("built index \(index.name) in \((ContinuousClock.now - start).migrationSeconds) (\(rows) assets)")
            } catch let error as PGError where !error.connectionLost {
                try? connection.execute("DROP INDEX CONCURRENTLY IF EXISTS \(index.name)")
                log?("""
                    could not build index \(index.name) after \((ContinuousClock.now - start).migrationSeconds) (\(error)): dropped again; \
                    searches with a type or a substring are slower until a start builds it (docs/OPERATIONS.md, "Upgrades": migrations v9 and v10)
                    """)
            }
        }
    }
}

extension PostgresRecordStore {
    /// For check-config: connects once (changing nothing) and reads the schema version;
    /// nil when no assetd has migrated this database yet.
    /// Also the server's `max_connections`, which the hosts' connections must stay under.
    public static func inspectSchema(url: String) throws -> (current: Int?, expected: Int, maxConnections: Int?) {
        do {
            var settings = PGPool.Settings()
            settings.size = 1
            let connection = try PGPool(url: url, settings: settings).connect()
            let maxConnections = try connection.query("SHOW max_connections").first?.int(0)
            let exists = try connection.query("SELECT to_regclass('schema_version') IS NOT NULL").first?.bool(0) ?? false
            guard exists else { return (nil, migrations.count, maxConnections) }
            return (try connection.query("SELECT coalesce(max(version), 0) FROM schema_version").first?.int(0), migrations.count, maxConnections)
        } catch let error as PGError {
            throw RecordStoreError.database("\(error)")
        }
    }
}
