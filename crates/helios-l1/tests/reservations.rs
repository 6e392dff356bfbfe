//! Fair eviction: reservations pin an agent's entries against other
//! agents' inserts, suspended agents' entries go first, reservations return
//! to the pool, and adopted shared objects are protected.

use std::collections::HashSet;
use std::sync::Arc;

use helios_l1::{AgentCache, AgentConfig, AgentHandle, AgentSort, Scoped};
use proptest::prelude::*;

type Bytes = Vec<u8>;

type ByLength = fn(&u64, &Bytes) -> u64;

fn weighted_cache(capacity: u64) -> Arc<AgentCache<u64, Bytes, ByLength>> {
    fn weigh(_: &u64, v: &Bytes) -> u64 {
        v.len() as u64
    }
    AgentCache::with_weigher(capacity, weigh as ByLength).unwrap()
}

type Agent = AgentHandle<u64, u64>;

/// A cache of 10,000 in which `loader` (no reservation) stored the shared
/// objects 0..1,000, beside `reader` with a reservation of `reserved` and a
/// `scanner` of priority 8.
fn shared_objects_loaded(reserved: u64) -> (Arc<AgentCache<u64, u64>>, Agent, Agent, Agent) {
    let cache: Arc<AgentCache<u64, u64>> = AgentCache::new(10_000).unwrap();
    let loader = cache.register_agent("loader", AgentConfig::new()).unwrap();
    let reader = cache
        .register_agent("reader", AgentConfig::new().reserved(reserved))
        .unwrap();
    let scanner = cache
        .register_agent("scanner", AgentConfig::new().priority(8))
        .unwrap();
    for k in 0..1_000 {
        loader.insert(k, k).unwrap().unwrap();
    }
    (cache, loader, reader, scanner)
}

/// The resident weight charged to the live agent named `name` (0 if none).
fn resident<K, V, W>(cache: &AgentCache<K, V, W>, name: &str) -> u64
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    W: helios_l1::Weigher<K, V>,
{
    cache
        .agents(AgentSort::Name)
        .into_iter()
        .find(|s| &*s.name == name)
        .map_or(0, |s| s.resident)
}

/// How many of the shared `keys` are resident (without counting a read).
fn resident_keys<V, W>(cache: &AgentCache<u64, V, W>, keys: impl IntoIterator<Item = u64>) -> usize
where
    V: Clone + Send + Sync + 'static,
    W: helios_l1::Weigher<u64, V>,
{
    keys.into_iter()
        .filter(|k| cache.cache().contains_key(k))
        .count()
}

