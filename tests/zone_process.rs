//! A real `pwn zone` process on loopback with real QUIC clients: players are placed, move by
//! their inputs, see each other in packed snapshots, and chat.

use pwn_net::{ClientHello, Conn, ConnError, NetClient, TransportConfig};
use pwn_proto::delta::ReceivedViews;
use pwn_proto::{ChatChannel, ChatSend, GameEvent, InputBatch, Message, PeerRole, RefuseCode, WireInput};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

struct Zone(Child);

impl Drop for Zone {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_zone(data: &std::path::Path) -> (Zone, std::net::SocketAddr, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pwn"))
        .args(["zone", "--listen", "127.0.0.1:0", "--data", data.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pwn zone");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.split_whitespace().nth(4).expect("address in the first line").parse().expect("an address");
    // The zone's log, line by line, so tests can wait for what it reports.
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (Zone(child), addr, rx)
}

/// Waits for a log line containing `needle` and returns it.
fn wait_for(log: &std::sync::mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match log.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(e) => panic!("no log line with {needle:?}: {e}"),
        }
    }
}

fn crate_records(db: &std::path::Path) -> Vec<(u64, [f32; 3])> {
    let store = pwn_store::Store::new(std::sync::Arc::new(pwn_store::SqliteBackend::open(db).unwrap()));
    let (b, e) = pwn_store::keys::subspace("entities").range();
    let rows = store.transact(|t| t.get_range(&b, &e, pwn_store::RangeOptions::default())).unwrap();
    rows.iter()
        .map(|(k, v)| {
            let id = foundationdb_tuple::unpack::<(String, String, u64)>(k).unwrap().2;
            (id, pwn_store::keys::EntityRecord::decode(k, v).unwrap().position_m)
        })
        .collect()
}

#[test]
fn a_zone_killed_with_sigkill_comes_back_from_its_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pwn.sqlite");
    let (mut zone, _, log) = start_zone(dir.path());
    assert!(wait_for(&log, "loaded the cell").contains("restored=0"));
    // Two checkpoints: the arena's stacked crates have settled by then.
    wait_for(&log, "checkpoint written");
    wait_for(&log, "checkpoint written");
    let before = crate_records(&db);
    assert_eq!(before.len(), pwn_sim::WorldDesc::arena().crates.len());
    zone.0.kill().unwrap(); // SIGKILL: no last checkpoint, no cleanup.
    zone.0.wait().unwrap();
    drop(zone);

    let (_zone, _, log) = start_zone(dir.path());
    let loaded = wait_for(&log, "loaded the cell");
    assert!(loaded.contains(&format!("restored={}", before.len())), "{loaded}");
    wait_for(&log, "checkpoint written");
    let after = crate_records(&db);
    assert_eq!(after.len(), before.len());
    for ((id_a, a), (id_b, b)) in before.iter().zip(&after) {
        assert_eq!(id_a, id_b);
        let moved = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(moved < 1e-3, "crate {id_a} came back {moved} m away from its checkpoint");
    }
}

