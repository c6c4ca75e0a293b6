//! World objects through a real `pwn up` (gateway, world server, zone nodes, SQLite) with the
//! workshop world: a player places a wall and a door and opens the door; another player sees
//! both as they were committed; the zone holding them is killed with SIGKILL; the zone that
//! takes its cells loads them, and a player joining afterwards finds both, the door still open.

mod common;

use glam::Vec3;
use pwn_client::{Client, Intent, JoinOptions, Login};
use pwn_net::{ClientHello, NetClient, TransportConfig};
use pwn_proto::{EditOp, EditOutcome, GameEvent, PeerRole};
use pwn_sim::quantize::quantize_position;
use pwn_sim::{EntityId, SimConfig, WorldDesc};
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const WALL: u16 = 0;
const DOOR: u16 = 1;

fn workshop_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("worlds/workshop.toml")
}

async fn join(net: &NetClient, addr: &str, name: &str) -> Client {
    let world = WorldDesc::load(&workshop_path()).unwrap();
    let cfg = SimConfig::default();
    let hello = ClientHello::new(PeerRole::Client, pwn_sim::build_digest(&cfg), "objects-process-test");
    let conn = net.connect(addr.parse().unwrap(), "localhost", &hello).await.unwrap();
    let login =
        Login::LoginOrRegister(pwn_proto::Credentials { username: name.into(), password: "builder-pw-1".into() });
    let options = JoinOptions { timeout: WAIT, login: Some(login), ..JoinOptions::default() };
    let mut c = Client::join(conn, world, cfg, &options).await.expect("joined");
    c.set_headless(false);
    c
}

/// Runs the client's game loop until `done` says so (or panics after `WAIT`); returns what it
/// returned.
async fn until<T>(c: &mut Client, mut done: impl FnMut(&pwn_client::Frame) -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    let dt = 1.0 / 30.0;
    loop {
        assert!(tokio::time::Instant::now() < deadline, "timed out; client ended: {:?}", c.ended());
        let frame = c.update(dt, &Intent::default());
        if let Some(t) = done(&frame) {
            return t;
        }
        tokio::time::sleep(Duration::from_secs_f32(dt)).await;
    }
}

async fn edit(c: &mut Client, op: EditOp) -> u64 {
    let request = c.edit(op).await.unwrap();
    until(c, |f| {
        f.events.iter().find_map(|e| match e {
            GameEvent::EditDone { request: r, object, outcome } if *r == request => {
                assert_eq!(*outcome, EditOutcome::Committed, "{op:?}");
                Some(*object)
            }
            _ => None,
        })
    })
    .await
}

/// Waits until `c` sees every object of `ids` with its state (`health` carries it).
async fn sees(c: &mut Client, ids: &[(u64, u16)]) {
    until(c, |f| ids.iter().all(|(id, state)| f.others.iter().any(|o| o.id == *id && o.health == *state)).then_some(()))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_edits_survive_a_zone_killed_with_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("pwn.toml");
    std::fs::write(&cfg_path, format!("world = {:?}\n", workshop_path().to_str().unwrap())).unwrap();
    let up = common::start_up_with(dir.path(), true, &["--config", cfg_path.to_str().unwrap()]);
    let ca = pwn_net::tls::dev_ca_cert(dir.path()).unwrap();
    let net = Arc::new(NetClient::new("127.0.0.1:0".parse().unwrap(), &ca, &TransportConfig::default()).unwrap());

    let mut builder = join(&net, &up.addr, "builder").await;
    let me = until(&mut builder, |f| f.me.as_ref().map(|d| d.position_m)).await;
    // South of the player: its own cell (the spawn points are south of the world's centre).
    let wall_at = me + Vec3::new(-3.0, 1.5 - me.y, -4.0);
    let door_at = me + Vec3::new(3.0, 1.5 - me.y, -4.0);
    let place = |kind, at: Vec3| EditOp::Place { kind, position: quantize_position(at), yaw: 0, state: 0 };
    let wall = edit(&mut builder, place(WALL, wall_at)).await;
    let door = edit(&mut builder, place(DOOR, door_at)).await;
    assert_eq!(EntityId(wall).object_kind(), Some(WALL));
    edit(&mut builder, EditOp::SetState { object: door, state: 1 }).await;

    let mut watcher = join(&net, &up.addr, "watcher").await;
    sees(&mut watcher, &[(wall, 0), (door, 1)]).await;

    // Every zone dies at once: whichever held the cell, the objects must come back from the
    // store, not from a neighbour's memory.
    for pid in up.zone_pids() {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    }
    drop(builder);
    drop(watcher);
    let mut late = join(&net, &up.addr, "latecomer").await;
    sees(&mut late, &[(wall, 0), (door, 1)]).await;
    let c = late.counters();
    assert_eq!(c.edits_sent, 0);
}
