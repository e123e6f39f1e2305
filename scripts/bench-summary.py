#!/usr/bin/env python3
"""Summarises the `acquire` benchmark of harvester-proxypool as markdown tables.

Run after `cargo bench -p harvester-proxypool --bench acquire`:

    python3 scripts/bench-summary.py [TARGET_DIR]

Reads every `new/benchmark.json` + `new/estimates.json` that criterion wrote under
TARGET_DIR/criterion (default: $CARGO_TARGET_DIR, else ./target next to this script's
parent) for the `lease_release/*` groups, and prints mean ns per lease + release, the
ratio seed-naive / ours, and the growth from 1k to 100k proxies, against the targets in
DESIGN.md ("Performance targets"). Standard library only.
"""

import json
import os
import sys
from pathlib import Path

GROUP_PREFIX = "lease_release/"
SIZES = ["1000", "10000", "100000"]
TARGET_NS_AT_10K = 50.0
TARGET_GROWTH = 1.5
HEADLINE = ["round_robin", "p2c"]


def target_dir() -> Path:
    if len(sys.argv) > 1:
        return Path(sys.argv[1])
    if os.environ.get("CARGO_TARGET_DIR"):
        return Path(os.environ["CARGO_TARGET_DIR"])
    return Path(__file__).resolve().parent.parent / "target"


def load(criterion: Path, prefix: str = GROUP_PREFIX) -> dict:
    """(group, function, size) -> mean ns per iteration, for groups starting with `prefix`."""
    results = {}
    for bench in criterion.glob("**/new/benchmark.json"):
        meta = json.loads(bench.read_text())
        group = meta.get("group_id", "")
        if not group.startswith(prefix):
            continue
        estimates = json.loads((bench.parent / "estimates.json").read_text())
        key = (group[len(prefix):], meta.get("function_id") or "", meta.get("value_str") or "")
        results[key] = estimates["mean"]["point_estimate"]
    return results


def client_summary(criterion: Path) -> None:
    """The `client` bench of the root package: ProxyClient against bare reqwest."""
    r = load(criterion, "through_tinyproxy")
    bare, ours = r.get(("", "bare_reqwest", "")), r.get(("", "proxy_client", ""))
    if bare is None or ours is None:
        return
    print("### Through tinyproxy on loopback: ProxyClient against bare reqwest (16 at a time)\n")
    ratio = bare / ours
    table(["client", "per request", "requests/s"],
          [["bare reqwest", fmt_ns(bare), f"{1e9 / bare:,.0f}"],
           ["ProxyClient", fmt_ns(ours), f"{1e9 / ours:,.0f}"]])
    print(f"ProxyClient / bare reqwest throughput: {ratio:.2f}× (target ≥ 0.9×: {'ok' if ratio >= 0.9 else 'MISS'})\n")


def fmt_ns(ns) -> str:
    if ns is None:
        return "-"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.1f} µs"
    return f"{ns:.1f} ns"


def fmt_ratio(a, b) -> str:
    return "-" if a is None or b is None or b == 0 else f"{a / b:,.1f}×"


def table(header, rows):
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()


def main() -> int:
    criterion = target_dir() / "criterion"
    client_summary(criterion)
    r = load(criterion)
    if not r:
        print(f"no lease_release results under {criterion}; run "
              "`cargo bench -p harvester-proxypool --bench acquire` first", file=sys.stderr)
        return 1
    get = lambda group, function, size: r.get((group, function, size))  # noqa: E731

    def functions(group):
        seen = []
        for g, f, _ in sorted(r, key=lambda k: (k[1], int(k[2]) if k[2].isdigit() else 0)):
            if g == group and f not in seen:
                seen.append(f)
        # Headline balancers first, in a fixed order.
        return sorted(seen, key=lambda f: (not any(f.startswith(h) for h in HEADLINE), f))

    print("### 1 thread: mean ns per acquire + drop (warm pool)\n")
    rows = []
    for f in functions("1thread"):
        ns = [get("1thread", f, s) for s in SIZES]
        rows.append([f] + [fmt_ns(v) for v in ns] + [fmt_ratio(ns[2], ns[0])])
    table(["balancer", "1k", "10k", "100k", "100k / 1k"], rows)

    print("### 2 threads on one pool: each thread's ns per acquire + drop\n")
    rows = []
    for f in functions("2threads"):
        for s in SIZES:
            two = get("2threads", f, s)
            if two is None:
                continue
            one = get("1thread", f, s)
            rows.append([f, s, fmt_ns(two), fmt_ns(one), fmt_ratio(two, one), f"{2e3 / two:.1f}",
                         "-" if one is None else f"{1e3 / one:.1f}"])
    table(["balancer", "proxies", "2 threads", "1 thread", "2t / 1t", "Mops/s (2t)", "Mops/s (1t)"], rows)

    print("### Seed naive baseline (filter + sort per pick) vs ours\n")
    rows = []
    for f in functions("seed_naive"):
        for s in SIZES:
            naive = get("seed_naive", f, s)
            if naive is None:
                continue
            ours_fn = [h + f[len("filter_sort"):] for h in HEADLINE]
            ours = [get("1thread", o, s) for o in ours_fn]
            rows.append([f, s, fmt_ns(naive)] + [fmt_ratio(naive, o) for o in ours])
    table(["seed", "proxies", "mean", "naive / round_robin", "naive / p2c"], rows)

    print("### DESIGN targets\n")
    rows = []
    for h in HEADLINE:
        at10k = get("1thread", h, "10000")
        small, large = get("1thread", h, "1000"), get("1thread", h, "100000")
        growth = None if small is None or large is None else large / small
        rows.append([h, fmt_ns(at10k), "ok" if at10k is not None and at10k <= TARGET_NS_AT_10K else "MISS",
                     "-" if growth is None else f"{growth:.2f}×",
                     "ok" if growth is not None and growth <= TARGET_GROWTH else "MISS"])
    table(["balancer", "10k, 1 thread", f"≤ {TARGET_NS_AT_10K:.0f} ns", "100k / 1k", f"≤ {TARGET_GROWTH}×"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
