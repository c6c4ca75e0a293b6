//! `pwn bots` (a bot swarm against a running world) and `pwn demo` (a local world plus a
//! swarm, a summary, an HTML report and, with `--json`, one JSON line of figures).

use crate::config::PwnConfig;
use anyhow::{Context, bail};
use clap::Args;
use pwn_load_tests::report::Summary;
use pwn_load_tests::scenario::Scenario;
use pwn_load_tests::swarm::{BotResult, Progress, SwarmConfig, Timeline, run_swarm};
use pwn_load_tests::threshold::{self, Threshold};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
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
    /// How they move: wander, hotspot, shooters, border, flash-crowd, chat-storm, login-storm or
    /// mixed (docs/LOAD_TESTING.md).
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
    #[arg(long, value_parser = check_link)]
    link: Option<String>,
    /// Print the summary as one JSON line at the end.
    #[arg(long)]
    json: bool,
    /// The store the post-run audit checks (default: `pwn.sqlite` in the data folder, when
    /// there is one, as `pwn up` keeps it).
    #[arg(long)]
    audit_db: Option<PathBuf>,
    /// Skip the post-run store audit.
    #[arg(long)]
    no_audit: bool,
    /// Write the HTML report here (as `pwn demo` does; without zone tick charts, which need
    /// the zones' per-tick stats, but with every scraped role's figures).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Scrape a role's Prometheus endpoint once a second during the run, `NAME=ADDR` (names
    /// starting with zone, gateway or world get that role's figures), e.g.
    /// `--scrape zone-1=127.0.0.1:9101`; repeat for each role.
    #[arg(long = "scrape", value_name = "NAME=ADDR", value_parser = parse_scrape)]
    scrapes: Vec<(String, SocketAddr)>,
    #[command(flatten)]
    load: LoadArgs,
    /// Run the swarm as this many processes (`pwn bots --worker K` each, bots K, K+N, ...),
    /// reporting as one.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::workers::WORKERS_MAX)))]
    workers: u32,
    /// Internal: run as worker K of `--workers` and print the results for the command that
    /// started this one.
    #[arg(long, hide = true)]
    worker: Option<u32>,
}

/// Flags `pwn bots` and `pwn demo` share: the swarm's make-up and its pass/fail thresholds.
#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    /// How many bots are full clients that predict (and measure prediction error and
    /// corrections); the rest are cheap bots that play the same protocol without prediction,
    /// at a fraction of the CPU (default: every bot predicts).
    #[arg(long)]
    pub(crate) predicting: Option<u32>,
    /// A pass/fail threshold on a figure of the summary, `key<op>number` with op one of `<`,
    /// `<=`, `>`, `>=`, `==` (for example `input_ack_ticks_p99<=2`); repeat for several.
    /// Checked at the end; if one fails the command exits non-zero.
    #[arg(long = "threshold", value_name = "KEY<OP>NUMBER")]
    pub(crate) thresholds: Vec<Threshold>,
}

impl LoadArgs {
    /// Full clients among `count` bots.
    pub(crate) fn predicting(&self, count: u32) -> usize {
        self.predicting.unwrap_or(count).min(count) as usize
    }
}

/// Checks the thresholds against the summary: prints their verdicts, adds them to the JSON
/// (`thresholds`, `thresholds_failed`) and returns how many failed.
pub(crate) fn judge(thresholds: &[Threshold], json: &mut serde_json::Map<String, serde_json::Value>) -> usize {
    if thresholds.is_empty() {
        return 0;
    }
    let verdicts = threshold::verdicts(thresholds, json);
    let failed = verdicts.iter().filter(|v| !v.passed).count();
    println!("  thresholds: {} of {} passed", verdicts.len() - failed, verdicts.len());
    print!("{}", threshold::table(&verdicts));
    json.insert("thresholds".into(), threshold::json(&verdicts));
    json.insert("thresholds_failed".into(), failed.into());
    failed
}

/// The error a command ends with when `failed` thresholds failed.
pub(crate) fn verdict(failed: usize) -> anyhow::Result<()> {
    if failed > 0 {
        bail!("{failed} threshold(s) failed");
    }
    Ok(())
}

