#!/usr/bin/env bash
# Records on PostgreSQL against SQLite (issue 18), in one run: presign (GET
# /s3/get-upload-url: the upload's lookup, which PostgreSQL reads from the database every
# time without its cache, from memory with ASSETD_DATABASE_UPLOAD_CACHE=on as SQLite does)
# and list (GET /api/assets, 50 a page) req/s with wrk -t2 -c64 through the dev stack's TLS
# nginx, one assetd on SQLite, then one on PostgreSQL with its upload cache, then one
# without, alternated ROUNDS times; then thumbnails/s of a burst of BURST direct uploads
# with 1 and with 2 assetd instances on PostgreSQL (BURST=0: none).
#
#   flock -o /tmp/assetd-bench.lock bench/database.sh
#   ROUNDS=2 ROUND_SECONDS=10 BURST=40 THREADS=16 bench/database.sh
#
# Ports: ASSETD_HTTPS_PORT (28443), ASSETD_S3_PORT (29000), ASSETD_PG_PORT (25433).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"

ROUNDS=${ROUNDS:-2}  # 0: thumbnails only
ROUND_SECONDS=${ROUND_SECONDS:-10}
BURST=${BURST:-40}
export ASSETD_THREADS=${THREADS:-16}
export ASSETD_HTTPS_PORT=${ASSETD_HTTPS_PORT:-28443} ASSETD_S3_PORT=${ASSETD_S3_PORT:-29000} ASSETD_PG_PORT=${ASSETD_PG_PORT:-25433}
export ASSETD_LOG_LEVEL=${ASSETD_LOG_LEVEL:-info}
WORK=$(mktemp -d /tmp/assetd-bench-db.XXXXXX)
BASE="https://127.0.0.1:$ASSETD_HTTPS_PORT"
BIN="$(cd "$ROOT" && swift build -c release --show-bin-path)/assetd"
current=""

stop_stack() {
    [ -n "$current" ] && ASSETD_STATE_DIR=$current "$ROOT/scripts/dev-stack" down >/dev/null 2>&1 || true
    current=""
}
trap 'stop_stack' EXIT

start_stack() { # NAME DB INSTANCES THUMBNAILS
    stop_stack
    current="$WORK/$1"
    ASSETD_STATE_DIR=$current ASSETD_DEV_DB=$2 ASSETD_DEV_INSTANCES=$3 ASSETD_THUMBNAILS=$4 \
        "$ROOT/scripts/dev-stack" up >"$WORK/$1-up.log" 2>&1 || { tail -20 "$WORK/$1-up.log" >&2; die "the $1 stack did not start"; }
    TOKEN=$("$BIN" token --config "$current/assetd.env" --sub bench --workspaces 1 --ttl 7200)
}

get() { curl -sfk -H "Authorization: Bearer $TOKEN" "$BASE$1"; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

wrk_rps() { # PATH_QUERY: req/s, and non-2xx answers
    local out
    out=$(wrk -t2 -c64 -d"${ROUND_SECONDS}s" --latency -H "Authorization: Bearer $TOKEN" "$BASE$1")
    local non2xx
    non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    echo "$(awk '/Requests\/sec/ {print $2}' <<<"$out") p99=$(awk '$1 == "99%" {print $2}' <<<"$out") non2xx=${non2xx:-0}"
}

measure() { # NAME DB [UPLOAD_CACHE]: presign and list req/s on a fresh stack
    ASSETD_DATABASE_UPLOAD_CACHE=${3:-on} start_stack "$1" "$2" 1 off
    local started upload asset i
    started=$(get "/s3/start-upload?workspaceId=1&fileType=image/jpeg&fileSize=104857600")
    upload=$(json '["uploadId"]' <<<"$started")
    asset=$(json '["assetId"]' <<<"$started")
    for ((i = 0; i < 60; i++)); do get "/s3/start-upload?workspaceId=1&fileType=image/png" >/dev/null; done
    get "/s3/get-upload-url?workspaceId=1&assetId=$asset&UploadId=$upload&PartNumber=7" >/dev/null || die "no presign on $1"
    [ "$(get "/api/assets?workspaceId=1&limit=50" | json '["assets"].__len__()')" = 50 ] || die "no full page on $1"
    echo "$1 presign $(wrk_rps "/s3/get-upload-url?workspaceId=1&assetId=$asset&UploadId=$upload&PartNumber=7")"
    echo "$1 list $(wrk_rps "/api/assets?workspaceId=1&limit=50")"
}

# In a subshell (the pipe): it stops its own last stack.
for ((round = 1; round <= ROUNDS; round++)); do
    measure sqlite sqlite
    measure postgres postgres on
    measure postgres-nocache postgres off
    ((round < ROUNDS)) || stop_stack
done | tee "$WORK/rps.txt"

((ROUNDS == 0)) || python3 - "$WORK/rps.txt" <<'PY'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    db, route, rps = line.split()[:3]
    rows.setdefault((db, route), []).append(float(rps))
for route in ("presign", "list"):
    s = statistics.mean(rows[("sqlite", route)])
    p, n = statistics.mean(rows[("postgres", route)]), statistics.mean(rows[("postgres-nocache", route)])
    print(f"{route}: SQLite {s:,.0f} req/s, PostgreSQL {p:,.0f} req/s ({p / s:.2f}x), "
          f"PostgreSQL without upload cache {n:,.0f} req/s ({n / s:.2f}x)")
PY
((BURST > 0)) || exit 0

# Thumbnails: BURST direct uploads of a 1800x1200 JPEG, 8 at a time, then the time until
# every thumbnail is ready.
python3 -c '
import random, sys
from PIL import Image
random.seed(7)
im = Image.new("RGB", (1800, 1200))
im.putdata([(x * 255 // 1800, y * 255 // 1200, random.randrange(256)) for y in range(1200) for x in range(1800)])
im.save(sys.argv[1], "JPEG", quality=90)' "$WORK/photo.jpg"
for instances in 1 2; do
    start_stack "thumbnails-$instances" postgres "$instances" on
    t0=$(date +%s.%N)
    seq "$BURST" | xargs -P 8 -I{} curl -sfk -o /dev/null -H "Authorization: Bearer $TOKEN" \
        -F "file=@$WORK/photo.jpg" "$BASE/api/assets/upload?workspaceId=1" || die "an upload failed"
    deadline=$((SECONDS + 300))
    while true; do
        ready=$(get "/api/assets?workspaceId=1&limit=200" | python3 -c 'import json,sys; print(sum(a["thumbnail"]["status"] in ("ready", "failed") for a in json.load(sys.stdin)["assets"]))')
        ((ready >= BURST)) && break
        ((SECONDS < deadline)) || die "thumbnails not ready within 300 s ($ready of $BURST)"
        sleep 0.2
    done
    t1=$(date +%s.%N)
    failed=$(get "/api/assets?workspaceId=1&limit=200" | python3 -c 'import json,sys; print(sum(a["thumbnail"]["status"] == "failed" for a in json.load(sys.stdin)["assets"]))')
    python3 -c "import sys; n, t = int(sys.argv[1]), float(sys.argv[3]) - float(sys.argv[2]); print(f'thumbnails, {sys.argv[4]} instance(s) on PostgreSQL: {n} in {t:.1f} s, {n / t:.2f} thumbnails/s (failed: {sys.argv[5]})')" \
        "$BURST" "$t0" "$t1" "$instances" "$failed"
done
stop_stack
