//! `pwn zone`: runs a zone node: holding the whole world (players connect directly, or through
//! gateways), or serving the cells a world server grants it (`--world-server`).

use crate::config::PwnConfig;
use clap::Args;
use pwn_net::{ServerTls, ServiceIdentity, TransportConfig};
use pwn_sim::Sim;
use pwn_zone_node::server::{MeshOptions, ZoneOptions, ZoneStats, run_with};
use pwn_zone_node::territory::BorderConfig;
use pwn_zone_node::zone::{Zone, ZoneConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Flags of `pwn zone`.
#[derive(Args, Debug)]
pub struct ZoneArgs {
    /// Address to listen on (port 0 picks a free one; the first line printed says which).
    #[arg(long, default_value = "127.0.0.1:7100")]
    listen: SocketAddr,
    /// Data folder: the development CA and certificates live here.
    #[arg(long, default_value = "data")]
    data: PathBuf,
    /// World description file (default: the configured world, else the built-in arena).
    #[arg(long)]
    world: Option<PathBuf>,
    /// Seed of the simulation.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The SQLite store file (default: `DATA/pwn.sqlite`; `[store]` in the config names
    /// another backend).
    #[arg(long)]
    db: Option<PathBuf>,
    /// This node's id in leases.
    #[arg(long, default_value_t = 1)]
    node: u64,
    /// Ticks between checkpoints of the zone's entities.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=36_000))]
    checkpoint_ticks: u32,
    /// Serve Prometheus metrics over HTTP at this address (`/metrics`), e.g. 127.0.0.1:9464.
    #[arg(long)]
    metrics: Option<SocketAddr>,
    /// Accept players only through gateways (what `pwn up` runs); otherwise players may also
    /// connect directly, with ids counted from 1 (development and `pwn demo`).
    #[arg(long)]
    gateway_only: bool,
    /// Print one `stats {json}` line a second on stdout: tick durations, players, overruns
    /// (`pwn demo` reads these).
    #[arg(long)]
    stats: bool,
    /// Serve part of a partitioned world: register with the world server at this address and
    /// serve the cells it grants (implies `--gateway-only`; `--node` is then allocated).
    #[arg(long)]
    world_server: Option<SocketAddr>,
    /// Threads that build players' views (interest and snapshots) each tick, beside the
    /// simulation step (default: the machine's cores; 1 builds them on the tick thread).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    tick_threads: Option<u32>,
    /// Lag compensation: a shot is tested against characters where its shooter saw them, at
    /// most this long ago (0 turns it off; at most 1000).
    #[arg(long, default_value_t = pwn_zone_node::zone::MAX_REWIND_MS_DEFAULT, value_parser = clap::value_parser!(u32).range(0..=1_000))]
    max_rewind_ms: u32,
}

/// How long a starting zone node keeps trying to reach the world server.
const REGISTER_DEADLINE: std::time::Duration = std::time::Duration::from_secs(20);

/// Registers with the world server, retrying while it starts.
async fn register(
    world: &pwn_partitioner::client::WorldClient,
    addr: SocketAddr,
) -> anyhow::Result<pwn_partitioner::wire::Registered> {
    let deadline = std::time::Instant::now() + REGISTER_DEADLINE;
    loop {
        match world.register(&addr.to_string(), 1).await {
            Ok(r) => return Ok(r),
            Err(e) if std::time::Instant::now() < deadline => {
                tracing::info!(error = %e, "world server not reachable yet");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(e) => anyhow::bail!("cannot register with the world server: {e}"),
        }
    }
}

/// Runs the zone node until Ctrl-C or SIGTERM.
pub fn run_zone(cfg: &PwnConfig, args: &ZoneArgs) -> anyhow::Result<()> {
    let world = cfg.world(args.world.as_deref())?;
    let mut sim = Sim::new(world, cfg.sim.clone(), args.seed)?;
    let mut store_cfg = cfg.store.clone();
    if store_cfg.backend == pwn_store::BackendKind::Sqlite {
        store_cfg.path = args.db.clone().unwrap_or_else(|| args.data.join("pwn.sqlite"));
    }
    let store = pwn_store::open_store(&store_cfg)?;
    let persistence = match args.world_server {
        Some(_) => None,
        None => {
            let cell = pwn_store::keys::CellKey::ROOT;
            let lease = pwn_zone_node::persist::acquire_lease(&store, cell, args.node)?;
            let loaded = pwn_zone_node::persist::load_crates(&store, cell, &mut sim)?;
            tracing::info!(cell = %cell, epoch = lease.epoch, restored = loaded.restored, skipped = loaded.skipped, "loaded the cell from the store");
            Some(pwn_zone_node::server::Persistence {
                store: store.clone(),
                cell,
                epoch: lease.epoch,
                interval_ticks: args.checkpoint_ticks,
            })
        }
    };
    let digest = pwn_sim::build_digest(&cfg.sim);
    let identity = ServiceIdentity { sim_digest: digest, tick_hz: cfg.sim.tick_hz as u16 };
    let cert = pwn_net::tls::server_cert(&ServerTls::DevCa { dir: args.data.clone() })?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        if let Some(addr) = args.metrics {
            crate::metrics_http::install(addr)?;
            tracing::info!(%addr, "serving Prometheus metrics at /metrics");
        }
        // Behind gateways, only services may connect at all: mutual TLS with the deployment's
        // service certificate (the service key is then proved inside, `[link-5]`).
        let gateway_only = args.gateway_only || args.world_server.is_some();
        let auth = match gateway_only {
            true => pwn_net::ClientAuth::Services { ca_pem: pwn_net::tls::dev_ca_cert(&args.data)? },
            false => pwn_net::ClientAuth::Anyone,
        };
        let net = pwn_net::NetServer::bind_with(args.listen, &cert, &auth, &TransportConfig::default(), identity)?;
        let addr = net.local_addr()?;
        let service_key = pwn_net::tls::service_key(&args.data)?;
        let mesh = match args.world_server {
            None => None,
            Some(world_addr) => {
                let services = Arc::new(crate::services::client(&args.data)?);
                let agent = concat!("pwn-zone/", env!("CARGO_PKG_VERSION"));
                let hello = pwn_net::ClientHello::new(pwn_proto::PeerRole::Zone, digest, agent);
                let world = Arc::new(crate::services::world_client(&args.data, world_addr, hello.clone())?);
                let registered = register(&world, addr).await?;
                tracing::info!(
                    node = registered.node,
                    cells = registered.leaves.len(),
                    "registered with the world server"
                );
                Some(MeshOptions {
                    registered,
                    world,
                    peers: services,
                    hello,
                    border: BorderConfig::default(),
                    store: store.clone(),
                    interval_ticks: args.checkpoint_ticks,
                })
            }
        };
        let node = mesh.as_ref().map_or(args.node, |m| m.registered.node);
        println!(
            "pwn zone listening on {addr} (node {node}; clients trust {})",
            args.data.join(pwn_net::tls::DEV_CA_CERT).display()
        );
        let stats = Arc::new(ZoneStats::default());
        if args.stats {
            let stats = stats.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
                every.tick().await;
                loop {
                    every.tick().await;
                    // Sparse: `[ms, count]` for the 1 ms buckets that are not empty.
                    let acks: Vec<[u64; 2]> = (0u64..)
                        .zip(stats.take_input_ack_ms())
                        .filter(|(_, n)| *n > 0)
                        .map(|(ms, n)| [ms, n])
                        .collect();
                    let border = stats.border.lock().map(|b| b.clone()).unwrap_or_default();
                    let line = serde_json::json!({
                        "handoffs_in": border.handoffs_in,
                        "handoffs_out": border.handoffs_out,
                        "handoffs_failed": border.handoffs_failed,
                        "arrivals_refused": border.arrivals_refused,
                        "ghost_lag_ticks": border.ghost_lag_ticks,
                        "tick_ms": stats.take_tick_ms(),
                        "input_ack_ms": acks,
                        "players": stats.players.load(std::sync::atomic::Ordering::Relaxed),
                        "overruns": stats.overruns.load(std::sync::atomic::Ordering::Relaxed),
                        "inputs_missed": stats.inputs_missed.load(std::sync::atomic::Ordering::Relaxed),
                    });
                    println!("stats {line}");
                }
            });
        }
        let shutdown = crate::up::ctrl_c_or_sigterm();
        let direct = (!gateway_only).then_some(1);
        let opts = ZoneOptions { direct_players: direct, service_key: Some(service_key), persistence, mesh };
        let tick_threads = args
            .tick_threads
            .map_or_else(|| std::thread::available_parallelism().map_or(1, usize::from), |t| t as usize);
        let zone_cfg = ZoneConfig { tick_threads, max_rewind_ms: args.max_rewind_ms, ..ZoneConfig::default() };
        let mut zone = Zone::new(sim, zone_cfg);
        if let Some(p) = &opts.persistence {
            let (placed, skipped) = zone.load_objects(&p.store, p.cell)?;
            tracing::info!(cell = %p.cell, placed, skipped, "loaded the cell's world objects");
        }
        run_with(net, zone, opts, stats, shutdown).await;
        anyhow::Ok(())
    })
}
