#!/usr/bin/env python3
"""Writes five synthetic traces in the `lirs` format (gzip, one key per line)
that the shared traces under-represent: recency, drifting popularity, phases,
scans and interleaved loops. 400,000 requests each, fixed seed (7), so every
run writes the same bytes. BENCHMARKS.md ("Early looks") replays them:

    python3 scripts/drift_traces.py /tmp/syn
    for t in stackdist shift phases zipfscan loops; do
      cargo run --release -q -p helios -- replay --trace /tmp/syn/$t.trace.gz \\
        --format lirs --sizes 1000,5000,10000,20000 --compare
    done

- stackdist: 85% of requests re-reference a key at a geometric depth (mean
  800) of an LRU stack of the last 50,000 keys, 15% are new keys. LRU is
  optimal here.
- shift: Zipf(0.9) over 100,000 ranks whose keys move by 5,000 every 50,000
  requests (the top 5,000 go cold at once).
- phases: eight phases of 50,000 requests, each Zipf(0.8) over its own
  20,000 keys, with 30% of requests to one shared Zipf(0.8) set.
- zipfscan: Zipf(0.9) over 100,000 ranks with a burst of 5,000 one-time keys
  every 80,000 requests.
- loops: 40% a loop over 3,000 keys, 40% a loop over 12,000, 20% Zipf(0.9).

Usage: scripts/drift_traces.py OUT_DIR
"""
import bisect
import gzip
import os
import random
import sys

REQUESTS = 400_000


def zipf_cdf(n, s):
    cumulative, total = [], 0.0
    for rank in range(1, n + 1):
        total += 1.0 / rank**s
        cumulative.append(total)
    return cumulative, total


def draw(cdf):
    cumulative, total = cdf
    return bisect.bisect_left(cumulative, random.random() * total)


def scatter(k):
    """Spreads ranks so that popular keys are not adjacent integers."""
    return (k * 2654435761) % (1 << 32)


def write(out_dir, name, keys):
    # mtime 0: no timestamp in the gzip header, so the bytes repeat too.
    with open(os.path.join(out_dir, f"{name}.trace.gz"), "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
            f.write("".join(f"{k}\n" for k in keys).encode())


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    random.seed(7)
    z90 = zipf_cdf(100_000, 0.9)
    write(out_dir, "shift", [scatter(draw(z90) + (i // 50_000) * 5_000) for i in range(REQUESTS)])
    keys, fresh = [], 10**7
    for i in range(REQUESTS):
        if i % 40_000 < 5_000 and (i // 40_000) % 2 == 1:
            keys.append(fresh)
            fresh += 1
        else:
            keys.append(scatter(draw(z90)))
    write(out_dir, "zipfscan", keys)
    keys, a, b = [], 0, 0
    for _ in range(REQUESTS):
        r = random.random()
        if r < 0.4:
            keys.append(1_000_000 + a)
            a = (a + 1) % 3_000
        elif r < 0.8:
            keys.append(2_000_000 + b)
            b = (b + 1) % 12_000
        else:
            keys.append(scatter(draw(z90)))
    write(out_dir, "loops", keys)
    stack, keys, new = [], [], 0
    for _ in range(REQUESTS):
        if stack and random.random() < 0.85:
            depth = min(int(random.expovariate(1 / 800)), len(stack) - 1)
            k = stack.pop(-1 - depth)
        else:
            k, new = new, new + 1
        stack.append(k)
        keys.append(k)
        if len(stack) > 50_000:
            stack.pop(0)
    write(out_dir, "stackdist", keys)
    z80 = zipf_cdf(20_000, 0.8)
    keys = []
    for i in range(REQUESTS):
        phase = i // 50_000
        if random.random() < 0.3:
            keys.append(scatter(draw(z80)))
        else:
            keys.append(scatter(draw(z80) + (phase + 1) * 100_000))
    write(out_dir, "phases", keys)


if __name__ == "__main__":
    main()
