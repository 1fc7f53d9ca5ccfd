#!/usr/bin/env bash
# Per request, what assetd, the floor (bench/floor.c behind the same nginx) and the C
# reference (bench/presign-reference.c, the route's work in plain C; REFERENCE=off leaves
# it out) ask of the kernel on the part-URL route: system calls, futex calls, context
# switches (voluntary and not, summed over the process's threads from
# /proc/PID/task/*/status), CPU migrations, page faults and CPU time (perf stat over
# SECONDS_EACH of wrk -t2 -c64 on each), then the system calls by name (strace -f -c,
# which slows the process: its counts, not its times).
# Counts, not rates: they move little with the host's noise (the shared lock is enough).
#
#   bench/presign-counts.sh                  SECONDS_EACH=4, THREADS=16
#   SECONDS_EACH=8 THREADS=16 bench/presign-counts.sh
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"
SECONDS_EACH=${SECONDS_EACH:-4}
command -v strace >/dev/null || die "needs strace (apt-get install strace)"
source "$ROOT/bench/lib-floor.sh"
presign_settings counts
presign_stack
targets="assetd floor"
if [ "${REFERENCE:-on}" = on ]; then
    start_reference "$((ASSETD_HTTPS_PORT + 2))" "$ASSETD_THREADS"
    load "$((ASSETD_HTTPS_PORT + 2))" 2 >/dev/null
    targets="assetd reference floor"
fi
# Voluntary and involuntary context switches of all of PID's threads so far.
switches() {
    cat /proc/"$1"/task/*/status 2>/dev/null |
        awk '/^voluntary_ctxt_switches/ {v += $2} /^nonvoluntary_ctxt_switches/ {i += $2} END {print v + 0, i + 0}'
}
for target in $targets; do
    case $target in
        assetd) port=$ASSETD_HTTPS_PORT pid=$(cat "$STATE/pids/assetd.pid") ;;
        floor) port=$FLOOR_PORT pid=$floor_pid ;;
        reference) port=$((ASSETD_HTTPS_PORT + 2)) pid=$reference_pid ;;
    esac
    perf stat -e task-clock,context-switches,cpu-migrations,page-faults,raw_syscalls:sys_enter,syscalls:sys_enter_futex \
        -p "$pid" -o "$STATE/perf-$target.txt" -- sleep "$SECONDS_EACH" &
    stat_pid=$!
    read -r v0 i0 < <(switches "$pid")
    n=$(load "$port" "$SECONDS_EACH"); wait "$stat_pid"
    read -r v1 i1 < <(switches "$pid")
    echo "== $target: $n requests, per request:"
    awk -v n="$n" '/task-clock|context-switches|cpu-migrations|page-faults|sys_enter/ {gsub(",", "", $1);
        printf "  %-28s %10.3f%s\n", $2 == "msec" ? "task-clock" : $2, $2 == "msec" ? $1 * 1000 / n : $1 / n, $2 == "msec" ? " µs of CPU" : ""}' "$STATE/perf-$target.txt"
    awk -v n="$n" -v v=$((v1 - v0)) -v i=$((i1 - i0)) 'BEGIN {printf "  %-28s %10.3f\n  %-28s %10.3f\n", "voluntary switches", v / n, "involuntary switches", i / n}'
    timeout $((SECONDS_EACH + 5)) strace -f -c -q -p "$pid" -o "$STATE/strace-$target.txt" &
    strace_pid=$!
    sleep 0.5; n=$(load "$port" "$SECONDS_EACH"); sleep 0.2
    kill -INT "$strace_pid" 2>/dev/null || true; wait "$strace_pid" 2>/dev/null || true
    echo "  system calls by name (strace, $n requests):"
    awk -v n="$n" 'NR > 2 && $4 ~ /^[0-9]+$/ && $NF != "total" {printf "    %-20s %8.3f\n", $NF, $4 / n}' "$STATE/strace-$target.txt" | sort -k2 -nr
done
