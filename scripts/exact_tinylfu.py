"""Reference model: TinyLFU admission with *exact* counters (4-bit
saturating, halved every 10 x capacity increments) in front of one LRU, for
a weight-1 `lirs` trace. Shows how much of W-TinyLFU's gap comes from
count-min sketch noise.

Usage: python3 scripts/exact_tinylfu.py TRACE.gz CAPACITY
"""
import gzip,sys
from collections import OrderedDict, defaultdict
keys=[l.strip() for l in gzip.open(sys.argv[1],'rt') if l.strip() and l.strip()!='*']
cap=int(sys.argv[2]); variant=''
cnt=defaultdict(int); size=0; sample=10*cap
lru=OrderedDict(); hits=0
def inc(k):
    global size,cnt
    if cnt[k]<15: cnt[k]+=1
    size+=1
    if size>=sample:
        cnt=defaultdict(int,{k:v//2 for k,v in cnt.items() if v//2}); size//=2
for k in keys:
    inc(k)
    if k in lru:
        hits+=1; lru.move_to_end(k); continue
    if len(lru)<cap: lru[k]=1; continue
    victim=next(iter(lru))
    if cnt[k]>cnt[victim] or (variant=='ge' and cnt[k]>=cnt[victim]):
        del lru[victim]; lru[k]=1
print(cap, variant, round(100*hits/len(keys),2))
