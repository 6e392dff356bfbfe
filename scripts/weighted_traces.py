"""Writes three synthetic weighted traces in the `adapt_size` format (text
lines `tick key size`) for `helios replay --format adapt_size`: the shared
traces are all unit-weight, so these exercise the weighted policy paths
(BENCHMARKS.md, "Weighted traces"). Deterministic (fixed seeds).

Usage: python3 scripts/weighted_traces.py OUT_DIR
  w1: Zipf(0.9) over 20,000 objects, log-normal sizes (median ~3 KB),
      popularity drifting by 3,000 ranks every 100,000 requests.
  w2: Zipf(0.8) over 50,000 objects, sizes uniform in 100 B..100 KB, and
      a burst of one-off objects (sizes up to 200 KB) in 1/5 of every
      50,000 requests.
  w3: Zipf(1.0) over 30,000 objects whose size falls with rank: the most
      popular objects are the largest (200 KB down to ~100 B).
"""
import bisect
import itertools
import os
import random
import sys


def zipf_picker(n, alpha, rng):
    cum = list(itertools.accumulate(1 / (i + 1) ** alpha for i in range(n)))
    total = cum[-1]
    return lambda: bisect.bisect_left(cum, rng.random() * total)


def w1(path):
    rng = random.Random(7)
    n = 20000
    pick = zipf_picker(n, 0.9, rng)
    sizes = [max(1, int(rng.lognormvariate(8, 1.5))) for _ in range(n)]
    with open(path, "w") as f:
        for t in range(400000):
            k = (pick() + (t // 100000) * 3000) % n
            f.write(f"{t} {k} {sizes[k]}\n")


def w2(path):
    rng = random.Random(2)
    n = 50000
    pick = zipf_picker(n, 0.8, rng)
    sizes = [rng.randint(100, 100000) for _ in range(n)]
    perm = list(range(n))
    rng.shuffle(perm)
    one_off = n
    with open(path, "w") as f:
        for t in range(500000):
            if t % 50000 < 10000:
                one_off += 1
                f.write(f"{t} {one_off} {rng.randint(1, 200000)}\n")
            else:
                k = perm[pick()]
                f.write(f"{t} {k} {sizes[k]}\n")


def w3(path):
    rng = random.Random(3)
    n = 30000
    pick = zipf_picker(n, 1.0, rng)
    sizes = [int(200000 / (1 + i / 50)) + 100 for i in range(n)]
    perm = list(range(n))
    rng.shuffle(perm)
    with open(path, "w") as f:
        for t in range(400000):
            i = pick()
            f.write(f"{t} {perm[i]} {sizes[i]}\n")


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    os.makedirs(out, exist_ok=True)
    for name, gen in (("w1", w1), ("w2", w2), ("w3", w3)):
        gen(os.path.join(out, f"{name}.trace"))
        print(os.path.join(out, f"{name}.trace"))
