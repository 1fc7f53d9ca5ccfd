#!/usr/bin/env bash
# Presign throughput: wrk (-t2 -c64, keep-alive) against GET /s3/get-upload-url through
# the dev stack's TLS nginx (JWT, the upload's ownership, SigV4 presign), beside two C
# libfcgi responders behind nginx rendered from the same site file:
#   floor      bench/floor.c: answers a presign-sized JSON body and does nothing else (the
#              transport floor);
#   reference  bench/presign-reference.c: the route's work done the straightforward way in
#              C with OpenSSL (JWT HMAC, the upload from memory, SigV4, the same JSON and
#              headers, an access-log line a request): what any implementation can reach.
# Each round runs the three in a rotating order. Per round: req/s, p99, the responder's
# own CPU a request and its nginx's workers' CPU a request (user + system, from /proc).
# Then the ratios assetd/floor, reference/floor and assetd/reference, and a soak at 256
# connections, with assetd's RSS before and after.
#
#   bench/presign.sh                 start a stack of its own, measure, stop it
#   ROUND_SECONDS=10 SOAK_SECONDS=60 THREADS=16 ROUNDS=5 bench/presign.sh
#   REFERENCE=off bench/presign.sh   assetd and the floor only, as before
#   SOAK_SECONDS=0 bench/presign.sh  no soak
#   ASSETD_DEV_BIN=/tmp/old/assetd bench/presign.sh   a prebuilt assetd (before/after)
#   ASSETD_NGINX_KEEP_CONN=on ASSETD_NGINX_UPSTREAM_KEEPALIVE="keepalive 4;" bench/presign.sh
#                                    the same with FastCGI connections kept alive
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"

ROUND_SECONDS=${ROUND_SECONDS:-10}
SOAK_SECONDS=${SOAK_SECONDS:-60}
ROUNDS=${ROUNDS:-2}
export ASSETD_THREADS=${THREADS:-16}
export ASSETD_STATE_DIR=${ASSETD_STATE_DIR:-$(mktemp -d /tmp/assetd-bench.XXXXXX)}
export ASSETD_HTTPS_PORT=${ASSETD_HTTPS_PORT:-28443}
export ASSETD_S3_PORT=${ASSETD_S3_PORT:-29000}
# As shipped: the access log (info) and metrics on, as issue 20 asks the ratio to be measured.
export ASSETD_LOG_LEVEL=${ASSETD_LOG_LEVEL:-info}
FLOOR_PORT=$((ASSETD_HTTPS_PORT + 1))
REFERENCE_PORT=$((ASSETD_HTTPS_PORT + 2))
REFERENCE=${REFERENCE:-on}
STATE=$ASSETD_STATE_DIR

source "$ROOT/bench/lib-floor.sh"
cleanup() {
    stop_floor
    "$ROOT/scripts/dev-stack" down >/dev/null 2>&1 || true
}
trap cleanup EXIT

command -v wrk >/dev/null || install_dependencies
"$ROOT/scripts/dev-stack" up >/dev/null
presign_request

# The floor and the reference: the same nginx template, their upstreams the C responders.
start_floor "$FLOOR_PORT" "$ASSETD_THREADS"
targets="assetd floor"
if [ "$REFERENCE" = on ]; then
    start_reference "$REFERENCE_PORT" "$ASSETD_THREADS"
    targets="assetd floor reference"
fi

curl -sfk -H "Authorization: Bearer $TOKEN" "$BASE$PATH_Q" >/dev/null || die "assetd does not answer the benchmark request"
curl -sfk "https://127.0.0.1:$FLOOR_PORT$PATH_Q" >/dev/null || die "the floor does not answer"
if [ "$REFERENCE" = on ]; then
    # The reference must give assetd's answer: the same URL, byte for byte, in one second.
    for _ in 1 2 3; do
        a=$(curl -sfk -H "Authorization: Bearer $TOKEN" "$BASE$PATH_Q")
        r=$(curl -sfk -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$REFERENCE_PORT$PATH_Q") || die "the reference does not answer"
        [ "$a" = "$r" ] && break
    done
    [ "$a" = "$r" ] || die "the reference's answer differs from assetd's: $r against $a"
    curl -sk -o /dev/null -w '%{http_code}' "https://127.0.0.1:$REFERENCE_PORT$PATH_Q" | grep -qx 401 || die "the reference took a request without a token"
fi

# CPU time (user + system, in clock ticks) a process has used so far; the same summed over
# an nginx master's workers.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
nginx_ticks() {
    local total=0 worker
    for worker in $(ps -o pid= --ppid "$1"); do total=$((total + $(cpu_ticks "$worker" 2>/dev/null || echo 0))); done
    echo "$total"
}
responder_pid() { case $1 in assetd) cat "$STATE/pids/assetd.pid" ;; floor) echo "$floor_pid" ;; reference) echo "$reference_pid" ;; esac; }
nginx_pid() { case $1 in assetd) cat "$STATE/nginx/nginx.pid" ;; floor) echo "$floor_nginx" ;; reference) echo "$reference_nginx" ;; esac; }
port_of() { case $1 in assetd) echo "$ASSETD_HTTPS_PORT" ;; floor) echo "$FLOOR_PORT" ;; reference) echo "$REFERENCE_PORT" ;; esac; }
run() { # NAME TARGET CONNECTIONS SECONDS: req/s, p99, non-2xx, responder and nginx CPU µs a request
    local pid nginx before after nginx_before nginx_after
    pid=$(responder_pid "$2"); nginx=$(nginx_pid "$2")
    before=$(cpu_ticks "$pid"); nginx_before=$(nginx_ticks "$nginx")
    wrk -t2 -c"$3" -d"$4"s --latency -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$(port_of "$2")$PATH_Q" >"$STATE/wrk-$1.txt"
    after=$(cpu_ticks "$pid"); nginx_after=$(nginx_ticks "$nginx")
    local rps p99 non2xx requests
    rps=$(awk '/Requests\/sec/ {print $2}' "$STATE/wrk-$1.txt")
    p99=$(awk '$1 == "99%" {print $2}' "$STATE/wrk-$1.txt")
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$STATE/wrk-$1.txt"); non2xx=${non2xx:-0}
    requests=$(awk '/requests in/ {print $1}' "$STATE/wrk-$1.txt"); requests=$((requests > 0 ? requests : 1))
    # CPU a request in µs: the figures that noise moves least.
    echo "$rps $p99 $non2xx $(( (after - before) * 1000000 / $(getconf CLK_TCK) / requests )) $(( (nginx_after - nginx_before) * 1000000 / $(getconf CLK_TCK) / requests ))"
}
rss() { awk '/VmRSS/ {print $2}' "/proc/$(cat "$STATE/pids/assetd.pid")/status"; }

