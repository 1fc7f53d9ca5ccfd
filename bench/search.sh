#!/usr/bin/env bash
# Search and listing at 100,000 assets in one workspace (issue 19): wrk (keep-alive)
# against GET /api/assets through the dev stack's TLS nginx (JWT, SQLite, JSON of 50
# records), one run per query: the plain list (first page and a deep page), sorts,
# filters, and searches by word, prefix, accent-folded word, substring and no match.
# The assets are seeded straight into the database (no S3 objects): ready, with file
# names from a word list, a title on every 5th and tags on every 3rd; on PostgreSQL by one
# INSERT ... SELECT through psql, with the same file names, titles, tags and sizes.
#
#   bench/search.sh                          start a stack of its own, seed, measure, stop it
#   ROUND_SECONDS=5 CONNECTIONS=8 ASSETS=100000 bench/search.sh
#   LIST_ONLY=1 bench/search.sh              only the plain-list runs (for a tree without search)
#   OTHER_ASSETS=100000 bench/search.sh      SQLite: also seed workspace 2 (after workspace 1) with that
#                                            many assets that all match `beach` (beach_NNNNNN.*,
#                                            every kind), to show that workspace 1's searches do
#                                            not cost in proportion to another tenant's matches
#   BENCH_DB=postgres bench/search.sh        the same on PostgreSQL 15 (dev-stack's ASSETD_DEV_DB,
#                                            on ASSETD_PG_PORT)
#   BENCH_DB=postgres OTHER_ASSETS=100000 bench/search.sh
#                                            PostgreSQL tenancy: as many again in workspace 2, interleaved
#                                            with workspace 1's rows and matching the same queries
#   COLD=1 bench/search.sh                   after the kinds above, the cold ones: substring and title
#                                            rotating through 2,000+ distinct texts each (`cold_texts`),
#                                            more than a process's search hints keep (SearchHints.capacity,
#                                            1,024), so that every search walks first as a new text does
#   COLD=only bench/search.sh                the hinted substring and title, `q=ch_20&type=video&sort=size`
#                                            and the two cold kinds only (a short sitting)
#   BENCH_DB=postgres FLOOR=1 bench/search.sh
#                                            the floor of PostgreSQL alone under the cold kinds: the
#                                            statements of one cold search of each kind (PostgreSQL's
#                                            log), replayed by pgbench through the same texts at -c8 and
#                                            -c2, and 8 clients for 2 slots simulated (bench/search-floor.py)
#
# Run it under the exclusive lock: flock /tmp/assetd-bench.lock bench/search.sh
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"

ROUND_SECONDS=${ROUND_SECONDS:-5}
CONNECTIONS=${CONNECTIONS:-8}
LIST_CONNECTIONS=${LIST_CONNECTIONS:-64}
ASSETS=${ASSETS:-100000}
BENCH_DB=${BENCH_DB:-sqlite}
OTHER_ASSETS=${OTHER_ASSETS:-0}
case "$BENCH_DB" in sqlite|postgres) ;; *) die "BENCH_DB must be sqlite or postgres, not $BENCH_DB" ;; esac
export ASSETD_DEV_DB=$BENCH_DB
export ASSETD_THREADS=${THREADS:-16}
export ASSETD_STATE_DIR=${ASSETD_STATE_DIR:-$(mktemp -d /tmp/assetd-bench.XXXXXX)}
export ASSETD_HTTPS_PORT=${ASSETD_HTTPS_PORT:-28443}
export ASSETD_S3_PORT=${ASSETD_S3_PORT:-29000}
export ASSETD_LOG_LEVEL=${ASSETD_LOG_LEVEL:-info}
# No thumbnail tasks: the seeded assets have no objects.
export ASSETD_THUMBNAILS=off
STATE=$ASSETD_STATE_DIR

cleanup() { "$ROOT/scripts/dev-stack" down >/dev/null 2>&1 || true; }
trap cleanup EXIT

