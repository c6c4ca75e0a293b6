//! `pwn bench zone`: the zone core's tick (simulation, interest, per-client snapshots, events)
//! with N scripted players in the default world and no network: every player sends one input a
//! tick and acknowledges every snapshot, as a perfect client would. This is the zone's own CPU
//! cost per tick, without the bot swarm competing for the same cores (which `pwn demo` has).

use crate::config::PwnConfig;
use crate::stats::{quantile, round3};
use clap::Args;
use pwn_client::Frame;
use pwn_load_tests::scenario::{Mover, Scenario};
use pwn_proto::{InputBatch, WireInput};
use pwn_sim::{EntityId, InputSeq, PlayerInput, Sim};
use pwn_zone_node::zone::{Zone, ZoneConfig};
use std::time::Instant;

/// Flags of `pwn bench zone`.
#[derive(Args, Debug)]
pub struct BenchZoneArgs {
    /// Scripted players.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=20_000))]
    players: u32,
    /// Ticks to measure, after the players have spread out for `--warmup` ticks.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(10..=1_000_000))]
    ticks: u32,
    /// Ticks before measuring.
    #[arg(long, default_value_t = 300)]
    warmup: u32,
    /// How they move: wander, hotspot or shooters.
    #[arg(long, default_value = "wander")]
    scenario: Scenario,
    /// Print the figures as one JSON object on the last line.
    #[arg(long)]
    json: bool,
}

/// Runs the benchmark.
pub fn bench_zone(cfg: &PwnConfig, args: &BenchZoneArgs) -> anyhow::Result<()> {
    let world = cfg.world(None)?;
    let bounds = world.xz_bounds();
    let mut zone = Zone::new(Sim::new(world.clone(), cfg.sim.clone(), 1)?, ZoneConfig::default());
    let players: Vec<EntityId> = (1..=u64::from(args.players)).map(EntityId).collect();
    let mut movers: Vec<Mover> =
        players.iter().map(|p| Mover::new(args.scenario, p.0, bounds, &world.spawn_points)).collect();
    for p in &players {
        zone.join(*p)?;
    }
    let mut acked = vec![0u64; players.len()];
    let mut tick_ms = Vec::with_capacity(args.ticks as usize);
    let (mut updates_bytes, mut snapshots) = (0u64, 0u64);
    for t in 1..=(args.warmup + args.ticks) {
        for (i, p) in players.iter().enumerate() {
            let Some(c) = zone.sim().character(*p) else { continue };
            let frame = Frame {
                me: Some(pwn_client::Drawn { id: p.0, position_m: c.position_m, yaw_rad: c.yaw_rad, health: c.health }),
                ..Frame::default()
            };
            let intent = movers[i].intent(&frame);
            let input = PlayerInput {
                seq: InputSeq(t),
                move_x: intent.move_x,
                move_z: intent.move_z,
                yaw_rad: intent.yaw_rad,
                pitch_rad: intent.pitch_rad,
                buttons: intent.buttons,
            };
            let batch = InputBatch { ack_tick: acked[i], inputs: vec![WireInput::from_input(&input)] };
            zone.on_inputs(*p, &batch, 0);
        }
        let started = Instant::now();
        let out = zone.tick();
        let took = started.elapsed().as_secs_f64() * 1e3;
        if t > args.warmup {
            tick_ms.push(took);
            for (_, s) in &out.snapshots {
                updates_bytes += s.updates.len() as u64;
                snapshots += 1;
            }
        }
        for (player, s) in &out.snapshots {
            if let Ok(i) = players.binary_search(player) {
                acked[i] = s.tick;
            }
        }
    }
    tick_ms.sort_by(f64::total_cmp);
    let (p50, p99, max) = (quantile(&tick_ms, 0.5), quantile(&tick_ms, 0.99), tick_ms.last().copied().unwrap_or(0.0));
    let bytes_per_snapshot = if snapshots == 0 { 0.0 } else { updates_bytes as f64 / snapshots as f64 };
    println!(
        "pwn bench zone: {} players ({}), {} ticks after {} of warm-up",
        args.players, args.scenario, args.ticks, args.warmup
    );
    println!("  tick ms p50 {p50:.2}  p99 {p99:.2}  max {max:.2}");
    println!("  packed update bytes per snapshot {bytes_per_snapshot:.0}");
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "players": args.players,
                "scenario": args.scenario.to_string(),
                "ticks": args.ticks,
                "tick_ms_p50": round3(p50),
                "tick_ms_p99": round3(p99),
                "tick_ms_max": round3(max),
                "update_bytes_per_snapshot": round3(bytes_per_snapshot),
            })
        );
    }
    Ok(())
}
