//! Projectiles and crates across a border between two zone cores over one store (no network):
//! a shot flies on into the neighbour's cell and hits there once (`[shot-1]`..`[shot-3]`); each
//! crate is simulated by exactly one zone, the one whose cell owns it in the store, and one
//! pushed across the border is handed over exactly once, fenced by both leases
//! (`[crate-1]`..`[crate-4]`, `[persist-6]`).

use glam::Vec3;
use pwn_partitioner::ZoneId;
use pwn_proto::{GameEvent, InputBatch, WireInput};
use pwn_sim::{Buttons, CrateMode, EntityId, InputSeq, PlayerInput, SimConfig, WorldDesc};
use pwn_store::keys::CellKey;
use pwn_store::ownership::Handoff;
use pwn_zone_node::persist::{CellCheckpoint, SimBounds, checkpoint_cell, commit_crate_departure, load_cell_crates};

mod common;
use common::*;

#[test]
fn shot_1_a_shot_flies_on_into_the_neighbour_and_hits_there_once() {
    let Pair { zones: mut pair, .. } = pair(WorldDesc { crates: Vec::new(), ..field() });
    let (shooter, target, watcher) = (EntityId(1), EntityId(2), EntityId(3));
    {
        let [(w, wt), (e, et)] = &mut pair;
        place(w, wt, shooter.0, [-3.0, 1.0, 100.0]);
        // 120 m into the east: beyond the ghost margin, so never a ghost in the west.
        place(e, et, target.0, [120.0, 1.0, 100.0]);
        place(e, et, watcher.0, [20.0, 1.0, 110.0]);
    }
    for _ in 0..30 {
        pair[0].0.tick();
        pair[1].0.tick();
    }
    assert!(!pair[0].0.sim().is_ghost(target));
    let health_before = pair[1].0.sim().character(target).unwrap().health;
    let (mut handed, mut fired_seen, mut hits) = (Vec::new(), false, 0);
    for seq in 1..=80u32 {
        let fire = PlayerInput {
            seq: InputSeq(seq),
            yaw_rad: std::f32::consts::FRAC_PI_2,
            pitch_rad: 0.012,
            buttons: Buttons(if seq == 1 { Buttons::FIRE } else { 0 }),
            ..PlayerInput::default()
        };
        pair[0].0.on_inputs(shooter, &InputBatch { ack_tick: 0, inputs: vec![WireInput::from_input(&fire)] }, 0);
        let out = pair[0].0.tick();
        // `[shot-3]`: the shot, fired near the border, is told to the east's players near it.
        for (_, e) in pair[0].0.border_events(&out.report, &pair[0].1) {
            pair[1].0.apply_border_event(&e);
        }
        let [(w, wt), (e, _)] = &mut pair;
        for (node, h) in w.projectiles_leaving(wt) {
            assert_eq!(node, EAST);
            assert!(e.arrive_projectile(&h), "the east flies it on");
            handed.push(h);
        }
        let out = e.tick();
        fired_seen |= out.events.iter().any(|(p, ev)| *p == watcher && matches!(ev, GameEvent::Fired { .. }));
        hits += out
            .events
            .iter()
            .filter(|(p, ev)| *p == target && matches!(ev, GameEvent::Hit { target: t, .. } if *t == target.0))
            .count();
        if hits > 0 {
            break;
        }
    }
    assert_eq!(handed.len(), 1, "handed over once");
    assert_eq!(pair[0].0.sim().projectiles().count(), 0, "the west flies it no more");
    assert!(fired_seen, "the east's player near the border saw the shot fired in the west");
    assert_eq!(hits, 1, "the shot hit the target in the east");
    let damage = SimConfig::default().projectile.damage;
    assert_eq!(pair[1].0.sim().character(target).unwrap().health, health_before - damage);
    // `[shot-2]`: the same handoff again (a replay) is refused and flies nowhere.
    assert!(!pair[1].0.arrive_projectile(&handed[0]));
    assert_eq!(pair[1].0.shot_counters().refused, 1);
    assert_eq!(pair[1].0.sim().projectiles().count(), 0);
}

