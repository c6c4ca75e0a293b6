//! `pwn gateway`: the players' endpoint. Authenticates over the game connection (accounts in
//! the store), then proxies each player to its zone node over one link per zone: the one zone
//! (`--zone`), or wherever the world server says (`--world-server`).

use crate::config::PwnConfig;
use clap::Args;
use pwn_gateway::accounts::Accounts;
use pwn_gateway::limits::Rate;
use pwn_gateway::proxy::Upstreams;
use pwn_gateway::server::{GatewayConfig, Placement, run_placed};
use pwn_net::{ServerTls, ServiceIdentity, TransportConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Flags of `pwn gateway`.
#[derive(Args, Debug)]
pub struct GatewayArgs {
    /// Where players connect (port 0 picks a free one; the first line printed says which).
    #[arg(long, default_value = "127.0.0.1:7100")]
    listen: SocketAddr,
    /// Data folder: the development CA and certificates (shared with the zone nodes).
    #[arg(long, default_value = "data")]
    data: PathBuf,
    /// The one zone node players are sent to (a world held by one zone).
    #[arg(long, required_unless_present = "world_server", conflicts_with = "world_server")]
    zone: Option<SocketAddr>,
    /// The world server that says where each player belongs (a partitioned world).
    #[arg(long)]
    world_server: Option<SocketAddr>,
    /// The SQLite store file (default: `DATA/pwn.sqlite`; `[store]` in the config names
    /// another backend).
    #[arg(long)]
    db: Option<PathBuf>,
    /// Serve Prometheus metrics over HTTP at this address (`/metrics`).
    #[arg(long)]
    metrics: Option<SocketAddr>,
    /// How long a session lasts, seconds (a client resumes with its token until then).
    #[arg(long, default_value_t = crate::user_cmd::SESSION_TTL_S, value_parser = clap::value_parser!(u64).range(60..=31_536_000))]
    session_ttl_s: u64,
    /// Authentication attempts allowed per second from one address (a burst of five times as
    /// many). Raise it for load tests, whose bots all come from one address.
    #[arg(long, default_value_t = 2.0)]
    auth_per_address_per_s: f64,
    /// Authentication attempts allowed per second from everyone together (a burst of twice as
    /// many).
    #[arg(long, default_value_t = 100.0)]
    auth_global_per_s: f64,
    /// Niceness of the password-hashing threads (0 normal .. 19 lowest): above 0, a login
    /// storm hashes only with the time the game leaves (`[gw-9]`).
    #[arg(long, default_value_t = pwn_gateway::pool::HASH_NICE, value_parser = clap::value_parser!(i32).range(0..=19))]
    hash_nice: i32,
}

/// Runs the gateway until Ctrl-C or SIGTERM.
pub fn run_gateway(cfg: &PwnConfig, args: &GatewayArgs) -> anyhow::Result<()> {
    for (name, v) in
        [("--auth-per-address-per-s", args.auth_per_address_per_s), ("--auth-global-per-s", args.auth_global_per_s)]
    {
        if !(v.is_finite() && v > 0.0 && v <= 1e6) {
            anyhow::bail!("{name} must be between 0 and 1000000, not {v}");
        }
    }
    let db = args.db.clone().unwrap_or_else(|| args.data.join("pwn.sqlite"));
    let store = if cfg.store.backend == pwn_store::BackendKind::Sqlite {
        crate::kv::open_configured(cfg, Some(&db))?
    } else {
        crate::kv::open_configured(cfg, None)?
    };
    let accounts = Accounts::new(store, args.session_ttl_s);
    let cert = pwn_net::tls::server_cert(&ServerTls::DevCa { dir: args.data.clone() })?;
    let digest = pwn_sim::build_digest(&cfg.sim);
    let identity = ServiceIdentity { sim_digest: digest, tick_hz: cfg.sim.tick_hz as u16 };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        if let Some(addr) = args.metrics {
            crate::metrics_http::install(addr)?;
        }
        let net = pwn_net::NetServer::bind(args.listen, &cert, &TransportConfig::players(), identity)?;
        let addr = net.local_addr()?;
        // Zones behind gateways admit only services: present the service certificate.
        let upstream = crate::services::client(&args.data)?;
        let upstreams = Arc::new(Upstreams::new(upstream, digest, pwn_net::tls::service_key(&args.data)?));
        println!(
            "pwn gateway listening on {addr} (clients trust {})",
            args.data.join(pwn_net::tls::DEV_CA_CERT).display()
        );
        let shutdown = crate::up::ctrl_c_or_sigterm();
        let limits = GatewayConfig {
            per_address: Rate { per_s: args.auth_per_address_per_s, burst: 5.0 * args.auth_per_address_per_s },
            global: Rate { per_s: args.auth_global_per_s, burst: 2.0 * args.auth_global_per_s },
            hash_nice: args.hash_nice,
            ..GatewayConfig::default()
        };
        let placement = match (args.world_server, args.zone) {
            (Some(world), _) => {
                let agent = concat!("pwn-gateway/", env!("CARGO_PKG_VERSION"));
                let hello = pwn_net::ClientHello::new(pwn_proto::PeerRole::Gateway, digest, agent);
                Placement::World(Arc::new(crate::services::world_client(&args.data, world, hello)?))
            }
            (None, Some(zone)) => Placement::Zone(zone),
            (None, None) => anyhow::bail!("name a zone (--zone) or a world server (--world-server)"),
        };
        run_placed(net, accounts, limits, upstreams, placement, shutdown).await;
        anyhow::Ok(())
    })
}
