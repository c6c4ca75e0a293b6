//! The gateway over real QUIC on loopback, in front of real zone servers: each bad request
//! gets a clear, non-revealing answer; a token after logout is refused; a second login ends the
//! first session's connection; a flood from one address is rate limited; a logged-in player is
//! proxied to a zone, plays, and is switched to another zone without reconnecting.

use pwn_gateway::accounts::Accounts;
use pwn_gateway::limits::Rate;
use pwn_gateway::proxy::Upstreams;
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
    zones: Vec<SocketAddr>,
    client: NetClient,
    upstreams: Arc<Upstreams>,
    _stops: Vec<tokio::sync::oneshot::Sender<()>>,
}

fn identity() -> ServiceIdentity {
    ServiceIdentity { sim_digest: pwn_sim::build_digest(&pwn_sim::SimConfig::default()), tick_hz: 30 }
}

fn world(x: f32) -> pwn_sim::WorldDesc {
    let mut w = pwn_sim::WorldDesc::flat(400.0);
    w.spawn_points = vec![[x, 1.0, 0.0]];
    w
}

/// Two zone servers (spawning at x = -50 and x = 50) and a gateway in front of the first,
/// which persists its players in the gateway's store.
async fn start(cfg: GatewayConfig) -> Fixture {
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
    async fn play(&self, login: pwn_client::Login) -> pwn_client::Client {
        let options = pwn_client::JoinOptions { login: Some(login), ..pwn_client::JoinOptions::default() };
        let (world, cfg) = (world(-50.0), pwn_sim::SimConfig::default());
        pwn_client::Client::connect(&self.client, self.addr, "localhost", world, cfg, "t", &options).await.unwrap()
    }

    async fn connect(&self) -> Conn {
        let hello =
            ClientHello::new(PeerRole::Client, pwn_sim::build_digest(&pwn_sim::SimConfig::default()), "gw-test");
        self.client.connect(self.addr, "localhost", &hello).await.unwrap()
    }
}

