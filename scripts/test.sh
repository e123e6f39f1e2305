#!/usr/bin/env bash
# The one test command: installs the servers the tests start (when missing), then runs every
# test of the workspace, doctests included. Safe on a fresh Debian machine with no stdin.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '==> %s\n' "$*"; }

# Servers the tests spawn on loopback. danted lives in /usr/sbin, which a non-root PATH may miss.
find_program() {
    local name="$1"
    command -v "$name" >/dev/null 2>&1 && return 0
    local dir
    for dir in /usr/sbin /usr/bin /sbin /usr/local/sbin /usr/local/bin; do
        [[ -x "$dir/$name" ]] && return 0
    done
    return 1
}

missing=()
for program in redis-server tinyproxy danted; do
    find_program "$program" || missing+=("$program")
done

if ((${#missing[@]} > 0)); then
    log "missing test servers: ${missing[*]}; installing redis-server tinyproxy-bin dante-server"
    if [[ "$(id -u)" -eq 0 ]]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo -n)
    else
        echo "error: ${missing[*]} missing and neither root nor sudo available to install them" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${as_root[@]}" apt-get update </dev/null
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y redis-server tinyproxy-bin dante-server </dev/null
    for program in redis-server tinyproxy danted; do
        if ! find_program "$program"; then
            echo "error: $program still not found after installing its package" >&2
            exit 1
        fi
    done
else
    log "test servers present: redis-server tinyproxy danted"
fi

# Tests start their own server instances on free loopback ports; any system service the
# packages started (redis on 6379, danted on 1080) is neither used nor disturbed.
log "cargo test --workspace --all-features"
if cargo test --workspace --all-features </dev/null; then
    log "all tests passed"
else
    status=$?
    echo "==> TESTS FAILED (cargo test exited with $status)" >&2
    exit "$status"
fi
