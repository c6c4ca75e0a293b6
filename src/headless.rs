//! A headless world: the shared simulation driven by scripted wanderers, used by `pwn sim` and
//! `pwn bench sim`.

use crate::config::PwnConfig;
use crate::script::{Roam, Wanderer};
use crate::stats::{quantile, round3};
use clap::Args;
use pwn_sim::{EntityId, EntityKind, HitTarget, PlayerInput, Sim, SimEvent, WorldDesc};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Instant;

/// Shots are only aimed at someone this close.
const AIM_RANGE_M: f32 = 25.0;

/// The simulation plus its scripted players and running counts.
pub struct Headless {
    /// The world.
    pub sim: Sim,
    players: Vec<Wanderer>,
    roam: Roam,
    /// Projectiles fired so far.
    pub shots: u64,
    /// Projectile hits on characters so far.
    pub hits_on_characters: u64,
    /// Deaths so far.
    pub deaths: u64,
    /// Duration of every `Sim::step` so far.
    pub tick_ms: Vec<f64>,
}

impl Headless {
    /// A world with `characters` wanderers spawned by the sim's seeded spawn rule.
    pub fn new(world: WorldDesc, cfg: &PwnConfig, characters: u32, seed: u64, roam: Roam) -> anyhow::Result<Self> {
        let mut sim = Sim::new(world, cfg.sim.clone(), seed)?;
        let mut players = Vec::with_capacity(characters as usize);
        for i in 1..=u64::from(characters) {
            sim.spawn_character(EntityId(i))?;
            players.push(Wanderer::new(EntityId(i), seed));
        }
        Ok(Self { sim, players, roam, shots: 0, hits_on_characters: 0, deaths: 0, tick_ms: Vec::new() })
    }

    /// This tick's scripted inputs. The nearest target comes from a coarse grid, so choosing
    /// inputs stays cheap next to the step being measured.
    pub fn inputs(&mut self) -> BTreeMap<EntityId, PlayerInput> {
        let key = |p: glam::Vec3| ((p.x / AIM_RANGE_M).floor() as i32, (p.z / AIM_RANGE_M).floor() as i32);
        let mut grid: HashMap<(i32, i32), Vec<(EntityId, glam::Vec3)>> = HashMap::new();
        for (id, c) in self.sim.characters().filter(|(_, c)| c.alive()) {
            grid.entry(key(c.position_m)).or_default().push((id, c.position_m));
        }
        let mut inputs = BTreeMap::new();
        for p in &mut self.players {
            let Some(me) = self.sim.character(p.id) else { continue };
            let (cx, cz) = key(me.position_m);
            let mut nearest: Option<(f32, glam::Vec3)> = None;
            for dz in -1..=1 {
                for dx in -1..=1 {
                    for (id, pos) in grid.get(&(cx + dx, cz + dz)).into_iter().flatten() {
                        let d = pos.distance_squared(me.position_m);
                        if *id != p.id && nearest.is_none_or(|(best, _)| d < best) {
                            nearest = Some((d, *pos));
                        }
                    }
                }
            }
            inputs.insert(p.id, p.input(me, nearest.map(|(_, pos)| pos), &self.roam));
        }
        inputs
    }

    /// Steps the sim with `inputs`, timing the step and counting events.
    pub fn step(&mut self, inputs: &BTreeMap<EntityId, PlayerInput>) {
        let start = Instant::now();
        let report = self.sim.step(inputs);
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

/// `pwn sim`: runs the world and prints a line per simulated second and a summary.
pub fn run_sim(cfg: &PwnConfig, args: &SimArgs) -> anyhow::Result<()> {
    let world = cfg.world(args.world.as_deref())?;
    let name = world.name.clone();
    let hotspots = world.spawn_points.iter().map(|p| glam::Vec3::from(*p)).collect();
    let mut h =
        Headless::new(world, cfg, args.characters, args.seed, Roam { hotspots, radius_m: 15.0, shooter_every: 1 })?;
    let hz = cfg.sim.tick_hz;
    tracing::info!(world = %name, characters = args.characters, ticks = args.ticks, seed = args.seed, "headless simulation");
    for t in 1..=args.ticks {
        let inputs = h.inputs();
        h.step(&inputs);
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
    let (p50, p99) = (quantile(&h.tick_ms, 0.5), quantile(&h.tick_ms, 0.99));
    println!("world            {name}");
    println!("characters       {}", args.characters);
    println!("ticks            {} ({:.1} s at {hz} Hz)", args.ticks, f64::from(args.ticks) / f64::from(hz));
    println!("shots            {}", h.shots);
    println!("character hits   {}", h.hits_on_characters);
    println!("deaths           {}", h.deaths);
    println!("tick ms p50/p99  {p50:.3} / {p99:.3}");
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
            "tick_ms_p50": round3(p50),
            "tick_ms_p99": round3(p99),
            "state_hash": hash,
        });
        println!("{summary}");
    }
    Ok(())
}
