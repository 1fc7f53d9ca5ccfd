#!/usr/bin/env bash
# Direct upload (POST /api/assets/upload) through TLS nginx and assetd to the S3 server:
#  1. time for 1, 10 and 25 MB JPEGs against the physical floor, measured in the same run
#     and alternated: nginx buffering the same form into bench/floor.c (TLS, buffering,
#     the FastCGI transfer, no work) plus a raw curl PUT of the same file to the same S3
#     (a presigned URL). Target: floor / assetd >= 0.9. assetd's own split of its time
#     (receive: form, spool, digests, libmagic; store: PutObject) comes from its log;
#  2. assetd's peak RSS during 8 concurrent 25 MB uploads (target: grows < 32 MB);
#  3. ab -n 2000 -c 32 with a 50 KB image: req/s, p99, failed requests (target 0);
#  4. the peer users would otherwise write (bench/peer: Flask + boto3 upload_fileobj on
#     gunicorn with 2 workers, behind an nginx with the same TLS and buffering): uploads
#     per second with 8 concurrent clients (1 and 10 MB) and peak RSS, against assetd's.
#     Target: assetd >= 2x the peer's throughput, < half its memory. Each run also counts
#     the CPU that every process spent per upload (S3 server, nginx, the service, and the
#     rest: the ab client and the kernel), and S3 alone is timed with wrk (raw PUTs of
#     the same file, 8 at once): on a machine whose cores all of them share, these say
#     how fast the service could be at best.
#
# ASSETD_THUMBNAILS is off unless set: the floor and the peer make no thumbnails, so
# assetd makes none either (like for like). ASSETD_THUMBNAILS=on measures it with them.
#
#   bench/direct.sh            ROUNDS=15 AB_REQUESTS=2000 PEER_REQUESTS=200 bench/direct.sh
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"

ROUNDS=${ROUNDS:-15}
AB_REQUESTS=${AB_REQUESTS:-2000}
export ASSETD_STATE_DIR=${ASSETD_STATE_DIR:-$(mktemp -d /tmp/assetd-direct.XXXXXX)}
export ASSETD_HTTPS_PORT=${ASSETD_HTTPS_PORT:-58443}
export ASSETD_S3_PORT=${ASSETD_S3_PORT:-59000}
# info: the "asset ready" lines carry receive_ms and store_ms.
export ASSETD_LOG_LEVEL=${ASSETD_LOG_LEVEL:-info}
export ASSETD_THUMBNAILS=${ASSETD_THUMBNAILS:-off}
STATE=$ASSETD_STATE_DIR
FLOOR_PORT=$((ASSETD_HTTPS_PORT + 1))
source "$ROOT/bench/lib-floor.sh"
trap 'stop_floor; "$ROOT/scripts/dev-stack" down >/dev/null 2>&1 || true' EXIT

command -v ab >/dev/null || install_dependencies
"$ROOT/scripts/dev-stack" up >/dev/null
set -a; source "$STATE/assetd.env"; set +a
BIN="$(cd "$ROOT" && swift build -c release --show-bin-path)/assetd"
TOKEN=$("$BIN" token --config "$STATE/assetd.env" --sub bench --workspaces 1 --ttl 7200)
API="https://127.0.0.1:$ASSETD_HTTPS_PORT/api/assets/upload?workspaceId=1"
CERT="$STATE/tls/cert.pem"
PID=$(cat "$STATE/pids/assetd.pid")
start_floor "$FLOOR_PORT" "${ASSETD_THREADS:-16}"

say "making test images"
python3 - "$STATE" <<'PY'
import io, os, sys
from PIL import Image
state = sys.argv[1]
def jpeg(target, path):
    # Random pixels at quality 95: about 2.4 bytes a pixel; then pad with a JPEG comment-free
    # trailer of zeros after EOI up to exactly `target` bytes (still detected as JPEG).
    side = int((target / 2.6) ** 0.5)
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "JPEG", quality=95)
    data = out.getvalue()
    assert len(data) <= target, (len(data), target)
    open(path, "wb").write(data + bytes(target - len(data)))