/// Sends `m` and returns the answer (skipping the zone's events that follow a login).
async fn ask(conn: &mut Conn, m: Message) -> Message {
    conn.tx.send(&m).await.unwrap();
    loop {
        let answer =
            tokio::time::timeout(WAIT, conn.rx.recv()).await.expect("no answer").unwrap().expect("connection ended");
        if !matches!(answer, Message::Event(pwn_proto::GameEvent::Joined { .. })) {
            return answer;
        }
    }
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
    // One session per connection: a second request on it is refused; the rest use another.
    assert_eq!(error_of(&ask(&mut c, Message::Login(creds("alice", PW))).await).0, AuthError::InvalidInput);
    let mut c = f.connect().await;
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
    let kicked = loop {
        match tokio::time::timeout(WAIT, other.rx.recv()).await.expect("the old connection was not told") {
            Ok(Some(Message::Event(_))) => continue,
            end => break end,
        }
    };
    assert!(matches!(kicked, Ok(Some(Message::Refused(_))) | Ok(None) | Err(_)), "{kicked:?}");
    let mut third = f.connect().await;
    assert_eq!(error_of(&ask(&mut third, Message::Resume(a.token)).await).0, AuthError::SessionInvalid);
    // Logout, then the token is refused.
    // The zone's events for the session (inventory, spawns) may still be on their way: the
    // answer to the logout is the notice saying so.
    let mut bye = ask(&mut second, Message::Logout).await;
    while !matches!(&bye, Message::Event(pwn_proto::GameEvent::Notice { text }) if text == "logged out") {
        assert!(matches!(bye, Message::Event(_)), "{bye:?}");
        bye = tokio::time::timeout(WAIT, second.rx.recv()).await.expect("no answer").unwrap().expect("ended");
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_plays_through_the_gateway_and_switches_zone_without_reconnecting() {
    use pwn_client::{Client, Intent, JoinOptions, Login};
    let f = start(GatewayConfig::default()).await;
    let options = JoinOptions { login: Some(Login::LoginOrRegister(creds("walker", PW))), ..JoinOptions::default() };
    let world = world(-50.0);
    let mut client =
        Client::connect(&f.client, f.addr, "localhost", world, pwn_sim::SimConfig::default(), "t", &options)
            .await
            .unwrap();
    let player = client.session().unwrap().player_id;
    assert_eq!(client.me().0, player, "the zone placed the player the gateway authenticated");
    let run = Intent { move_z: 1.0, buttons: pwn_sim::Buttons(pwn_sim::Buttons::RUN), ..Intent::default() };
    let dt = 1.0 / 30.0;
    let mut first_x = None;
    let mut z_start = None;
    let mut moved = false;
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_secs_f32(dt)).await;
        let frame = client.update(dt, &run);
        if let Some(me) = frame.me {
            first_x.get_or_insert(me.position_m.x);
            let z0 = *z_start.get_or_insert(me.position_m.z);
            moved |= me.position_m.z - z0 > 3.0;
        }
    }
    assert!(moved, "inputs went through the gateway and moved the player");
    assert!((first_x.unwrap() + 50.0).abs() < 5.0, "placed by the first zone");
    let before = client.counters().snapshots;

    f.upstreams.switch(player, f.zones[1]).await.unwrap();
    let mut in_second = false;
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_secs_f32(dt)).await;
        let frame = client.update(dt, &run);
        in_second |= frame.me.is_some_and(|me| (me.position_m.x - 50.0).abs() < 5.0);
    }
    assert!(client.ended().is_none(), "the client kept its connection: {:?}", client.ended());
    assert_eq!(client.counters().zone_switches, 1);
    assert!(client.counters().snapshots > before + 30, "snapshots kept coming after the switch");
    assert!(in_second, "the second zone placed the player");
    assert_eq!(f.upstreams.zone_of(player), Some(f.zones[1]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_out_log_in_same_place_and_health() {
    use pwn_client::{Intent, Login};
    let f = start(GatewayConfig::default()).await;
    let play = |login| f.play(login);
    let mut client = play(Login::Register(creds("keeper", PW))).await;
    let run = Intent { move_z: 1.0, buttons: pwn_sim::Buttons(pwn_sim::Buttons::RUN), ..Intent::default() };
    let dt = 1.0 / 30.0;
    let mut last = None;
    for _ in 0..90 {
        tokio::time::sleep(Duration::from_secs_f32(dt)).await;
        last = client.update(dt, &run).me.or(last);
    }
    // Stand still a moment so the server's position settles where the client last saw it.
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_secs_f32(dt)).await;
        last = client.update(dt, &Intent::default()).me.or(last);
    }
    let before = last.unwrap();
    assert!(before.position_m.z > 5.0, "ran forward: {:?}", before.position_m);
    client.logout().await;
    drop(client);

    let mut again = play(Login::Login(creds("keeper", PW))).await;
    let mut after = None;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_secs_f32(dt)).await;
        after = again.update(dt, &Intent::default()).me.or(after);
    }
    let after = after.unwrap();
    assert!(
        after.position_m.distance(before.position_m) < 0.5,
        "came back at {:?}, left at {:?}",
        after.position_m,
        before.position_m
    );
    assert_eq!(after.health, before.health);
}

