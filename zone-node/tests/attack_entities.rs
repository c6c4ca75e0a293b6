//! Hostile neighbour messages, lost leases and checkpoints against crates and projectiles
//! crossing borders (`crate::border_crates`, `crate::border_shots`, `[persist-6]`): each test
//! states what the design promises (one owner per entity, no duplication or loss, bad input
//! refused and counted, never a panic) and fails while the change lets it break.

use glam::Vec3;
use pwn_proto::{HandoffProjectile, WireCrate, WireProjectile};
use pwn_sim::{CrateMode, EntityId, InputSeq, Projectile, Sim, SimConfig};
use pwn_zone_node::border_crates::CrateDeparture;
use pwn_zone_node::border_shots::SHOTS_REMEMBERED_MAX;
use pwn_zone_node::persist::{
    CellCheckpoint, PlayerState, SimBounds, checkpoint_cell, commit_crate_departure, load_cell_crates,
};
use pwn_zone_node::zone::{Zone, ZoneConfig};

mod common;
use common::*;

/// Shoves the west's crate east and ticks the west until it departs (`[crate-2]`).
fn shove_until_departure(p: &mut Pair) -> CrateDeparture {
    let id = EntityId::world_entity(0);
    let [(w, wt), _] = &mut p.zones;
    let (at, rot, _, _) = w.sim().crate_state(id).unwrap();
    assert!(w.restore_crate(id, at, rot, Vec3::new(12.0, 0.0, 0.0), Vec3::ZERO));
    loop {
        w.tick();
        if let Some(d) = w.crate_border_pass(wt).pop() {
            return d;
        }
        assert!(w.sim().tick().0 < 200, "the crate never crossed");
    }
}

fn finite_crate(zone: &Zone, id: EntityId) -> bool {
    zone.sim()
        .crate_state(id)
        .is_some_and(|(p, r, v, w)| p.is_finite() && r.is_finite() && v.is_finite() && w.is_finite())
}

/// `[crate-3]`, DESIGN "Bad input ... never corrupts stored state": a `HandoffCrate` whose
/// rotation is the zero quaternion passes the codec (every float is finite) and the shell's
/// checks (right cell, epoch and sender). The taking zone must refuse it (counted) or at least
/// keep the crate's state finite: `restore_crate` normalizes (0, 0, 0, 0) into NaN, and the
/// crate then poisons the physics, its ghosts (refused by the neighbours' codec) and its
/// checkpoint record.
#[test]
fn attack_a_crate_handed_over_with_a_zero_rotation_is_refused_or_stays_finite() {
    let mut p = pair(field());
    let id = EntityId::world_entity(0);
    let d = shove_until_departure(&mut p);
    let from_rect = p.zones[0].1.tree().rect(d.from);
    let bounds = SimBounds::of(p.zones[0].0.sim());
    commit_crate_departure(&p.store, &d, p.epoch_of(d.from), from_rect, &bounds).unwrap();
    p.zones[0].0.crate_departed(id, WEST);
    let mut h = d.message();
    h.state.rotation = [0.0; 4];
    assert!(h.state.is_finite(), "the codec lets it through");
    let e = &mut p.zones[1].0;
    e.join_clock(h.tick);
    let refused_before = e.crate_counters().refused;
    let taken = e.arrive_crate(&h);
    for _ in 0..5 {
        e.tick();
    }
    if taken {
        let state = e.sim().crate_state(id);
        assert!(finite_crate(e, id), "a zero rotation was taken and the crate is now {state:?}");
        let cell = e.crate_cell(id).unwrap();
        for c in e.crates_of(cell) {
            assert!(c.rotation.is_finite() && c.position.is_finite(), "its checkpoint would store {c:?}");
        }
    } else {
        assert_eq!(e.crate_counters().refused, refused_before + 1, "refused and counted");
    }
}

