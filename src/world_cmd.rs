//! `pwn world`: the world server. Reads (or, on the first start, writes) the world's records in
//! the store, then serves zone nodes and gateways until Ctrl-C or SIGTERM.

use crate::config::PwnConfig;
use anyhow::Context;
use clap::Args;
use pwn_net::{ServerTls, ServiceIdentity, TransportConfig};
use pwn_partitioner::server::{WorldServerConfig, run};
use pwn_partitioner::{Quadtree, WorldConfig};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Flags of `pwn world`.
#[derive(Args, Debug)]
pub struct WorldArgs {
    /// Address to listen on (port 0 picks a free one; the first line printed says which).
    #[arg(long, default_value = "127.0.0.1:7099")]
    listen: SocketAddr,
    /// Data folder: the development CA, service certificate and key live here.
    #[arg(long, default_value = "data")]
    data: PathBuf,
    /// The SQLite store file (default: `DATA/pwn.sqlite`).
    #[arg(long)]
    db: Option<PathBuf>,
    /// World description file (its bounds and first spawn point; default: the configured
    /// world, else the built-in arena).
    #[arg(long)]
    world: Option<PathBuf>,
    /// Depth of the initial partition on the first start: 1 is four cells in a 2x2 split, 2 is
    /// sixteen, at most 4 (256 cells: a heartbeat's answer lists every cell's owner in one
    /// message). Later starts keep the partition the store holds.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=4))]
    split_levels: u8,
    /// Cells are first assigned once this many zone nodes registered (or after the settle time).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4096))]
    zones_expected: u32,
    /// Lease length, milliseconds: a node silent this long loses its cells (they are granted
    /// again after a further margin of a third of this).
    #[arg(long, default_value_t = 3_000, value_parser = clap::value_parser!(u64).range(500..=600_000))]
    lease_ms: u64,
    /// Serve Prometheus metrics over HTTP at this address (`/metrics`).
    #[arg(long)]
    metrics: Option<SocketAddr>,
}

/// Runs the world server until Ctrl-C or SIGTERM.
pub fn run_world(cfg: &PwnConfig, args: &WorldArgs) -> anyhow::Result<()> {
    let world = cfg.world(args.world.as_deref())?;
    let db = args.db.clone().unwrap_or_else(|| args.data.join("pwn.sqlite"));
    let store = if cfg.store.backend == pwn_store::BackendKind::Sqlite {
        crate::kv::open_configured(cfg, Some(&db))?
    } else {
        crate::kv::open_configured(cfg, None)?
    };
    let initial = Quadtree::uniform(world.origin_m, world.size_m, args.split_levels)?;
    let now_unix_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
    let stored = pwn_partitioner::persist::load_or_init(&store, &initial, now_unix_ms)
        .context("cannot read the world's records from the store")?;
    tracing::info!(
        cells = stored.tree.len(),
        nodes = stored.nodes.len(),
        leases = stored.leases.len(),
        start_unix_ms = stored.start_unix_ms,
        "world loaded"
    );
    let spawn = world.spawn_points.first().copied().unwrap_or([0.0; 3]);
    let server_cfg = WorldServerConfig {
        world: WorldConfig {
            lease_ms: args.lease_ms,
            reassign_margin_ms: args.lease_ms / 3,
            nodes_expected: args.zones_expected,
            ..WorldConfig::default()
        },
        spawn_xz: [spawn[0], spawn[2]],
        service_key: Some(pwn_net::tls::service_key(&args.data)?),
    };
    let cert = pwn_net::tls::server_cert(&ServerTls::DevCa { dir: args.data.clone() })?;
    let auth = pwn_net::ClientAuth::Services { ca_pem: pwn_net::tls::dev_ca_cert(&args.data)? };
    let identity = ServiceIdentity { sim_digest: pwn_sim::build_digest(&cfg.sim), tick_hz: cfg.sim.tick_hz as u16 };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        if let Some(addr) = args.metrics {
            crate::metrics_http::install(addr)?;
        }
        let net = pwn_net::NetServer::bind_with(args.listen, &cert, &auth, &TransportConfig::default(), identity)?;
        println!("pwn world listening on {} ({} cells)", net.local_addr()?, stored.tree.len());
        run(net, store, stored, server_cfg, crate::up::ctrl_c_or_sigterm()).await;
        anyhow::Ok(())
    })
}
