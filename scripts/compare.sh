#!/usr/bin/env bash
# Runs the same benchmarks on an earlier commit and on the working tree, one after the other
# in one session, and prints each figure before and after with the ratio: how a change moved
# the numbers on this machine, under the same load.
#
#   scripts/compare.sh a6da2da acquire stack throughput
#
# The earlier commit is checked out in target/compare/<rev> (a git worktree) and built into
# its own target directory, target/compare/target; both runs are scripts/bench.sh with the
# same names and BENCH_ARGS. Output: target/compare/<rev>.md.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if (($# < 2)); then
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
    exit 2
fi
rev="$(git rev-parse --short "$1")"
shift
root="$PWD"
base="$root/target/compare"
tree="$base/$rev"
mkdir -p "$base"
if [[ ! -d "$tree" ]]; then
    git worktree add --detach "$tree" "$rev" >/dev/null
fi

echo "==> before: $rev" >&2
(cd "$tree" && CARGO_TARGET_DIR="$base/target" bash scripts/bench.sh "$@" >/dev/null)
echo "==> after: the working tree" >&2
bash scripts/bench.sh "$@" >/dev/null

before="$base/target/bench/figures.tsv"
after="$root/target/bench/figures.tsv"
out="$base/$rev.md"
{
    echo "| bench | case | before ($rev) | after | after / before |"
    echo "|---|---|---|---|---|"
    # Join on bench, group and case; a figure only one side has is shown with a dash.
    awk -F'\t' '
        NR == FNR { if ($2 == "FIGURE") old[$1 FS $3 FS $4] = $5; next }
        $2 == "FIGURE" {
            key = $1 FS $3 FS $4
            was = (key in old) ? old[key] : ""
            ratio = (was != "" && was + 0 > 0) ? sprintf("%.2f×", $5 / was) : "—"
            # Values are `mean[low,high]`; the table shows the means.
            printf "| %s | %s %s | %s | %s %s | %s |\n", $1, $3, $4, (was == "" ? "—" : sprintf("%.4g", was) " " $8), sprintf("%.4g", $5), $8, ratio
        }' "$before" "$after"
} >"$out"
cat "$out"