/// `scanner` streams 100,000 fresh keys (ten times the caches used here),
/// reading each `reads` times after inserting it, so plain TinyLFU would
/// rate them above entries read less often.
fn scan(scanner: &AgentHandle<u64, u64>, reads: usize) {
    for k in 1_000_000..1_100_000u64 {
        let _ = scanner.insert(k, k).unwrap();
        for _ in 0..reads {
            scanner.get(&k).unwrap();
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// The reserved agent stores a shared key of its own.
    ReservedInsert { key: u64, weight: u8 },
    /// Another agent stores a shared key (its key space is disjoint).
    OtherInsert { agent: usize, key: u64, weight: u8 },
    /// Another agent reads one of its keys (changes frequencies).
    OtherRead { agent: usize, key: u64 },
    /// The reserved agent removes one of its keys.
    ReservedRemove { key: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..400u64, 1..20u8).prop_map(|(key, weight)| Op::ReservedInsert { key, weight }),
        6 => (0..3usize, 0..5_000u64, 1..40u8)
            .prop_map(|(agent, key, weight)| Op::OtherInsert { agent, key, weight }),
        2 => (0..3usize, 0..5_000u64).prop_map(|(agent, key)| Op::OtherRead { agent, key }),
        1 => (0..400u64).prop_map(|key| Op::ReservedRemove { key }),
    ]
}

/// The reserved agent's keys live at 1_000_000 + k, the others' at
/// (agent + 1) * 10_000_000 + k, so their keys never collide.
const RESERVED_BASE: u64 = 1_000_000;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever the others do, while the reserved agent's resident weight
    /// is within its reservation none of its entries leaves except by its
    /// own hand; charges add up, caps hold, the capacity holds.
    #[test]
    fn a_reserved_agent_within_its_reservation_never_loses_entries_to_others(
        ops in proptest::collection::vec(op(), 1..600),
        capacity in prop_oneof![Just(1_000u64), Just(20_000u64)],
    ) {
        let cache = weighted_cache(capacity);
        let reserved = capacity / 4;
        let r = cache
            .register_agent("reserved", AgentConfig::new().reserved(reserved))
            .unwrap();
        let cap = capacity / 3;
        let others: Vec<_> = (0..3)
            .map(|i| {
                let config = if i == 0 { AgentConfig::new().cap(cap) } else { AgentConfig::new() };
                cache.register_agent(&format!("other{i}"), config).unwrap()
            })
            .collect();
        let mut r_keys: HashSet<u64> = HashSet::new();
        for op in ops {
            match op {
                Op::ReservedInsert { key, weight } => {
                    let key = RESERVED_BASE + key;
                    let _ = r.insert(key, vec![0; usize::from(weight)]).unwrap();
                }
                Op::ReservedRemove { key } => {
                    r.remove(&(RESERVED_BASE + key)).unwrap();
                }
                Op::OtherRead { agent, key } => {
                    let key = (agent as u64 + 1) * 10_000_000 + key;
                    others[agent].get(&key).unwrap();
                }
                Op::OtherInsert { agent, key, weight } => {
                    let key = (agent as u64 + 1) * 10_000_000 + key;
                    let within = resident(&cache, "reserved") <= reserved;
                    let before: Vec<u64> = r_keys
                        .iter()
                        .copied()
                        .filter(|k| cache.cache().contains_key(k))
                        .collect();
                    let _ = others[agent].insert(key, vec![0; usize::from(weight)]).unwrap();
                    if within {
                        for k in &before {
                            prop_assert!(
                                cache.cache().contains_key(k),
                                "other{agent}'s insert evicted key {k} of an agent within its reservation"
                            );
                        }
                    }
                }
            }
            if let Op::ReservedInsert { key, .. } = op {
                r_keys.insert(RESERVED_BASE + key);
            }
            prop_assert!(cache.cache().weight() <= capacity);
            prop_assert_eq!(cache.charged_weight(), cache.cache().weight());
            prop_assert!(resident(&cache, "other0") <= cap);
        }
        cache.cache().validate().map_err(TestCaseError::fail)?;
    }
}

/// A worker stores 2,000 entries (reserving `reserved`), then a
/// higher-priority agent scans 100,000 keys ten times the cache, reading
/// each twice so that plain TinyLFU would admit it; returns how many of the
/// worker's entries are still resident.
fn worker_entries_left_after_a_scan(reserved: u64) -> usize {
    let cache: Arc<AgentCache<u64, u64>> = AgentCache::new(10_000).unwrap();
    let worker = cache
        .register_agent("worker", AgentConfig::new().reserved(reserved))
        .unwrap();
    let scanner = cache
        .register_agent("scanner", AgentConfig::new().priority(8))
        .unwrap();
    for k in 0..2_000 {
        worker.insert(k, k).unwrap().unwrap();
    }
    scan(&scanner, 2);
    cache.cache().validate().unwrap();
    resident_keys(&cache, 0..2_000)
}

/// An agent that stored a working set within its reservation keeps all of
/// it through a scan by another agent, even when the scanner's entries are
/// read more often.
#[test]
fn a_scan_by_another_agent_cannot_flush_a_reserved_working_set() {
    assert_eq!(worker_entries_left_after_a_scan(2_000), 2_000);
}

/// Without a reservation the same scan does flush the working set: the
/// test above is not passing by accident of the policy.
#[test]
fn without_a_reservation_the_scan_flushes_the_working_set() {
    let kept = worker_entries_left_after_a_scan(0);
    assert!(kept < 1_000, "kept {kept} of 2000 without a reservation");
}

