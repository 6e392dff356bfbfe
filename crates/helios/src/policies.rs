//! The policies a trace is replayed through, each behind one function.
//!
//! `helios`, `moka` and `quick_cache` are the real concurrent caches with
//! their default options for the capacity; `opt` (Bélády) and `lru` are
//! reference models written here.

use std::collections::{BinaryHeap, HashMap};

use crate::trace::Trace;

/// Hits and misses of one replay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) hits: u64,
    pub(crate) misses: u64,
}

impl Counts {
    pub(crate) fn hit_ratio(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            100.0 * self.hits as f64 / total as f64
        }
    }
}

/// A replayable policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Policy {
    Helios,
    /// helios with `exact_hit_recording`: no hit record is ever dropped.
    HeliosExact,
    /// helios with its hot tier turned off.
    HeliosNoHot,
    /// helios's `AgentCache`, every access through one agent.
    HeliosOneAgent,
    /// helios's `AgentCache`, accesses dealt round-robin to 16 agents that
    /// share the keys (shared namespace, first-touch charging, fair shares).
    HeliosSixteenAgents,
    Opt,
    Lru,
    Moka,
    QuickCache,
}

impl Policy {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Helios => "helios",
            Self::HeliosExact => "helios_exact",
            Self::HeliosNoHot => "helios_nohot",
            Self::HeliosOneAgent => "helios_1agent",
            Self::HeliosSixteenAgents => "helios_16agents",
            Self::Opt => "opt",
            Self::Lru => "lru",
            Self::Moka => "moka",
            Self::QuickCache => "quick_cache",
        }
    }

    /// Replays `trace` through this policy at capacity `size`; helios's
    /// rows hash with `seed` if one is given (see [`replay_hasher`]).
    pub(crate) fn replay(
        self,
        trace: &Trace,
        size: u64,
        seed: Option<u64>,
    ) -> Result<Counts, String> {
        let hasher = replay_hasher(seed);
        match self {
            Self::Helios => helios(trace, size, hasher, |b| b),
            Self::HeliosExact => helios(trace, size, hasher, |b| b.exact_hit_recording(true)),
            Self::HeliosNoHot => helios(trace, size, hasher, |b| b.hot_tier_entries(0)),
            Self::HeliosOneAgent => helios_agents(trace, size, hasher, 1),
            Self::HeliosSixteenAgents => helios_agents(trace, size, hasher, 16),
            Self::Opt => Ok(opt(trace, size)),
            Self::Lru => Ok(lru(trace, size)),
            Self::Moka => Ok(moka(trace, size)),
            Self::QuickCache => Ok(quick_cache(trace, size)),
        }
    }
}

fn weight_at(trace: &Trace, i: usize) -> u32 {
    trace.weights.as_ref().map_or(1, |w| w[i])
}

/// Read, and insert on a miss, through a cache with `get`/`insert` closures.
fn read_through(
    trace: &Trace,
    mut get: impl FnMut(u64) -> bool,
    mut insert: impl FnMut(u64, u32),
) -> Counts {
    let mut counts = Counts::default();
    for (i, &key) in trace.keys.iter().enumerate() {
        if get(key) {
            counts.hits += 1;
        } else {
            counts.misses += 1;
            insert(key, weight_at(trace, i));
        }
    }
    counts
}

/// helios's hasher in a replay: foldhash, seeded at random per cache (as
/// `helios_l1::DefaultHashBuilder` is), or with a fixed seed (`--seed`), so
/// that a replay repeats (to within the hot tier's timed refreshes) and two
/// helios rows of one run see the same hashes (then they differ only by
/// what their options change), except that an agent store clears bit 31
/// of its hashes (its namespaces' class bit, `helios_l1::AgentHashBuilder`).
type ReplayHasher = foldhash::fast::SeedableRandomState;

fn replay_hasher(seed: Option<u64>) -> ReplayHasher {
    seed.map_or_else(ReplayHasher::random, |seed| {
        ReplayHasher::with_seed(seed, foldhash::SharedSeed::global_fixed())
    })
}