jpeg(1_000_000, f"{state}/1MB.jpg")
jpeg(10_000_000, f"{state}/10MB.jpg")
jpeg(25_000_000, f"{state}/25MB.jpg")
jpeg(50_000, f"{state}/50KB.jpg")
boundary = "----assetdbench"
def form(name, out):
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + open(f"{state}/{name}", "rb").read() + f"\r\n--{boundary}--\r\n".encode()
    open(f"{state}/{out}", "wb").write(body)
form("50KB.jpg", "small.form")
form("1MB.jpg", "1MB.form")
form("10MB.jpg", "10MB.form")
PY

# Presigned PUT URLs, one per line, for the keys given (under bench/raw/).
presigned_put() {
    python3 - "$@" <<'PY'
import os, sys, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"], region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
                  aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"], aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                  config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
for key in sys.argv[1:]:
    print(s3.generate_presigned_url("put_object", Params={"Bucket": os.environ["AWS_BUCKET"], "Key": "bench/raw/" + key}, ExpiresIn=3600))
PY
}

# Without Expect: 100-continue, as assetd's own PutObject (curl waits for a 100 above 1 MiB).
raw_put() { curl -sf -o /dev/null -w '%{time_total}' -T "$1" -H 'Expect:' -H 'Content-Type: image/jpeg' "$(presigned_put "$(basename "$1")")"; }
via_assetd() {
    curl -sf -o /dev/null -w '%{time_total}' --cacert "$CERT" -H "Authorization: Bearer $TOKEN" \
        -F "file=@$1;type=image/jpeg" "$API"
}

via_floor() {
    curl -sf -o /dev/null -w '%{time_total}' --cacert "$CERT" -F "file=@$1;type=image/jpeg" \
        "https://127.0.0.1:$FLOOR_PORT/api/assets/upload"
}
# receive_ms and store_ms of the last "asset ready" line.
phases() { grep '"asset ready"\|asset ready' "$STATE/logs/assetd.log" | tail -1 | grep -o 'receive_ms=[0-9.]*\|store_ms=[0-9.]*' | cut -d= -f2 | paste -sd' '; }

printf '\n%-6s %-6s %8s %8s %9s %9s %13s %11s %9s\n' size round raw_s floor_s "raw+floor" assetd_s "floor/assetd" receive_ms store_ms
for size in 1MB 10MB 25MB; do
    file="$STATE/$size.jpg"
    : >"$STATE/rounds-$size.txt"
    for round in $(seq 1 "$ROUNDS"); do
        r=$(raw_put "$file"); f=$(via_floor "$file"); a=$(via_assetd "$file")
        read -r receive store < <(phases)
        echo "$r $f $a $receive $store" >>"$STATE/rounds-$size.txt"
        printf '%-6s %-6s %8s %8s %9s %9s %13s %11s %9s\n' "$size" "$round" "$r" "$f" "$(python3 -c "print(f'{$r + $f:.6f}')")" "$a" \
            "$(python3 -c "print(f'{($r + $f) / $a:.2f}')")" "$receive" "$store"
    done
    # The S3 server's PUT time swings from one round to the next (a 10 MB PUT to moto takes
    # 33 or 55 ms), so the summary gives the ratio of the means and of the medians.
    python3 - "$STATE/rounds-$size.txt" "$size" <<'PY'
import statistics as st, sys
rows = [[float(x) for x in line.split()] for line in open(sys.argv[1])]
raw, floor, ours = ([r[i] for r in rows] for i in range(3))
mean_floor, mean_ours = st.mean(raw) + st.mean(floor), st.mean(ours)
median_floor, median_ours = st.median(a + b for a, b in zip(raw, floor)), st.median(ours)
receive, store = st.median(r[3] for r in rows), st.median(r[4] for r in rows)
print(f"{sys.argv[2]}: floor (nginx into floor.c + raw PUT) {mean_floor * 1000:.1f} ms, assetd {mean_ours * 1000:.1f} ms: "
      f"floor/assetd {mean_floor / mean_ours:.2f} by means, {median_floor / median_ours:.2f} by medians (target >= 0.90); "
      f"raw PUT alone {st.mean(raw) / mean_ours:.2f}; assetd's median receive {receive:.1f} ms, store {store:.1f} ms")
