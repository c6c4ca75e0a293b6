//! `pwn bench sim`: pwn-sim's tick time with N scripted players, and in the same run, tick for
//! tick, the same players with the same inputs moved by rapier's `KinematicCharacterController`
//! plus a plain physics step (the baseline a developer using rapier alone would write).

use super::baseline::Baseline;
use crate::config::PwnConfig;
use crate::headless::Headless;
use crate::script::Roam;
use crate::stats::{quantile, round3};
use clap::Args;
use pwn_sim::{BoxDesc, CrateDesc, EntityId, PlayerInput, WorldDesc};
use std::time::Instant;

/// Flags of `pwn bench sim`.
#[derive(Args, Debug)]
pub struct BenchSimArgs {
    /// Scripted players.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=20_000))]
    players: u32,
    /// Ticks to measure (after a warm-up of two simulated seconds).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(10..=1_000_000))]
    ticks: u32,
    /// Skip the rapier baseline (pwn-sim figures only).
    #[arg(long)]
    no_baseline: bool,
    /// Print the figures as one JSON object on the last line.
    #[arg(long)]
    json: bool,
}

/// Half the side of the benchmark world's populated square.
const BENCH_HALF_SIDE_M: f32 = 256.0;
/// One player in this many shoots at whoever is near; everyone else only moves.
const SHOOTER_EVERY: u64 = 10;
/// Hotspots the players crowd into, on a ring of this radius.
const HOTSPOT_RING_M: f32 = 120.0;
/// Spread of waypoints (and spawn points) around a hotspot.
const HOTSPOT_RADIUS_M: f32 = 30.0;
/// Spacing of the obstacle grid.
const OBSTACLE_SPACING_M: f32 = 16.0;

/// A 512 m square with an obstacle every 16 m (boxes, low platforms to step onto, ramps, walls),
/// scattered crates, and eight hotspots with spawn points around them.
fn bench_world() -> (WorldDesc, Vec<glam::Vec3>) {
    let mut w = WorldDesc::flat(2.0 * BENCH_HALF_SIDE_M + 64.0);
    w.name = "bench".into();
    w.spawn_points.clear();
    let n = (2.0 * BENCH_HALF_SIDE_M / OBSTACLE_SPACING_M) as i32;
    for gz in 0..n {
        for gx in 0..n {
            let x = -BENCH_HALF_SIDE_M + (gx as f32 + 0.5) * OBSTACLE_SPACING_M;
            let z = -BENCH_HALF_SIDE_M + (gz as f32 + 0.5) * OBSTACLE_SPACING_M;
            let kind = (gx * 7 + gz * 13) % 5;
            let b = match kind {
                // A low platform, climbable as a step.
                0 => BoxDesc { center_m: [x, 0.125, z], half_extents_m: [2.0, 0.125, 2.0], rotation_deg: [0.0; 3] },
                // A ramp.
                1 => {
                    BoxDesc { center_m: [x, 0.6, z], half_extents_m: [1.5, 0.1, 3.0], rotation_deg: [-15.0, 0.0, 0.0] }
                }
                // A wall segment.
                2 => BoxDesc { center_m: [x, 1.5, z], half_extents_m: [3.0, 1.5, 0.3], rotation_deg: [0.0, 30.0, 0.0] },
                // Blocks of two sizes.
                3 => BoxDesc { center_m: [x, 1.0, z], half_extents_m: [1.0, 1.0, 1.0], rotation_deg: [0.0; 3] },
                _ => BoxDesc { center_m: [x, 1.5, z], half_extents_m: [1.5, 1.5, 1.5], rotation_deg: [0.0, 45.0, 0.0] },
            };
            w.boxes.push(b);
            if (gx + gz) % 9 == 0 {
                w.crates.push(CrateDesc {
                    center_m: [x + 4.0, 0.5, z - 4.0],
                    half_extents_m: [0.5; 3],
                    density_kgpm3: 100.0,
                });
            }
        }
    }
    let hotspots: Vec<glam::Vec3> = (0..8)
        .map(|i| {
            let a = i as f32 / 8.0 * std::f32::consts::TAU;
            glam::Vec3::new(a.cos() * HOTSPOT_RING_M, 0.0, a.sin() * HOTSPOT_RING_M)
        })
        .collect();
    // Spawn points in the open lanes between obstacles around each hotspot, so crowds form
    // from the first tick and the measurement is of a jammed steady state.
    for h in &hotspots {
        let cells = (HOTSPOT_RADIUS_M / OBSTACLE_SPACING_M).ceil() as i32;
        for gz in -cells..=cells {
            for gx in -cells..=cells {
                let snap = |v: f32| (v / OBSTACLE_SPACING_M).floor() * OBSTACLE_SPACING_M;
                let x = snap(h.x) + gx as f32 * OBSTACLE_SPACING_M;
                let z = snap(h.z) + gz as f32 * OBSTACLE_SPACING_M;
                w.spawn_points.push([x, 1.0, z]);
            }
        }
    }
    (w, hotspots)
}

