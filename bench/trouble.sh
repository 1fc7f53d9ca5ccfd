#!/usr/bin/env bash
# What trouble costs, on a stack of its own:
#  1. presign latency (GET /s3/get-upload-url, wrk -t2 -c16 --latency) idle, then while the
#     S3 server is stopped (SIGSTOP) with 40 S3-bound requests (start-upload) in flight:
#     p50 and p99, and how long the S3-bound requests took to be answered, with what;
#  2. the time to refuse a 1 MiB JSON body of distinct keys (complete-upload), alone and 8
#     at once, with /healthz timed meanwhile;
#  3. the content check after complete-upload (one ranged GET of 64 KiB, libmagic): its
#     time from assetd's "asset ready" lines (check_ms) over N one-part uploads.
#
#   bench/trouble.sh          SECONDS_PER_RUN=10 CHECKS=50 bench/trouble.sh
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"

RUN_SECONDS=${SECONDS_PER_RUN:-10}
CHECKS=${CHECKS:-50}
export ASSETD_STATE_DIR=${ASSETD_STATE_DIR:-$(mktemp -d /tmp/assetd-trouble.XXXXXX)}
export ASSETD_HTTPS_PORT=${ASSETD_HTTPS_PORT:-38443}
export ASSETD_S3_PORT=${ASSETD_S3_PORT:-39000}
export ASSETD_LOG_LEVEL=info
STATE=$ASSETD_STATE_DIR
trap '[ -n "${S3_PID:-}" ] && kill -CONT "$S3_PID" 2>/dev/null; "$ROOT/scripts/dev-stack" down >/dev/null 2>&1 || true' EXIT

command -v wrk >/dev/null || install_dependencies
"$ROOT/scripts/dev-stack" up >/dev/null
BIN="$(cd "$ROOT" && swift build -c release --show-bin-path)/assetd"
TOKEN=$("$BIN" token --config "$STATE/assetd.env" --sub bench --workspaces 1 --ttl 7200)
BASE="https://127.0.0.1:$ASSETD_HTTPS_PORT"
AUTH="Authorization: Bearer $TOKEN"
S3_PID=$(cat "$STATE/pids/s3.pid")
json() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
start=$(curl -sfk -H "$AUTH" "$BASE/s3/start-upload?workspaceId=1&fileType=image/jpeg&fileSize=104857600")
PATH_Q="/s3/get-upload-url?workspaceId=1&assetId=$(json "$start" assetId)&UploadId=$(json "$start" uploadId)&PartNumber=7"

latency() { # NAME: p50 p99 of a wrk run on the presign route
    wrk -t2 -c16 -d"${RUN_SECONDS}"s --latency -H "$AUTH" "$BASE$PATH_Q" >"$STATE/wrk-$1.txt"
    echo "$(awk '$1 == "50%" {print $2}' "$STATE/wrk-$1.txt") $(awk '$1 == "99%" {print $2}' "$STATE/wrk-$1.txt") $(awk '/Non-2xx/ {print $NF}' "$STATE/wrk-$1.txt")"
}

say "1. presign latency, idle and with the S3 server stopped"
latency warm >/dev/null
read -r idle50 idle99 idlebad < <(latency idle)
kill -STOP "$S3_PID"
hung_started=$(date +%s.%N)
for i in $(seq 1 40); do
    curl -sk -o /dev/null -w '%{http_code} %{time_total}\n' -H "$AUTH" \
        "$BASE/s3/start-upload?workspaceId=1&fileType=image/png" >"$STATE/hung-$i.txt" &
