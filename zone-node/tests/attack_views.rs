//! Attacks on the cheaper views (`pwn_zone_node::shared_bodies`, `ClientSnapshots::build_shared`,
//! the fit path of `[snap-2]`, the interest grid of r/8) and on the zone's tick across cores:
//!
//! - snapshots built with shared bodies are byte for byte those built without, over random
//!   worlds (entities leaving and returning with new states), random acknowledgements (lost,
//!   late, old, older than the shared ages, older than `BASELINE_AGE_MAX`), tick jumps and
//!   budgets from 0 up;
//! - when every needed update fits the budget with ids written as gaps, the snapshot is exactly
//!   the packing of every update (`delta::pack_one` in id order), and never over the budget;
//! - `[snap-5]` a client applying the snapshots holds, for every entity, either the state the
//!   server offered this tick or the one its baseline held (anything else means the server's
//!   record of the client's view drifted from the client's);
//! - a zone ticking on two or three threads gives the snapshots and events of one thread, with
//!   shooting, dying, respawning, crates pushed, ghosts, players joining and leaving;
//! - the interest grid answers as the linear scan with positions that are not finite or huge.

use glam::Vec3;
use proptest::prelude::*;
use pwn_proto::delta::{EntityState, Motion, ReceivedViews, pack_one, update_between};
use pwn_proto::{GhostState, InputBatch, Snapshot, WireCharacter, WireInput};
use pwn_sim::{Buttons, CharacterState, CrateDesc, EntityId, InputSeq, PlayerInput, Sim, SimConfig, WorldDesc};
use pwn_zone_node::interest::{Grid, nearest_linear};
use pwn_zone_node::shared_bodies::{NOT_SHARED, SharedBodies};
use pwn_zone_node::snapshots::{BASELINE_AGE_MAX, BuildScratch, Candidate, ClientSnapshots};
use pwn_zone_node::zone::{Zone, ZoneConfig};
use std::collections::BTreeMap;

const TICK_HZ: u32 = 30;

/// A small deterministic generator; every failing assertion prints the seed it started from.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
    fn below(&mut self, n: u32) -> u32 {
        self.next() % n.max(1)
    }
    fn one_in(&mut self, n: u32) -> bool {
        self.below(n) == 0
    }
}

fn random_state(rng: &mut Lcg, id: u64) -> EntityState {
    EntityState {
        id,
        position: [rng.below(4_000) as i32 - 2_000, rng.below(64) as i32, rng.below(4_000) as i32 - 2_000],
        velocity: [rng.below(200) as i16 - 100, 0, rng.below(200) as i16 - 100],
        yaw: rng.next() as u16,
        rotation: if rng.one_in(3) { rng.next() } else { 0 },
        health: rng.below(101) as u16,
    }
}

/// The next tick's state of an entity: often unchanged, else moved by its velocity (what
/// extrapolation predicts), nudged, or changed outright.
fn evolve(rng: &mut Lcg, s: &EntityState, elapsed: u64) -> EntityState {
    let mut n = *s;
    match rng.below(6) {
        0 | 1 => {}
        2 => {
            for k in 0..3 {
                n.position[k] = n.position[k].wrapping_add((i32::from(n.velocity[k]) * elapsed as i32) / 30);
            }
        }
        3 => {
            n.position[0] += rng.below(9) as i32 - 4;
            n.velocity[2] = n.velocity[2].wrapping_add(rng.below(5) as i16 - 2);
        }
        4 => n.health = n.health.saturating_sub(rng.below(30) as u16),
        _ => n = random_state(rng, s.id),
    }
    n
}

/// One simulated client: two builders fed the same acknowledgements (one packs every update
/// itself, one copies shared bodies), the client's received views, and its acks in flight.
struct Client {
    plain: ClientSnapshots,
    shared: ClientSnapshots,
    views: ReceivedViews,
    received: Vec<u64>,
    /// (ticks from now it arrives, tick it acknowledges)
    acks: Vec<(u32, u64)>,
    loss_in: u32,
    lag_max: u32,
}

/// What one run exercised, for the fixed-seed test to check that the attack reached its target.
#[derive(Default, Debug)]
struct Exercised {
    snapshots: usize,
    shared_bodies_usable: usize,
    fit_whole: usize,
    over_budget_cases: usize,
    full_after_baseline: usize,
    deltas: usize,
}

