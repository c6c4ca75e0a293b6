//! `pwn bench proxy`: what the gateway adds to a player's round trip. A zone node and a gateway
//! in front of it run on their own runtimes (threads, as separate processes would); one client
//! connects to the zone directly, another logs in through the gateway; they take turns sending
//! a game datagram (`Ping`) that the zone answers from the player's connection task (`Pong`),
//! so each round trip is the network path alone: client, (gateway,) zone and back.
//!
//! An input's round trip to its snapshot also waits for the zone's next tick (up to 33 ms,
//! at a phase that varies from one input to the next), which would bury a fraction of a
//! millisecond in noise; the path is what the gateway changes, so the path is what is timed.

use crate::stats::{quantile, round3};
use clap::Args;
use pwn_gateway::accounts::Accounts;
use pwn_gateway::limits::Rate;
use pwn_gateway::proxy::Upstreams;
use pwn_gateway::server::GatewayConfig;
use pwn_net::{ClientHello, Conn, NetClient, NetServer, ServerTls, ServiceIdentity, TransportConfig};
use pwn_proto::{Credentials, GameEvent, Message, PeerRole, Ping};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Flags of `pwn bench proxy`.
#[derive(Args, Debug)]
pub struct BenchProxyArgs {
    /// Round trips per path.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(10..=1_000_000))]
    pings: u32,
    /// Print the figures as one JSON object on the last line.
    #[arg(long)]
    json: bool,
}

const WAIT: Duration = Duration::from_secs(10);

/// A runtime of its own, kept alive while the benchmark runs.
fn role_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?)
}

async fn wait_joined(conn: &mut Conn) -> anyhow::Result<()> {
    loop {
        match tokio::time::timeout(WAIT, conn.rx.recv()).await?? {
            Some(Message::Event(GameEvent::Joined { .. })) => return Ok(()),
            Some(Message::AuthFailed(f)) => anyhow::bail!("login refused: {}", f.message),
            Some(_) => {}
            None => anyhow::bail!("the connection ended before the player was placed"),
        }
    }
}

/// Datagrams can be lost: a round trip not back within this is counted as lost.
const LOST_AFTER: Duration = Duration::from_millis(200);

/// One round trip in milliseconds, or `None` if the datagram or its answer was lost.
async fn round_trip(conn: &mut Conn, seq: u64) -> anyhow::Result<Option<f64>> {
    let started = Instant::now();
    conn.tx.send_datagram(&Message::Ping(Ping { seq, sent_us: 0 }))?;
    let deadline = tokio::time::Instant::now() + LOST_AFTER;
    loop {
        // Snapshots arrive meanwhile: skip them.
        match tokio::time::timeout_at(deadline, conn.datagrams.recv()).await {
            Err(_) => return Ok(None),
            Ok(Ok(Message::Pong(p))) if p.seq == seq => return Ok(Some(started.elapsed().as_secs_f64() * 1e3)),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e.into()),
        }
    }
}

