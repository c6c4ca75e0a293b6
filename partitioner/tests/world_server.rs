//! The world server over real QUIC on loopback with the embedded store: zone nodes register
//! and beat, cells are granted once the expected nodes are there, gateways are told where a
//! player belongs, a restart of the world server changes no lease, and a peer without the
//! service key or of the wrong role is refused; hostile services (a gateway beating for a dead
//! node, a gateway registering as a zone) get nothing (`[world-6]`).

use pwn_net::{ClientHello, NetClient, NetServer, ServerTls, ServiceIdentity, TransportConfig};
use pwn_partitioner::client::{WorldCallError, WorldClient};
use pwn_partitioner::persist::load_or_init;
use pwn_partitioner::server::{WorldServerConfig, run};
use pwn_partitioner::wire::Heartbeat;
use pwn_partitioner::{Quadtree, WorldConfig};
use pwn_proto::PeerRole;
use pwn_store::{SqliteBackend, Store};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

fn store(dir: &Path) -> Store {
    Store::new(Arc::new(SqliteBackend::open(dir.join("pwn.sqlite")).unwrap()))
}

/// Starts a world server on `dir`'s store (at `addr`, or a free port); returns its address and
/// a handle that stops it.
async fn start(dir: &Path, addr: SocketAddr) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let store = store(dir);
    let initial = Quadtree::uniform([-512.0, -512.0], [1024.0, 1024.0], 1).unwrap();
    let stored = load_or_init(&store, &initial, 1_000).unwrap();
    let cert = pwn_net::tls::server_cert(&ServerTls::DevCa { dir: dir.to_path_buf() }).unwrap();
    let auth = pwn_net::ClientAuth::Services { ca_pem: pwn_net::tls::dev_ca_cert(dir).unwrap() };
    let identity = ServiceIdentity { sim_digest: 1, tick_hz: 30 };
    let net = NetServer::bind_with(addr, &cert, &auth, &TransportConfig::default(), identity).unwrap();
    let bound = net.local_addr().unwrap();
    let cfg = WorldServerConfig {
        world: WorldConfig { nodes_expected: 2, lease_ms: 2_000, reassign_margin_ms: 500, settle_ms: 60_000 },
        spawn_xz: [10.0, -10.0],
        service_key: Some(pwn_net::tls::service_key(dir).unwrap()),
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(run(net, store, stored, cfg, async move {
        let _ = stop_rx.await;
    }));
    (bound, stop_tx)
}

fn client(dir: &Path, addr: SocketAddr, role: PeerRole, key: [u8; 32]) -> WorldClient {
    let net = NetClient::with_identity(
        "127.0.0.1:0".parse().unwrap(),
        &pwn_net::tls::dev_ca_cert(dir).unwrap(),
        Some(&pwn_net::tls::service_cert(dir).unwrap()),
        &TransportConfig::default(),
    )
    .unwrap();
    WorldClient::new(net, addr, ClientHello::new(role, 1, "world-test"), key)
}

