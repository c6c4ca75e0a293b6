//! The gateway over real QUIC on loopback, in front of real zone servers: each bad request
//! gets a clear, non-revealing answer; a token after logout is refused; a second login ends the
//! first session's connection; a flood from one address is rate limited; a logged-in player is
//! proxied to a zone, plays, and is switched to another zone without reconnecting.

mod common;
use common::*;

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
