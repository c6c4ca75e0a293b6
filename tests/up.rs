//! `pwn up` starts the local world as separate processes (a world server, zone nodes and a
//! gateway), players log in at the gateway and are placed in the zone serving their cell, and
//! SIGTERM stops everything cleanly (each zone node writes its last checkpoint and exits).

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use pwn_net::{ClientHello, NetClient, TransportConfig};
use pwn_proto::{GameEvent, Message, PeerRole};
use std::time::Duration;

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_players_and_stops_every_process_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let started = common::start_up(dir.path(), true);
    let pids: Vec<(String, i32)> = started.roles.clone();
    assert_eq!(started.zone_pids().len(), 4, "{pids:?}");
    assert!(pids.iter().any(|(n, _)| n == "world server"), "{pids:?}");
    let common::Up { child: mut up, addr, guard: _guard, .. } = started;
    let addr: std::net::SocketAddr = addr.parse().unwrap();

    let ca = pwn_net::tls::dev_ca_cert(dir.path()).unwrap();
    let client = NetClient::new("127.0.0.1:0".parse().unwrap(), &ca, &TransportConfig::default()).unwrap();
    let hello = ClientHello::new(PeerRole::Client, pwn_sim::build_digest(&pwn_sim::SimConfig::default()), "up-test");
    let mut conn = client.connect(addr, "localhost", &hello).await.unwrap();
    // Players log in at the gateway, which places them in the zone.
    let creds = pwn_proto::Credentials { username: "tester".into(), password: "a long enough password".into() };
    conn.tx.send(&Message::Register(creds)).await.unwrap();
    let auth = tokio::time::timeout(Duration::from_secs(10), conn.rx.recv()).await.unwrap().unwrap();
    let Some(Message::AuthOk(ok)) = auth else { panic!("{auth:?}") };
    let joined = tokio::time::timeout(Duration::from_secs(10), conn.rx.recv()).await.unwrap().unwrap();
    assert!(
        matches!(joined, Some(Message::Event(GameEvent::Joined { entity, .. })) if entity == ok.player_id),
        "{joined:?}"
    );

    // Each zone checkpoints the crates in its cell once it has read what the store held for
    // it: soon every crate of the arena is in the store, once.
    let store = pwn_store::Store::new(std::sync::Arc::new(
        pwn_store::SqliteBackend::open(dir.path().join("pwn.sqlite")).unwrap(),
    ));
    let (b, e) = pwn_store::keys::subspace("entities").range();
    let crates = pwn_sim::WorldDesc::arena().crates.len() as u64;
    for _ in 0..200 {
        if store.for_each_page(&b, &e, 1000, |_| {}).unwrap() == crates {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    kill(Pid::from_raw(up.id() as i32), Signal::SIGTERM).unwrap();
    let waiter = tokio::task::spawn_blocking(move || up.wait());
    let status =
        tokio::time::timeout(Duration::from_secs(15), waiter).await.expect("pwn up did not stop").unwrap().unwrap();
    assert!(status.success(), "{status}");
    // Every role is gone too (signal 0 only checks that the process exists).
    for (name, pid) in &pids {
        assert!(kill(Pid::from_raw(*pid), None).is_err(), "the {name} outlived pwn up");
    }
    // Every crate is in the store, once, and the store is consistent.
    assert_eq!(store.for_each_page(&b, &e, 1000, |_| {}).unwrap(), crates);
    let audit = store.transact(|t| pwn_store::audit::audit(t)).unwrap();
    assert!(audit.clean(), "{audit:?}");
    // `[persist-6]`: the player and every crate, each owned by one cell.
    assert_eq!(audit.owned_entities, 1 + crates, "the player and the crates: {audit:?}");
    for i in 0..crates as u32 {
        let id = pwn_sim::EntityId::world_entity(i).0;
        assert!(store.transact(|t| pwn_store::ownership::owner(t, id)).unwrap().is_some(), "crate {i} has no owner");
    }
}

/// Whoever watched `pwn up`'s output went away (a closed pipe): it still stops cleanly.
#[test]
fn up_stops_cleanly_when_its_output_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let common::Up { child: mut up, guard: _guard, .. } = common::start_up(dir.path(), false);
    kill(Pid::from_raw(up.id() as i32), Signal::SIGTERM).unwrap();
    let status = up.wait().unwrap();
    assert!(status.success(), "{status}");
}