/// `[crate-4]`: the same zero rotation in a crate ghost batch. The ghost is a kinematic body
/// players collide with; a player standing against it must not end up with a non-finite
/// position (and the ghost itself must stay finite, or be refused and counted).
#[test]
fn attack_a_crate_ghost_with_a_zero_rotation_does_not_poison_the_players_near_it() {
    let mut p = pair(field());
    let id = EntityId::world_entity(0);
    let e = &mut p.zones[1].0;
    for _ in 0..5 {
        e.tick();
    }
    let player = EntityId(7);
    let state = PlayerState { id: player, position: Vec3::new(8.0, 1.0, 100.0), yaw_rad: 0.0, health: 100 };
    e.join_at(player, state.character(e.sim().config())).unwrap();
    let et = &p.zones[1].1;
    e.set_player_cell(player, et.tree().leaf_at(8.0, 100.0));
    let ghost = WireCrate {
        id: id.0,
        position_m: [8.0, 1.0, 100.0],
        rotation: [0.0; 4],
        linvel_mps: [0.0; 3],
        angvel_rps: [0.0; 3],
    };
    let refused_before = e.crate_counters().refused;
    let tick = e.sim().tick().0;
    e.apply_crate_ghosts(WEST, tick, true, &[ghost]);
    let held = e.sim().crate_mode(id) == Some(CrateMode::Ghost);
    for _ in 0..10 {
        e.tick();
    }
    let c = e.sim().character(player).unwrap();
    assert!(c.position_m.is_finite() && c.velocity_mps.is_finite(), "the player next to the ghost: {c:?}");
    if held {
        assert!(finite_crate(e, id), "the ghost held: {:?}", e.sim().crate_state(id));
    } else {
        assert_eq!(e.crate_counters().refused, refused_before + 1);
    }
}

/// `[crate-3]`, DESIGN "impossible moves get a drop": a handed-over player faster than
/// `SPEED_MAX_MPS` is refused (`[handoff-4]`) and a projectile faster than the muzzle allows is
/// refused (`[shot-2]`); a handed-over crate at a million metres a second is taken and
/// simulated. (Today it does not fly off only because the arrival drops every handed velocity,
/// see `crate_3_an_arriving_crate_keeps_the_velocity_it_was_handed_at`; fix that and it leaves
/// the world on its next tick.)
#[test]
fn attack_a_crate_handed_over_at_an_impossible_speed_is_refused() {
    let mut p = pair(field());
    let id = EntityId::world_entity(0);
    let d = shove_until_departure(&mut p);
    let from_rect = p.zones[0].1.tree().rect(d.from);
    let bounds = SimBounds::of(p.zones[0].0.sim());
    commit_crate_departure(&p.store, &d, p.epoch_of(d.from), from_rect, &bounds).unwrap();
    p.zones[0].0.crate_departed(id, WEST);
    let mut h = d.message();
    h.state.linvel_mps = [1.0e6, 0.0, 0.0];
    let e = &mut p.zones[1].0;
    e.join_clock(h.tick);
    let before = e.crate_counters().refused;
    let taken = e.arrive_crate(&h);
    e.tick();
    let at = e.sim().crate_state(id).map(|(p, ..)| p);
    assert!(!taken, "a crate at 1e6 m/s was taken (now at {at:?})");
    assert_eq!(e.crate_counters().refused, before + 1);
}