command -v wrk >/dev/null || install_dependencies
if [ "$BENCH_DB" = sqlite ]; then
    command -v sqlite3 >/dev/null || die "sqlite3 (the command-line shell) is needed to seed the database"
else
    command -v psql >/dev/null || die "psql (postgresql-client) is needed to seed the database"
fi
"$ROOT/scripts/dev-stack" up >/dev/null
BIN="$(cd "$ROOT" && swift build -c release --show-bin-path)/assetd"
TOKEN=$("$BIN" token --config "$STATE/assetd.env" --sub bench --workspaces 1 --ttl 7200)
BASE="https://127.0.0.1:$ASSETD_HTTPS_PORT"
# The seed's word list and file kinds, for either backend's SQL: file names, titles and tags
# are made of these words; 6 in 10 assets are JPEGs.
WORDS="(0, 'beach'), (1, 'sunset'), (2, 'mountain'), (3, 'forest'), (4, 'city'), (5, 'portrait'),
    (6, 'café'), (7, 'résumé'), (8, 'invoice'), (9, 'report'), (10, 'holiday'), (11, 'family'), (12, 'wedding'),
    (13, 'concert'), (14, 'garden'), (15, 'river'), (16, 'snow'), (17, 'desert'), (18, 'harbour'), (19, 'market')"
KINDS="(0, 'jpg', 'image/jpeg'), (1, 'jpg', 'image/jpeg'), (2, 'jpg', 'image/jpeg'), (3, 'jpg', 'image/jpeg'),
    (4, 'jpg', 'image/jpeg'), (5, 'jpg', 'image/jpeg'), (6, 'png', 'image/png'), (7, 'mp4', 'video/mp4'),
    (8, 'pdf', 'application/pdf'), (9, 'pdf', 'application/pdf')"

seed_postgres() {
    local url
    url=$(sed -n 's/^ASSETD_DATABASE=//p' "$STATE/assetd.env")
    say "seeding $ASSETS assets into workspace 1 and $OTHER_ASSETS into workspace 2 (PostgreSQL)"
    seed_start=$SECONDS
    # As the SQLite seed below, value for value: printf's %05d is the number left-padded
    # with zeros to 5 digits, never cut (100000 stays 100000). In the order of ids that
    # SQLite 3.40's plan gives that seed (i % 10, then i % 20 / 10, then i), so that both
    # backends answer with the same records: the answers of a run on each may be compared.
    # Workspace 2's rows alternate with workspace 1's, sharing heap pages as tenants' do.
    psql -X -q -v ON_ERROR_STOP=1 "$url" <<SQL
BEGIN;
WITH words(k, w) AS (VALUES $WORDS), kinds(k, ext, type) AS (VALUES $KINDS)
INSERT INTO asset (workspace_id, key, file_name, file_type, size, etag, status, thumbnail_status, thumbnail_reason,
                   created_at, updated_at, title, tags)
SELECT ws, ws || '/digital_assets/seed-' || i || '.' || kinds.ext,
       CASE WHEN i % 7 = 0 THEN 'IMG_' || lpad((i % 10000)::text, 4, '0') || '.' || upper(kinds.ext)
            ELSE a.w || '_' || b.w || '_' || (2000 + i % 25) || '_' || lpad(i::text, greatest(5, length(i::text)), '0')
                 || '.' || kinds.ext END,
       kinds.type, (i * 2654435761) % 50000000, 'seed', 'ready', 'none', 'seeded for bench/search.sh',
       1700000000 + i, 1700000000 + i,
       CASE WHEN i % 5 = 0 THEN 'Trip to ' || c.w || ' ' || (2000 + i % 25) END,
       CASE WHEN i % 3 = 0 THEN b.w || E'\\n' || 'tag' || (i % 50) ELSE '' END
FROM generate_series(1::bigint, greatest($ASSETS, $OTHER_ASSETS)) AS i
     CROSS JOIN (VALUES (1), (2)) AS w(ws)
     JOIN words a ON a.k = i % 20 JOIN words b ON b.k = (i / 20) % 20 JOIN words c ON c.k = (i / 3) % 20
     JOIN kinds ON kinds.k = i % 10
WHERE (ws = 1 AND i <= $ASSETS) OR (ws = 2 AND i <= $OTHER_ASSETS)
ORDER BY i % 10, (i % 20) / 10, i, ws;
COMMIT;
-- The load's count of changed rows into the statistics now (they are sent at most once a
-- second), so that the ANALYZE below zeroes it: else it lands after and the table looks
-- changed since its statistics, which assetd then does not trust (SearchHints.share).
SELECT pg_stat_force_next_flush() \g /dev/null
-- What autovacuum does some seconds after a bulk load (the visibility map, the GIN
-- indexes' pending lists merged, the planner's statistics), done now, so that every
-- run measures the same settled table.
VACUUM ANALYZE asset;
SQL
    say "seeded in $((SECONDS - seed_start)) s; table and indexes $(psql -X -Atc "SELECT pg_size_pretty(pg_total_relation_size('asset'))" "$url")"
    deep=$(psql -X -Atc "SELECT id FROM asset WHERE workspace_id = 1 ORDER BY id DESC LIMIT 1 OFFSET 50000" "$url")
}

