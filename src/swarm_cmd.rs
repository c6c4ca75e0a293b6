//! `pwn bots` (a bot swarm against a running world) and `pwn demo` (a local world plus a
//! swarm, a summary, an HTML report and, with `--json`, one JSON line of figures).

use crate::config::PwnConfig;
use crate::up::Role;
use anyhow::{Context, bail};
use clap::Args;
use pwn_load_tests::report::{Summary, ZoneSeries, html};
use pwn_load_tests::scenario::Scenario;
use pwn_load_tests::swarm::{BotResult, Progress, SwarmConfig, run_swarm};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Flags of `pwn bots`.
#[derive(Args, Debug)]
pub struct BotsArgs {
    /// Where the world's players connect.
    #[arg(long, default_value = "127.0.0.1:7100")]
    addr: SocketAddr,
    /// The data folder holding the development CA (`pwn up`'s).
    #[arg(long, default_value = "data")]
    data: PathBuf,
    /// Bots.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    count: u32,
    /// Seconds each bot plays.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// How they move: wander, hotspot or shooters.
    #[arg(long, default_value = "wander")]
    scenario: Scenario,
    /// World description (must be the server's; default: the configured world, else the arena).
    #[arg(long)]
    world: Option<PathBuf>,
    /// Seed of the bots' movement.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Connect straight to a zone node that places players directly (`pwn zone` without
    /// `--gateway-only`) instead of logging in through a gateway.
    #[arg(long)]
    direct: bool,
    /// Play over a conditioned link: one-way latency, jitter, loss (e.g. 50ms,10ms,1%),
    /// applied in process to each bot's datagrams both ways.
    #[arg(long, value_parser = parse_link)]
    link: Option<pwn_net::conditioner::LinkProfile>,
    /// Print the summary as one JSON line at the end.
    #[arg(long)]
    json: bool,
}

/// Flags of `pwn demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Bots.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    bots: u32,
    /// Seconds each bot plays.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// How they move: wander, hotspot or shooters.
    #[arg(long, default_value = "wander")]
    scenario: Scenario,
    /// Where to write the HTML report.
    #[arg(long, default_value = "report.html")]
    report: PathBuf,
    /// The world's data folder (default: a fresh temporary one, removed afterwards).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Print the summary as one JSON line at the end (the last line of output).
    #[arg(long)]
    json: bool,
}

fn parse_link(spec: &str) -> Result<pwn_net::conditioner::LinkProfile, String> {
    pwn_net::conditioner::LinkProfile::parse(spec).map_err(|e| e.to_string())
}

fn check_duration(duration: f64) -> anyhow::Result<Duration> {
    if !(duration.is_finite() && duration > 0.0 && duration <= 86_400.0) {
        bail!("--duration must be between 0 and 86400 seconds, not {duration}");
    }
    Ok(Duration::from_secs_f64(duration))
}

/// Runs a swarm with a progress line every second on stderr.
fn swarm(cfg: SwarmConfig) -> anyhow::Result<Vec<BotResult>> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let progress = Arc::new(Progress::default());
    let count = cfg.count;
    let started = Instant::now();
    let results = runtime.block_on(async {
        let p = progress.clone();
        let ticker = tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            every.tick().await;
            let mut last_inputs = 0;
            loop {
                every.tick().await;
                let inputs = p.inputs.load(Ordering::Relaxed);
                eprintln!(
                    "bots: {:>5.0} s  playing {:>5}/{count}  disconnects {:>3}  inputs/s {:>6}  corrections {:>6}",
                    started.elapsed().as_secs_f64(),
                    p.playing.load(Ordering::Relaxed),
                    p.disconnects.load(Ordering::Relaxed),
                    inputs - last_inputs,
                    p.corrections.load(Ordering::Relaxed),
                );
                last_inputs = inputs;
            }
        });
        let results = run_swarm(cfg, progress.clone()).await;
        ticker.abort();
        results
    })?;
    Ok(results)
}

