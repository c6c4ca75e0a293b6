//! Checkpoints of the zone's crates: a new zone loads exactly what the last checkpoint wrote;
//! a zone that lost its lease cannot write; bad records are skipped, counted.

use pwn_sim::{EntityId, Sim, SimConfig, WorldDesc};
use pwn_store::keys::{CellKey, entity_at_key, entity_key};
use pwn_store::{MemoryBackend, Store, StoreError};
use pwn_zone_node::persist::{SimBounds, acquire_lease, checkpoint, crate_states, load_crates};
use std::collections::BTreeMap;
use std::sync::Arc;

fn arena() -> Sim {
    Sim::new(WorldDesc::arena(), SimConfig::default(), 1).unwrap()
}

fn settle(sim: &mut Sim, ticks: u32) {
    for _ in 0..ticks {
        sim.step(&BTreeMap::new());
    }
}

#[test]
fn a_new_zone_loads_the_last_checkpoint() {
    let store = Store::new(Arc::new(MemoryBackend::new()));
    let cell = CellKey::ROOT;
    let lease = acquire_lease(&store, cell, 1).unwrap();
    let mut sim = arena();
    // Move one crate somewhere the world description does not put it, then let it settle.
    let id = EntityId::world_entity(0);
    assert!(sim.restore_crate(
        id,
        glam::Vec3::new(3.0, 2.0, -3.0),
        glam::Quat::IDENTITY,
        glam::Vec3::ZERO,
        glam::Vec3::ZERO
    ));
    settle(&mut sim, 60);
    let saved = crate_states(&sim);
    checkpoint(&store, cell, lease.epoch, &saved, &[], &SimBounds::of(&sim)).unwrap();

    let mut fresh = arena();
    assert_ne!(crate_states(&fresh), saved, "the test needs state the description does not give");
    let report = load_crates(&store, cell, &mut fresh).unwrap();
    assert_eq!(report.restored as usize, saved.len());
    assert_eq!(report.skipped, 0);
    assert_eq!(crate_states(&fresh), saved);
}

#[test]
fn persist_1_a_zone_that_lost_its_lease_cannot_checkpoint() {
    let store = Store::new(Arc::new(MemoryBackend::new()));
    let cell = CellKey::ROOT;
    let old = acquire_lease(&store, cell, 1).unwrap();
    let sim = arena();
    checkpoint(&store, cell, old.epoch, &crate_states(&sim), &[], &SimBounds::of(&sim)).unwrap();
    let new = acquire_lease(&store, cell, 2).unwrap();
    assert!(new.epoch > old.epoch);
    let mut moved = crate_states(&sim);
    moved[0].position.x += 1.0;
    let err = checkpoint(&store, cell, old.epoch, &moved, &[], &SimBounds::of(&sim)).unwrap_err();
    assert!(matches!(err, StoreError::Fenced { .. }), "{err:?}");
    let mut fresh = arena();
    load_crates(&store, cell, &mut fresh).unwrap();
    assert_eq!(crate_states(&fresh), crate_states(&sim), "the fenced write leaked");
}

#[test]
fn persist_3_bad_records_are_skipped_not_fatal() {
    let store = Store::new(Arc::new(MemoryBackend::new()));
    let cell = CellKey::ROOT;
    let lease = acquire_lease(&store, cell, 1).unwrap();
    let sim = arena();
    checkpoint(&store, cell, lease.epoch, &crate_states(&sim), &[], &SimBounds::of(&sim)).unwrap();
    store
        .transact(|t| {
            // Garbage under a real crate's key, and an index entry for an entity that is no crate.
            t.set(&entity_key(EntityId::world_entity(1).0), b"\xff\x00garbage")?;
            t.set(&entity_at_key(0, 42), b"")?;
            t.set(
                &entity_key(42),
                &pwn_store::keys::EntityRecord { kind: 9, position_m: [0.0; 3], yaw_rad: 0.0, health: 1, data: vec![] }
                    .encode(),
            )
        })
        .unwrap();
    let mut fresh = arena();
    let report = load_crates(&store, cell, &mut fresh).unwrap();
    assert_eq!(report.skipped, 2);
    assert_eq!(report.restored as usize, crate_states(&sim).len() - 1);
}

#[test]
fn persist_4_players_are_saved_fenced_and_come_back() {
    use pwn_zone_node::persist::{PlayerState, load_player, save_players};
    let store = Store::new(Arc::new(MemoryBackend::new()));
    let cell = CellKey::ROOT;
    let lease = acquire_lease(&store, cell, 1).unwrap();
    let sim = arena();
    let p = PlayerState { id: EntityId(7), position: glam::Vec3::new(3.0, 0.92, -4.0), yaw_rad: 1.5, health: 60 };
    checkpoint(&store, cell, lease.epoch, &[], &[p], &SimBounds::of(&sim)).unwrap();
    assert_eq!(load_player(&store, EntityId(7)).unwrap(), Some(p));
    assert_eq!(load_player(&store, EntityId(8)).unwrap(), None);
    let c = p.character(&SimConfig::default()).unwrap();
    assert_eq!((c.position_m, c.yaw_rad, c.health), (p.position, 1.5, 60));
    assert!(PlayerState { health: 0, ..p }.character(&SimConfig::default()).is_none(), "the dead respawn");
    // A zone that lost its lease cannot save a leaving player.
    acquire_lease(&store, cell, 2).unwrap();
    let moved = PlayerState { position: glam::Vec3::ZERO, ..p };
    assert!(matches!(save_players(&store, cell, lease.epoch, &[moved]), Err(StoreError::Fenced { .. })));
    assert_eq!(load_player(&store, EntityId(7)).unwrap(), Some(p));
}