/// Steps `clients` in real time until `done` holds for them (or fails after `WAIT`), returning
/// every event they saw, per client.
async fn play_until(
    clients: &mut [&mut pwn_client::Client],
    mut done: impl FnMut(&[&mut pwn_client::Client], &[Vec<pwn_proto::GameEvent>]) -> bool,
) -> Vec<Vec<pwn_proto::GameEvent>> {
    let dt = 1.0 / 30.0;
    let mut seen = vec![Vec::new(); clients.len()];
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done(clients, &seen) {
        assert!(tokio::time::Instant::now() < deadline, "timed out; events seen: {seen:?}");
        tokio::time::sleep(Duration::from_secs_f32(dt)).await;
        for (c, seen) in clients.iter_mut().zip(&mut seen) {
            seen.extend(c.update(dt, &pwn_client::Intent::default()).events);
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_change_hands_in_the_store_and_survive_logging_out() {
    use pwn_client::Login;
    use pwn_proto::GameEvent;
    let f = start(GatewayConfig::default()).await;
    let play = |login| f.play(login);
    let mut giver = play(Login::Register(creds("giver", PW))).await;
    let mut taker = play(Login::Register(creds("taker", PW))).await;
    let kit = pwn_gateway::accounts::STARTER_KIT.len();
    play_until(&mut [&mut giver, &mut taker], |c, _| c.iter().all(|c| c.core().inventory().len() == kit)).await;
    let (gift, gift_kind) = giver.core().inventory().iter().map(|(i, k)| (*i, *k)).next().unwrap();
    let taker_id = taker.me().0;

    giver.give(gift, taker_id).await.unwrap();
    let seen = play_until(&mut [&mut giver, &mut taker], |c, _| {
        c[0].core().inventory().len() == kit - 1 && c[1].core().inventory().len() == kit + 1
    })
    .await;
    let moved = GameEvent::ItemMoved { item: gift, kind: gift_kind, from: giver.me().0, to: taker_id };
    assert!(seen.iter().all(|s| s.contains(&moved)), "both sides told: {seen:?}");
    assert_eq!(taker.core().inventory().get(&gift), Some(&gift_kind));
    assert_eq!((taker.counters().items_received, giver.counters().items_received), (1, 0));

    // The same item again (no longer the giver's), and to nobody: refused, with a reason, and
    // nothing moves.
    giver.give(gift, taker_id).await.unwrap();
    giver.give(giver.core().inventory().keys().next().copied().unwrap(), 999_999).await.unwrap();
    let notices = |events: &[GameEvent]| {
        events
            .iter()
            .filter_map(|e| if let GameEvent::Notice { text } = e { Some(text.clone()) } else { None })
            .collect::<Vec<_>>()
    };
    let seen = play_until(&mut [&mut giver, &mut taker], |_, seen| notices(&seen[0]).len() >= 2).await;
    let said = notices(&seen[0]);
    assert!(said.iter().any(|t| t.contains("not yours")), "{said:?}");
    assert!(said.iter().any(|t| t.contains("nobody by that id")), "{said:?}");
    assert!(!seen.iter().flatten().any(|e| matches!(e, GameEvent::ItemMoved { .. })), "nothing moved: {seen:?}");
    assert_eq!(giver.core().inventory().len(), kit - 1);
    assert_eq!(taker.core().inventory().len(), kit + 1);

    // Logged out and in again, the taker still has it: the store, not the zone, holds it.
    taker.logout().await;
    drop(taker);
    let mut back = play(Login::Login(creds("taker", PW))).await;
    play_until(&mut [&mut back], |c, _| c[0].core().inventory().len() == kit + 1).await;
    assert_eq!(back.core().inventory().get(&gift), Some(&gift_kind));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_logins_does_not_stop_a_player() {
    use pwn_client::{Client, Intent, JoinOptions, Login};
    // As if the flood came from many addresses: only the global limit and the hashing pool
    // stand in its way.
    let cfg = GatewayConfig {
        per_address: Rate { per_s: 1e6, burst: 1e6 },
        global: Rate { per_s: 200.0, burst: 200.0 },
        hash_workers: 1,
        hash_queue_max: 4,
        ..GatewayConfig::default()
    };
    let f = start(cfg).await;
    let options = JoinOptions { login: Some(Login::Register(creds("player", PW))), ..JoinOptions::default() };
    let mut client =
        Client::connect(&f.client, f.addr, "localhost", world(-50.0), pwn_sim::SimConfig::default(), "t", &options)
            .await
            .unwrap();
    let flooding = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut flooders = Vec::new();
    for i in 0..8 {
        let mut c = f.connect().await;
        let flooding = flooding.clone();
        flooders.push(tokio::spawn(async move {
            let (mut limited, mut refused) = (0u32, 0u32);
            while flooding.load(std::sync::atomic::Ordering::Relaxed) {
                match error_of(&ask(&mut c, Message::Login(creds(&format!("victim{i}"), "guessing a password"))).await)
                    .0
                {
                    AuthError::RateLimited => limited += 1,
                    _ => refused += 1,
                }
            }
            (limited, refused)
        }));
    }
    let run = Intent { move_z: 1.0, buttons: pwn_sim::Buttons(pwn_sim::Buttons::RUN), ..Intent::default() };
    let dt = 1.0 / 30.0;
    let started = std::time::Instant::now();
    let before = client.counters().snapshots;
    for _ in 0..90 {
        tokio::time::sleep(Duration::from_secs_f32(dt)).await;
        client.update(dt, &run);
    }
    let played_s = started.elapsed().as_secs_f64();
    flooding.store(false, std::sync::atomic::Ordering::Relaxed);
    let (mut limited, mut refused) = (0u32, 0u32);
    for fl in flooders {
        let (l, r) = fl.await.unwrap();
        limited += l;
        refused += r;
    }
    // A flood, by count (how fast it went depends on the machine, and is not asserted).
    let attempts_per_s = f64::from(limited + refused) / played_s;
    assert!(limited + refused >= 100, "not a flood: {} attempts", limited + refused);
    assert!(limited > refused, "most of the flood was turned away before hashing: {limited} limited, {refused} hashed");
    let c = client.counters();
    assert!(client.ended().is_none());
    // The player kept getting its 30 snapshots a second, and its inputs kept being applied.
    assert!(c.snapshots - before > 60, "{} snapshots in {played_s:.1} s", c.snapshots - before);
    assert!(c.input_ack_ticks.count() > 30, "{:?}", c.input_ack_ticks);
    eprintln!(
        "flood: {attempts_per_s:.0} attempts/s ({limited} rate limited, {refused} hashed); player: input ack p99 {:.2} ticks",
        c.input_ack_ticks.quantile(0.99)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_refuses_gateway_links_without_the_service_key() {
    let f = start(GatewayConfig::default()).await;
    let hello = ClientHello::new(PeerRole::Gateway, identity().sim_digest, "impostor");
    for first in [
        Message::ServiceAuth(pwn_proto::ServiceAuth { key: [0; 32] }),
        Message::Attach(pwn_proto::Attach { player: 1, handoff: false }),
    ] {
        let mut link = f.client.connect(f.zones[0], "localhost", &hello).await.unwrap();
        link.tx.send(&first).await.unwrap();
        let _ = link.tx.send(&Message::Attach(pwn_proto::Attach { player: 1, handoff: false })).await;
        let answer = tokio::time::timeout(WAIT, link.rx.recv()).await.expect("no answer");
        assert!(matches!(answer, Ok(Some(Message::Refused(_))) | Ok(None) | Err(_)), "{answer:?}");
        assert!(!matches!(answer, Ok(Some(Message::Routed(_)))), "an impostor was given a player");
    }
}

/// `[proxy-8]`: a link to a zone that never answers (its handshake runs until the timeout) does
/// not hold up a player playing on another zone: its inputs keep being forwarded and
/// acknowledged while the handshake is still pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_8_a_zone_that_never_answers_stalls_nobody_else() {
    use pwn_client::{Client, Intent, JoinOptions, Login};
    let f = start(GatewayConfig::default()).await;
    let options = JoinOptions { login: Some(Login::LoginOrRegister(creds("player", PW))), ..JoinOptions::default() };
    let mut client =
        Client::connect(&f.client, f.addr, "localhost", world(-50.0), pwn_sim::SimConfig::default(), "t", &options)
            .await
            .unwrap();
    let dt = 1.0 / 30.0;
    let walk = Intent { move_z: 1.0, ..Intent::default() };
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_secs_f32(dt)).await;
        client.update(dt, &walk);
    }
    // A "zone" that takes UDP and never answers: linking to it waits for the handshake timeout.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let other = f.connect().await;
    let upstreams = f.upstreams.clone();
    let linking = tokio::spawn(async move { upstreams.attach(999_999, other.tx.clone(), 7, silent_addr).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let acked_before = client.counters().input_ack_ticks.count();
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_secs_f32(dt)).await;
        client.update(dt, &walk);
    }
    assert!(!linking.is_finished(), "the silent zone's handshake is still pending");
    let acked = client.counters().input_ack_ticks.count() - acked_before;
    assert!(acked >= 10, "only {acked} inputs acknowledged while another zone's link was being made");
    assert!(linking.await.unwrap().is_err(), "the silent zone was never linked");
}

/// `[link-1]`: a gateway link (with the service key) that never attached a player cannot drive
/// it with datagrams: the zone takes a player's datagrams only on the link that attached it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_1_a_link_that_did_not_attach_a_player_cannot_move_it() {
    use pwn_client::{Client, Intent, JoinOptions, Login};
    let f = start(GatewayConfig::default()).await;
    let options = JoinOptions { login: Some(Login::LoginOrRegister(creds("victim", PW))), ..JoinOptions::default() };
    let mut client =
        Client::connect(&f.client, f.addr, "localhost", world(-50.0), pwn_sim::SimConfig::default(), "t", &options)
            .await
            .unwrap();
    let player = client.me().0;
    let dt = 1.0 / 30.0;
    let mut start = None;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_secs_f32(dt)).await;
        start = client.update(dt, &Intent::default()).me.map(|m| m.position_m).or(start);
    }
    let start = start.expect("placed");
    // A second link to the same zone, with the service key, that attaches nobody.
    let hello = ClientHello::new(PeerRole::Gateway, identity().sim_digest, "other-gateway");
    let link = f.client.connect(f.zones[0], "localhost", &hello).await.unwrap();
    let key = pwn_net::tls::service_key(f._dir.path()).unwrap();
    pwn_net::service_auth::prove(&link.tx, key).await.unwrap();
    let mut at = start;
    for i in 0..45u32 {
        tokio::time::sleep(Duration::from_secs_f32(dt)).await;
        // Inputs just ahead of the player's own, running sideways.
        let seq = client.counters().inputs_sent as u32 + 3 + i;
        let input = pwn_sim::PlayerInput {
            seq: pwn_sim::InputSeq(seq),
            move_x: 1.0,
            buttons: pwn_sim::Buttons(pwn_sim::Buttons::RUN),
            ..Default::default()
        };
        let batch = pwn_proto::InputBatch { ack_tick: 0, inputs: vec![pwn_proto::WireInput::from_input(&input)] };
        let payload = pwn_proto::encode_datagram(&Message::Inputs(batch)).unwrap();
        let _ = link.tx.send_datagram(&Message::Routed(pwn_proto::Routed { player, payload }));
        at = client.update(dt, &Intent::default()).me.map(|m| m.position_m).unwrap_or(at);
    }
    assert!(at.distance(start) < 0.5, "another link moved the player from {start} to {at}");
    assert_eq!(client.counters().corrections, 0, "the server never disagreed with the standing client");
}

