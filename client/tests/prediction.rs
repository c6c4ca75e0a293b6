//! Prediction against the real zone core, through a deterministic stepper with virtual time
//! and the link conditioner (100 ms round trip, 20 ms jitter, 2 % loss each way): a player
//! alone on open ground is predicted exactly (zero corrections) thanks to the zone's playout
//! queue (`[input-6]`); a shove by another player is corrected; a player riding a lift for
//! thirty seconds is predicted exactly (`[predict-4]`). Every run replays from its seed.

use pwn_client::predict::Predictor;
use pwn_net::conditioner::{Conditioner, LinkProfile};
use pwn_proto::delta::ReceivedViews;
use pwn_proto::{InputBatch, Message, WireInput};
use pwn_sim::quantize::{dequantize_position, dequantize_velocity, dequantize_yaw};
use pwn_sim::{Buttons, CharacterState, EntityId, InputSeq, PlayerInput, Sim, SimConfig, WorldDesc};
use pwn_zone_node::zone::{Zone, ZoneConfig};
use std::time::Duration;

fn world() -> WorldDesc {
    let mut w = WorldDesc::flat(400.0);
    // One spawn point: a second player appears right beside the first.
    w.spawn_points = vec![[0.0, 1.0, 0.0]];
    w
}

fn link() -> LinkProfile {
    LinkProfile {
        latency: Duration::from_millis(50),
        jitter: Duration::from_millis(20),
        loss: 0.02,
        ..LinkProfile::default()
    }
}

/// The world with a lift under the spawn point: a 4 m slab rising 6 m at 2 m/s, pausing 1 s.
fn lift_world() -> WorldDesc {
    let mut w = world();
    w.spawn_points = vec![[0.0, 1.6, 0.0]];
    w.platforms = vec![pwn_sim::PlatformDesc {
        half_extents_m: [2.0, 0.25, 2.0],
        path_m: vec![[0.0, 0.25, 0.0], [0.0, 6.25, 0.0]],
        speed_mps: 2.0,
        pause_s: 1.0,
        closed: false,
    }];
    w
}

/// Runs `ticks` ticks of one predicting client `me` (and optionally a scripted second player
/// that runs into it); returns the predictor.
fn run(seed: u64, ticks: u32, shover: bool) -> Predictor {
    run_in(world(), link(), seed, ticks, shover, false, |_| {}).0
}

