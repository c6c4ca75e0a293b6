//! `pwn bench attack`: the adversarial harness (`pwn_load_tests::attack`) against a local
//! world of separate processes (world server, zones, gateway, as `pwn up` runs them) while
//! honest bots play, in three phases of equal length: quiet, under attack, after. Reports
//! whether every process is still alive, each process's memory (resident set) in each phase,
//! the honest players' disconnects and input acknowledgement per phase (p99 under attack
//! against quiet: the login-storm target is at most 1.25x), every zone's tick p99 per phase,
//! and what the world answered each attack.

use crate::config::PwnConfig;
use crate::demo::{DemoWorld, quantile, start_world};
use anyhow::bail;
use clap::Args;
use pwn_load_tests::attack::{AttackConfig, AttackReport, run_attack};
use pwn_load_tests::swarm::{BotResult, Progress, SwarmConfig};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Flags of `pwn bench attack`.
#[derive(Args, Debug)]
pub struct BenchAttackArgs {
    /// Zone nodes of the world.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(2..=16))]
    zones: u32,
    /// Honest bots (full predicting clients) playing throughout.
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    bots: u32,
    /// Seconds of each phase (quiet, attack, after).
    #[arg(long, default_value_t = 15.0)]
    phase_s: f64,
    /// Wrong-password logins the storm tries per second (the gateway hashes at most
    /// `--auth-global-per-s` of them).
    #[arg(long, default_value_t = 200.0)]
    login_rate: f64,
    /// The gateway's global authentication limit per second (its default).
    #[arg(long, default_value_t = 100.0)]
    auth_global_per_s: f64,
    /// Niceness of the gateway's hashing threads (its `--hash-nice`; 0 to compare with hashing
    /// at normal priority).
    #[arg(long, default_value_t = pwn_gateway::pool::HASH_NICE, value_parser = clap::value_parser!(i32).range(0..=19))]
    hash_nice: i32,
    /// Source addresses the attacker spreads over (127.0.0.2 onwards).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u8).range(1..=200))]
    addresses: u8,
    /// Only these attacks, comma-separated (default: all of them).
    #[arg(long, value_delimiter = ',')]
    attacks: Vec<String>,
    /// Print the figures as one JSON line at the end.
    #[arg(long)]
    json: bool,
}

const PHASES: [&str; 3] = ["quiet", "attack", "after"];

/// Resident memory of a process, KiB (from /proc; 0 if it cannot be read).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Per role: the largest resident set seen in each phase, and the last one (KiB).
#[derive(Clone, Default)]
struct Memory {
    max_kib: [u64; 3],
    last_kib: [u64; 3],
}

fn role_names(zones: u32) -> Vec<String> {
    let mut names = vec!["world".to_owned()];
    names.extend((1..=zones).map(|i| format!("zone-{i}")));
    names.push("gateway".into());
    names
}

/// Runs the benchmark.
pub fn bench_attack(config: Option<&std::path::Path>, cfg: &PwnConfig, args: &BenchAttackArgs) -> anyhow::Result<()> {
    if !(args.phase_s.is_finite() && (1.0..=3_600.0).contains(&args.phase_s)) {
        bail!("--phase-s must be between 1 and 3600, not {}", args.phase_s);
    }
    if !(args.login_rate.is_finite() && args.login_rate > 0.0 && args.login_rate <= 10_000.0) {
        bail!("--login-rate must be above 0 and at most 10000, not {}", args.login_rate);
    }
    let temp = tempfile::tempdir()?;
    let data = temp.path().to_path_buf();
    let gateway_args = [
        "--auth-global-per-s".to_owned(),
        args.auth_global_per_s.to_string(),
        "--hash-nice".to_owned(),
        args.hash_nice.to_string(),
    ];
    let mut world = start_world(config, args.zones, &gateway_args, &data)?;
    let outcome = run_phases(cfg, args, &data, &mut world);
    let alive: Vec<bool> = world.roles.iter_mut().map(|r| r.alive()).collect();
    world.stop();
    let (results, attack, memory, zone_marks) = outcome?;
    report(args, &world, &alive, &results, &attack, &memory, &zone_marks)
}

type Outcome = (Vec<BotResult>, AttackReport, Vec<Memory>, Vec<Vec<usize>>);