if [ "$BENCH_DB" = postgres ]; then
    seed_postgres
else
DB="$STATE/assetd.sqlite"

# Titles and tags only where the schema has them (a tree before migration v7 has not).
if sqlite3 "$DB" "SELECT 1 FROM pragma_table_info('asset') WHERE name = 'title'" | grep -q 1; then
    label_columns=", title, tags"
    label_values=", CASE WHEN i % 5 = 0 THEN 'Trip to ' || c.w || ' ' || (2000 + i % 25) END,
                   CASE WHEN i % 3 = 0 THEN b.w || char(10) || 'tag' || (i % 50) ELSE '' END"
else
    label_columns=""; label_values=""
fi
# seed_sqlite WORKSPACE COUNT KINDS NAME FIRST JOINS [COLUMNS VALUES]: COUNT ready assets (i
# from 1) into WORKSPACE in one transaction, of the kinds KINDS ((k, ext, type) rows, kind i %
# their number), named NAME (an SQL expression of i, kinds.ext and what JOINS brings: the
# words a.w, b.w, c.w with $WORD_JOINS), created at FIRST + i; COLUMNS and VALUES add columns
# (", title, tags" and their expressions). The joins make SQLite's plan, and so the order of
# the ids: workspace 1's must stay the one the PostgreSQL seed copies.
WORD_JOINS="JOIN words a ON a.k = i % 20 JOIN words b ON b.k = (i / 20) % 20 JOIN words c ON c.k = (i / 3) % 20"
seed_sqlite() {
    local workspace=$1 count=$2 kinds=$3 name=$4 first=$5 joins=$6 columns=${7:-} values=${8:-}
    local kind_count seed_start=$SECONDS
    kind_count=$(grep -o "(" <<<"$kinds" | wc -l)
    sqlite3 "$DB" <<SQL
PRAGMA busy_timeout = 10000;
BEGIN;
WITH RECURSIVE
    n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $count),
    words(k, w) AS (VALUES $WORDS),
    kinds(k, ext, type) AS (VALUES $kinds)
INSERT INTO asset (workspace_id, key, file_name, file_type, size, etag, status, thumbnail_status, thumbnail_reason,
                   created_at, updated_at $columns)
SELECT $workspace, '$workspace/digital_assets/seed-' || i || '.' || kinds.ext, $name,
       kinds.type, (i * 2654435761) % 50000000, 'seed', 'ready', 'none', 'seeded for bench/search.sh',
       $first + i, $first + i $values
FROM n $joins JOIN kinds ON kinds.k = i % $kind_count;
COMMIT;
SQL
    say "seeded in $((SECONDS - seed_start)) s; database $(du -sh "$DB" | cut -f1)"
}

