//! The gateway's authentication over real QUIC on loopback: each bad request gets a clear,
//! non-revealing answer; a token after logout is refused; a second login ends the first
//! session's connection; a flood from one address is rate limited.

use pwn_gateway::accounts::Accounts;
use pwn_gateway::limits::Rate;
use pwn_gateway::server::{GatewayConfig, run};
use pwn_net::{ClientHello, Conn, NetClient, NetServer, ServerTls, ServiceIdentity, TransportConfig};
use pwn_proto::{AuthError, Credentials, Message, PeerRole, SessionToken};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

struct Fixture {
    _dir: tempfile::TempDir,
    addr: SocketAddr,
    client: NetClient,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(cfg: GatewayConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = pwn_store::Store::new(Arc::new(pwn_store::SqliteBackend::open(dir.path().join("pwn.sqlite")).unwrap()));
    let cert = pwn_net::tls::server_cert(&ServerTls::DevCa { dir: dir.path().to_path_buf() }).unwrap();
    let identity = ServiceIdentity { sim_digest: pwn_sim::build_digest(&pwn_sim::SimConfig::default()), tick_hz: 30 };
    let net = NetServer::bind("127.0.0.1:0".parse().unwrap(), &cert, &TransportConfig::default(), identity).unwrap();
    let addr = net.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(run(net, Accounts::new(store, 3_600), cfg, async {
        let _ = stopped.await;
    }));
    let ca = pwn_net::tls::dev_ca_cert(dir.path()).unwrap();
    let client = NetClient::new("127.0.0.1:0".parse().unwrap(), &ca, &TransportConfig::default()).unwrap();
    Fixture { _dir: dir, addr, client, _stop: stop }
}

impl Fixture {
    async fn connect(&self) -> Conn {
        let hello =
            ClientHello::new(PeerRole::Client, pwn_sim::build_digest(&pwn_sim::SimConfig::default()), "gw-test");
        self.client.connect(self.addr, "localhost", &hello).await.unwrap()
    }
}

async fn ask(conn: &mut Conn, m: Message) -> Message {
    conn.tx.send(&m).await.unwrap();
    tokio::time::timeout(WAIT, conn.rx.recv()).await.expect("no answer").unwrap().expect("connection ended")
}

fn creds(u: &str, p: &str) -> Credentials {
    Credentials { username: u.into(), password: p.into() }
}

fn error_of(m: &Message) -> (AuthError, String) {
    match m {
        Message::AuthFailed(f) => (f.error, f.message.clone()),
        other => panic!("expected AuthFailed, got {other:?}"),
    }
}

const PW: &str = "correct horse battery";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_request_gets_a_clear_answer() {
    let f = start(GatewayConfig::default()).await;
    let mut c = f.connect().await;
    let ok = ask(&mut c, Message::Register(creds("Alice", PW))).await;
    assert!(matches!(ok, Message::AuthOk(ref a) if a.player_id == 1), "{ok:?}");
    assert_eq!(error_of(&ask(&mut c, Message::Register(creds("alice", PW))).await).0, AuthError::NameTaken);
    let (e, why) = error_of(&ask(&mut c, Message::Register(creds("a b", PW))).await);
    assert_eq!(e, AuthError::InvalidInput);
    assert!(why.contains("usernames are"), "{why}");
    let long = "x".repeat(129);
    assert_eq!(error_of(&ask(&mut c, Message::Register(creds("bob", &long))).await).0, AuthError::InvalidInput);
    let wrong = error_of(&ask(&mut c, Message::Login(creds("alice", "wrong password!"))).await);
    let unknown = error_of(&ask(&mut c, Message::Login(creds("nobody", PW))).await);
    assert_eq!(wrong, unknown, "which half was wrong is not revealed");
    assert_eq!(wrong.0, AuthError::InvalidCredentials);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_the_token_and_a_second_login_ends_the_first() {
    let f = start(GatewayConfig::default()).await;
    let mut first = f.connect().await;
    let Message::AuthOk(a) = ask(&mut first, Message::Register(creds("alice", PW))).await else { panic!() };
    // Resume works on another connection while the session lives.
    let mut other = f.connect().await;
    assert!(matches!(ask(&mut other, Message::Resume(a.token)).await, Message::AuthOk(_)));
    // A fresh login kicks whoever holds the session.
    let mut second = f.connect().await;
    let Message::AuthOk(b) = ask(&mut second, Message::Login(creds("alice", PW))).await else { panic!() };
    assert_ne!(a.token, b.token);
    let kicked = tokio::time::timeout(WAIT, other.rx.recv()).await.expect("the old connection was not told");
    assert!(matches!(kicked, Ok(Some(Message::Refused(_))) | Ok(None) | Err(_)), "{kicked:?}");
    assert_eq!(error_of(&ask(&mut second, Message::Resume(a.token)).await).0, AuthError::SessionInvalid);
    // Logout, then the token is refused.
    let bye = ask(&mut second, Message::Logout).await;
    assert!(matches!(bye, Message::Event(_)), "{bye:?}");
    assert_eq!(error_of(&ask(&mut second, Message::Resume(b.token)).await).0, AuthError::SessionInvalid);
    let never = SessionToken([0xab; 16]);
    assert_eq!(error_of(&ask(&mut second, Message::Resume(never)).await).0, AuthError::SessionInvalid);
    drop(first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_address_is_rate_limited() {
    let cfg = GatewayConfig {
        per_address: Rate { per_s: 1.0, burst: 3.0 },
        global: Rate { per_s: 1_000.0, burst: 1_000.0 },
        ..GatewayConfig::default()
    };
    let f = start(cfg).await;
    let mut c = f.connect().await;
    let mut limited = 0;
    for _ in 0..8 {
        if error_of(&ask(&mut c, Message::Login(creds("nobody", PW))).await).0 == AuthError::RateLimited {
            limited += 1;
        }
    }
    assert!(limited >= 4, "only {limited} of 8 rapid attempts were limited");
}