/// The updates a client holding `baseline` needs to reach `candidates`, packed in id order with
/// ids as gaps: what a snapshot with room for everything must carry.
fn pack_everything(baseline: &BTreeMap<u64, EntityState>, candidates: &[Candidate], motion: Motion) -> Vec<u8> {
    let mut sorted: Vec<&Candidate> = candidates.iter().collect();
    sorted.sort_by_key(|c| c.state.id);
    sorted.dedup_by_key(|c| c.state.id);
    let (mut out, mut prev) = (Vec::new(), None);
    for c in sorted {
        let base = baseline.get(&c.state.id);
        if let Some(u) = update_between(base, &c.state) {
            pack_one(&mut out, prev, base, &u, motion);
            prev = Some(c.state.id);
        }
    }
    out
}

/// Runs one random world for `ticks` ticks with `clients` clients; panics (naming `seed`) on
/// any difference between shared and per-client packing, any snapshot over its budget, a
/// snapshot with room for everything that is not exactly everything, or a client view that is
/// not what the server offered or the client held.
fn run_views(seed: u64, ticks: u32, clients: usize) -> Exercised {
    let mut rng = Lcg(seed);
    let mut ex = Exercised::default();
    // Ids close together (one-byte gaps), far apart (multi-byte gaps), or huge.
    let (id_base, id_step) = match rng.below(4) {
        0 => (1u64, 1u64),
        1 => (1, 3),
        2 => (100_000, 200),
        _ => (1 << 40, 1 << 20),
    };
    let population = 8 + rng.below(48) as u64;
    let mut world: BTreeMap<u64, EntityState> = BTreeMap::new();
    let mut shared = SharedBodies::default();
    // One set of work lists for every client, as one thread of the zone's pool has: nothing of
    // one client's build may leak into the next.
    let mut scratch = BuildScratch::default();
    let mut cs: Vec<Client> = (0..clients)
        .map(|_| Client {
            plain: ClientSnapshots::new(TICK_HZ),
            shared: ClientSnapshots::new(TICK_HZ),
            views: ReceivedViews::new(TICK_HZ),
            received: Vec::new(),
            acks: Vec::new(),
            loss_in: 2 + rng.below(8),
            lag_max: rng.below(5),
        })
        .collect();
    let mut tick = 0u64;
    for step in 0..ticks {
        // Ticks mostly one by one; sometimes a few skipped, rarely past `BASELINE_AGE_MAX`.
        let elapsed = match rng.below(40) {
            0 => BASELINE_AGE_MAX + 1 + u64::from(rng.below(4)),
            1..=3 => 2 + u64::from(rng.below(4)),
            _ => 1,
        };
        tick += elapsed;
        for k in 0..population {
            let id = id_base + k * id_step;
            match world.get(&id).copied() {
                Some(_) if rng.one_in(14) => {
                    world.remove(&id);
                }
                Some(s) => {
                    world.insert(id, evolve(&mut rng, &s, elapsed));
                }
                None if rng.one_in(5) => {
                    world.insert(id, random_state(&mut rng, id));
                }
                None => {}
            }
        }
        let now: Vec<EntityState> = world.values().copied().collect();
        shared.refill(tick, TICK_HZ, now.iter().copied());
        for (ci, c) in cs.iter_mut().enumerate() {
            // Acknowledgements arriving now, in any order (late ones included).
            let mut due = Vec::new();
            c.acks.retain_mut(|(wait, t)| {
                if *wait == 0 {
                    due.push(*t);
                    false
                } else {
                    *wait -= 1;
                    true
                }
            });
            for t in due {
                c.plain.ack(t);
                c.shared.ack(t);
            }
            // An old acknowledgement repeated (a reordered datagram).
            if rng.one_in(9)
                && let Some(t) = c.received.get(rng.below(c.received.len() as u32) as usize)
            {
                c.plain.ack(*t);
                c.shared.ack(*t);
            }
            // This client's interest: most of the world, in any order, priorities with ties.
            let mut candidates: Vec<Candidate> = Vec::new();
            for (i, s) in now.iter().enumerate() {
                if rng.one_in(7) {
                    continue;
                }
                let priority = match rng.below(4) {
                    0 => 1.0,
                    1 => f32::MAX,
                    _ => rng.below(1_000) as f32 / 100.0,
                };
                let index = if rng.one_in(20) { NOT_SHARED } else { i as u32 };
                candidates.push(Candidate { state: *s, priority, shared: index });
            }
            if rng.one_in(3) {
                candidates.reverse();
            }
            let budget = match rng.below(6) {
                0 => 0,
                1 => rng.below(12) as usize,
                2 | 3 => rng.below(200) as usize,
                4 => 980,
                _ => 100_000,
            };
            let mut for_plain = candidates.clone();
            let a = c.plain.build(tick, step, &mut for_plain, budget);
            let b = c.shared.build_shared(tick, step, &mut candidates, budget, Some(&shared), &mut scratch);
            let at = format!("seed {seed:#x}, client {ci}, step {step}, tick {tick}, budget {budget}");
            assert_eq!(a, b, "{at}: shared bodies changed the snapshot");
            check_delivery(&mut rng, c, &b, &candidates, &shared, budget, &at, &mut ex);
        }
    }
    ex
}

