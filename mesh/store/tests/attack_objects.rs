//! Attacks on world objects in the store (`pwn_store::objects`): pages over large cells,
//! checkpoints that move objects between cells or out of the world, damaged records, and ids
//! that collide.

use pwn_store::keys::CellKey;
use pwn_store::objects::{
    Bounds, EditDone, EditError, ObjectRecord, StoreEdit, edit_key, edit_once, get, object_at_range, object_key,
    objects_in, owned_count, save_motion,
};
use pwn_store::{MemoryBackend, Store};
use std::sync::Arc;

const BOUNDS: Bounds = Bounds { origin_m: [-100.0, -100.0], size_m: [200.0, 200.0] };

fn store() -> Store {
    Store::new(Arc::new(MemoryBackend::new()))
}

fn record(x: f32, z: f32) -> ObjectRecord {
    ObjectRecord {
        kind: 3,
        state: 0,
        owner: 0,
        position_m: [x, 1.0, z],
        rotation: [0.0, 0.0, 0.0, 1.0],
        linvel_mps: [0.0; 3],
        angvel_rps: [0.0; 3],
        version: 0,
    }
}

fn id_of(serial: u64) -> Option<u64> {
    Some(1_000 + serial)
}

fn place_as(store: &Store, player: u64, request: u64, x: f32, z: f32, id: impl Fn(u64) -> Option<u64>) -> u64 {
    let edit = StoreEdit::Place { record: record(x, z), per_player_max: 100_000 };
    match store.transact(|t| edit_once(t, player, request, &edit, &BOUNDS, &id)).unwrap() {
        EditDone::Applied { id, .. } => id,
        other => panic!("{other:?}"),
    }
}

fn all_in(store: &Store, cell: CellKey) -> Vec<u64> {
    let mut out = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let from = after.clone();
        let (page, next) = store.transact(|t| objects_in(t, cell, from.as_deref())).unwrap();
        out.extend(page.into_iter().map(|(id, _)| id));
        match next {
            Some(k) => after = Some(k),
            None => return out,
        }
    }
}

#[test]
fn pages_of_a_crowded_cell_cover_every_object_exactly_once() {
    let s = store();
    let mut placed = Vec::new();
    // 2,500 objects packed into one finest cell and its neighbours.
    for i in 0..2_500u64 {
        placed.push(place_as(&s, 7, i + 1, 10.0 + (i % 50) as f32 * 0.001, 10.0 + (i / 50) as f32 * 0.001, id_of));
    }
    let mut got = all_in(&s, CellKey::ROOT);
    got.sort();
    assert_eq!(got, placed);
    assert_eq!(s.transact(|t| owned_count(t, 7)).unwrap(), 2_500);
}

#[test]
fn obj_4_a_checkpoint_moving_an_object_to_another_cell_moves_its_index() {
    let s = store();
    let id = place_as(&s, 7, 1, -90.0, -90.0, id_of);
    let far = ([90.0, 0.5, 90.0], [0.0, 0.0, 0.0, 1.0], [0.0; 3], [0.0; 3]);
    assert!(s.transact(|t| save_motion(t, id, 1, far, &BOUNDS)).unwrap());
    let west_south = CellKey::containing(1, -90.0, -90.0, BOUNDS.origin_m, BOUNDS.size_m);
    let east_north = CellKey::containing(1, 90.0, 90.0, BOUNDS.origin_m, BOUNDS.size_m);
    assert_eq!(all_in(&s, west_south), Vec::<u64>::new());
    assert_eq!(all_in(&s, east_north), vec![id]);
    // Exactly one index entry overall.
    let (b, e) = object_at_range(CellKey::ROOT);
    assert_eq!(s.transact(|t| t.get_range(&b, &e, Default::default())).unwrap().len(), 1);
}

/// A checkpoint is written by a zone for its own simulation; a pose no world can hold
/// (non-finite, or outside the world the index is computed over) must not become the stored
/// truth, since the object could then never be loaded again.
#[test]
fn obj_4_a_checkpoint_never_stores_a_pose_no_zone_can_load() {
    let s = store();
    let id = place_as(&s, 7, 1, 0.0, 0.0, id_of);
    let before = s.transact(|t| get(t, id)).unwrap().unwrap();
    for bad in [[f32::NAN, 0.5, 0.0], [0.0, f32::INFINITY, 0.0], [250.0, 0.5, 0.0], [0.0, 0.5, -1e9]] {
        let m = (bad, [0.0, 0.0, 0.0, 1.0], [0.0; 3], [0.0; 3]);
        let wrote = s.transact(|t| save_motion(t, id, 1, m, &BOUNDS));
        let now = s.transact(|t| get(t, id)).unwrap().unwrap();
        assert_eq!(now.position_m, before.position_m, "a checkpoint at {bad:?} was stored ({wrote:?})");
    }
}

#[test]
fn damaged_records_are_errors_not_panics() {
    let s = store();
    let id = place_as(&s, 7, 1, 0.0, 0.0, id_of);
    // A damaged object record, a damaged last-edit record, a damaged count.
    s.transact(|t| {
        t.set(&object_key(id), b"\xff\x00garbage")?;
        t.set(&edit_key(8), b"\x01")?;
        t.set(&pwn_store::objects::count_key(9), b"123")
    })
    .unwrap();
    assert!(s.transact(|t| get(t, id)).is_err());
    assert!(s.transact(|t| objects_in(t, CellKey::ROOT, None)).is_err());
    let remove = StoreEdit::Remove { id, expect_version: 1, owner_only: false };
    assert!(matches!(s.transact(|t| edit_once(t, 7, 2, &remove, &BOUNDS, id_of)), Err(EditError::Store(_))));
    let edit = StoreEdit::Place { record: record(5.0, 5.0), per_player_max: 10 };
    assert!(matches!(s.transact(|t| edit_once(t, 8, 1, &edit, &BOUNDS, id_of)), Err(EditError::Store(_))));
    assert!(matches!(s.transact(|t| edit_once(t, 9, 1, &edit, &BOUNDS, id_of)), Err(EditError::Store(_))));
    // A cursor that is not a key of the range.
    let _ = s.transact(|t| objects_in(t, CellKey::ROOT, Some(b"\xff\xff\xff")));
    let _ = s.transact(|t| objects_in(t, CellKey::ROOT, Some(b"")));
}

/// `[obj-3]` "record, index and the owner's count always agree": a placement whose new id is
/// already taken (a serial counter restored from a backup, or object serials wrapping at
/// `OBJECT_SERIAL_LIMIT`, which the zone's id function does with `%`) must not silently
/// replace another player's object.
#[test]
fn obj_3_a_placement_never_overwrites_an_existing_object() {
    let s = store();
    let same = |_serial: u64| Some(4_242);
    let first = place_as(&s, 7, 1, -50.0, -50.0, same);
    let edit = StoreEdit::Place { record: record(50.0, 50.0), per_player_max: 10 };
    let second = s.transact(|t| edit_once(t, 8, 1, &edit, &BOUNDS, same));
    let kept = s.transact(|t| get(t, first)).unwrap().unwrap();
    assert_eq!((kept.owner, kept.position_m[0]), (7, -50.0), "player 7's object was replaced: {second:?}");
    let (b, e) = object_at_range(CellKey::ROOT);
    let entries = s.transact(|t| t.get_range(&b, &e, Default::default())).unwrap().len();
    assert_eq!(entries, 1, "two index entries for one record");
}
