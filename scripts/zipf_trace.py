#!/usr/bin/env python3
"""Writes a synthetic Zipf trace in the `lirs` format (gzip, one key per line).

Usage: scripts/zipf_trace.py KEYS EXPONENT REQUESTS OUT.trace.gz

Key ranks are drawn from Zipf(EXPONENT) over KEYS keys with a fixed seed
(42), so the trace is the same on every run, and scattered by a
multiplicative hash so that popular keys are not adjacent integers.
BENCHMARKS.md ("Admission margin") replays such traces, e.g.

    python3 scripts/zipf_trace.py 1000000 0.8 2000000 /tmp/z80_1m.trace.gz
    cargo run --release -p helios -- replay --trace /tmp/z80_1m.trace.gz \
        --format lirs --sizes 10000,50000,100000,250000 --compare
"""
import bisect
import gzip
import random
import sys


def main() -> None:
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    keys, exponent, requests, out = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    if keys < 1 or requests < 0:
        sys.exit("KEYS must be at least 1 and REQUESTS at least 0")
    random.seed(42)
    cumulative, total = [], 0.0
    for rank in range(1, keys + 1):
        total += 1.0 / rank**exponent
        cumulative.append(total)
    with gzip.open(out, "wt") as f:
        for _ in range(requests):
            rank = bisect.bisect_left(cumulative, random.random() * total)
            f.write(f"{(rank * 2654435761) % (1 << 32)}\n")


if __name__ == "__main__":
    main()
