"""Reference model: TinyLFU admission in front of one LRU (moka's shape), with
helios's count-min sketch (one 64-bit word of 4-bit counters per entry, in
8-word blocks picked by multiply-shift, halved every SAMPLE x the entries
the aging is sized for), for a weight-1 `lirs` trace. Next to
`exact_tinylfu.py` (exact counters) it separates what the sketch's noise
and its aging period cost. BENCHMARKS.md ("Early looks") uses it on the
drift traces of `drift_traces.py`.

Usage: python3 scripts/sketch_tinylfu.py TRACE.gz CAPACITY [SAMPLE] [pow2]
  SAMPLE: increments between halvings per entry (default 10, Caffeine's)
  pow2:   size the aging for the capacity's next power of two, as helios
          sizes it (default: the capacity itself, as Caffeine and moka do)
Keys are hashed with a random seed, so runs differ by a few tenths.

Variants (environment), for comparing with moka 0.12 (BENCHMARKS.md, "Session
15 runs"):
  SKETCH=moka   moka's sketch instead: a power-of-two table of capacity words,
                four counters at independent positions over the whole table
  SKETCH=spread helios's table size with moka's independent positions
  RESET=moka    moka's halving bookkeeping, size = size/2 - odd/4 (Caffeine
                and helios: (size - odd/4) / 2), which ages more slowly
  LATE=1        judge a candidate by its count before this miss is added
  HALF=1        count nothing until the cache is half full, as moka 0.12
                does (it enables its sketch then: `should_enable_frequency_
                sketch` in sync/base_cache.rs); BENCHMARKS.md, "moka's
                half-full sketch"
Prints capacity, SAMPLE, aging size, hit ratio, then admitted and rejected.
"""
import gzip
import os
import random
import sys
from collections import OrderedDict

M = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF
MOKA_SEEDS = [0xC3A5C85C97CB3127, 0xB492B66FBE98F273, 0x9AE16A3B2F90404F, 0xCBF29CE484222325]


def spread(x):
    x ^= x >> 17
    x = (x * 0xED5AD4BB) & M
    x ^= x >> 11
    x = (x * 0xAC4C1B51) & M
    x ^= x >> 15
    return x


def rehash(x):
    x = (x * 0x31848BAB) & M
    x ^= x >> 14
    return x


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    keys = [l.strip() for l in gzip.open(sys.argv[1], "rt") if l.strip() and l.strip() != "*"]
    cap = int(sys.argv[2])
    factor = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
    tracked = 1 << (cap - 1).bit_length() if "pow2" in sys.argv[4:] else cap
    words = (max(512, cap) + 7) // 8 * 8
    blocks = words // 8
    table = [0] * words
    sample = int(factor * tracked)
    size = 0
    seed = random.getrandbits(64)

    sketch = os.environ.get("SKETCH", "helios")
    moka_reset = os.environ.get("RESET") == "moka"
    late = os.environ.get("LATE") == "1"
    half = os.environ.get("HALF") == "1"
    if sketch == "moka":
        table = [0] * (1 << (cap - 1).bit_length())

    def counters(h):
        if sketch in ("moka", "spread"):
            h64 = (h * 0x9E3779B97F4A7C15) & M64
            start = (h64 & 3) << 2
            for i, s in enumerate(MOKA_SEEDS):
                x = ((h64 + s) * s) & M64
                x = (x + (x >> 32)) & M64
                yield x % len(table), (start + i) << 2
            return
        bh = spread(h)
        ch = rehash(bh)
        start = ((bh * blocks) >> 32) * 8
        for i in range(4):
            hh = ch >> (i << 3)
            yield start + (hh & 1) + (i << 1), ((hh >> 1) & 15) << 2

    def frequency(h):
        return min((table[w] >> s) & 15 for w, s in counters(h))

    def increment(h):
        nonlocal size
        added = False
        for w, s in counters(h):
            if (table[w] >> s) & 15 != 15:
                table[w] += 1 << s
                added = True
        if added:
            size += 1
            if size >= sample:
                odd = sum(bin(x & 0x1111111111111111).count("1") for x in table)
                table[:] = [(x >> 1) & 0x7777777777777777 for x in table]
                size = (size >> 1) - (odd >> 2) if moka_reset else (size - (odd >> 2)) >> 1

    lru, hits, admitted, rejected = OrderedDict(), 0, 0, 0
    for k in keys:
        h = hash((k, seed)) & M
        counting = not (half and len(lru) < cap // 2)
        if counting and not late:
            increment(h)
        if k in lru:
            hits += 1
            lru.move_to_end(k)
        elif len(lru) < cap:
            lru[k] = h
        else:
            victim = next(iter(lru))
            if frequency(h) > frequency(lru[victim]):
                del lru[victim]
                lru[k] = h
                admitted += 1
            else:
                rejected += 1
        if counting and late:
            increment(h)
    print(cap, factor, "pow2" if tracked != cap else "exact", round(100 * hits / len(keys), 2),
          admitted, rejected)


if __name__ == "__main__":
    main()
