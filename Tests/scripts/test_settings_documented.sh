#!/usr/bin/env bash
# Every setting that assetd reads (a quoted "ASSETD_..." name in Configuration.swift) is
# documented in docs/CONFIGURATION.md and shown in systemd/assetd.env.example, the file a
# package installs as /etc/assetd/assetd.env: a sysadmin finds every knob in both.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
names=$(grep -ohE '"ASSETD_[A-Z0-9_]+"' "$ROOT/Sources/AssetdApp/Configuration.swift" | tr -d '"' | sort -u)
[ -n "$names" ] || { echo "FAIL: no setting names found in Configuration.swift" >&2; exit 1; }
failures=0
for name in $names; do
    for doc in docs/CONFIGURATION.md systemd/assetd.env.example; do
        if ! grep -qw "$name" "$ROOT/$doc"; then
            echo "FAIL: $name is read by assetd but not in $doc" >&2
            failures=$((failures + 1))
        fi
    done
done
if ((failures)); then echo "test_settings_documented: $failures missing" >&2; exit 1; fi
echo "test_settings_documented: ok ($(echo "$names" | wc -l) settings)"