/// Sends running inputs from `conn` as datagrams for `ticks` ticks (sequence numbers from
/// `first`) and returns the highest input acknowledgement its snapshots carried.
async fn run_raw(conn: &mut Conn, first: u32, ticks: u32) -> u32 {
    let mut acked = 0;
    for i in 0..ticks {
        let input = pwn_sim::PlayerInput {
            seq: pwn_sim::InputSeq(first + i),
            move_z: 1.0,
            buttons: pwn_sim::Buttons(pwn_sim::Buttons::RUN),
            ..Default::default()
        };
        let batch = pwn_proto::InputBatch { ack_tick: 0, inputs: vec![pwn_proto::WireInput::from_input(&input)] };
        let _ = conn.tx.send_datagram(&Message::Inputs(batch));
        let until = tokio::time::Instant::now() + Duration::from_millis(33);
        while let Ok(Ok(m)) = tokio::time::timeout_at(until, conn.datagrams.recv()).await {
            if let Message::Snapshot(s) = m {
                acked = acked.max(s.input_ack);
            }
        }
    }
    acked
}

/// `[proxy-3]` (issue 11, item 1): after `Logout`, a connection's datagrams reach nobody, even once
/// its account plays again from another connection; a later login on the same connection
/// plays again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_3_a_logged_out_connection_drives_nobody_and_can_log_in_again() {
    use pwn_client::{Client, Intent, JoinOptions, Login};
    let f = start(GatewayConfig::default()).await;
    let mut old = f.connect().await;
    assert!(matches!(ask(&mut old, Message::Register(creds("mallory", PW))).await, Message::AuthOk(_)));
    assert!(run_raw(&mut old, 1, 20).await > 0, "logged in, its inputs are applied");
    let mut bye = ask(&mut old, Message::Logout).await;
    while !matches!(&bye, Message::Event(pwn_proto::GameEvent::Notice { text }) if text == "logged out") {
        bye = tokio::time::timeout(WAIT, old.rx.recv()).await.expect("no answer").unwrap().expect("ended");
    }
    // The account plays again from another connection, standing still.
    let options = JoinOptions { login: Some(Login::Login(creds("mallory", PW))), ..JoinOptions::default() };
    let mut client =
        Client::connect(&f.client, f.addr, "localhost", world(-50.0), pwn_sim::SimConfig::default(), "t", &options)
            .await
            .unwrap();
    let dt = 1.0 / 30.0;
    let mut start = None;
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_secs_f32(dt)).await;
        start = client.update(dt, &Intent::default()).me.map(|m| m.position_m).or(start);
    }
    let start = start.expect("placed");
    // The logged-out connection keeps sending inputs just ahead of the new session's.
    let ahead = client.counters().inputs_sent as u32 + 3;
    let sender = tokio::spawn(async move {
        let acked = run_raw(&mut old, ahead, 45).await;
        (old, acked)
    });
    let mut at = start;
    for _ in 0..45 {
        tokio::time::sleep(Duration::from_secs_f32(dt)).await;
        at = client.update(dt, &Intent::default()).me.map(|m| m.position_m).unwrap_or(at);
    }
    let (mut old, acked) = sender.await.unwrap();
    assert_eq!(acked, 0, "the logged-out connection got no snapshots");
    assert!(at.distance(start) < 0.5, "the logged-out connection moved the new session's player to {at}");
    assert_eq!(client.counters().corrections, 0);
    // That session ends; the old connection logs in again and plays.
    client.logout().await;
    client.close().await;
    assert!(matches!(ask(&mut old, Message::Login(creds("mallory", PW))).await, Message::AuthOk(_)));
    assert!(run_raw(&mut old, 10_000, 30).await > 0, "a later login on the same connection plays again");
}

