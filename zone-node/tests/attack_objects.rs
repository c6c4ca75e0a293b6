//! Attacks on world-object edits through the zone core (`pwn_zone_node::objects`), as a hostile
//! client and as an operator would: edits validated together, races with characters, with the
//! store's unknown commit results, with the cell being unloaded and with checkpoints; dynamic
//! objects leaving the world; hostile numbers and stored records.

use glam::{Quat, Vec3};
use pwn_proto::{EditObject, EditOp, EditOutcome, InputBatch, WireInput};
use pwn_sim::object::Editors;
use pwn_sim::quantize::quantize_position;
use pwn_sim::{CharacterState, EntityId, ObjectKind, Sim, SimConfig, WorldDesc};
use pwn_store::keys::CellKey;
use pwn_store::objects::{Bounds, EditDone, ObjectRecord};
use pwn_store::{MemoryBackend, Store};
use pwn_zone_node::objects::{WholeWorld, commit, motions};
use pwn_zone_node::persist::acquire_lease;
use pwn_zone_node::zone::{Zone, ZoneConfig};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const WALL: u16 = 0;
const DOOR: u16 = 1;
const BLOCK: u16 = 2;

fn world() -> WorldDesc {
    let kind = |name: &str, h: [f32; 3], dynamic: bool, states: u16, passable: Vec<u16>| ObjectKind {
        name: name.into(),
        half_extents_m: h,
        dynamic,
        density_kgpm3: 60.0,
        states,
        passable_states: passable,
        editors: Editors::Anyone,
    };
    let mut w = WorldDesc::flat(400.0);
    w.spawn_points = vec![[0.0, 1.0, 0.0]];
    w.object_kinds = vec![
        kind("wall", [2.0, 1.5, 0.2], false, 1, vec![]),
        kind("door", [1.0, 1.5, 0.1], false, 2, vec![1]),
        kind("block", [0.5, 0.5, 0.5], true, 1, vec![]),
    ];
    w
}

fn bounds() -> Bounds {
    let w = world();
    Bounds { origin_m: w.origin_m, size_m: w.size_m }
}

struct Fixture {
    store: Store,
    zone: Zone,
    serving: WholeWorld,
}

fn fixture_on(store: Store) -> Fixture {
    let lease = acquire_lease(&store, CellKey::ROOT, 1).unwrap();
    let zone = Zone::new(Sim::new(world(), SimConfig::default(), 1).unwrap(), ZoneConfig::default());
    Fixture { store, zone, serving: WholeWorld { cell: (CellKey::ROOT, lease.epoch) } }
}

fn fixture() -> Fixture {
    fixture_on(Store::new(Arc::new(MemoryBackend::new())))
}

impl Fixture {
    fn check(
        &mut self,
        player: EntityId,
        request: u64,
        op: EditOp,
    ) -> Result<pwn_zone_node::objects::Validated, EditOutcome> {
        self.zone.check_edit(&self.serving, player, &EditObject { request, op })
    }

    /// Checks, commits and applies one edit as the zone node does.
    fn edit(&mut self, player: EntityId, request: u64, op: EditOp) -> (EditOutcome, u64) {
        let v = match self.check(player, request, op) {
            Ok(v) => v,
            Err(why) => return (why, 0),
        };
        let outcome = commit(&self.store, &v, &bounds());
        let object = self.zone.finish_edit(&self.serving, &v, &outcome);
        match outcome {
            Ok(_) => (EditOutcome::Committed, object),
            Err(why) => (why, 0),
        }
    }

    fn here(&self, player: EntityId) -> Vec3 {
        self.zone.sim().character(player).unwrap().position_m
    }

    fn settle(&mut self) {
        for _ in 0..30 {
            self.zone.tick();
        }
    }

    /// Puts a player standing at (x, z).
    fn join_at(&mut self, player: EntityId, x: f32, z: f32) {
        let cfg = self.zone.sim().config().clone();
        let y = cfg.character.half_height_m + cfg.character.radius_m + 0.05;
        self.zone.join_at(player, Some(CharacterState::spawned_at(Vec3::new(x, y, z), &cfg))).unwrap();
    }

