#!/usr/bin/env bash
# Direct upload (POST /api/assets/upload) through TLS nginx and assetd to the S3 server:
#  1. throughput for 10 MB and 25 MB JPEGs against a raw curl PUT of the same file to the
#     same S3 server (a presigned URL), alternated, in the same run (target >= 0.8x); with
#     the same upload to bench/floor.c behind the same nginx (the transport floor: TLS,
#     nginx's buffering and FastCGI, no work), and assetd's own split of its time
#     (receive: form, spool, digests, libmagic; store: PutObject) from its log;
#  2. assetd's peak RSS during 8 concurrent 25 MB uploads (target: grows < 32 MB);
#  3. ab -n 2000 -c 32 with a 50 KB image: req/s, p99, failed requests (target 0).
#
#   bench/direct.sh            ROUNDS=3 AB_REQUESTS=2000 bench/direct.sh
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"

ROUNDS=${ROUNDS:-3}
AB_REQUESTS=${AB_REQUESTS:-2000}
export ASSETD_STATE_DIR=${ASSETD_STATE_DIR:-$(mktemp -d /tmp/assetd-direct.XXXXXX)}
export ASSETD_HTTPS_PORT=${ASSETD_HTTPS_PORT:-58443}
export ASSETD_S3_PORT=${ASSETD_S3_PORT:-59000}
# info: the "asset ready" lines carry receive_ms and store_ms.
export ASSETD_LOG_LEVEL=${ASSETD_LOG_LEVEL:-info}
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
jpeg(10_000_000, f"{state}/10MB.jpg")
jpeg(25_000_000, f"{state}/25MB.jpg")
jpeg(50_000, f"{state}/50KB.jpg")
boundary = "----assetdbench"
body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"small.jpg\"\r\n"
        f"Content-Type: image/jpeg\r\n\r\n").encode() + open(f"{state}/50KB.jpg", "rb").read() + f"\r\n--{boundary}--\r\n".encode()
open(f"{state}/small.form", "wb").write(body)
PY

presigned_put() {
    python3 - "$1" <<'PY'
import os, sys, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"], region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
                  aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"], aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                  config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
print(s3.generate_presigned_url("put_object", Params={"Bucket": os.environ["AWS_BUCKET"], "Key": "bench/raw/" + sys.argv[1]}, ExpiresIn=3600))
PY
}

raw_put() { curl -sf -o /dev/null -w '%{time_total}' -T "$1" -H 'Content-Type: image/jpeg' "$(presigned_put "$(basename "$1")")"; }
via_assetd() {
    curl -sf -o /dev/null -w '%{time_total}' --cacert "$CERT" -H "Authorization: Bearer $TOKEN" \
        -F "file=@$1;type=image/jpeg" "$API"
}

via_floor() {
    curl -sf -o /dev/null -w '%{time_total}' --cacert "$CERT" -F "file=@$1;type=image/jpeg" \
        "https://127.0.0.1:$FLOOR_PORT/api/assets/upload"
}
# receive_ms and store_ms of the last "asset ready" line.
phases() { grep '"asset ready"\|asset ready' "$STATE/logs/assetd.log" | tail -1 | grep -o 'receive_ms=[0-9]*\|store_ms=[0-9]*' | cut -d= -f2 | paste -sd' '; }

printf '\n%-8s %-6s %10s %10s %10s %8s %11s %9s\n' size round raw_s floor_s assetd_s ratio receive_ms store_ms
for size in 10MB 25MB; do
    file="$STATE/$size.jpg"
    bytes=$(stat -c %s "$file")
    raw_total=0; assetd_total=0
    for round in $(seq 1 "$ROUNDS"); do
        r=$(raw_put "$file"); f=$(via_floor "$file"); a=$(via_assetd "$file")
        read -r receive store < <(phases)
        raw_total=$(python3 -c "print($raw_total + $r)"); assetd_total=$(python3 -c "print($assetd_total + $a)")
        printf '%-8s %-6s %10s %10s %10s %8s %11s %9s\n' "$size" "$round" "$r" "$f" "$a" "$(python3 -c "print(f'{$r / $a:.2f}')")" "$receive" "$store"
    done
    python3 -c "
raw, ours, b = $raw_total, $assetd_total, $bytes
print(f'$size: raw PUT {b * $ROUNDS / raw / 1e6:.1f} MB/s, via nginx+assetd {b * $ROUNDS / ours / 1e6:.1f} MB/s, ratio {raw / ours:.2f} (target >= 0.80)')"
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
