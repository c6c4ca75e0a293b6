//! Determinism: the same world, seed and inputs give the same state hash every tick, across two
//! runs and across a whole-world snapshot/restore; prediction matches the server exactly.

mod common;

use common::*;
use pwn_sim::{Buttons, EntityId, InputSeq, PlayerInput, Sim, SimConfig, WorldDesc};
use std::collections::BTreeMap;

/// A reproducible pseudo-random input script for `players` characters over `ticks` ticks.
fn script(seed: u64, players: u64, ticks: u32) -> Vec<BTreeMap<EntityId, PlayerInput>> {
    let mut s = seed;
    let mut next = move || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (s >> 33) as u32
    };
    (0..ticks)
        .map(|t| {
            (1..=players)
                .filter_map(|p| {
                    // Drop about one input in ten to exercise the missing-input rule.
                    if next() % 10 == 0 {
                        return None;
                    }
                    let r = next();
                    let i = PlayerInput {
                        seq: InputSeq(t + 1),
                        move_x: (r % 3) as f32 - 1.0,
                        move_z: ((r / 3) % 3) as f32 - 1.0,
                        yaw_rad: (next() % 628) as f32 / 100.0 - std::f32::consts::PI,
                        pitch_rad: (next() % 60) as f32 / 100.0 - 0.3,
                        buttons: Buttons((next() % 8) as u8),
                        view_tick: 0,
                    };
                    Some((EntityId(p), i))
                })
                .collect()
        })
        .collect()
}

fn fresh_arena(seed: u64) -> Sim {
    let mut sim = Sim::new(WorldDesc::arena(), SimConfig::default(), seed).unwrap();
    for p in 1..=6 {
        sim.spawn_character(EntityId(p)).unwrap();
    }
    sim
}

#[test]
fn same_inputs_give_identical_hashes_every_tick_including_after_restore() {
    let seed = 0x5eed;
    let inputs = script(seed, 6, 240);
    let mut a = fresh_arena(seed);
    let mut b = fresh_arena(seed);
    let mut hashes = Vec::new();
    let mut fired = 0;
    for (t, tick_inputs) in inputs.iter().enumerate() {
        let ra = a.step(tick_inputs);
        let rb = b.step(tick_inputs);
        assert_eq!(ra, rb, "events differ at tick {t}");
        assert_eq!(a.state_hash(), b.state_hash(), "hashes differ at tick {t}");
        fired += ra
            .events
            .iter()
            .filter(|e| matches!(e, pwn_sim::SimEvent::Spawned { kind: pwn_sim::EntityKind::Projectile, .. }))
            .count();
        hashes.push(a.state_hash());
    }
    // The scenario must actually do something, or this test proves nothing.
    assert!(fired > 10, "only {fired} shots fired");
    let distinct: std::collections::BTreeSet<_> = hashes.iter().collect();
    assert_eq!(distinct.len(), hashes.len(), "state stopped changing");

    // Snapshot midway, run on, restore, replay: the same hashes again.
    let mut c = fresh_arena(seed);
    let mid = 120;
    for tick_inputs in &inputs[..mid] {
        c.step(tick_inputs);
    }
    let snap = c.snapshot();
    for tick_inputs in &inputs[mid..mid + 50] {
        c.step(tick_inputs);
    }
    c.restore(&snap);
    assert_eq!(c.state_hash(), hashes[mid - 1]);
    for (t, tick_inputs) in inputs.iter().enumerate().skip(mid) {
        c.step(tick_inputs);
        assert_eq!(c.state_hash(), hashes[t], "hash differs after restore at tick {t}");
    }
}

#[test]
fn different_inputs_give_different_hashes() {
    let mut a = fresh_arena(1);
    let mut b = fresh_arena(1);
    let ia = script(1, 6, 30);
    let ib = script(2, 6, 30);
    for t in 0..30 {
        a.step(&ia[t]);
        b.step(&ib[t]);
    }
    assert_ne!(a.state_hash(), b.state_hash());
}

#[test]
fn prediction_of_a_lone_player_matches_the_server_exactly() {
    let desc = world_with(vec![block([0.0, 1.0, 8.0], [3.0, 1.0, 0.5]), block([6.0, 0.3, 0.0], [1.0, 0.3, 1.0])]);
    let mut server = sim(desc.clone());
    let mut client = sim(desc);
    let me = place(&mut server, 1, 0.0, 0.0);
    place(&mut client, 1, 0.0, 0.0);
    for t in 0..200u32 {
        let i = PlayerInput {
            seq: InputSeq(t + 1),
            move_x: ((t / 40) % 3) as f32 - 1.0,
            move_z: 1.0,
            yaw_rad: (t as f32 * 0.05).sin(),
            pitch_rad: 0.1,
            buttons: Buttons(
                if t % 17 == 0 { Buttons::JUMP } else { 0 } | if t % 9 == 0 { Buttons::FIRE } else { 0 } | Buttons::RUN,
            ),
            view_tick: 0,
        };
        step_one(&mut server, me, i);
        client.predict_step(me, i).unwrap();
        assert_eq!(server.save_predicted(me), client.save_predicted(me), "prediction diverged at tick {t}");
    }
}