/// Builder of the cache `helios` replays through.
type HeliosBuilder = helios_l1::CacheBuilder<u64, u32, helios_l1::UnitWeigher, ReplayHasher>;

/// The replayed entry's value is its weight; this weigher reads it back.
/// For an unweighted trace every weight is 1 and it says so, so the cache
/// gets the defaults a unit-weight cache gets (its shard count differs).
#[derive(Clone, Copy)]
struct TraceWeigher {
    unit: bool,
}

impl TraceWeigher {
    fn of(trace: &Trace) -> Self {
        Self {
            unit: trace.weights.is_none(),
        }
    }
}

impl helios_l1::Weigher<u64, u32> for TraceWeigher {
    fn weigh(&self, _: &u64, weight: &u32) -> u64 {
        u64::from(*weight)
    }

    fn is_unit(&self) -> bool {
        self.unit
    }
}

/// helios with default options except what `configure` changes.
fn helios(
    trace: &Trace,
    size: u64,
    hasher: ReplayHasher,
    configure: impl FnOnce(HeliosBuilder) -> HeliosBuilder,
) -> Result<Counts, String> {
    let cache = configure(helios_l1::Cache::builder().capacity(size).hasher(hasher))
        .weigher(TraceWeigher::of(trace))
        .build()
        .map_err(|e| e.to_string())?;
    Ok(read_through(
        trace,
        |k| cache.get(&k).is_some(),
        |k, w| {
            // An object heavier than a shard is refused: counted as a miss,
            // exactly like an object too big for the cache.
            let _ = cache.insert(k, w);
        },
    ))
}

