//! `pwn bench ...`: benchmark commands. Each prints a human summary and, with `--json`, one
//! JSON object as its last line; measured figures are recorded in docs/PERFORMANCE.md.

pub mod attack;
mod baseline;
pub mod bots;
pub mod lagcomp;
pub mod login;
pub mod objects;
pub mod proxy;
pub mod sim;
pub mod store;
pub mod transport;
pub mod zone;

use clap::Subcommand;

/// The benchmarks.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// pwn-sim tick time with N scripted players against rapier's own character controller,
    /// side by side in one run; also snapshot/restore and prediction cost.
    Sim(sim::BenchSimArgs),
    /// Batched entity writes per second, commit latency and range reads on the store.
    Store(store::BenchStoreArgs),
    /// Loopback round trips over a QUIC stream, QUIC datagrams and plain UDP, side by side;
    /// one-way stream throughput.
    Transport(transport::BenchTransportArgs),
    /// Login latency at a fixed rate (argon2id with OWASP parameters, the real store).
    Login(login::BenchLoginArgs),
    /// A player's round trip through the gateway against direct to the zone, side by side.
    Proxy(proxy::BenchProxyArgs),
    /// The zone core's tick with N scripted players and perfect clients, no network.
    Zone(zone::BenchZoneArgs),
    /// The adversarial harness against a local world while honest bots play: processes
    /// alive, memory, honest players' disconnects and input acknowledgement, quiet against
    /// under attack.
    Attack(attack::BenchAttackArgs),
    /// What a bot costs the machine driving it: full (predicting) bots against cheap ones,
    /// side by side in one run against one local zone.
    Bots(bots::BenchBotsArgs),
    /// World objects and moving platforms: committed edits per second on the embedded store;
    /// over QUIC against a local zone, edit latency to every bot, prediction of bots riding a
    /// lifting raft against bots on the ground, and object bytes at rest.
    Objects(objects::BenchObjectsArgs),
    /// Hit rates of a scripted shooter at several round trips, with and without lag
    /// compensation, side by side.
    Lagcomp(lagcomp::BenchLagcompArgs),
}

/// Runs one benchmark.
pub fn run(config: Option<&std::path::Path>, cfg: &crate::config::PwnConfig, cmd: &BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Attack(args) => attack::bench_attack(config, cfg, args),
        BenchCommand::Bots(args) => bots::bench_bots(config, cfg, args),
        BenchCommand::Lagcomp(args) => lagcomp::bench_lagcomp(cfg, args),
        BenchCommand::Objects(args) => objects::bench_objects(cfg, args),
        BenchCommand::Sim(args) => sim::bench_sim(cfg, args),
        BenchCommand::Store(args) => store::bench_store(cfg, args),
        BenchCommand::Transport(args) => transport::bench_transport(args),
        BenchCommand::Zone(args) => zone::bench_zone(cfg, args),
        BenchCommand::Login(args) => login::bench_login(args),
        BenchCommand::Proxy(args) => proxy::bench_proxy(args),
    }
}
