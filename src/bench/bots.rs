//! `pwn bench bots`: what a bot costs the machine that drives it. One local zone (its own
//! process); N full bots (pwn-client with prediction), then N cheap bots (the same protocol
//! without prediction, pwn-client `[game-14]`), in one run. For each swarm, once every bot of it
//! plays: this process's CPU time (user and system, every thread: the bots, their QUIC
//! endpoint, their timers) over the same window, per bot and per second of play, and the ratio
//! between the two; beside them, the zone's tick p99 and the bots' input acknowledgement.

use crate::config::PwnConfig;
use crate::demo::{DemoWorld, quantile, start_world};
use anyhow::bail;
use clap::Args;
use pwn_load_tests::report::Summary;
use pwn_load_tests::scenario::Scenario;
use pwn_load_tests::swarm::{Progress, SwarmConfig};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Flags of `pwn bench bots`.
#[derive(Args, Debug)]
pub struct BenchBotsArgs {
    /// Bots in each swarm.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=5_000))]
    bots: u32,
    /// Seconds each swarm is measured once all of it plays.
    #[arg(long, default_value_t = 10.0)]
    measure_s: f64,
    /// How the bots move.
    #[arg(long, default_value = "wander")]
    scenario: Scenario,
    /// Print the figures as one JSON line at the end.
    #[arg(long)]
    json: bool,
}

/// What one swarm cost.
struct Phase {
    predicting: bool,
    joined: u64,
    cpu_s: f64,
    window_s: f64,
    tick_ms_p99: f64,
    summary: Summary,
    /// The zone process's CPU over the window by part (seconds).
    zone_cpu: ZoneCpu,
}

/// A zone process's CPU by part, from its threads' names: the tick thread (simulation and
/// sending), the tick's pool (players' views, character moves), and the IO runtime (QUIC: receiving, encrypting, syscalls).
#[derive(Clone, Copy, Debug, Default)]
struct ZoneCpu {
    tick_s: f64,
    pool_s: f64,
    io_s: f64,
    other_s: f64,
}

impl ZoneCpu {
    /// Reads every thread of `pid` (`/proc/PID/task/*/stat`, user plus system time).
    fn of(pid: u32) -> Self {
        let mut c = Self::default();
        // Clock ticks per second of /proc's times (USER_HZ, 100 on Linux).
        const USER_HZ: f64 = 100.0;
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return c };
        for t in tasks.flatten() {
            let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else { continue };
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
            let name = &stat[open + 1..close];
            let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
            // After the name: state is field 3, utime field 14 and stime field 15 (1-based).
            let time = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
            let s = (time(11) + time(12)) / USER_HZ;
            match name {
                "pwn-zone-tick" => c.tick_s += s,
                n if n.starts_with("pwn-tick-pool") => c.pool_s += s,
                n if n.starts_with("tokio-rt-worker") => c.io_s += s,
                _ => c.other_s += s,
            }
        }
        c
    }

    fn minus(self, o: Self) -> Self {
        Self {
            tick_s: self.tick_s - o.tick_s,
            pool_s: self.pool_s - o.pool_s,
            io_s: self.io_s - o.io_s,
            other_s: self.other_s - o.other_s,
        }
    }
}

impl Phase {
    /// CPU seconds per bot per second of play, in milliseconds (a thousandth of a core).
    fn cpu_ms_per_bot_s(&self) -> f64 {
        if self.joined == 0 || self.window_s <= 0.0 {
            return 0.0;
        }
        self.cpu_s * 1e3 / self.joined as f64 / self.window_s
    }
}

/// This process's CPU time so far (every thread, user and system), seconds.
fn cpu_s() -> f64 {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF);
    usage.map_or(0.0, |u| {
        let s = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
        s(u.user_time()) + s(u.system_time())
    })
}

