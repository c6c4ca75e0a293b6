//! Items of value (`pwn_store::items`) on the memory and SQLite backends: moves change the one
//! owner and the index together, refusals change nothing, and concurrent moves of one item
//! never let it exist twice.

use pwn_store::items::{INVENTORY_ITEMS_MAX, ItemError, create, get, inventory, move_item};
use pwn_store::keys::ItemRecord;
use pwn_store::{MemoryBackend, SqliteBackend, Store};
use std::collections::BTreeMap;
use std::sync::Arc;

fn stores() -> Vec<(Store, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::new(Arc::new(SqliteBackend::open(dir.path().join("pwn.sqlite")).unwrap()));
    vec![(Store::new(Arc::new(MemoryBackend::new())), None), (sqlite, Some(dir))]
}

fn ids(store: &Store, owner: u64) -> Vec<u64> {
    store.transact(|t| inventory(t, owner)).unwrap().into_iter().map(|(id, _)| id).collect()
}

#[test]
fn moving_changes_the_one_owner_and_refusals_change_nothing() {
    for (store, _dir) in stores() {
        let (a, b) = (7, 8);
        let sword = store.transact(|t| create(t, a, 3)).unwrap();
        let shield = store.transact(|t| create(t, a, 4)).unwrap();
        assert_ne!(sword, shield);
        assert_eq!(ids(&store, a), vec![sword, shield]);
        let moved = store.transact(|t| move_item(t, sword, a, b)).unwrap();
        assert_eq!(moved, ItemRecord { owner: b, kind: 3 });
        assert_eq!(ids(&store, a), vec![shield]);
        assert_eq!(ids(&store, b), vec![sword]);
        // `a` no longer owns it: a second move from `a` is refused and changes nothing.
        let again = store.transact(|t| move_item(t, sword, a, 9));
        assert!(matches!(again, Err(ItemError::NotOwner { item }) if item == sword), "{again:?}");
        assert!(matches!(store.transact(|t| move_item(t, 999_999, a, b)), Err(ItemError::Missing(999_999))));
        assert_eq!(store.transact(|t| get(t, sword)).unwrap(), Some(ItemRecord { owner: b, kind: 3 }));
        assert!(ids(&store, 9).is_empty());
    }
}

#[test]
fn a_full_inventory_takes_nothing() {
    for (store, _dir) in stores() {
        let (rich, giver) = (1, 2);
        for _ in 0..INVENTORY_ITEMS_MAX {
            store.transact(|t| create(t, rich, 1)).unwrap();
        }
        assert!(matches!(store.transact(|t| create(t, rich, 1)), Err(ItemError::Full)));
        let gift = store.transact(|t| create(t, giver, 2)).unwrap();
        assert!(matches!(store.transact(|t| move_item(t, gift, giver, rich)), Err(ItemError::Full)));
        assert_eq!(ids(&store, giver), vec![gift]);
        assert_eq!(ids(&store, rich).len(), INVENTORY_ITEMS_MAX);
    }
}