fn run_phases(
    cfg: &PwnConfig,
    args: &BenchAttackArgs,
    data: &std::path::Path,
    world: &mut DemoWorld,
) -> anyhow::Result<Outcome> {
    let ca_pem = pwn_net::tls::dev_ca_cert(data)?;
    let phase = Arc::new(AtomicUsize::new(0));
    let phase_len = Duration::from_secs_f64(args.phase_s);
    // Joining takes a few seconds; bots play on a little past the last phase.
    let join_s = f64::from(args.bots) / 50.0 + 10.0;
    let swarm_cfg = SwarmConfig {
        addr: world.addr,
        server_name: "localhost".into(),
        ca_pem: ca_pem.clone(),
        world: cfg.world(None)?,
        sim: cfg.sim.clone(),
        count: args.bots as usize,
        predicting: usize::MAX,
        duration: phase_len * 3 + Duration::from_secs_f64(join_s),
        scenario: pwn_load_tests::scenario::Scenario::Border,
        seed: 1,
        joins_per_s: 100.0,
        link: None,
        login: true,
        shard: None,
        phase: Some(phase.clone()),
    };
    let progress = Arc::new(Progress::default());
    let swarm = crate::swarm_cmd::swarm_thread(swarm_cfg, progress.clone());
    // Memory, sampled four times a second into the current phase (0 = joining, not kept).
    let pids: Vec<u32> = world.roles.iter().map(crate::up::Role::pid).collect();
    let memory = Arc::new(std::sync::Mutex::new(vec![Memory::default(); pids.len()]));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (memory, sampling, phase) = (memory.clone(), sampling.clone(), phase.clone());
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                let p = phase.load(Ordering::Relaxed);
                if let (1..=3, Ok(mut m)) = (p, memory.lock()) {
                    for (i, pid) in pids.iter().enumerate() {
                        let kib = rss_kib(*pid);
                        m[i].max_kib[p - 1] = m[i].max_kib[p - 1].max(kib);
                        m[i].last_kib[p - 1] = kib;
                    }
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        })
    };
    let started = Instant::now();
    while progress.playing.load(Ordering::Relaxed) < u64::from(args.bots) {
        if started.elapsed() > Duration::from_secs_f64(join_s) || swarm.is_finished() {
            eprintln!(
                "pwn bench attack: only {} of {} bots joined",
                progress.playing.load(Ordering::Relaxed),
                args.bots
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let marks = |world: &DemoWorld| -> Vec<usize> {
        world.zones.iter().map(|z| z.lock().map(|s| s.len()).unwrap_or(0)).collect()
    };
    let mut zone_marks = vec![marks(world)];
    let victims: Vec<String> = (0..args.bots).map(|i| format!("bot-{i}")).collect();
    let attack_cfg = AttackConfig {
        addr: world.addr,
        server_name: "localhost".into(),
        ca_pem,
        sim_digest: pwn_sim::build_digest(&cfg.sim),
        duration: phase_len,
        login_rate_per_s: args.login_rate,
        addresses: args.addresses,
        victim_accounts: victims,
        seed: 7,
        only: args.attacks.clone(),
    };
    let mut attack = Ok(AttackReport::default());
    for (i, name) in PHASES.iter().enumerate() {
        phase.store(i + 1, Ordering::Relaxed);
        eprintln!(
            "pwn bench attack: phase {name} ({:.0} s), {} bots playing",
            args.phase_s,
            progress.playing.load(Ordering::Relaxed)
        );
        let until = Instant::now() + phase_len;
        if *name == "attack" {
            let cfg = attack_cfg.clone();
            attack = std::thread::spawn(move || -> anyhow::Result<AttackReport> {
                // The attacker shares this machine with what it measures; a real one brings its
                // own. Its threads run at the lowest priority so that its own work (its side
                // of thousands of handshakes) is charged as little as possible to the honest
                // players; the world's side of the work is not lowered.
                let lowest = || {
                    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19);
                };
                lowest();
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .on_thread_start(lowest)
                    .enable_all()
                    .build()?;
                rt.block_on(run_attack(cfg)).map_err(anyhow::Error::msg)
            })
            .join()
            .map_err(|_| anyhow::anyhow!("the attack thread panicked"))?;
        }
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
        zone_marks.push(marks(world));
    }
    phase.store(4, Ordering::Relaxed);
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.join();
    let results = swarm.join().map_err(|_| anyhow::anyhow!("the swarm thread panicked"))??;
    let memory = memory.lock().map(|m| m.clone()).unwrap_or_default();
    Ok((results, attack?, memory, zone_marks))
}

fn report(
    args: &BenchAttackArgs,
    world: &DemoWorld,
    alive: &[bool],
    results: &[BotResult],
    attack: &AttackReport,
    memory: &[Memory],
    zone_marks: &[Vec<usize>],
) -> anyhow::Result<()> {
    let names = role_names(args.zones);
    let r3 = |v: f64| (v * 1e3).round() / 1e3;
    let mut json = serde_json::Map::new();
    json.insert("bots".into(), args.bots.into());
    json.insert("zones".into(), args.zones.into());
    json.insert("phase_s".into(), args.phase_s.into());
    json.insert("login_rate_per_s".into(), args.login_rate.into());
    json.insert("auth_global_per_s".into(), args.auth_global_per_s.into());
    json.insert("hash_nice".into(), args.hash_nice.into());
    json.insert("bots_joined".into(), results.iter().filter(|r| r.joined).count().into());
    let all_alive = alive.iter().all(|a| *a);
    json.insert("processes_alive".into(), all_alive.into());
    println!(
        "pwn bench attack: {} zones, {} honest bots, phases of {:.0} s (quiet, attack, after)",
        args.zones, args.bots, args.phase_s
    );
    println!(
        "  {:<28} {}",
        "processes alive after",
        names
            .iter()
            .zip(alive)
            .map(|(n, a)| format!("{n} {}", if *a { "yes" } else { "NO" }))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut p99 = [0.0f64; 3];
    let phase_ack = |phases: &[usize]| {
        let mut ack = pwn_client::ClientCounters::default().input_ack_ticks;
        for r in results {
            for p in phases {
                if let Some(h) = r.input_ack_ticks_by_phase.get(p + 1) {
                    ack.merge(h);
                }
            }
        }
        ack
    };
    for (p, name) in PHASES.iter().enumerate() {
        let ack = phase_ack(&[p]);
        p99[p] = ack.quantile(0.99);
        let disconnects = results.iter().filter(|r| r.failure_phase == Some(p + 1)).count();
        // The zones' own tick time in this phase (seconds between the phase's marks).
        let mut ticks: Vec<f32> = Vec::new();
        for (z, seconds) in world.zones.iter().enumerate() {
            let (from, to) =
                (zone_marks[p].get(z).copied().unwrap_or(0), zone_marks[p + 1].get(z).copied().unwrap_or(0));
            if let Ok(s) = seconds.lock() {
                ticks.extend(s.iter().take(to).skip(from).flat_map(|sec| sec.tick_ms.iter().copied()));
            }
        }
        ticks.sort_by(f32::total_cmp);
        json.insert(format!("{name}_input_ack_ticks_p50"), r3(ack.quantile(0.5)).into());
        json.insert(format!("{name}_input_ack_ticks_p99"), r3(p99[p]).into());
        json.insert(format!("{name}_disconnects"), disconnects.into());
        json.insert(format!("{name}_zone_tick_ms_p99"), r3(quantile(&ticks, 0.99)).into());
        println!(
            "  {:<28} input ack ticks p50 {:>5.2} p99 {:>5.2}, disconnects {}, zone tick ms p99 {:.2}",
            format!("honest players, {name}"),
            ack.quantile(0.5),
            p99[p],
            disconnects,
            quantile(&ticks, 0.99)
        );
    }
    let ratio = if p99[0] > 0.0 { p99[1] / p99[0] } else { 0.0 };
    json.insert("attack_vs_quiet_input_ack_p99_ratio".into(), r3(ratio).into());
    // Quiet and after together: the attack bracketed by the same world without it, twice the
    // sample of either (this machine is noisy).
    let baseline = phase_ack(&[0, 2]).quantile(0.99);
    let vs_baseline = if baseline > 0.0 { p99[1] / baseline } else { 0.0 };
    json.insert("baseline_input_ack_ticks_p99".into(), r3(baseline).into());
    json.insert("attack_vs_baseline_input_ack_p99_ratio".into(), r3(vs_baseline).into());
    println!("  {:<28} {:.2} (target <= 1.25)", "input ack p99, attack/quiet", ratio);
    println!(
        "  {:<28} {:.2} (quiet and after together: p99 {:.2})",
        "input ack p99, attack/both", vs_baseline, baseline
    );
    let mut mem = serde_json::Map::new();
    for (name, m) in names.iter().zip(memory) {
        let mib = |k: u64| (k as f64 / 1024.0 * 10.0).round() / 10.0;
        println!(
            "  {:<28} quiet {:>6.1}  attack max {:>6.1}  after {:>6.1}",
            format!("memory MiB, {name}"),
            mib(m.last_kib[0]),
            mib(m.max_kib[1]),
            mib(m.last_kib[2])
        );
        mem.insert(
            name.clone(),
            serde_json::json!({"quiet_mib": mib(m.last_kib[0]), "attack_max_mib": mib(m.max_kib[1]), "after_mib": mib(m.last_kib[2])}),
        );
    }
    json.insert("memory".into(), mem.into());
    println!("  attacks (what the world answered):");
    print!("{}", attack.table());
    json.insert("attacks".into(), attack.json());
    json.insert("attack_unexpected".into(), attack.unexpected_total().into());
    for r in results.iter().filter(|r| r.failure.is_some()).take(5) {
        println!("  bot {}: {}", r.index, r.failure.as_deref().unwrap_or_default());
    }
    if args.json {
        println!("{}", serde_json::Value::Object(json));
    }
    if !all_alive {
        bail!("a process of the world died during the attack");
    }
    Ok(())
}
