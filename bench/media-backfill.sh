#!/usr/bin/env bash
# The media backfill (issue 19), through the dev stack on PostgreSQL (TLS nginx, the
# release assetd, moto, PostgreSQL 15), so that `assetd backfill-media` runs beside the
# serving assetd as it would on a fleet:
#  1. COUNT direct uploads of 1800x1200 JPEGs (8 clients), every thumbnail ready;
#  2. their media cleared in the database, as records from before "v8: media metadata";
#  3. `assetd backfill-media` timed: assets per second (wall clock, S3 download, libmagic
#     and the decoder's facts-only child each), checked: every asset has its media back,
#     every thumbnail still `ready`, and no thumbnail.ready event written;
#  4. presign (GET /s3/get-upload-url) p50/p99 on one keep-alive connection, idle (200
#     calls) and while the command runs.
# The reconciler's own batches are off (ASSETD_MEDIA_BACKFILL_BATCH=0) so that the
# command does all the work. Run it under the exclusive lock (a quiet host).
#
#   bench/media-backfill.sh          COUNT=200 bench/media-backfill.sh
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"

COUNT=${COUNT:-200}
export ASSETD_STATE_DIR=${ASSETD_STATE_DIR:-$(mktemp -d /tmp/assetd-backfill.XXXXXX)}
export ASSETD_HTTPS_PORT=${ASSETD_HTTPS_PORT:-57443}
export ASSETD_S3_PORT=${ASSETD_S3_PORT:-57000}
export ASSETD_DEV_DB=postgres ASSETD_MEDIA_BACKFILL_BATCH=0
STATE=$ASSETD_STATE_DIR
trap '"$ROOT/scripts/dev-stack" down >/dev/null 2>&1 || true' EXIT

install_dependencies
"$ROOT/scripts/dev-stack" up >/dev/null
set -a; source "$STATE/assetd.env"; set +a
BIN="$(cd "$ROOT" && swift build -c release --show-bin-path)/assetd"
TOKEN=$("$BIN" token --config "$STATE/assetd.env" --sub bench --workspaces 1 --ttl 7200)
say "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $COUNT assets"

PYTHONPATH="$ROOT/bench/lib" python3 - "$STATE" "$COUNT" "$TOKEN" "$ASSETD_HTTPS_PORT" "$BIN" "$ASSETD_DATABASE" <<'PY'
import concurrent.futures, os, subprocess, sys, threading, time
import requests
from PIL import Image
from presign_probe import PresignProbe
state, count, token, port, binary, database = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
base, cert = f"https://127.0.0.1:{port}", f"{state}/tls/cert.pem"
headers = {"Authorization": f"Bearer {token}"}
sources = []
for i in range(8):
    path = f"{state}/source-{i}.jpg"
    Image.frombytes("RGB", (90, 60), os.urandom(90 * 60 * 3)).resize((1800, 1200), Image.BICUBIC).save(path, "JPEG", quality=88)
    sources.append(open(path, "rb").read())

def psql(sql):
    return subprocess.run(["psql", "-qAt", database, "-c", sql], check=True, capture_output=True, text=True).stdout.strip()

def upload(i):
    for _ in range(50):
        r = requests.post(base + "/api/assets/upload", params={"workspaceId": 1}, headers=headers, verify=cert, timeout=120,
                          files={"file": (f"b{i}.jpg", sources[i % 8], "image/jpeg")})
        if r.status_code == 200:
            return r.json()["asset"]["id"]
        if r.status_code != 503:
            raise SystemExit(f"upload {i}: {r.status_code} {r.text[:200]}")
        time.sleep(0.2)
    raise SystemExit(f"upload {i}: still 503")
with concurrent.futures.ThreadPoolExecutor(8) as pool:
    ids = list(pool.map(upload, range(count)))
deadline = time.monotonic() + 600
while int(psql("SELECT count(*) FROM asset WHERE thumbnail_status = 'ready'")) < count:
    if time.monotonic() > deadline:
        raise SystemExit("thumbnails not ready after 600 s")
    time.sleep(0.5)
psql("UPDATE asset SET media_etag = NULL, media_width = NULL, media_height = NULL")
thumbnail_events = psql("SELECT count(*) FROM event WHERE type = 'thumbnail.ready'")

probe = PresignProbe(base, cert, headers)
probe.start()
rss_peak = [0]
start = time.monotonic()
command = subprocess.Popen([binary, "backfill-media", "--config", f"{state}/assetd.env"], stdout=subprocess.PIPE, text=True)
def sample():
    while command.poll() is None:
        try:
            for line in open(f"/proc/{command.pid}/status"):
                if line.startswith("VmRSS"):
                    rss_peak[0] = max(rss_peak[0], int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.02)
sampler = threading.Thread(target=sample)
sampler.start()
output = command.communicate()[0]
seconds = time.monotonic() - start
sampler.join()
probe.stop()
assert command.returncode == 0, output
print("\n".join("  " + line for line in output.strip().splitlines()[-2:]), file=sys.stderr)
missing = psql("SELECT count(*) FROM asset WHERE status = 'ready' AND media_width IS NULL")
not_ready = psql("SELECT count(*) FROM asset WHERE status = 'ready' AND thumbnail_status <> 'ready'")
updated = psql("SELECT count(*) FROM event WHERE type = 'asset.updated'")
assert missing == "0" and not_ready == "0", (missing, not_ready)
assert psql("SELECT count(*) FROM event WHERE type = 'thumbnail.ready'") == thumbnail_events, "thumbnail.ready written again"
print(f"  {count} assets backfilled in {seconds:.1f} s: {count / seconds:.1f} assets/s; {updated} asset.updated events, "
      f"thumbnails all still ready, no new thumbnail.ready; the command's peak RSS {rss_peak[0] / 1024:.0f} MB", file=sys.stderr)
print(probe.report("the backfill"), file=sys.stderr)
PY