/// A reservation that its agent does not use is lent out, and taken back
/// when the agent starts inserting: its inserts evict the borrowers'
/// entries and are never refused while it is within its reservation.
#[test]
fn unused_reservations_are_lent_and_reclaimed_on_demand() {
    let cache: Arc<AgentCache<u64, u64>> = AgentCache::new(10_000).unwrap();
    let owner = cache
        .register_agent("owner", AgentConfig::new().reserved(5_000))
        .unwrap();
    let borrower = cache
        .register_agent("borrower", AgentConfig::new())
        .unwrap();
    // Fair shares: owner 5,000 + 2,500; borrower 2,500, so it may hold up
    // to 5,000 while the cache is full, and everything while it is not.
    for k in 0..10_000 {
        let _ = borrower.insert(k, k).unwrap();
    }
    assert!(
        cache.cache().weight() >= 9_000,
        "the borrower filled the space"
    );
    for k in 100_000..105_000 {
        owner
            .insert(k, k)
            .unwrap()
            .expect("an insert within the reservation is never refused");
    }
    let stats = cache.agents(AgentSort::Name);
    let owner_stats = stats.iter().find(|s| &*s.name == "owner").unwrap();
    // Its own later inserts may evict its earlier ones (the policy chooses
    // among them), but most of the 5,000 are resident.
    assert!(owner_stats.resident >= 4_000, "{owner_stats:?}");
    assert!(owner_stats.resident <= 5_000);
    cache.cache().validate().unwrap();
}

/// Suspension lends the reservation and puts the agent's entries first in
/// the eviction order: another agent's inserts then evict them before
/// anything else, however often they were read.
#[test]
fn a_suspended_agents_entries_are_evicted_first() {
    let cache: Arc<AgentCache<u64, u64>> = AgentCache::new(10_000).unwrap();
    let sleeper = cache
        .register_agent("sleeper", AgentConfig::new().reserved(3_000))
        .unwrap();
    let worker = cache.register_agent("worker", AgentConfig::new()).unwrap();
    for k in 0..3_000 {
        sleeper.insert(k, k).unwrap().unwrap();
    }
    for _ in 0..4 {
        for k in 0..3_000 {
            sleeper.get(&k).unwrap();
        }
    }
    for k in 10_000..17_000 {
        worker.insert(k, k).unwrap().unwrap();
    }
    assert_eq!(sleeper.fair_share().unwrap(), 3_000 + 3_500);
    assert!(sleeper.suspend().unwrap());
    assert_eq!(sleeper.fair_share().unwrap(), 0);
    assert_eq!(
        worker.fair_share().unwrap(),
        10_000,
        "the reservation is lent"
    );
    // The capacity is split between shards and keys are not spread
    // exactly evenly (with some hash seeds a shard keeps a few hundred
    // free slots), so insert until the new entries have caused 1,000
    // evictions, and count those.
    let (sleeper_before, worker_before) = (
        resident_keys(&cache, 0..3_000),
        resident_keys(&cache, 10_000..17_000),
    );
    let len_before = cache.cache().len();
    let evictions = |inserted: usize| len_before + inserted - cache.cache().len();
    let mut inserted = 0;
    while evictions(inserted) < 1_000 && inserted < 3_000 {
        let k = 20_000 + inserted as u64;
        worker.insert(k, k).unwrap().unwrap();
        inserted += 1;
    }
    let evicted = evictions(inserted);
    let sleeper_lost = sleeper_before - resident_keys(&cache, 0..3_000);
    let worker_lost = worker_before - resident_keys(&cache, 10_000..17_000);
    assert!(
        evicted >= 1_000,
        "only {evicted} evictions after {inserted} inserts: the cache was not full"
    );
    assert!(
        sleeper_lost + 50 >= evicted,
        "of {evicted} evictions only {sleeper_lost} were the sleeper's"
    );
    assert!(worker_lost <= 50, "worker lost {worker_lost}");
    cache.cache().validate().unwrap();
}

/// Terminating an agent returns its reservation and priority to the pool.
#[test]
fn termination_returns_the_reservation_to_the_pool() {
    let cache: Arc<AgentCache<u64, u64>> = AgentCache::new(10_000).unwrap();
    let a = cache
        .register_agent("a", AgentConfig::new().reserved(4_000))
        .unwrap();
    let b = cache.register_agent("b", AgentConfig::new()).unwrap();
    assert_eq!(b.fair_share().unwrap(), 3_000);
    a.terminate().unwrap();
    assert_eq!(b.fair_share().unwrap(), 10_000);
    // A new agent splits the pool with b once b is used (an agent never
    // used, without a reservation, claims no part of it).
    let c = cache.register_agent("c", AgentConfig::new()).unwrap();
    assert_eq!(c.fair_share().unwrap(), 10_000);
    b.insert(1, 1).unwrap().unwrap();
    cache.register_agent("d", AgentConfig::new()).unwrap(); // a recount
    assert_eq!(c.fair_share().unwrap(), 5_000);
}