    /// Every pair of solid objects in the simulation that overlap.
    fn overlapping_objects(&self) -> Vec<(EntityId, EntityId)> {
        let s = self.zone.sim();
        s.objects()
            .filter_map(|o| {
                let solid = s.object_kinds()[usize::from(o.kind)].solid_in(o.state);
                let hit = s.object_blocked(o.kind, o.position_m, o.rotation, Some(o.id))?;
                (solid && hit.is_object()).then_some((o.id, hit))
            })
            .collect()
    }
}

fn place(kind: u16, at: Vec3) -> EditOp {
    EditOp::Place { kind, position: quantize_position(at), yaw: 0, state: 0 }
}

fn stored(store: &Store, id: u64) -> Option<ObjectRecord> {
    store.transact(|t| pwn_store::objects::get(t, id)).unwrap()
}

// ------------------------------------------------------------------ validated together

/// `[zobj-1]` "a placement leaves nothing overlapping it": two placements at one spot, both
/// validated before either commits (a player sending two requests in one tick, or two players).
#[test]
fn zobj_1_two_placements_validated_before_either_commits_do_not_overlap() {
    let mut f = fixture();
    let (a, b) = (EntityId(1), EntityId(2));
    f.join_at(a, 0.0, 0.0);
    f.join_at(b, 3.0, 0.0);
    f.settle();
    let spot = Vec3::new(1.5, 1.5, 4.0);
    let va = f.check(a, 1, place(WALL, spot));
    let vb = f.check(b, 1, place(WALL, spot));
    let mut committed = 0;
    for v in [va, vb].into_iter().flatten() {
        let outcome = commit(&f.store, &v, &bounds());
        committed += usize::from(outcome.is_ok());
        f.zone.finish_edit(&f.serving, &v, &outcome);
    }
    assert!(committed >= 1);
    assert_eq!(f.overlapping_objects(), vec![], "{committed} walls committed at the same spot");
}

/// The same with a placement onto the spot another object is being moved to.
#[test]
fn zobj_1_a_placement_and_a_move_onto_one_spot_validated_together_do_not_overlap() {
    let mut f = fixture();
    let a = EntityId(1);
    f.join_at(a, 0.0, 0.0);
    f.settle();
    let (_, wall) = f.edit(a, 1, place(WALL, Vec3::new(-4.0, 1.5, 4.0)));
    assert_ne!(wall, 0);
    let spot = Vec3::new(2.0, 1.5, 5.0);
    let mv = f.check(a, 2, EditOp::Move { object: wall, position: quantize_position(spot), yaw: 0 });
    let pl = f.check(a, 3, place(WALL, spot));
    for v in [mv, pl].into_iter().flatten() {
        let outcome = commit(&f.store, &v, &bounds());
        f.zone.finish_edit(&f.serving, &v, &outcome);
    }
    assert_eq!(f.overlapping_objects(), vec![]);
}

// ------------------------------------------------------------------ races with characters

/// `[zobj-1]` "a closing leaves nothing overlapping it": a player steps into the doorway after
/// the closing was validated and before it was applied (the store's round trip).
#[test]
fn zobj_1_a_door_does_not_close_on_a_player_who_stepped_in_during_the_commit() {
    let mut f = fixture();
    let (a, b) = (EntityId(1), EntityId(2));
    f.join_at(a, 0.0, 0.0);
    f.settle();
    let door_at = Vec3::new(0.0, 1.5, 5.0);
    let (_, door) = f.edit(a, 1, EditOp::Place { kind: DOOR, position: quantize_position(door_at), yaw: 0, state: 1 });
    assert_ne!(door, 0);
    let close = f.check(a, 2, EditOp::SetState { object: door, state: 0 }).expect("nobody in the doorway yet");
    // While the store commits, b walks into the open doorway.
    f.join_at(b, 0.0, 5.0);
    f.zone.tick();
    let done = commit(&f.store, &close, &bounds());
    f.zone.finish_edit(&f.serving, &close, &done);
    let s = f.zone.sim();
    let o = s.object(EntityId(door)).unwrap();
    assert_eq!(o.state, 0, "the door closed");
    assert_eq!(s.object_blocked(DOOR, o.position_m, o.rotation, Some(o.id)), None, "the door closed on player {b}");
}