/// Plays `client` standing still until its connection ends (or fails after `WAIT`).
async fn until_ended(client: &mut pwn_client::Client) -> String {
    let dt = 1.0 / 30.0;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(why) = client.ended() {
            return why.to_owned();
        }
        assert!(tokio::time::Instant::now() < deadline, "the connection outlived its session");
        tokio::time::sleep(Duration::from_secs_f32(dt)).await;
        client.update(dt, &pwn_client::Intent::default());
    }
}

/// `[sess-6]` (issue 11, item 2): a session revoked in the store by anyone (an admin disabling
/// the account, a login at another gateway) ends the live connection holding it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sess_6_a_session_revoked_elsewhere_ends_the_live_connection() {
    use pwn_client::{Client, JoinOptions, Login};
    let f = start(GatewayConfig::default()).await;
    // Another process on the same store: an admin's `pwn user`, or another gateway.
    let other = pwn_gateway::accounts::Accounts::new(
        pwn_store::Store::new(Arc::new(pwn_store::SqliteBackend::open(f._dir.path().join("pwn.sqlite")).unwrap())),
        3_600,
    );
    let mut clients = Vec::new();
    for name in ["disabled", "moved-on", "stays"] {
        let options = JoinOptions { login: Some(Login::LoginOrRegister(creds(name, PW))), ..JoinOptions::default() };
        let c =
            Client::connect(&f.client, f.addr, "localhost", world(-50.0), pwn_sim::SimConfig::default(), "t", &options)
                .await
                .unwrap();
        clients.push(c);
    }
    let [mut disabled, mut moved_on, mut stays]: [Client; 3] = clients.try_into().unwrap();
    other.set_disabled("disabled", true).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    other.start_session("moved-on", [9; 16], now).unwrap();
    let why = until_ended(&mut disabled).await;
    assert!(why.contains("session ended"), "{why}");
    let why = until_ended(&mut moved_on).await;
    assert!(why.contains("session ended"), "{why}");
    // The third player's session was not touched: it plays on through another check.
    for _ in 0..90 {
        tokio::time::sleep(Duration::from_secs_f32(1.0 / 30.0)).await;
        stays.update(1.0 / 30.0, &pwn_client::Intent::default());
    }
    assert!(stays.ended().is_none(), "{:?}", stays.ended());
}

