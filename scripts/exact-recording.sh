#!/usr/bin/env bash
# Lossy (default) versus exact hit recording: replays every shared trace
# REPS times (default 3) with `helios replay --exact-recording` and prints
# the mean gap to opt of `helios` and `helios_exact`, averaged over runs.
#
# Usage: scripts/exact-recording.sh [TRACES_DIR]   (default ../shared/traces)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
traces=${1:-$root/../shared/traces}
cargo build --release -q -p helios --manifest-path "$root/Cargo.toml"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for _ in $(seq "${REPS:-3}"); do
  sed -n '/^lirs\/loop/,/^LIST/p' "$root/scripts/hit-ratios.sh" | grep -v '^LIST' |
    while read -r file format sizes; do
      "$root/target/release/helios" replay --trace "$traces/$file" --format "$format" \
        --sizes "$sizes" --exact-recording --json
    done >>"$out"
done
python3 - "$out" <<'PY'
import json, sys
from collections import defaultdict
cells = defaultdict(lambda: defaultdict(list))
for line in open(sys.argv[1]):
    r = json.loads(line)
    cells[(r["trace"], r["size"])][r["policy"]].append(r["hit_ratio"])
mean = lambda xs: sum(xs) / len(xs)
diffs = []
for c in cells.values():
    opt = mean(c["opt"])
    diffs.append((mean(c["helios"]) - mean(c["helios_exact"]), opt - mean(c["helios"]), opt - mean(c["helios_exact"])))
print(f"mean gap to opt: helios (lossy) {mean([d[1] for d in diffs]):.2f} pp, helios_exact {mean([d[2] for d in diffs]):.2f} pp")
print(f"sizes within 0.3 pp of exact: {sum(abs(d[0]) <= 0.3 for d in diffs)} of {len(diffs)}; worst {min(d[0] for d in diffs):+.2f} pp")
PY
