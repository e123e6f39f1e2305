#!/usr/bin/env bash
# Runs every benchmark of the workspace briefly, each with its anchor in the same run, and
# writes the figures table (ours, the anchor, the ratio, DESIGN.md's target, the machine) to
# target/bench/figures.md, then prints it.
#
#   scripts/bench.sh                    # all of them: a few minutes after the first compile
#   scripts/bench.sh resilience client  # only those whose name (below) contains a word
#   BENCH_ARGS="--measurement-time 3" scripts/bench.sh breaker   # extra criterion arguments
#
# Names: proxypool/acquire, resilience/{breaker,rate_limit,bulkhead,retry,stack,
# distributed_rate_limit}, pipeline/throughput, pipeline/peak_rss, harvester/client,
# harvester/fleet (the collect binary over a dirty fleet against a clean one),
# harvester/selection (the proxy-selection simulator: every balancer against an oracle),
# collect/peak_rss (the collect binary's peak RSS resuming 100 000 and 1 000 000 URLs).
#
# After criterion's report each bench prints one line per figure,
#   FIGURE<TAB>group<TAB>case<TAB>ours<TAB>anchor name<TAB>anchor<TAB>unit<TAB>target
# or `SKIPPED<TAB>group<TAB>reason` when a server it starts is not installed (redis-server for
# distributed_rate_limit, tinyproxy for client): that becomes a note row, not a failure.
# Criterion timings are each bench's own short ones (2 shared cores); BENCH_ARGS adds to them
# where a bench does not fix them per group. Exits non-zero when a bench fails to build or run,
# or prints no figure. Raw output of each run: target/bench/<name>.log.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '==> %s\n' "$*" >&2; }

# name, then the bench target (`peak_rss` is the pipeline's example, run at each size below).
BENCHES=(
    "proxypool/acquire acquire"
    "resilience/breaker breaker"
    "resilience/rate_limit rate_limit"
    "resilience/bulkhead bulkhead"
    "resilience/retry retry"
    "resilience/stack stack"
    "resilience/distributed_rate_limit distributed_rate_limit"
    "pipeline/throughput throughput"
    "pipeline/peak_rss peak_rss"
    "harvester/client client"
    "harvester/fleet fleet"
    "harvester/selection selection"
    "collect/peak_rss collect_rss"
)
PEAK_RSS_RECORDS=(1000000 10000000)
COLLECT_RSS_URLS=(100000 1000000)

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
    exit 0
fi

selected=()
for entry in "${BENCHES[@]}"; do
    read -r name _ <<<"$entry"
    if (($# == 0)); then
        selected+=("$entry")
        continue
    fi
    for word in "$@"; do
        if [[ "$name" == *"$word"* ]]; then
            selected+=("$entry")
            break
        fi
    done
done
if ((${#selected[@]} == 0)); then
    echo "error: no benchmark name contains any of: $*" >&2
    echo "names: $(for entry in "${BENCHES[@]}"; do printf '%s ' "${entry%% *}"; done)" >&2
    exit 2
fi

target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
out="$target_dir/bench"
figures="$out/figures.tsv"
mkdir -p "$out"
: >"$figures"

# One feature set and one package selection for every build, so the benches, the examples
# and the collect binary share their compiled dependencies (the distributed bench needs the `redis` feature).
cargo_args=(--workspace --features harvester-resilience/redis)
read -r -a criterion_args <<<"${BENCH_ARGS:-}"

bench_targets=()
example=false
collect=false
select=false
collect_rss=false
for entry in "${selected[@]}"; do
    read -r _ target <<<"$entry"
    case "$target" in
        peak_rss) example=true ;;
        selection) select=true ;;
        collect_rss) collect_rss=true ;;
        fleet)
            collect=true
            bench_targets+=(--bench "$target")
            ;;
        *) bench_targets+=(--bench "$target") ;;
    esac
done