async fn joined(conn: &mut Conn) -> u64 {
    loop {
        match tokio::time::timeout(WAIT, conn.rx.recv()).await.expect("no Joined event").unwrap() {
            Some(Message::Event(GameEvent::Joined { entity, .. })) => return entity,
            Some(_) => continue,
            None => panic!("connection ended before Joined"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_move_see_each_other_and_chat_through_a_real_zone_process() {
    let dir = tempfile::tempdir().unwrap();
    let (_zone, addr, _log) = start_zone(dir.path());
    let ca = pwn_net::tls::dev_ca_cert(dir.path()).unwrap();
    let client = NetClient::new("127.0.0.1:0".parse().unwrap(), &ca, &TransportConfig::default()).unwrap();
    let hello =
        ClientHello::new(PeerRole::Client, pwn_sim::build_digest(&pwn_sim::SimConfig::default()), "zone-process-test");
    let mut a = client.connect(addr, "localhost", &hello).await.unwrap();
    let mut b = client.connect(addr, "localhost", &hello).await.unwrap();
    let (id_a, id_b) = (joined(&mut a).await, joined(&mut b).await);
    assert_ne!(id_a, id_b);

    // B only watches: it applies snapshots and acknowledges them.
    let watcher = tokio::spawn(async move {
        let mut views = ReceivedViews::new(30);
        let mut saw_a_move = false;
        let mut first_a: Option<[i32; 3]> = None;
        let mut chat = None;
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::time::Instant::now() < deadline && !(saw_a_move && chat.is_some()) {
            tokio::select! {
                d = b.datagrams.recv() => {
                    if let Ok(Message::Snapshot(s)) = d
                        && let Ok(view) = views.apply(&s)
                    {
                        if let Some(e) = view.get(&id_a) {
                            let start = *first_a.get_or_insert(e.position);
                            saw_a_move |= (e.position[2] - start[2]).abs() > 2 * 1024;
                        }
                        let _ = b.tx.send_datagram(&Message::SnapshotAck(pwn_proto::SnapshotAck { tick: s.tick }));
                    }
                }
                m = b.rx.recv() => {
                    if let Ok(Some(Message::Event(GameEvent::Chat { from, text, .. }))) = m
                        && from == id_a
                    {
                        chat = Some(text);
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
        (saw_a_move, chat)
    });

    // A runs forward for two seconds, one input per snapshot received, each datagram
    // repeating the last three inputs.
    let mut views = ReceivedViews::new(30);
    let mut seq = 0u32;
    let mut start_z = None;
    let mut end_z = 0;
    a.tx.send(&Message::Chat(ChatSend { channel: ChatChannel::Zone, text: "hello from a".into() })).await.unwrap();
    while seq < 60 {
        let d = tokio::time::timeout(WAIT, a.datagrams.recv()).await.expect("no snapshot").unwrap();
        let Message::Snapshot(s) = d else { continue };
        let Ok(view) = views.apply(&s) else { continue };
        if let Some(me) = view.get(&id_a) {
            start_z.get_or_insert(me.position[2]);
            end_z = me.position[2];
        }
        seq += 1;
        let inputs = (seq.saturating_sub(2)..=seq)
            .rev()
            .filter(|s| *s > 0)
            .map(|s| WireInput { seq: s, move_z: 127, buttons: pwn_sim::Buttons::RUN, ..WireInput::default() })
            .collect();
        a.tx.send_datagram(&Message::Inputs(InputBatch { ack_tick: s.tick, inputs })).unwrap();
    }
    let moved_m = f64::from(end_z - start_z.unwrap()) / 1024.0;
    assert!(moved_m > 5.0, "A moved only {moved_m} m in 60 ticks");
    let (saw_a_move, chat) = watcher.await.unwrap();
    assert!(saw_a_move, "B never saw A move");
    assert_eq!(chat.as_deref(), Some("hello from a"));
}

/// A plain HTTP GET on loopback (the metrics endpoint speaks HTTP/1.1).
fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, WAIT).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn a_zone_serves_prometheus_metrics() {
    let dir = tempfile::tempdir().unwrap();
    // A free port for the metrics listener.
    let metrics_addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pwn"))
        .args(["zone", "--listen", "127.0.0.1:0", "--data", dir.path().to_str().unwrap()])
        .args(["--metrics", &metrics_addr.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let zone = Zone(child);
    let log = std::io::BufReader::new(stderr);
    for line in log.lines().map_while(Result::ok) {
        if line.contains("checkpoint written") {
            break;
        }
    }
    let body = http_get(metrics_addr, "/metrics");
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    for name in ["pwn_zone_tick_ms_bucket", "pwn_zone_players", "pwn_zone_checkpoints_total", "pwn_zone_entities"] {
        assert!(body.contains(name), "{name} missing from:\n{body}");
    }
    drop(zone);
}

/// Only players play on a zone that places players itself: a tool or a zone (this zone is not
/// in a mesh) with the right simulation digest is refused, not given a character; and a peer
/// of any role with another digest is refused for it (issue 11, item 12).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_zone_plays_clients_only_and_checks_every_roles_digest() {
    let dir = tempfile::tempdir().unwrap();
    let (_zone, addr, _log) = start_zone(dir.path());
    let ca = pwn_net::tls::dev_ca_cert(dir.path()).unwrap();
    let client = NetClient::new("127.0.0.1:0".parse().unwrap(), &ca, &TransportConfig::default()).unwrap();
    let digest = pwn_sim::build_digest(&pwn_sim::SimConfig::default());
    for role in [PeerRole::Tool, PeerRole::Zone, PeerRole::World] {
        let outcome = match client.connect(addr, "localhost", &ClientHello::new(role, digest, "not-a-player")).await {
            Err(e) => format!("{e:?}"),
            Ok(mut c) => format!("{:?}", tokio::time::timeout(WAIT, c.rx.recv()).await.expect("no answer")),
        };
        assert!(outcome.contains("not served here") || outcome.contains("ClosedWithCode(3)"), "{role:?}: {outcome}");
    }
    for role in [PeerRole::Client, PeerRole::Tool, PeerRole::Gateway] {
        let refused = client.connect(addr, "localhost", &ClientHello::new(role, digest ^ 1, "other-sim")).await;
        assert!(
            matches!(&refused, Err(ConnError::Refused { code: RefuseCode::SimMismatch, .. })),
            "{role:?}: {refused:?}"
        );
    }
    let mut player =
        client.connect(addr, "localhost", &ClientHello::new(PeerRole::Client, digest, "player")).await.unwrap();
    joined(&mut player).await;
}
