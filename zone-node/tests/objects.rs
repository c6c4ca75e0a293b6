//! World-object edits through the zone core (`pwn_zone_node::objects`): every refusal with its
//! reason, committed edits seen in snapshots only after the commit, a zone that lost its lease
//! commits nothing, concurrent edits of one object resolve to exactly one, a retried request is
//! applied once, and a new zone loads exactly what was committed.

use glam::Vec3;
use pwn_proto::delta::ReceivedViews;
use pwn_proto::{EditObject, EditOp, EditOutcome};
use pwn_sim::object::Editors;
use pwn_sim::quantize::quantize_position;
use pwn_sim::{EntityId, ObjectKind, Sim, SimConfig, WorldDesc};
use pwn_store::keys::CellKey;
use pwn_store::objects::{Bounds, EditDone};
use pwn_store::{MemoryBackend, Store};
use pwn_zone_node::objects::{REACH_M, WholeWorld, commit};
use pwn_zone_node::persist::acquire_lease;
use pwn_zone_node::zone::{Zone, ZoneConfig};
use std::sync::Arc;

const WALL: u16 = 0;
const SIGN: u16 = 1;
const DOOR: u16 = 2;

fn world() -> WorldDesc {
    let kind = |name: &str, h: [f32; 3], states: u16, passable: Vec<u16>, editors: Editors| ObjectKind {
        name: name.into(),
        half_extents_m: h,
        dynamic: false,
        density_kgpm3: 100.0,
        states,
        passable_states: passable,
        editors,
    };
    let mut w = WorldDesc::flat(400.0);
    w.spawn_points = vec![[0.0, 1.0, 0.0]];
    w.object_kinds = vec![
        kind("wall", [2.0, 1.5, 0.2], 1, vec![], Editors::Anyone),
        kind("sign", [0.3, 0.5, 0.05], 1, vec![], Editors::Owner),
        kind("door", [1.0, 1.5, 0.1], 2, vec![1], Editors::Anyone),
    ];
    w
}

struct Fixture {
    store: Store,
    zone: Zone,
    serving: WholeWorld,
    bounds: Bounds,
}

fn fixture() -> Fixture {
    let store = Store::new(Arc::new(MemoryBackend::new()));
    let lease = acquire_lease(&store, CellKey::ROOT, 1).unwrap();
    let desc = world();
    let bounds = Bounds { origin_m: desc.origin_m, size_m: desc.size_m };
    let zone = Zone::new(Sim::new(desc, SimConfig::default(), 1).unwrap(), ZoneConfig::default());
    Fixture { store, zone, serving: WholeWorld { cell: (CellKey::ROOT, lease.epoch) }, bounds }
}