log "building in release"
if ((${#bench_targets[@]} > 0)) && ! cargo bench "${cargo_args[@]}" --no-run "${bench_targets[@]}"; then
    log "BUILD FAILED (cargo bench --no-run)"
    exit 1
fi
if $example && ! cargo build --release "${cargo_args[@]}" --example peak_rss; then
    log "BUILD FAILED (the peak_rss example)"
    exit 1
fi
# The fleet bench runs the job as a user would: the release `collect` binary (crates/collect).
if $collect && ! cargo build --release "${cargo_args[@]}" --bin collect; then
    log "BUILD FAILED (the collect binary)"
    exit 1
fi
if $select && ! cargo build --release "${cargo_args[@]}" --example select; then
    log "BUILD FAILED (the select example)"
    exit 1
fi
if $collect_rss && ! cargo build --release "${cargo_args[@]}" --example collect_rss --bin collect; then
    log "BUILD FAILED (the collect_rss example or the collect binary)"
    exit 1
fi

failed=()
load_before="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
started=$SECONDS

# Appends the FIGURE and SKIPPED lines of a run's log to the figures, each after the name of
# the bench; false when there is none.
collect() {
    local name="$1" run_log="$2"
    awk -F'\t' -v OFS='\t' -v name="$name" \
        '$1 == "FIGURE" || $1 == "SKIPPED" { print name, $0; found = 1 } END { exit !found }' \
        "$run_log" >>"$figures"
}

fail() {
    local name="$1" reason="$2"
    failed+=("$name")
    printf '%s\tFAILED\t%s\n' "$name" "$reason" >>"$figures"
    log "FAILED: $name: $reason"
}

run_bench() {
    local name="$1" target="$2" run_log="$out/$2.log"
    log "$name: cargo bench --bench $target"
    if ! cargo bench "${cargo_args[@]}" --bench "$target" -- --noplot "${criterion_args[@]}" 2>&1 |
        tee "$run_log"; then
        fail "$name" "the bench failed, see ${run_log#"$PWD"/}"
    elif ! collect "$name" "$run_log"; then
        fail "$name" "the bench printed no FIGURE line, see ${run_log#"$PWD"/}"
    fi
}

# Runs `program SIZE ARGS...` at each of `sizes` (one process per run: VmHWM is per process),
# appending its output to `run_log` and its FIGURE line to the figures: the first size's as
# it is, each other one against it (named "SIZE what"), with DESIGN.md's target for a flat
# peak RSS. False when a run fails or prints no FIGURE line (after saying so).
rss_series() {
    local name="$1" program="$2" run_log="$3" what="$4" sizes="$5"
    shift 5
    local size output line anchor="" anchor_name
    for size in $sizes; do
        log "$name: ${program##*/} $size $*"
        if ! output="$("$program" "$size" "$@" 2>&1)"; then
            printf '%s\n' "$output" | tee -a "$run_log"
            fail "$name" "${program##*/} $size $* failed, see ${run_log#"$PWD"/}"
            return 1
        fi
        printf '%s\n' "$output" | tee -a "$run_log"
        line="$(awk -F'\t' '$1 == "FIGURE"' <<<"$output")"
        if [[ -z "$line" ]]; then
            fail "$name" "${program##*/} $size $* printed no FIGURE line"
            return 1
        fi
        if [[ -z "$anchor" ]]; then
            anchor="$(cut -f4 <<<"$line")"
            anchor_name="$size $what"
            printf '%s\t%s\n' "$name" "$line" >>"$figures"
        else
            # Flat: ten times the input may cost at most a quarter more memory (anything
            # that grew with it would be near 10×).
            awk -F'\t' -v OFS='\t' -v name="$name" -v kb="$anchor" -v anchor_name="$anchor_name" \
                '{ $5 = anchor_name; $6 = kb; $8 = "ratio<=1.25"; print name, $0 }' \
                <<<"$line" >>"$figures"
        fi
    done
}

# The pipeline's peak RSS at each size of PEAK_RSS_RECORDS, against the smallest run of the
# same mode: DESIGN.md wants it flat.
run_peak_rss() {
    local name="$1" run_log="$out/peak_rss.log"
    : >"$run_log"
    local program="$target_dir/release/examples/peak_rss"
    rss_series "$name" "$program" "$run_log" records "${PEAK_RSS_RECORDS[*]}" &&
        rss_series "$name" "$program" "$run_log" records "${PEAK_RSS_RECORDS[*]}" batched
}

# The collect binary's peak RSS resuming COLLECT_RSS_URLS URLs (2 000 of them left to fetch,
# the rest done in --out), against the smallest list: the streamed list and the resume scan
# must keep it flat (the fingerprints, 8 bytes a URL, are what grows).
run_collect_rss() {
    local name="$1" run_log="$out/collect_rss.log"
    : >"$run_log"
    rss_series "$name" "$target_dir/release/examples/collect_rss" "$run_log" URLs "${COLLECT_RSS_URLS[*]}"
}

# The selection simulator's table, as figures: the default balancer against the oracle and
# round robin, over several seeded worlds (virtual time: a few seconds per world).
run_selection() {
    local name="$1" program="$target_dir/release/examples/select" run_log="$out/selection.log"
    log "$name: select --seeds 1,2,3,4,5"
    if ! "$program" --seeds 1,2,3,4,5 --out "$out/selection" --figures 2>&1 | tee "$run_log"; then
        fail "$name" "the simulator failed, see ${run_log#"$PWD"/}"
    elif ! collect "$name" "$run_log"; then
        fail "$name" "the simulator printed no FIGURE line, see ${run_log#"$PWD"/}"
    fi
}

for entry in "${selected[@]}"; do
    read -r name target <<<"$entry"
    case "$target" in
        peak_rss) run_peak_rss "$name" || true ;;
        collect_rss) run_collect_rss "$name" || true ;;
        selection) run_selection "$name" ;;
        *) run_bench "$name" "$target" ;;
    esac