/// [`run`] in any world; `idle` sends inputs that do not move; `each_tick` sees the predictor
/// after every tick. Returns the predictor and the heights the server had the player at.
fn run_in(
    world: WorldDesc,
    link: LinkProfile,
    seed: u64,
    ticks: u32,
    shover: bool,
    idle: bool,
    mut each_tick: impl FnMut(&Predictor),
) -> (Predictor, Vec<f32>) {
    let world_desc = world;
    let world = || world_desc.clone();
    let cfg = SimConfig::default();
    let mut heights = Vec::new();
    let mut zone = Zone::new(Sim::new(world(), cfg.clone(), 1).unwrap(), ZoneConfig::default());
    let me = EntityId(1);
    let other = EntityId(2);
    zone.join(me).unwrap();
    if shover {
        zone.join(other).unwrap();
    }
    let dt = Duration::from_secs_f32(cfg.dt_s());
    let mut up: Conditioner<Message> = Conditioner::new(link, seed);
    let mut down: Conditioner<Message> = Conditioner::new(link, seed ^ 0xdead_beef);
    let mut views = ReceivedViews::new(30);
    let mut predictor: Option<Predictor> = None;
    let mut sent: Vec<WireInput> = Vec::new();
    let mut acked_tick = 0u64;
    let mut now = Duration::ZERO;
    for t in 0..ticks {
        now += dt;
        // Server: deliver what has arrived, tick, send the snapshot down.
        while let Some(m) = up.poll(now) {
            if let Message::Inputs(batch) = m {
                zone.on_inputs(me, &batch, 0);
            }
        }
        if shover {
            // The other player runs straight at us, wherever we are.
            let (Some(us), Some(them)) = (zone.sim().character(me), zone.sim().character(other)) else { continue };
            let d = us.position_m - them.position_m;
            let yaw = pwn_sim::quantize::quantize_yaw(d.x.atan2(d.z));
            let i = WireInput { seq: t + 1, move_z: 127, yaw, buttons: Buttons::RUN, ..WireInput::default() };
            zone.on_inputs(other, &InputBatch { ack_tick: 0, inputs: vec![i] }, 0);
        }
        let out = zone.tick();
        if let Some(c) = zone.sim().character(me) {
            heights.push(c.position_m.y);
        }
        for (player, snapshot) in out.snapshots {
            if player == me {
                down.send(now, Message::Snapshot(snapshot));
            }
        }
        // Client: apply snapshots, reconcile, then predict this tick's input and send it.
        while let Some(Message::Snapshot(s)) = down.poll(now) {
            let Ok(view) = views.apply(&s) else { continue };
            acked_tick = s.tick;
            let Some(state) = view.get(&me.0).copied() else { continue };
            match predictor.as_mut() {
                Some(p) => {
                    p.reconcile(s.tick, s.input_ack, &state);
                }
                // Start predicting once the character has settled from its spawn drop: before
                // its first input the server ticks it on its own (falling), which the client
                // cannot know the timing of, so predicting a fall would correct once at start.
                None if state.velocity != [0, 0, 0] => {}
                None => {
                    let mut c = CharacterState::spawned_at(dequantize_position(state.position), &cfg);
                    c.velocity_mps = dequantize_velocity(state.velocity);
                    c.yaw_rad = dequantize_yaw(state.yaw);
                    // A character still falling from its spawn point is not grounded yet.
                    c.grounded = state.velocity[1] == 0;
                    predictor = Some(Predictor::new(Sim::new(world(), cfg.clone(), 1).unwrap(), me, c).unwrap());
                }
            }
        }
        // The first inputs go out as a burst three deep, as `GameClient` does for a link with
        // this jitter ([game-7]): the zone's queue then absorbs jitter and a lost datagram.
        let burst = if sent.is_empty() { 3 } else { 1 };
        for _ in 0..burst {
            let Some(p) = predictor.as_mut() else { break };
            let seq = sent.len() as u32 + 1;
            let strafe = if (seq / 45).is_multiple_of(2) || idle { 0.0 } else { 0.5 };
            let input = PlayerInput {
                seq: InputSeq(seq),
                move_x: strafe,
                move_z: if idle { 0.0 } else { 1.0 },
                yaw_rad: 0.0,
                pitch_rad: 0.0,
                buttons: Buttons(Buttons::RUN),
                view_tick: 0,
            };
            sent.push(p.input(&input));
            let redundant: Vec<WireInput> = sent.iter().rev().take(3).copied().collect();
            up.send(now, Message::Inputs(InputBatch { ack_tick: acked_tick, inputs: redundant }));
            p.advance_visual(dt.as_secs_f32());
        }
        if let Some(p) = predictor.as_ref() {
            each_tick(p);
        }
    }
    (predictor.expect("the client never received its state"), heights)
}

#[test]
fn a_player_alone_is_predicted_exactly_despite_latency_jitter_and_loss() {
    for seed in 1..=20u64 {
        let p = run(seed, 300, false);
        let s = p.stats();
        assert!(s.confirmations > 150, "seed {seed}: only {} confirmations", s.confirmations);
        assert_eq!(s.corrections, 0, "seed {seed}: {s:?}");
    }
}

#[test]
fn a_shove_from_another_player_is_corrected() {
    let p = run(7, 200, true);
    let s = p.stats();
    assert!(s.corrections > 0, "a collision the client could not predict went unnoticed: {s:?}");
    assert!(s.confirmations > s.corrections, "{s:?}");
}

/// Rides the lift for 1,000 ticks over `link`; returns the corrections after the first
/// acknowledgement, how often the tick offset changed after it, and the predictor's stats.
fn ride(link: LinkProfile, seed: u64) -> (u64, u64, pwn_client::predict::PredictionStats) {
    let mut first: Option<(u64, Option<u64>)> = None;
    let mut offset_changes = 0;
    let (p, heights) = run_in(lift_world(), link, seed, 1_000, false, true, |p| {
        let offset = p.tick_of_input(0);
        match first.as_mut() {
            None if p.stats().confirmations > 0 => first = Some((p.stats().corrections, offset)),
            Some((_, last)) if *last != offset => {
                offset_changes += 1;
                *last = offset;
            }
            _ => {}
        }
    });
    let (at_first_ack, _) = first.expect("never confirmed");
    let (low, high) = heights.iter().fold((f32::MAX, f32::MIN), |(l, h), y| (l.min(*y), h.max(*y)));
    assert!(high - low > 5.9, "seed {seed}: rode only from {low} to {high}");
    assert!(p.stats().confirmations > 800, "seed {seed}: only {} confirmations", p.stats().confirmations);
    (p.stats().corrections - at_first_ack, offset_changes, p.stats().clone())
}