/// The same for a wall placed where a player arrives while the placement is being committed.
#[test]
fn zobj_1_a_wall_is_not_placed_on_a_player_who_arrived_during_the_commit() {
    let mut f = fixture();
    let (a, b) = (EntityId(1), EntityId(2));
    f.join_at(a, 0.0, 0.0);
    f.settle();
    let spot = Vec3::new(0.0, 1.5, 5.0);
    let v = f.check(a, 1, place(WALL, spot)).unwrap();
    f.join_at(b, 0.5, 5.0);
    f.zone.tick();
    let done = commit(&f.store, &v, &bounds());
    let wall = EntityId(f.zone.finish_edit(&f.serving, &v, &done));
    let s = f.zone.sim();
    let o = s.object(wall).unwrap();
    assert_eq!(s.object_blocked(WALL, o.position_m, o.rotation, Some(wall)), None, "the wall landed on player {b}");
}

/// A wall may be placed on the spawn point while nobody stands there; players joining later
/// must not appear inside it (griefing: bricking up the spawn).
#[test]
fn zobj_1_a_player_joining_later_does_not_spawn_inside_a_placed_wall() {
    let mut f = fixture();
    let a = EntityId(1);
    f.join_at(a, 0.0, -4.0);
    f.settle();
    let (outcome, wall) = f.edit(a, 1, place(WALL, Vec3::new(0.0, 1.5, 0.0)));
    if outcome != EditOutcome::Committed {
        return; // Spawn points are protected: fine.
    }
    let b = EntityId(2);
    f.zone.join(b).unwrap();
    let s = f.zone.sim();
    let o = s.object(EntityId(wall)).unwrap();
    let p = f.here(b);
    assert_eq!(
        s.object_blocked(WALL, o.position_m, o.rotation, Some(o.id)),
        None,
        "player {b} spawned at {p}, inside the wall placed on the spawn point"
    );
}

// ------------------------------------------------------------------ the store's answers

/// A backend whose next commit succeeds and then reports a retryable error, as FoundationDB's
/// `commit_unknown_result` does when the commit in fact went through.
struct UnknownCommit {
    inner: Arc<MemoryBackend>,
    lie_once: Arc<AtomicBool>,
}

