//! The gateway test fixture shared by the test binaries: two real zone servers and a gateway in
//! front of the first, over real QUIC on loopback, with a SQLite store.

// Each test binary uses part of it.
#![allow(dead_code, unused_imports)]

pub use pwn_gateway::accounts::Accounts;
pub use pwn_gateway::limits::Rate;
pub use pwn_gateway::proxy::Upstreams;
pub use pwn_gateway::server::{GatewayConfig, run};
pub use pwn_net::{ClientHello, Conn, NetClient, NetServer, ServerTls, ServiceIdentity, TransportConfig};
pub use pwn_proto::{AuthError, Credentials, Message, PeerRole, SessionToken};
pub use std::net::SocketAddr;
pub use std::sync::Arc;
pub use std::time::Duration;

pub const WAIT: Duration = Duration::from_secs(10);

pub struct Fixture {
    pub _dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub zones: Vec<SocketAddr>,
    pub client: NetClient,
    pub upstreams: Arc<Upstreams>,
    pub _stops: Vec<tokio::sync::oneshot::Sender<()>>,
}

pub fn identity() -> ServiceIdentity {
    ServiceIdentity { sim_digest: pwn_sim::build_digest(&pwn_sim::SimConfig::default()), tick_hz: 30 }
}

pub fn world(x: f32) -> pwn_sim::WorldDesc {
    let mut w = pwn_sim::WorldDesc::flat(400.0);
    w.spawn_points = vec![[x, 1.0, 0.0]];
    w
}

/// Two zone servers (spawning at x = -50 and x = 50) and a gateway in front of the first,
/// which persists its players in the gateway's store.
pub async fn start(cfg: GatewayConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = pwn_store::Store::new(Arc::new(pwn_store::SqliteBackend::open(dir.path().join("pwn.sqlite")).unwrap()));
    let key = pwn_net::tls::service_key(dir.path()).unwrap();
    let cell = pwn_store::keys::CellKey::ROOT;
    let lease = pwn_zone_node::persist::acquire_lease(&store, cell, 1).unwrap();
    let mut persistence =
        Some(pwn_zone_node::server::Persistence { store: store.clone(), cell, epoch: lease.epoch, interval_ticks: 30 });
    let cert = pwn_net::tls::server_cert(&ServerTls::DevCa { dir: dir.path().to_path_buf() }).unwrap();
    let mut stops = Vec::new();
    let mut zones = Vec::new();
    for x in [-50.0, 50.0] {
        let net =
            NetServer::bind("127.0.0.1:0".parse().unwrap(), &cert, &TransportConfig::default(), identity()).unwrap();
        zones.push(net.local_addr().unwrap());
        let sim = pwn_sim::Sim::new(world(x), pwn_sim::SimConfig::default(), 1).unwrap();
        let zone = pwn_zone_node::zone::Zone::new(sim, pwn_zone_node::zone::ZoneConfig::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        stops.push(stop);
        let stats = Arc::new(pwn_zone_node::server::ZoneStats::default());
        tokio::spawn(pwn_zone_node::server::run(net, zone, None, Some(key), persistence.take(), stats, async {
            let _ = stopped.await;
        }));
    }
    let ca = pwn_net::tls::dev_ca_cert(dir.path()).unwrap();
    let upstream_net = NetClient::new("127.0.0.1:0".parse().unwrap(), &ca, &TransportConfig::default()).unwrap();
    let upstreams = Arc::new(Upstreams::new(upstream_net, identity().sim_digest, key));
    let net = NetServer::bind("127.0.0.1:0".parse().unwrap(), &cert, &TransportConfig::default(), identity()).unwrap();
    let addr = net.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    stops.push(stop);
    tokio::spawn(run(net, Accounts::new(store, 3_600), cfg, upstreams.clone(), zones[0], async {
        let _ = stopped.await;
    }));
    let client = NetClient::new("127.0.0.1:0".parse().unwrap(), &ca, &TransportConfig::default()).unwrap();
    Fixture { _dir: dir, addr, zones, client, upstreams, _stops: stops }
}

impl Fixture {
    /// A client that logs in through the gateway (to the first zone's world).
    pub async fn play(&self, login: pwn_client::Login) -> pwn_client::Client {
        let options = pwn_client::JoinOptions { login: Some(login), ..pwn_client::JoinOptions::default() };
        let (world, cfg) = (world(-50.0), pwn_sim::SimConfig::default());
        pwn_client::Client::connect(&self.client, self.addr, "localhost", world, cfg, "t", &options).await.unwrap()
    }

    pub async fn connect(&self) -> Conn {
        let hello =
            ClientHello::new(PeerRole::Client, pwn_sim::build_digest(&pwn_sim::SimConfig::default()), "gw-test");
        self.client.connect(self.addr, "localhost", &hello).await.unwrap()
    }
}

/// Sends `m` and returns the answer (skipping the zone's events that follow a login).
pub async fn ask(conn: &mut Conn, m: Message) -> Message {
    conn.tx.send(&m).await.unwrap();
    loop {
        let answer =
            tokio::time::timeout(WAIT, conn.rx.recv()).await.expect("no answer").unwrap().expect("connection ended");
        if !matches!(answer, Message::Event(pwn_proto::GameEvent::Joined { .. })) {
            return answer;
        }
    }
}

pub fn creds(u: &str, p: &str) -> Credentials {
    Credentials { username: u.into(), password: p.into() }
}

pub fn error_of(m: &Message) -> (AuthError, String) {
    match m {
        Message::AuthFailed(f) => (f.error, f.message.clone()),
        other => panic!("expected AuthFailed, got {other:?}"),
    }
}

pub const PW: &str = "correct horse battery";