/// `[gw-5]`, `[gw-6]` (issue 11, item 10): a connection that never logs in is closed at the
/// deadline; one address holds only so many connections at once, and a slot is given back when
/// a connection ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gw_5_and_6_idle_connections_are_closed_and_one_address_holds_only_so_many() {
    let cfg = GatewayConfig {
        login_deadline: Duration::from_millis(500),
        connections_per_address: 3,
        ..GatewayConfig::default()
    };
    let f = start(cfg).await;
    let mut idle = f.connect().await;
    let ended = tokio::time::timeout(WAIT, async {
        loop {
            match idle.rx.recv().await {
                Ok(Some(Message::Refused(r))) => break Some(r),
                Ok(Some(_)) => continue,
                _ => break None,
            }
        }
    })
    .await
    .expect("an idle connection stayed open");
    assert!(ended.is_some_and(|r| r.message.contains("log in sooner")), "told why");
    drop(idle);
    // Three at once from 127.0.0.1; the fourth is refused.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = f.connect().await;
        assert!(matches!(ask(&mut c, Message::Login(creds("nobody", PW))).await, Message::AuthFailed(_)));
        held.push(c);
    }
    let hello = ClientHello::new(PeerRole::Client, identity().sim_digest, "gw-test");
    let refused = |r: &Result<Conn, pwn_net::ConnError>| matches!(r, Err(pwn_net::ConnError::ClosedWithCode(c)) if *c == pwn_proto::RefuseCode::RateLimited as u64);
    // Refused right after the handshake: as the handshake ends, or as the first message.
    let fourth = f.client.connect(f.addr, "localhost", &hello).await;
    if !refused(&fourth) {
        let mut c = fourth.expect("connected");
        let first = tokio::time::timeout(WAIT, c.rx.recv()).await.expect("no answer");
        let limited = match &first {
            Ok(Some(Message::Refused(r))) => r.code == pwn_proto::RefuseCode::RateLimited,
            Err(pwn_net::ConnError::ClosedWithCode(c)) => *c == pwn_proto::RefuseCode::RateLimited as u64,
            _ => false,
        };
        assert!(limited, "{first:?}");
    }
    // One ends: its slot is free again.
    drop(held.pop());
    let mut again = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let Ok(mut c) = f.client.connect(f.addr, "localhost", &hello).await else { continue };
        c.tx.send(&Message::Login(creds("nobody", PW))).await.unwrap_or(());
        if let Ok(Ok(Some(Message::AuthFailed(_)))) = tokio::time::timeout(WAIT, c.rx.recv()).await {
            again = Some(c);
            break;
        }
    }
    assert!(again.is_some(), "the slot of a closed connection was never given back");
}

