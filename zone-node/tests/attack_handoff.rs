//! Attacks on the change of hands of dynamic world objects (`[zobj-7]`, `[obj-5]`) on the
//! two-zone fixture (WEST x < 0, EAST the rest, one store).

mod common;

use common::objects::{BLOCK, Served, adopt, edit, objects_world as world};
use common::{EAST, Pair, WEST, pair, place};
use glam::Vec3;
use pwn_proto::{EditObject, EditOp, EditOutcome, HandoffObject};
use pwn_sim::EntityId;
use pwn_sim::quantize::quantize_position;
use pwn_store::keys::CellKey;
use pwn_store::objects::Bounds;
use pwn_zone_node::objects::{DEPARTURE_RETRY_TICKS, commit_departure};
use pwn_zone_node::zone::Zone;

fn settle(zone: &mut Zone) {
    for _ in 0..20 {
        zone.tick();
    }
}

fn bounds() -> Bounds {
    Bounds { origin_m: world().origin_m, size_m: world().size_m }
}

fn cells_of(p: &Pair, node: pwn_partitioner::ZoneId) -> Vec<(CellKey, u64)> {
    p.epochs.iter().filter(|(_, n, _)| *n == node).map(|(c, _, e)| (*c, e.0)).collect()
}

/// A pair with player 1 in WEST and a block WEST placed at (-2, 0.5, 104).
fn with_block() -> (Pair, EntityId) {
    let mut p = pair(world());
    {
        let (z, t) = &mut p.zones[0];
        place(z, t, 1, [-3.0, 1.0, 100.0]);
        settle(z);
    }
    let op = EditOp::Place { kind: BLOCK, position: quantize_position(Vec3::new(-2.0, 0.5, 104.0)), yaw: 0, state: 0 };
    let (outcome, block) = edit(&mut p, 0, 1, 1, op);
    assert_eq!(outcome, EditOutcome::Committed);
    (p, EntityId(block))
}

/// WEST hands the block to EAST (put at x = 6); returns the message EAST got.
fn west_to_east(p: &mut Pair, block: EntityId) -> HandoffObject {
    let west_cells = cells_of(p, WEST);
    let (west, wt) = &mut p.zones[0];
    west.set_object_motion(block, Vec3::new(6.0, 0.5, 104.0), Vec3::ZERO).unwrap();
    let d = west.object_border_pass(wt);
    assert_eq!(d.len(), 1);
    let r = commit_departure(&p.store, &d[0], &west_cells, &bounds());
    assert!(r.is_ok(), "{r:?}");
    let h = p.zones[0].0.object_departed(&d[0], &r).unwrap();
    assert!(adopt(p, 1, &h));
    h
}

fn simulated_by(p: &Pair, id: EntityId) -> Vec<&'static str> {
    let mut out = Vec::new();
    if p.zones[0].0.objects().get(id).is_some() {
        out.push("WEST");
    }
    if p.zones[1].0.objects().get(id).is_some() {
        out.push("EAST");
    }
    out
}

fn stored(p: &Pair, id: EntityId) -> pwn_store::objects::ObjectRecord {
    p.store.transact(|t| pwn_store::objects::get(t, id.0)).unwrap().unwrap()
}

#[test]
fn a_replayed_handoff_is_not_adopted_after_the_object_came_back() {
    let (mut p, block) = with_block();
    let h = west_to_east(&mut p, block);
    // EAST hands it back to WEST (v3).
    let east_cells = cells_of(&p, EAST);
    let (east, et) = &mut p.zones[1];
    east.set_object_motion(block, Vec3::new(-6.0, 0.5, 104.0), Vec3::ZERO).unwrap();
    let d = east.object_border_pass(et);
    assert_eq!(d.len(), 1, "{d:?}");
    let r = commit_departure(&p.store, &d[0], &east_cells, &bounds());
    assert!(r.is_ok(), "{r:?}");
    let back = p.zones[1].0.object_departed(&d[0], &r).unwrap();
    assert!(adopt(&mut p, 0, &back));
    assert_eq!(simulated_by(&p, block), vec!["WEST"]);
    // The first message again (a duplicate, a replay): EAST's cell and epoch still match, so the
    // shell's checks pass; EAST must not take the object back.
    let adopted = adopt(&mut p, 1, &h);
    assert!(
        !adopted,
        "EAST adopted a replayed v{} handoff; simulated by {:?}; store at v{}",
        h.object.version,
        simulated_by(&p, block),
        stored(&p, block).version
    );
}