say "warming up"
for target in $targets; do run "warm-$target" "$target" 64 3 >/dev/null; done

printf '\n%-6s %-10s %10s %9s %8s %12s %12s\n' round target req/s p99 non-2xx "CPU µs/req" "nginx µs/req"
# Each round runs every target, in an order rotated by one each round, so that a drift of
# the host's load favours none; the figures are the median of the per-round ratios, with
# their spread, and each process's CPU time a request (from /proc).
declare -A rps cpu ngx
rows=""
for round in $(seq 1 "$ROUNDS"); do
    read -r -a order <<<"$targets"
    shift_by=$(( (round - 1) % ${#order[@]} ))
    order=("${order[@]:shift_by}" "${order[@]:0:shift_by}")
    for target in "${order[@]}"; do
        read -r t_rps t_p99 t_bad t_cpu t_ngx < <(run "$target$round" "$target" 64 "$ROUND_SECONDS")
        printf '%-6s %-10s %10s %9s %8s %12s %12s\n' "$round" "$target" "$t_rps" "$t_p99" "$t_bad" "$t_cpu" "$t_ngx"
        rows+="$round $target $t_rps $t_cpu $t_ngx"$'\n'
    done
done
python3 - "$rows" <<'PY'
import statistics, sys
data = {}
for row in sys.argv[1].strip().splitlines():
    round_, target, rps, cpu, ngx = row.split()
    data.setdefault(target, {})[int(round_)] = (float(rps), float(cpu), float(ngx))
def ratio(a, b, what):
    if a not in data or b not in data: return
    rounds = sorted(set(data[a]) & set(data[b]))
    per = [data[a][r][0] / data[b][r][0] for r in rounds]
    total = sum(data[a][r][0] for r in rounds) / sum(data[b][r][0] for r in rounds)
    cpu = [data[a][r][1] / max(data[b][r][1], 1) for r in rounds]
    print(f"{a} / {b}: median {statistics.median(per):.2f} (rounds {', '.join(f'{x:.2f}' for x in per)}; "
          f"by the sums {total:.2f}){what}; responder CPU a request {statistics.median(cpu):.2f}x")
print()
ratio("assetd", "floor", " (target >= 0.90, issue 20)")
ratio("reference", "floor", " (what the route's work costs any implementation)")
ratio("assetd", "reference", "")
for target, rounds in data.items():
    cpu = [v[1] for v in rounds.values()]; ngx = [v[2] for v in rounds.values()]
    print(f"{target:<10} CPU a request: responder median {statistics.median(cpu):.0f} µs ({min(cpu):.0f}-{max(cpu):.0f}), "
          f"its nginx's workers median {statistics.median(ngx):.0f} µs ({min(ngx):.0f}-{max(ngx):.0f})")
PY

[ "$SOAK_SECONDS" -gt 0 ] || exit 0
before=$(rss)
say "soak: ${SOAK_SECONDS}s at 256 connections"
read -r s_rps s_p99 s_bad s_cpu s_ngx < <(run soak assetd 256 "$SOAK_SECONDS")
after=$(rss)
echo "soak: $s_rps req/s, p99 $s_p99, non-2xx $s_bad, assetd CPU $s_cpu µs/req (nginx $s_ngx); assetd RSS ${before} kB before, ${after} kB after"
[ "$s_bad" = 0 ] || die "the soak saw $s_bad non-2xx answers"
