//! Attacks on `pwn_store::objects::move_across` (`[obj-5]`).

use pwn_store::keys::CellKey;
use pwn_store::objects::{Bounds, ObjectRecord, StoreEdit, edit_once, get, move_across, objects_in};
use pwn_store::{MemoryBackend, Store};
use std::sync::Arc;

const BOUNDS: Bounds = Bounds { origin_m: [-100.0, -100.0], size_m: [200.0, 200.0] };
const WEST_NODE: u64 = 1;
const EAST_NODE: u64 = 2;

fn cell(x: f32, z: f32) -> CellKey {
    CellKey::containing(1, x, z, BOUNDS.origin_m, BOUNDS.size_m)
}

struct World {
    store: Store,
    id: u64,
    west: (CellKey, u64),
    east: (CellKey, u64),
}

type Motion = ([f32; 3], [f32; 4], [f32; 3], [f32; 3]);

fn motion(p: [f32; 3]) -> Motion {
    (p, [0.0, 0.0, 0.0, 1.0], [0.0; 3], [0.0; 3])
}

/// An object at (-10, 1, 5) in WEST's cell, v1; WEST and EAST hold their cells.
fn world() -> World {
    let store = Store::new(Arc::new(MemoryBackend::new()));
    let (w, e) = (cell(-10.0, 5.0), cell(10.0, 5.0));
    let lw = store.transact(|t| pwn_store::fence::grant_lease(t, w, WEST_NODE)).unwrap();
    let le = store.transact(|t| pwn_store::fence::grant_lease(t, e, EAST_NODE)).unwrap();
    let record = ObjectRecord {
        kind: 1,
        state: 0,
        owner: 7,
        position_m: [-10.0, 1.0, 5.0],
        rotation: [0.0, 0.0, 0.0, 1.0],
        linvel_mps: [0.0; 3],
        angvel_rps: [0.0; 3],
        version: 0,
    };
    let edit = StoreEdit::Place { record, per_player_max: 10 };
    let done = store.transact(|t| edit_once(t, 7, 1, &edit, &BOUNDS, |s| Some(1_000 + s))).unwrap();
    let id = match done {
        pwn_store::objects::EditDone::Applied { id, .. } => id,
        other => panic!("{other:?}"),
    };
    World { store, id, west: (w, lw.epoch), east: (e, le.epoch) }
}

fn record(w: &World) -> Option<ObjectRecord> {
    w.store.transact(|t| get(t, w.id)).unwrap()
}

fn indexed_in(w: &World, c: CellKey) -> bool {
    w.store.transact(|t| objects_in(t, c, None)).unwrap().0.iter().any(|(id, _)| *id == w.id)
}

fn mv(w: &World, expect: u64, m: Motion, from: &[(CellKey, u64)], to: (CellKey, u64)) -> Result<ObjectRecord, String> {
    w.store.transact(|t| move_across(t, w.id, expect, m, from, to, &BOUNDS)).map_err(|e| e.to_string())
}

#[test]
fn a_departure_never_stores_a_pose_no_zone_can_load() {
    let cases: Vec<(&str, Motion)> = vec![
        ("x beyond the world's east edge", motion([150.0, 1.0, 5.0])),
        ("y far below the world", motion([10.0, -1.0e6, 5.0])),
        ("NaN y", motion([10.0, f32::NAN, 5.0])),
        ("infinite z", motion([10.0, 1.0, f32::INFINITY])),
        ("a zero rotation", ([10.0, 1.0, 5.0], [0.0; 4], [0.0; 3], [0.0; 3])),
        ("a NaN velocity", ([10.0, 1.0, 5.0], [0.0, 0.0, 0.0, 1.0], [f32::NAN, 0.0, 0.0], [0.0; 3])),
    ];
    let mut bad = Vec::new();
    for (what, m) in cases {
        let w = world();
        let to = (cell(m.0[0], m.0[2]), w.east.1);
        if to.0 != w.east.0 {
            continue;
        }
        let r = mv(&w, 1, m, &[w.west], to);
        if let Ok(rec) = r {
            bad.push(format!("{what}: stored {:?} v{}", rec.position_m, rec.version));
        }
    }
    assert!(bad.is_empty(), "move_across stored unloadable poses:\n{}", bad.join("\n"));
}

#[test]
fn a_departure_from_cells_without_the_records_cell_is_refused() {
    let w = world();
    let other = (cell(-10.0, -50.0), 1);
    assert_ne!(other.0, w.west.0);
    assert!(mv(&w, 1, motion([10.0, 1.0, 5.0]), &[other], w.east).is_err());
    assert_eq!(record(&w).unwrap().version, 1);
    assert!(indexed_in(&w, w.west.0));
}

#[test]
fn a_departure_of_a_record_another_zone_already_moved_is_refused() {
    let w = world();
    // WEST commits its departure (v2, EAST's cell).
    mv(&w, 1, motion([10.0, 1.0, 5.0]), &[w.west], w.east).unwrap();
    // A second, different departure at v1 (another copy, a stale zone) is refused.
    assert!(mv(&w, 1, motion([12.0, 1.0, 5.0]), &[w.west], w.east).is_err());
    // EAST's own departure at v2 back to WEST, named with the wrong from cells, is refused.
    assert!(mv(&w, 2, motion([-10.0, 1.0, 5.0]), &[w.west], w.west).is_err());
    let r = record(&w).unwrap();
    assert_eq!((r.version, r.position_m), (2, [10.0, 1.0, 5.0]));
    assert!(indexed_in(&w, w.east.0) && !indexed_in(&w, w.west.0));
}

#[test]
fn a_departure_retry_is_still_fenced_by_both_leases() {
    let w = world();
    let m = motion([10.0, 1.0, 5.0]);
    mv(&w, 1, m, &[w.west], w.east).unwrap();
    // WEST's lease on its cell passes to another node; a "retry" of the same departure from a
    // caller holding no lease (no from cells, a made-up taking epoch) must not be told it
    // committed.
    w.store.transact(|t| pwn_store::fence::grant_lease(t, w.west.0, 9)).unwrap();
    let r = mv(&w, 1, m, &[], (w.east.0, 999));
    assert!(r.is_err(), "an unfenced caller was told the departure committed: {r:?}");
}

#[test]
fn a_departure_of_a_removed_object_is_refused() {
    let w = world();
    let edit = StoreEdit::Remove { id: w.id, expect_version: 1, owner_only: false };
    w.store.transact(|t| edit_once(t, 7, 2, &edit, &BOUNDS, |s| Some(1_000 + s))).unwrap();
    assert!(mv(&w, 1, motion([10.0, 1.0, 5.0]), &[w.west], w.east).is_err());
    assert!(record(&w).is_none());
    assert!(!indexed_in(&w, w.east.0));
}
