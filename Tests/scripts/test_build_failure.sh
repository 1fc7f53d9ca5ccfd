#!/usr/bin/env bash
# A failed `swift build` must stop scripts/test, scripts/dev-stack and scripts/package with
# a non-zero status and the compiler's errors, and never let them go on with the binary an
# earlier build left behind. A fake `swift` on PATH fails every build (with a compiler-like
# error) and reports where a stale binary would be; that binary, and `swift test`, leave a
# mark when run. Nothing is built and no server starts, so this takes seconds.
# scripts/test runs it (ASSETD_TEST_SCRIPTS=skip stops the inner scripts/test from
# running it again).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/fake" "$work/stale" "$work/marks" "$work/out"

cat >"$work/fake/swift" <<FAKE
#!/bin/sh
case "\$*" in
    *--show-bin-path*) echo "$work/stale"; exit 0 ;;
    build*)
        if [ -n "\${FAKE_SWIFT_OK:-}" ]; then
            i=0; while [ \$i -lt 200 ]; do echo "[\$i/200] Compiling Thing\$i.swift"; i=\$((i + 1)); done
            echo "Build complete! (1.00s)"; exit 0
        fi
        echo "[1/9] Compiling assetd main.swift"
        echo "$ROOT/Sources/assetd/main.swift:3:9: error: cannot find 'undefinedThing' in scope"
        echo "    let x = undefinedThing"
        echo "            ^~~~~~~~~~~~~~"
        exit 1 ;;
    test*) touch "$work/marks/swift-test"; echo "Test run with 0 tests passed"; exit 0 ;;
    *) exit 0 ;;
esac
FAKE
cat >"$work/stale/assetd" <<STALE
#!/bin/sh
touch "$work/marks/stale-binary"
exit 1
STALE
chmod +x "$work/fake/swift" "$work/stale/assetd"

failures=0
fail() { printf 'FAIL: %s\n' "$*" >&2; failures=$((failures + 1)); }

# check NAME COMMAND...: COMMAND must exit non-zero, print the compiler's error, and run
# neither the stale binary nor the tests.
check() {
    local name=$1 rc=0 before=$failures; shift
    local log="$work/${name//[^a-z-]/_}.log"
    rm -f "$work/marks/"*
    PATH="$work/fake:$PATH" ASSETD_TEST_SCRIPTS=skip timeout 300 "$@" >"$log" 2>&1 || rc=$?
    ((rc != 0)) || fail "$name exited 0 after a failed build"
    grep -q "error: cannot find 'undefinedThing' in scope" "$log" || fail "$name did not show the compiler's error"
    [ ! -e "$work/marks/stale-binary" ] || fail "$name ran the binary of an earlier build"
    [ ! -e "$work/marks/swift-test" ] || fail "$name ran the tests after a failed build"
    if ((failures > before)); then sed 's/^/    /' "$log" >&2; fi
    echo "$name: status $rc"
}

check "scripts/test unit" env ASSETD_TEST_STATE_DIR="$work/test-state" "$ROOT/scripts/test" unit
check "scripts/dev-stack up" env ASSETD_STATE_DIR="$work/stack-state" AWS_ENDPOINT_URL_S3=http://127.0.0.1:9 \
    ASSETD_HTTPS_PORT=9 "$ROOT/scripts/dev-stack" up
check "scripts/package" "$ROOT/scripts/package" --out "$work/out"
ls "$work/out"/*.deb >/dev/null 2>&1 && fail "scripts/package wrote a package after a failed build"

# Success: one short line, not the whole log.
lines=$(cd "$work" && PATH="$work/fake:$PATH" FAKE_SWIFT_OK=1 bash -c "source '$ROOT/scripts/lib/common.sh' && swift_build -c release" 2>&1 | wc -l) \
    || fail "swift_build failed on a good build"
((lines <= 3)) || fail "swift_build printed $lines lines on success"

if ((failures)); then echo "test_build_failure: $failures failure(s)" >&2; exit 1; fi
echo "test_build_failure: ok"
