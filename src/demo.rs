//! `pwn demo`: a local world, a bot swarm against it, a summary, an HTML report and, with
//! `--json`, one JSON line of figures. One zone: the zone process alone, bots connected to it
//! directly. Several zones: a world server, the zones and a gateway, bots logging in through
//! the gateway; the figures then add handoffs, ghost lag, every zone's tick time and the store
//! audit after the run.

use crate::config::PwnConfig;
use crate::swarm_cmd::{DemoArgs, audit_verdict, check_duration, judge, print_failures, swarm, verdict};
use crate::up::{Role, start_role};
use anyhow::{Context, bail};
use pwn_load_tests::charts::MapCell;
use pwn_load_tests::report::{ReportInput, Summary, ZoneTimeline, html};
use pwn_load_tests::swarm::SwarmConfig;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// One second of a zone's `stats` line.
#[derive(Clone, Debug, Default)]
pub(crate) struct ZoneSecond {
    pub(crate) tick_ms: Vec<f32>,
    pub(crate) players: f64,
    inputs_missed: u64,
    overruns: u64,
    input_ack_ms: Vec<(u64, u64)>,
    /// Cumulative since the zone started.
    ghost_lag_ticks: Vec<u64>,
    handoffs_in: u64,
}

pub(crate) type Seconds = Arc<Mutex<Vec<ZoneSecond>>>;

fn parse_second(v: &serde_json::Value) -> ZoneSecond {
    let u64s = |key: &str| -> Vec<u64> {
        v[key].as_array().map(|a| a.iter().filter_map(serde_json::Value::as_u64).collect()).unwrap_or_default()
    };
    ZoneSecond {
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
        ghost_lag_ticks: u64s("ghost_lag_ticks"),
        handoffs_in: v["handoffs_in"].as_u64().unwrap_or(0),
    }
}

/// Starts a zone with `--stats`; returns it, its address and its seconds as they come.
fn start_zone(
    exe: &std::path::Path,
    config: Option<&std::path::Path>,
    args: &[String],
) -> anyhow::Result<(Role, SocketAddr, Seconds)> {
    let mut zone = Command::new(exe);
    if let Some(c) = config {
        zone.arg("--config").arg(c);
    }
    zone.args(args).arg("--stats");
    let mut child = zone.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().context("cannot start a zone node")?;
    let stdout = child.stdout.take().context("zone stdout")?;
    let mut zone = Role::new("zone", child);
    let mut reader = BufReader::new(stdout);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    let Some(addr) = first.split_whitespace().nth(4).and_then(|a| a.parse::<SocketAddr>().ok()) else {
        zone.stop();
        bail!("the zone node did not start (said {first:?})");
    };
    let seconds: Seconds = Arc::default();
    let sink = seconds.clone();
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            let Some(json) = line.strip_prefix("stats ") else { continue };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else { continue };
            if let Ok(mut s) = sink.lock() {
                s.push(parse_second(&v));
            }
        }
    });
    Ok((zone, addr, seconds))
}

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

/// The smallest lag `l` (ticks) with at least `q` of the states at or below it.
fn lag_quantile(buckets: &[u64], q: f64) -> f64 {
    let total: u64 = buckets.iter().sum();
    let rank = (q * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (lag, n) in buckets.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return lag as f64;
        }
    }
    0.0
}

