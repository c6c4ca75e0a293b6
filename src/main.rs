//! `pwn`: one binary for every PWN role and tool.
//!
//! # Layout
//! - `config`: the TOML configuration file (every field defaulted) and how flags override it.
//! - `script`: deterministic scripted players for the headless demo and the benchmark.
//! - `headless`: `pwn sim`, the shared simulation run headless with scripted players.
//! - `bench`: `pwn bench ...`, benchmark commands (`bench/baseline.rs` is rapier's own character
//!   controller, the baseline `pwn bench sim` compares against).
//! - `kv`: `pwn kv`, reading and clearing world state in the store.
//! - `audit_cmd`: `pwn audit`, the store's consistency check.
//! - `attack_cmd`: `pwn attack`, the adversarial harness against a running world.
//! - `user_cmd`: `pwn user`, account administration.
//! - `stats`: percentiles for reports.
//! - `services`: a service's client endpoint for links to the others, and its world server client.
//! - `metrics_http`: the Prometheus endpoint every long-running role can serve.
//! - `world_cmd`: `pwn world`, the world server.
//! - `zone_cmd`: `pwn zone`, a zone node.
//! - `gateway_cmd`: `pwn gateway`, the players' endpoint.
//! - `up`: `pwn up`, a whole local world as separate processes.
//! - `swarm_cmd`: `pwn bots` (a bot swarm); `demo`: `pwn demo` (a local world of one zone or
//!   several, a swarm, a report, the store audit).
//!
//! Each subcommand parses its flags, starts tracing, and calls into the library crates; no
//! game logic lives here.

/// mimalloc instead of glibc's malloc: the swarm and the zone allocate many small, short-lived
/// buffers (decoded snapshots, frames, physics queries) on several threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod attack_cmd;
mod audit_cmd;
mod bench;
mod config;
mod demo;
mod gateway_cmd;
mod headless;
mod kv;
mod metrics_http;
mod script;
mod services;
mod stats;
mod swarm_cmd;
mod up;
mod user_cmd;
mod workers;
mod world_cmd;
mod zone_cmd;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// The Persistent World Network.
#[derive(Parser, Debug)]
#[command(name = "pwn", version, about, long_about = None)]
struct Cli {
    /// Configuration file (TOML); every field has a default, so it is optional.
    #[arg(long, global = true, env = "PWN_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the shared simulation headless with scripted players and print what happens.
    Sim(headless::SimArgs),
    /// Start a complete local world (each role its own process) until Ctrl-C.
    Up(up::UpArgs),
    /// Run the world server: cells, leases, zone nodes, routing of players.
    World(world_cmd::WorldArgs),
    /// Run a gateway: players log in here and are proxied to their zone node.
    Gateway(gateway_cmd::GatewayArgs),
    /// Run a zone node: the authoritative simulation, with players connecting over QUIC.
    Zone(zone_cmd::ZoneArgs),
    /// Run a swarm of headless bots against a world (`pwn up`'s by default).
    Bots(swarm_cmd::BotsArgs),
    /// Start a local world and a bot swarm, then print the figures and write an HTML report.
    Demo(swarm_cmd::DemoArgs),
    /// Account administration: add, list, disable, enable, reset-password.
    User(user_cmd::UserArgs),
    /// Read world state in the store (decoded tuples), count, or clear with --yes.
    Kv(kv::KvArgs),
    /// Check the store: one owner per entity, every item of value once, none lost.
    Audit(audit_cmd::AuditArgs),
    /// Attack a running world's gateway with hostile raw-QUIC clients and report what it
    /// answered (loopback only).
    Attack(attack_cmd::AttackArgs),
    /// Benchmarks (figures go to docs/PERFORMANCE.md).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let config_path = cli.config.clone();
    let result = config::PwnConfig::load(cli.config.as_deref()).and_then(|cfg| match cli.command {
        Command::Up(args) => up::run_up(config_path.as_deref(), &args),
        Command::Sim(args) => headless::run_sim(&cfg, &args),
        Command::Kv(args) => kv::run(&cfg, &args),
        Command::Audit(args) => audit_cmd::run(&cfg, &args),
        Command::User(args) => user_cmd::run(&cfg, &args),
        Command::Zone(args) => zone_cmd::run_zone(&cfg, &args),
        Command::Gateway(args) => gateway_cmd::run_gateway(&cfg, &args),
        Command::World(args) => world_cmd::run_world(&cfg, &args),
        Command::Bots(args) => swarm_cmd::run_bots(config_path.as_deref(), &cfg, &args),
        Command::Demo(args) => demo::run_demo(config_path.as_deref(), &cfg, &args),
        Command::Bench(cmd) => bench::run(config_path.as_deref(), &cfg, &cmd),
        Command::Attack(args) => attack_cmd::run(&cfg, &args),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pwn: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
