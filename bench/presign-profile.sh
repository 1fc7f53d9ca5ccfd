#!/usr/bin/env bash
# Where the real CPU of a presign goes, against the floor (bench/floor.c behind the same
# nginx) and the reference (bench/presign-reference.c: the route's work in plain C, behind
# the same nginx; REFERENCE=off leaves it out): `perf record -a -g` (cpu-clock sampling: this VM has no hardware counters) over
# SECONDS_EACH of wrk -t2 -c64 on each, then CPU a request by process (assetd or floor,
# nginx's workers, wrk, the rest: kernel threads, softirqs) and the top symbols of each
# responder, user and kernel side, as `perf report --no-children` gives them.
# Samples a request, not rates: a sample is 1/FREQ s of one CPU.
#
#   bench/presign-profile.sh                 SECONDS_EACH=5, FREQ=4999, THREADS=16
#   KEEP=1 bench/presign-profile.sh          keep STATE/perf-*.data to look at by hand
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"
SECONDS_EACH=${SECONDS_EACH:-5}
FREQ=${FREQ:-4999}
source "$ROOT/bench/lib-floor.sh"
presign_settings profile
presign_stack
assetd_pid=$(cat "$STATE/pids/assetd.pid")
targets="assetd floor"
if [ "${REFERENCE:-on}" = on ]; then
    start_reference "$((ASSETD_HTTPS_PORT + 2))" "$ASSETD_THREADS"
    load "$((ASSETD_HTTPS_PORT + 2))" 2 >/dev/null
    targets="assetd floor reference"
fi
for target in $targets; do
    case $target in
        assetd) port=$ASSETD_HTTPS_PORT ;;
        floor) port=$FLOOR_PORT ;;
        reference) port=$((ASSETD_HTTPS_PORT + 2)) ;;
    esac
    data="$STATE/perf-$target.data"
    perf record -q -a -g -e cpu-clock -F "$FREQ" -o "$data" -- sleep "$SECONDS_EACH" 2>/dev/null &
    record_pid=$!
    n=$(load "$port" "$SECONDS_EACH"); wait "$record_pid" || true
    echo "== $target: $n requests; µs of CPU a request (all CPUs, ${FREQ} Hz cpu-clock samples), user / kernel:"
    # Samples by command (the responder's threads carry its name) and by user or kernel side.
    perf script -i "$data" -F comm,ip,dso -G 2>/dev/null |
        awk -v n="$n" -v f="$FREQ" -v t="$target" '
            { who = ($1 == "assetd" || $1 == "floor" || $1 == "reference") ? $1 : ($1 == "nginx" || $1 == "wrk" ? $1 : ($1 == "swapper" ? "idle" : "other"))
              side = ($NF == "([kernel.kallsyms])") ? "kernel" : "user"
              total[who] += 1; part[who, side] += 1 }
            END { for (w in total) printf "  %-8s %8.2f  (user %6.2f, kernel %6.2f)\n", w, total[w] * 1e6 / f / n,
                      part[w, "user"] * 1e6 / f / n, part[w, "kernel"] * 1e6 / f / n }' | sort
    echo "  $target's shared objects (µs a request):"
    perf script -i "$data" -F comm,ip,dso -G 2>/dev/null |
        awk -v n="$n" -v f="$FREQ" -v t="$target" '$1 == t {c[$NF] += 1}
            END { for (d in c) printf "    %8.2f %s\n", c[d] * 1e6 / f / n, d }' | sort -rn | head -8
    echo "  $target, top symbols (self, % of all samples):"
    perf report -i "$data" --no-children --comms "$target" --sort dso,sym --stdio -g none --percent-limit 0.3 2>/dev/null |
        grep -E '^ +[0-9]' | head -40 | sed 's/^/    /' || true
    echo "  nginx, top symbols (% of all samples):"
    perf report -i "$data" --no-children --comms nginx --sort dso,sym --stdio -g none --percent-limit 0.8 2>/dev/null |
        grep -E '^ +[0-9]' | head -20 | sed 's/^/    /' || true
    [ -n "${KEEP:-}" ] || rm -f "$data"
done
