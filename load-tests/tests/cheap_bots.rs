//! Cheap bots (pwn-client `[game-14]`, driven together by one task a tick) against a real zone
//! server in process over real QUIC on loopback, beside full bots in the same swarm: what they
//! measure must be comparable with what the full bots measure, since both land in the same
//! summary figures (`input_ack_ticks_p50`/`_p99`) that thresholds gate on.

use pwn_load_tests::scenario::Scenario;
use pwn_load_tests::swarm::{BotResult, Progress, SwarmConfig, run_swarm};
use pwn_net::{NetServer, ServerTls, ServiceIdentity, TransportConfig};
use pwn_sim::{Sim, SimConfig, WorldDesc};
use pwn_zone_node::zone::{Zone, ZoneConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A temporary folder for the development CA, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("pwn-cheap-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn world() -> WorldDesc {
    let mut w = WorldDesc::flat(400.0);
    w.spawn_points = (0..8).map(|i| [i as f32 * 6.0 - 21.0, 1.0, 0.0]).collect();
    w
}

/// A zone server placing players directly, on 127.0.0.1; stops when the sender drops.
fn start_zone(dir: &std::path::Path) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let cert = pwn_net::tls::server_cert(&ServerTls::DevCa { dir: dir.to_path_buf() }).unwrap();
    let identity = ServiceIdentity { sim_digest: pwn_sim::build_digest(&SimConfig::default()), tick_hz: 30 };
    let net = NetServer::bind("127.0.0.1:0".parse().unwrap(), &cert, &TransportConfig::default(), identity).unwrap();
    let addr = net.local_addr().unwrap();
    let zone = Zone::new(Sim::new(world(), SimConfig::default(), 1).unwrap(), ZoneConfig::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stats = Arc::new(pwn_zone_node::server::ZoneStats::default());
    tokio::spawn(pwn_zone_node::server::run(net, zone, Some(1), None, None, stats, async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

fn swarm_config(dir: &std::path::Path, addr: SocketAddr, count: usize, predicting: usize) -> SwarmConfig {
    SwarmConfig {
        addr,
        server_name: "localhost".into(),
        ca_pem: pwn_net::tls::dev_ca_cert(dir).unwrap(),
        world: world(),
        sim: SimConfig::default(),
        count,
        predicting,
        duration: Duration::from_secs(5),
        scenario: Scenario::Wander,
        seed: 3,
        joins_per_s: 50.0,
        link: None,
        login: false,
        shard: None,
        phase: None,
    }
}

fn merged_ack(results: &[BotResult], predicting: bool) -> pwn_client::Histogram {
    let mut h = pwn_client::ClientCounters::default().input_ack_ticks;
    for r in results.iter().filter(|r| r.predicting == predicting) {
        h.merge(&r.counters.input_ack_ticks);
    }
    h
}

/// A cheap bot reads what arrived once a tick, so it cannot know when within the last tick a
/// snapshot arrived. Stamping everything it reads with the clock of its previous update (the
/// earliest the snapshot can have arrived) makes an input acknowledged by the first snapshot
/// read after it was sent count as acknowledged in zero ticks: cheap bots then report input
/// acknowledgement better than the full bots beside them on the same link (a tick better at
/// the median on loopback), and a swarm of mostly cheap bots passes an
/// `input_ack_ticks_p50<=..` threshold its players would fail. On loopback no input is acknowledged in no time at all: the zone applies it at
/// its next tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cheap_bots_measure_input_acknowledgement_like_full_bots() {
    let dir = TempDir::new("ack");
    let (addr, _stop) = start_zone(&dir.0);
    let results = run_swarm(swarm_config(&dir.0, addr, 8, 4), Arc::new(Progress::default())).await.unwrap();
    for r in &results {
        assert!(r.joined && r.failure.is_none(), "bot {} ({}): {:?}", r.index, r.predicting, r.failure);
    }
    let (full, cheap) = (merged_ack(&results, true), merged_ack(&results, false));
    assert!(full.count() > 200 && cheap.count() > 200, "full {full:?} cheap {cheap:?}");
    eprintln!(
        "full: mean {:.3} p05 {:.3} p50 {:.3}; cheap: mean {:.3} p05 {:.3} p50 {:.3}",
        full.mean(),
        full.quantile(0.05),
        full.quantile(0.5),
        cheap.mean(),
        cheap.quantile(0.05),
        cheap.quantile(0.5)
    );
    // Zero ticks from sending an input to its acknowledgement is not something a zone that
    // applies inputs at its ticks can do; the first bucket (under 0.05 ticks) holds a handful
    // of full-bot samples at most.
    let zero = cheap.quantile(0.1);
    assert!(zero > 0.05, "a tenth of the cheap bots' inputs acknowledged in no time: p10 {zero} ticks ({cheap:?})");
    // Read once a tick, the acknowledgement is known to within that tick only: half a tick
    // at least on average. (Cheap bots pace to a clean link's queue, full bots to the jitter
    // they measure, so their figures need not be equal.)
    assert!(cheap.mean() >= 0.4, "cheap bots' input acknowledgement: mean {:.3} ticks", cheap.mean());
}
