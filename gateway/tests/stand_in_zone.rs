//! The gateway in front of a stand-in zone (a server speaking the gateway link, scripted by each
//! test): `[proxy-9]` (issue 11, item 4) one client that stops reading its stream stalls no
//! other player: the zone floods one player with large events and sends another a numbered
//! notice every hundred, and the gateway must keep delivering the notices and disconnect the
//! client that does not read; `[proxy-10]` (issue 11, item 3) a zone's refusal of a player
//! reaches the client.

use pwn_gateway::accounts::Accounts;
use pwn_gateway::proxy::Upstreams;
use pwn_gateway::server::{GatewayConfig, Placement, run_placed};
use pwn_net::{ClientHello, NetClient, NetServer, ServerTls, ServiceIdentity, TransportConfig};
use pwn_proto::{ChatChannel, Credentials, GameEvent, Message, PeerRole, Routed};
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const NOTICES: u32 = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_9_a_client_that_stops_reading_stalls_no_one_else() {
    let dir = tempfile::tempdir().unwrap();
    let identity = ServiceIdentity { sim_digest: pwn_sim::build_digest(&pwn_sim::SimConfig::default()), tick_hz: 30 };
    let key = pwn_net::tls::service_key(dir.path()).unwrap();
    let cert = pwn_net::tls::server_cert(&ServerTls::DevCa { dir: dir.path().to_path_buf() }).unwrap();
    // The stand-in zone: takes the gateway's link and its two attaches, then floods.
    let mut zone =
        NetServer::bind("127.0.0.1:0".parse().unwrap(), &cert, &TransportConfig::default(), identity.clone()).unwrap();
    let zone_addr = zone.local_addr().unwrap();
    tokio::spawn(async move {
        let incoming = zone.accept().await.unwrap();
        let mut link = incoming.handshake().await.unwrap();
        assert!(pwn_net::service_auth::expect(&link.tx, &mut link.rx, Some(key)).await);
        let mut players = Vec::new();
        while players.len() < 2 {
            if let Ok(Some(Message::Attach(a))) = link.rx.recv().await {
                players.push(a.player);
            }
        }
        let (slow, fast) = (players[0], players[1]);
        let chat = GameEvent::Chat { from: 1, channel: ChatChannel::Zone, text: "x".repeat(500) };
        let big = pwn_proto::encode_datagram(&Message::Event(chat)).unwrap();
        for i in 0..(NOTICES * 100) {
            let m = if i % 100 == 99 {
                let notice = GameEvent::Notice { text: format!("n{}", i / 100) };
                Routed { player: fast, payload: pwn_proto::encode_datagram(&Message::Event(notice)).unwrap() }
            } else {
                Routed { player: slow, payload: big.clone() }
            };
            if link.tx.send(&Message::Routed(m)).await.is_err() {
                return;
            }
        }
        // Keep the link up until the test ends.
        let _ = link.rx.recv().await;
    });
    // A gateway placing everyone in that zone.
    let store = pwn_store::Store::new(Arc::new(pwn_store::SqliteBackend::open(dir.path().join("pwn.sqlite")).unwrap()));
    let ca = pwn_net::tls::dev_ca_cert(dir.path()).unwrap();
    let upstream_net = NetClient::new("127.0.0.1:0".parse().unwrap(), &ca, &TransportConfig::default()).unwrap();
    let upstreams = Arc::new(Upstreams::new(upstream_net, identity.sim_digest, key));
    let net =
        NetServer::bind("127.0.0.1:0".parse().unwrap(), &cert, &TransportConfig::default(), identity.clone()).unwrap();
    let addr = net.local_addr().unwrap();
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let accounts = Accounts::new(store, 3_600);
    tokio::spawn(run_placed(net, accounts, GatewayConfig::default(), upstreams, Placement::Zone(zone_addr), async {
        let _ = stopped.await;
    }));
    let client = NetClient::new("127.0.0.1:0".parse().unwrap(), &ca, &TransportConfig::default()).unwrap();
    let hello = ClientHello::new(PeerRole::Client, identity.sim_digest, "slow-test");
    let login = |name: &str| {
        Message::Register(Credentials { username: name.into(), password: "a long enough password".into() })
    };
    // The slow one logs in and never reads again.
    let slow = client.connect(addr, "localhost", &hello).await.unwrap();
    slow.tx.send(&login("slow")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut fast = client.connect(addr, "localhost", &hello).await.unwrap();
    fast.tx.send(&login("fast")).await.unwrap();
    let mut seen = 0;
    let deadline = tokio::time::Instant::now() + WAIT;
    while seen < NOTICES {
        let m = tokio::time::timeout_at(deadline, fast.rx.recv())
            .await
            .unwrap_or_else(|_| panic!("only {seen} of {NOTICES} notices arrived while another client did not read"));
        match m {
            Ok(Some(Message::Event(GameEvent::Notice { text }))) if text.starts_with('n') => {
                assert_eq!(text, format!("n{seen}"), "in order");
                seen += 1;
            }
            Ok(Some(_)) => {}
            other => panic!("the reading client's connection ended: {other:?}"),
        }
    }
    drop(slow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_10_a_zones_refusal_reaches_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let identity = ServiceIdentity { sim_digest: pwn_sim::build_digest(&pwn_sim::SimConfig::default()), tick_hz: 30 };
    let key = pwn_net::tls::service_key(dir.path()).unwrap();
    let cert = pwn_net::tls::server_cert(&ServerTls::DevCa { dir: dir.path().to_path_buf() }).unwrap();
    // The stand-in zone cannot place anyone.
    let mut zone =
        NetServer::bind("127.0.0.1:0".parse().unwrap(), &cert, &TransportConfig::default(), identity.clone()).unwrap();
    let zone_addr = zone.local_addr().unwrap();
    tokio::spawn(async move {
        let incoming = zone.accept().await.unwrap();
        let mut link = incoming.handshake().await.unwrap();
        assert!(pwn_net::service_auth::expect(&link.tx, &mut link.rx, Some(key)).await);
        while let Ok(Some(m)) = link.rx.recv().await {
            if let Message::Attach(a) = m {
                let refused = pwn_proto::Refused {
                    code: pwn_proto::RefuseCode::Unavailable,
                    message: "cannot place you in the world".into(),
                };
                let payload = pwn_proto::encode_datagram(&Message::Refused(refused)).unwrap();
                let _ = link.tx.send(&Message::Routed(Routed { player: a.player, payload })).await;
            }
        }
    });
    let store = pwn_store::Store::new(Arc::new(pwn_store::SqliteBackend::open(dir.path().join("pwn.sqlite")).unwrap()));
    let ca = pwn_net::tls::dev_ca_cert(dir.path()).unwrap();
    let upstream_net = NetClient::new("127.0.0.1:0".parse().unwrap(), &ca, &TransportConfig::default()).unwrap();
    let upstreams = Arc::new(Upstreams::new(upstream_net, identity.sim_digest, key));
    let net =
        NetServer::bind("127.0.0.1:0".parse().unwrap(), &cert, &TransportConfig::default(), identity.clone()).unwrap();
    let addr = net.local_addr().unwrap();
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(run_placed(
        net,
        Accounts::new(store, 3_600),
        GatewayConfig::default(),
        upstreams,
        Placement::Zone(zone_addr),
        async {
            let _ = stopped.await;
        },
    ));
    let client = NetClient::new("127.0.0.1:0".parse().unwrap(), &ca, &TransportConfig::default()).unwrap();
    let hello = ClientHello::new(PeerRole::Client, identity.sim_digest, "refused-test");
    let mut conn = client.connect(addr, "localhost", &hello).await.unwrap();
    let creds = Credentials { username: "nowhere".into(), password: "a long enough password".into() };
    conn.tx.send(&Message::Register(creds)).await.unwrap();
    let mut refused = None;
    loop {
        match tokio::time::timeout(WAIT, conn.rx.recv()).await.expect("the client was left hanging") {
            Ok(Some(Message::Refused(r))) => refused = Some(r),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    let r = refused.expect("the zone's refusal reached the client");
    assert_eq!(r.code, pwn_proto::RefuseCode::Unavailable);
    assert!(r.message.contains("cannot place you"), "{r:?}");
}
