//! World objects in the store (`pwn_store::objects`) on the memory and SQLite backends: edits
//! are idempotent per player request, concurrent edits of one object resolve to exactly one,
//! record, index and counts agree, and motion checkpoints never undo a committed edit.

use pwn_store::keys::CellKey;
use pwn_store::objects::{
    Bounds, EditDone, EditError, ObjectRecord, StoreEdit, edit_once, get, object_at_range, objects_in, owned_count,
    save_motion,
};
use pwn_store::{MemoryBackend, SqliteBackend, Store};
use std::sync::Arc;

fn stores() -> Vec<(Store, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::new(Arc::new(SqliteBackend::open(dir.path().join("pwn.sqlite")).unwrap()));
    vec![(Store::new(Arc::new(MemoryBackend::new())), None), (sqlite, Some(dir))]
}

const BOUNDS: Bounds = Bounds { origin_m: [-100.0, -100.0], size_m: [200.0, 200.0] };

fn record(x: f32, state: u16) -> ObjectRecord {
    ObjectRecord {
        kind: 3,
        state,
        owner: 0,
        position_m: [x, 1.0, 5.0],
        rotation: [0.0, 0.0, 0.0, 1.0],
        linvel_mps: [0.0; 3],
        angvel_rps: [0.0; 3],
        version: 0,
    }
}

fn id_of(serial: u64) -> Option<u64> {
    Some(1_000 + serial)
}

fn place(store: &Store, player: u64, request: u64, x: f32) -> Result<EditDone, EditError> {
    let edit = StoreEdit::Place { record: record(x, 0), per_player_max: 2 };
    store.transact(|t| edit_once(t, player, request, &edit, &BOUNDS, id_of))
}

fn indexed(store: &Store) -> Vec<u64> {
    let (b, e) = object_at_range(CellKey::ROOT);
    store
        .transact(|t| t.get_range(&b, &e, Default::default()))
        .unwrap()
        .into_iter()
        .map(|(k, _)| foundationdb_tuple::unpack::<(String, String, u64, u64)>(&k).unwrap().3)
        .collect()
}

#[test]
fn obj_1_a_request_commits_once_and_an_older_one_is_stale() {
    for (store, _dir) in stores() {
        let EditDone::Applied { id, record: Some(r) } = place(&store, 7, 1, 0.0).unwrap() else { panic!() };
        assert_eq!((r.owner, r.version), (7, 1));
        // The same request again (a retry, a resend): the same object, nothing new.
        assert!(
            matches!(place(&store, 7, 1, 0.0).unwrap(), EditDone::AlreadyDone { id: again, record: Some(_) } if again == id)
        );
        assert!(matches!(place(&store, 7, 0, 3.0), Err(EditError::Stale)));
        assert_eq!(store.transact(|t| owned_count(t, 7)).unwrap(), 1);
        assert_eq!(indexed(&store), vec![id]);
        // Another player's request numbers are its own.
        assert!(matches!(place(&store, 8, 1, 3.0).unwrap(), EditDone::Applied { .. }));
    }
}

#[test]
fn obj_2_of_two_edits_validated_against_one_version_exactly_one_commits() {
    for (store, _dir) in stores() {
        let EditDone::Applied { id, .. } = place(&store, 7, 1, 0.0).unwrap() else { panic!() };
        let open = StoreEdit::Update { id, expect_version: 1, record: record(0.0, 1), owner_only: false };
        let remove = StoreEdit::Remove { id, expect_version: 1, owner_only: false };
        let first = store.transact(|t| edit_once(t, 8, 1, &open, &BOUNDS, id_of));
        let second = store.transact(|t| edit_once(t, 9, 1, &remove, &BOUNDS, id_of));
        assert!(matches!(first, Ok(EditDone::Applied { record: Some(r), .. }) if r.state == 1 && r.version == 2));
        assert!(matches!(second, Err(EditError::Stale)), "{second:?}");
        assert_eq!(store.transact(|t| get(t, id)).unwrap().map(|r| r.state), Some(1));
    }
}