/// `pwn bots`.
pub fn run_bots(cfg: &PwnConfig, args: &BotsArgs) -> anyhow::Result<()> {
    let duration = check_duration(args.duration)?;
    let ca_pem = pwn_net::tls::dev_ca_cert(&args.data)
        .with_context(|| format!("no development CA in {} (start the world with `pwn up`)", args.data.display()))?;
    let world = cfg.world(args.world.as_deref())?;
    let results = swarm(SwarmConfig {
        addr: args.addr,
        server_name: "localhost".into(),
        ca_pem,
        world,
        sim: cfg.sim.clone(),
        count: args.count as usize,
        duration,
        scenario: args.scenario,
        seed: args.seed,
        joins_per_s: 100.0,
        link: args.link,
        login: !args.direct,
    })?;
    let summary = Summary::of(&results);
    println!("pwn bots: {} bots, {} scenario, {:.0} s", args.count, args.scenario, args.duration);
    print!("{}", summary.table());
    print_failures(&results);
    if args.json {
        println!("{}", serde_json::Value::Object(summary.json()));
    }
    Ok(())
}

/// One `stats` line of the zone.
#[derive(Clone, Debug, Default)]
struct ZoneSecond {
    tick_ms: Vec<f32>,
    players: f64,
    /// Since the zone started.
    inputs_missed: u64,
    /// Since the zone started.
    overruns: u64,
    /// Input-to-acknowledgement times in the zone this second: `(ms bucket, count)`.
    input_ack_ms: Vec<(u64, u64)>,
}