/// DESIGN invariant 2 ("exactly one authoritative owner"), `[crate-1]`, `[crate-2]`: a zone
/// loses the cell a crate is departing from (its lease moved; the shell calls
/// `leave_crates_of`, which only looks at owned crates), then the handoff's commit reports an
/// error other than its own lease being fenced (here: the taking cell's lease moved; a store
/// outage does the same), so the shell calls `crate_departure_failed`. The crate is then
/// simulated again "as it was", for a cell this zone no longer serves, while the cell's new
/// owner loads it from the store: two zones simulate one crate.
#[test]
fn attack_a_departure_failing_after_its_cell_was_lost_is_not_simulated_by_the_old_zone() {
    let mut p = pair(field());
    let id = EntityId::world_entity(0);
    let d = shove_until_departure(&mut p);
    let from_rect = p.zones[0].1.tree().rect(d.from);
    let bounds = SimBounds::of(p.zones[0].0.sim());
    // The taking cell's lease moved on before the commit: fenced on `to`, not on `from`.
    p.store.transact(|t| pwn_store::fence::grant_lease(t, d.to, 8)).unwrap();
    let r = commit_crate_departure(&p.store, &d, p.epoch_of(d.from), from_rect, &bounds);
    assert!(
        matches!(&r, Err(pwn_store::ownership::OwnershipError::Store(pwn_store::StoreError::Fenced { cell, .. }))
            if *cell == d.to.to_string()),
        "{r:?}"
    );
    // Before the tick hears of the outcome, the world server's map says the west lost its cell
    // (node 9 took it over).
    let lease = p.store.transact(|t| pwn_store::fence::grant_lease(t, d.from, 9)).unwrap();
    let w = &mut p.zones[0].0;
    w.leave_crates_of(&[d.from]);
    // The shell (`on_crates_committed`): not this zone's lease fenced, so "it stays".
    w.crate_departure_failed(id);
    // The cell's new owner loads its crates, as a zone gaining a cell does.
    let loaded = load_cell_crates(&p.store, d.from, lease.epoch, from_rect, &p.placed).unwrap();
    assert!(loaded.iter().any(|(c, _)| *c == id), "the store names the cell's new owner");
    let w = &p.zones[0].0;
    assert_ne!(
        w.sim().crate_mode(id),
        Some(CrateMode::Simulated),
        "the west simulates a crate of a cell it lost (recorded for {:?}); node 9 does too",
        w.crate_cell(id)
    );
    assert_eq!(w.crate_cell(id), None);
}

/// `[persist-6]` ("indexes it inside that cell ... so two cells never both list one crate"):
/// a crate still owned by the west while within the hysteresis past the border (0 < x < 2) is
/// indexed at the nearest point of the west's rectangle, clamped to `max[0]` = 0.0; but the
/// rectangle is half-open, and x = 0.0 is the east's first quadkey. The west's next checkpoint
/// (the crate back at x = -0.3) clears only the west's range, so the old entry stays in the
/// east's range beside the new one: the crate is indexed twice and `pwn audit` reports it.
#[test]
fn attack_a_crate_within_the_hysteresis_past_the_border_is_indexed_inside_its_own_cell() {
    let p = pair(field());
    let id = EntityId::world_entity(0);
    let w = &p.zones[0].0;
    let wt = &p.zones[0].1;
    let bounds = SimBounds::of(w.sim());
    let cell = wt.tree().leaf_at(-6.0, 100.0);
    let rect = wt.tree().rect(cell);
    assert_eq!(rect.max[0], 0.0);
    let (_, rotation, _, _) = w.sim().crate_state(id).unwrap();
    let at = |x: f32| pwn_zone_node::persist::CrateState {
        id,
        position: Vec3::new(x, 0.5, 100.0),
        rotation,
        linvel: Vec3::ZERO,
        angvel: Vec3::ZERO,
    };
    let checkpoint = |x: f32| {
        let c = CellCheckpoint {
            cell,
            epoch: p.epoch_of(cell),
            crates: vec![at(x)],
            owners_checked: true,
            rect_m: Some([rect.min[0], rect.min[1], rect.max[0], rect.max[1]]),
            ..CellCheckpoint::default()
        };
        checkpoint_cell(&p.store, &c, &bounds).unwrap();
    };
    // 0.3 m past the border: still the west's (inside the 2 m hysteresis).
    assert!(matches!(wt.place(cell, 0.3, 100.0), pwn_zone_node::territory::Placement::Here(c) if c == cell));
    checkpoint(0.3);
    let (b, e) = cell.entity_at_range();
    let in_cell = p.store.transact(|t| t.get_range(&b, &e, pwn_store::RangeOptions::default())).unwrap();
    let (b, e) = pwn_store::keys::subspace("entity_at").range();
    let everywhere = p.store.transact(|t| t.get_range(&b, &e, pwn_store::RangeOptions::default())).unwrap();
    // Back inside the west; its next checkpoint.
    checkpoint(-0.3);
    let report = p.store.transact(|t| pwn_store::audit::audit(t)).unwrap();
    assert!(report.clean(), "{report:?}");
    assert_eq!(
        in_cell.len(),
        everywhere.len(),
        "the west's checkpoint indexed its crate outside the west's range: {} of {} entries inside",
        in_cell.len(),
        everywhere.len()
    );
}

