#!/usr/bin/env bash
# Instructions per request inside assetd, counted by callgrind: a figure that does not
# move with the machine's noise. Starts a stack of its own, runs assetd under valgrind,
# sends N requests through nginx, and divides.
#
#   bench/callgrind-presign.sh [N=2000]             GET /s3/get-upload-url (a part URL)
#   ROUTE=list bench/callgrind-presign.sh [N=500]   GET /api/assets: a page of 50 of 60 assets
#   ASSETD_DEV_BIN=/tmp/old/assetd bench/callgrind-presign.sh   a prebuilt assetd
#   TARGET=reference bench/callgrind-presign.sh     the same part URL from bench/presign-reference.c
#                                    (the route's work in plain C) under valgrind instead, its
#                                    function serve() counted, as FastCGIServer.serve in assetd
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"
ROUTE=${ROUTE:-presign}
TARGET=${TARGET:-assetd}
case "$TARGET" in assetd) ;; reference) [ "$ROUTE" = presign ] || die "TARGET=reference answers the presign route only" ;; *) die "TARGET must be assetd or reference" ;; esac
case "$ROUTE" in
    presign) N=${1:-2000} ;;
    list) N=${1:-500} ;;
    *) die "ROUTE must be presign or list" ;;
esac
export ASSETD_STATE_DIR=${ASSETD_STATE_DIR:-$(mktemp -d /tmp/assetd-callgrind.XXXXXX)}
export ASSETD_HTTPS_PORT=${ASSETD_HTTPS_PORT:-38443} ASSETD_S3_PORT=${ASSETD_S3_PORT:-39000} ASSETD_THREADS=2
STATE=$ASSETD_STATE_DIR
command -v valgrind >/dev/null || die "valgrind is not installed (apt-get install valgrind)"
cleanup() {
    pkill -INT -f "callgrind-out-file=$STATE/" 2>/dev/null || true
    [ -n "${VALGRIND:-}" ] && kill -HUP "$VALGRIND" 2>/dev/null || true
    [ -n "${REFERENCE_NGINX:-}" ] && kill -QUIT "$REFERENCE_NGINX" 2>/dev/null || true
    "$ROOT/scripts/dev-stack" down >/dev/null 2>&1 || true
}
trap cleanup EXIT

"$ROOT/scripts/dev-stack" up >/dev/null
# ASSETD_DEV_BIN: a prebuilt assetd (a before/after pair), as the dev stack takes it.
BIN=${ASSETD_DEV_BIN:-"$(cd "$ROOT" && swift build -c release --show-bin-path)/assetd"}
if [ "$ROUTE" = list ]; then
    # 59 assets before valgrind starts (their S3 calls are not counted), one more below.
    SEED_TOKEN=$("$BIN" token --config "$STATE/assetd.env" --sub cg --workspaces 1)
    for _ in $(seq 59); do
        curl -sfk -o /dev/null -H "Authorization: Bearer $SEED_TOKEN" \
            "https://127.0.0.1:$ASSETD_HTTPS_PORT/s3/start-upload?workspaceId=1&fileType=image/jpeg"
    done