/// A shared object stored by an agent without a reservation is protected
/// once a reserved agent adopts it; the charge moves with it.
#[test]
fn an_adopted_shared_object_is_protected_by_the_adopters_reservation() {
    let (cache, _loader, reader, scanner) = shared_objects_loaded(1_000);
    for k in 0..500 {
        assert!(reader.adopt(&k).unwrap());
    }
    assert!(reader.adopt(&0).unwrap(), "adopting twice is a no-op");
    assert!(!reader.adopt(&5_000_000).unwrap(), "nothing to adopt");
    let stats = cache.agents(AgentSort::Name);
    let by_name = |n: &str| stats.iter().find(|s| &*s.name == n).unwrap().clone();
    assert_eq!(by_name("reader").resident, 500);
    assert_eq!(by_name("reader").resident_shared, 500);
    assert_eq!(by_name("reader").resident_private(), 0);
    assert_eq!(by_name("loader").resident, 500);
    assert_eq!(cache.charged_weight(), cache.cache().weight());
    // Read more often than adoption counted the objects as used.
    scan(&scanner, 8);
    assert_eq!(resident_keys(&cache, 0..500), 500);
    assert_eq!(reader.get(&7).unwrap(), Some(7), "the value is unchanged");
}

/// Resident weight is split into shared and private parts.
#[test]
fn resident_weight_is_split_into_shared_and_private() {
    let cache = weighted_cache(10_000);
    let a = cache.register_agent("a", AgentConfig::new()).unwrap();
    a.insert(1, vec![0; 30]).unwrap().unwrap();
    a.insert_private(2, vec![0; 12]).unwrap().unwrap();
    let s = &cache.agents(AgentSort::Name)[0];
    assert_eq!(
        (s.resident, s.resident_shared, s.resident_private()),
        (42, 30, 12)
    );
    a.remove(&1).unwrap();
    let s = &cache.agents(AgentSort::Name)[0];
    assert_eq!(
        (s.resident, s.resident_shared, s.resident_private()),
        (12, 0, 12)
    );
}

/// Four agents scan concurrently while the reserved agent reads its working
/// set: every read of it hits, and all of it is resident at the end.
#[test]
fn reservations_hold_under_concurrent_scans() {
    let cache: Arc<AgentCache<u64, u64>> = AgentCache::new(20_000).unwrap();
    let worker = cache
        .register_agent("worker", AgentConfig::new().reserved(3_000))
        .unwrap();
    for k in 0..3_000 {
        worker.insert(k, k * 7).unwrap().unwrap();
    }
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let cache = Arc::clone(&cache);
            s.spawn(move || {
                let scanner = cache
                    .register_agent(&format!("scanner{t}"), AgentConfig::new().priority(4))
                    .unwrap();
                for k in 0..50_000u64 {
                    let key = 1_000_000 * (t + 1) + k;
                    let _ = scanner.insert(key, key).unwrap();
                    scanner.get(&key).unwrap();
                    scanner.get(&key).unwrap();
                }
            });
        }
        s.spawn(|| {
            for round in 0..20 {
                for k in 0..3_000u64 {
                    assert_eq!(
                        worker.get(&k).unwrap(),
                        Some(k * 7),
                        "round {round}: reserved key {k} missing"
                    );
                }
            }
        });
    });
    let kept = resident_keys(&cache, 0..3_000);
    assert_eq!(kept, 3_000);
    assert_eq!(cache.charged_weight(), cache.cache().weight());
    cache.cache().validate().unwrap();
}

/// Reservations cannot promise more than the capacity: registration refuses
/// the one that would, and a terminated agent's reservation is free again.
#[test]
fn reservations_cannot_overcommit_the_capacity() {
    use helios_l1::AgentError;
    let cache: Arc<AgentCache<u64, u64>> = AgentCache::new(1_000).unwrap();
    let a = cache
        .register_agent("a", AgentConfig::new().reserved(600))
        .unwrap();
    let b = cache
        .register_agent("b", AgentConfig::new().reserved(400))
        .unwrap();
    b.suspend().unwrap(); // a suspended agent keeps its reservation committed
    let err = cache
        .register_agent("c", AgentConfig::new().reserved(1))
        .unwrap_err();
    assert!(
        matches!(&err, AgentError::InvalidConfig(why) if why.contains("capacity of 1000")),
        "{err}"
    );
    assert!(
        cache.register_agent("d", AgentConfig::new()).is_ok(),
        "no reservation: fine"
    );
    a.terminate().unwrap();
    assert!(cache
        .register_agent("c", AgentConfig::new().reserved(600))
        .is_ok());
}

