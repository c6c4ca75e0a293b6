//! Attacks on `[sim-par]`: characters moved on a pool of threads (`Sim::set_pool`) must end
//! every tick in the same bits as characters moved one after another, including the order in
//! which their pushes reach the crates (impulses on one body add up in floating point, so the
//! order shows in the bits) and the order of their shots (ids and the RNG).
//!
//! The worlds here are hostile to the parallel path: a crowd packed around crates so that many
//! characters push the same crate in one tick, dead characters waiting to respawn among the
//! living, ghosts (never moved) with ids between the local characters', characters leaving and
//! arriving mid-run (the decided list changes length around `PARALLEL_MOVES_MIN`), ids far apart.

use glam::Vec3;
use pwn_sim::{Buttons, CharacterState, CrateDesc, EntityId, InputSeq, PlayerInput, Sim, SimConfig, WorldDesc};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A small deterministic generator (the seed is printed by every failing assertion).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
}

fn pool(threads: usize) -> Arc<rayon::ThreadPool> {
    Arc::new(rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap())
}

/// A flat field with a cluster of light crates at the centre, the crowd's target.
fn field() -> WorldDesc {
    let mut w = WorldDesc::flat(400.0);
    w.crates = (0..9)
        .map(|i| CrateDesc {
            center_m: [(i % 3) as f32 * 1.2 - 1.2, 0.5, (i / 3) as f32 * 1.2 - 1.2],
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

/// The crowd: `n` characters on rings around the crates (ids spaced by `stride`, every
/// seventh dead and waiting to respawn), and a ghost between each pair of neighbours' ids.
fn crowd(seed: u64, n: u64, stride: u64, pool: Option<Arc<rayon::ThreadPool>>) -> Sim {
    let mut sim = Sim::new(field(), SimConfig::default(), seed).unwrap();
    sim.set_pool(pool);
    for k in 0..n {
        let ring = 4.0 + (k / 24) as f32 * 1.3;
        let a = (k % 24) as f32 / 24.0 * std::f32::consts::TAU + (k / 24) as f32 * 0.13;
        let mut s = standing(&sim, ring * a.cos(), ring * a.sin());
        if k % 7 == 3 {
            s.health = 0;
            s.respawn_ticks = 10 + (k % 13) as u16;
        }
        sim.insert_character(EntityId(1 + k * stride), s).unwrap();
        if k % 5 == 0 {
            let g = standing(&sim, (ring + 0.6) * a.cos(), (ring + 0.6) * a.sin());
            assert!(sim.upsert_ghost(ghost_id(k, stride), g));
        }
    }
    sim
}

/// The ghost placed beside character `k`: between its id and the next, or far above all
/// when ids are consecutive.
fn ghost_id(k: u64, stride: u64) -> EntityId {
    if stride >= 2 { EntityId(1 + k * stride + stride / 2) } else { EntityId(1_000_000 + k) }
}

/// Inputs for `ids` at `tick`: run at the centre (yaw towards it), with some strafing,
/// jumping and firing; about one in eight missing.
fn inputs(rng: &mut Lcg, sim: &Sim, ids: &[EntityId], tick: u32) -> BTreeMap<EntityId, PlayerInput> {
    let mut out = BTreeMap::new();
    for id in ids {
        let r = rng.next();
        if r.is_multiple_of(8) {
            continue;
        }
        let Some(c) = sim.character(*id) else { continue };
        let to_centre = -c.position_m;
        // Forward is +Z at yaw 0 (`tests/common`); aim the run at the centre.
        let yaw = to_centre.x.atan2(to_centre.z);
        let mut buttons = Buttons::RUN;
        if r.is_multiple_of(5) {
            buttons |= Buttons::FIRE;
        }
        if r.is_multiple_of(11) {
            buttons |= Buttons::JUMP;
        }
        out.insert(
            *id,
            PlayerInput {
                seq: InputSeq(tick + 1),
                move_x: ((r >> 8) % 3) as f32 - 1.0,
                move_z: 1.0,
                yaw_rad: yaw,
                pitch_rad: ((r >> 12) % 40) as f32 / 100.0 - 0.2,
                buttons: Buttons(buttons),
                view_tick: 0,
            },
        );
    }
    out
}

fn characters(sim: &Sim) -> Vec<(EntityId, CharacterState)> {
    sim.characters().map(|(id, c)| (id, c.clone())).collect()
}

/// A change made to every sim alike before a step (a character leaving or arriving, a ghost
/// moving).
type Churn = Box<dyn Fn(&mut Sim)>;

/// Runs the same hostile script on a serial sim and on sims with pools of `threads`; every
/// tick the reports, hashes, characters and crates must agree bit for bit.
fn serial_and_parallel_agree(seed: u64, n: u64, stride: u64, ticks: u32, threads: &[usize]) -> (usize, usize) {
    let mut serial = crowd(seed, n, stride, None);
    let mut parallel: Vec<Sim> = threads.iter().map(|t| crowd(seed, n, stride, Some(pool(*t)))).collect();
    let mut rng = Lcg(seed);
    let (mut pushed_crates, mut shots) = (0usize, 0usize);
    let crates_at_start: Vec<Vec3> = serial.crates().map(|(_, p, _, _)| p).collect();
    for t in 0..ticks {
        // Mid-run churn: a character leaves, another arrives (the decided list crosses the
        // parallel threshold both ways when `n` is near it), a ghost moves.
        let mut churn: Vec<Churn> = Vec::new();
        if t % 17 == 5 {
            let gone = EntityId(1 + u64::from(rng.next() % n as u32) * stride);
            churn.push(Box::new(move |s: &mut Sim| {
                s.remove_character(gone);
            }));
        }
        if t % 13 == 7 {
            let id = EntityId(1 + (n + u64::from(t)) * stride);
            let x = (rng.next() % 20) as f32 - 10.0;
            churn.push(Box::new(move |s: &mut Sim| {
                let st = standing(s, x, 14.0);
                let _ = s.insert_character(id, st);
            }));
        }
        if t % 3 == 0 {
            let id = ghost_id(0, stride);
            let z = 4.6 + (t % 9) as f32 * 0.2;
            churn.push(Box::new(move |s: &mut Sim| {
                let st = standing(s, z, 0.3);
                s.upsert_ghost(id, st);
            }));
        }
        for f in &churn {
            f(&mut serial);
            for p in parallel.iter_mut() {
                f(p);
            }
        }
        let ids: Vec<EntityId> = serial.characters().map(|(id, _)| id).filter(|id| !serial.is_ghost(*id)).collect();
        let tick_inputs = inputs(&mut rng, &serial, &ids, t);
        let rs = serial.step(&tick_inputs);
        shots += rs
            .events
            .iter()
            .filter(|e| matches!(e, pwn_sim::SimEvent::Spawned { kind: pwn_sim::EntityKind::Projectile, .. }))
            .count();
        for (k, p) in parallel.iter_mut().enumerate() {
            let rp = p.step(&tick_inputs);
            let threads = threads[k];
            assert_eq!(rp, rs, "seed {seed:#x}, {threads} threads: reports differ at tick {t}");
            assert_eq!(
                characters(p),
                characters(&serial),
                "seed {seed:#x}, {threads} threads: characters differ at tick {t}"
            );
            let crates = |s: &Sim| s.crates().collect::<Vec<_>>();
            assert_eq!(crates(p), crates(&serial), "seed {seed:#x}, {threads} threads: crates differ at tick {t}");
            assert_eq!(
                p.state_hash(),
                serial.state_hash(),
                "seed {seed:#x}, {threads} threads: hashes differ at tick {t}"
            );
        }
    }
    for (a, (_, b, _, _)) in crates_at_start.iter().zip(serial.crates()) {
        if a.distance(b) > 0.05 {
            pushed_crates += 1;
        }
    }
    (pushed_crates, shots)
}

/// `[sim-par]` A crowd packed around crates, everyone running at them: many pushes on the same
/// crate in one tick, gathered in id order on every pool size.
#[test]
fn sim_par_a_crowd_pushing_the_same_crates_matches_the_serial_loop() {
    let (pushed, shots) = serial_and_parallel_agree(0xa77a_c401, 150, 1, 90, &[2, 3]);
    assert!(pushed >= 3, "the scenario must push crates (pushed {pushed})");
    assert!(shots > 20, "the scenario must fire (shots {shots})");
}

/// `[sim-par]` Ids far apart, ghosts between them, the dead among the living, and a crowd
/// just around the parallel threshold (64) so leaving and arriving switch paths mid-run.
#[test]
fn sim_par_sparse_ids_ghosts_dead_and_a_crowd_at_the_threshold_match_the_serial_loop() {
    for (seed, n, stride) in [(0x51, 66u64, 1_000u64), (0x52, 64, 2), (0x53, 70, 1 << 40)] {
        serial_and_parallel_agree(seed, n, stride, 60, &[2]);
    }
}

/// Client-side prediction moves one character (`predict_step`), never on the pool: a client
/// sim given a pool predicts exactly what one without does.
#[test]
fn sim_par_prediction_with_a_pool_predicts_as_without() {
    let seed = 0x9e;
    let mut a = crowd(seed, 80, 1, Some(pool(2)));
    let mut b = crowd(seed, 80, 1, None);
    let me = EntityId(2);
    let mut rng = Lcg(seed);
    for t in 0..60u32 {
        let all: Vec<EntityId> = a.characters().map(|(id, _)| id).collect();
        let i = inputs(&mut rng, &a, &all, t).get(&me).copied();
        let (ea, eb) = match i {
            Some(i) => (a.predict_step(me, i), b.predict_step(me, i)),
            None => (a.predict_missed_at(me, u64::from(t) + 1), b.predict_missed_at(me, u64::from(t) + 1)),
        };
        assert_eq!(ea, eb, "seed {seed:#x}: predicted events differ at tick {t}");
        assert_eq!(characters(&a), characters(&b), "seed {seed:#x}: predicted characters differ at tick {t}");
    }
}
