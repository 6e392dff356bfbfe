"""Formats `helios replay --json` lines as the BENCHMARKS.md hit-ratio table
and checks the targets: helios >= max(moka, quick_cache, lru) - 0.5 pp at
every size, and helios's mean gap to opt below the best peer's. A cell
replayed several times (`SEEDS` in hit-ratios.sh) shows the mean of its
runs."""
import json
import sys
from collections import defaultdict

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
runs = defaultdict(lambda: defaultdict(list))
order = []
for r in rows:
    name = r["trace"].split("traces/")[-1]
    key = (name, r["size"])
    if key not in runs:
        order.append(key)
    runs[key][r["policy"]].append(r["hit_ratio"])
cells = {
    key: {p: sum(v) / len(v) for p, v in by_policy.items()}
    for key, by_policy in runs.items()
}

policies = ["helios", "opt", "lru", "moka", "quick_cache"]
print("| trace | size | " + " | ".join(policies) + " | helios − best peer |")
print("|---|---:|" + "---:|" * len(policies) + "---:|")
gaps = defaultdict(list)
misses = []
for key in order:
    c = cells[key]
    best_peer = max(c["lru"], c["moka"], c["quick_cache"])
    margin = c["helios"] - best_peer
    if margin < -0.5:
        misses.append((key, margin))
    for p in policies:
        gaps[p].append(c["opt"] - c[p])
    print(f"| {key[0]} | {key[1]} | " + " | ".join(f"{c[p]:.2f}" for p in policies) + f" | {margin:+.2f} |")
print()
print("Mean gap to opt (pp): " + ", ".join(f"{p} {sum(g)/len(g):.2f}" for p, g in gaps.items() if p != "opt"))
print(f"Sizes where helios trails the best peer by more than 0.5 pp: {len(misses)} of {len(order)}")
for (name, size), m in misses:
    print(f"  {name} @ {size}: {m:+.2f} pp")