/// Beats until the node holds `n` leases (the server grants every 100 ms).
async fn beat_until(
    c: &WorldClient,
    r: &pwn_partitioner::wire::Registered,
    n: usize,
) -> pwn_partitioner::wire::HeartbeatAnswer {
    let node = r.node;
    for _ in 0..100 {
        let a = c.heartbeat(Heartbeat { node, token: r.token, ..Heartbeat::default() }).await.unwrap();
        if a.leases.len() == n {
            return a;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("node {node} never held {n} leases");
}

#[tokio::test]
async fn nodes_register_get_cells_and_keep_them_across_a_world_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let key = pwn_net::tls::service_key(dir.path()).unwrap();
    let (addr, stop) = start(dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let a = client(dir.path(), addr, PeerRole::Zone, key);
    let b = client(dir.path(), addr, PeerRole::Zone, key);
    let ra = a.register("127.0.0.1:7101", 1).await.unwrap();
    assert_eq!((ra.leaves.len(), ra.world_start_unix_ms), (4, 1_000));
    // One node of the two expected: nothing is granted yet.
    assert!(
        a.heartbeat(Heartbeat { node: ra.node, token: ra.token, ..Heartbeat::default() })
            .await
            .unwrap()
            .leases
            .is_empty()
    );
    let rb = b.register("127.0.0.1:7102", 1).await.unwrap();
    assert_ne!(ra.node, rb.node);
    let la = beat_until(&a, &ra, 2).await;
    let lb = beat_until(&b, &rb, 2).await;
    let gateway = client(dir.path(), addr, PeerRole::Gateway, key);
    let owners = gateway.owners().await.unwrap();
    assert_eq!(owners.len(), 4);
    // A new player enters at the spawn point (10, -10): the owner of that quadrant.
    let routed = gateway.route(77).await.unwrap().unwrap();
    assert!(owners.contains(&routed));
    assert_eq!(routed.cell, Quadtree::uniform([-512.0, -512.0], [1024.0, 1024.0], 1).unwrap().leaf_at(10.0, -10.0));

    // The world server stops and starts again on the same store (on another port: the old
    // endpoint drains its connections first); the nodes' next heartbeats find the same
    // leases, same epochs.
    let _ = stop.send(());
    let (again, _stop) = start(dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let (a, b) = (client(dir.path(), again, PeerRole::Zone, key), client(dir.path(), again, PeerRole::Zone, key));
    let mut after = None;
    for _ in 0..50 {
        if let Ok(x) = a.heartbeat(Heartbeat { node: ra.node, token: ra.token, ..Heartbeat::default() }).await {
            after = Some(x);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        after.unwrap().leases.iter().map(|l| (l.cell, l.epoch)).collect::<Vec<_>>(),
        la.leases.iter().map(|l| (l.cell, l.epoch)).collect::<Vec<_>>()
    );
    let lb2 = b.heartbeat(Heartbeat { node: rb.node, token: rb.token, ..Heartbeat::default() }).await.unwrap();
    assert_eq!(
        lb2.leases.iter().map(|l| l.epoch).collect::<Vec<_>>(),
        lb.leases.iter().map(|l| l.epoch).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn unknown_nodes_wrong_keys_and_players_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = pwn_net::tls::service_key(dir.path()).unwrap();
    let (addr, _stop) = start(dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let a = client(dir.path(), addr, PeerRole::Zone, key);
    let unknown = a.heartbeat(Heartbeat { node: 999, ..Heartbeat::default() }).await;
    let forbidden = pwn_partitioner::wire::ERR_FORBIDDEN;
    assert!(matches!(unknown, Err(WorldCallError::Refused { code, .. }) if code == forbidden), "{unknown:?}");
    // `[world-6]`: a registered node's heartbeat without its token is refused too.
    let r = a.register("127.0.0.1:7101", 1).await.unwrap();
    let forged = a.heartbeat(Heartbeat { node: r.node, token: [0; 16], ..Heartbeat::default() }).await;
    assert!(matches!(forged, Err(WorldCallError::Refused { code, .. }) if code == forbidden), "{forged:?}");
    assert!(a.heartbeat(Heartbeat { node: r.node, token: r.token, ..Heartbeat::default() }).await.is_ok());
    let forger = client(dir.path(), addr, PeerRole::Zone, [7; 32]);
    assert!(matches!(forger.owners().await, Err(WorldCallError::Unreachable(_))));
    let player = client(dir.path(), addr, PeerRole::Client, key);
    assert!(matches!(player.owners().await, Err(WorldCallError::Unreachable(_))));
}

/// `[world-2]`, `[world-5]`: a node's leases are renewed by that node's heartbeats only. A
/// gateway (or any other service holding the key) beating with a silent node's id must not keep
/// that node's cells from being granted to a live node: otherwise a dead zone's cells stay
/// served by nobody, for as long as someone beats for it.
#[tokio::test]
async fn attack_a_gateway_beating_for_a_dead_node_keeps_its_cells() {
    let dir = tempfile::tempdir().unwrap();
    let key = pwn_net::tls::service_key(dir.path()).unwrap();
    let (addr, _stop) = start(dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let a = client(dir.path(), addr, PeerRole::Zone, key);
    let b = client(dir.path(), addr, PeerRole::Zone, key);
    let ra = a.register("127.0.0.1:7101", 1).await.unwrap();
    let rb = b.register("127.0.0.1:7102", 1).await.unwrap();
    beat_until(&a, &ra, 2).await;
    beat_until(&b, &rb, 2).await;
    // Node A dies. A gateway keeps sending heartbeats in A's name; B beats for itself.
    drop(a);
    let gateway = client(dir.path(), addr, PeerRole::Gateway, key);
    let mut b_leases = 0;
    for _ in 0..16 {
        // lease 2 s + margin 0.5 s: after 4 s A's cells must be B's.
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let _ = gateway.heartbeat(Heartbeat { node: ra.node, ..Heartbeat::default() }).await;
        b_leases = b
            .heartbeat(Heartbeat { node: rb.node, token: rb.token, ..Heartbeat::default() })
            .await
            .unwrap()
            .leases
            .len();
    }
    assert_eq!(b_leases, 4, "the dead node A still holds its cells: a gateway's heartbeats in its name renewed them");
}

/// A gateway is not a zone node: it must not be able to register as one and be granted cells
/// (it would then hold cells no zone serves).
#[tokio::test]
async fn attack_a_gateway_cannot_register_as_a_zone_node() {
    let dir = tempfile::tempdir().unwrap();
    let key = pwn_net::tls::service_key(dir.path()).unwrap();
    let (addr, _stop) = start(dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let gateway = client(dir.path(), addr, PeerRole::Gateway, key);
    let registered = gateway.register("not an address", 1).await;
    assert!(registered.is_err(), "a gateway registered as zone node {:?}", registered.map(|r| r.node));
}
