#!/usr/bin/env bash
# Every script's --help prints its help and nothing of its code, exits 0, and changes
# nothing (no state directory appears).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
for script in scripts/test scripts/dev-stack scripts/package scripts/lib/nginx-render; do
    rc=0
    (cd "$work" && ASSETD_STATE_DIR="$work/state" timeout 20 "$ROOT/$script" --help) >"$work/out" 2>&1 || rc=$?
    problem=""
    ((rc == 0)) || problem="exits $rc"
    [ -s "$work/out" ] || problem="prints nothing"
    grep -qE '^\s*(set -|source |#!|esac$|fi$|done$|[a-z_]+\(\) *\{)' "$work/out" && problem="prints code"
    grep -qE '^# ' "$work/out" && problem="prints the comment markers"
    [ ! -e "$work/state" ] || problem="creates its state directory"
    grep -q "${script##*/}" "$work/out" || problem="does not name itself"
    if [ -n "$problem" ]; then
        echo "FAIL: $script --help $problem:" >&2
        sed 's/^/    /' "$work/out" >&2
        failures=$((failures + 1))
    fi
    rm -rf "$work/state"
done
if ((failures)); then echo "test_help: $failures failure(s)" >&2; exit 1; fi
echo "test_help: ok"