#[test]
fn a_player_riding_a_lift_for_thirty_seconds_is_never_corrected() {
    // `[predict-4]`: the lift's pose is a function of the tick, so once the first
    // acknowledgement tells the client which server tick its inputs land on, every tick of the
    // ride is predicted exactly: up, pause, down, pause, for 30 s.
    let clean = LinkProfile { latency: Duration::from_millis(50), ..LinkProfile::default() };
    for seed in 1..=5u64 {
        let (corrections, _, stats) = ride(clean, seed);
        assert_eq!(corrections, 0, "seed {seed}: corrected while riding: {stats:?}");
    }
    // Through jitter and loss the only corrections are the server's missed inputs (an input
    // that misses its tick moves every later one a tick on, which corrects a walking player
    // too); the lift adds none of its own.
    for seed in 1..=10u64 {
        let (corrections, offset_changes, stats) = ride(link(), seed);
        assert!(
            corrections <= offset_changes,
            "seed {seed}: {corrections} corrections, {offset_changes} missed: {stats:?}"
        );
    }
}

/// Runs a player walking in turns over a clean one-tick link, on `world`, with its inputs held
/// back one tick at `late_at` (the zone runs that tick without an input, `[input-4]`); returns
/// the predictor and the zone's count of missed inputs.
fn walk_with_a_late_input(world: WorldDesc, late_at: u32) -> (Predictor, u64) {
    let cfg = SimConfig::default();
    let mut zone = Zone::new(Sim::new(world.clone(), cfg.clone(), 1).unwrap(), ZoneConfig::default());
    let me = EntityId(1);
    zone.join(me).unwrap();
    let mut views = ReceivedViews::new(30);
    let mut predictor: Option<Predictor> = None;
    let (mut seq, mut pending) = (0u32, Vec::<WireInput>::new());
    for t in 0..900u32 {
        if t != late_at {
            for w in pending.drain(..) {
                zone.on_inputs(me, &InputBatch { ack_tick: 0, inputs: vec![w] }, 0);
            }
        }
        let out = zone.tick();
        for (_, s) in out.snapshots.into_iter().filter(|(p, _)| *p == me) {
            let Ok(view) = views.apply(&s) else { continue };
            let Some(state) = view.get(&me.0).copied() else { continue };
            match predictor.as_mut() {
                Some(p) => {
                    p.reconcile(s.tick, s.input_ack, &state);
                }
                None if state.velocity != [0, 0, 0] => {}
                None => {
                    let mut c = CharacterState::spawned_at(dequantize_position(state.position), &cfg);
                    c.yaw_rad = dequantize_yaw(state.yaw);
                    c.grounded = true;
                    predictor = Some(Predictor::new(Sim::new(world.clone(), cfg.clone(), 1).unwrap(), me, c).unwrap());
                }
            }
        }
        if let Some(p) = predictor.as_mut() {
            seq += 1;
            let walking = t % 60 < 40;
            let input = PlayerInput {
                seq: InputSeq(seq),
                move_z: if walking { 1.0 } else { 0.0 },
                yaw_rad: (t / 60) as f32 * 1.3,
                ..PlayerInput::default()
            };
            pending.push(p.input(&input));
        }
    }
    let missed = zone.input_counters(me).map_or(0, |c| c.missing);
    (predictor.expect("predicting"), missed)
}

#[test]
fn predict_5_a_late_input_is_predicted_as_the_server_ran_it() {
    // The zone runs one tick without the player's input and repeats its movement; the client
    // learns it from the next acknowledgement and predicts that tick the same way: no correction,
    // walking on the ground or on a rising lift.
    let mut lift = lift_world();
    lift.spawn_points = vec![[0.0, 1.6, 0.0]];
    lift.platforms[0].half_extents_m = [12.0, 0.25, 12.0];
    for (name, world) in [("ground", world()), ("lift", lift)] {
        for late_at in [200, 333, 517] {
            let (p, missed) = walk_with_a_late_input(world.clone(), late_at);
            assert!(missed >= 1, "{name}: the zone never missed an input");
            let s = p.stats();
            assert_eq!(s.corrections, 0, "{name}, late at {late_at}: {s:?}");
            assert!(s.confirmations > 700, "{name}: {s:?}");
        }
    }
}
