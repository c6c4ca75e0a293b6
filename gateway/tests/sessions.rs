//! The gateway's hardening against hostile clients and stale sessions (issue 11), over real
//! QUIC in front of real zone servers: `[proxy-3]`, `[proxy-8]`, `[link-1]`, `[sess-6]`,
//! `[gw-5]` to `[gw-8]`.

mod common;
use common::*;

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
    // Snapshots of the ended session still queued on this connection are not what is tested.
    while let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(200), old.datagrams.recv()).await {}
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

/// `[gw-8]` (issue 11, item 12): a tool's connection, even with the right simulation digest, is
/// refused at the players' port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gw_8_the_players_port_serves_clients_only() {
    let f = start(GatewayConfig::default()).await;
    let hello = ClientHello::new(PeerRole::Tool, identity().sim_digest, "a tool");
    let answer = match f.client.connect(f.addr, "localhost", &hello).await {
        Err(e) => format!("{e:?}"),
        Ok(mut c) => {
            c.tx.send(&Message::Register(creds("toolish", PW))).await.unwrap_or(());
            format!("{:?}", tokio::time::timeout(WAIT, c.rx.recv()).await.expect("no answer"))
        }
    };
    assert!(answer.contains("players only") || answer.contains("ClosedWithCode(3)"), "{answer}");
}
