//! Two full client cores against the real zone core, through a deterministic stepper with
//! virtual time and the link conditioner (100 ms round trip, 20 ms jitter, 2 % loss on
//! datagrams; reliable events in order with the same latency). First the two players run apart:
//! neither is corrected unless an input missed its tick at the zone (rare: the client paces a
//! margin into the zone's queue), and each draws the other within the interpolation delay. Then one
//! turns, shoots and charges: its shots are predicted and replaced by the server's copies
//! without duplicates, the other sees them fly, and the victim is corrected (hit); killed, it
//! respawns without that counting as a prediction error.
//! Every run replays from its seed.

use glam::Vec3;
use pwn_client::{Frame, GameClient, Intent};
use pwn_net::conditioner::{Conditioner, LinkProfile};
use pwn_proto::{GameEvent, Message};
use pwn_sim::quantize::quantize_yaw;
use pwn_sim::{Buttons, EntityId, Sim, SimConfig, WorldDesc};
use pwn_zone_node::zone::{Zone, ZoneConfig};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::Duration;

const LATENCY: Duration = Duration::from_millis(50);
const APART_TICKS: u32 = 150;
const TICKS: u32 = 330;

fn world() -> WorldDesc {
    let mut w = WorldDesc::flat(400.0);
    w.spawn_points = vec![[0.0, 1.0, 0.0]];
    w
}

struct Side {
    core: GameClient,
    up: Conditioner<Message>,
    down: Conditioner<Message>,
    events: VecDeque<(Duration, GameEvent)>,
    frames: Vec<(u64, Frame, f64)>,
}

#[derive(Default)]
struct Outcome {
    a_corrections_while_apart: u64,
    b_corrections_while_apart: u64,
    /// Ticks on which the zone had no input for A or B (or skipped one), while apart.
    missed_while_apart: u64,
    a: pwn_client::ClientCounters,
    b: pwn_client::ClientCounters,
    /// Ticks by which A's drawing of B lagged the server, while apart.
    lag_ticks: Vec<u64>,
    a_saw_remote_shots: bool,
    duplicate_projectile_ids: u32,
}

fn run(seed: u64) -> Outcome {
    let cfg = SimConfig::default();
    let mut zone = Zone::new(Sim::new(world(), cfg.clone(), 1).unwrap(), ZoneConfig::default());
    let (a, b) = (EntityId(1), EntityId(2));
    zone.join(a).unwrap();
    zone.join(b).unwrap();
    let link =
        LinkProfile { latency: LATENCY, jitter: Duration::from_millis(20), loss: 0.02, ..LinkProfile::default() };
    let mut sides: BTreeMap<EntityId, Side> = [a, b]
        .into_iter()
        .map(|id| {
            let s = seed.wrapping_mul(31).wrapping_add(id.0);
            let side = Side {
                core: GameClient::new(world(), cfg.clone(), id),
                up: Conditioner::new(link, s),
                down: Conditioner::new(link, s ^ 0x5eed),
                events: VecDeque::new(),
                frames: Vec::new(),
            };
            (id, side)
        })
        .collect();
    let dt = Duration::from_secs_f32(cfg.dt_s());
    let mut now = Duration::ZERO;
    let mut b_history: BTreeMap<u64, Vec3> = BTreeMap::new();
    let mut out = Outcome::default();
    for t in 0..TICKS {
        now += dt;
        for (id, side) in &mut sides {
            while let Some(m) = side.up.poll(now) {
                match m {
                    Message::Inputs(batch) => zone.on_inputs(*id, &batch, 0),
                    Message::SnapshotAck(ack) => zone.on_ack(*id, ack.tick),
                    _ => {}
                }
            }
        }
        let tick_out = zone.tick();
        let tick = zone.sim().tick().0;
        if let Some(c) = zone.sim().character(b) {
            b_history.insert(tick, c.position_m);
        }
        for (player, snapshot) in tick_out.snapshots {
            sides.get_mut(&player).unwrap().down.send(now, Message::Snapshot(snapshot));
        }
        for (player, event) in tick_out.events {
            sides.get_mut(&player).unwrap().events.push_back((now + LATENCY, event));
        }
        let positions: BTreeMap<EntityId, Vec3> =
            [a, b].iter().filter_map(|id| Some((*id, zone.sim().character(*id)?.position_m))).collect();
        for (id, side) in &mut sides {
            // Each datagram at its own arrival time (the client clock is continuous; only the
            // game loop runs at ticks), so the client sees the link's real jitter.
            while let Some(due) = side.down.next_due().filter(|d| *d <= now) {
                let Some(m) = side.down.poll(now) else { break };
                side.core.on_message(due.as_secs_f64(), m);
            }
            while side.events.front().is_some_and(|(due, _)| *due <= now) {
                let (_, e) = side.events.pop_front().unwrap();
                side.core.on_message(now.as_secs_f64(), Message::Event(e));
            }
            let intent = if t < APART_TICKS {
                // A runs north with a sidestep now and then, B runs south.
                let strafe = if (t / 40) % 2 == 1 { 0.5 } else { 0.0 };
                let yaw_rad = if *id == a { 0.0 } else { std::f32::consts::PI };
                Intent { move_x: strafe, move_z: 1.0, yaw_rad, buttons: Buttons(Buttons::RUN), ..Intent::default() }
            } else if *id == a {
                Intent::default()
            } else {
                // B turns to A, shoots and charges.
                let d = positions[&a] - positions[&b];
                let yaw_rad = pwn_sim::quantize::dequantize_yaw(quantize_yaw(d.x.atan2(d.z)));
                Intent { move_z: 1.0, yaw_rad, buttons: Buttons(Buttons::RUN | Buttons::FIRE), ..Intent::default() }
            };
            let frame = side.core.update(dt.as_secs_f32(), &intent);
            for m in side.core.drain_outbox() {
                side.up.send(now, m);
            }
            let render_tick = side.core.render_tick().unwrap_or(0.0);
            side.frames.push((tick, frame, render_tick));
        }
        if t + 1 == APART_TICKS {
            out.a_corrections_while_apart = sides[&a].core.counters().corrections;
            out.b_corrections_while_apart = sides[&b].core.counters().corrections;
            out.missed_while_apart =
                [a, b].iter().map(|p| zone.input_counters(*p).map_or(0, |c| c.missing + c.skipped)).sum();
        }
    }
    for (tick, frame, _) in &sides[&a].frames {
        let ids: Vec<u64> = frame.projectiles.iter().map(|p| p.id).collect();
        let unique: HashSet<u64> = ids.iter().copied().collect();
        out.duplicate_projectile_ids += (ids.len() - unique.len()) as u32;
        out.a_saw_remote_shots |= frame.projectiles.iter().any(|p| !p.predicted && p.owner == b.0);
        // While apart, where A draws B: the server's position of B some ticks ago.
        if *tick > 30 && *tick < u64::from(APART_TICKS) {
            let Some(drawn) = frame.others.iter().find(|d| d.id == b.0) else { continue };
            let lag = (0..=*tick)
                .rev()
                .take(30)
                .find(|t| b_history.get(t).is_some_and(|p| p.distance(drawn.position_m) < 0.25))
                .map(|t| tick - t);
            out.lag_ticks.push(lag.unwrap_or(u64::MAX));
        }
    }
    for (tick, frame, _) in &sides[&b].frames {
        let ids: Vec<u64> = frame.projectiles.iter().map(|p| p.id).collect();
        let unique: HashSet<u64> = ids.iter().copied().collect();
        assert_eq!(ids.len(), unique.len(), "seed {seed} tick {tick}: a shot drawn twice");
    }
    out.a = sides[&a].core.counters().clone();
    out.b = sides[&b].core.counters().clone();
    out
}