PY
done

say "8 concurrent 25 MB uploads"
echo 5 >"/proc/$PID/clear_refs" 2>/dev/null || true   # reset the peak (VmHWM)
before=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
pids=()
for i in $(seq 1 8); do via_assetd "$STATE/25MB.jpg" >"$STATE/concurrent-$i.txt" & pids+=($!); done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
peak=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")
echo "RSS before ${before} kB, peak ${peak} kB during the 8 uploads: grew $(( (peak - before) / 1024 )) MB (target < 32 MB); failed uploads: $failed"

say "ab -n $AB_REQUESTS -c 32 with a 50 KB image"
ab -q -n "$AB_REQUESTS" -c 32 -p "$STATE/small.form" -T "multipart/form-data; boundary=----assetdbench" \
    -H "Authorization: Bearer $TOKEN" "$API" >"$STATE/ab.txt" 2>&1 || true
grep -E "Complete requests|Failed requests|Connect:|Non-2xx|Requests per second" "$STATE/ab.txt"
awk '$1 == "99%" {print "p99: " $2 " ms"}' "$STATE/ab.txt"
# ab counts an answer whose length differs from the first one's as failed ("Length"):
# every asset JSON has its own id and key, so only Connect, Receive, Exceptions and
# Non-2xx are failures here.
real=$(python3 - "$STATE/ab.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r"Connect: (\d+), Receive: (\d+), Length: (\d+), Exceptions: (\d+)", text)
bad = int(m.group(1)) + int(m.group(2)) + int(m.group(4)) if m else 0
n = re.search(r"Non-2xx responses:\s+(\d+)", text)
print(bad + (int(n.group(1)) if n else 0))
PY
)
echo "failed requests that count (connect, receive, exceptions, non-2xx): $real"

say "the peer: Flask + boto3 upload_fileobj on gunicorn (2 workers) behind the same nginx"
python3 -c 'import flask, gunicorn' 2>/dev/null || python3 -m pip install -q --disable-pip-version-check flask gunicorn
PEER_PORT=$((ASSETD_HTTPS_PORT + 2))
PEER_REQUESTS=${PEER_REQUESTS:-200}
mkdir -p "$STATE/peer-nginx"
(cd "$ROOT/bench/peer" && exec gunicorn -w 2 -b "unix:$STATE/peer.sock" --pid "$STATE/peer-gunicorn.pid" \
    --timeout 300 app:app >"$STATE/logs/peer.log" 2>&1) & peer_shell=$!
sed -e "s|@STATE@|$STATE|g" -e "s|@PORT@|$PEER_PORT|g" -e "s|@USER@|$( [ "$(id -u)" -eq 0 ] && echo 'user root;')|g" \
    -e "s|@MAX_DIRECT_BODY@|$(( ${ASSETD_MAX_DIRECT_UPLOAD_BYTES:-26214400} + 1048576 ))|g" \
    "$ROOT/bench/peer/nginx.conf.in" >"$STATE/peer-nginx/nginx.conf"
nginx -c "$STATE/peer-nginx/nginx.conf" -p "$STATE/peer-nginx" -e "$STATE/logs/peer-nginx-error.log"
trap 'kill -QUIT "$(cat "$STATE/peer-nginx/nginx.pid" 2>/dev/null)" 2>/dev/null; kill "$(cat "$STATE/peer-gunicorn.pid" 2>/dev/null)" 2>/dev/null; stop_floor; "$ROOT/scripts/dev-stack" down >/dev/null 2>&1 || true' EXIT
wait_for "gunicorn" 30 test -S "$STATE/peer.sock"
wait_for "peer nginx" 10 test -s "$STATE/peer-nginx/nginx.pid"
PEER_URL="https://127.0.0.1:$PEER_PORT/api/assets/upload"

