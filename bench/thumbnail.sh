#!/usr/bin/env bash
# Thumbnails (issue 9), through the dev stack (TLS nginx, the release assetd, moto):
#  1. a 24 MP JPEG (6000x4000): the task's decode+encode time (assetd's log, download
#     excluded) against `vipsthumbnail` (same size, quality, strip) and ImageMagick's
#     `convert -thumbnail` on the same file, in the same run, alternated; wall time and
#     peak RSS of each tool (/usr/bin/time). Target: assetd <= 1.2x vipsthumbnail;
#  2. thumbnails per second at the default ASSETD_THUMBNAIL_CONCURRENCY: 50 direct
#     uploads of 1800x1200 JPEGs in a burst (8 clients), from the first upload to the
#     last thumbnail ready;
#  3. assetd's peak RSS during that burst (sampled every 20 ms). Target: < 150 MB;
#  4. presign (GET /s3/get-upload-url) p50/p99 on one keep-alive connection, idle (200
#     calls) and during the burst, until its last thumbnail is ready.
#
#   bench/thumbnail.sh          ROUNDS=5 BURST=50 bench/thumbnail.sh
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"

ROUNDS=${ROUNDS:-5}
BURST=${BURST:-50}
export ASSETD_STATE_DIR=${ASSETD_STATE_DIR:-$(mktemp -d /tmp/assetd-thumbs.XXXXXX)}
export ASSETD_HTTPS_PORT=${ASSETD_HTTPS_PORT:-57443}
export ASSETD_S3_PORT=${ASSETD_S3_PORT:-57000}
export ASSETD_LOG_LEVEL=info # the "thumbnail ready" lines carry decode_ms
STATE=$ASSETD_STATE_DIR
trap '"$ROOT/scripts/dev-stack" down >/dev/null 2>&1 || true' EXIT

install_dependencies
# ImageMagick for the comparison only (Debian's convert, not a stand-in on PATH).
CONVERT=/usr/bin/convert-im6.q16
[ -x "$CONVERT" ] || { apt-get install -y -qq --no-install-recommends imagemagick >/dev/null; }
"$ROOT/scripts/dev-stack" up >/dev/null
set -a; source "$STATE/assetd.env"; set +a
BIN="$(cd "$ROOT" && swift build -c release --show-bin-path)/assetd"
TOKEN=$("$BIN" token --config "$STATE/assetd.env" --sub bench --workspaces 1 --ttl 7200)
PID=$(cat "$STATE/pids/assetd.pid")
LOG="$STATE/logs/assetd.log"
[ -f "$LOG" ] || die "assetd's log is not at $LOG"
say "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); thumbnail concurrency ${ASSETD_THUMBNAIL_CONCURRENCY:-default}"

python3 - "$STATE" "$BURST" <<'PY'
import io, os, random, sys
from PIL import Image, ImageFilter
state, burst = sys.argv[1], int(sys.argv[2])
random.seed(9)
# A photo-like 24 MP picture: low-frequency noise scaled up, plus fine grain.
base = Image.frombytes("RGB", (300, 200), os.urandom(300 * 200 * 3)).resize((6000, 4000), Image.BICUBIC)
grain = Image.effect_noise((6000, 4000), 24).convert("RGB")
Image.blend(base, grain, 0.25).save(f"{state}/24mp.jpg", "JPEG", quality=90)
for i in range(burst):
    small = Image.frombytes("RGB", (90, 60), os.urandom(90 * 60 * 3)).resize((1800, 1200), Image.BICUBIC)
    small.save(f"{state}/burst-{i}.jpg", "JPEG", quality=88)
PY
say "24 MP JPEG: $(stat -c %s "$STATE/24mp.jpg") bytes"

upload() { # FILE: prints the asset id
    curl -sf --cacert "$STATE/tls/cert.pem" -H "Authorization: Bearer $TOKEN" \
        -F "file=@$1;type=image/jpeg" "https://127.0.0.1:$ASSETD_HTTPS_PORT/api/assets/upload?workspaceId=1" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["asset"]["id"])'
}
thumbnail_status() { # ID
    curl -sf --cacert "$STATE/tls/cert.pem" -H "Authorization: Bearer $TOKEN" \
        "https://127.0.0.1:$ASSETD_HTTPS_PORT/api/assets/$1?workspaceId=1" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["asset"]["thumbnail"]["status"])'
}
wait_ready() { # ID
    local i
    for i in $(seq 1 600); do
        case $(thumbnail_status "$1") in ready) return 0 ;; failed) die "thumbnail of $1 failed" ;; esac
        sleep 0.1
    done
    die "thumbnail of $1 not ready in 60 s"
}
decode_ms() { # ID: the task's decode_ms from the log
    grep "thumbnail ready" "$LOG" | grep -E "asset=$1( |$)" | sed -n 's/.*decode_ms=\([0-9]*\).*/\1/p' | tail -1
}