fi
if [ "$TARGET" = reference ]; then
    # assetd stays as it is (it starts the upload); the reference serves the part URLs
    # under valgrind, behind a third nginx from the same site file.
    TOKEN=$("$BIN" token --config "$STATE/assetd.env" --sub cg --workspaces 1)
    start=$(curl -sfk -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$ASSETD_HTTPS_PORT/s3/start-upload?workspaceId=1&fileType=image/jpeg")
    read -r UPLOAD ASSET KEY < <(python3 -c 'import json,sys; d = json.loads(sys.argv[1]); print(d["uploadId"], d["assetId"], d["key"])' "$start")
    echo "$UPLOAD $ASSET 1 $KEY" >"$STATE/reference-uploads.txt"
    cc -O2 -g -o "$STATE/presign-reference" "$ROOT/bench/presign-reference.c" -lfcgi -lcrypto -lpthread
    valgrind --tool=callgrind --dump-instr=no --toggle-collect='serve' --callgrind-out-file="$STATE/callgrind.out" \
        "$STATE/presign-reference" "$STATE/reference.sock" 2 "$STATE/assetd.env" "$STATE/reference-uploads.txt" \
        "$STATE/logs/reference-access.log" >"$STATE/logs/callgrind.log" 2>&1 &
    VALGRIND=$!
    wait_for "the reference under valgrind" 120 test -S "$STATE/reference.sock"
    PORT=$((ASSETD_HTTPS_PORT + 2))
    "$ROOT/scripts/lib/nginx-render" "$STATE/reference-nginx" --state "$STATE" --https-port "$PORT" \
        --socket "$STATE/reference.sock" --cors-any --log-prefix reference-nginx
    nginx -c "$STATE/reference-nginx/nginx.conf" -p "$STATE/reference-nginx" -e "$STATE/logs/reference-nginx-error.log"
    wait_for "reference nginx" 10 test -s "$STATE/reference-nginx/nginx.pid"
    REFERENCE_NGINX=$(cat "$STATE/reference-nginx/nginx.pid")
    URL="https://127.0.0.1:$PORT/s3/get-upload-url?workspaceId=1&assetId=$ASSET&UploadId=$UPLOAD&PartNumber=7"
    curl -sfk -H "Authorization: Bearer $TOKEN" "$URL" >/dev/null
    curl -sfk -H "Authorization: Bearer $TOKEN" "$URL" >/dev/null
    ab -q -n "$N" -c 2 -H "Authorization: Bearer $TOKEN" "$URL" | grep -E "Complete requests|Failed requests"
    # SIGHUP's default action ends it, and valgrind writes its output as it ends (a job
    # started with & from a script ignores SIGINT; libfcgi only notes a SIGTERM).
    kill -HUP "$VALGRIND"
    wait_for "callgrind's output" 60 test -s "$STATE/callgrind.out"
    sleep 2
    total=$(callgrind_annotate "$STATE/callgrind.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    echo "reference presign: instructions per request: $((total / (N + 2)))  ($total in serve() over $((N + 2)) requests)"
    echo "top functions: callgrind_annotate $STATE/callgrind.out | head -40"
    exit 0
fi
kill "$(cat "$STATE/pids/assetd.pid")"; sleep 1
# valgrind 3.19 cannot read the DWARF 5 that Swift 6.3 emits ("unhandled dwarf2 abbrev
# form code 0x25"): it runs a copy without debug info; the symbol table, which names the
# functions that --toggle-collect matches, stays.
objcopy --strip-debug "$BIN" "$STATE/assetd-nodebug"
# The copy is not beside assetd-thumbnailer: name the decoder.
(set -a; source "$STATE/assetd.env"; set +a; export ASSETD_THUMBNAILER="$(dirname "$BIN")/assetd-thumbnailer"
 exec valgrind --tool=callgrind --dump-instr=no --toggle-collect='*FastCGIServerAAC5serve*' \
     --callgrind-out-file="$STATE/callgrind.out" "$STATE/assetd-nodebug" serve) >"$STATE/logs/callgrind.log" 2>&1 &
VALGRIND=$!
echo $VALGRIND >"$STATE/pids/assetd.pid"
# Slow under valgrind (minutes on a busy host); stop at once if assetd exits instead.
up_or_gone() { test -S "$STATE/assetd.sock" || ! kill -0 "$VALGRIND" 2>/dev/null; }
wait_for "assetd under valgrind" 900 up_or_gone
kill -0 "$VALGRIND" 2>/dev/null || die "assetd exited under valgrind: $(grep -v '^==' "$STATE/logs/callgrind.log" | tail -3)"
TOKEN=$("$BIN" token --config "$STATE/assetd.env" --sub cg --workspaces 1)
BASE="https://127.0.0.1:$ASSETD_HTTPS_PORT"
start=$(curl -sfk -H "Authorization: Bearer $TOKEN" "$BASE/s3/start-upload?workspaceId=1&fileType=image/jpeg")
UPLOAD=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["uploadId"])' "$start")
ASSET=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["assetId"])' "$start")
URL="$BASE/s3/get-upload-url?workspaceId=1&assetId=$ASSET&UploadId=$UPLOAD&PartNumber=7"
[ "$ROUTE" = list ] && URL="$BASE/api/assets?workspaceId=1&limit=50"
curl -sfk -H "Authorization: Bearer $TOKEN" "$URL" >/dev/null
ab -q -n "$N" -c 2 -H "Authorization: Bearer $TOKEN" "$URL" | grep -E "Complete requests|Failed requests"
kill -INT "$(cat "$STATE/pids/assetd.pid")"
wait_for "callgrind's output" 60 test -s "$STATE/callgrind.out"
sleep 2
total=$(callgrind_annotate "$STATE/callgrind.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
# N requests plus the two curl calls above.
echo "$ROUTE: instructions per request: $((total / (N + 2)))  ($total in FastCGIServer.serve over $((N + 2)) requests)"
echo "top functions: callgrind_annotate $STATE/callgrind.out | head -40"