/// Four threads race to take the same items from one owner: each item is taken exactly once
/// and ends in exactly one inventory.
#[test]
fn concurrent_moves_of_one_item_commit_once() {
    for (store, _dir) in stores() {
        let origin = 100;
        let items: Vec<u64> = (0..16).map(|k| store.transact(|t| create(t, origin, k)).unwrap()).collect();
        let taken: Vec<Vec<u64>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4u64)
                .map(|thief| {
                    let (store, items) = (&store, &items);
                    s.spawn(move || {
                        items
                            .iter()
                            .filter(|&&item| store.transact(|t| move_item(t, item, origin, 200 + thief)).is_ok())
                            .copied()
                            .collect::<Vec<u64>>()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut all: Vec<u64> = taken.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, items, "every item taken exactly once");
        assert!(ids(&store, origin).is_empty());
        for (thief, took) in taken.iter().enumerate() {
            assert_eq!(&ids(&store, 200 + thief as u64), took);
        }
    }
}

/// A seeded random sequence of moves against a model: the store always agrees with it.
#[test]
fn random_moves_agree_with_a_model() {
    let seed: u64 = std::env::var("PWN_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_1743);
    eprintln!("seed {seed} (PWN_SEED to replay)");
    for (store, _dir) in stores() {
        let mut rng = seed;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut model: BTreeMap<u64, u64> = BTreeMap::new();
        for k in 0..20 {
            let owner = next() % 4;
            model.insert(store.transact(|t| create(t, owner, k)).unwrap(), owner);
        }
        for step in 0..200 {
            let item = *model.keys().nth((next() % model.len() as u64) as usize).unwrap();
            let (from, to) = (next() % 4, next() % 4);
            let result = store.transact(|t| move_item(t, item, from, to));
            match model[&item] == from {
                true => assert!(result.is_ok(), "seed {seed} step {step}: {result:?}"),
                false => assert!(matches!(result, Err(ItemError::NotOwner { .. })), "seed {seed} step {step}"),
            }
            if result.is_ok() {
                model.insert(item, to);
            }
        }
        for owner in 0..4 {
            let expected: Vec<u64> = model.iter().filter(|(_, o)| **o == owner).map(|(i, _)| *i).collect();
            assert_eq!(ids(&store, owner), expected, "seed {seed}");
        }
    }
}

/// An item record this build cannot read is left out of its owner's inventory, and the rest
/// is still listed.
#[test]
fn an_unreadable_record_does_not_hide_the_rest() {
    for (store, _dir) in stores() {
        let good = store.transact(|t| create(t, 5, 1)).unwrap();
        store
            .transact(|t| {
                t.set(&pwn_store::keys::item_key(999), b"\xffnot a tuple")?;
                t.set(&pwn_store::keys::inventory_key(5, 999), b"")
            })
            .unwrap();
        assert_eq!(ids(&store, 5), vec![good]);
        assert!(store.transact(|t| move_item(t, 999, 5, 6)).is_err(), "an unreadable item does not move");
    }
}

/// A backend whose next commit succeeds and then reports a retryable error, as FoundationDB's
/// `commit_unknown_result` does when the commit in fact went through.
struct UnknownCommit {
    inner: Arc<MemoryBackend>,
    lie_once: Arc<std::sync::atomic::AtomicBool>,
}

struct UnknownTxn {
    inner: Box<dyn pwn_store::Transaction>,
    lie_once: Arc<std::sync::atomic::AtomicBool>,
}

impl pwn_store::Transaction for UnknownTxn {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, pwn_store::StoreError> {
        self.inner.get(key)
    }
    fn get_range(
        &mut self,
        b: &[u8],
        e: &[u8],
        o: pwn_store::RangeOptions,
    ) -> Result<Vec<pwn_store::KeyValue>, pwn_store::StoreError> {
        self.inner.get_range(b, e, o)
    }
    fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), pwn_store::StoreError> {
        self.inner.set(key, value)
    }
    fn clear(&mut self, key: &[u8]) -> Result<(), pwn_store::StoreError> {
        self.inner.clear(key)
    }
    fn clear_range(&mut self, b: &[u8], e: &[u8]) -> Result<(), pwn_store::StoreError> {
        self.inner.clear_range(b, e)
    }
    fn atomic_add(&mut self, key: &[u8], delta: i64) -> Result<(), pwn_store::StoreError> {
        self.inner.atomic_add(key, delta)
    }
    fn commit(self: Box<Self>) -> Result<(), pwn_store::StoreError> {
        self.inner.commit()?;
        match self.lie_once.swap(false, std::sync::atomic::Ordering::SeqCst) {
            true => Err(pwn_store::StoreError::Conflict),
            false => Ok(()),
        }
    }
}

impl pwn_store::Backend for UnknownCommit {
    fn name(&self) -> &'static str {
        "unknown-commit"
    }
    fn begin(&self) -> Result<Box<dyn pwn_store::Transaction>, pwn_store::StoreError> {
        Ok(Box::new(UnknownTxn { inner: self.inner.begin()?, lie_once: self.lie_once.clone() }))
    }
}

/// `[item-5]`: a move whose commit went through but was reported as a retryable failure runs
/// again and finds itself done: a loot takes one item, not two, and a gift is not reported as
/// refused.
#[test]
fn item_5_a_move_retried_after_an_unknown_commit_moves_once() {
    use pwn_store::items::move_once;
    let lie_once = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let store =
        Store::new(Arc::new(UnknownCommit { inner: Arc::new(MemoryBackend::new()), lie_once: lie_once.clone() }));
    let (victim, killer) = (1, 2);
    for kind in [10, 11, 12] {
        store.transact(|t| create(t, victim, kind)).unwrap();
    }
    // A loot whose commit is reported unknown: the retry returns the same item.
    lie_once.store(true, std::sync::atomic::Ordering::SeqCst);
    let looted = store.transact(|t| move_once(t, 77, None, victim, killer)).unwrap().unwrap();
    assert!(!lie_once.load(std::sync::atomic::Ordering::SeqCst), "the commit was retried");
    assert_eq!(ids(&store, killer), vec![looted.0], "one item taken, not two");
    assert_eq!(ids(&store, victim).len(), 2);
    // A gift the same way: reported as done, not as "not yours".
    let gift = ids(&store, victim)[0];
    lie_once.store(true, std::sync::atomic::Ordering::SeqCst);
    let given = store.transact(|t| move_once(t, 78, Some(gift), victim, killer)).unwrap().unwrap();
    assert_eq!((given.0, given.1.owner), (gift, killer));
    assert_eq!(ids(&store, victim).len(), 1);
    // A new operation moves again.
    let next = store.transact(|t| move_once(t, 79, None, victim, killer)).unwrap().unwrap();
    assert_ne!(next.0, looted.0);
    assert!(ids(&store, victim).is_empty());
    assert_eq!(ids(&store, killer).len(), 3);
}