#[test]
fn rollback_and_replay_reproduce_the_predicted_state() {
    let mut client = sim(world_with(vec![block([0.0, 1.0, 8.0], [3.0, 1.0, 0.5])]));
    let me = place(&mut client, 1, 0.0, 0.0);
    let inputs: Vec<PlayerInput> = (0..90u32)
        .map(|t| {
            input(
                t + 1,
                ((t % 7) as f32 - 3.0) / 3.0,
                1.0,
                if t % 11 == 0 { Buttons::JUMP | Buttons::FIRE } else { Buttons::RUN },
            )
        })
        .collect();
    let mut states = Vec::new();
    for i in &inputs {
        client.predict_step(me, *i).unwrap();
        states.push(client.save_predicted(me).unwrap());
    }
    // Roll back to tick 30 (as if the server confirmed it) and replay the rest.
    client.restore_predicted(&states[29]);
    for (k, i) in inputs.iter().enumerate().skip(30) {
        client.predict_step(me, *i).unwrap();
        assert_eq!(client.save_predicted(me).unwrap(), states[k], "replay diverged at {k}");
    }
}

/// The hitbox history (lag compensation) is state: two worlds alike in everything but where a
/// character was over the last ticks answer a rewound shot differently, so their hashes differ.
#[test]
fn the_state_hash_covers_where_characters_were() {
    let (shooter, target) = (EntityId(1), EntityId(2));
    let mut a = sim(world_with(vec![]));
    let mut b = sim(world_with(vec![]));
    place(&mut a, shooter.0, 0.0, 0.0);
    place(&mut b, shooter.0, 0.0, 0.0);
    place(&mut a, target.0, 0.0, 2.0);
    for _ in 0..10 {
        a.step(&BTreeMap::new());
        b.step(&BTreeMap::new());
    }
    // The target joins `b` only now, exactly as it stands in `a`: it has no past there.
    b.insert_character(target, a.character(target).unwrap().clone()).unwrap();
    let fire = PlayerInput {
        seq: InputSeq(1),
        buttons: Buttons(Buttons::FIRE),
        view_tick: a.tick().0 + 1 - 5,
        ..PlayerInput::default()
    };
    let hits = |sim: &mut Sim| {
        let report = step_one(sim, shooter, fire);
        report.events.iter().filter(|e| matches!(e, pwn_sim::SimEvent::Hit { .. })).count()
    };
    let hashes_before = (a.state_hash(), b.state_hash());
    let (hits_a, hits_b) = (hits(&mut a), hits(&mut b));
    assert_ne!(hits_a, hits_b, "the scenario must tell the two worlds apart");
    assert_ne!(hashes_before.0, hashes_before.1, "equal hashes, different futures");
}

/// `[sim-par]` Characters moved on a pool of threads (`Sim::set_pool`) end every tick in the
/// same bits as characters moved one after another: a crowd in the arena (above the size at
/// which the pool is used) bumping into each other and the crates, jumping and shooting.
#[test]
fn moves_on_a_pool_match_moves_on_one_thread_bit_for_bit() {
    let seed = 0x9a7a;
    let players = 240;
    let inputs = script(seed, players, 200);
    let crowd = |pool: Option<std::sync::Arc<rayon::ThreadPool>>| {
        let mut sim = Sim::new(WorldDesc::arena(), SimConfig::default(), seed).unwrap();
        sim.set_pool(pool);
        for p in 1..=players {
            sim.spawn_character(EntityId(p)).unwrap();
        }
        sim
    };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let mut parallel = crowd(Some(std::sync::Arc::new(pool)));
    let mut serial = crowd(None);
    let mut fired = 0;
    for (t, tick_inputs) in inputs.iter().enumerate() {
        let rp = parallel.step(tick_inputs);
        let rs = serial.step(tick_inputs);
        assert_eq!(rp, rs, "events differ at tick {t}");
        assert_eq!(parallel.state_hash(), serial.state_hash(), "hashes differ at tick {t}");
        fired += rp
            .events
            .iter()
            .filter(|e| matches!(e, pwn_sim::SimEvent::Spawned { kind: pwn_sim::EntityKind::Projectile, .. }))
            .count();
    }
    assert!(fired > 100, "only {fired} shots fired");
}