say "seeding $ASSETS assets into workspace 1"
seed_sqlite 1 "$ASSETS" "$KINDS" \
    "CASE WHEN i % 7 = 0 THEN 'IMG_' || printf('%04d', i % 10000) || '.' || upper(kinds.ext)
          ELSE a.w || '_' || b.w || '_' || (2000 + i % 25) || '_' || printf('%05d', i) || '.' || kinds.ext END" \
    1700000000 "$WORD_JOINS" "$label_columns" "$label_values"
if [ "$OTHER_ASSETS" -gt 0 ]; then
    say "seeding $OTHER_ASSETS assets into workspace 2, every one matching beach"
    seed_sqlite 2 "$OTHER_ASSETS" "(0, 'jpg', 'image/jpeg'), (1, 'mp4', 'video/mp4'), (2, 'pdf', 'application/pdf')" \
        "'beach_' || printf('%06d', i) || '.' || kinds.ext" 1800000000 ""
fi

# A deep page: the cursor after the first 50,000 assets, as the plain list pages there.
# (the id that `next` was before cursors were opaque, which still pages the default order).
deep=$(sqlite3 "$DB" "SELECT id FROM asset WHERE workspace_id = 1 ORDER BY id DESC LIMIT 1 OFFSET 50000")
fi

# cold_texts KIND: one percent-encoded search text a line, 2,000 or more, of the shape and
# selectivity of the fixed ones. substring: the end of one seed word, `_`, the start of
# another (2 or 3 letters, then 2 to 5), as `ch_ri`: the file names `a_b_YEAR_N` of that
# pair (some hundreds of rows each); and the end of one, `_`, the end of another, which no
# name has (`ch_er`). title: three words of the titles `Trip to W YEAR`, as `trip to snow`
# (about 2,500 rows each): trip, to and one of the 20 words, in each of their 6 orders and 27
# mixes of case (the same rows; distinct texts to the hints, which keep the text as typed).
cold_texts() {
    python3 - "$1" "$WORDS" <<'PY'
import itertools, re, sys, urllib.parse
kind, words = sys.argv[1], re.findall(r"'([^']*)'", sys.argv[2])
plain = [w for w in words if w.isascii()]
texts = []
if kind == "substring":
    for a, b in itertools.product(plain, plain):
        texts += [a[-k:] + "_" + b[:m] for k in (2, 3) for m in (2, 3, 4, 5)]
        texts.append(a[-2:] + "_" + b[-2:])
else:
    cases = lambda w: [w, w.capitalize(), w.upper()]
    for w in words:
        for order in itertools.permutations(["trip", "to", w]):
            texts += [" ".join(t) for t in itertools.product(*map(cases, order))]
texts = list(dict.fromkeys(texts))
assert len(texts) >= 2000, (kind, len(texts))
print("\n".join(urllib.parse.quote_plus(t) for t in texts))
PY
}

# run_cold NAME KIND: as `run`, wrk's requests rotating through KIND's `cold_texts`. Each
# of wrk's 2 threads takes every other text, so that a text comes back only after all the
# others (2,000 or more searches): the hints, 1,024 at most and all forgotten past that,
# have forgotten it by then.
run_cold() {
    local texts="$STATE/cold-$2.txt" script="$STATE/cold-$2.lua"
    cold_texts "$2" >"$texts"
    {
        echo "local texts = {"
        sed 's/.*/"&",/' "$texts"
        cat <<'LUA'
}
local next_id = 0
function setup(thread) thread:set("id", next_id); next_id = next_id + 1 end
function init(args) step = id end
function request()
    local text = texts[step % #texts + 1]
    step = step + 2
    return wrk.format("GET", "/api/assets?workspaceId=1&q=" .. text)
end
LUA
    } >"$script"
    wrk -t2 -c"$CONNECTIONS" -d"$ROUND_SECONDS"s --latency -s "$script" -H "Authorization: Bearer $TOKEN" "$BASE" >"$STATE/wrk-$1.txt"
    report "$1" "$CONNECTIONS" "$(wc -l <"$texts") texts"
}

