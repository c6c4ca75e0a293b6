//! `pwn sim` and `pwn bench sim`: the shared simulation run headless with scripted players.

use crate::config::PwnConfig;
use crate::script::Wanderer;
use crate::stats::{quantile, round3};
use clap::Args;
use pwn_sim::{CrateDesc, EntityId, EntityKind, HitTarget, PlayerInput, Sim, SimEvent, WorldDesc};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

/// Flags of `pwn sim`.
#[derive(Args, Debug)]
pub struct SimArgs {
    /// World description file (default: the configured world, else the built-in arena).
    #[arg(long)]
    world: Option<PathBuf>,
    /// Scripted players.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    characters: u32,
    /// Ticks to simulate.
    #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    ticks: u32,
    /// Seed for the simulation and the scripts; the same seed gives the same final hash.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the summary as one JSON object on the last line.
    #[arg(long)]
    json: bool,
}

/// Flags of `pwn bench sim`.
#[derive(Args, Debug)]
pub struct BenchSimArgs {
    /// Scripted players.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    characters: u32,
    /// Extra dynamic crates scattered over the arena.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(0..=50_000))]
    crates: u32,
    /// Ticks to measure.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u32).range(10..=1_000_000))]
    ticks: u32,
    /// Print the figures as one JSON object on the last line.
    #[arg(long)]
    json: bool,
}

/// A running headless world: the sim, its scripted players and running counts.
struct Headless {
    sim: Sim,
    players: Vec<Wanderer>,
    roam_m: f32,
    shots: u64,
    hits_on_characters: u64,
    deaths: u64,
    tick_ms: Vec<f64>,
}

impl Headless {
    fn new(world: WorldDesc, cfg: &PwnConfig, characters: u32, seed: u64, roam_m: f32) -> anyhow::Result<Self> {
        let mut sim = Sim::new(world, cfg.sim.clone(), seed)?;
        let mut players = Vec::with_capacity(characters as usize);
        for i in 1..=u64::from(characters) {
            sim.spawn_character(EntityId(i))?;
            players.push(Wanderer::new(EntityId(i), seed));
        }
        Ok(Self { sim, players, roam_m, shots: 0, hits_on_characters: 0, deaths: 0, tick_ms: Vec::new() })
    }

    fn inputs(&mut self) -> BTreeMap<EntityId, PlayerInput> {
        let positions: Vec<(EntityId, glam::Vec3)> =
            self.sim.characters().filter(|(_, c)| c.alive()).map(|(id, c)| (id, c.position_m)).collect();
        let mut inputs = BTreeMap::new();
        for p in &mut self.players {
            let Some(me) = self.sim.character(p.id) else { continue };
            let nearest = positions
                .iter()
                .filter(|(id, _)| *id != p.id)
                .min_by(|a, b| a.1.distance_squared(me.position_m).total_cmp(&b.1.distance_squared(me.position_m)))
                .map(|(_, pos)| *pos);
            inputs.insert(p.id, p.input(me, nearest, self.roam_m, self.sim.desc()));
        }
        inputs
    }

    fn tick(&mut self) {
        let inputs = self.inputs();
        let start = Instant::now();
        let report = self.sim.step(&inputs);
        self.tick_ms.push(start.elapsed().as_secs_f64() * 1e3);
        for e in &report.events {
            match e {
                SimEvent::Spawned { kind: EntityKind::Projectile, .. } => self.shots += 1,
                SimEvent::Hit { target: HitTarget::Character(_), .. } => self.hits_on_characters += 1,
                SimEvent::Death { .. } => self.deaths += 1,
                _ => {}
            }
        }
    }
}

/// `pwn sim`: runs the world and prints a line per simulated second and a summary.
pub fn run_sim(cfg: &PwnConfig, args: &SimArgs) -> anyhow::Result<()> {
    let world = cfg.world(args.world.as_deref())?;
    let name = world.name.clone();
    let mut h = Headless::new(world, cfg, args.characters, args.seed, 25.0)?;
    let hz = cfg.sim.tick_hz;
    tracing::info!(world = %name, characters = args.characters, ticks = args.ticks, seed = args.seed, "headless simulation");
    for t in 1..=args.ticks {
        h.tick();
        if t % hz == 0 || t == args.ticks {
            eprintln!(
                "t={:>7.1}s  projectiles={:>4}  shots={:>6}  hits={:>5}  deaths={:>4}  hash={:016x}",
                f64::from(t) / f64::from(hz),
                h.sim.projectiles().count(),
                h.shots,
                h.hits_on_characters,
                h.deaths,
                h.sim.state_hash()
            );
        }
    }
    let hash = format!("{:016x}", h.sim.state_hash());
    println!("world            {name}");
    println!("characters       {}", args.characters);
    println!("ticks            {} ({:.1} s at {hz} Hz)", args.ticks, f64::from(args.ticks) / f64::from(hz));
    println!("shots            {}", h.shots);
    println!("character hits   {}", h.hits_on_characters);
    println!("deaths           {}", h.deaths);
    println!("tick ms p50/p99  {:.3} / {:.3}", quantile(&h.tick_ms, 0.5), quantile(&h.tick_ms, 0.99));
    println!("final state hash {hash}");
    if args.json {
        let summary = serde_json::json!({
            "world": name,
            "characters": args.characters,
            "ticks": args.ticks,
            "seed": args.seed,
            "shots": h.shots,
            "hits": h.hits_on_characters,
            "deaths": h.deaths,
            "tick_ms_p50": round3(quantile(&h.tick_ms, 0.5)),
            "tick_ms_p99": round3(quantile(&h.tick_ms, 0.99)),
            "state_hash": hash,
        });
        println!("{summary}");
    }
    Ok(())
}