/// A shared key names the agent charged for it, but identity ignores that:
/// any agent's lookup finds the entry, and an entry stored through the
/// underlying cache directly is charged to nobody (orphaned), not to an
/// agent, and never panics.
#[test]
fn shared_keys_are_one_key_whoever_is_charged() {
    use std::collections::hash_map::DefaultHasher;
    use std::hash::{Hash, Hasher};
    let cache: Arc<AgentCache<u64, u64>> = AgentCache::new(1_000).unwrap();
    let a = cache.register_agent("a", AgentConfig::new()).unwrap();
    let b = cache.register_agent("b", AgentConfig::new()).unwrap();
    a.insert(1, 10).unwrap().unwrap();
    assert_eq!(b.get(&1).unwrap(), Some(10));
    b.insert(1, 11).unwrap().unwrap(); // replaces a's entry; now b's
    assert_eq!(cache.cache().len(), 1);
    assert_eq!((resident(&cache, "a"), resident(&cache, "b")), (0, 1));

    let hash = |k: &Scoped<u64>| {
        let mut h = DefaultHasher::new();
        k.hash(&mut h);
        h.finish()
    };
    assert_eq!(Scoped::shared(1u64), Scoped::shared(1u64));
    assert_eq!(hash(&Scoped::shared(1)), hash(&Scoped::shared(1)));
    assert_ne!(Scoped::shared(1u64), Scoped::shared(2u64));

    cache.cache().insert(2, 20).unwrap();
    assert_eq!(a.get(&2).unwrap(), Some(20));
    assert_eq!(cache.charged_weight(), cache.cache().weight());
    assert_eq!(
        resident(&cache, "a") + resident(&cache, "b"),
        1,
        "nobody is charged for key 2"
    );
    cache.cache().remove(&2);
    assert_eq!(cache.charged_weight(), cache.cache().weight());

    // The underlying cache sees shared entries only: an agent's private key
    // is not found through it, nor replaced or removed by its writes.
    a.insert_private(3, 30).unwrap().unwrap();
    assert!(!cache.cache().contains_key(&3));
    assert_eq!(cache.cache().get(&3), None);
    assert_eq!(cache.cache().remove(&3), None);
    cache.cache().insert(3, 33).unwrap();
    assert_eq!(a.get_private(&3).unwrap(), Some(30));
    assert_eq!(a.get(&3).unwrap(), Some(33));
    assert_eq!(cache.charged_weight(), cache.cache().weight());
    // Nor does its visitor of every entry see (or demote) private ones.
    let seen = std::sync::Mutex::new(Vec::new());
    cache.cache().demote_where(|k, v| {
        seen.lock().unwrap().push((*k, *v));
        false
    });
    let mut seen = seen.into_inner().unwrap();
    seen.sort_unstable();
    assert_eq!(seen, [(1, 11), (3, 33)]);
}

/// An agent with a reservation that reads shared objects nobody protects
/// takes them over while it has room: they survive a scan, and readers
/// without a reservation move nothing.
#[test]
fn reading_a_shared_object_protects_it_for_a_reserved_reader() {
    let (cache, _loader, reader, scanner) = shared_objects_loaded(300);
    let plain = cache.register_agent("plain", AgentConfig::new()).unwrap();
    for k in 0..1_000 {
        assert_eq!(plain.get(&k).unwrap(), Some(k));
    }
    assert_eq!(
        resident(&cache, "loader"),
        1_000,
        "a plain reader moves nothing"
    );
    for k in 0..500 {
        assert_eq!(reader.get(&k).unwrap(), Some(k));
    }
    // Only as much as fits its reservation.
    assert_eq!(resident(&cache, "reader"), 300);
    assert_eq!(resident(&cache, "loader"), 700);
    assert_eq!(cache.charged_weight(), cache.cache().weight());
    scan(&scanner, 8);
    let kept = resident_keys(&cache, 0..300);
    assert_eq!(
        kept, 300,
        "the objects the reader took over survive the scan"
    );
}