#[test]
fn players_apart_are_never_corrected_and_see_each_other_within_the_interpolation_delay() {
    let mut missed = 0;
    for seed in 1..=8u64 {
        let o = run(seed);
        // With nobody near, the only possible cause of a correction is an input that missed its
        // tick at the zone (a lost datagram on top of the worst jitter); each is counted there.
        let corrected = o.a_corrections_while_apart + o.b_corrections_while_apart;
        assert!(corrected <= o.missed_while_apart, "seed {seed}: corrected with nobody near: {:?} {:?}", o.a, o.b);
        missed += o.missed_while_apart;
        assert!(o.a.confirmations > 100, "seed {seed}: {:?}", o.a);
        assert!(o.lag_ticks.len() > 50, "seed {seed}: A rarely drew B");
        // One way is 50 ms plus up to 20 ms of jitter: under 3 ticks; then the interpolation
        // delay (at most 1 + 2 x jitter = 2.2 ticks), plus one tick of sampling.
        let worst = *o.lag_ticks.iter().max().unwrap();
        assert!(worst <= 7, "seed {seed}: B drawn {worst} ticks behind the server (or off its path)");
        assert!(o.a.interpolation_delay_ticks >= 1.0);
    }
    // The paced queue keeps a margin of at least one tick: misses are rare (one in the eight
    // runs here, 2 x 8 x 150 inputs), not the rule.
    assert!(missed <= 2, "{missed} inputs missed their tick over 8 runs");
}

#[test]
fn shots_are_predicted_replaced_without_duplicates_and_hits_correct_the_victim() {
    let mut respawned = 0;
    for seed in 1..=4u64 {
        let o = run(seed);
        assert!(o.b.projectiles_predicted > 10, "seed {seed}: {:?}", o.b);
        // Every shot the server confirmed was the one predicted (same deterministic id); the
        // last few may still be on their way.
        assert!(o.b.projectiles_confirmed + 4 >= o.b.projectiles_predicted, "seed {seed}: {:?}", o.b);
        assert_eq!(o.duplicate_projectile_ids, 0, "seed {seed}");
        assert!(o.a_saw_remote_shots, "seed {seed}: A never saw B's shots fly");
        assert!(o.a.corrections > 0, "seed {seed}: A was hit and shoved but never corrected: {:?}", o.a);
        // Shots damage characters (health corrections) and B's charge can shove A; killed, A
        // comes back at the spawn point, which is a respawn, not a prediction error
        // (`[game-11]`): its errors stay those of contacts.
        assert!(o.a.prediction_error_m.max() < 1.0, "seed {seed}: {:?}", o.a);
        respawned += o.a.respawns;
    }
    assert!(respawned > 0, "B's shots never killed A: the respawn path went untested");
}