/// Flags of `pwn demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Bots.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(crate) bots: u32,
    /// Seconds each bot plays.
    #[arg(long, default_value_t = 20.0)]
    pub(crate) duration: f64,
    /// How they move: wander, hotspot, shooters, border, flash-crowd, chat-storm, login-storm or
    /// mixed (docs/LOAD_TESTING.md).
    #[arg(long, default_value = "wander")]
    pub(crate) scenario: Scenario,
    /// Where to write the HTML report.
    #[arg(long, default_value = "report.html")]
    pub(crate) report: PathBuf,
    /// The world's data folder (default: a fresh temporary one, removed afterwards).
    #[arg(long)]
    pub(crate) data: Option<PathBuf>,
    /// Print the summary as one JSON line at the end (the last line of output).
    #[arg(long)]
    pub(crate) json: bool,
    /// Zone nodes: 1 is one zone holding the world, bots connected to it directly; more starts
    /// a world server, that many zones and a gateway, and bots log in through the gateway
    /// (the figures then include handoffs, ghost lag, every zone's tick time and the store
    /// audit).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub(crate) zones: u32,
    #[command(flatten)]
    pub(crate) load: LoadArgs,
    /// Run the swarm as this many `pwn bots` processes reporting as one.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::workers::WORKERS_MAX)))]
    pub(crate) workers: u32,
}

fn parse_scrape(spec: &str) -> Result<(String, SocketAddr), String> {
    let (name, addr) = spec.split_once('=').ok_or_else(|| format!("{spec:?} is not NAME=ADDR"))?;
    let addr: SocketAddr = addr.parse().map_err(|e| format!("{addr:?}: {e}"))?;
    if name.is_empty() || !addr.ip().is_loopback() {
        return Err(format!("{spec:?}: a name and a loopback address"));
    }
    Ok((name.to_owned(), addr))
}

/// Every scraped role's figures, as the summary's `roles` object.
pub(crate) fn roles_json(roles: &[pwn_load_tests::scrape::RoleScrapes]) -> serde_json::Value {
    let r3 = |v: f64| (v * 1e3).round() / 1e3;
    let mut by_role = serde_json::Map::new();
    for r in roles {
        let figures: serde_json::Map<String, serde_json::Value> = pwn_load_tests::scrape::figures(&r.role, &r.last)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.filter(|v| v.is_finite()).map_or(serde_json::Value::Null, |v| r3(v).into())))
            .collect();
        by_role.insert(r.role.clone(), figures.into());
    }
    by_role.into()
}

fn check_link(spec: &str) -> Result<String, String> {
    pwn_net::conditioner::LinkProfile::parse(spec).map(|_| spec.to_owned()).map_err(|e| e.to_string())
}

pub(crate) fn check_duration(duration: f64) -> anyhow::Result<Duration> {
    if !(duration.is_finite() && duration > 0.0 && duration <= 86_400.0) {
        bail!("--duration must be between 0 and 86400 seconds, not {duration}");
    }
    Ok(Duration::from_secs_f64(duration))
}

/// Runs a swarm on a thread of its own (a runtime of two workers), for benchmarks that watch
/// its progress meanwhile.
pub(crate) fn swarm_thread(
    cfg: SwarmConfig,
    progress: Arc<Progress>,
) -> std::thread::JoinHandle<anyhow::Result<Vec<BotResult>>> {
    std::thread::spawn(move || -> anyhow::Result<Vec<BotResult>> {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        Ok(rt.block_on(run_swarm(cfg, progress))?)
    })
}

/// Runs a swarm with a progress line every second on stderr.
pub(crate) fn swarm(cfg: SwarmConfig) -> anyhow::Result<(Vec<BotResult>, Timeline)> {
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
    let timeline = progress.timeline.lock().map(|t| t.clone()).unwrap_or_default();
    Ok((results, timeline))
}