/// Delivers (or loses) snapshot `s` to client `c` and checks what it holds afterwards.
#[allow(clippy::too_many_arguments)]
fn check_delivery(
    rng: &mut Lcg,
    c: &mut Client,
    s: &Snapshot,
    candidates: &[Candidate],
    shared: &SharedBodies,
    budget: usize,
    at: &str,
    ex: &mut Exercised,
) {
    ex.snapshots += 1;
    // `[snap-2]` whichever path built it.
    assert!(s.updates.len() <= budget, "{at}: {} bytes over a budget of {budget}", s.updates.len());
    let baseline: BTreeMap<u64, EntityState> = if s.baseline_tick == 0 {
        if !c.received.is_empty() {
            ex.full_after_baseline += 1;
        }
        BTreeMap::new()
    } else {
        ex.deltas += 1;
        let held = c.views.shared(s.baseline_tick);
        let held = held.unwrap_or_else(|| panic!("{at}: the client no longer holds baseline {}", s.baseline_tick));
        held.iter().map(|(k, v)| (*k, *v)).collect()
    };
    let view = shared.view(s.tick, TICK_HZ, s.baseline_tick);
    for cand in candidates {
        if let Some(base) = baseline.get(&cand.state.id)
            && *base != cand.state
            && view.body(cand.shared, base, &cand.state).is_some()
        {
            ex.shared_bodies_usable += 1;
        }
    }
    let everything = pack_everything(&baseline, candidates, Motion::between(s.baseline_tick, s.tick, TICK_HZ));
    if everything.len() <= budget {
        ex.fit_whole += 1;
        assert_eq!(s.updates, everything, "{at}: room for every update, but not every update was sent");
    } else {
        ex.over_budget_cases += 1;
    }
    if rng.one_in(c.loss_in) {
        return;
    }
    let offered: BTreeMap<u64, EntityState> = candidates.iter().map(|c| (c.state.id, c.state)).collect();
    let got = c.views.apply(s).unwrap_or_else(|e| panic!("{at}: the client cannot apply the snapshot: {e:?}"));
    for (id, held) in got.iter() {
        let was = baseline.get(id);
        let now = offered.get(id);
        assert!(
            Some(held) == was || Some(held) == now,
            "{at}: [snap-5] the client holds {held:?} for {id}, neither the offered {now:?} nor its baseline {was:?}"
        );
    }
    if everything.len() <= budget && s.removed.len() < pwn_zone_node::snapshots::REMOVED_PER_SNAPSHOT_MAX {
        let held: Vec<EntityState> = got.values().copied().collect();
        let wanted: Vec<EntityState> = offered.values().copied().collect();
        assert_eq!(held, wanted, "{at}: everything fitted, yet the client's view is not what was offered");
    }
    c.received.push(s.tick);
    if !rng.one_in(c.loss_in) {
        let lag = rng.below(c.lag_max + 1);
        c.acks.push((lag, s.tick));
    }
}