/// helios's `AgentCache` with `agents` agents taking turns, access by access.
fn helios_agents(
    trace: &Trace,
    size: u64,
    hasher: ReplayHasher,
    agents: usize,
) -> Result<Counts, String> {
    let cache =
        helios_l1::AgentCache::with_weigher_and_hasher(size, TraceWeigher::of(trace), hasher)
            .map_err(|e| e.to_string())?;
    let handles = (0..agents)
        .map(|i| {
            cache
                .register_agent(&format!("agent-{i}"), helios_l1::AgentConfig::new())
                .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut turn = 0;
    let mut next = || {
        turn = (turn + 1) % agents;
        turn
    };
    let mut counts = Counts::default();
    for (i, &key) in trace.keys.iter().enumerate() {
        let agent = &handles[next()];
        if agent.get(&key).map_err(|e| e.to_string())?.is_some() {
            counts.hits += 1;
        } else {
            counts.misses += 1;
            // Too heavy or over the agent's share: counted as a miss, like
            // any object the cache does not keep.
            let _ = agent
                .insert(key, weight_at(trace, i))
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(counts)
}

fn moka(trace: &Trace, size: u64) -> Counts {
    // A weigher only for weighted traces, as a user would configure moka:
    // with one, moka sizes its frequency sketch from the entries resident
    // when the cache first gets half full (about a quarter of a unit-weight
    // capacity), which ages its counts four times as fast as moka sizes
    // them without one (BENCHMARKS.md, "Early looks").
    let builder = moka::sync::Cache::builder().max_capacity(size);
    let cache: moka::sync::Cache<u64, u32> = if trace.weights.is_some() {
        builder.weigher(|_, w: &u32| *w).build()
    } else {
        builder.build()
    };
    read_through(
        trace,
        |k| cache.get(&k).is_some(),
        |k, w| {
            cache.insert(k, w);
            // Without this moka applies writes lazily and overshoots its
            // capacity, which would flatter its hit ratio.
            cache.run_pending_tasks();
        },
    )
}

#[derive(Clone)]
struct ValueWeight;

impl quick_cache::Weighter<u64, u32> for ValueWeight {
    fn weight(&self, _key: &u64, value: &u32) -> u64 {
        u64::from(*value)
    }
}

fn quick_cache(trace: &Trace, size: u64) -> Counts {
    let cache = if trace.weights.is_some() {
        // quick_cache sizes its tables from an item estimate; use the
        // capacity over the mean object size.
        let total: u64 = trace.weights.iter().flatten().map(|&w| u64::from(w)).sum();
        let mean = (total / trace.keys.len() as u64).max(1);
        quick_cache::sync::Cache::with_weighter((size / mean).max(1) as usize, size, ValueWeight)
    } else {
        quick_cache::sync::Cache::with_weighter(size as usize, size, ValueWeight)
    };
    read_through(
        trace,
        |k| cache.get(&k).is_some(),
        |k, w| cache.insert(k, w),
    )
}

/// Least recently used, weighted: an index-linked list over a hash map.
fn lru(trace: &Trace, size: u64) -> Counts {
    const NIL: usize = usize::MAX;
    struct Node {
        key: u64,
        weight: u64,
        prev: usize,
        next: usize,
    }
    let mut nodes: Vec<Node> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut index: HashMap<u64, usize> = HashMap::new();
    let (mut head, mut tail, mut weight) = (NIL, NIL, 0u64); // head = MRU
    let mut counts = Counts::default();

    fn unlink(nodes: &mut [Node], head: &mut usize, tail: &mut usize, i: usize) {
        let (p, n) = (nodes[i].prev, nodes[i].next);
        if p == NIL {
            *head = n
        } else {
            nodes[p].next = n
        }
        if n == NIL {
            *tail = p
        } else {
            nodes[n].prev = p
        }
    }
    fn push_front(nodes: &mut [Node], head: &mut usize, tail: &mut usize, i: usize) {
        nodes[i].prev = NIL;
        nodes[i].next = *head;
        if *head == NIL {
            *tail = i
        } else {
            nodes[*head].prev = i
        }
        *head = i;
    }

    for (t, &key) in trace.keys.iter().enumerate() {
        if let Some(&i) = index.get(&key) {
            counts.hits += 1;
            unlink(&mut nodes, &mut head, &mut tail, i);
            push_front(&mut nodes, &mut head, &mut tail, i);
            continue;
        }
        counts.misses += 1;
        let w = u64::from(weight_at(trace, t));
        if w > size {
            continue;
        }
        while weight + w > size {
            let victim = tail;
            unlink(&mut nodes, &mut head, &mut tail, victim);
            weight -= nodes[victim].weight;
            index.remove(&nodes[victim].key);
            free.push(victim);
        }
        let node = Node {
            key,
            weight: w,
            prev: NIL,
            next: NIL,
        };
        let i = match free.pop() {
            Some(i) => {
                nodes[i] = node;
                i
            }
            None => {
                nodes.push(node);
                nodes.len() - 1
            }
        };
        push_front(&mut nodes, &mut head, &mut tail, i);
        index.insert(key, i);
        weight += w;
    }
    counts
}

/// Bélády's optimal offline policy: on a miss with a full cache, evict the
/// resident object (or bypass the arriving one) whose next use is farthest
/// in the future. Exact for unit weights. For weighted traces it frees the
/// residents used later than the arriving object, farthest first, and only
/// if that makes room for it; a good heuristic but not optimal (size-aware
/// optimal caching is NP-hard).
fn opt(trace: &Trace, size: u64) -> Counts {
    let n = trace.keys.len();
    // next_use[i]: the next access to keys[i] after i, or n (never).
    let mut next_use = vec![n; n];
    let mut last: HashMap<u64, usize> = HashMap::with_capacity(n / 4);
    for i in (0..n).rev() {
        if let Some(&j) = last.get(&trace.keys[i]) {
            next_use[i] = j;
        }
        last.insert(trace.keys[i], i);
    }
    drop(last);

    // resident: key -> (next use, weight); heap: (next use, key), lazily
    // pruned of entries whose next use changed.
    let mut resident: HashMap<u64, (usize, u64)> = HashMap::new();
    let mut heap: BinaryHeap<(usize, u64)> = BinaryHeap::new();
    let mut weight = 0u64;
    let mut counts = Counts::default();
    for (i, &key) in trace.keys.iter().enumerate() {
        let nu = next_use[i];
        if let Some(entry) = resident.get_mut(&key) {
            counts.hits += 1;
            entry.0 = nu;
            heap.push((nu, key));
            continue;
        }
        counts.misses += 1;
        let w = u64::from(weight_at(trace, i));
        if w > size || nu == n {
            continue; // never used again, or cannot fit: caching it cannot help
        }
        // The residents used later than the arriving object, farthest
        // first, until it fits. They are evicted only if it then fits:
        // evicting some and admitting nothing would leave their space
        // empty, worse than keeping them.
        let mut candidates: Vec<(usize, u64)> = Vec::new();
        let mut freed = 0u64;
        while weight - freed + w > size {
            let Some(&(far, victim)) = heap.peek() else {
                break;
            };
            if resident.get(&victim).map(|e| e.0) != Some(far) {
                heap.pop(); // stale
                continue;
            }
            if far <= nu {
                break; // the arriving object is the farthest
            }
            heap.pop();
            freed += resident.get(&victim).map_or(0, |e| e.1);
            candidates.push((far, victim));
        }
        if weight - freed + w <= size {
            for (_, victim) in &candidates {
                if let Some((_, vw)) = resident.remove(victim) {
                    weight -= vw;
                }
            }
            resident.insert(key, (nu, w));
            heap.push((nu, key));
            weight += w;
        } else {
            // Not admitted: the candidates stay, and so do their heap entries.
            heap.extend(candidates);
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(keys: &[u64]) -> Trace {
        Trace {
            name: "t".into(),
            keys: keys.to_vec(),
            weights: None,
        }
    }

    #[test]
    fn opt_matches_a_hand_computed_example() {
        // Size 2: a b c a b -> a, b miss; c miss evicts b? next uses: a@3, b@4,
        // c never -> c bypassed; a, b hit.
        let t = trace(&[1, 2, 3, 1, 2]);
        assert_eq!(opt(&t, 2), Counts { hits: 2, misses: 3 });
        // LRU on the same trace evicts 1 then 2: no hits.
        assert_eq!(lru(&t, 2), Counts { hits: 0, misses: 5 });
    }

    #[test]
    fn opt_bounds_every_policy_on_a_loop() {
        let keys: Vec<u64> = (0..20).flat_map(|_| 0..50u64).collect();
        let t = trace(&keys);
        let best = opt(&t, 25);
        for p in [
            Policy::Helios,
            Policy::Lru,
            Policy::Moka,
            Policy::QuickCache,
        ] {
            let c = p.replay(&t, 25, None).unwrap();
            assert_eq!(c.hits + c.misses, keys.len() as u64);
            assert!(c.hits <= best.hits, "{} beat opt", p.name());
        }
        assert_eq!(
            lru(&t, 25).hits,
            0,
            "LRU thrashes on a loop longer than the cache"
        );
    }

    #[test]
    fn weighted_lru_respects_capacity() {
        let t = Trace {
            name: "w".into(),
            keys: vec![1, 2, 1, 3, 1],
            weights: Some(vec![6, 5, 6, 20, 6]),
        };
        // 1 and 2 do not fit together in 10, so they evict each other; 3
        // never fits and leaves 1 resident for the last access.
        assert_eq!(lru(&t, 10), Counts { hits: 1, misses: 4 });
    }

    #[test]
    fn weighted_opt_evicts_only_when_the_arriving_object_then_fits() {
        // Size 10: A(5) B(5) C(8) B C A. At C, A is used last (5) and B
        // sooner than C (3 < 4): freeing A alone does not make room, so C is
        // not admitted and A and B both stay, for hits on B and A (2). The
        // old loop evicted A and then refused C: 1 hit.
        let t = Trace {
            name: "w".into(),
            keys: vec![1, 2, 3, 2, 3, 1],
            weights: Some(vec![5, 5, 8, 5, 8, 5]),
        };
        assert_eq!(opt(&t, 10), Counts { hits: 2, misses: 4 });
    }
}