/// `pwn bots`.
pub fn run_bots(config: Option<&std::path::Path>, cfg: &PwnConfig, args: &BotsArgs) -> anyhow::Result<()> {
    let duration = check_duration(args.duration)?;
    let known = Summary::default().json();
    let known = known.keys().map(String::as_str).chain(crate::audit_cmd::FIGURE_KEYS);
    threshold::check_keys(&args.load.thresholds, known)?;
    let ca_pem = pwn_net::tls::dev_ca_cert(&args.data)
        .with_context(|| format!("no development CA in {} (start the world with `pwn up`)", args.data.display()))?;
    let world = cfg.world(args.world.as_deref())?;
    let link = args.link.as_deref().map(pwn_net::conditioner::LinkProfile::parse).transpose()?;
    if args.worker.is_some_and(|k| k >= args.workers) {
        bail!("--worker must be below --workers");
    }
    if args.worker.is_some() {
        // The command that started this worker takes a silent one for stopped or hung.
        crate::workers::heartbeat();
    }
    let run_here = args.workers == 1 || args.worker.is_some();
    let scraper = (args.worker.is_none() && !args.scrapes.is_empty())
        .then(|| pwn_load_tests::scrape::Scraper::start(args.scrapes.clone()));
    let (results, timeline) = if run_here {
        swarm(SwarmConfig {
            addr: args.addr,
            server_name: "localhost".into(),
            ca_pem,
            world,
            sim: cfg.sim.clone(),
            count: args.count as usize,
            predicting: args.load.predicting(args.count),
            duration,
            scenario: args.scenario,
            seed: args.seed,
            joins_per_s: 100.0,
            link,
            login: !args.direct,
            shard: args.worker.map(|k| (k as usize, args.workers as usize)),
            phase: None,
        })?
    } else {
        let worker_args = crate::workers::WorkerArgs {
            addr: args.addr.to_string(),
            data: args.data.clone(),
            count: args.count,
            predicting: args.load.predicting(args.count) as u32,
            duration_s: args.duration,
            scenario: args.scenario.to_string(),
            seed: args.seed,
            world: args.world.clone(),
            direct: args.direct,
            link: args.link.clone(),
        };
        crate::workers::run(config, &worker_args, args.workers)?
    };
    if args.worker.is_some() {
        return crate::workers::report(results, timeline);
    }
    let roles = scraper.map(pwn_load_tests::scrape::Scraper::stop).unwrap_or_default();
    let summary = Summary::of(&results);
    println!("pwn bots: {} bots, {} scenario, {:.0} s", args.count, args.scenario, args.duration);
    print!("{}", summary.table());
    print_failures(&results);
    let mut json = summary.json();
    // After every run, the store's consistency (one owner per entity, no item twice or lost).
    let db = args.audit_db.clone().unwrap_or_else(|| args.data.join("pwn.sqlite"));
    let audit = match (args.no_audit, args.audit_db.is_some() || db.exists()) {
        (false, true) => Some(crate::audit_cmd::audit_sqlite(&db)?),
        _ => None,
    };
    crate::audit_cmd::summarize(audit.as_ref(), &mut json);
    if !roles.is_empty() {
        json.insert("roles".into(), roles_json(&roles));
    }
    let failed = judge(&args.load.thresholds, &mut json);
    if let Some(path) = &args.report {
        let scenario = args.scenario.parameters();
        let page = pwn_load_tests::report::html(&pwn_load_tests::report::ReportInput {
            title: "PWN bots",
            summary: &json,
            scenario: &scenario,
            zones: &[],
            timeline: &timeline,
            results: &results,
            cells: &[],
            roles: &roles,
        });
        std::fs::write(path, page).with_context(|| format!("cannot write {}", path.display()))?;
        println!("  report: {}", path.display());
    }
    if args.json {
        println!("{}", serde_json::Value::Object(json));
    }
    verdict(failed)?;
    audit_verdict(audit.as_ref())
}

/// The error a command ends with when the post-run audit found problems.
pub(crate) fn audit_verdict(audit: Option<&pwn_store::audit::AuditReport>) -> anyhow::Result<()> {
    match audit {
        Some(a) if !a.clean() => {
            bail!("the store audit found problems: {} duplicates, {} losses, {} other", a.duplicates, a.losses, a.other)
        }
        _ => Ok(()),
    }
}

/// Why the first few bots that failed did (a join that never completed, a disconnect).
pub(crate) fn print_failures(results: &[pwn_load_tests::swarm::BotResult]) {
    for r in results.iter().filter(|r| r.failure.is_some()).take(5) {
        println!("  bot {}: {}", r.index, r.failure.as_deref().unwrap_or_default());
    }
}
