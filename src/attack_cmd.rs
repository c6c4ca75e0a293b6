//! `pwn attack`: the adversarial client harness (`pwn_load_tests::attack`) against a running
//! world's gateway (`pwn up`'s by default), for a while; prints what the world answered each
//! attack and exits non-zero if any answer was not what a sound server gives. Loopback only:
//! the attacker's source addresses are 127.0.0.x.

use crate::config::PwnConfig;
use crate::swarm_cmd::check_duration;
use anyhow::{Context, bail};
use clap::Args;
use pwn_load_tests::attack::{AttackConfig, run_attack};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Flags of `pwn attack`.
#[derive(Args, Debug)]
pub struct AttackArgs {
    /// The gateway to attack (must be on loopback).
    #[arg(long, default_value = "127.0.0.1:7100")]
    addr: SocketAddr,
    /// The data folder holding the development CA (`pwn up`'s).
    #[arg(long, default_value = "data")]
    data: PathBuf,
    /// Seconds to attack.
    #[arg(long, default_value_t = 15.0)]
    duration: f64,
    /// Wrong-password logins tried per second.
    #[arg(long, default_value_t = 200.0)]
    login_rate: f64,
    /// Source addresses to spread over (127.0.0.2 onwards).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u8).range(1..=200))]
    addresses: u8,
    /// Guess passwords for accounts bot-0 .. bot-N-1 (a `pwn bots` swarm's) besides unknown
    /// names.
    #[arg(long, default_value_t = 0)]
    victims: u32,
    /// Only these attacks, comma-separated (default: all of them).
    #[arg(long, value_delimiter = ',')]
    attacks: Vec<String>,
    /// Print the report as one JSON line at the end.
    #[arg(long)]
    json: bool,
}

/// Runs `pwn attack`.
pub fn run(cfg: &PwnConfig, args: &AttackArgs) -> anyhow::Result<()> {
    if !args.addr.ip().is_loopback() {
        bail!("pwn attack only attacks a world on this machine (loopback), not {}", args.addr);
    }
    if !(args.login_rate.is_finite() && args.login_rate > 0.0 && args.login_rate <= 10_000.0) {
        bail!("--login-rate must be above 0 and at most 10000, not {}", args.login_rate);
    }
    let duration = check_duration(args.duration)?;
    let ca_pem = pwn_net::tls::dev_ca_cert(&args.data)
        .with_context(|| format!("no development CA in {} (start the world with `pwn up`)", args.data.display()))?;
    let attack = AttackConfig {
        addr: args.addr,
        server_name: "localhost".into(),
        ca_pem,
        sim_digest: pwn_sim::build_digest(&cfg.sim),
        duration,
        login_rate_per_s: args.login_rate,
        addresses: args.addresses,
        victim_accounts: (0..args.victims).map(|i| format!("bot-{i}")).collect(),
        seed: 7,
        only: args.attacks.clone(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let report = rt.block_on(run_attack(attack)).map_err(anyhow::Error::msg)?;
    println!("pwn attack: {} for {:.0} s", args.addr, args.duration);
    print!("{}", report.table());
    if args.json {
        println!("{}", report.json());
    }
    if report.unexpected_total() > 0 {
        bail!("{} answers were not what a sound server gives (listed as UNEXPECTED)", report.unexpected_total());
    }
    Ok(())
}
