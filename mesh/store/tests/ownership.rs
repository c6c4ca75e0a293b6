//! Ownership of entities (`pwn_store::ownership`) on the memory and SQLite backends: only the
//! owning cell at its lease epoch writes, a handoff is fenced by both leases and happens once
//! even when retried or raced, and the owned index always agrees with the owner records.

use pwn_store::fence::grant_lease;
use pwn_store::keys::{CellKey, owned_range, player_key};
use pwn_store::ownership::{Handoff, OwnershipError, Side, check_owner, claim, hand_off, owner, release};
use pwn_store::{MemoryBackend, SqliteBackend, Store, StoreError};
use std::sync::Arc;

const A: CellKey = CellKey { level: 1, path: 0 };
const B: CellKey = CellKey { level: 1, path: 1 };
const C: CellKey = CellKey { level: 1, path: 2 };

fn stores() -> Vec<(Store, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::new(Arc::new(SqliteBackend::open(dir.path().join("pwn.sqlite")).unwrap()));
    vec![(Store::new(Arc::new(MemoryBackend::new())), None), (sqlite, Some(dir))]
}

fn lease(store: &Store, cell: CellKey, node: u64) -> Side {
    Side { cell, epoch: store.transact(|t| grant_lease(t, cell, node)).unwrap().epoch }
}

fn owned(store: &Store, cell: CellKey) -> Vec<u64> {
    let (b, e) = owned_range(cell);
    store
        .transact(|t| t.get_range(&b, &e, pwn_store::RangeOptions::default()))
        .unwrap()
        .into_iter()
        .map(|(k, _)| foundationdb_tuple::unpack::<(String, String, u32, u64, u64)>(&k).unwrap().4)
        .collect()
}

/// `[own-2]`, `[own-5]`.
#[test]
fn only_the_owning_cell_at_its_epoch_writes() {
    for (store, _dir) in stores() {
        let a = lease(&store, A, 1);
        let b = lease(&store, B, 2);
        store.transact(|t| claim(t, 42, a.cell, a.epoch)).unwrap();
        // Claiming again is fine for the owner, refused for anyone else.
        store.transact(|t| claim(t, 42, a.cell, a.epoch)).unwrap();
        let other = store.transact(|t| claim(t, 42, b.cell, b.epoch));
        assert!(matches!(other, Err(OwnershipError::NotOwner { owner: Some(A), .. })), "{other:?}");
        store.transact(|t| check_owner(t, 42, a.cell, a.epoch)).unwrap();
        assert!(matches!(
            store.transact(|t| check_owner(t, 42, b.cell, b.epoch)),
            Err(OwnershipError::NotOwner { .. })
        ));
        // A's lease moves on: the old epoch can no longer write what it owns.
        let a2 = lease(&store, A, 3);
        let stale = store.transact(|t| check_owner(t, 42, a.cell, a.epoch));
        assert!(matches!(stale, Err(OwnershipError::Store(StoreError::Fenced { .. }))), "{stale:?}");
        store.transact(|t| check_owner(t, 42, a2.cell, a2.epoch)).unwrap();
        store.transact(|t| release(t, 42, a2.cell, a2.epoch)).unwrap();
        assert_eq!(store.transact(|t| owner(t, 42)).unwrap(), None);
        assert!(owned(&store, A).is_empty());
    }
}

/// `[own-3]`, `[own-4]`.
#[test]
fn a_handoff_moves_ownership_and_state_once() {
    for (store, _dir) in stores() {
        let (a, b, c) = (lease(&store, A, 1), lease(&store, B, 2), lease(&store, C, 3));
        store.transact(|t| claim(t, 7, a.cell, a.epoch)).unwrap();
        let key = player_key(7);
        let done = store.transact(|t| hand_off(t, 7, 100, a, b, (&key, b"state at 100"))).unwrap();
        assert_eq!(done, Handoff::Moved);
        assert_eq!(store.transact(|t| owner(t, 7)).unwrap(), Some(B));
        assert_eq!(store.transact(|t| t.get(&key)).unwrap().as_deref(), Some(&b"state at 100"[..]));
        assert_eq!((owned(&store, A), owned(&store, B)), (vec![], vec![7]));
        // The same handoff retried (its commit result was unknown) is found done.
        let again = store.transact(|t| hand_off(t, 7, 100, a, b, (&key, b"state at 100"))).unwrap();
        assert_eq!(again, Handoff::AlreadyDone);
        // A second handoff by the old owner is refused, whatever its target.
        let dup = store.transact(|t| hand_off(t, 7, 101, a, c, (&key, b"bad")));
        assert!(matches!(dup, Err(OwnershipError::NotOwner { owner: Some(B), .. })), "{dup:?}");
        // A handoff to a cell whose lease moved since the giver learned its epoch is fenced.
        let c2 = lease(&store, C, 4);
        let fenced = store.transact(|t| hand_off(t, 7, 102, b, c, (&key, b"bad")));
        assert!(matches!(fenced, Err(OwnershipError::Store(StoreError::Fenced { .. }))), "{fenced:?}");
        assert_eq!(store.transact(|t| owner(t, 7)).unwrap(), Some(B));
        store.transact(|t| hand_off(t, 7, 103, b, c2, (&key, b"state at 103"))).unwrap();
        assert_eq!((owned(&store, B), owned(&store, C)), (vec![], vec![7]));
        assert_eq!(store.transact(|t| t.get(&key)).unwrap().as_deref(), Some(&b"state at 103"[..]));
    }
}

/// `[own-3]`: two zones racing to hand one entity to different neighbours (a stale owner and
/// the real one, both believing they own it): exactly one wins, and the entity ends with one
/// owner and one index entry.
#[test]
fn racing_handoffs_of_one_entity_leave_one_owner() {
    for (store, _dir) in stores() {
        let (a, b, c) = (lease(&store, A, 1), lease(&store, B, 2), lease(&store, C, 3));
        for entity in 1..=20u64 {
            store.transact(|t| claim(t, entity, a.cell, a.epoch)).unwrap();
        }
        let wins: Vec<usize> = std::thread::scope(|s| {
            let racers: Vec<_> = [b, c]
                .into_iter()
                .map(|to| {
                    let store = store.clone();
                    s.spawn(move || {
                        (1..=20u64)
                            .filter(|e| {
                                let key = player_key(*e);
                                store.transact(|t| hand_off(t, *e, 5, a, to, (&key, b"s"))).is_ok()
                            })
                            .count()
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        assert_eq!(wins.iter().sum::<usize>(), 20, "each entity handed off exactly once: {wins:?}");
        let (in_b, in_c) = (owned(&store, B), owned(&store, C));
        assert_eq!(in_b.len() + in_c.len(), 20);
        for e in 1..=20u64 {
            let o = store.transact(|t| owner(t, e)).unwrap().unwrap();
            assert_eq!(in_b.contains(&e), o == B);
            assert_eq!(in_c.contains(&e), o == C);
        }
        assert!(owned(&store, A).is_empty());
    }
}
