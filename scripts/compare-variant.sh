#!/usr/bin/env bash
# Default helios versus a variant: replays every shared trace REPS times
# (default 3) with `helios replay FLAG` and prints the mean gap to opt of
# `helios` and of the variant's row, averaged over runs, and how many sizes
# differ by at most 0.3 pp.
#
# With SEEDED=1, run r hashes every helios row with seed r (`--seed r`), so
# helios and the variant see the same hashes and a cell differs only by
# what the variant changes (otherwise each cache is seeded at random and
# single cells differ by up to a few points on seeds alone). The agent
# variants are the exception since session 20: an agent store clears bit 31
# of its hashes, so they differ from plain helios a little, as a seed does.
#
# Usage: scripts/compare-variant.sh FLAG VARIANT [TRACES_DIR]
#   e.g. scripts/compare-variant.sh --exact-recording helios_exact
#        scripts/compare-variant.sh --no-hot-tier helios_nohot
set -euo pipefail
flag=$1
variant=$2
root=$(cd "$(dirname "$0")/.." && pwd)
traces=${3:-$root/../shared/traces}
cargo build --release -q -p helios --manifest-path "$root/Cargo.toml"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for rep in $(seq "${REPS:-3}"); do
  seed=()
  if [ "${SEEDED:-0}" = 1 ]; then seed=(--seed "$rep"); fi
  sed -n '/^lirs\/loop/,/^LIST/p' "$root/scripts/hit-ratios.sh" | grep -v '^LIST' |
    while read -r file format sizes; do
      "$root/target/release/helios" replay --trace "$traces/$file" --format "$format" \
        --sizes "$sizes" "$flag" ${seed[@]+"${seed[@]}"} --json
    done >>"$out"
done
python3 - "$out" "$variant" <<'PY'
import json, sys
from collections import defaultdict
variant = sys.argv[2]
cells = defaultdict(lambda: defaultdict(list))
for line in open(sys.argv[1]):
    r = json.loads(line)
    cells[(r["trace"], r["size"])][r["policy"]].append(r["hit_ratio"])
mean = lambda xs: sum(xs) / len(xs)
if not cells:
    sys.exit("no replays ran (REPS=0?)")
if any(variant not in c for c in cells.values()):
    sys.exit(f"no {variant} row in the replays: does the flag produce that variant?")
diffs = []
for cell, c in cells.items():
    opt = mean(c["opt"])
    diffs.append((mean(c["helios"]) - mean(c[variant]), opt - mean(c["helios"]), opt - mean(c[variant]), cell))
print(f"mean gap to opt: helios {mean([d[1] for d in diffs]):.2f} pp, {variant} {mean([d[2] for d in diffs]):.2f} pp")
worst = min(diffs)
best = max(diffs)
name = lambda cell: f"{cell[0].split('traces/')[-1]} @ {cell[1]}"
print(f"sizes where helios is within 0.3 pp of {variant}: {sum(abs(d[0]) <= 0.3 for d in diffs)} of {len(diffs)}; "
      f"within 0.5 pp: {sum(abs(d[0]) <= 0.5 for d in diffs)}")
print(f"helios below {variant} by at most {-worst[0]:.2f} pp ({name(worst[3])}); "
      f"{variant} below helios by at most {best[0]:.2f} pp ({name(best[3])})")
PY