#[test]
fn obj_3_record_index_and_counts_agree_and_limits_hold() {
    for (store, _dir) in stores() {
        let EditDone::Applied { id: a, .. } = place(&store, 7, 1, 0.0).unwrap() else { panic!() };
        place(&store, 7, 2, 10.0).unwrap();
        assert!(matches!(place(&store, 7, 3, 20.0), Err(EditError::PlayerFull)));
        // Owner-only: someone else may not move it; its owner may.
        let moved = StoreEdit::Update { id: a, expect_version: 1, record: record(-50.0, 0), owner_only: true };
        assert!(matches!(store.transact(|t| edit_once(t, 8, 1, &moved, &BOUNDS, id_of)), Err(EditError::NotAllowed)));
        store.transact(|t| edit_once(t, 7, 4, &moved, &BOUNDS, id_of)).unwrap();
        assert_eq!(store.transact(|t| get(t, a)).unwrap().unwrap().position_m[0], -50.0);
        assert_eq!(indexed(&store).len(), 2);
        let remove = StoreEdit::Remove { id: a, expect_version: 2, owner_only: true };
        store.transact(|t| edit_once(t, 7, 5, &remove, &BOUNDS, id_of)).unwrap();
        assert_eq!(store.transact(|t| get(t, a)).unwrap(), None);
        assert_eq!(indexed(&store).len(), 1);
        assert_eq!(store.transact(|t| owned_count(t, 7)).unwrap(), 1);
        // Room again for one more.
        assert!(matches!(place(&store, 7, 6, 30.0).unwrap(), EditDone::Applied { .. }));
        let missing = StoreEdit::Remove { id: a, expect_version: 3, owner_only: false };
        assert!(matches!(store.transact(|t| edit_once(t, 7, 7, &missing, &BOUNDS, id_of)), Err(EditError::Missing)));
    }
}

#[test]
fn obj_4_a_motion_checkpoint_never_undoes_a_committed_edit() {
    for (store, _dir) in stores() {
        let EditDone::Applied { id, .. } = place(&store, 7, 1, 0.0).unwrap() else { panic!() };
        let fallen = ([0.0, 0.5, 5.0], [0.0, 0.0, 0.0, 1.0], [0.0; 3], [0.0; 3]);
        assert!(store.transact(|t| save_motion(t, id, 1, fallen, &BOUNDS)).unwrap());
        assert_eq!(store.transact(|t| get(t, id)).unwrap().unwrap().position_m, [0.0, 0.5, 5.0]);
        let moved = StoreEdit::Update { id, expect_version: 1, record: record(40.0, 0), owner_only: false };
        store.transact(|t| edit_once(t, 7, 2, &moved, &BOUNDS, id_of)).unwrap();
        // A checkpoint taken before the move lands after it: refused.
        assert!(!store.transact(|t| save_motion(t, id, 1, fallen, &BOUNDS)).unwrap());
        assert_eq!(store.transact(|t| get(t, id)).unwrap().unwrap().position_m[0], 40.0);
        assert_eq!(indexed(&store), vec![id]);
    }
}

#[test]
fn a_cells_objects_are_one_range_and_pages_cover_them_all() {
    for (store, _dir) in stores() {
        let mut placed = Vec::new();
        for i in 0..5u64 {
            let edit = StoreEdit::Place { record: record(-90.0 + 40.0 * i as f32, 0), per_player_max: 100 };
            let EditDone::Applied { id, .. } =
                store.transact(|t| edit_once(t, 7, i + 1, &edit, &BOUNDS, id_of)).unwrap()
            else {
                panic!()
            };
            placed.push(id);
        }
        let (all, next) = store.transact(|t| objects_in(t, CellKey::ROOT, None)).unwrap();
        assert!(next.is_none());
        let mut ids: Vec<u64> = all.iter().map(|(id, _)| *id).collect();
        ids.sort();
        assert_eq!(ids, placed);
        // The west half of the world holds the first three (x = -90, -50, -10).
        let west = [CellKey { level: 1, path: 0 }, CellKey { level: 1, path: 2 }];
        let n: usize = west.iter().map(|c| store.transact(|t| objects_in(t, *c, None)).unwrap().0.len()).sum();
        assert_eq!(n, 3);
    }
}