/// The `q` quantile of a histogram of 1 ms buckets, as the bucket's upper edge in ms.
fn histogram_quantile(buckets: &std::collections::BTreeMap<u64, u64>, q: f64) -> f64 {
    let total: u64 = buckets.values().sum();
    let rank = (q * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (ms, n) in buckets {
        seen += n;
        if seen >= rank {
            return (*ms + 1) as f64;
        }
    }
    0.0
}

fn quantile(sorted: &[f32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    f64::from(sorted[i])
}

/// `pwn demo`.
pub fn run_demo(config: Option<&std::path::Path>, cfg: &PwnConfig, args: &DemoArgs) -> anyhow::Result<()> {
    let duration = check_duration(args.duration)?;
    let temp = tempfile::tempdir()?;
    let data = args.data.clone().unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&data).with_context(|| format!("cannot create {}", data.display()))?;
    let exe = std::env::current_exe().context("cannot find the pwn executable")?;
    let mut zone = Command::new(&exe);
    if let Some(c) = config {
        zone.arg("--config").arg(c);
    }
    zone.args(["zone", "--listen", "127.0.0.1:0", "--stats", "--data"]).arg(&data);
    let mut child = zone.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().context("cannot start the zone node")?;
    let stdout = child.stdout.take().context("zone stdout")?;
    let mut zone = Role::new("zone", child);
    let mut reader = BufReader::new(stdout);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    let Some(addr) = first.split_whitespace().nth(4).and_then(|a| a.parse::<SocketAddr>().ok()) else {
        zone.stop();
        bail!("the zone node did not start (said {first:?})");
    };
    // The zone's per-second stats, collected while the swarm runs.
    let seconds: Arc<Mutex<Vec<ZoneSecond>>> = Arc::default();
    let sink = seconds.clone();
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            let Some(json) = line.strip_prefix("stats ") else { continue };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else { continue };
            let second = ZoneSecond {
                tick_ms: v["tick_ms"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|x| x.as_f64()).map(|x| x as f32).collect())
                    .unwrap_or_default(),
                players: v["players"].as_f64().unwrap_or(0.0),
                inputs_missed: v["inputs_missed"].as_u64().unwrap_or(0),
                overruns: v["overruns"].as_u64().unwrap_or(0),
                input_ack_ms: v["input_ack_ms"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|p| Some((p.get(0)?.as_u64()?, p.get(1)?.as_u64()?))).collect())
                    .unwrap_or_default(),
            };
            if let Ok(mut s) = sink.lock() {
                s.push(second);
            }
        }
    });
    eprintln!("pwn demo: zone node (pid {}) on {addr}; {} bots for {:.0} s", zone.pid(), args.bots, args.duration);
    let world = cfg.world(None)?;
    let bounds = world.xz_bounds();
    let ca_pem = pwn_net::tls::dev_ca_cert(&data)?;
    let outcome = swarm(SwarmConfig {
        addr,
        server_name: "localhost".into(),
        ca_pem,
        world,
        sim: cfg.sim.clone(),
        count: args.bots as usize,
        duration,
        scenario: args.scenario,
        seed: 1,
        joins_per_s: 100.0,
        link: None,
        login: false,
    });
    zone.stop();
    let results = outcome?;

    let per_second = seconds.lock().map(|s| s.clone()).unwrap_or_default();
    // Only seconds with bots in the world count towards the tick figures.
    let busy: Vec<&ZoneSecond> = per_second.iter().filter(|s| s.players > 0.0).collect();
    let mut all: Vec<f32> = busy.iter().flat_map(|s| s.tick_ms.iter().copied()).collect();
    let last = per_second.last().cloned().unwrap_or_default();
    all.sort_by(f32::total_cmp);
    let mut series = ZoneSeries::default();
    for second in &per_second {
        let mut t = second.tick_ms.clone();
        t.sort_by(f32::total_cmp);
        series.tick_ms_p99.push(quantile(&t, 0.99));
        series.tick_ms_max.push(t.last().copied().map_or(0.0, f64::from));
        series.players.push(second.players);
    }
    let summary = Summary::of(&results);
    let mut json = summary.json();
    let r3 = |v: f64| (v * 1e3).round() / 1e3;
    json.insert("scenario".into(), args.scenario.to_string().into());
    json.insert("duration_s".into(), args.duration.into());
    json.insert("tick_ms_p50".into(), r3(quantile(&all, 0.5)).into());
    json.insert("tick_ms_p99".into(), r3(quantile(&all, 0.99)).into());
    json.insert("tick_ms_max".into(), r3(all.last().copied().map_or(0.0, f64::from)).into());
    json.insert("ticks_measured".into(), all.len().into());
    json.insert("tick_overruns".into(), last.overruns.into());
    json.insert("zone_inputs_missed".into(), last.inputs_missed.into());
    // The zone's own share of input acknowledgement: from an input reaching the zone process
    // to the acknowledging snapshot being queued (the client-side figure adds both networks
    // and the bots' own scheduling).
    let mut acks = std::collections::BTreeMap::new();
    for (ms, n) in busy.iter().flat_map(|s| s.input_ack_ms.iter()) {
        *acks.entry(*ms).or_insert(0u64) += n;
    }
    let tick_ms = f64::from(cfg.sim.dt_s()) * 1e3;
    json.insert("zone_input_ack_ms_p50".into(), histogram_quantile(&acks, 0.5).into());
    json.insert("zone_input_ack_ms_p99".into(), histogram_quantile(&acks, 0.99).into());
    json.insert("zone_input_ack_ticks_p99".into(), r3(histogram_quantile(&acks, 0.99) / tick_ms).into());
    let json = serde_json::Value::Object(json);
    let page = html("PWN demo", &json, &series, &results, bounds);
    std::fs::write(&args.report, page).with_context(|| format!("cannot write {}", args.report.display()))?;

    println!("pwn demo: {} bots, {} scenario, {:.0} s", args.bots, args.scenario, args.duration);
    println!("  {:<34} {:>12.2}", "zone tick ms p50", quantile(&all, 0.5));
    println!("  {:<34} {:>12.2}", "zone tick ms p99", quantile(&all, 0.99));
    println!("  {:<34} {:>12.2}", "zone input ack ms p99 (in zone)", histogram_quantile(&acks, 0.99));
    print!("{}", summary.table());
    print_failures(&results);
    println!("  report: {}", args.report.display());
    if args.json {
        println!("{json}");
    }
    Ok(())
}

/// Why the first few bots that failed did (a join that never completed, a disconnect).
fn print_failures(results: &[pwn_load_tests::swarm::BotResult]) {
    for r in results.iter().filter(|r| r.failure.is_some()).take(5) {
        println!("  bot {}: {}", r.index, r.failure.as_deref().unwrap_or_default());
    }
}
