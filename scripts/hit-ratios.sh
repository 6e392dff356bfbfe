#!/usr/bin/env bash
# Replays every trace of ../shared/traces/README.md at its sizes through
# helios, opt, lru, moka and quick_cache (one process per trace, so the peers
# run in the same process as helios), and prints the markdown table and the
# target checks of BENCHMARKS.md.
#
# Usage: scripts/hit-ratios.sh [TRACES_DIR]   (default ../shared/traces)
# SAVE_JSON=FILE also keeps the raw `--json` rows in FILE.
# SEEDS="1 2 3" replays each trace once per seed with helios's hash seed
# fixed (`--seed`), so that two builds can be compared cell by cell without
# seed noise (scripts/compare_builds.py); the table then shows means over
# the seeds. HELIOS=PATH replays through another build's binary.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
traces=${1:-$root/../shared/traces}
if [ -z "${HELIOS:-}" ]; then
  cargo build --release -q -p helios --manifest-path "$root/Cargo.toml"
fi
helios=${HELIOS:-$root/target/release/helios}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
seeds=${SEEDS:-random}
while read -r file format sizes; do
  for seed in $seeds; do
    seed_flag=()
    if [ "$seed" != random ]; then seed_flag=(--seed "$seed"); fi
    "$helios" replay --trace "$traces/$file" --format "$format" --sizes "$sizes" \
      ${seed_flag[@]+"${seed_flag[@]}"} --compare --json >>"$out"
  done
done <<'LIST'
lirs/loop.trace.gz lirs 250,500,750,1000
lirs/2_pools.trace.gz lirs 500,1000,2500,5000
lirs/sprite.trace.gz lirs 350,700,1750,3500
lirs/multi1.trace.gz lirs 130,260,650,1300
lirs/multi2.trace.gz lirs 280,570,1420,2840
lirs/multi3.trace.gz lirs 370,750,1860,3730
lirs/gli.trace.gz lirs 125,250,630,1260
lirs/cpp.trace.gz lirs 60,120,300,610
lirs/cs.trace.gz lirs 70,140,350,700
lirs/ps.trace.gz lirs 150,300,770,1540
lirs/zigzag.trace.gz lirs 100,200,500,1000
lirs/scan.trace.gz lirs 100,200,500,1000
cache2k/web07.trace.xz cache2k 1000,2000,5000,10000
cache2k/orm-night.trace.xz cache2k 865,4300,8650,21600
corda/trace_vaultservice.gz corda 900,4500,9000,22600
address/gcc.trace.gz address 350,1750,3500,8750
LIST
cp "$out" "${SAVE_JSON:-/dev/null}"; python3 "$root/scripts/hit_ratio_table.py" "$out"