fn shot(owner: u64, position: [f32; 3], ticks_left: u16) -> WireProjectile {
    let cfg = SimConfig::default();
    let p = Projectile::fired(
        EntityId::projectile(EntityId(owner), InputSeq(1)),
        EntityId(owner),
        Vec3::from(position),
        Vec3::X,
        &cfg,
    );
    WireProjectile { ticks_left, ..WireProjectile::of(&p) }
}

/// `[shot-2]`, DESIGN "a hit on a ghost ... applied exactly once (keyed by projectile id)": a
/// replayed `HandoffProjectile` is refused only while the zone remembers the projectile id,
/// and it remembers `SHOTS_REMEMBERED_MAX` ids whatever their age, while a neighbour may hand
/// over any number of projectiles (the per-shooter limit is per `owner` field, which the
/// sender chooses freely, and nothing bounds the total). A neighbour that floods more than
/// that many within `SHOT_AGE_MAX_TICKS` makes the zone forget a projectile that already flew
/// here, and its replay flies (and can hit) again.
#[test]
fn attack_a_projectile_replayed_after_a_flood_is_still_refused() {
    let mut e = Zone::new(Sim::new(field(), SimConfig::default(), 1).unwrap(), ZoneConfig::default());
    e.join_clock(100);
    // One tick left: it expires on this zone's next tick, after flying here once.
    let first = HandoffProjectile { tick: 100, projectile: shot(1, [50.0, 30.0, 0.0], 1) };
    assert!(e.arrive_projectile(&first));
    e.tick();
    assert!(e.sim().projectile(EntityId(first.projectile.id)).is_none(), "it flew and ended");
    assert!(!e.arrive_projectile(&first), "a replay right away is refused");
    let now = e.sim().tick().0;
    for i in 0..SHOTS_REMEMBERED_MAX as u64 {
        let h = HandoffProjectile { tick: now, projectile: shot(10_000 + i, [50.0, 30.0, 20.0], 60) };
        e.arrive_projectile(&h);
    }
    let in_flight = e.sim().projectiles().count();
    assert!(
        !e.arrive_projectile(&first),
        "the replay flew again after a flood ({in_flight} projectiles from one neighbour in flight)"
    );
}

/// `[crate-3]` ("an arriving crate is simulated from the state it was handed at") and the
/// DESIGN's handoff ("writes the entity's state at the handoff tick; the new owner promotes its
/// ghost"): the taking zone holds the crate as a kinematic ghost (or leaves it out, also
/// kinematic), and `set_crate_mode` restores the handed state *before* making the body dynamic;
/// rapier ignores `set_linvel`/`set_angvel` on a kinematic position-based body, so the crate
/// keeps whatever velocity its ghost body had and loses the one it was handed. A crate shoved
/// across a border stops dead at the border (the same path restores crates loaded from the
/// store and departures put back after a failed commit).
#[test]
fn crate_3_an_arriving_crate_keeps_the_velocity_it_was_handed_at() {
    let mut p = pair(field());
    let id = EntityId::world_entity(0);
    let d = shove_until_departure(&mut p);
    assert!(d.state.linvel.x > 1.0, "it was moving east when it left: {:?}", d.state.linvel);
    let from_rect = p.zones[0].1.tree().rect(d.from);
    let bounds = SimBounds::of(p.zones[0].0.sim());
    commit_crate_departure(&p.store, &d, p.epoch_of(d.from), from_rect, &bounds).unwrap();
    p.zones[0].0.crate_departed(id, WEST);
    let e = &mut p.zones[1].0;
    e.join_clock(d.tick);
    assert!(e.arrive_crate(&d.message()));
    let (at, _, linvel, angvel) = e.sim().crate_state(id).unwrap();
    assert_eq!(at, d.state.position);
    assert_eq!((linvel, angvel), (d.state.linvel, d.state.angvel), "the handed velocity was dropped");
}