#[test]
fn a_handoff_the_store_does_not_back_is_not_adopted() {
    // WEST owns the block (store: v1, in WEST's cell); nothing was committed. A neighbour's
    // HandoffObject naming EAST's cell and epoch (the shell does not check who sent it nor the
    // store) must not make EAST simulate it too.
    let (mut p, block) = with_block();
    let east_cell = p.zones[1].1.tree().leaf_at(6.0, 104.0);
    let h = HandoffObject {
        object: pwn_proto::WireObject {
            id: block.0,
            state: 0,
            version: 2,
            removed: false,
            position_m: [6.0, 0.5, 104.0],
            rotation: [0.0, 0.0, 0.0, 1.0],
        },
        owner: 1,
        linvel_mps: [0.0; 3],
        angvel_rps: [0.0; 3],
        to_cell: pwn_proto::WireCell { level: east_cell.level, path: east_cell.path },
        to_epoch: p.epoch_of(east_cell),
    };
    let adopted = adopt(&mut p, 1, &h);
    assert!(
        !adopted,
        "EAST adopted an object the store has at v{} in WEST's cell; simulated by {:?}",
        stored(&p, block).version,
        simulated_by(&p, block)
    );
}

#[test]
fn a_late_handoff_after_the_taker_loaded_the_cell_is_not_adopted_twice() {
    let (mut p, block) = with_block();
    let west_cells = cells_of(&p, WEST);
    let (west, wt) = &mut p.zones[0];
    west.set_object_motion(block, Vec3::new(6.0, 0.5, 104.0), Vec3::ZERO).unwrap();
    let d = west.object_border_pass(wt);
    let r = commit_departure(&p.store, &d[0], &west_cells, &bounds());
    let h = p.zones[0].0.object_departed(&d[0], &r).unwrap();
    let east_cell = p.zones[1].1.tree().leaf_at(6.0, 104.0);
    p.zones[1].0.load_objects(&p.store, east_cell).unwrap();
    let n = p.zones[1].0.sim().object_count();
    assert!(!adopt(&mut p, 1, &h));
    assert_eq!(p.zones[1].0.sim().object_count(), n);
    assert_eq!(simulated_by(&p, block), vec!["EAST"]);
}

#[test]
fn an_edit_committed_before_the_departure_leaves_one_owner() {
    let (mut p, block) = with_block();
    let epochs = p.epochs.clone();
    let west_cells = cells_of(&p, WEST);
    // The player's SetState is checked (reserved) while the block is still in WEST...
    let v = {
        let (west, wt) = &mut p.zones[0];
        let served = Served { territory: wt, epochs: &epochs, me: WEST };
        let req = EditObject { request: 2, op: EditOp::SetState { object: block.0, state: 0 } };
        west.check_edit(&served, EntityId(1), &req).unwrap()
    };
    // ...the block is then pushed across and departs while the edit is pending.
    let (west, wt) = &mut p.zones[0];
    west.set_object_motion(block, Vec3::new(6.0, 0.5, 104.0), Vec3::ZERO).unwrap();
    let d = west.object_border_pass(wt);
    assert_eq!(d.len(), 1);
    // The edit commits first (v2); the departure (expects v1) must be refused.
    let outcome = pwn_zone_node::objects::commit(&p.store, &v, &bounds());
    assert!(outcome.is_ok(), "{outcome:?}");
    let r = commit_departure(&p.store, &d[0], &west_cells, &bounds());
    assert!(r.is_err(), "departure committed over a newer edit: {r:?}");
    {
        let (west, wt) = &mut p.zones[0];
        let served = Served { territory: wt, epochs: &epochs, me: WEST };
        west.finish_edit(&served, &v, &outcome);
    }
    assert!(p.zones[0].0.object_departed(&d[0], &r).is_none());
    assert_eq!(simulated_by(&p, block), vec!["WEST"]);
    // It retries a second later, at the edit's version, and hands over once.
    let (west, wt) = &mut p.zones[0];
    assert!(west.object_border_pass(wt).is_empty(), "retried at once");
    for _ in 0..=DEPARTURE_RETRY_TICKS {
        west.tick();
    }
    west.set_object_motion(block, Vec3::new(6.0, 0.5, 104.0), Vec3::ZERO).unwrap();
    let d = west.object_border_pass(wt);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].version, 2);
    let r = commit_departure(&p.store, &d[0], &west_cells, &bounds());
    assert!(r.is_ok(), "{r:?}");
    let h = p.zones[0].0.object_departed(&d[0], &r).unwrap();
    assert!(adopt(&mut p, 1, &h));
    assert_eq!(simulated_by(&p, block), vec!["EAST"]);
    assert_eq!(stored(&p, block).version, 3);
}

#[test]
fn a_departure_when_the_giver_lost_its_lease_is_refused_and_the_object_stays() {
    let (mut p, block) = with_block();
    let west_cells = cells_of(&p, WEST);
    let (west, wt) = &mut p.zones[0];
    west.set_object_motion(block, Vec3::new(6.0, 0.5, 104.0), Vec3::ZERO).unwrap();
    let d = west.object_border_pass(wt);
    // The cell the record is in goes to another node before the commit.
    let from = p.zones[0].1.tree().leaf_at(-2.0, 104.0);
    p.store.transact(|t| pwn_store::fence::grant_lease(t, from, 9)).unwrap();
    let r = commit_departure(&p.store, &d[0], &west_cells, &bounds());
    assert!(r.is_err(), "{r:?}");
    assert!(p.zones[0].0.object_departed(&d[0], &r).is_none());
    assert_eq!(stored(&p, block).version, 1);
}
