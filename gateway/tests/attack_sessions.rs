//! A hostile review of the gateway's session rules (issue 11): each test is a finding, and
//! fails while the gateway breaks the rule it names.
//!
//! - `[gw-5]`: a connection that never logs in can stay forever by sending `Logout` (each one
//!   restarts the login deadline, though there is no session to log out of).
//! - `[gw-7]`: guesses sent at once on several connections are all hashed: the throttle is
//!   checked before hashing and updated only after, so concurrency walks past it.
//! - `[sess-6]`: a session that nobody revoked (it merely reached its expiry while its player
//!   played) ends the live connection, with a reason that says it was revoked.
//!
//! The gateway here stands in front of a stand-in zone that takes the link and every attach
//! and says nothing, so logins succeed without a simulation.

use pwn_gateway::accounts::Accounts;
use pwn_gateway::limits::Rate;
use pwn_gateway::proxy::Upstreams;
use pwn_gateway::server::{GatewayConfig, Placement, run_placed};
use pwn_net::{ClientHello, Conn, NetClient, NetServer, ServerTls, ServiceIdentity, TransportConfig};
use pwn_proto::{AuthError, Credentials, Message, PeerRole};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);
const PW: &str = "correct horse battery";

struct Gateway {
    dir: tempfile::TempDir,
    addr: SocketAddr,
    client: NetClient,
    _stop: tokio::sync::oneshot::Sender<()>,
}

fn identity() -> ServiceIdentity {
    ServiceIdentity { sim_digest: pwn_sim::build_digest(&pwn_sim::SimConfig::default()), tick_hz: 30 }
}

fn creds(u: &str, p: &str) -> Credentials {
    Credentials { username: u.into(), password: p.into() }
}

/// A gateway with `cfg`, sessions lasting `session_ttl_s`, in front of a silent stand-in zone;
/// `accounts` are registered in its store first.
async fn start(cfg: GatewayConfig, session_ttl_s: u64, accounts: &[&str]) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    let key = pwn_net::tls::service_key(dir.path()).unwrap();
    let cert = pwn_net::tls::server_cert(&ServerTls::DevCa { dir: dir.path().to_path_buf() }).unwrap();
    let mut zone =
        NetServer::bind("127.0.0.1:0".parse().unwrap(), &cert, &TransportConfig::default(), identity()).unwrap();
    let zone_addr = zone.local_addr().unwrap();
    tokio::spawn(async move {
        while let Some(incoming) = zone.accept().await {
            tokio::spawn(async move {
                let Ok(mut link) = incoming.handshake().await else { return };
                if !pwn_net::service_auth::expect(&link.tx, &mut link.rx, Some(key)).await {
                    return;
                }
                while let Ok(Some(_)) = link.rx.recv().await {}
            });
        }
    });
    let store = pwn_store::Store::new(Arc::new(pwn_store::SqliteBackend::open(dir.path().join("pwn.sqlite")).unwrap()));
    let accts = Accounts::new(store, session_ttl_s);
    for name in accounts {
        accts.register(name, PW, [3; 16], 0).unwrap();
    }
    let ca = pwn_net::tls::dev_ca_cert(dir.path()).unwrap();
    let upstream_net = NetClient::new("127.0.0.1:0".parse().unwrap(), &ca, &TransportConfig::default()).unwrap();
    let upstreams = Arc::new(Upstreams::new(upstream_net, identity().sim_digest, key));
    let net = NetServer::bind("127.0.0.1:0".parse().unwrap(), &cert, &TransportConfig::players(), identity()).unwrap();
    let addr = net.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(run_placed(net, accts, cfg, upstreams, Placement::Zone(zone_addr), async {
        let _ = stopped.await;
    }));
    let client = NetClient::new("127.0.0.1:0".parse().unwrap(), &ca, &TransportConfig::default()).unwrap();
    Gateway { dir, addr, client, _stop: stop }
}

impl Gateway {
    async fn connect(&self) -> Conn {
        let hello = ClientHello::new(PeerRole::Client, identity().sim_digest, "attack-test");
        self.client.connect(self.addr, "localhost", &hello).await.unwrap()
    }
}

/// Sends `m` and returns the first answer that is not a zone event.
async fn ask(conn: &mut Conn, m: Message) -> Message {
    conn.tx.send(&m).await.unwrap();
    loop {
        let answer =
            tokio::time::timeout(WAIT, conn.rx.recv()).await.expect("no answer").unwrap().expect("connection ended");
        if !matches!(answer, Message::Event(_)) {
            return answer;
        }
    }
}