impl Fixture {
    /// Checks, commits and applies one edit as the zone node does; the outcome.
    fn edit(&mut self, player: EntityId, request: u64, op: EditOp) -> (EditOutcome, u64) {
        let req = EditObject { request, op };
        let v = match self.zone.check_edit(&self.serving, player, &req) {
            Ok(v) => v,
            Err(why) => return (why, 0),
        };
        let outcome = commit(&self.store, &v, &self.bounds);
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
}

fn place(kind: u16, at: Vec3) -> EditOp {
    EditOp::Place { kind, position: quantize_position(at), yaw: 0, state: 0 }
}

#[test]
fn zobj_1_edits_are_refused_with_their_reason() {
    let mut f = fixture();
    let me = EntityId(1);
    f.zone.join(me).unwrap();
    f.settle();
    let p = f.here(me);
    let ahead = p + Vec3::new(0.0, 0.5, 4.0);
    assert_eq!(f.edit(me, 1, place(9, ahead)).0, EditOutcome::Invalid, "unknown kind");
    assert_eq!(
        f.edit(me, 2, EditOp::Place { kind: WALL, position: quantize_position(ahead), yaw: 0, state: 1 }).0,
        EditOutcome::Invalid,
        "a state the kind does not have"
    );
    assert_eq!(f.edit(me, 3, place(WALL, p + Vec3::new(0.0, 0.0, REACH_M + 2.0))).0, EditOutcome::OutOfReach);
    assert_eq!(f.edit(me, 4, place(WALL, Vec3::new(5000.0, 1.0, 0.0))).0, EditOutcome::OutOfBounds);
    // On top of the player itself.
    assert_eq!(f.edit(me, 5, place(WALL, p)).0, EditOutcome::Blocked);
    assert_eq!(f.edit(EntityId(99), 6, place(WALL, ahead)).0, EditOutcome::OutOfReach, "not here");
    assert_eq!(f.edit(me, 7, EditOp::Remove { object: EntityId::object(5, WALL).0 }).0, EditOutcome::Missing);
    // Someone else's sign: owner-only.
    let (ok, sign) = f.edit(me, 8, place(SIGN, ahead));
    assert_eq!(ok, EditOutcome::Committed);
    let other = EntityId(2);
    f.zone.join(other).unwrap();
    f.settle();
    assert_eq!(f.edit(other, 1, EditOp::Remove { object: sign }).0, EditOutcome::NotAllowed);
    assert_eq!(f.edit(me, 9, EditOp::Remove { object: sign }).0, EditOutcome::Committed);
    assert_eq!(f.zone.sim().object_count(), 0);
}

#[test]
fn zobj_4_a_committed_object_reaches_nearby_players_in_the_next_snapshot() {
    let mut f = fixture();
    let (me, other) = (EntityId(1), EntityId(2));
    f.zone.join(me).unwrap();
    f.zone.join(other).unwrap();
    f.settle();
    let at = f.here(me) + Vec3::new(3.0, 0.5, 3.0);
    let (outcome, wall) = f.edit(me, 1, place(WALL, at));
    assert_eq!(outcome, EditOutcome::Committed);
    assert!(EntityId(wall).is_object());
    assert_eq!(EntityId(wall).object_kind(), Some(WALL));
    let out = f.zone.tick();
    let mut views = ReceivedViews::new(30);
    let (_, snapshot) = out.snapshots.iter().find(|(p, _)| *p == other).expect("a snapshot for the other player");
    let view = views.apply(snapshot).unwrap();
    let seen = view.get(&wall).expect("the wall is in the other player's view");
    assert_eq!(seen.position, quantize_position(at));
    // At rest it costs nothing once acknowledged.
    f.zone.on_ack(other, snapshot.tick);
    let out = f.zone.tick();
    let (_, next) = out.snapshots.iter().find(|(p, _)| *p == other).unwrap();
    let next = views.apply(next).unwrap();
    assert!(next.contains_key(&wall));
}

#[test]
fn zobj_3_a_zone_that_lost_its_lease_commits_nothing() {
    let mut f = fixture();
    let me = EntityId(1);
    f.zone.join(me).unwrap();
    f.settle();
    acquire_lease(&f.store, CellKey::ROOT, 2).unwrap();
    let at = f.here(me) + Vec3::new(3.0, 0.5, 3.0);
    assert_eq!(f.edit(me, 1, place(WALL, at)).0, EditOutcome::StoreFailed);
    assert_eq!(f.zone.sim().object_count(), 0, "applied without a commit");
}

#[test]
fn obj_2_two_players_editing_one_door_at_once_get_exactly_one_outcome() {
    let mut f = fixture();
    let (a, b) = (EntityId(1), EntityId(2));
    f.zone.join(a).unwrap();
    f.zone.join(b).unwrap();
    f.settle();
    let at = f.here(a) + Vec3::new(3.0, 0.0, 3.0);
    let (_, door) = f.edit(a, 1, place(DOOR, at + Vec3::Y * 1.5));
    let open = EditObject { request: 2, op: EditOp::SetState { object: door, state: 1 } };
    let remove = EditObject { request: 1, op: EditOp::Remove { object: door } };
    let va = f.zone.check_edit(&f.serving, a, &open).unwrap();
    // In one zone, a second edit of the door waits for the first (`[zobj-4]`).
    assert_eq!(f.zone.check_edit(&f.serving, b, &remove).unwrap_err(), EditOutcome::Busy);
    // Another zone holding the same cell (a stale one, say) validates against the same
    // version; the store lets exactly one commit.
    let mut other = Zone::new(Sim::new(world(), SimConfig::default(), 1).unwrap(), ZoneConfig::default());
    other.load_objects(&f.store, CellKey::ROOT).unwrap();
    other.join_at(b, f.zone.sim().character(b).cloned()).unwrap();
    let vb = other.check_edit(&f.serving, b, &remove).unwrap();
    let first = commit(&f.store, &va, &f.bounds);
    let second = commit(&f.store, &vb, &f.bounds);
    assert!(matches!(first, Ok(EditDone::Applied { record: Some(r), .. }) if r.state == 1));
    assert_eq!(second, Err(EditOutcome::Stale));
    f.zone.finish_edit(&f.serving, &va, &first);
    other.finish_edit(&f.serving, &vb, &second);
    assert_eq!(f.zone.sim().object(EntityId(door)).unwrap().state, 1);
    // A retry of the committed request is applied once: nothing changes, same object.
    let again = commit(&f.store, &va, &f.bounds).unwrap();
    assert!(matches!(again, EditDone::AlreadyDone { id, record: Some(r) } if id == door && r.version == 2));
    assert_eq!(f.zone.objects().get(EntityId(door)).unwrap().version, 2);
}

#[test]
fn zobj_5_a_new_zone_loads_exactly_what_was_committed() {
    let mut f = fixture();
    let me = EntityId(1);
    f.zone.join(me).unwrap();
    f.settle();
    let p = f.here(me);
    let (_, a) = f.edit(me, 1, place(WALL, p + Vec3::new(4.0, 1.5, 0.0)));
    let (_, b) = f.edit(me, 2, place(DOOR, p + Vec3::new(-4.0, 1.5, 0.0)));
    let (_, _) = f.edit(me, 3, EditOp::SetState { object: b, state: 1 });
    let (_, c) = f.edit(me, 4, place(WALL, p + Vec3::new(0.0, 1.5, 5.0)));
    assert_eq!(f.edit(me, 5, EditOp::Remove { object: c }).0, EditOutcome::Committed);
    let mut fresh = Zone::new(Sim::new(world(), SimConfig::default(), 1).unwrap(), ZoneConfig::default());
    assert_eq!(fresh.load_objects(&f.store, CellKey::ROOT).unwrap(), (2, 0));
    let before: Vec<_> = f.zone.sim().objects().collect();
    let after: Vec<_> = fresh.sim().objects().collect();
    assert_eq!(before, after);
    assert_eq!(after.iter().map(|o| o.id.0).collect::<Vec<_>>(), {
        let mut v = vec![a, b];
        v.sort();
        v
    });
    assert_eq!(fresh.sim().object(EntityId(b)).unwrap().state, 1);
}