/// Runs the benchmark.
pub fn bench_bots(config: Option<&std::path::Path>, cfg: &PwnConfig, args: &BenchBotsArgs) -> anyhow::Result<()> {
    if !(args.measure_s.is_finite() && (1.0..=3_600.0).contains(&args.measure_s)) {
        bail!("--measure-s must be between 1 and 3600, not {}", args.measure_s);
    }
    let temp = tempfile::tempdir()?;
    let mut world = start_world(config, 1, &[], temp.path())?;
    let mut phases = Vec::new();
    for predicting in [true, false] {
        match run_phase(cfg, args, temp.path(), &world, predicting) {
            Ok(p) => phases.push(p),
            Err(e) => {
                world.stop();
                return Err(e);
            }
        }
    }
    world.stop();
    let (full, cheap) = (&phases[0], &phases[1]);
    let ratio = if cheap.cpu_ms_per_bot_s() > 0.0 { full.cpu_ms_per_bot_s() / cheap.cpu_ms_per_bot_s() } else { 0.0 };
    println!(
        "pwn bench bots: {} bots per swarm, {} scenario, {:.0} s measured each",
        args.bots, args.scenario, args.measure_s
    );
    println!(
        "  {:<10} {:>7} {:>16} {:>14} {:>16} {:>12}",
        "swarm", "joined", "cpu ms/bot/s", "zone tick p99", "input ack p99", "disconnects"
    );
    for p in &phases {
        println!(
            "  {:<10} {:>7} {:>16.3} {:>11.2} ms {:>10.2} ticks {:>12}",
            if p.predicting { "full" } else { "cheap" },
            p.joined,
            p.cpu_ms_per_bot_s(),
            p.tick_ms_p99,
            p.summary.input_ack_ticks_p99,
            p.summary.disconnects
        );
    }
    println!("  a cheap bot costs {ratio:.1}x less CPU than a full one");
    // The zone's own cost per player and tick, by part: what the network shell (the IO
    // runtime: QUIC, encryption, syscalls) costs beside the simulation and the views.
    let per_player_tick_us = |p: &Phase, s: f64| {
        let ticks = p.window_s * f64::from(cfg.sim.tick_hz);
        if p.joined == 0 || ticks <= 0.0 { 0.0 } else { s * 1e6 / p.joined as f64 / ticks }
    };
    println!(
        "  zone CPU per player per tick (us): tick thread / tick pool (views, moves) / network (IO runtime) / other"
    );
    for p in &phases {
        let z = p.zone_cpu;
        println!(
            "  {:<10} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            if p.predicting { "full" } else { "cheap" },
            per_player_tick_us(p, z.tick_s),
            per_player_tick_us(p, z.pool_s),
            per_player_tick_us(p, z.io_s),
            per_player_tick_us(p, z.other_s)
        );
    }
    if args.json {
        let r3 = |v: f64| (v * 1e3).round() / 1e3;
        let json = serde_json::json!({
            "bots": args.bots,
            "scenario": args.scenario.to_string(),
            "measure_s": args.measure_s,
            "full_cpu_ms_per_bot_s": r3(full.cpu_ms_per_bot_s()),
            "cheap_cpu_ms_per_bot_s": r3(cheap.cpu_ms_per_bot_s()),
            "ratio_full_vs_cheap": r3(ratio),
            "full_joined": full.joined,
            "cheap_joined": cheap.joined,
            "full_tick_ms_p99": r3(full.tick_ms_p99),
            "cheap_tick_ms_p99": r3(cheap.tick_ms_p99),
            "full_input_ack_ticks_p99": r3(full.summary.input_ack_ticks_p99),
            "cheap_input_ack_ticks_p99": r3(cheap.summary.input_ack_ticks_p99),
            "full_disconnects": full.summary.disconnects,
            "cheap_disconnects": cheap.summary.disconnects,
            "zone_tick_thread_us_per_player_tick": r3(per_player_tick_us(cheap, cheap.zone_cpu.tick_s)),
            "zone_pool_us_per_player_tick": r3(per_player_tick_us(cheap, cheap.zone_cpu.pool_s)),
            "zone_network_us_per_player_tick": r3(per_player_tick_us(cheap, cheap.zone_cpu.io_s)),
        });
        println!("{json}");
    }
    Ok(())
}

fn run_phase(
    cfg: &PwnConfig,
    args: &BenchBotsArgs,
    data: &std::path::Path,
    world: &DemoWorld,
    predicting: bool,
) -> anyhow::Result<Phase> {
    // Joins at 100 a second, then a settling second, the window, and a margin.
    let join_s = f64::from(args.bots) / 100.0 + 10.0;
    let swarm_cfg = SwarmConfig {
        addr: world.addr,
        server_name: "localhost".into(),
        ca_pem: pwn_net::tls::dev_ca_cert(data)?,
        world: cfg.world(None)?,
        sim: cfg.sim.clone(),
        count: args.bots as usize,
        predicting: if predicting { usize::MAX } else { 0 },
        duration: Duration::from_secs_f64(join_s + args.measure_s + 2.0),
        scenario: args.scenario,
        seed: if predicting { 1 } else { 2 },
        joins_per_s: 100.0,
        link: None,
        login: false,
        shard: None,
        phase: None,
    };
    let progress = Arc::new(Progress::default());
    let swarm = crate::swarm_cmd::swarm_thread(swarm_cfg, progress.clone());
    let kind = if predicting { "full" } else { "cheap" };
    let started = Instant::now();
    while progress.playing.load(Ordering::Relaxed) < u64::from(args.bots) {
        if started.elapsed() > Duration::from_secs_f64(join_s) || swarm.is_finished() {
            eprintln!(
                "pwn bench bots: only {} of {} {kind} bots joined",
                progress.playing.load(Ordering::Relaxed),
                args.bots
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    let seconds = &world.zones[0];
    let mark = seconds.lock().map(|s| s.len()).unwrap_or(0);
    let joined = progress.playing.load(Ordering::Relaxed);
    eprintln!("pwn bench bots: {joined} {kind} bots playing; measuring {:.0} s", args.measure_s);
    let zone_pid = world.roles[0].pid();
    let (cpu0, zone0, t0) = (cpu_s(), ZoneCpu::of(zone_pid), Instant::now());
    std::thread::sleep(Duration::from_secs_f64(args.measure_s));
    let (cpu1, zone1, window_s) = (cpu_s(), ZoneCpu::of(zone_pid), t0.elapsed().as_secs_f64());
    let mut ticks: Vec<f32> =
        seconds.lock().map(|s| s.iter().skip(mark).flat_map(|s| s.tick_ms.clone()).collect()).unwrap_or_default();
    ticks.sort_by(f32::total_cmp);
    let results = swarm.join().map_err(|_| anyhow::anyhow!("the swarm thread panicked"))??;
    Ok(Phase {
        predicting,
        joined,
        cpu_s: cpu1 - cpu0,
        window_s,
        tick_ms_p99: quantile(&ticks, 0.99),
        summary: Summary::of(&results),
        zone_cpu: zone1.minus(zone0),
    })
}