say "1. 24 MP JPEG, $ROUNDS rounds, alternated"
: >"$STATE/round.csv"
for round in $(seq 1 "$ROUNDS"); do
    id=$(upload "$STATE/24mp.jpg"); wait_ready "$id"; ms=$(decode_ms "$id")
    vt=$( { /usr/bin/time -f "%e %M" vipsthumbnail "$STATE/24mp.jpg" --size 512 -o "$STATE/vt.jpg[Q=80,strip]" ; } 2>&1 | tail -1)
    im=$( { /usr/bin/time -f "%e %M" "$CONVERT" "$STATE/24mp.jpg" -thumbnail 512x512 -quality 80 -strip "$STATE/im.jpg" ; } 2>&1 | tail -1)
    echo "$ms ${vt% *} ${vt#* } ${im% *} ${im#* }" >>"$STATE/round.csv"
    printf '  round %s: assetd task %s ms; vipsthumbnail %s s (%s KB peak); convert %s s (%s KB peak)\n' \
        "$round" "$ms" "${vt% *}" "${vt#* }" "${im% *}" "${im#* }" >&2
done
python3 - "$STATE/round.csv" <<'PY'
import statistics, sys
rows = [list(map(float, line.split())) for line in open(sys.argv[1]) if line.strip()]
med = lambda i: statistics.median(r[i] for r in rows)
task, vt, vt_kb, im, im_kb = med(0), med(1) * 1000, med(2), med(3) * 1000, med(4)
print(f"  median: assetd task {task:.0f} ms | vipsthumbnail {vt:.0f} ms, {vt_kb/1024:.0f} MB | "
      f"convert -thumbnail {im:.0f} ms, {im_kb/1024:.0f} MB | assetd/vipsthumbnail {task/vt:.2f}x, convert/vipsthumbnail {im/vt:.1f}x time, {im_kb/vt_kb:.1f}x memory",
      file=sys.stderr)
PY

say "2-3. a burst of $BURST uploads (8 clients): thumbnails per second and assetd's peak RSS"
rss_peak=$STATE/rss-peak
( peak=0; while kill -0 "$PID" 2>/dev/null && [ ! -e "$STATE/burst-done" ]; do
      rss=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status"); ((rss > peak)) && peak=$rss; echo "$peak" >"$rss_peak"; sleep 0.02
  done ) &
sampler=$!
rss_before=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
PYTHONPATH="$ROOT/bench/lib" python3 - "$STATE" "$BURST" "$TOKEN" "$ASSETD_HTTPS_PORT" "$rss_before" "$rss_peak" <<'PY'
import concurrent.futures, json, os, sys, time
import requests
from presign_probe import PresignProbe
state, burst, token, port, before, peak_file = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
base, cert = f"https://127.0.0.1:{port}", f"{state}/tls/cert.pem"
headers = {"Authorization": f"Bearer {token}"}
probe = PresignProbe(base, cert, headers)
probe.start()
def upload(i):
    data = open(f"{state}/burst-{i}.jpg", "rb").read()
    for _ in range(20):
        r = requests.post(base + "/api/assets/upload", params={"workspaceId": 1}, headers=headers, verify=cert, timeout=120,
                          files={"file": (f"b{i}.jpg", data, "image/jpeg")})
        if r.status_code == 200:
            return r.json()["asset"]["id"], 0
        if r.status_code != 503:
            raise SystemExit(f"upload {i}: {r.status_code} {r.text[:200]}")
        time.sleep(0.2)
    raise SystemExit(f"upload {i}: still 503")
start = time.monotonic()
with concurrent.futures.ThreadPoolExecutor(8) as pool:
    ids = [asset_id for asset_id, _ in pool.map(upload, range(burst))]
uploaded = time.monotonic()
pending = set(ids)
while pending and time.monotonic() - start < 300:
    for asset_id in list(pending):
        status = requests.get(f"{base}/api/assets/{asset_id}", params={"workspaceId": 1}, headers=headers, verify=cert,
                              timeout=30).json()["asset"]["thumbnail"]["status"]
        if status == "failed":
            raise SystemExit(f"thumbnail of {asset_id} failed")
        if status == "ready":
            pending.discard(asset_id)
    time.sleep(0.05)
end = time.monotonic()
probe.stop()
if pending:
    raise SystemExit(f"{len(pending)} thumbnails not ready after 300 s")
open(f"{state}/burst-done", "w").close()
time.sleep(0.1)
peak = int(open(peak_file).read().strip() or 0)
print(f"  {burst} uploads in {uploaded - start:.1f} s; all {burst} thumbnails ready {end - start:.1f} s after the first upload: "
      f"{burst / (end - start):.1f} thumbnails/s (uploads included); assetd RSS {before / 1024:.0f} MB before, "
      f"peak {peak / 1024:.0f} MB (target < 150 MB)", file=sys.stderr)
print(probe.report("the burst"), file=sys.stderr)
PY
wait "$sampler" || true
grep -c "thumbnail ready" "$LOG" | xargs -I{} echo "  thumbnail ready lines in the log: {}" >&2
