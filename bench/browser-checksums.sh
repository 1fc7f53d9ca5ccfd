#!/usr/bin/env bash
# Per-part checksums in the browser (issue 20): the throughput of a 200 MB multipart
# upload in headless Chromium with `checksums` on (each part's MD5 computed in the client's
# Web Worker, signed into its URL, sent as Content-MD5) and off, alternated round by round
# in one run against the dev stack (TLS nginx, assetd, the S3 server). The client module
# is the one nginx serves (/assetd-upload.js), run in the demo page's origin and CSP; the
# file is made in the page (a JPEG head and random bytes), so that no disk read is timed.
# Also: the MD5's own speed in the page (one pass over the 200 MB, main thread), the
# load average before and after, and that both uploads completed.
#
# UPLOAD_MBIT=N throttles the page's uploads to N Mbit/s (Chromium's network emulation),
# as a browser's link to S3 would be: then the upload, not the CPU, sets the pace, as it
# does outside this machine, where the S3 server does not share the browser's cores.
#
# Run it alone on the machine: flock /tmp/assetd-bench.lock bench/browser-checksums.sh
#   ROUNDS=5 SIZE_MB=200 UPLOAD_MBIT=200 bench/browser-checksums.sh
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"

ROUNDS=${ROUNDS:-5}
SIZE_MB=${SIZE_MB:-200}
UPLOAD_MBIT=${UPLOAD_MBIT:-0}
export ASSETD_STATE_DIR=${ASSETD_STATE_DIR:-$(mktemp -d /tmp/assetd-bench-checksums.XXXXXX)}
export ASSETD_HTTPS_PORT=${ASSETD_HTTPS_PORT:-58543}
export ASSETD_S3_PORT=${ASSETD_S3_PORT:-59100}
export ASSETD_THUMBNAILS=${ASSETD_THUMBNAILS:-off}  # a random-byte "JPEG" gets none anyway
STATE=$ASSETD_STATE_DIR
trap '"$ROOT/scripts/dev-stack" down >/dev/null 2>&1 || true' EXIT

"$ROOT/scripts/dev-stack" up >/dev/null
BIN="$(cd "$ROOT" && swift build -c release --show-bin-path)/assetd"
TOKEN=$(env -i "$BIN" token --config "$STATE/assetd.env" --sub bench --workspaces 1 --ttl 7200)
say "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "https://127.0.0.1:$ASSETD_HTTPS_PORT" "$TOKEN" "$ROUNDS" "$SIZE_MB" "$UPLOAD_MBIT" <<'PY'
import json, statistics, sys
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

base, token, rounds, size_mb, mbit = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--ignore-certificate-errors", "--disable-gpu"):
    options.add_argument(arg)
browser = webdriver.Chrome(options=options, service=Service(executable_path="/usr/bin/chromedriver"))
browser.set_script_timeout(600)
browser.get(base + "/")
if mbit:
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": mbit * 1_000_000 / 8})
    print(f"uploads throttled to {mbit} Mbit/s ({mbit / 8:.1f} MB/s)")
UPLOAD = """
const [token, sizeMB, checksums, done] = arguments;
(async () => {
  const { upload, md5OfBlob } = await import('/assetd-upload.js');
  if (!window.__file) {
    // A JPEG's first bytes (libmagic's check), then random bytes: nothing compresses.
    const head = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 16, 74, 70, 73, 70, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]);
    const body = new Uint8Array(sizeMB * 1000 * 1000 - head.length);
    for (let i = 0; i < body.length; i += 65536) crypto.getRandomValues(body.subarray(i, i + 65536));
    window.__file = new File([head, body], 'bench.jpg', { type: 'image/jpeg', lastModified: Date.now() });
  }
  const file = window.__file;
  if (checksums === 'md5') {
    const t = performance.now();
    await md5OfBlob(file);
    return done({ ms: performance.now() - t, size: file.size });
  }
  let workers = 0;
  const Worker = window.Worker;
  window.Worker = function (...args) { workers++; return new Worker(...args); };
  const t = performance.now();
  const result = await upload(file, { workspaceId: 1, getToken: () => token, checksums, storage: null });
  const ms = performance.now() - t;
  window.Worker = Worker;
  // Not timed: the asset goes, so that the S3 server does not hold every round's 200 MB.
  const deleted = await fetch(`/s3/delete?workspaceId=1&assetId=${result.assetId}`, { method: 'DELETE', headers: { Authorization: `Bearer ${token}` } });
  if (!deleted.ok) throw new Error(`delete: HTTP ${deleted.status}`);
  done({ ms, size: file.size, assetId: result.assetId, workers });
})().catch(e => done({ error: String(e) }));
"""
runs = {True: [], False: []}
for r in range(rounds):
    for checksums in ((True, False) if r % 2 == 0 else (False, True)):
        out = browser.execute_async_script(UPLOAD, token, size_mb, checksums)
        assert "error" not in out, out
        assert checksums == (out["workers"] >= 1), out
        mbs = out["size"] / 1e6 / (out["ms"] / 1000)
        runs[checksums].append(mbs)
        print(f"round {r + 1} checksums {'on ' if checksums else 'off'}: {out['ms'] / 1000:.2f} s, {mbs:.1f} MB/s (asset {out['assetId']})", flush=True)
md5 = browser.execute_async_script(UPLOAD, token, size_mb, "md5")
browser.quit()
on, off = statistics.median(runs[True]), statistics.median(runs[False])
print(f"median: checksums on {on:.1f} MB/s, off {off:.1f} MB/s; on/off {on / off:.3f}")
print(f"MD5 in the page's thread: {md5['size'] / 1e6 / (md5['ms'] / 1000):.0f} MB/s over {md5['size'] / 1e6:.0f} MB")
PY
say "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