done
sleep 0.3
read -r hung50 hung99 hungbad < <(latency hung)
wait
kill -CONT "$S3_PID"
statuses=$(cut -d' ' -f1 "$STATE"/hung-*.txt | sort | uniq -c | awk '{printf "%s×%s ", $1, $2}')
slowest=$(cut -d' ' -f2 "$STATE"/hung-*.txt | sort -n | tail -1)
printf '%-28s %10s %10s %8s\n' "" p50 p99 non-2xx
printf '%-28s %10s %10s %8s\n' "presign, S3 idle" "$idle50" "$idle99" "${idlebad:-0}"
printf '%-28s %10s %10s %8s\n' "presign, S3 stopped" "$hung50" "$hung99" "${hungbad:-0}"
echo "40 S3-bound requests while S3 was stopped: $statuses; the slowest answered after ${slowest} s"
# Recovery: the first start-upload that succeeds after SIGCONT.
for _ in $(seq 1 60); do
    code=$(curl -sk -o /dev/null -w '%{http_code}' -H "$AUTH" "$BASE/s3/start-upload?workspaceId=1&fileType=image/png")
    [ "$code" = 200 ] && break
    sleep 0.5
done
echo "after SIGCONT: start-upload answers $code again after $(python3 -c "import time; print(f'{time.time() - $hung_started:.1f}')") s from the stop"

say "2. a 1 MiB JSON body of distinct keys"
python3 - "$STATE/keys.json" <<'PY'
import sys
members, size, i = [], 2, 0
while True:
    m = f'"k{i}":{i}'
    if size + len(m) + 1 > 1024 * 1024 - 64: break
    members.append(m); size += len(m) + 1; i += 1
open(sys.argv[1], "w").write("{" + ",".join(members) + "}")
print(f"{len(members)} keys, {size} bytes")
PY
post_keys() { curl -sk -o /dev/null -w '%{http_code} %{time_total}\n' -H "$AUTH" -H 'Content-Type: application/json' \
    --data-binary @"$STATE/keys.json" "$BASE/s3/complete-upload"; }
for i in 1 2 3 4 5; do post_keys; done | awk '{print "alone: " $1 " in " $2 " s"}'
for i in $(seq 1 8); do post_keys >"$STATE/keys-$i.txt" & done
sleep 0.05
health=$(curl -sk -o /dev/null -w '%{time_total}' "$BASE/healthz")
wait
echo "8 at once: $(cut -d' ' -f2 "$STATE"/keys-*.txt | sort -n | tail -1) s for the slowest; /healthz meanwhile: ${health} s"

say "3. the content check after complete-upload ($CHECKS one-part uploads)"
python3 - "$BASE" "$TOKEN" "$STATE/tls/cert.pem" "$CHECKS" <<'PY'
import io, sys, requests
from PIL import Image
base, token, cert, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
h = {"Authorization": f"Bearer {token}"}
out = io.BytesIO(); Image.new("RGB", (300, 200), (9, 99, 199)).save(out, "JPEG"); data = out.getvalue()
for _ in range(n):
    s = requests.get(base + "/s3/start-upload", params={"workspaceId": 1, "fileType": "image/jpeg"}, headers=h, verify=cert).json()
    u = requests.get(base + "/s3/get-upload-url", params={"workspaceId": 1, "assetId": s["assetId"], "UploadId": s["uploadId"], "PartNumber": 1}, headers=h, verify=cert).json()["url"]
    etag = requests.put(u, data=data).headers["ETag"]
    r = requests.post(base + "/s3/complete-upload", json={"uploadId": s["uploadId"], "assetId": s["assetId"], "workspaceId": 1,
                      "parts": [{"ETag": etag, "PartNumber": 1}]}, headers=h, verify=cert)
    assert r.status_code == 200, r.text
PY
grep -o 'check_ms=[0-9.]*' "$STATE/logs/assetd.log" | cut -d= -f2 | sort -n | python3 -c '
import sys
v = [float(x) for x in sys.stdin.read().split()]
v.sort()
print(f"check_ms over {len(v)} completes: median {v[len(v)//2]:.2f} ms, p90 {v[int(len(v)*0.9)]:.2f} ms, max {v[-1]:.2f} ms")'
