#!/usr/bin/env bash
# The two out-of-sample sets BENCHMARKS.md compares builds on, as `--json`
# rows for scripts/compare_builds.py (peers in every replay):
#
#   offgrid    every shared trace at 0.7x and 1.5x its listed sizes
#   synthetic  the five drift traces of scripts/drift_traces.py at
#              1,000, 5,000, 10,000 and 20,000 entries
#
# Usage: scripts/eval-sets.sh offgrid|synthetic > rows.json
# SEEDS="1 2 3" (the default) fixes helios's hash seeds; HELIOS=PATH replays
# through another build's binary; TRACES_DIR (default ../shared/traces);
# DRIFT_DIR (default /tmp/helios-drift-traces) keeps the generated traces.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
traces=${TRACES_DIR:-$root/../shared/traces}
if [ -z "${HELIOS:-}" ]; then
  cargo build --release -q -p helios --manifest-path "$root/Cargo.toml"
fi
helios=${HELIOS:-$root/target/release/helios}
seeds=${SEEDS:-1 2 3}
case "${1:-}" in
  offgrid)
    # The trace list of scripts/hit-ratios.sh, one "file format sizes" per line.
    sed -n "/<<'LIST'/,/^LIST/p" "$root/scripts/hit-ratios.sh" | sed '1d;$d' |
      while read -r file format sizes; do
        scaled=$(python3 -c "import sys; print(','.join(str(max(2, int(int(s) * f))) for s in sys.argv[1].split(',') for f in (0.7, 1.5)))" "$sizes")
        for seed in $seeds; do
          "$helios" replay --trace "$traces/$file" --format "$format" --sizes "$scaled" \
            --seed "$seed" --compare --json
        done
      done
    ;;
  synthetic)
    # A fixed directory, so that two builds' rows name the same traces
    # (the generator writes the same bytes every time).
    dir=${DRIFT_DIR:-/tmp/helios-drift-traces}
    if [ ! -f "$dir/loops.trace.gz" ]; then
      python3 "$root/scripts/drift_traces.py" "$dir" >/dev/null
    fi
    for t in stackdist shift phases zipfscan loops; do
      for seed in $seeds; do
        "$helios" replay --trace "$dir/$t.trace.gz" --format lirs \
          --sizes 1000,5000,10000,20000 --seed "$seed" --compare --json
      done
    done
    ;;
  *)
    echo "usage: $0 offgrid|synthetic" >&2
    exit 2
    ;;
esac