done

elapsed=$((SECONDS - started))
load_after="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
cpu="$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ "$commit" != unknown ]] && ! git diff --quiet HEAD -- 2>/dev/null; then
    commit+=" (with uncommitted changes)"
fi

# The markdown: one table per bench, then the machine.
render() {
    awk -F'\t' '
    function scaled(v, unit,    u) {
        if (unit == "ns") {
            if (v >= 1e6) return mantissa(v / 1e6) " ms"
            if (v >= 1e3) return mantissa(v / 1e3) " µs"
            return mantissa(v) " ns"
        }
        if (unit ~ /\/s$/) {
            if (v >= 1e6) return mantissa(v / 1e6) " M " unit
            if (v >= 1e3) return mantissa(v / 1e3) " k " unit
            return mantissa(v) " " unit
        }
        if (unit == "kB" && v >= 1024) return mantissa(v / 1024) " MiB"
        if (unit == "×") return mantissa(v) "×"
        return mantissa(v) " " unit
    }
    # Three significant digits, never an exponent.
    function mantissa(v) {
        if (v >= 100) return sprintf("%.0f", v)
        if (v >= 10) return sprintf("%.1f", v)
        return sprintf("%.2f", v)
    }
    function factor(f,    s) {
        if (f < 10) return sprintf("%.2f×", f)
        s = sprintf("%.0f", f)
        while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s)
        return s "×"
    }
    # ours / anchor, with which way that goes in words.
    function ratio(r, unit,    better, times, text, digits) {
        better = (unit ~ /\/s$/) ? (r >= 1) : (r <= 1)
        times = (r >= 1) ? r : 1 / r
        # Two significant digits, never an exponent: 0.20×, 0.0018×.
        for (digits = 2; r < 0.1 && r * 10 ^ (digits - 1) < 1; digits++) {}
        text = sprintf("%." digits "f×", r)
        if (unit == "ns" || unit ~ /\/s$/) return text " (" factor(times) " " (better ? "faster" : "slower") ")"
        return text " (" factor(times) " " (r >= 1 ? "higher" : "lower") ")"
    }
    # A value is written `mean[low,high]`: the 95 % confidence interval of criterion, or the
    # range of a few runs; shown as "(low–high)" unless both ends are the value.
    function interval(field, unit,    parts, low, high) {
        if (!match(field, /\[.*\]$/)) return ""
        split(substr(field, RSTART + 1, RLENGTH - 2), parts, ",")
        low = parts[1] + 0; high = parts[2] + 0
        if (low == field + 0 && high == field + 0) return ""
        return " (" trim_scaled(low, unit) "–" trim_scaled(high, unit) ")"
    }
    function target_text(t, unit,    n) {
        if (t == "-" || t == "") return "—"
        if (match(t, /^ratio(<=|>=)/)) return (substr(t, 6, 2) == "<=" ? "≤ " : "≥ ") trim(substr(t, 8)) "× anchor"
        if (match(t, /^(<=|>=)/)) return (substr(t, 1, 2) == "<=" ? "≤ " : "≥ ") trim_scaled(substr(t, 3) + 0, unit)
        return t
    }
    function trim(s) { if (s ~ /\./) { sub(/0+$/, "", s); sub(/\.$/, "", s) } return s }
    function trim_scaled(v, unit,    s, number, rest) {
        s = scaled(v, unit)
        number = s; sub(/[^0-9.].*$/, "", number)
        rest = substr(s, length(number) + 1)
        return trim(number) rest
    }
    function verdict(t, ours, r,    limit) {
        if (match(t, /^ratio(<=|>=)/)) {
            if (r == "") return ""
            limit = substr(t, 8) + 0
            return ((substr(t, 6, 2) == "<=") ? r <= limit : r >= limit) ? "ok" : "**MISS**"
        }
        if (match(t, /^(<=|>=)/)) {
            limit = substr(t, 3) + 0
            return ((substr(t, 1, 2) == "<=") ? ours <= limit : ours >= limit) ? "ok" : "**MISS**"
        }
        return ""
    }
    function header(bench) {
        printf "\n### %s\n\n", bench
        print "| group | case | ours | anchor, same run | ours / anchor | target (DESIGN.md) | met |"
        print "|---|---|---|---|---|---|---|"
    }
    {
        bench = $1
        if (bench != current) { header(bench); current = bench }
        if ($2 == "SKIPPED") { printf "| %s | skipped: %s | — | — | — | — | — |\n", $3, $4; next }
        if ($2 == "FAILED") { printf "| — | **FAILED**: %s | — | — | — | — | — |\n", $3; next }
        group = $3; case_ = $4; ours = $5 + 0; anchor_name = $6; anchor = $7; unit = $8; target = $9
        if (anchor == "-" || anchor_name == "-" || anchor + 0 == 0) { anchor_cell = "—"; r = ""; ratio_cell = "—" }
        else {
            anchor_cell = anchor_name " " scaled(anchor + 0, unit) interval(anchor, unit)
            r = ours / (anchor + 0)
            ratio_cell = ratio(r, unit)
        }
        printf "| %s | %s | %s | %s | %s | %s | %s |\n", group, case_, scaled(ours, unit) interval($5, unit), anchor_cell,
            ratio_cell, target_text(target, unit), verdict(target, ours, r)
    }
    ' "$figures"
}

