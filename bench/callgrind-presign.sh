#!/usr/bin/env bash
# Instructions per request inside assetd, counted by callgrind: a figure that does not
# move with the machine's noise. Starts a stack of its own, runs assetd under valgrind,
# sends N requests through nginx, and divides.
#
#   bench/callgrind-presign.sh [N=2000]             GET /s3/get-upload-url (a part URL)
#   ROUTE=list bench/callgrind-presign.sh [N=500]   GET /api/assets: a page of 50 of 60 assets
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"
ROUTE=${ROUTE:-presign}
case "$ROUTE" in
    presign) N=${1:-2000} ;;
    list) N=${1:-500} ;;
    *) die "ROUTE must be presign or list" ;;
esac
export ASSETD_STATE_DIR=${ASSETD_STATE_DIR:-$(mktemp -d /tmp/assetd-callgrind.XXXXXX)}
export ASSETD_HTTPS_PORT=${ASSETD_HTTPS_PORT:-38443} ASSETD_S3_PORT=${ASSETD_S3_PORT:-39000} ASSETD_THREADS=2
STATE=$ASSETD_STATE_DIR
command -v valgrind >/dev/null || die "valgrind is not installed (apt-get install valgrind)"
cleanup() { pkill -INT -f "callgrind-out-file=$STATE/" 2>/dev/null || true; "$ROOT/scripts/dev-stack" down >/dev/null 2>&1 || true; }
trap cleanup EXIT

"$ROOT/scripts/dev-stack" up >/dev/null
BIN="$(cd "$ROOT" && swift build -c release --show-bin-path)/assetd"
if [ "$ROUTE" = list ]; then
    # 59 assets before valgrind starts (their S3 calls are not counted), one more below.
    SEED_TOKEN=$("$BIN" token --config "$STATE/assetd.env" --sub cg --workspaces 1)
    for _ in $(seq 59); do
        curl -sfk -o /dev/null -H "Authorization: Bearer $SEED_TOKEN" \
            "https://127.0.0.1:$ASSETD_HTTPS_PORT/s3/start-upload?workspaceId=1&fileType=image/jpeg"
    done
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
