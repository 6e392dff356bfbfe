#!/usr/bin/env bash
# Instructions per operation of the throughput bench's measured rounds, per
# implementation and workload, under callgrind (one thread): a repeatable
# second measure beside the noisy wall-clock ratios (BENCHMARKS.md,
# "Instructions per operation"). Only `throughput::timed_pass` is counted, so
# warm-up, stream generation and thread start-up are left out.
#
#   bash scripts/instructions.sh                      # all four workloads
#   IMPLS="helios quick_cache" READS=95 bash scripts/instructions.sh
#
# Env: IMPLS (default: helios helios_agents quick_cache moka), OPS
# (operations per measured round, default 1,000,000), RUNS (processes per
# cell, default 3: the median is printed, with the range when the runs
# differ by more than 2%), READS and ZIPF (limit the workloads, as in the
# bench).
#
# Why runs differ: the hash seeds are random per process, and helios's hot
# tier refreshes on a wall-clock timer (25 ms), which callgrind slows ~50x
# per operation, so whether the tier is serving during the measured round
# can differ from one process to the next.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# The bench binary cargo built (its "Executable" line), not whichever
# throughput-* file is newest.
if ! cargo bench -p helios-l1 --bench throughput --no-run 2>"$out/build"; then
  cat "$out/build" >&2
  exit 1
fi
B=$(sed -n 's/.*Executable .*(\(.*\))$/\1/p' "$out/build" | tail -1)
[ -x "$B" ] || { cat "$out/build" >&2; echo "no bench binary found in cargo's output" >&2; exit 1; }
IMPLS=${IMPLS:-"helios helios_agents quick_cache moka"}
OPS=${OPS:-1000000}
RUNS=${RUNS:-3}
echo "| workload | $(echo $IMPLS | sed 's/ / | /g') |"
echo "|---|$(for _ in $IMPLS; do printf -- '---:|'; done)"
for zipf in 0.99 0.8; do
  [ -n "${ZIPF:-}" ] && [ "$ZIPF" != "$zipf" ] && continue
  for reads in 100 95; do
    [ -n "${READS:-}" ] && [ "$READS" != "$reads" ] && continue
    row="| zipf($zipf) $reads% reads |"
    for impl in $IMPLS; do
      counts=()
      for _ in $(seq "$RUNS"); do
        if ! ONLY=$impl THREADS=1 ROUNDS=1 OPS=$OPS READS=$reads ZIPF=$zipf \
          valgrind --tool=callgrind --callgrind-out-file="$out/cg" \
          --toggle-collect='throughput::timed_pass' "$B" >/dev/null 2>"$out/log"; then
          cat "$out/log" >&2
          exit 1
        fi
        ir=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/log" | tail -1)
        if [ -z "$ir" ] || [ "$ir" = 0 ]; then
          # Nothing counted: the measured loop's symbol was not found.
          cat "$out/log" >&2
          echo "callgrind counted nothing in throughput::timed_pass ($impl)" >&2
          exit 1
        fi
        counts+=("$ir")
      done
      row="$row $(printf '%s\n' "${counts[@]}" | sort -n | awk -v ops="$OPS" '
        { v[NR] = $1 / ops }
        END {
          m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
          if (v[NR] > v[1] * 1.02) printf "%.1f (%.1f–%.1f)", m, v[1], v[NR]
          else printf "%.1f", m
        }') |"
    done
    echo "$row"
  done
done
