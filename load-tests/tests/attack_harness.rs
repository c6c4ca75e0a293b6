//! The attack harness judged against servers whose answers are known: a report of
//! "expected" must mean the world answered as a sound server does, never that it did not
//! answer at all, and an answer a sound gateway gives must not be reported as a finding.

use pwn_load_tests::attack::{ATTACKS, AttackConfig, AttackReport, run_attack};
use pwn_net::{NetServer, ServerTls, ServiceIdentity, TransportConfig};
use pwn_proto::{AuthError, AuthFailed, Message, RefuseCode};
use std::net::SocketAddr;
use std::time::Duration;

/// A temporary folder for the development CA, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("pwn-attack-harness-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(dir: &std::path::Path, addr: SocketAddr, duration: Duration, only: &[&str]) -> AttackConfig {
    AttackConfig {
        addr,
        server_name: "localhost".into(),
        ca_pem: pwn_net::tls::dev_ca_cert(dir).unwrap(),
        sim_digest: pwn_sim::build_digest(&pwn_sim::SimConfig::default()),
        duration,
        login_rate_per_s: 8.0,
        addresses: 4,
        victim_accounts: Vec::new(),
        seed: 3,
        only: only.iter().map(|s| (*s).to_owned()).collect(),
    }
}

async fn attack(cfg: AttackConfig) -> AttackReport {
    // Each attack ends within a few handshake timeouts of its deadline.
    tokio::time::timeout(Duration::from_secs(60), run_attack(cfg)).await.expect("the attack did not end").unwrap()
}

/// A "gateway" that never answers (a UDP port nobody reads): every attack that ran must
/// report it, none may call it expected. `foreign_alpn` is left out: a sound server answers a
/// foreign ALPN with silence too (s2n-quic drops the handshake), so it cannot tell the two
/// apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_never_answers_is_never_expected() {
    let dir = TempDir::new("silent");
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let only: Vec<&str> = ATTACKS.iter().copied().filter(|a| *a != "all" && *a != "foreign_alpn").collect();
    let report = attack(config(dir.path(), silent.local_addr().unwrap(), Duration::from_millis(500), &only)).await;
    for name in ["connection_flood", "half_open", "stream_flood", "login_storm", "foreign_datagrams", "legacy_alpn"] {
        let tally = report.attacks.get(name);
        assert!(tally.is_some_and(|t| t.attempts() > 0), "{name} recorded nothing: {}", report.table());
    }
    for (name, tally) in &report.attacks {
        if *name == "foreign_alpn" {
            continue;
        }
        assert!(tally.expected.is_empty(), "{name} called a silent server expected:\n{}", report.table());
    }
}

/// A stand-in gateway that welcomes players, answers every login `InvalidCredentials`, and
/// ends a connection that has not logged in after `login_deadline` as the gateway does
/// (`[gw-5]`: `Refused(Unavailable)`, then closed).
async fn stand_in_gateway(dir: &std::path::Path, login_deadline: Duration) -> SocketAddr {
    let cert = pwn_net::tls::server_cert(&ServerTls::DevCa { dir: dir.to_path_buf() }).unwrap();
    let identity = ServiceIdentity { sim_digest: pwn_sim::build_digest(&pwn_sim::SimConfig::default()), tick_hz: 30 };
    let mut net =
        NetServer::bind("127.0.0.1:0".parse().unwrap(), &cert, &TransportConfig::players(), identity).unwrap();
    let addr = net.local_addr().unwrap();
    tokio::spawn(async move {
        while let Some(incoming) = net.accept().await {
            tokio::spawn(async move {
                let Ok(mut conn) = incoming.handshake().await else { return };
                let login_by = tokio::time::Instant::now() + login_deadline;
                loop {
                    match tokio::time::timeout_at(login_by, conn.rx.recv()).await {
                        Err(_) => {
                            conn.tx.refuse(RefuseCode::Unavailable, "log in sooner".into()).await;
                            return;
                        }
                        Ok(Ok(Some(Message::Login(_)))) => {
                            // Hashing under a storm: the answer takes longer than the pause.
                            tokio::time::sleep(Duration::from_millis(300)).await;
                            let no = AuthFailed { error: AuthError::InvalidCredentials, message: "no".into() };
                            let _ = conn.tx.send(&Message::AuthFailed(no)).await;
                        }
                        Ok(Ok(Some(_))) => {}
                        Ok(_) => return,
                    }
                }
            });
        }
    });
    addr
}

/// `login_storm` keeps guessing on one connection "until the gateway ends it (its login
/// deadline)": that ending is what a sound gateway does, not a finding. An attack longer than
/// the deadline (30 s at the gateway) must not report it as unexpected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_deadline_ending_a_storm_connection_is_expected() {
    let dir = TempDir::new("deadline");
    let addr = stand_in_gateway(dir.path(), Duration::from_millis(700)).await;
    let report = attack(config(dir.path(), addr, Duration::from_millis(2_000), &["login_storm"])).await;
    let storm = &report.attacks["login_storm"];
    assert!(storm.expected.contains_key("invalid credentials (hashed)"), "{}", report.table());
    assert!(storm.expected.contains_key("ended by the login deadline"), "{}", report.table());
    assert_eq!(storm.unexpected_total(), 0, "{}", report.table());
}