/// `[gw-5]`: "a connection that has not logged in within `login_deadline` ... is refused and
/// closed: a connection cannot sit in the gateway for free". The deadline is "counted again
/// from a logout" - but a `Logout` on a connection that has no session restarts it too, so a
/// connection that never logs in stays as long as it sends one now and then (free: a `Logout`
/// is neither rate limited nor hashed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gw_5_a_logout_without_a_session_does_not_restart_the_login_deadline() {
    let cfg = GatewayConfig { login_deadline: Duration::from_millis(500), ..GatewayConfig::default() };
    let g = start(cfg, 3_600, &[]).await;
    let mut idle = g.connect().await;
    let opened = tokio::time::Instant::now();
    let mut closed_after = None;
    'outer: while opened.elapsed() < Duration::from_secs(4) {
        let _ = idle.tx.send(&Message::Logout).await;
        let until = tokio::time::Instant::now() + Duration::from_millis(200);
        loop {
            match tokio::time::timeout_at(until, idle.rx.recv()).await {
                Err(_) => break,
                Ok(Ok(Some(Message::Refused(_)))) | Ok(Ok(None)) | Ok(Err(_)) => {
                    closed_after = Some(opened.elapsed());
                    break 'outer;
                }
                Ok(Ok(Some(_))) => {}
            }
        }
    }
    assert!(
        closed_after.is_some_and(|t| t < Duration::from_secs(2)),
        "a connection that never logged in was still open after {:?} (deadline 500 ms): Logout restarts the deadline",
        opened.elapsed()
    );
}

/// `[gw-7]`: "five free, then 1 s doubling to 30 s, refused without hashing meanwhile"; "a
/// flood on one account costs the gateway almost no CPU". Twenty guesses at one account sent
/// at once (from twenty connections, as from twenty addresses) all pass the check, because
/// the check runs before hashing and the failure is recorded only after: every one is hashed
/// and answered `InvalidCredentials`, where at most six may be before the account must wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gw_7_guesses_sent_at_once_are_not_all_hashed() {
    const GUESSES: usize = 20;
    let cfg = GatewayConfig {
        per_address: Rate { per_s: 1_000.0, burst: 1_000.0 },
        global: Rate { per_s: 1_000.0, burst: 1_000.0 },
        ..GatewayConfig::default()
    };
    let g = start(cfg, 3_600, &["victim"]).await;
    let mut conns = Vec::new();
    for _ in 0..GUESSES {
        conns.push(g.connect().await);
    }
    let guesses: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            tokio::spawn(
                async move { ask(&mut c, Message::Login(creds("victim", &format!("guess number {i}")))).await },
            )
        })
        .collect();
    let mut hashed = 0;
    for g in guesses {
        match g.await.unwrap() {
            Message::AuthFailed(f) if f.error == AuthError::InvalidCredentials => hashed += 1,
            Message::AuthFailed(f) if f.error == AuthError::RateLimited => {}
            other => panic!("unexpected answer {other:?}"),
        }
    }
    let allowed = pwn_gateway::throttle::FREE_FAILURES as usize + 1;
    assert!(
        hashed <= allowed,
        "{hashed} of {GUESSES} simultaneous guesses at one account were hashed (at most {allowed})"
    );
}

/// `[sess-6]` promises that a session *revoked* anywhere (logout, a login elsewhere, a disabled
/// account, a password reset) ends its connection, and the refusal says so ("logged out, logged
/// in elsewhere, or the account changed"). A session that simply reached its expiry while its
/// player played was revoked by nobody, yet the check ends it: with the default 24 h, every
/// player is cut off 24 h after logging in (a resume does not push the expiry back), told a
/// reason that is not true.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sess_6_a_session_nobody_revoked_keeps_its_connection() {
    // Sessions last the shortest whole-second span, so expiry comes during the test.
    let g = start(GatewayConfig::default(), 2, &["player"]).await;
    let mut c = g.connect().await;
    assert!(matches!(ask(&mut c, Message::Login(creds("player", PW))).await, Message::AuthOk(_)));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(7);
    loop {
        match tokio::time::timeout_at(deadline, c.rx.recv()).await {
            Err(_) => break,
            Ok(Ok(Some(Message::Refused(r)))) => {
                panic!("an unrevoked session's connection was ended: {:?} {:?}", r.code, r.message)
            }
            Ok(Ok(Some(_))) => {}
            Ok(other) => panic!("an unrevoked session's connection was ended: {other:?}"),
        }
    }
    let _ = &g.dir;
}