run() { # NAME CONNECTIONS PATH
    curl -sfk -H "Authorization: Bearer $TOKEN" "$BASE$3" >"$STATE/answer-$1.json" || die "$1: assetd does not answer $3"
    wrk -t2 -c"$2" -d"$ROUND_SECONDS"s --latency -H "Authorization: Bearer $TOKEN" "$BASE$3" >"$STATE/wrk-$1.txt"
    report "$1" "$2" "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["assets"]))' "$STATE/answer-$1.json")"
}

report() { # NAME CONNECTIONS COUNT: a line of wrk's figures in $STATE/wrk-NAME.txt; stops at any non-2xx
    local out="$STATE/wrk-$1.txt" rps p50 p99 non2xx
    rps=$(awk '/Requests\/sec/ {print $2}' "$out")
    p50=$(awk '$1 == "50%" {print $2}' "$out")
    p99=$(awk '$1 == "99%" {print $2}' "$out")
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$out"); non2xx=${non2xx:-0}
    printf '%-22s %4s %8s %10s %10s %8s %7s\n' "$1" "$2" "$3" "$rps" "$p50" "$p99" "$non2xx"
    [ "$non2xx" = 0 ] || die "$1 saw $non2xx non-2xx answers"
}

# search_floor: FLOOR=1 (above). The superuser through the server's socket (local trust).
search_floor() {
    local url dir=$STATE/floor log=$STATE/postgres/postgres.log start kind clients pgbench=/usr/lib/postgresql/15/bin/pgbench
    url=$(sed -n 's/^ASSETD_DATABASE=//p' "$STATE/assetd.env")
    local su=(env PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -h "$STATE/postgres" -p "${ASSETD_PG_PORT:-5433}" -U postgres -d assetd)
    [ -x "$pgbench" ] || pgbench=$(command -v pgbench) || die "pgbench (postgresql-15) is needed for FLOOR=1"
    mkdir -p "$dir"
    # The cold texts, each with the words and the LIKE pattern assetd binds for it.
    for kind in substring title; do
        cold_texts "$kind" | python3 "$ROOT/bench/search-floor.py" texts "$kind"
    done >"$dir/texts.tsv"
    "${su[@]}" -c "DROP TABLE IF EXISTS bench_floor_text" \
        -c "CREATE TABLE bench_floor_text (kind text, i int, words text, pattern text, PRIMARY KEY (kind, i))" \
        -c "\\copy bench_floor_text FROM '$dir/texts.tsv' WITH (FORMAT csv, DELIMITER E'\\t')" \
        -c "GRANT SELECT ON bench_floor_text TO assetd"
    # One cold search of each kind with every statement logged.
    "${su[@]}" -c "ALTER SYSTEM SET log_min_duration_statement = 0" -c "SELECT pg_reload_conf()" >/dev/null
    start=$(wc -l <"$log")
    curl -sfk -o /dev/null -H "Authorization: Bearer $TOKEN" "$BASE/api/assets?workspaceId=1&q=ch_fo" || die "assetd does not answer"
    curl -sfk -o /dev/null -H "Authorization: Bearer $TOKEN" "$BASE/api/assets?workspaceId=1&q=Trip+to+garden" || die "assetd does not answer"
    "${su[@]}" -c "ALTER SYSTEM RESET log_min_duration_statement" -c "SELECT pg_reload_conf()" >/dev/null
    tail -n +"$((start + 1))" "$log" | python3 "$ROOT/bench/search-floor.py" scripts "$dir" \
        || die "the cold searches' statements are not in PostgreSQL's log ($log)"
    # The search connections' session (PostgresRecordStore.searchSession).
    export PGOPTIONS="-c default_transaction_read_only=on -c enable_seqscan=off -c max_parallel_workers_per_gather=0 -c jit=off -c plan_cache_mode=force_generic_plan -c enable_incremental_sort=off"
    printf '\n%-10s %4s %8s %8s %8s   %s\n' kind conn tps p50 p99 "8 clients for 2 slots, simulated from -c2: p50 p99"
    for kind in substring title; do
        for clients in 8 2; do
            rm -rf "$dir/log-$kind-$clients"; mkdir "$dir/log-$kind-$clients"
            (cd "$dir/log-$kind-$clients" && "$pgbench" -n -M prepared -c"$clients" -j2 -T"${FLOOR_SECONDS:-10}" --log \
                -f "$dir/cold-$kind.pgb" "$url" >out.txt 2>&1) || die "pgbench failed: $dir/log-$kind-$clients/out.txt"
            python3 "$ROOT/bench/search-floor.py" latencies "$dir/log-$kind-$clients" "$kind" "$clients" "${FLOOR_SECONDS:-10}"
        done
    done
    "${su[@]}" -c "DROP TABLE bench_floor_text"
}

