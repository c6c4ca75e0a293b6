//! Each scenario's bot driven through the full client core against the real zone core, with
//! no network between them: bots keep moving, and a bot alone is corrected only where it touches
//! a crate (which the server moves and the client only mirrors), never in the open.

use pwn_client::{Frame, GameClient};
use pwn_load_tests::scenario::{Mover, Scenario};
use pwn_proto::Message;
use pwn_sim::{EntityId, Sim, SimConfig, WorldDesc};
use pwn_zone_node::zone::{Zone, ZoneConfig};

fn run(scenario: Scenario, seed: u64, ticks: u32) -> (f32, u64, Vec<f32>) {
    let cfg = SimConfig::default();
    let world = WorldDesc::arena();
    let mut zone = Zone::new(Sim::new(world.clone(), cfg.clone(), 1).unwrap(), ZoneConfig::default());
    let me = EntityId(1);
    zone.join(me).unwrap();
    let mut core = GameClient::new(world.clone(), cfg.clone(), me);
    let bounds = world.xz_bounds();
    let mut mover = Mover::new(scenario, seed, bounds, &world.spawn_points);
    let mut frame = Frame::default();
    let dt = cfg.dt_s();
    let mut start = None;
    let mut travelled = 0.0f32;
    let mut corrections = 0;
    // Distance to the nearest crate at each correction.
    let mut near_crate_m = Vec::new();
    for t in 0..ticks {
        let out = zone.tick();
        let now = f64::from(t) * f64::from(dt);
        for (_, s) in out.snapshots {
            core.on_message(now, Message::Snapshot(s));
        }
        for (_, e) in out.events {
            core.on_message(now, Message::Event(e));
        }
        frame = core.update(dt, &mover.intent(&frame));
        for m in core.drain_outbox() {
            match m {
                Message::Inputs(b) => zone.on_inputs(me, &b, 0),
                Message::SnapshotAck(a) => zone.on_ack(me, a.tick),
                _ => {}
            }
        }
        let Some(c) = zone.sim().character(me) else { continue };
        let last = start.replace(c.position_m).unwrap_or(c.position_m);
        travelled += (c.position_m - last).length();
        if core.counters().corrections > corrections {
            corrections = core.counters().corrections;
            let nearest = zone.sim().crates().map(|(_, p, _, _)| (p - c.position_m).length()).fold(f32::MAX, f32::min);
            near_crate_m.push(nearest);
        }
    }
    (travelled, core.counters().confirmations, near_crate_m)
}

#[test]
fn bots_move_and_are_corrected_only_where_they_touch_crates() {
    for scenario in [Scenario::Wander, Scenario::Hotspot, Scenario::Shooters] {
        for seed in 1..=3u64 {
            let (travelled, confirmations, near_crate_m) = run(scenario, seed, 600);
            // Twenty seconds at a walk is about 50 m; walls and crowds slow it down.
            assert!(travelled > 40.0, "{scenario} seed {seed}: the bot only travelled {travelled} m");
            assert!(confirmations > 400, "{scenario} seed {seed}: {confirmations} confirmations");
            // Crates are 1 m cubes at most in the arena; a character touching one is within
            // about 1.5 m of its centre.
            for d in &near_crate_m {
                assert!(*d < 2.0, "{scenario} seed {seed}: corrected {d} m from the nearest crate");
            }
        }
    }
}