/// Runs the benchmark and prints its figures.
pub fn bench_sim(cfg: &PwnConfig, args: &BenchSimArgs) -> anyhow::Result<()> {
    let (world, hotspots) = bench_world();
    let mut h = Headless::new(
        world.clone(),
        cfg,
        args.players,
        1,
        Roam { hotspots, radius_m: HOTSPOT_RADIUS_M, shooter_every: SHOOTER_EVERY },
    )?;
    let starts: Vec<glam::Vec3> = h.sim.characters().map(|(_, c)| c.position_m).collect();
    let mut baseline = (!args.no_baseline).then(|| Baseline::new(&world, &cfg.sim, &starts));
    let ids: Vec<EntityId> = h.sim.characters().map(|(id, _)| id).collect();
    let warmup = 2 * cfg.sim.tick_hz;
    let mut baseline_ms = Vec::new();
    eprintln!(
        "pwn bench sim: {} players, {} boxes, {} crates; {} warm-up + {} measured ticks{}",
        args.players,
        world.boxes.len(),
        world.crates.len(),
        warmup,
        args.ticks,
        if baseline.is_some() { ", interleaved with the rapier KCC baseline" } else { "" }
    );
    let started = Instant::now();
    for t in 0..warmup + args.ticks {
        if t == warmup {
            h.tick_ms.clear();
            baseline_ms.clear();
        }
        let inputs = h.inputs();
        h.step(&inputs);
        if let Some(b) = baseline.as_mut() {
            let per_character: Vec<Option<PlayerInput>> = ids.iter().map(|id| inputs.get(id).copied()).collect();
            let t0 = Instant::now();
            b.step(&per_character);
            baseline_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        if t > warmup && (t - warmup).is_multiple_of(cfg.sim.tick_hz * 5) {
            eprintln!(
                "  {}/{} ticks  pwn-sim p99 {:.2} ms  baseline p99 {:.2} ms  ({:.0} s)",
                t - warmup,
                args.ticks,
                quantile(&h.tick_ms, 0.99),
                quantile(&baseline_ms, 0.99),
                started.elapsed().as_secs_f64()
            );
        }
    }

    // What the players were doing at the end, so a fast tick cannot hide an idle world.
    let speeds: Vec<f64> = h
        .sim
        .characters()
        .filter(|(_, c)| c.alive())
        .map(|(_, c)| f64::from(glam::Vec2::new(c.velocity_mps.x, c.velocity_mps.z).length()))
        .collect();
    let moving_fraction = speeds.iter().filter(|v| **v > 0.5).count() as f64 / speeds.len().max(1) as f64;
    let mean_speed_mps = speeds.iter().sum::<f64>() / speeds.len().max(1) as f64;
    let projectiles = h.sim.projectiles().count();
    let (snapshot_ms, restore_ms) = time_snapshots(&mut h);
    let predict_us = time_prediction(&mut h);

    let budget_ms = 1e3 / f64::from(cfg.sim.tick_hz);
    let players = f64::from(args.players);
    let p = |v: &[f64], q| quantile(v, q);
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let (p50, p99) = (p(&h.tick_ms, 0.5), p(&h.tick_ms, 0.99));
    println!(
        "players {}  ticks {}  budget {budget_ms:.1} ms/tick at {} Hz  (one thread)",
        args.players, args.ticks, cfg.sim.tick_hz
    );
    println!("                 p50 ms   p99 ms   max ms   player-ticks/s");
    println!(
        "pwn-sim        {p50:>8.2} {p99:>8.2} {:>8.2} {:>16.0}",
        max(&h.tick_ms),
        players / mean(&h.tick_ms) * 1e3
    );
    let mut ratio = None;
    if !baseline_ms.is_empty() {
        let (b50, b99) = (p(&baseline_ms, 0.5), p(&baseline_ms, 0.99));
        println!(
            "rapier KCC     {b50:>8.2} {b99:>8.2} {:>8.2} {:>16.0}",
            max(&baseline_ms),
            players / mean(&baseline_ms) * 1e3
        );
        ratio = Some(p99 / b99);
        println!("ratio pwn-sim / rapier KCC at p99: {:.3}", p99 / b99);
    }
    println!(
        "at the end: {:.0}% of live players moving, mean speed {mean_speed_mps:.2} m/s, {projectiles} projectiles in flight, {} shots, {} deaths",
        moving_fraction * 100.0,
        h.shots,
        h.deaths
    );
    println!("snapshot {snapshot_ms:.2} ms, restore {restore_ms:.2} ms (whole world, in memory)");
    println!("prediction step p50 {:.1} us (one character)", p(&predict_us, 0.5));
    if args.json {
        let out = serde_json::json!({
            "players": args.players,
            "ticks": args.ticks,
            "tick_ms_p50": round3(p50),
            "tick_ms_p99": round3(p99),
            "tick_ms_max": round3(max(&h.tick_ms)),
            "baseline_tick_ms_p50": round3(p(&baseline_ms, 0.5)),
            "baseline_tick_ms_p99": round3(p(&baseline_ms, 0.99)),
            "ratio_vs_rapier_kcc": ratio.map(round3),
            "player_ticks_per_s": (players / mean(&h.tick_ms) * 1e3).round(),
            "moving_fraction": round3(moving_fraction),
            "mean_speed_mps": round3(mean_speed_mps),
            "projectiles_in_flight": projectiles,
            "snapshot_ms": round3(snapshot_ms),
            "restore_ms": round3(restore_ms),
            "predict_step_us_p50": round3(p(&predict_us, 0.5)),
        });
        println!("{out}");
    }
    Ok(())
}

/// Mean cost of a whole-world snapshot and of restoring it.
fn time_snapshots(h: &mut Headless) -> (f64, f64) {
    let rounds = 10;
    let t0 = Instant::now();
    let mut snap = h.sim.snapshot();
    for _ in 1..rounds {
        snap = h.sim.snapshot();
    }
    let snapshot_ms = t0.elapsed().as_secs_f64() * 1e3 / f64::from(rounds);
    let t1 = Instant::now();
    for _ in 0..rounds {
        h.sim.restore(&snap);
    }
    (snapshot_ms, t1.elapsed().as_secs_f64() * 1e3 / f64::from(rounds))
}

/// Cost of one client prediction step of a live, moving character.
fn time_prediction(h: &mut Headless) -> Vec<f64> {
    let Some(me) = h.sim.characters().find(|(_, c)| c.alive()).map(|(id, _)| id) else { return Vec::new() };
    let saved = h.sim.save_predicted(me);
    let mut us = Vec::new();
    for _ in 0..200 {
        let input = h.inputs().get(&me).copied().unwrap_or_default();
        let t0 = Instant::now();
        h.sim.predict_step(me, input);
        us.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    if let Some(s) = saved {
        h.sim.restore_predicted(&s);
    }
    us
}
