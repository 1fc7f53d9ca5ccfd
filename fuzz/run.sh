#!/usr/bin/env bash
# Fuzz the parsers that see raw client bytes, with libFuzzer and AddressSanitizer:
# JSON bodies, multipart/form-data bodies, query strings. Each target is built from its
# module's sources plus a harness here, and runs for SECONDS (default 60); a crash or a
# broken invariant stops it and leaves the input in fuzz/.out/.
#
#   fuzz/run.sh [SECONDS] [json|formdata|query ...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}; shift || true
targets=${*:-json formdata query}
out=fuzz/.out
mkdir -p "$out"
for target in $targets; do
    case "$target" in
        json) sources=(Sources/JSON/*.swift fuzz/JSONFuzz.swift) ;;
        formdata) sources=(Sources/FormData/*.swift fuzz/FormDataFuzz.swift) ;;
        query) sources=(Sources/FastCGIServer/QueryParameters.swift fuzz/QueryFuzz.swift) ;;
        *) echo "unknown target $target" >&2; exit 2 ;;
    esac
    echo "==> $target: building"
    swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name "Fuzz$target" "${sources[@]}" -o "$out/$target" 2>&1 \
        | grep -v "ld.gold: warning: Cannot export local symbol" || true
    mkdir -p "$out/corpus-$target"
    echo "==> $target: fuzzing for ${seconds}s"
    "$out/$target" -max_total_time="$seconds" -max_len=4096 -artifact_prefix="$out/$target-" "$out/corpus-$target" 2>&1 \
        | grep -E "^Done [0-9]+ runs|ERROR|SUMMARY|Test unit written" || true
    ls "$out/$target-"* >/dev/null 2>&1 && { echo "==> $target: a crash input is in $out" >&2; exit 1; }
done
echo "==> no crash"
