//! `pwn bench zone`: the zone core's tick (simulation, interest, per-client snapshots, events)
//! with N scripted players in the default world and no network: every player sends one input a
//! tick and acknowledges every snapshot, as a perfect client would. This is the zone's own CPU
//! cost per tick, without the bot swarm competing for the same cores (which `pwn demo` has).
//! With `--threads` above 1 (the default: every core), two zones run side by side, tick for
//! tick on the same inputs: one building players' views on that many threads, one serially;
//! both are timed, and their outputs are compared (they must be the same bytes).

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
    /// Threads building players' views (interest, snapshots); 1 runs the serial path alone.
    /// Default: the machine's cores.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    threads: Option<u32>,
    /// Print the figures as one JSON object on the last line.
    #[arg(long)]
    json: bool,
}

/// Runs the benchmark.
pub fn bench_zone(cfg: &PwnConfig, args: &BenchZoneArgs) -> anyhow::Result<()> {
    let world = cfg.world(None)?;
    let bounds = world.xz_bounds();
    let threads =
        args.threads.map_or_else(|| std::thread::available_parallelism().map_or(1, usize::from), |t| t as usize);
    let make = |threads: usize| -> anyhow::Result<Zone> {
        let zone_cfg = ZoneConfig { tick_threads: threads, ..ZoneConfig::default() };
        Ok(Zone::new(Sim::new(world.clone(), cfg.sim.clone(), 1)?, zone_cfg))
    };
    let mut zone = make(threads)?;
    // The serial path beside it, on the same inputs (only when the measured one is parallel).
    let mut serial = if threads > 1 { Some(make(1)?) } else { None };
    let players: Vec<EntityId> = (1..=u64::from(args.players)).map(EntityId).collect();
    let mut movers: Vec<Mover> =
        players.iter().map(|p| Mover::new(args.scenario, p.0, bounds, &world.spawn_points)).collect();
    for p in &players {
        zone.join(*p)?;
        if let Some(s) = serial.as_mut() {
            s.join(*p)?;
        }
    }
    let mut acked = vec![0u64; players.len()];
    let mut tick_ms = Vec::with_capacity(args.ticks as usize);
    let (mut step_ms, mut views_ms) = (Vec::new(), Vec::new());
    let mut serial_ms = Vec::with_capacity(args.ticks as usize);
    let mut differing_ticks = 0u32;
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
                view_tick: 0,
            };
            let batch = InputBatch { ack_tick: acked[i], inputs: vec![WireInput::from_input(&input)] };
            zone.on_inputs(*p, &batch, 0);
            if let Some(s) = serial.as_mut() {
                s.on_inputs(*p, &batch, 0);
            }
        }
        let started = Instant::now();
        let out = zone.tick();
        let took = started.elapsed().as_secs_f64() * 1e3;
        if let Some(s) = serial.as_mut() {
            let started = Instant::now();
            let reference = s.tick();
            if t > args.warmup {
                serial_ms.push(started.elapsed().as_secs_f64() * 1e3);
            }
            if reference.snapshots != out.snapshots || reference.events != out.events {
                differing_ticks += 1;
            }
        }
        if t > args.warmup {
            tick_ms.push(took);
            step_ms.push(out.step_ms);
            views_ms.push(out.views_ms);
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
    println!("  tick ms p50 {p50:.2}  p99 {p99:.2}  max {max:.2}  (views and moves on {threads} thread(s))");
    step_ms.sort_by(f64::total_cmp);
    views_ms.sort_by(f64::total_cmp);
    let part = |v: &[f64]| (quantile(v, 0.5), quantile(v, 0.99));
    let ((step_p50, step_p99), (views_p50, views_p99)) = (part(&step_ms), part(&views_ms));
    println!(
        "  of it: simulation step p50 {step_p50:.2} p99 {step_p99:.2}, players' views p50 {views_p50:.2} p99 {views_p99:.2}"
    );
    serial_ms.sort_by(f64::total_cmp);
    let (serial_p50, serial_p99) = (quantile(&serial_ms, 0.5), quantile(&serial_ms, 0.99));
    if serial.is_some() {
        println!(
            "  serial beside it: tick ms p50 {serial_p50:.2}  p99 {serial_p99:.2}; ticks whose output differed: {differing_ticks}"
        );
    }
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
                "step_ms_p50": round3(step_p50),
                "step_ms_p99": round3(step_p99),
                "views_ms_p50": round3(views_p50),
                "views_ms_p99": round3(views_p99),
                "update_bytes_per_snapshot": round3(bytes_per_snapshot),
                "threads": threads,
                "serial_tick_ms_p50": round3(serial_p50),
                "serial_tick_ms_p99": round3(serial_p99),
                "ticks_differing_from_serial": differing_ticks,
            })
        );
    }
    if differing_ticks > 0 {
        anyhow::bail!("the parallel and serial paths differed on {differing_ticks} ticks");
    }
    Ok(())
}