/// The arena with `n` extra crates on a grid inside its walls.
fn crowded_arena(n: u32) -> WorldDesc {
    let mut w = WorldDesc::arena();
    let side = (f64::from(n).sqrt().ceil() as u32).max(1);
    let spacing = 50.0 / side as f32;
    for i in 0..n {
        let (gx, gz) = (i % side, i / side);
        let x = -25.0 + (gx as f32 + 0.5) * spacing;
        let z = -25.0 + (gz as f32 + 0.5) * spacing;
        w.crates.push(CrateDesc {
            center_m: [x, 3.0 + (i % 3) as f32, z],
            half_extents_m: [0.3; 3],
            density_kgpm3: 100.0,
        });
    }
    w
}

/// `pwn bench sim`: tick time under load, whole-world snapshot/restore, one prediction step.
pub fn bench_sim(cfg: &PwnConfig, args: &BenchSimArgs) -> anyhow::Result<()> {
    let mut h = Headless::new(crowded_arena(args.crates), cfg, args.characters, 1, 25.0)?;
    // Warm up: let crates settle so the measurement is of a live world, not of the first fall.
    for _ in 0..30 {
        h.tick();
    }
    h.tick_ms.clear();
    let started = Instant::now();
    for t in 0..args.ticks {
        h.tick();
        if t > 0 && t % (cfg.sim.tick_hz * 5) == 0 {
            eprintln!("  {t}/{} ticks, p99 so far {:.3} ms", args.ticks, quantile(&h.tick_ms, 0.99));
        }
    }
    let wall_s = started.elapsed().as_secs_f64();

    let rounds = 20;
    let snap_start = Instant::now();
    let mut snap = h.sim.snapshot();
    for _ in 1..rounds {
        snap = h.sim.snapshot();
    }
    let snapshot_ms = snap_start.elapsed().as_secs_f64() * 1e3 / f64::from(rounds);
    let restore_start = Instant::now();
    for _ in 0..rounds {
        h.sim.restore(&snap);
    }
    let restore_ms = restore_start.elapsed().as_secs_f64() * 1e3 / f64::from(rounds);

    // Prediction: one character's save, step and restore, as a client does per unacked input.
    let me = EntityId(1);
    let mut predict_us = Vec::new();
    let saved = h.sim.save_predicted(me);
    for _ in 0..200 {
        let inputs = h.inputs();
        let input = inputs.get(&me).copied().unwrap_or_default();
        let t0 = Instant::now();
        h.sim.predict_step(me, input);
        predict_us.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    if let Some(s) = saved {
        h.sim.restore_predicted(&s);
    }

    let budget_ms = 1e3 / f64::from(cfg.sim.tick_hz);
    let (p50, p99) = (quantile(&h.tick_ms, 0.5), quantile(&h.tick_ms, 0.99));
    let max = h.tick_ms.iter().copied().fold(0.0, f64::max);
    println!(
        "characters {}  crates {}  ticks {}",
        args.characters,
        args.crates + WorldDesc::arena().crates.len() as u32,
        args.ticks
    );
    println!(
        "tick ms      p50 {p50:.3}  p99 {p99:.3}  max {max:.3}  (budget {budget_ms:.1} ms at {} Hz)",
        cfg.sim.tick_hz
    );
    println!("throughput   {:.0} ticks/s", f64::from(args.ticks) / wall_s);
    println!("snapshot     {snapshot_ms:.3} ms   restore {restore_ms:.3} ms  (whole world, in memory)");
    println!("predict step p50 {:.1} us (one character)", quantile(&predict_us, 0.5));
    if args.json {
        let out = serde_json::json!({
            "characters": args.characters,
            "crates": args.crates + WorldDesc::arena().crates.len() as u32,
            "ticks": args.ticks,
            "tick_ms_p50": round3(p50),
            "tick_ms_p99": round3(p99),
            "tick_ms_max": round3(max),
            "tick_budget_ms": round3(budget_ms),
            "ticks_per_s": (f64::from(args.ticks) / wall_s).round(),
            "snapshot_ms": round3(snapshot_ms),
            "restore_ms": round3(restore_ms),
            "predict_step_us_p50": round3(quantile(&predict_us, 0.5)),
        });
        println!("{out}");
    }
    Ok(())
}