/// Item moves (`pwn_zone_node::items::run_op`) are fenced by the zone's lease: a zone that lost
/// its cell moves nothing; the holder of the new epoch moves, and loot takes the victim's first
/// item.
#[test]
fn item_moves_are_fenced_by_the_lease() {
    use pwn_zone_node::items::{ItemOp, ItemOutcome, run_op};
    use pwn_zone_node::server::Persistence;
    let store = Store::new(Arc::new(MemoryBackend::new()));
    let cell = CellKey::ROOT;
    let old = acquire_lease(&store, cell, 1).unwrap();
    let (a, b) = (EntityId(11), EntityId(12));
    let first = store.transact(|t| pwn_store::items::create(t, a.0, 1)).unwrap();
    let second = store.transact(|t| pwn_store::items::create(t, a.0, 2)).unwrap();
    let new = acquire_lease(&store, cell, 2).unwrap();
    let at = |epoch| Persistence { store: store.clone(), cell, epoch, interval_ticks: 30 };
    let owner = |item| store.transact(|t| pwn_store::items::get(t, item)).unwrap().unwrap().owner;

    let stale = run_op(&at(old.epoch), ItemOp::Give { item: first, from: a, to: b });
    assert!(matches!(stale, ItemOutcome::Refused { .. }), "{stale:?}");
    assert_eq!(owner(first), a.0, "a fenced zone moved nothing");

    let given = run_op(&at(new.epoch), ItemOp::Give { item: second, from: a, to: b });
    assert_eq!(given, ItemOutcome::Moved { op: ItemOp::Give { item: second, from: a, to: b }, item: second, kind: 2 });
    let looted = run_op(&at(new.epoch), ItemOp::Loot { victim: a, killer: b });
    assert!(matches!(looted, ItemOutcome::Moved { item, .. } if item == first), "{looted:?}");
    assert_eq!((owner(first), owner(second)), (b.0, b.0));
    let nothing = run_op(&at(new.epoch), ItemOp::Loot { victim: a, killer: b });
    assert!(matches!(nothing, ItemOutcome::Refused { .. }));
    let listed = run_op(&at(new.epoch), ItemOp::Load { player: b });
    assert!(matches!(listed, ItemOutcome::Inventory { items, .. } if items.len() == 2));
}

/// `[zitem-5]`, `[zitem-6]`: a gift between players of two zones is one transaction fenced by
/// both: each player's owner record must name the cell its zone holds it in, at that cell's
/// epoch. When the receiver's cell changes hands, or the receiver moves on to another cell,
/// the gift is refused and nothing moves.
#[test]
fn a_gift_across_a_border_is_fenced_by_both_zones() {
    use pwn_zone_node::items::{ItemOp, ItemOutcome, OwnersFence, run_fenced};
    use pwn_zone_node::server::Persistence;
    let store = Store::new(Arc::new(MemoryBackend::new()));
    let (west, east, north) =
        (CellKey { level: 1, path: 0 }, CellKey { level: 1, path: 1 }, CellKey { level: 1, path: 2 });
    let lw = acquire_lease(&store, west, 1).unwrap();
    let le = acquire_lease(&store, east, 2).unwrap();
    let ln = acquire_lease(&store, north, 3).unwrap();
    let (giver, receiver) = (EntityId(21), EntityId(22));
    pwn_zone_node::persist::claim_player(&store, giver, west, lw.epoch).unwrap();
    pwn_zone_node::persist::claim_player(&store, receiver, east, le.epoch).unwrap();
    let items: Vec<u64> =
        (0..3).map(|k| store.transact(|t| pwn_store::items::create(t, giver.0, k)).unwrap()).collect();
    let p = Persistence { store: store.clone(), cell: CellKey::ROOT, epoch: 0, interval_ticks: 30 };
    let owner = |item| store.transact(|t| pwn_store::items::get(t, item)).unwrap().unwrap().owner;
    let give = |item| ItemOp::Give { item, from: giver, to: receiver };

    let fence = OwnersFence { from: (west, lw.epoch), to: (east, le.epoch) };
    assert!(matches!(run_fenced(&p, give(items[0]), Some(fence)), ItemOutcome::Moved { .. }));
    assert_eq!(owner(items[0]), receiver.0);

    // The east cell changes hands: the giver's zone still names the old epoch.
    let le2 = acquire_lease(&store, east, 4).unwrap();
    assert!(matches!(run_fenced(&p, give(items[1]), Some(fence)), ItemOutcome::Refused { .. }));
    assert_eq!(owner(items[1]), giver.0, "a stale fence moved nothing");

    // The receiver was handed on to the north cell: the east cell no longer owns it.
    let key = pwn_store::keys::player_key(receiver.0);
    let (from, to) = (
        pwn_store::ownership::Side { cell: east, epoch: le2.epoch },
        pwn_store::ownership::Side { cell: north, epoch: ln.epoch },
    );
    store.transact(|t| pwn_store::ownership::hand_off(t, receiver.0, 9, from, to, (&key, b"r"))).unwrap();
    let fresh = OwnersFence { from: (west, lw.epoch), to: (east, le2.epoch) };
    assert!(matches!(run_fenced(&p, give(items[2]), Some(fresh)), ItemOutcome::Refused { .. }));
    assert_eq!(owner(items[2]), giver.0);
    let right = OwnersFence { from: (west, lw.epoch), to: (north, ln.epoch) };
    assert!(matches!(run_fenced(&p, give(items[2]), Some(right)), ItemOutcome::Moved { .. }));
    assert_eq!(owner(items[2]), receiver.0);
}