# Peak RSS of a process tree (kB): VmHWM summed over the pids given.
peak_rss() { local total=0 p; for p in "$@"; do total=$((total + $(awk '/VmHWM/ {print $2}' "/proc/$p/status"))); done; echo "$total"; }
reset_peak() { local p; for p in "$@"; do echo 5 >"/proc/$p/clear_refs" 2>/dev/null || true; done; }
gunicorn_pids() { local master; master=$(cat "$STATE/peer-gunicorn.pid"); echo "$master $(pgrep -P "$master" | paste -sd' ')"; }

# CPU time (ms) of a set of pids, from /proc/PID/stat (utime + stime, all threads).
# (Fields counted after the ")" that ends the command name, which may hold spaces.)
cpu_ms() { local t=0 p; for p in "$@"; do [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$p/stat"))); done; echo $((t * 1000 / $(getconf CLK_TCK))); }
busy_ms() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / {print int(($2 + $3 + $4 + $7 + $8) * 1000 / hz)}' /proc/stat; }
children() { echo "$1 $(pgrep -P "$1" | paste -sd' ')"; }
S3_PID=$(cat "$STATE/pids/s3.pid" 2>/dev/null || true)
: >"$STATE/cpu.txt"

printf '\n%-6s %-8s %10s %8s %12s   %s\n' size server "uploads/s" "p99_ms" "peak_rss_kB" "CPU ms per upload: s3 nginx service rest (ab, kernel)"
for size in 1MB 10MB; do
    # Warm both (imports, connection pools), then measure each with 8 concurrent clients.
    ab -q -n 16 -c 8 -p "$STATE/$size.form" -T "multipart/form-data; boundary=----assetdbench" -H "Authorization: Bearer $TOKEN" "$API" >/dev/null 2>&1 || true
    ab -q -n 16 -c 8 -p "$STATE/$size.form" -T "multipart/form-data; boundary=----assetdbench" "$PEER_URL" >/dev/null 2>&1 || true
    for server in assetd peer; do
        if [ "$server" = assetd ]; then
            pids=$PID; url=$API; auth=(-H "Authorization: Bearer $TOKEN"); web=$(children "$(cat "$STATE/pids/nginx.pid")")
        else
            pids=$(gunicorn_pids); url=$PEER_URL; auth=(); web=$(children "$(cat "$STATE/peer-nginx/nginx.pid")")
        fi
        # shellcheck disable=SC2086
        reset_peak $pids
        # shellcheck disable=SC2086
        s3_0=$(cpu_ms $S3_PID); web_0=$(cpu_ms $web); svc_0=$(cpu_ms $pids); all_0=$(busy_ms)
        ab -q -n "$PEER_REQUESTS" -c 8 -p "$STATE/$size.form" -T "multipart/form-data; boundary=----assetdbench" "${auth[@]}" \
            "$url" >"$STATE/ab-$server-$size.txt" 2>&1 || true
        # shellcheck disable=SC2086
        s3_1=$(cpu_ms $S3_PID); web_1=$(cpu_ms $web); svc_1=$(cpu_ms $pids); all_1=$(busy_ms)
        rps=$(awk '/Requests per second/ {print $4}' "$STATE/ab-$server-$size.txt")
        p99=$(awk '$1 == "99%" {print $2}' "$STATE/ab-$server-$size.txt")
        non2xx=$(awk '/Non-2xx/ {print $3}' "$STATE/ab-$server-$size.txt")
        cpu=$(python3 -c "
n = $PEER_REQUESTS
s3, web, svc, total = ($s3_1 - $s3_0) / n, ($web_1 - $web_0) / n, ($svc_1 - $svc_0) / n, ($all_1 - $all_0) / n
print(f'{s3:.2f} {web:.2f} {svc:.2f} {max(0.0, total - s3 - web - svc):.2f}')")
        echo "$size $server $cpu" >>"$STATE/cpu.txt"
        # shellcheck disable=SC2086
        printf '%-6s %-8s %10s %8s %12s   %s %s\n' "$size" "$server" "$rps" "$p99" "$(peak_rss $pids)" "$cpu" "${non2xx:+($non2xx non-2xx)}"
    done
done

# What the peer target would take here. With every process on the same cores, uploads/s
# is at most cores / (CPU per upload). Were assetd's own CPU zero, the rest of its path
# (S3, nginx, client, kernel) would still cap it; the lines say whether 2x the peer fits
# under that cap, and how much CPU per upload assetd could spend at 2x.
python3 - "$STATE" "$(nproc)" <<'PY'
import re, sys
state, cores = sys.argv[1], int(sys.argv[2])
cpu = {}
for line in open(f"{state}/cpu.txt"):
    size, server, *v = line.split()
    cpu[(size, server)] = [float(x) for x in v]
def rps(server, size):
    m = re.search(r"Requests per second:\s+([\d.]+)", open(f"{state}/ab-{server}-{size}.txt").read())
    return float(m.group(1)) if m else 0.0
for size in ("1MB", "10MB"):
    s3, web, svc, rest = cpu[(size, "assetd")]
    peer = rps("peer", size)
    others = s3 + web + rest
    cap = cores * 1000 / others
    allowed = cores * 1000 / (2 * peer) - others if peer else float("nan")
    print(f"{size}: assetd {rps('assetd', size) / peer if peer else 0:.2f}x the peer. Were assetd's own CPU zero, the rest of its path "
          f"({others:.1f} ms per upload: S3 {s3:.1f}, nginx {web:.1f}, ab and kernel {rest:.1f}) would cap it at {cap:.0f} uploads/s "
          f"on {cores} cores; 2x the peer is {2 * peer:.0f}/s, which leaves assetd {allowed:.2f} ms of CPU per upload (it used {svc:.2f}).")
PY

say "S3 alone: raw PUTs of the 1 MB file, 8 at once, for 8 s (wrk, distinct keys)"
if command -v wrk >/dev/null; then
    # shellcheck disable=SC2046
    presigned_put $(seq -f 'wrk-%g' 0 511) >"$STATE/raw-urls.txt"
    # moto loses concurrent PUTs to one key (a 500), so each request has a key of its own.
    cat >"$STATE/raw-put.lua" <<LUA
local f = io.open("$STATE/1MB.jpg", "rb"); local body = f:read("*all"); f:close()
local paths = {}
for line in io.lines("$STATE/raw-urls.txt") do paths[#paths + 1] = line:match("^https?://[^/]+(/.*)$") end
local i = 0
request = function()
    i = i + 1
    return wrk.format("PUT", paths[(i % #paths) + 1], {["Content-Type"] = "image/jpeg"}, body)
end
LUA
    # shellcheck disable=SC2086
    s3_0=$(cpu_ms $S3_PID)
    wrk -t 1 -c 8 -d 8s -s "$STATE/raw-put.lua" "$(head -1 "$STATE/raw-urls.txt" | sed 's|^\(https\?://[^/]*\)/.*|\1/|')" >"$STATE/wrk-raw.txt" 2>&1 || true
    # shellcheck disable=SC2086
    s3_1=$(cpu_ms $S3_PID)
    n=$(awk '/requests in/ {print $1}' "$STATE/wrk-raw.txt")
    bad=$(awk '/Non-2xx/ {print $NF}' "$STATE/wrk-raw.txt")
    echo "S3 alone: $(awk '/Requests\/sec/ {print $2}' "$STATE/wrk-raw.txt") PUT/s (${bad:-0} non-2xx);" \
        "S3's CPU $(python3 -c "print(f'{($s3_1 - $s3_0) / max(1, ${n:-1}):.2f}')") ms per PUT"
else
    warn "wrk is not installed: no S3-alone figure"
fi
