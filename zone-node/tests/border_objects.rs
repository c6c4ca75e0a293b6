//! World objects across a border (`pwn_zone_node::objects` `[zobj-6]`), on the two-zone fixture
//! (WEST holds x < 0, EAST the rest, one store): an object WEST commits near the border reaches
//! EAST as a ghost that EAST's players see in their snapshots and collide with, but cannot
//! edit; its removal reaches EAST too; a full listing releases ghosts it does not name; EAST
//! refuses ghosts from a zone that does not serve their cell, or inside its own cells.

mod common;

use common::objects::{WALL, east_applies, edit, ghosts, objects_world as world};
use common::{EAST, WEST, pair, place};
use glam::Vec3;
use pwn_proto::delta::ReceivedViews;
use pwn_proto::{EditOp, EditOutcome, ObjectGhosts};
use pwn_sim::quantize::quantize_position;
use pwn_sim::{EntityId, InputSeq};
use pwn_store::keys::CellKey;
use pwn_store::objects::Bounds;
use pwn_zone_node::zone::Zone;

fn settle(zone: &mut Zone) {
    for _ in 0..20 {
        zone.tick();
    }
}

#[test]
fn zobj_6_an_object_near_the_border_is_seen_and_felt_across_it_but_edited_only_by_its_owner() {
    let mut p = pair(world());
    {
        let (z, t) = &mut p.zones[0];
        place(z, t, 1, [-3.0, 1.0, 100.0]);
        settle(z);
    }
    {
        let (z, t) = &mut p.zones[1];
        place(z, t, 2, [2.5, 1.0, 104.0]);
        settle(z);
    }
    // A wall across the z axis just west of the border (it spans z 102..106, x -1.2..-0.8).
    let at = Vec3::new(-1.0, 1.5, 104.0);
    let op = EditOp::Place { kind: WALL, position: quantize_position(at), yaw: 16_384, state: 0 };
    let (outcome, wall) = edit(&mut p, 0, 1, 1, op);
    assert_eq!(outcome, EditOutcome::Committed);
    let g = ghosts(&p, 0, EAST, false);
    assert_eq!(g.objects.iter().map(|o| o.id).collect::<Vec<_>>(), vec![wall]);
    assert_eq!(east_applies(&mut p, WEST, &g), 0);
    let east = &mut p.zones[1].0;
    assert!(east.objects().is_ghost(EntityId(wall)));
    // EAST's player sees it in its snapshot...
    let out = east.tick();
    let (_, s) = out.snapshots.iter().find(|(pl, _)| *pl == EntityId(2)).unwrap();
    let view = ReceivedViews::new(30).apply(s).unwrap().clone();
    assert!(view.contains_key(&wall), "the ghost is not in EAST's snapshot");
    // ...cannot edit it from there...
    assert_eq!(edit(&mut p, 1, 2, 1, EditOp::Remove { object: wall }).0, EditOutcome::Missing);
    // ...and runs into it: walking west from x = 2.5 it stops at the wall's east face.
    let east = &mut p.zones[1].0;
    for seq in 1..=90u32 {
        let i = pwn_proto::WireInput::from_input(&pwn_sim::PlayerInput {
            seq: InputSeq(seq),
            move_z: 1.0,
            yaw_rad: -std::f32::consts::FRAC_PI_2,
            ..Default::default()
        });
        east.on_inputs(EntityId(2), &pwn_proto::InputBatch { ack_tick: 0, inputs: vec![i] }, 0);
        east.tick();
    }
    let x = east.sim().character(EntityId(2)).unwrap().position_m.x;
    let r = east.sim().config().character.radius_m;
    assert!(x >= -0.8 + r - 0.05, "walked through the ghost wall to x = {x}");
    assert!(x < 0.5, "never reached the wall: x = {x}");
    // Its removal reaches EAST as well.
    assert_eq!(edit(&mut p, 0, 1, 2, EditOp::Remove { object: wall }).0, EditOutcome::Committed);
    let removed = pwn_proto::WireObject {
        id: wall,
        state: 0,
        version: u64::MAX,
        removed: true,
        position_m: at.to_array(),
        rotation: [0.0, 0.0, 0.0, 1.0],
    };
    let g = ObjectGhosts { full: false, first: true, last: true, objects: vec![removed] };
    assert_eq!(east_applies(&mut p, WEST, &g), 0);
    assert_eq!(p.zones[1].0.sim().object_count(), 0);
}

