#!/usr/bin/env bash
# dev-stack passes every other ASSETD_* variable of its environment into the stack's
# settings file (ASSETD_WEBHOOK_URLS=... scripts/dev-stack up), but not its own steering
# variables nor the test runner's, and never overrides a setting it writes itself.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export ENV_FILE=$work/assetd.env
printf 'ASSETD_THREADS=16\n' >"$ENV_FILE"
# The function alone, from the script (sourcing the script would run it).
(
    die() { echo "die: $*" >&2; exit 1; }
    eval "$(sed -n '/^pass_through_settings() {/,/^}/p' "$ROOT/scripts/dev-stack")"
    export ASSETD_WEBHOOK_URLS="http://127.0.0.1:9150/a,http://127.0.0.1:9151/b?token=x y"
    export ASSETD_WEBHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
    export ASSETD_THREADS=3 ASSETD_HTTPS_PORT=1 ASSETD_DEV_S3=moto ASSETD_TEST_S3_PORT=2 ASSETD_URL=x
    pass_through_settings
)
fail() { echo "FAIL: test_dev_stack_settings: $*" >&2; sed 's/^/    /' "$ENV_FILE" >&2; exit 1; }
grep -qx 'ASSETD_WEBHOOK_URLS=http://127.0.0.1:9150/a,http://127.0.0.1:9151/b?token=x y' "$ENV_FILE" || fail "ASSETD_WEBHOOK_URLS not passed as it is"
grep -qx 'ASSETD_WEBHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' "$ENV_FILE" || fail "ASSETD_WEBHOOK_SECRET not passed"
[ "$(grep -c '^ASSETD_THREADS=' "$ENV_FILE")" = 1 ] || fail "a setting dev-stack writes itself was written twice"
grep -qE '^ASSETD_(HTTPS_PORT|DEV_S3|TEST_S3_PORT|URL)=' "$ENV_FILE" && fail "dev-stack's or the tests' own variables went into the settings file"
# A value with a line break would smuggle in another setting: refused.
if ( die() { exit 3; }; eval "$(sed -n '/^pass_through_settings() {/,/^}/p' "$ROOT/scripts/dev-stack")"
     export ASSETD_LOG_LEVEL=$'info\nASSETD_JWT_SECRET=x'; pass_through_settings ) 2>/dev/null; then
    fail "a value with a line break was written"
fi
echo "test_dev_stack_settings: ok"
