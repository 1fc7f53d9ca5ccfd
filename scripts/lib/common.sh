# Shared by scripts/dev-stack, scripts/test and scripts/package. Source it; do not run it.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# Colours only on a terminal (NO_COLOR turns them off): logs and CI output stay plain text.
if [ -t 2 ] && [ -z "${NO_COLOR:-}" ]; then
    _bold=$'\033[1m' _yellow=$'\033[33m' _red=$'\033[31m' _plain=$'\033[0m'
else
    _bold="" _yellow="" _red="" _plain=""
fi
say()  { printf '%s==>%s %s\n' "$_bold" "$_plain" "$*" >&2; }
warn() { printf '%swarning:%s %s\n' "$_yellow" "$_plain" "$*" >&2; }
die()  { printf '%serror:%s %s\n' "$_red" "$_plain" "$*" >&2; exit 1; }

# Debian packages that building, running and testing assetd need.
APT_PACKAGES=(
    nginx libfcgi-dev libfcgi-bin libcurl4-openssl-dev libssl-dev libmagic-dev libmagic-mgc
    libsqlite3-dev libxml2 curl openssl wrk apache2-utils python3-pip
    systemd
    # Thumbnails: libvips 8.14 (with its poppler and HEIF modules) and ffmpeg for video frames.
    libvips-dev libvips-tools ffmpeg
    # Records on PostgreSQL (ASSETD_DATABASE=postgres://...): libpq to build, and the
    # server that dev-stack (ASSETD_DEV_DB=postgres) and the tests start on loopback.
    libpq-dev postgresql-15
    # The browser tests: Debian's chromium, driven through chromium-driver.
    chromium chromium-driver
)
# Python packages for the local S3 server and the integration tests (selenium drives
# Debian's chromium through chromium-driver for the browser tests; standardwebhooks, the
# Standard Webhooks reference library, verifies the webhook receivers' signatures).
PIP_PACKAGES=("moto[server]" boto3 requests pytest Pillow selenium standardwebhooks)

# Installs what is missing; does nothing when everything is there (idempotent).
install_dependencies() {
    # Swift is not a Debian package: say so before installing anything else.
    command -v swift >/dev/null ||
        die "swift is not on PATH: install a Swift 6 toolchain (https://www.swift.org/install/linux/) and put its usr/bin on PATH"
    local missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        say "installing Debian packages: ${missing[*]}"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    if ! python3 -c 'import moto, boto3, requests, pytest, PIL, selenium, standardwebhooks' 2>/dev/null; then
        say "installing Python packages: ${PIP_PACKAGES[*]}"
        # Debian 12's own python3 is "externally managed" (PEP 668) and pip refuses to
        # install into it without this; a pyenv or venv python ignores it.
        PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --disable-pip-version-check \
            --root-user-action=ignore "${PIP_PACKAGES[@]}" ||
            die "pip could not install ${PIP_PACKAGES[*]} (see its message above)"
    fi
}

# swift_build ARGS...: `swift build ARGS...` in the repository. On success it prints one
# line; on failure it prints the compiler's errors (or the end of the log when there are
# none) and stops the calling script with status 1, so that no script ever goes on with a
# binary left over from an earlier, successful build. The whole log stays in a temp file.
swift_build() {
    local log rc=0
    log=$(mktemp "${TMPDIR:-/tmp}/assetd-build.XXXXXX.log")
    (cd "$ROOT" && swift build "$@") >"$log" 2>&1 || rc=$?
    if ((rc == 0)); then
        grep -E "^(Build complete|Compiling|Build of product)" "$log" | tail -n 1 >&2 || true
        rm -f "$log"
        return 0
    fi
    if grep -qE "(error|fatal error):" "$log"; then
        # Each error with the two lines that follow it (the source line and the caret).
        grep -E -A2 "(error|fatal error):" "$log" | grep -v '^--$' | head -n 60 >&2
    else
        tail -n 30 "$log" >&2
    fi
    die "swift build $* failed (status $rc; the whole log is $log)"
}

# print_help FILE: the comment block at the top of FILE, after the #! line, without "# ".
print_help() {
    sed -n '2,${/^#/!q;s/^# \{0,1\}//;p}' "$1"
}

# wait_for DESCRIPTION SECONDS COMMAND...: retries COMMAND until it succeeds.
wait_for() {
    local what=$1 seconds=$2; shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || { warn "$what did not come up within ${seconds}s"; return 1; }
        sleep 0.2
    done
}

# A random secret of 48 hex characters.
random_secret() { openssl rand -hex 24; }
