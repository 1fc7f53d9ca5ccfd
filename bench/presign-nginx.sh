#!/usr/bin/env bash
# nginx's own cost a request in front of assetd and in front of the C reference
# (bench/presign-reference.c), with the same nginx: the dev stack's, its upstream switched
# between assetd's socket and the reference's by a reload, ROUNDS times each in turn. For
# each run: the requests of SECONDS_EACH of wrk -t2 -c64 on the part URL, and nginx's
# workers' CPU (task-clock), context switches, epoll_wait calls and system calls a request
# (perf stat on the workers). nginx's CPU a request moves with the requests a run serves
# (fewer events a wake-up when answers come slower): compare runs of like throughput.
#
#   bench/presign-nginx.sh                   ROUNDS=3, SECONDS_EACH=4, THREADS=16
#   ROUNDS=5 SECONDS_EACH=6 bench/presign-nginx.sh
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"
case "${1:-}" in -h|--help) print_help "$0"; exit 0 ;; esac
ROUNDS=${ROUNDS:-3}
SECONDS_EACH=${SECONDS_EACH:-4}
# The upstream switch rewrites every `server unix:` line to one socket, assetd.sock: with
# more instances (assetd-1.sock ..) that socket does not exist (review14 O1).
[ "${ASSETD_DEV_INSTANCES:-1}" = 1 ] || die "bench/presign-nginx.sh measures one assetd: unset ASSETD_DEV_INSTANCES"
source "$ROOT/bench/lib-floor.sh"
presign_settings nginx
presign_stack
# `load`, stopping at any answer that is not 2xx: a 502 from a missing upstream is fast, and
# its figures would look plausible.
load_2xx() { # PORT SECONDS: the requests wrk made, all of them answered 2xx
    local out
    out=$(wrk -t2 -c64 -d"$2"s -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$1$PATH_Q")
    if grep -q "Non-2xx" <<<"$out"; then die "$(grep "Non-2xx" <<<"$out") on port $1 (target $target)"; fi
    awk '/requests in/ {print $1}' <<<"$out"
}
start_reference "$((ASSETD_HTTPS_PORT + 2))" "$ASSETD_THREADS"
conf=$STATE/nginx/assetd.conf
for round in $(seq "$ROUNDS"); do
    for target in assetd reference; do
        sed -i -E "s|server unix:[^;]*;|server unix:$STATE/$target.sock;|" "$conf"
        nginx -s reload -c "$STATE/nginx/nginx.conf" -p "$STATE/nginx"
        sleep 1.5
        load_2xx "$ASSETD_HTTPS_PORT" 1 >/dev/null
        workers=$(pgrep -P "$(cat "$STATE/nginx/nginx.pid")" | paste -sd,)
        perf stat -e task-clock,context-switches,syscalls:sys_enter_epoll_wait,raw_syscalls:sys_enter \
            -p "$workers" -o "$STATE/perf-$target-$round.txt" -- sleep "$SECONDS_EACH" &
        stat_pid=$!
        n=$(load_2xx "$ASSETD_HTTPS_PORT" "$SECONDS_EACH")
        wait "$stat_pid" || die "perf stat failed (target $target, round $round): $STATE/perf-$target-$round.txt"
        # A counter perf could not read prints "<not supported>" or "<not counted>": no figure.
        for counter in task-clock context-switches syscalls:sys_enter_epoll_wait raw_syscalls:sys_enter; do
            grep -E "^ *[0-9][0-9,.]* +(msec +)?$counter" "$STATE/perf-$target-$round.txt" >/dev/null \
                || die "perf counted no $counter (target $target, round $round): $STATE/perf-$target-$round.txt"
        done
        awk -v n="$n" -v t="$target" -v r="$round" '
            /task-clock/ {gsub(",", "", $1); cpu = $1} /context-switches/ {gsub(",", "", $1); cs = $1}
            /epoll_wait/ {gsub(",", "", $1); ew = $1} /raw_syscalls/ {gsub(",", "", $1); sc = $1}
            END {printf "%-9s round %s: %6d requests; nginx a request: %5.1f µs CPU, %.3f switches, %.3f epoll_wait, %.2f system calls\n",
                        t, r, n, cpu * 1000 / n, cs / n, ew / n, sc / n}' "$STATE/perf-$target-$round.txt"
    done
done