{
    echo "# harvester benchmark figures"
    echo
    echo "Written by \`scripts/bench.sh${*:+ $*}\`: each figure of ours next to its anchor, measured"
    echo "in the same run, doing the same work. Each timed value is criterion's mean with its 95 %"
    echo "confidence interval in brackets, from this run (a bench refuses estimates older than its"
    echo "start); the main job's runs give the mean of their rounds with their range. **ours /"
    echo "anchor** is taken in the row's unit: for ns, MiB and × lower is better, for …/s higher is"
    echo "better; the words in brackets say which way it went. **met** checks DESIGN.md's target"
    echo "where it is a number (a peak RSS is flat when 10× the records cost ≤ 1.25× the memory)."
    echo "Short runs on a shared machine: expect 10–30 % between runs."
    render
    echo
    echo "### Machine"
    echo
    echo "- CPU: ${cpu:-unknown} (/proc/cpuinfo), nproc $(nproc)"
    echo "- $(rustc --version)"
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit"
    echo "- load average (1, 5, 15 min) before: $load_before; after: $load_after"
    echo "- measuring took $((elapsed / 60)) min $((elapsed % 60)) s${BENCH_ARGS:+; BENCH_ARGS=$BENCH_ARGS}"
} >"$out/figures.md"

echo
cat "$out/figures.md"
echo
log "figures written to ${out#"$PWD"/}/figures.md"
if ((${#failed[@]} > 0)); then
    log "BENCHMARKS FAILED: ${failed[*]}"
    exit 1
fi