/// `[gw-7]` (issue 11, item 13): failed logins slow one account down, without locking others
/// out or costing a hash per refused attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gw_7_failed_logins_slow_that_account_down_only() {
    let cfg = GatewayConfig { per_address: Rate { per_s: 100.0, burst: 100.0 }, ..GatewayConfig::default() };
    let f = start(cfg).await;
    let mut c = f.connect().await;
    assert!(matches!(ask(&mut c, Message::Register(creds("alice", PW))).await, Message::AuthOk(_)));
    let mut c = f.connect().await;
    assert!(matches!(ask(&mut c, Message::Register(creds("bob", PW))).await, Message::AuthOk(_)));
    let mut guess = f.connect().await;
    for i in 0..6 {
        let (e, _) = error_of(&ask(&mut guess, Message::Login(creds("alice", "not her password"))).await);
        assert_eq!(e, AuthError::InvalidCredentials, "attempt {i} was hashed and refused");
    }
    // The right password now waits its turn; so would any guess (nothing is hashed).
    let (e, why) = error_of(&ask(&mut guess, Message::Login(creds("ALICE", PW))).await);
    assert_eq!(e, AuthError::RateLimited);
    assert!(why.contains("too many failed logins"), "{why}");
    // Another account is not slowed.
    let mut other = f.connect().await;
    assert!(matches!(ask(&mut other, Message::Login(creds("bob", PW))).await, Message::AuthOk(_)));
}

/// `[gw-8]` (issue 11, item 12): a tool's connection (whose simulation digest the handshake
/// does not check) is refused at the players' port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gw_8_the_players_port_serves_clients_only() {
    let f = start(GatewayConfig::default()).await;
    let hello = ClientHello::new(PeerRole::Tool, 0xdead, "a tool");
    let answer = match f.client.connect(f.addr, "localhost", &hello).await {
        Err(e) => format!("{e:?}"),
        Ok(mut c) => {
            c.tx.send(&Message::Register(creds("toolish", PW))).await.unwrap_or(());
            format!("{:?}", tokio::time::timeout(WAIT, c.rx.recv()).await.expect("no answer"))
        }
    };
    assert!(answer.contains("players only") || answer.contains("ClosedWithCode(3)"), "{answer}");
}
