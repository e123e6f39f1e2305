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

# Each program the tests start, and the Debian package that has it.
declare -A package_of=(
    [redis-server]=redis-server
    [redis-cli]=redis-tools
    [tinyproxy]=tinyproxy-bin
    [danted]=dante-server
    [prometheus]=prometheus
    [promtool]=prometheus
)
programs=(redis-server redis-cli tinyproxy danted prometheus promtool)
missing=()
packages=()
for program in "${programs[@]}"; do
    if ! find_program "$program"; then
        missing+=("$program")
        [[ " ${packages[*]} " == *" ${package_of[$program]} "* ]] || packages+=("${package_of[$program]}")
    fi
done

if ((${#missing[@]} > 0)); then
    log "missing test programs: ${missing[*]}; installing ${packages[*]}"
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
    # No recommends: prometheus would bring exporters and a web UI the tests do not use.
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${packages[@]}" </dev/null
    for program in "${missing[@]}"; do
        if ! find_program "$program"; then
            echo "error: $program still not found after installing its package" >&2
            exit 1
        fi
    done
else
    log "test programs present: ${programs[*]}"
fi

# Tests start their own server instances on free loopback ports; any system service the
# packages started (redis on 6379, danted on 1080) is neither used nor disturbed.
log "cargo test --workspace --all-features"
cargo test --workspace --all-features </dev/null || {
    status=$?
    echo "==> TESTS FAILED (cargo test exited with $status)" >&2
    exit "$status"
}

# Tests marked #[ignore = "needs root: ..."]: danted checks SOCKS passwords against system
# accounts, which only root can create. Named exactly, so that other ignored tests (the
# child-process helper of tests/distributed_rate_limit.rs) are not run by accident.
root_only_tests=(
    dante_accepts_the_right_password_and_refuses_a_wrong_one
    socks5_through_danted_with_auth_and_a_wrong_password_is_the_proxys_failure
)
if [[ "$(id -u)" -eq 0 ]]; then
    log "cargo test (root only): ${root_only_tests[*]}"
    run_log="$(mktemp)"
    trap 'rm -f "$run_log"' EXIT
    cargo test --all-features --test proxies_answer --test proxy_client \
        -- --ignored --exact "${root_only_tests[@]}" </dev/null 2>&1 | tee "$run_log" || {
        status=$?
        echo "==> TESTS FAILED (root-only tests, cargo test exited with $status)" >&2
        exit "$status"
    }
    # A renamed test would match no filter and "pass" as zero tests: each must have run.
    for name in "${root_only_tests[@]}"; do
        grep -q "^test $name \.\.\. ok\$" "$run_log" || {
            echo "==> TESTS FAILED (root-only test $name did not run)" >&2
            exit 1
        }
    done
else
    log "SKIPPED (needs root: danted checks passwords against system accounts): ${root_only_tests[*]}"
fi
log "all tests passed"