#[test]
fn crate_1_each_crate_is_simulated_by_the_zone_whose_cell_owns_it() {
    let Pair { store, zones, .. } = pair(WorldDesc::arena());
    let n = WorldDesc::arena().crates.len();
    assert!(n > 1);
    for i in 0..n {
        let id = EntityId::world_entity(i as u32);
        let simulated: Vec<ZoneId> = [WEST, EAST]
            .into_iter()
            .zip(&zones)
            .filter(|(_, (z, _))| z.sim().crate_mode(id) == Some(CrateMode::Simulated))
            .map(|(n, _)| n)
            .collect();
        assert_eq!(simulated.len(), 1, "crate {i} is simulated by {simulated:?}");
        let owner = store.transact(|t| pwn_store::ownership::owner(t, id.0)).unwrap();
        let (zone, _) = &zones[if simulated[0] == WEST { 0 } else { 1 }];
        assert_eq!(owner, zone.crate_cell(id), "the store names the cell that simulates it");
    }
    let report = store.transact(|t| pwn_store::audit::audit(t)).unwrap();
    assert!(report.clean(), "{report:?}");
}

#[test]
fn crate_2_a_crate_pushed_across_the_border_is_handed_over_once() {
    let Pair { store, zones: mut pair, epochs, .. } = pair(field());
    let id = EntityId::world_entity(0);
    let epoch_of = |c: CellKey| epochs.iter().find(|(k, _, _)| *k == c).map(|(_, _, e)| e.0).unwrap();
    let bounds = SimBounds::of(pair[0].0.sim());
    for _ in 0..20 {
        pair[0].0.tick();
        pair[1].0.tick();
    }
    assert_eq!(pair[1].0.sim().crate_mode(id), Some(CrateMode::Away));
    let (at, rot, _, _) = pair[0].0.sim().crate_state(id).unwrap();
    // Shoved east at 12 m/s (it slides and slows on the ground).
    assert!(pair[0].0.restore_crate(id, at, rot, Vec3::new(12.0, 0.0, 0.0), Vec3::ZERO));
    let mut departures = Vec::new();
    for _ in 0..90 {
        pair[0].0.tick();
        pair[1].0.tick();
        let [(w, wt), (e, et)] = &mut pair;
        for d in w.crate_border_pass(wt) {
            let from_rect = wt.tree().rect(d.from);
            let done = commit_crate_departure(&store, &d, epoch_of(d.from), from_rect, &bounds).unwrap();
            assert_eq!(done, Handoff::Moved);
            w.crate_departed(id, WEST);
            assert!(e.arrive_crate(&d.message()));
            departures.push(d);
        }
        assert!(e.crate_border_pass(et).is_empty(), "it does not bounce back");
        // Crate ghosts both ways, as the zone links carry them each tick.
        let tick = w.sim().tick().0;
        let west = w.crate_ghost_batches(wt).remove(&EAST).unwrap_or_default();
        let east = e.crate_ghost_batches(et).remove(&WEST).unwrap_or_default();
        e.apply_crate_ghosts(WEST, tick, true, &west);
        w.apply_crate_ghosts(EAST, tick, true, &east);
    }
    assert_eq!(departures.len(), 1, "handed over exactly once");
    let d = departures[0];
    let (w, e) = (&pair[0].0, &pair[1].0);
    assert_eq!(e.sim().crate_mode(id), Some(CrateMode::Simulated));
    assert_eq!(e.crate_cell(id), Some(d.to));
    assert_eq!(w.sim().crate_mode(id), Some(CrateMode::Ghost), "the west holds it as the east's ghost");
    assert_eq!(w.crate_ghost_owner(id), Some(EAST));
    let (east_at, ..) = e.sim().crate_state(id).unwrap();
    let (west_at, ..) = w.sim().crate_state(id).unwrap();
    assert!(east_at.x > d.state.position.x, "the east simulated it on: {east_at} after {}", d.state.position);
    assert!(east_at.distance(west_at) < 0.5, "the ghost follows it: {east_at} vs {west_at}");
    assert_eq!(store.transact(|t| pwn_store::ownership::owner(t, id.0)).unwrap(), Some(d.to));
    // `[crate-3]`: a replay reaches neither side.
    assert!(!pair[1].0.arrive_crate(&d.message()));
    assert!(!pair[0].0.arrive_crate(&d.message()));
    // A checkpoint of every cell from both zones, then the audit: one owner, one index entry.
    for (zone, territory) in &pair {
        for (cell, node, epoch) in &epochs {
            if *node != territory.me() {
                continue;
            }
            let rect = territory.tree().rect(*cell);
            let c = CellCheckpoint {
                cell: *cell,
                epoch: epoch.0,
                crates: zone.crates_of(*cell),
                owners_checked: true,
                rect_m: Some([rect.min[0], rect.min[1], rect.max[0], rect.max[1]]),
                ..CellCheckpoint::default()
            };
            checkpoint_cell(&store, &c, &bounds).unwrap();
        }
    }
    let report = store.transact(|t| pwn_store::audit::audit(t)).unwrap();
    assert!(report.clean(), "{report:?}");
    assert_eq!(report.owned_entities, 1);
}

