"""Compares two builds' hit ratios cell by cell: the `SAVE_JSON` files of
`SEEDS="1 2 3 4 5" bash scripts/hit-ratios.sh` run once per build (the
other build's binary through `HELIOS=`). With the same seeds, helios's
rows differ only by what changed between the builds (up to the hot tier's
timer-driven refreshes: a few hits). The peers are seeded at random in
each run, so they are pooled over both files before helios is held
against them.

Usage: python3 scripts/compare_builds.py BASE.json NEW.json [MOVERS]"""
import json
import sys
from collections import defaultdict


def load(path):
    cells = defaultdict(lambda: defaultdict(list))
    for line in open(path):
        if line.strip():
            r = json.loads(line)
            cells[(r["trace"].split("traces/")[-1], r["size"])][r["policy"]].append(r["hit_ratio"])
    return cells


def mean(xs):
    return sum(xs) / len(xs)


base, new = load(sys.argv[1]), load(sys.argv[2])
movers = int(sys.argv[3]) if len(sys.argv) > 3 else 6
if set(base) != set(new):
    sys.exit("the two files replay different traces or sizes")
if any(len(base[k]["helios"]) != len(new[k]["helios"]) for k in base):
    sys.exit("the two files replay a cell a different number of times (different SEEDS?)")
peer = {
    k: max(mean(base[k][p] + new[k][p]) for p in ("lru", "moka", "quick_cache"))
    for k in base
}
for name, build in (("base", base), ("new", new)):
    gap = mean([mean(c["opt"]) - mean(c["helios"]) for c in build.values()])
    trailing = sorted(
        (mean(build[k]["helios"]) - peer[k], k) for k in build
        if mean(build[k]["helios"]) - peer[k] < -0.5
    )
    print(f"{name}: mean gap to opt {gap:.3f} pp, {len(trailing)} of {len(build)} sizes "
          f"trail the best peer by more than 0.5 pp")
diffs = sorted((mean(new[k]["helios"]) - mean(base[k]["helios"]), k) for k in base)
label = lambda d, k: f"{k[0]} @ {k[1]} {d:+.2f}"
print("largest losses: " + "; ".join(label(d, k) for d, k in diffs[:movers] if d < 0))
print("largest gains: " + "; ".join(label(d, k) for d, k in reversed(diffs[len(diffs) - movers:]) if d > 0))