struct UnknownTxn {
    inner: Box<dyn pwn_store::Transaction>,
    lie_once: Arc<AtomicBool>,
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
        match self.lie_once.swap(false, Ordering::SeqCst) {
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

/// `[zobj-4]`: an edit that the store committed is in the simulation, even when its first
/// commit was reported unknown and the retry found it done (`[obj-1]`'s `AlreadyDone`).
#[test]
fn zobj_4_a_placement_whose_commit_result_was_unknown_is_still_applied() {
    let lie = Arc::new(AtomicBool::new(false));
    let mut f = fixture_on(Store::new(Arc::new(UnknownCommit {
        inner: Arc::new(MemoryBackend::new()),
        lie_once: lie.clone(),
    })));
    let a = EntityId(1);
    f.join_at(a, 0.0, 0.0);
    f.settle();
    lie.store(true, Ordering::SeqCst);
    let (outcome, wall) = f.edit(a, 1, place(WALL, Vec3::new(0.0, 1.5, 5.0)));
    assert!(!lie.load(Ordering::SeqCst), "the commit was retried");
    assert_eq!(outcome, EditOutcome::Committed);
    assert!(stored(&f.store, wall).is_some(), "the store holds the wall");
    assert!(f.zone.sim().object(EntityId(wall)).is_some(), "committed and answered Committed, but not in the world");
}

/// The same for a removal: the store removed the object, so the world must not keep it.
#[test]
fn zobj_4_a_removal_whose_commit_result_was_unknown_is_still_applied() {
    let lie = Arc::new(AtomicBool::new(false));
    let mut f = fixture_on(Store::new(Arc::new(UnknownCommit {
        inner: Arc::new(MemoryBackend::new()),
        lie_once: lie.clone(),
    })));
    let a = EntityId(1);
    f.join_at(a, 0.0, 0.0);
    f.settle();
    let (_, wall) = f.edit(a, 1, place(WALL, Vec3::new(0.0, 1.5, 5.0)));
    lie.store(true, Ordering::SeqCst);
    let (outcome, _) = f.edit(a, 2, EditOp::Remove { object: wall });
    assert_eq!(outcome, EditOutcome::Committed);
    assert!(stored(&f.store, wall).is_none(), "the store removed it");
    assert!(f.zone.sim().object(EntityId(wall)).is_none(), "removed in the store, still standing in the world");
}

// ------------------------------------------------------------------ the cell going away

/// `[zobj-5]`: once a zone unloaded a cell (its lease lapsed on the zone's clock, or the cell
/// left), an edit of it committed meanwhile must not put the object back into this zone.
#[test]
fn zobj_5_an_edit_committed_while_the_cell_was_unloaded_does_not_bring_the_object_back() {
    let mut f = fixture();
    let a = EntityId(1);
    f.join_at(a, 0.0, 0.0);
    f.settle();
    let (_, wall) = f.edit(a, 1, place(WALL, Vec3::new(0.0, 1.5, 5.0)));
    let mv = f
        .check(a, 2, EditOp::Move { object: wall, position: quantize_position(Vec3::new(2.0, 1.5, 5.0)), yaw: 0 })
        .unwrap();
    let pl = f.check(a, 3, place(WALL, Vec3::new(-3.0, 1.5, -5.0))).unwrap();
    // The cell is no longer served here: its objects leave the simulation.
    assert_eq!(f.zone.unload_objects(|_| true), 1);
    struct NothingServed;
    impl pwn_zone_node::objects::Serving for NothingServed {
        fn cell_at(&self, _: f32, _: f32) -> Option<(CellKey, u64)> {
            None
        }
        fn objects_in(&self, _: &Sim, _: CellKey) -> usize {
            0
        }
    }
    for v in [mv, pl] {
        // The lease epoch the edits were checked at still stands in the store.
        let done = commit(&f.store, &v, &bounds());
        assert!(done.is_ok());
        f.zone.finish_edit(&NothingServed, &v, &done);
    }
    let left: Vec<_> = f.zone.sim().objects().map(|o| o.id).collect();
    assert!(left.is_empty(), "objects of an unloaded cell are back in the zone: {left:?}");
}

// ------------------------------------------------------------------ checkpoints

/// `[zobj-5]`, `[obj-4]`: a checkpoint of a dynamic object taken before an edit commits never
/// undoes the edit or brings a removed object back.
#[test]
fn zobj_5_a_checkpoint_taken_before_an_edit_never_undoes_it() {
    let mut f = fixture();
    let a = EntityId(1);
    f.join_at(a, 0.0, 0.0);
    f.settle();
    let (_, b1) = f.edit(a, 1, place(BLOCK, Vec3::new(2.0, 0.5, 4.0)));
    let (_, b2) = f.edit(a, 2, place(BLOCK, Vec3::new(-2.0, 0.5, 4.0)));
    f.settle();
    let taken = motions(f.zone.sim(), f.zone.objects(), |_| true);
    assert_eq!(taken.len(), 2);
    let to = Vec3::new(3.0, 0.5, -3.0);
    assert_eq!(
        f.edit(a, 3, EditOp::Move { object: b1, position: quantize_position(to), yaw: 0 }).0,
        EditOutcome::Committed
    );
    assert_eq!(f.edit(a, 4, EditOp::Remove { object: b2 }).0, EditOutcome::Committed);
    // The stale checkpoint lands after the edits.
    f.store
        .transact(|t| {
            for m in &taken {
                pwn_store::objects::save_motion(t, m.id.0, m.version, m.motion, &bounds())?;
            }
            Ok::<_, pwn_store::StoreError>(())
        })
        .unwrap();
    let r = stored(&f.store, b1).unwrap();
    assert!(Vec3::from(r.position_m).distance(to) < 0.01, "the move was undone: {:?}", r.position_m);
    assert!(stored(&f.store, b2).is_none(), "the removed block came back");
    let mut fresh = Zone::new(Sim::new(world(), SimConfig::default(), 1).unwrap(), ZoneConfig::default());
    assert_eq!(fresh.load_objects(&f.store, CellKey::ROOT).unwrap(), (1, 0));
}

/// A dynamic block that a player pushes against the edge of the world goes on past it; its
/// checkpoint is then a record this world refuses to load: the object is lost (still in the
/// store, still counted against its owner, and nobody can remove it).
#[test]
fn zobj_5_a_dynamic_object_pushed_out_of_the_world_is_not_lost_on_reload() {
    let mut f = fixture();
    let a = EntityId(1);
    let edge = world().origin_m[1] + world().size_m[1];
    f.join_at(a, 0.0, edge - 6.0);
    f.settle();
    let (outcome, blk) = f.edit(a, 1, place(BLOCK, Vec3::new(0.0, 0.5, edge - 3.5)));
    assert_eq!(outcome, EditOutcome::Committed);
    // Run at it, towards the edge.
    for seq in 1..=180u32 {
        let fwd = WireInput { seq, move_z: 127, buttons: pwn_sim::Buttons::RUN, ..WireInput::default() };
        f.zone.on_inputs(a, &InputBatch { ack_tick: 0, inputs: vec![fwd] }, 0);
        f.zone.tick();
    }
    let o = f.zone.sim().object(EntityId(blk)).unwrap();
    // Checkpoint as the tick loop does, then a fresh zone loads the cell.
    let taken = motions(f.zone.sim(), f.zone.objects(), |_| true);
    f.store
        .transact(|t| {
            for m in &taken {
                pwn_store::objects::save_motion(t, m.id.0, m.version, m.motion, &bounds())?;
            }
            Ok::<_, pwn_store::StoreError>(())
        })
        .unwrap();
    let mut fresh = Zone::new(Sim::new(world(), SimConfig::default(), 1).unwrap(), ZoneConfig::default());
    let (placed, skipped) = fresh.load_objects(&f.store, CellKey::ROOT).unwrap();
    assert_eq!(
        (placed, skipped),
        (1, 0),
        "the block, pushed to {} (world edge at z = {edge}), did not come back after a restart",
        o.position_m
    );
}

// ------------------------------------------------------------------ hostile numbers

#[test]
fn zobj_1_hostile_edits_are_refused_without_panicking() {
    let mut f = fixture();
    let a = EntityId(1);
    f.join_at(a, 0.0, 0.0);
    f.settle();
    let (_, wall) = f.edit(a, 1, place(WALL, Vec3::new(0.0, 1.5, 5.0)));
    let (_, door) = f.edit(a, 2, place(DOOR, Vec3::new(4.0, 1.5, 5.0)));
    let extremes = [[i32::MIN; 3], [i32::MAX; 3], [0, i32::MIN, 0], [0, i32::MAX, 0], [i32::MAX, 0, i32::MIN]];
    let mut request = 10;
    let mut refuse = |f: &mut Fixture, op: EditOp| {
        request += 1;
        let (outcome, _) = f.edit(a, request, op);
        assert_ne!(outcome, EditOutcome::Committed, "{op:?}");
    };
    for p in extremes {
        refuse(&mut f, EditOp::Place { kind: WALL, position: p, yaw: u16::MAX, state: 0 });
        refuse(&mut f, EditOp::Move { object: wall, position: p, yaw: u16::MAX });
    }
    for kind in [3, 999, u16::MAX] {
        refuse(
            &mut f,
            EditOp::Place { kind, position: quantize_position(Vec3::new(0.0, 1.5, -5.0)), yaw: 0, state: 0 },
        );
    }
    refuse(
        &mut f,
        EditOp::Place { kind: DOOR, position: quantize_position(Vec3::new(0.0, 1.5, -5.0)), yaw: 0, state: 2 },
    );
    refuse(&mut f, EditOp::SetState { object: door, state: 2 });
    refuse(&mut f, EditOp::SetState { object: door, state: u16::MAX });
    refuse(&mut f, EditOp::SetState { object: wall, state: 1 });
    for object in [0, 1, u64::MAX, pwn_sim::ids::OBJECT_ID_BASE, pwn_sim::ids::PROJECTILE_ID_BASE - 1, a.0] {
        refuse(&mut f, EditOp::Remove { object });
        refuse(&mut f, EditOp::SetState { object, state: 0 });
        refuse(&mut f, EditOp::Move { object, position: quantize_position(Vec3::new(0.0, 1.5, -5.0)), yaw: 0 });
    }
    // Inside the player who asks, and moving the wall onto the player.
    let onto = f.here(a);
    refuse(&mut f, place(BLOCK, onto));
    refuse(&mut f, EditOp::Move { object: wall, position: quantize_position(onto), yaw: 0 });
    // Onto the door (solid).
    refuse(&mut f, EditOp::Move { object: wall, position: quantize_position(Vec3::new(4.0, 1.5, 5.0)), yaw: 0 });
    assert_eq!(f.zone.sim().object_count(), 2);
    assert_eq!(f.overlapping_objects(), vec![]);
}

/// `[edit-1]` at the edges of the request numbers: 0 works, u64::MAX works once, replays are
/// answered with what they did, older ones are stale, and nothing panics.
#[test]
fn edit_1_request_numbers_at_their_edges() {
    let mut f = fixture();
    let a = EntityId(1);
    f.join_at(a, 0.0, 0.0);
    f.settle();
    let (o0, w0) = f.edit(a, 0, place(WALL, Vec3::new(0.0, 1.5, 5.0)));
    assert_eq!(o0, EditOutcome::Committed);
    let v = f.check(a, u64::MAX, EditOp::Remove { object: w0 }).unwrap();
    assert!(matches!(commit(&f.store, &v, &bounds()), Ok(EditDone::Applied { record: None, .. })));
    assert!(matches!(commit(&f.store, &v, &bounds()), Ok(EditDone::AlreadyDone { id, record: None }) if id == w0));
    let stale = f.check(a, 5, place(WALL, Vec3::new(0.0, 1.5, -5.0))).unwrap();
    assert_eq!(commit(&f.store, &stale, &bounds()), Err(EditOutcome::Stale));
}

/// Stored records this world cannot hold (a world file changed under a running store, or
/// damage) are skipped on load, never a panic; later edits of what loaded still work.
#[test]
fn zobj_5_records_this_world_cannot_hold_are_skipped_not_a_panic() {
    let rec = |kind: u16, state: u16, p: [f32; 3], q: [f32; 4]| ObjectRecord {
        kind,
        state,
        owner: 7,
        position_m: p,
        rotation: q,
        linvel_mps: [0.0; 3],
        angvel_rps: [0.0; 3],
        version: 1,
    };
    let up = [0.0, 0.0, 0.0, 1.0];
    let records = vec![
        (EntityId::object(1, WALL).0, rec(WALL, 0, [0.0, 1.5, 5.0], up)),
        (EntityId::object(2, 9).0, rec(9, 0, [0.0, 1.5, 9.0], up)),
        (EntityId::object(3, WALL).0, rec(DOOR, 0, [0.0, 1.5, 12.0], up)),
        (EntityId::object(4, DOOR).0, rec(DOOR, 7, [0.0, 1.5, 15.0], up)),
        (EntityId::object(5, WALL).0, rec(WALL, 0, [f32::NAN, 1.5, 5.0], up)),
        (EntityId::object(6, WALL).0, rec(WALL, 0, [1e9, 1.5, 5.0], up)),
        (EntityId::object(7, WALL).0, rec(WALL, 0, [0.0, 1.5, 20.0], [0.0; 4])),
        (EntityId::object(8, BLOCK).0, rec(BLOCK, 0, [0.0, 1.5, 25.0], [f32::NAN; 4])),
        (5, rec(WALL, 0, [0.0, 1.5, 30.0], up)),
        (u64::MAX, rec(WALL, 0, [0.0, 1.5, 35.0], up)),
        // The same object twice.
        (EntityId::object(1, WALL).0, rec(WALL, 0, [0.0, 1.5, 5.0], up)),
    ];
    let mut zone = Zone::new(Sim::new(world(), SimConfig::default(), 1).unwrap(), ZoneConfig::default());
    let (placed, skipped) = zone.place_loaded_objects(&records, |_| false);
    assert_eq!(placed + skipped, records.len() as u32);
    assert_eq!(zone.sim().object_count(), 1);
    assert_eq!(zone.sim().object(EntityId::object(1, WALL)).unwrap().rotation, Quat::IDENTITY);
    for _ in 0..5 {
        zone.tick();
    }
}