say "warming up"
wrk -t2 -c8 -d2s -H "Authorization: Bearer $TOKEN" "$BASE/api/assets?workspaceId=1" >/dev/null
if [ -n "${FLOOR:-}" ]; then
    [ "$BENCH_DB" = postgres ] || die "FLOOR=1 needs BENCH_DB=postgres"
    search_floor
    exit 0
fi
printf '\n%-22s %4s %8s %10s %10s %8s %7s\n' query conn assets req/s p50 p99 non-2xx
if [ "${COLD:-}" = only ]; then
    run q-substring "$CONNECTIONS" "/api/assets?workspaceId=1&q=ch_ri"
    run q-title "$CONNECTIONS" "/api/assets?workspaceId=1&q=trip+to+snow"
    run q-substring-sort "$CONNECTIONS" "/api/assets?workspaceId=1&q=ch_20&type=video&sort=size"
    run_cold cold-substring substring
    run_cold cold-title title
    exit 0
fi
run list "$LIST_CONNECTIONS" "/api/assets?workspaceId=1"
run list-c8 "$CONNECTIONS" "/api/assets?workspaceId=1"
run list-deep "$CONNECTIONS" "/api/assets?workspaceId=1&cursor=$deep"
[ -n "${LIST_ONLY:-}" ] && exit 0
run sort-name "$CONNECTIONS" "/api/assets?workspaceId=1&sort=name"
run sort-size-asc "$CONNECTIONS" "/api/assets?workspaceId=1&sort=size&order=asc"
run type-pdf "$CONNECTIONS" "/api/assets?workspaceId=1&type=pdf"
run q-word "$CONNECTIONS" "/api/assets?workspaceId=1&q=beach"
run q-prefix "$CONNECTIONS" "/api/assets?workspaceId=1&q=sun"
run q-accent "$CONNECTIONS" "/api/assets?workspaceId=1&q=cafe"
run q-two-words "$CONNECTIONS" "/api/assets?workspaceId=1&q=garden+2011"
run q-substring "$CONNECTIONS" "/api/assets?workspaceId=1&q=ch_ri"
run q-rare "$CONNECTIONS" "/api/assets?workspaceId=1&q=IMG_0042"
run q-none "$CONNECTIONS" "/api/assets?workspaceId=1&q=zzzq"
run q-title "$CONNECTIONS" "/api/assets?workspaceId=1&q=trip+to+snow"
run q-type-sort "$CONNECTIONS" "/api/assets?workspaceId=1&q=beach&type=video&sort=size"
run q-sort-size "$CONNECTIONS" "/api/assets?workspaceId=1&q=beach&sort=size"
run q-prefix-river "$CONNECTIONS" "/api/assets?workspaceId=1&q=rive"
run q-substring-sort "$CONNECTIONS" "/api/assets?workspaceId=1&q=ch_20&type=video&sort=size"
run q-prefix-name "$CONNECTIONS" "/api/assets?workspaceId=1&q=bea&sort=name"
if [ -n "${COLD:-}" ]; then
    run_cold cold-substring substring
    run_cold cold-title title
fi