/// The attack with a fixed seed, checking that it reaches what it attacks: bodies the shared
/// table could serve, snapshots with room for everything and without, full snapshots after a
/// baseline aged out.
#[test]
fn shared_bodies_give_exactly_the_bytes_of_per_client_packing() {
    let mut total = Exercised::default();
    for seed in 0..24u64 {
        let ex = run_views(0x5ea_0000 + seed, 120, 3);
        total.snapshots += ex.snapshots;
        total.shared_bodies_usable += ex.shared_bodies_usable;
        total.fit_whole += ex.fit_whole;
        total.over_budget_cases += ex.over_budget_cases;
        total.full_after_baseline += ex.full_after_baseline;
        total.deltas += ex.deltas;
    }
    assert!(total.shared_bodies_usable > 1_000, "the attack rarely reached shared bodies: {total:?}");
    assert!(total.fit_whole > 500 && total.over_budget_cases > 500, "both budget paths must run: {total:?}");
    assert!(total.full_after_baseline > 20, "baselines must age out: {total:?}");
    assert!(total.deltas > 1_000, "{total:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The same attack over seeds proptest chooses (it prints the failing one).
    #[test]
    fn shared_bodies_give_exactly_the_bytes_of_per_client_packing_for_any_seed(seed in any::<u64>()) {
        run_views(seed, 60, 2);
    }
}

/// Ticks of a zone's shared table that did not follow one another (a zone that skipped ahead,
/// or whose clock went back): the table never serves a body for another motion or base.
#[test]
fn shared_bodies_follow_the_ticks_they_were_packed_at_not_their_order() {
    let mut rng = Lcg(0x7a);
    let ids: Vec<u64> = (1..=30).collect();
    let mut states: BTreeMap<u64, EntityState> = ids.iter().map(|id| (*id, random_state(&mut rng, *id))).collect();
    let mut history: BTreeMap<u64, BTreeMap<u64, EntityState>> = BTreeMap::new();
    let mut shared = SharedBodies::default();
    // Forward, a jump, back in time (a rejoined clock), forward again over old tick numbers.
    for tick in [5u64, 6, 7, 40, 41, 3, 4, 5, 6, 7, 8, 41, 42, 43] {
        for s in states.values_mut() {
            *s = evolve(&mut rng, s, 1);
        }
        let now: Vec<EntityState> = states.values().copied().collect();
        shared.refill(tick, TICK_HZ, now.iter().copied());
        for (baseline_tick, past) in &history {
            let view = shared.view(tick, TICK_HZ, *baseline_tick);
            for (i, s) in now.iter().enumerate() {
                let Some(base) = past.get(&s.id) else { continue };
                let Some(body) = view.body(i as u32, base, s) else { continue };
                let mut expected = Vec::new();
                if let Some(u) = update_between(Some(base), s) {
                    pwn_proto::delta::pack_body(
                        &mut expected,
                        Some(base),
                        &u,
                        Motion::between(*baseline_tick, tick, TICK_HZ),
                    );
                }
                assert_eq!(body, &expected[..], "tick {tick}, baseline {baseline_tick}, entity {}", s.id);
            }
        }
        history.insert(tick, states.clone());
    }
}

/// A client whose acknowledgement arrives only after `BASELINE_AGE_MAX` ticks gets a full
/// snapshot (`[snap-6]`), with or without shared bodies, and the two stay identical afterwards.
#[test]
fn snap_6_an_aged_baseline_falls_back_to_full_with_and_without_shared_bodies() {
    let mut rng = Lcg(0x66);
    let mut world: Vec<EntityState> = (1..=20).map(|id| random_state(&mut rng, id)).collect();
    let mut shared = SharedBodies::default();
    let (mut plain, mut with) = (ClientSnapshots::new(TICK_HZ), ClientSnapshots::new(TICK_HZ));
    let mut views = ReceivedViews::new(TICK_HZ);
    let mut last = 0;
    for tick in 1..=(BASELINE_AGE_MAX + 12) {
        for s in world.iter_mut() {
            *s = evolve(&mut rng, s, 1);
        }
        shared.refill(tick, TICK_HZ, world.iter().copied());
        let mut cands: Vec<Candidate> =
            world.iter().enumerate().map(|(i, s)| Candidate { state: *s, priority: 1.0, shared: i as u32 }).collect();
        let a = plain.build(tick, 0, &mut cands.clone(), 980);
        let b = with.build_shared(tick, 0, &mut cands, 980, Some(&shared), &mut BuildScratch::default());
        assert_eq!(a, b, "tick {tick}");
        views.apply(&b).unwrap();
        // Acknowledged once, at tick 2, then never again (until the end).
        if tick == 2 {
            plain.ack(2);
            with.ack(2);
        }
        last = b.baseline_tick;
    }
    assert_eq!(last, 0, "a baseline older than BASELINE_AGE_MAX must not be used");
}

// ---------------------------------------------------------------------------------------------
// The zone on one thread and on a pool.

/// A flat field with a block of crates in the middle of the crowd.
fn crowd_world() -> WorldDesc {
    let mut w = WorldDesc::flat(600.0);
    w.spawn_points = vec![[0.0, 1.0, 0.0]];
    w.crates = (0..6)
        .map(|i| CrateDesc {
            center_m: [(i % 3) as f32 * 1.1 - 1.1, 0.5, (i / 3) as f32 * 1.1 - 0.55],
            half_extents_m: [0.5; 3],
            density_kgpm3: 40.0,
        })
        .collect();
    w
}

fn standing(sim: &Sim, x: f32, z: f32) -> CharacterState {
    let c = &sim.config().character;
    CharacterState::spawned_at(Vec3::new(x, c.half_height_m + c.radius_m + 0.05, z), sim.config())
}

/// Where player `k` of the crowd stands: rings around the crates.
fn crowd_spot(k: u64) -> (f32, f32) {
    let ring = 3.0 + (k / 20) as f32 * 1.4;
    let a = (k % 20) as f32 / 20.0 * std::f32::consts::TAU + (k / 20) as f32 * 0.17;
    (ring * a.cos(), ring * a.sin())
}

const GHOST_NODE: pwn_partitioner::ZoneId = pwn_partitioner::ZoneId(9);

fn crowd_zone(players: u64, threads: usize, cfg: ZoneConfig) -> Zone {
    let sim = Sim::new(crowd_world(), SimConfig::default(), 3).unwrap();
    let mut z = Zone::new(sim, ZoneConfig { tick_threads: threads, ..cfg });
    for k in 0..players {
        let (x, zz) = crowd_spot(k);
        let st = standing(z.sim(), x, zz);
        z.join_at(EntityId(1 + k), Some(st)).unwrap();
    }
    z
}

/// Every player runs at the crates and about one in four fires at a neighbour; one sends its
/// inputs late in bursts, a few send none.
fn player_input(rng: &mut Lcg, z: &Zone, id: EntityId, seq: u32) -> Option<PlayerInput> {
    let c = z.sim().character(id)?;
    let r = rng.next();
    if r.is_multiple_of(9) {
        return None;
    }
    let to_centre = -c.position_m;
    let mut yaw = to_centre.x.atan2(to_centre.z);
    let mut buttons = Buttons::RUN;
    if r.is_multiple_of(4) {
        buttons |= Buttons::FIRE;
        yaw += ((r >> 10) % 100) as f32 / 100.0 * std::f32::consts::PI;
    }
    if r.is_multiple_of(13) {
        buttons |= Buttons::JUMP;
    }
    Some(PlayerInput {
        seq: InputSeq(seq),
        move_x: ((r >> 5) % 3) as f32 - 1.0,
        move_z: 1.0,
        yaw_rad: yaw,
        pitch_rad: 0.01,
        buttons: Buttons(buttons),
        view_tick: 0,
    })
}

/// Runs the same script on zones with 1, 2 and 3 tick threads: their snapshots, events and
/// reports must be identical every tick.
fn zones_agree(seed: u64, players: u64, ticks: u32, cfg: ZoneConfig) -> (usize, usize, usize) {
    let mut zones: Vec<Zone> = [1usize, 2, 3].iter().map(|t| crowd_zone(players, *t, cfg.clone())).collect();
    let mut rng = Lcg(seed);
    let mut seqs: BTreeMap<EntityId, u32> = BTreeMap::new();
    let mut acked: BTreeMap<EntityId, u64> = BTreeMap::new();
    let mut clients: BTreeMap<EntityId, ReceivedViews> = BTreeMap::new();
    let (mut deaths, mut hits, mut snaps) = (0usize, 0usize, 0usize);
    let mut next_id = players + 1;
    for t in 0..ticks {
        let players_now: Vec<EntityId> = zones[0].players().collect();
        // Churn: a player leaves, another joins, the ghost node reports its characters.
        if t % 11 == 4 && !players_now.is_empty() {
            let gone = players_now[rng.below(players_now.len() as u32) as usize];
            for z in zones.iter_mut() {
                z.leave(gone);
            }
            clients.remove(&gone);
            acked.remove(&gone);
        }
        if t % 7 == 2 {
            let (x, zz) = crowd_spot(rng.below(players as u32) as u64);
            let id = EntityId(next_id);
            next_id += 1;
            for z in zones.iter_mut() {
                let st = standing(z.sim(), x + 0.3, zz - 0.3);
                z.join_at(id, Some(st)).unwrap();
            }
        }
        if t % 2 == 0 {
            let states: Vec<GhostState> = (0..6u64)
                .filter(|g| t % 10 != 8 || g % 2 == 0)
                .map(|g| {
                    let (x, zz) = crowd_spot(g * 7 + 3);
                    let st = standing(zones[0].sim(), x * 1.1 + (t % 5) as f32 * 0.1, zz * 1.1);
                    GhostState { id: 500_000 + g * 3, character: WireCharacter::of(&st) }
                })
                .collect();
            let tick = zones[0].sim().tick().0;
            for z in zones.iter_mut() {
                z.apply_ghosts(GHOST_NODE, tick, true, &states);
            }
        }
        let players_now: Vec<EntityId> = zones[0].players().collect();
        for id in &players_now {
            let seq = seqs.entry(*id).or_insert(0);
            *seq += 1;
            let Some(i) = player_input(&mut rng, &zones[0], *id, *seq) else { continue };
            // Acknowledgements lost one in five, or an old one repeated.
            let ack = match rng.below(5) {
                0 => 0,
                1 => acked.get(id).map_or(0, |a| a.saturating_sub(u64::from(rng.below(4)))),
                _ => acked.get(id).copied().unwrap_or(0),
            };
            let batch = InputBatch { ack_tick: ack, inputs: vec![WireInput::from_input(&i)] };
            for z in zones.iter_mut() {
                z.on_inputs(*id, &batch, u64::from(t));
            }
        }
        let outs: Vec<_> = zones.iter_mut().map(|z| z.tick()).collect();
        for (k, out) in outs.iter().enumerate().skip(1) {
            let threads = k + 1;
            assert_eq!(out.report, outs[0].report, "seed {seed:#x}, {threads} threads: reports differ at tick {t}");
            assert_eq!(out.events, outs[0].events, "seed {seed:#x}, {threads} threads: events differ at tick {t}");
            assert_eq!(
                out.snapshots, outs[0].snapshots,
                "seed {seed:#x}, {threads} threads: snapshots differ at tick {t}"
            );
            assert_eq!(out.inputs_missed, outs[0].inputs_missed, "seed {seed:#x}: tick {t}");
        }
        deaths += outs[0].report.events.iter().filter(|e| matches!(e, pwn_sim::SimEvent::Death { .. })).count();
        hits += outs[0].report.events.iter().filter(|e| matches!(e, pwn_sim::SimEvent::Hit { .. })).count();
        for (id, s) in &outs[0].snapshots {
            snaps += 1;
            let views = clients.entry(*id).or_insert_with(|| ReceivedViews::new(TICK_HZ));
            // The client can always apply what it is sent against what it acknowledged.
            if let Err(e) = views.apply(s) {
                panic!("seed {seed:#x}, tick {t}: player {id:?} cannot apply its snapshot: {e:?}");
            }
            if rng.below(4) != 0 {
                acked.insert(*id, s.tick);
            }
        }
    }
    (deaths, hits, snaps)
}

/// `[sim-par]` and the views on a pool: a crowd above the parallel-move threshold with shots,
/// deaths, respawns, crates pushed, ghosts and players coming and going; a small budget so that
/// urgency ordering runs, and a radius that takes in most of the crowd.
#[test]
fn a_zone_on_a_pool_sends_the_snapshots_and_events_of_one_thread() {
    let cfg = ZoneConfig { snapshot_budget_bytes: 240, interest_entities_max: 96, ..ZoneConfig::default() };
    let (deaths, hits, snaps) = zones_agree(0x2017, 90, 120, cfg);
    assert!(hits > 10, "the scenario must land shots (hits {hits})");
    assert!(deaths > 0, "the scenario must kill someone (deaths {deaths})");
    assert!(snaps > 90 * 100, "{snaps} snapshots");
}

/// The same with more than `GRID_MIN_ENTITIES` visible (the interest grid answers) and the
/// full budget (the fit path answers for most players).
#[test]
fn a_zone_on_a_pool_with_the_interest_grid_sends_what_one_thread_sends() {
    let (_, hits, _) = zones_agree(0x2018, 270, 40, ZoneConfig::default());
    assert!(hits > 0, "no shot landed");
}

// ---------------------------------------------------------------------------------------------
// Interest with hostile positions.

fn hostile_coord() -> impl Strategy<Value = f32> {
    prop_oneof![
        6 => -300.0f32..300.0,
        1 => Just(f32::NAN),
        1 => Just(f32::INFINITY),
        1 => Just(f32::NEG_INFINITY),
        1 => -3.0e38f32..3.0e38,
        1 => -1.0e7f32..1.0e7,
        1 => (-40i32..40).prop_map(|k| k as f32 * 10.0),
        1 => (-40i32..40).prop_map(|k| f32::from_bits((k as f32 * 10.0).to_bits().wrapping_sub(1))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// The grid of r/8 cells with `distance_key` answers exactly as the scan, whatever the
    /// positions (not finite, huge, on cell boundaries and one ulp below) and radius.
    #[test]
    fn interest_the_grid_answers_as_the_scan_with_hostile_positions(
        points in proptest::collection::vec((hostile_coord(), hostile_coord()), 257..600),
        me in (hostile_coord(), hostile_coord()),
        r in prop_oneof![4 => 0.0f32..200.0, 1 => Just(80.0f32), 1 => Just(f32::NAN), 1 => Just(f32::INFINITY),
                         1 => -100.0f32..0.0, 1 => Just(1.0e20f32)],
        cap in prop_oneof![1usize..8, 8usize..300, Just(128usize)],
    ) {
        let positions: Vec<[f32; 2]> = points.iter().map(|(x, z)| [*x, *z]).collect();
        let grid = Grid::build(&positions, r);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        nearest_linear(&positions, [me.0, me.1], r, cap, &mut a);
        grid.nearest(&positions, [me.0, me.1], r, cap, &mut b);
        prop_assert!(a.iter().all(|(_, d)| *d >= 0.0 && !d.is_nan()), "a hit with a negative or NaN distance");
        prop_assert_eq!(a, b);
    }

    /// A crowd on cell boundaries of a 10 m grid (r = 80) around a player on one: the ring
    /// search must not stop before a boundary entity that ties or beats the `cap`-th nearest.
    #[test]
    fn interest_boundary_crowds_tie_break_as_the_scan(
        cells in proptest::collection::vec((-12i32..12, -12i32..12, 0u32..3, 0u32..3), 257..500),
        me in (-12i32..12, -12i32..12, 0u32..3, 0u32..3),
        origin in -1000.0f32..1000.0,
        cap in 1usize..200,
    ) {
        let at = |k: i32, nudge: u32| {
            let v = origin + k as f32 * 10.0;
            match nudge { 0 => v, 1 => f32::from_bits(v.to_bits().wrapping_add(1)), _ => f32::from_bits(v.to_bits().wrapping_sub(1)) }
        };
        let positions: Vec<[f32; 2]> = cells.iter().map(|(x, z, nx, nz)| [at(*x, *nx), at(*z, *nz)]).collect();
        let me = [at(me.0, me.2), at(me.1, me.3)];
        let grid = Grid::build(&positions, 80.0);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        nearest_linear(&positions, me, 80.0, cap, &mut a);
        grid.nearest(&positions, me, 80.0, cap, &mut b);
        prop_assert_eq!(a, b);
    }
}
