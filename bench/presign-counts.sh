#!/usr/bin/env bash
# Per request, what assetd and the floor (bench/floor.c behind the same nginx) ask of the
# kernel on the part-URL route: system calls, futex calls, context switches, CPU
# migrations and CPU time (perf stat over SECONDS of wrk -t2 -c64 on each), then the
# system calls by name (strace -f -c, which slows the process: its counts, not its times).
# Counts, not rates: they move little with the host's noise (the shared lock is enough).
#
#   bench/presign-counts.sh                  SECONDS=4, ASSETD_THREADS=16
#   SECONDS_EACH=8 THREADS=16 bench/presign-counts.sh
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"
SECONDS_EACH=${SECONDS_EACH:-4}
export ASSETD_THREADS=${THREADS:-16}
export ASSETD_STATE_DIR=${ASSETD_STATE_DIR:-$(mktemp -d /tmp/assetd-counts.XXXXXX)}
export ASSETD_HTTPS_PORT=${ASSETD_HTTPS_PORT:-28443} ASSETD_S3_PORT=${ASSETD_S3_PORT:-29000}
export ASSETD_LOG_LEVEL=${ASSETD_LOG_LEVEL:-info}
FLOOR_PORT=$((ASSETD_HTTPS_PORT + 1))
STATE=$ASSETD_STATE_DIR
command -v perf >/dev/null && command -v strace >/dev/null || die "needs perf and strace (apt-get install linux-perf strace)"
source "$ROOT/bench/lib-floor.sh"
presign_stack
for target in assetd floor; do
    if [ "$target" = assetd ]; then port=$ASSETD_HTTPS_PORT pid=$(cat "$STATE/pids/assetd.pid"); else port=$FLOOR_PORT pid=$floor_pid; fi
    perf stat -e task-clock,context-switches,cpu-migrations,raw_syscalls:sys_enter,syscalls:sys_enter_futex \
        -p "$pid" -o "$STATE/perf-$target.txt" -- sleep "$SECONDS_EACH" &
    stat_pid=$!
    n=$(load "$port" "$SECONDS_EACH"); wait "$stat_pid"
    echo "== $target: $n requests, per request:"
    awk -v n="$n" '/task-clock|context-switches|cpu-migrations|sys_enter/ {gsub(",", "", $1);
        printf "  %-28s %10.3f%s\n", $2 == "msec" ? "task-clock" : $2, $2 == "msec" ? $1 * 1000 / n : $1 / n, $2 == "msec" ? " µs of CPU" : ""}' "$STATE/perf-$target.txt"
    timeout $((SECONDS_EACH + 5)) strace -f -c -q -p "$pid" -o "$STATE/strace-$target.txt" &
    strace_pid=$!
    sleep 0.5; n=$(load "$port" "$SECONDS_EACH"); sleep 0.2
    kill -INT "$strace_pid" 2>/dev/null || true; wait "$strace_pid" 2>/dev/null || true
    echo "  system calls by name (strace, $n requests):"
    awk -v n="$n" 'NR > 2 && $4 ~ /^[0-9]+$/ && $NF != "total" {printf "    %-20s %8.3f\n", $NF, $4 / n}' "$STATE/strace-$target.txt" | sort -k2 -nr
done