/// Runs the benchmark.
pub fn bench_proxy(args: &BenchProxyArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cfg = pwn_sim::SimConfig::default();
    let digest = pwn_sim::build_digest(&cfg);
    let identity = ServiceIdentity { sim_digest: digest, tick_hz: cfg.tick_hz as u16 };
    let cert = pwn_net::tls::server_cert(&ServerTls::DevCa { dir: dir.path().to_path_buf() })?;
    let ca = pwn_net::tls::dev_ca_cert(dir.path())?;
    let key = pwn_net::tls::service_key(dir.path())?;
    let store = pwn_store::Store::new(Arc::new(pwn_store::SqliteBackend::open(dir.path().join("pwn.sqlite"))?));

    let zone_rt = role_runtime()?;
    let zone_identity = identity.clone();
    let zone_addr: SocketAddr = zone_rt.block_on(async {
        let net =
            NetServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), &cert, &TransportConfig::default(), zone_identity)?;
        let addr = net.local_addr()?;
        let sim = pwn_sim::Sim::new(pwn_sim::WorldDesc::arena(), cfg.clone(), 1)?;
        let zone = pwn_zone_node::zone::Zone::new(sim, pwn_zone_node::zone::ZoneConfig::default());
        let stats = Arc::new(pwn_zone_node::server::ZoneStats::default());
        // Direct players get ids far from the accounts' (which count from 1).
        tokio::spawn(pwn_zone_node::server::run(
            net,
            zone,
            Some(1 << 40),
            Some(key),
            None,
            stats,
            std::future::pending(),
        ));
        anyhow::Ok(addr)
    })?;
    let gateway_rt = role_runtime()?;
    let gateway_addr: SocketAddr = gateway_rt.block_on(async {
        let net = NetServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), &cert, &TransportConfig::default(), identity)?;
        let addr = net.local_addr()?;
        let upstream = NetClient::new(SocketAddr::from(([127, 0, 0, 1], 0)), &ca, &TransportConfig::default())?;
        let upstreams = Arc::new(Upstreams::new(upstream, digest, key));
        let accounts = Accounts::new(store, 3_600);
        tokio::spawn(pwn_gateway::server::run(
            net,
            accounts,
            // Back-to-back pings would trip the per-connection game rate limit (120/s).
            GatewayConfig { game_rate: Rate { per_s: 1e9, burst: 1e9 }, ..GatewayConfig::default() },
            upstreams,
            zone_addr,
            std::future::pending(),
        ));
        anyhow::Ok(addr)
    })?;

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (direct, through, lost) = runtime.block_on(async {
        let client = NetClient::new(SocketAddr::from(([127, 0, 0, 1], 0)), &ca, &TransportConfig::default())?;
        let hello = ClientHello::new(PeerRole::Client, digest, "pwn-bench-proxy");
        let mut direct = client.connect(zone_addr, "localhost", &hello).await?;
        wait_joined(&mut direct).await?;
        let mut gw = client.connect(gateway_addr, "localhost", &hello).await?;
        let creds = Credentials { username: "bench".into(), password: "benchmark passphrase".into() };
        gw.tx.send(&Message::Register(creds)).await?;
        wait_joined(&mut gw).await?;
        // Warm up both paths, then alternate so both see the same machine.
        for seq in 0..100 {
            round_trip(&mut direct, seq).await?;
            round_trip(&mut gw, seq).await?;
        }
        let (mut d, mut g) = (Vec::new(), Vec::new());
        let mut lost = [0u32; 2];
        for i in 0..u64::from(args.pings) {
            match round_trip(&mut direct, 1_000 + i).await? {
                Some(ms) => d.push(ms),
                None => lost[0] += 1,
            }
            match round_trip(&mut gw, 1_000 + i).await? {
                Some(ms) => g.push(ms),
                None => lost[1] += 1,
            }
        }
        anyhow::Ok((d, g, lost))
    })?;
    drop(gateway_rt);
    drop(zone_rt);
    let (d50, d99) = (quantile(&direct, 0.5), quantile(&direct, 0.99));
    let (g50, g99) = (quantile(&through, 0.5), quantile(&through, 0.99));
    println!("pwn bench proxy: {} game-datagram round trips per path, alternating", args.pings);
    println!("  direct to the zone     p50 {d50:.3} ms  p99 {d99:.3} ms");
    println!("  through the gateway    p50 {g50:.3} ms  p99 {g99:.3} ms");
    println!("  added by the gateway   p50 {:.3} ms", g50 - d50);
    println!("  lost (no answer within 200 ms): direct {}, through the gateway {}", lost[0], lost[1]);
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "direct_ms_p50": round3(d50),
                "gateway_ms_p50": round3(g50),
                "added_ms_p50": round3(g50 - d50),
                "direct_ms_p99": round3(d99),
                "gateway_ms_p99": round3(g99),
                "pings": args.pings,
                "lost_direct": lost[0],
                "lost_gateway": lost[1],
            })
        );
    }
    Ok(())
}