#[test]
fn crate_2_a_handoff_the_store_fences_leaves_the_crate_where_it_was() {
    let Pair { store, zones: mut pair, epochs, .. } = pair(field());
    let id = EntityId::world_entity(0);
    let bounds = SimBounds::of(pair[0].0.sim());
    let (at, rot, _, _) = pair[0].0.sim().crate_state(id).unwrap();
    assert!(pair[0].0.restore_crate(id, at, rot, Vec3::new(12.0, 0.0, 0.0), Vec3::ZERO));
    let [(w, wt), _] = &mut pair;
    let d = loop {
        w.tick();
        if let Some(d) = w.crate_border_pass(wt).pop() {
            break d;
        }
        assert!(w.sim().tick().0 < 200, "the crate never crossed");
    };
    assert_eq!(w.sim().crate_mode(id), Some(CrateMode::Ghost), "frozen while it departs");
    // The west's lease moved on meanwhile (it was presumed dead): the commit is fenced.
    store.transact(|t| pwn_store::fence::grant_lease(t, d.from, 9)).unwrap();
    let from_epoch = epochs.iter().find(|(c, _, _)| *c == d.from).unwrap().2.0;
    let r = commit_crate_departure(&store, &d, from_epoch, wt.tree().rect(d.from), &bounds);
    assert!(r.is_err());
    w.crate_departure_lost(id);
    assert_eq!(w.sim().crate_mode(id), Some(CrateMode::Away), "not this zone's to simulate any more");
    assert_eq!(store.transact(|t| pwn_store::ownership::owner(t, id.0)).unwrap(), Some(d.from));
}

#[test]
fn crate_1_a_crate_whose_handoff_message_was_lost_is_adopted_when_its_cell_is_read_again() {
    let Pair { store, zones: mut pair, epochs, .. } = pair(field());
    let id = EntityId::world_entity(0);
    let epoch_of = |c: CellKey| epochs.iter().find(|(k, _, _)| *k == c).map(|(_, _, e)| e.0).unwrap();
    let bounds = SimBounds::of(pair[0].0.sim());
    let (at, rot, _, _) = pair[0].0.sim().crate_state(id).unwrap();
    assert!(pair[0].0.restore_crate(id, at, rot, Vec3::new(12.0, 0.0, 0.0), Vec3::ZERO));
    let [(w, wt), (e, et)] = &mut pair;
    // A read of the west's cell asked for before the crate leaves, answered after.
    let read_at = w.sim().tick().0;
    let home = wt.tree().leaf_at(at.x, at.z);
    let stale = load_cell_crates(&store, home, epoch_of(home), wt.tree().rect(home), &[]).unwrap();
    assert!(stale.iter().any(|(c, _)| *c == id), "the read lists the crate as its cell's");
    let d = loop {
        w.tick();
        e.tick();
        if let Some(d) = w.crate_border_pass(wt).pop() {
            break d;
        }
    };
    commit_crate_departure(&store, &d, epoch_of(d.from), wt.tree().rect(d.from), &bounds).unwrap();
    w.crate_departed(id, WEST);
    // The west's old read still lists the crate as its cell's: not taken back.
    let stale: Vec<_> = stale.into_iter().filter(|(c, _)| *c == id).collect();
    assert_eq!(w.own_crates(d.from, &stale, read_at), 0);
    assert_ne!(w.sim().crate_mode(id), Some(CrateMode::Simulated));
    // The `HandoffCrate` never reached the east (a link or a zone went down): its next read of
    // the cell adopts what the store says is its own.
    assert_eq!(e.sim().crate_mode(id), Some(CrateMode::Away));
    let read_at = e.sim().tick().0;
    let crates = load_cell_crates(&store, d.to, epoch_of(d.to), et.tree().rect(d.to), &[]).unwrap();
    assert_eq!(e.own_crates(d.to, &crates, read_at), 1);
    assert_eq!(e.sim().crate_mode(id), Some(CrateMode::Simulated));
    assert_eq!(e.crate_cell(id), Some(d.to));
    // Read again, nothing changes: what it simulates is newer than the store.
    let crates = load_cell_crates(&store, d.to, epoch_of(d.to), et.tree().rect(d.to), &[]).unwrap();
    assert_eq!(e.own_crates(d.to, &crates, e.sim().tick().0), 0);
}