pub(crate) fn quantile(sorted: &[f32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    f64::from(sorted[i])
}

/// The local world of a demo: its roles (players' side last) and where bots connect.
pub(crate) struct DemoWorld {
    pub(crate) roles: Vec<Role>,
    pub(crate) zones: Vec<Seconds>,
    pub(crate) addr: SocketAddr,
    login: bool,
    /// Each role's Prometheus endpoint (`zone-1`, ..., `world`, `gateway`).
    pub(crate) metrics: Vec<(String, SocketAddr)>,
}

/// A loopback address for a role's metrics endpoint: a port free a moment ago (the role binds
/// it soon after; a clash would show as a role that did not start).
fn metrics_addr() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

impl DemoWorld {
    pub(crate) fn stop(&mut self) {
        for r in self.roles.iter_mut().rev() {
            r.stop();
        }
    }
}

/// Starts the world of a demo with `zones` zones; the gateway (several zones) gets
/// `gateway_args` as well (every address may authenticate 1,000 times a second, and everyone
/// together as often unless `gateway_args` sets `--auth-global-per-s`).
pub(crate) fn start_world(
    config: Option<&std::path::Path>,
    zones: u32,
    gateway_args: &[String],
    data: &std::path::Path,
) -> anyhow::Result<DemoWorld> {
    let exe = std::env::current_exe().context("cannot find the pwn executable")?;
    let d = data.display().to_string();
    let mut world = DemoWorld {
        roles: Vec::new(),
        zones: Vec::new(),
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        login: false,
        metrics: Vec::new(),
    };
    if zones == 1 {
        let m = metrics_addr()?;
        world.metrics.push(("zone-1".into(), m));
        let m = m.to_string();
        let zone_args = ["zone", "--listen", "127.0.0.1:0", "--data", &d, "--metrics", &m].map(String::from);
        let (role, addr, seconds) = start_zone(&exe, config, &zone_args)?;
        world.roles.push(role);
        world.zones.push(seconds);
        world.addr = addr;
        return Ok(world);
    }
    pwn_net::tls::service_cert(data)?;
    pwn_net::tls::service_key(data)?;
    let level = match zones {
        0..=4 => "1",
        5..=16 => "2",
        _ => "3",
    };
    let expected = zones.to_string();
    let m = metrics_addr()?;
    world.metrics.push(("world".into(), m));
    let m = m.to_string();
    let (role, world_addr) = start_role(&exe, config, "world server", |c| {
        c.args([
            "world",
            "--listen",
            "127.0.0.1:0",
            "--data",
            &d,
            "--split-levels",
            level,
            "--zones-expected",
            &expected,
        ]);
        c.args(["--metrics", &m]);
    })?;
    world.roles.push(role);
    for i in 0..zones {
        let m = metrics_addr()?;
        world.metrics.push((format!("zone-{}", i + 1), m));
        let m = m.to_string();
        let zone_args =
            ["zone", "--listen", "127.0.0.1:0", "--data", &d, "--world-server", &world_addr, "--metrics", &m]
                .map(String::from);
        match start_zone(&exe, config, &zone_args) {
            Ok((role, _, seconds)) => {
                world.roles.push(role);
                world.zones.push(seconds);
            }
            Err(e) => {
                world.stop();
                return Err(e);
            }
        }
    }
    let m = metrics_addr()?;
    world.metrics.push(("gateway".into(), m));
    let m = m.to_string();
    let gateway = start_role(&exe, config, "gateway", |c| {
        c.args(["gateway", "--listen", "127.0.0.1:0", "--data", &d, "--world-server", &world_addr]);
        c.args(["--metrics", &m]);
        c.args(["--auth-per-address-per-s", "1000"]);
        if !gateway_args.iter().any(|a| a == "--auth-global-per-s") {
            c.args(["--auth-global-per-s", "1000"]);
        }
        c.args(gateway_args);
    });
    match gateway {
        Ok((role, addr)) => {
            world.roles.push(role);
            world.addr = addr.parse()?;
            world.login = true;
            Ok(world)
        }
        Err(e) => {
            world.stop();
            Err(e)
        }
    }
}

/// The figures the demo adds to the bots' summary (and the post-run audit's), which
/// thresholds may name.
const DEMO_KEYS: [&str; 17] = [
    "scenario",
    "roles",
    "duration_s",
    "zones",
    "tick_ms_p50",
    "tick_ms_p99",
    "tick_ms_max",
    "zone_tick_ms_p99",
    "ticks_measured",
    "tick_overruns",
    "zone_inputs_missed",
    "zone_input_ack_ms_p50",
    "zone_input_ack_ms_p99",
    "zone_input_ack_ticks_p99",
    "ghost_lag_ticks_p99",
    "ghost_states",
    "zone_handoffs_in",
];

/// Keys of the demo's JSON that hold no number (a name, one figure per zone, the audit's
/// details): a threshold on them could only fail.
const NOT_FIGURES: [&str; 4] = ["scenario", "zone_tick_ms_p99", "audit", "roles"];
/// Figures the demo reports only with several zones.
const SEVERAL_ZONES_KEYS: [&str; 3] = ["ghost_lag_ticks_p99", "ghost_states", "zone_handoffs_in"];

/// Whether a threshold may name `key` in a demo of `zones` zones: a number this run reports.
fn is_threshold_figure(key: &str, zones: u32) -> bool {
    !NOT_FIGURES.contains(&key) && (zones > 1 || !SEVERAL_ZONES_KEYS.contains(&key))
}

/// Every figure `pwn demo` may report.
fn known_keys() -> Vec<String> {
    let summary = Summary::default().json().keys().cloned().collect::<Vec<_>>();
    summary
        .into_iter()
        .chain(DEMO_KEYS.iter().chain(&crate::audit_cmd::SUMMARY_KEYS).map(|k| (*k).to_owned()))
        .collect()
}

/// The partition's cells and who leases each, read from the world's store after a run (one
/// cell, the whole world, for a zone holding it alone).
fn map_cells(db: &std::path::Path, world: &pwn_sim::WorldDesc) -> anyhow::Result<Vec<MapCell>> {
    let store = pwn_store::open_store(&pwn_store::StoreConfig {
        backend: pwn_store::BackendKind::Sqlite,
        path: db.to_path_buf(),
        ..pwn_store::StoreConfig::default()
    })?;
    let (leaves, leases) = store.transact(|t| {
        let (b, e) = pwn_store::keys::leaves_range();
        let leaves = t.get_range(&b, &e, pwn_store::RangeOptions { limit: 1 << 16, reverse: false })?;
        Ok::<_, pwn_store::StoreError>((leaves, pwn_store::fence::all_leases(t)?))
    })?;
    let mut cells: Vec<pwn_store::keys::CellKey> = leaves
        .iter()
        .filter_map(|(k, _)| foundationdb_tuple::unpack::<(String, String, String, u32, u64)>(k).ok())
        .map(|(_, _, _, level, path)| pwn_store::keys::CellKey { level: u8::try_from(level).unwrap_or(u8::MAX), path })
        .collect();
    if cells.is_empty() {
        cells = leases.iter().map(|(c, _)| *c).collect();
    }
    // The geometry of a cell depends only on the world's bounds.
    let tree = pwn_partitioner::quadtree::Quadtree::uniform(world.origin_m, world.size_m, 0)?;
    Ok(cells
        .into_iter()
        .map(|c| {
            let r = tree.rect(c);
            let owner = leases.iter().find(|(l, _)| *l == c).map_or(0, |(_, l)| l.node);
            MapCell { min: r.min, max: r.max, owner }
        })
        .collect())
}

/// Runs the demo.
pub fn run_demo(config: Option<&std::path::Path>, cfg: &PwnConfig, args: &DemoArgs) -> anyhow::Result<()> {
    let duration = check_duration(args.duration)?;
    let known = known_keys();
    pwn_load_tests::threshold::check_keys(
        &args.load.thresholds,
        known.iter().map(String::as_str).filter(|k| is_threshold_figure(k, args.zones)),
    )?;
    let temp = tempfile::tempdir()?;
    let data = args.data.clone().unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&data).with_context(|| format!("cannot create {}", data.display()))?;
    let mut world = start_world(config, args.zones, &[], &data)?;
    eprintln!(
        "pwn demo: {} zone(s), players at {}; {} bots for {:.0} s",
        args.zones, world.addr, args.bots, args.duration
    );
    let desc = cfg.world(None)?;
    let ca_pem = pwn_net::tls::dev_ca_cert(&data)?;
    // Every role's own figures, read from its Prometheus endpoint once a second.
    let scraper = pwn_load_tests::scrape::Scraper::start(world.metrics.clone());
    let worker_args = crate::workers::WorkerArgs {
        addr: world.addr.to_string(),
        data: data.clone(),
        count: args.bots,
        predicting: args.load.predicting(args.bots) as u32,
        duration_s: args.duration,
        scenario: args.scenario.to_string(),
        seed: 1,
        world: None,
        direct: !world.login,
        link: None,
    };
    let outcome = if args.workers > 1 {
        crate::workers::run(config, &worker_args, args.workers)
    } else {
        swarm(SwarmConfig {
            addr: world.addr,
            server_name: "localhost".into(),
            ca_pem,
            world: desc.clone(),
            sim: cfg.sim.clone(),
            count: args.bots as usize,
            predicting: args.load.predicting(args.bots),
            duration,
            scenario: args.scenario,
            seed: 1,
            joins_per_s: 100.0,
            link: None,
            login: world.login,
            shard: None,
            phase: None,
        })
    };
    let roles = scraper.stop();
    world.stop();
    let (results, timeline) = outcome?;

    let zones: Vec<Vec<ZoneSecond>> =
        world.zones.iter().map(|z| z.lock().map(|s| s.clone()).unwrap_or_default()).collect();
    // Only seconds with bots in a zone count towards its tick figures.
    let mut all: Vec<f32> = Vec::new();
    let mut per_zone_p99 = Vec::new();
    for z in &zones {
        let mut mine: Vec<f32> = z.iter().filter(|s| s.players > 0.0).flat_map(|s| s.tick_ms.iter().copied()).collect();
        mine.sort_by(f32::total_cmp);
        per_zone_p99.push((quantile(&mine, 0.99) * 1e3).round() / 1e3);
        all.extend(mine);
    }
    all.sort_by(f32::total_cmp);
    let zone_timelines: Vec<ZoneTimeline> = zones
        .iter()
        .enumerate()
        .map(|(i, z)| ZoneTimeline {
            name: format!("zone {}", i + 1),
            tick_ms: z.iter().map(|s| s.tick_ms.clone()).collect(),
            players: z.iter().map(|s| s.players).collect(),
        })
        .collect();
    let last: Vec<ZoneSecond> = zones.iter().map(|z| z.last().cloned().unwrap_or_default()).collect();
    let summary = Summary::of(&results);
    let mut json = summary.json();
    let r3 = |v: f64| (v * 1e3).round() / 1e3;
    json.insert("scenario".into(), args.scenario.to_string().into());
    json.insert("duration_s".into(), args.duration.into());
    json.insert("zones".into(), args.zones.into());
    json.insert("tick_ms_p50".into(), r3(quantile(&all, 0.5)).into());
    json.insert("tick_ms_p99".into(), r3(quantile(&all, 0.99)).into());
    json.insert("tick_ms_max".into(), r3(all.last().copied().map_or(0.0, f64::from)).into());
    json.insert("zone_tick_ms_p99".into(), per_zone_p99.clone().into());
    json.insert("ticks_measured".into(), all.len().into());
    json.insert("tick_overruns".into(), last.iter().map(|s| s.overruns).sum::<u64>().into());
    json.insert("zone_inputs_missed".into(), last.iter().map(|s| s.inputs_missed).sum::<u64>().into());
    // The zones' own share of input acknowledgement: from an input reaching the zone process
    // to the acknowledging snapshot being queued (the client-side figure adds both networks
    // and the bots' own scheduling).
    let mut acks = std::collections::BTreeMap::new();
    for (ms, n) in zones.iter().flatten().filter(|s| s.players > 0.0).flat_map(|s| s.input_ack_ms.iter()) {
        *acks.entry(*ms).or_insert(0u64) += n;
    }
    let tick_ms = f64::from(cfg.sim.dt_s()) * 1e3;
    json.insert("zone_input_ack_ms_p50".into(), histogram_quantile(&acks, 0.5).into());
    json.insert("zone_input_ack_ms_p99".into(), histogram_quantile(&acks, 0.99).into());
    json.insert("zone_input_ack_ticks_p99".into(), r3(histogram_quantile(&acks, 0.99) / tick_ms).into());
    if args.zones > 1 {
        let mut lag = vec![0u64; pwn_zone_node::border::GHOST_LAG_BUCKETS];
        for s in &last {
            for (i, n) in s.ghost_lag_ticks.iter().enumerate().take(lag.len()) {
                lag[i] += n;
            }
        }
        json.insert("ghost_lag_ticks_p99".into(), lag_quantile(&lag, 0.99).into());
        json.insert("ghost_states".into(), lag.iter().sum::<u64>().into());
        json.insert("zone_handoffs_in".into(), last.iter().map(|s| s.handoffs_in).sum::<u64>().into());
    }
    // After every run, the store's consistency (one owner per entity, no item twice or lost).
    let audit = crate::audit_cmd::audit_sqlite(&data.join("pwn.sqlite"))?;

    println!(
        "pwn demo: {} bots, {} scenario, {} zone(s), {:.0} s",
        args.bots, args.scenario, args.zones, args.duration
    );
    println!("  {:<34} {:>12.2}", "zone tick ms p50", quantile(&all, 0.5));
    println!("  {:<34} {:>12.2}", "zone tick ms p99", quantile(&all, 0.99));
    println!("  {:<34} {:>12.2}", "zone input ack ms p99 (in zone)", histogram_quantile(&acks, 0.99));
    if args.zones > 1 {
        println!("  {:<34} {:>12?}", "zone tick ms p99, each zone", per_zone_p99);
        println!("  {:<34} {:>12}", "ghost lag ticks p99", json["ghost_lag_ticks_p99"]);
    }
    crate::audit_cmd::summarize(Some(&audit), &mut json);
    json.insert("roles".into(), crate::swarm_cmd::roles_json(&roles));
    print!("{}", summary.table());
    print_failures(&results);
    let failed = judge(&args.load.thresholds, &mut json);
    debug_assert!(
        json.keys().all(|k| k.starts_with("threshold") || known.contains(k)),
        "every figure can be named by a threshold: {:?}",
        json.keys().filter(|k| !known.contains(k)).collect::<Vec<_>>()
    );
    let cells = map_cells(&data.join("pwn.sqlite"), &desc).unwrap_or_else(|e| {
        eprintln!("pwn demo: the map has no cells: {e}");
        Vec::new()
    });
    let scenario = args.scenario.parameters();
    let page = html(&ReportInput {
        title: "PWN demo",
        summary: &json,
        scenario: &scenario,
        zones: &zone_timelines,
        timeline: &timeline,
        results: &results,
        cells: &cells,
        roles: &roles,
    });
    std::fs::write(&args.report, page).with_context(|| format!("cannot write {}", args.report.display()))?;
    println!("  report: {}", args.report.display());
    if args.json {
        println!("{}", serde_json::Value::Object(json));
    }
    verdict(failed)?;
    audit_verdict(Some(&audit))
}
