//! Model-based tests: random operation sequences against a `HashMap`.

use std::collections::HashMap;

use helios_l1::Cache;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Insert(u8, u16),
    Get(u8),
    Remove(u8),
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<u8>(), any::<u16>()).prop_map(|(k, v)| Op::Insert(k % 64, v)),
        6 => any::<u8>().prop_map(|k| Op::Get(k % 64)),
        2 => any::<u8>().prop_map(|k| Op::Remove(k % 64)),
        1 => Just(Op::Clear),
    ]
}

/// Weight of an entry: 1..=8, derived from the value so it changes on update.
fn weigh(_: &u8, v: &u16) -> u64 {
    u64::from(*v % 8) + 1
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// With room for every key, the cache must behave exactly like a map.
    #[test]
    fn without_eviction_it_is_a_map(ops in prop::collection::vec(op(), 1..300), shards in 0u32..3) {
        let cache = Cache::builder()
            .capacity(64 * 8)
            .shards(1 << shards)
            .weigher(weigh)
            .build()
            .unwrap();
        let mut model: HashMap<u8, u16> = HashMap::new();
        for op in ops {
            match op {
                Op::Insert(k, v) => {
                    prop_assert!(cache.insert(k, v).is_ok());
                    model.insert(k, v);
                }
                Op::Get(k) => prop_assert_eq!(cache.get(&k), model.get(&k).copied()),
                Op::Remove(k) => prop_assert_eq!(cache.remove(&k), model.remove(&k)),
                Op::Clear => {
                    cache.clear();
                    model.clear();
                }
            }
            prop_assert_eq!(cache.len(), model.len());
            let weight: u64 = model.iter().map(|(k, v)| weigh(k, v)).sum();
            prop_assert_eq!(cache.weight(), weight);
        }
        cache.validate().map_err(TestCaseError::fail)?;
    }

    /// Under eviction: never a stale or foreign value, removed keys stay
    /// gone, the weight is exactly the sum of resident weights and never
    /// above the capacity.
    #[test]
    fn under_eviction_it_never_lies(
        ops in prop::collection::vec(op(), 1..400),
        capacity in 8u64..40,
        shards in 0u32..2,
    ) {
        let cache = Cache::builder()
            .capacity(capacity)
            .shards(1 << shards)
            .weigher(weigh)
            .build()
            .unwrap();
        let max = cache.max_entry_weight();
        let mut model: HashMap<u8, u16> = HashMap::new();
        for op in ops {
            match op {
                Op::Insert(k, v) => {
                    match cache.insert(k, v) {
                        Ok(()) => { model.insert(k, v); }
                        Err(refused) => {
                            prop_assert!(weigh(&k, &v) > max);
                            prop_assert_eq!((refused.key, refused.value), (k, v));
                            model.remove(&k);
                        }
                    }
                }
                Op::Get(k) => {
                    if let Some(v) = cache.get(&k) {
                        prop_assert_eq!(Some(v), model.get(&k).copied(), "stale or foreign value");
                    }
                }
                Op::Remove(k) => {
                    let removed = cache.remove(&k);
                    if removed.is_some() {
                        prop_assert_eq!(removed, model.get(&k).copied());
                    }
                    model.remove(&k);
                    prop_assert_eq!(cache.get(&k), None);
                }
                Op::Clear => {
                    cache.clear();
                    model.clear();
                    prop_assert_eq!(cache.len(), 0);
                }
            }
            prop_assert!(cache.weight() <= capacity);
        }
        // Exact accounting: the resident entries' weights add up.
        let mut resident = 0;
        let mut count = 0;
        for k in 0..64u8 {
            if let Some(v) = cache.get(&k) {
                prop_assert_eq!(Some(v), model.get(&k).copied());
                resident += weigh(&k, &v);
                count += 1;
            }
        }
        prop_assert_eq!(cache.weight(), resident);
        prop_assert_eq!(cache.len(), count);
        cache.validate().map_err(TestCaseError::fail)?;
    }
}