#[test]
fn zobj_6_a_full_listing_releases_ghosts_it_does_not_name_and_strangers_are_refused() {
    let mut p = pair(world());
    {
        let (z, t) = &mut p.zones[0];
        place(z, t, 1, [-3.0, 1.0, 100.0]);
        settle(z);
    }
    let at = Vec3::new(-1.0, 1.5, 104.0);
    let op = EditOp::Place { kind: WALL, position: quantize_position(at), yaw: 16_384, state: 0 };
    let (_, wall) = edit(&mut p, 0, 1, 1, op);
    let g = ghosts(&p, 0, EAST, true);
    assert_eq!(east_applies(&mut p, WEST, &g), 0);
    assert_eq!(p.zones[1].0.objects().ghost_count(), 1);
    // From EAST's own side of the border, or claimed by a zone that does not serve the cell.
    let mut fake = g.objects[0];
    fake.id = EntityId::object(999, WALL).0;
    fake.position_m = [5.0, 1.5, 104.0];
    let own_side = ObjectGhosts { full: false, first: true, last: true, objects: vec![fake] };
    assert_eq!(east_applies(&mut p, WEST, &own_side), 1);
    let stranger = ObjectGhosts { full: false, first: true, last: true, objects: vec![g.objects[0]] };
    assert_eq!(east_applies(&mut p, pwn_partitioner::ZoneId(77), &stranger), 1);
    // Far from EAST's cells: refused too.
    let mut far = g.objects[0];
    far.id = EntityId::object(998, WALL).0;
    far.position_m = [-300.0, 1.5, 104.0];
    assert_eq!(
        east_applies(&mut p, WEST, &ObjectGhosts { full: false, first: true, last: true, objects: vec![far] }),
        1
    );
    // An older version never replaces a newer one.
    let mut old = g.objects[0];
    old.version = 0;
    old.position_m = [-1.0, 1.5, 110.0];
    east_applies(&mut p, WEST, &ObjectGhosts { full: false, first: true, last: true, objects: vec![old] });
    assert_eq!(p.zones[1].0.sim().object(EntityId(wall)).unwrap().position_m.z, 104.0);
    // WEST's next full listing no longer names it (removed while a message was lost, say).
    let empty = ObjectGhosts { full: true, first: true, last: true, objects: vec![] };
    assert_eq!(east_applies(&mut p, WEST, &empty), 0);
    assert_eq!(p.zones[1].0.objects().ghost_count(), 0);
    assert_eq!(p.zones[1].0.sim().object_count(), 0);
}

#[test]
fn zobj_7_a_block_pushed_across_the_border_changes_hands_exactly_once() {
    use common::objects::BLOCK;
    let mut p = pair(world());
    {
        let (z, t) = &mut p.zones[0];
        place(z, t, 1, [-3.0, 1.0, 100.0]);
        settle(z);
    }
    let op = EditOp::Place { kind: BLOCK, position: quantize_position(Vec3::new(-2.0, 0.5, 104.0)), yaw: 0, state: 0 };
    let (outcome, block) = edit(&mut p, 0, 1, 1, op);
    assert_eq!(outcome, EditOutcome::Committed);
    let block = EntityId(block);
    let bounds = Bounds { origin_m: world().origin_m, size_m: world().size_m };
    let west_cells: Vec<(CellKey, u64)> =
        p.epochs.iter().filter(|(_, n, _)| *n == WEST).map(|(c, _, e)| (*c, e.0)).collect();
    // Just over the border, within the hysteresis: it stays WEST's.
    let (west, wt) = &mut p.zones[0];
    west.set_object_motion(block, Vec3::new(1.0, 0.5, 104.0), Vec3::ZERO).unwrap();
    assert!(west.object_border_pass(wt).is_empty());
    // Pushed (here: put) well into EAST's cell.
    west.set_object_motion(block, Vec3::new(6.0, 0.5, 104.0), Vec3::ZERO).unwrap();
    let departures = west.object_border_pass(wt);
    assert_eq!(departures.len(), 1, "{departures:?}");
    let d = departures[0];
    assert_eq!(d.node, EAST.0);
    // A departure the store refuses (a stale epoch for the taking cell): it stays in WEST.
    let mut stale = d;
    stale.to.1 = 999;
    let refused = pwn_zone_node::objects::commit_departure(&p.store, &stale, &west_cells, &bounds);
    assert!(refused.is_err());
    // The real one commits once; a retry finds it done; WEST lets go once.
    let committed = pwn_zone_node::objects::commit_departure(&p.store, &d, &west_cells, &bounds);
    let again = pwn_zone_node::objects::commit_departure(&p.store, &d, &west_cells, &bounds);
    assert_eq!(committed, again);
    let west = &mut p.zones[0].0;
    let h = west.object_departed(&d, &committed).expect("the handoff message");
    assert!(west.object_departed(&d, &again).is_none(), "handed over twice");
    assert!(west.sim().object(block).is_none() && west.objects().get(block).is_none());
    // EAST adopts it as its own, at the store's version.
    assert!(common::objects::adopt(&mut p, 1, &h));
    assert!(!common::objects::adopt(&mut p, 1, &h), "adopted twice");
    let east = &mut p.zones[1].0;
    assert_eq!(east.objects().get(block).map(|m| m.version), Some(2));
    assert!(!east.objects().is_ghost(block));
    // The store holds it once, in EAST's cell: a fresh EAST loads it, a fresh WEST does not.
    let east_cells: Vec<CellKey> = p.epochs.iter().filter(|(_, n, _)| *n == EAST).map(|(c, _, _)| *c).collect();
    let mut fresh_east = pwn_zone_node::zone::Zone::new(
        pwn_sim::Sim::new(world(), pwn_sim::SimConfig::default(), 1).unwrap(),
        Default::default(),
    );
    let mut fresh_west = pwn_zone_node::zone::Zone::new(
        pwn_sim::Sim::new(world(), pwn_sim::SimConfig::default(), 1).unwrap(),
        Default::default(),
    );
    for c in &east_cells {
        fresh_east.load_objects(&p.store, *c).unwrap();
    }
    for (c, _) in &west_cells {
        fresh_west.load_objects(&p.store, *c).unwrap();
    }
    assert!(fresh_east.sim().object(block).is_some());
    assert!(fresh_west.sim().object(block).is_none());
    let audit = p.store.transact(|t| pwn_store::audit::audit(t)).unwrap();
    assert!(audit.clean(), "{audit:?}");
}
