//! The attacks that log in: `login_storm` (wrong passwords from many addresses) and
//! `foreign_datagrams` (a logged-in attacker's datagrams that name or imitate others, then
//! inputs after logout, and inputs from a connection that never logged in).

use super::raw::{Answer, client_hello};
use super::{Ctx, Rng, refusal};
use pwn_proto::{
    AuthError, Credentials, InputBatch, Message, RefuseCode, Routed, SnapshotAck, WireInput, encode_datagram,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// One connection of `login_storm`: wrong passwords, paced to its share of the rate.
pub(super) async fn login_storm(ctx: Arc<Ctx>, index: usize, of: usize) {
    let mut rng = Rng(ctx.cfg.seed ^ (index as u64 + 100) << 8);
    let pause = Duration::from_secs_f64(of as f64 / ctx.cfg.login_rate_per_s.max(0.1));
    let mut next = Instant::now();
    while ctx.live() {
        let Ok((_conn, mut s, Answer::Message(Message::Welcome(_)))) =
            ctx.endpoint(index).hello(client_hello(ctx.cfg.sim_digest, "storm")).await
        else {
            ctx.record("login_storm", false, "handshake failed");
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        // One connection keeps guessing until the gateway ends it (its login deadline).
        while ctx.live() {
            tokio::time::sleep_until(next).await;
            next += pause;
            let r = rng.next();
            let username = match (r.is_multiple_of(2), ctx.cfg.victim_accounts.len()) {
                (true, n) if n > 0 => ctx.cfg.victim_accounts[(r / 2) as usize % n].clone(),
                _ => format!("nobody-{}", r % 100_000),
            };
            let creds = Credentials { username, password: format!("guess-{:016x}", rng.next()) };
            if s.send_message(&Message::Login(creds)).await.is_err() {
                break;
            }
            match s.recv_reply().await {
                Answer::Message(Message::AuthFailed(f)) => {
                    let label = match f.error {
                        AuthError::InvalidCredentials => "invalid credentials (hashed)".to_owned(),
                        AuthError::RateLimited if f.message.contains("failed logins") => "throttled per account".into(),
                        AuthError::RateLimited => "rate limited".into(),
                        other => format!("{other:?}"),
                    };
                    ctx.record("login_storm", true, &label);
                }
                Answer::Message(Message::AuthOk(_)) => ctx.record("login_storm", false, "LOGGED IN"),
                // `[gw-5]`: the gateway ends a connection that has not logged in within its
                // deadline, answering the guess in flight first; under a storm the next guess
                // is already on its way when the refusal arrives.
                Answer::Message(Message::Refused(r)) if r.code == RefuseCode::Unavailable => {
                    ctx.record("login_storm", true, "ended by the login deadline");
                    break;
                }
                Answer::Closed(code) => {
                    ctx.record("login_storm", true, &format!("closed code {code}"));
                    break;
                }
                other => {
                    ctx.record("login_storm", false, &refusal(&other, RefuseCode::RateLimited).1);
                    break;
                }
            }
        }
    }
}

/// `foreign_datagrams`: a logged-in attacker's datagrams that name or imitate others, then
/// inputs after logout; and inputs from a connection that never logged in.
pub(super) async fn foreign_datagrams(ctx: Arc<Ctx>) {
    let mut rng = Rng(ctx.cfg.seed ^ 0xda7a);
    let creds =
        Credentials { username: format!("attacker-{}", ctx.cfg.seed % 10_000), password: "attacker-password-1".into() };
    let mut round = 0u64;
    while ctx.live() {
        round += 1;
        let Ok((conn, mut s, Answer::Message(Message::Welcome(_)))) =
            ctx.endpoint(5).hello(client_hello(ctx.cfg.sim_digest, "attacker")).await
        else {
            ctx.record("foreign_datagrams", false, "handshake failed");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let first = if round == 1 { Message::Register(creds.clone()) } else { Message::Login(creds.clone()) };
        let _ = s.send_message(&first).await;
        let mut reply = s.recv_reply().await;
        if matches!(&reply, Answer::Message(Message::AuthFailed(f)) if f.error == AuthError::NameTaken) {
            let _ = s.send_message(&Message::Login(creds.clone())).await;
            reply = s.recv_reply().await;
        }
        let me = match reply {
            Answer::Message(Message::AuthOk(ok)) => ok.player_id,
            other => {
                let why = format!("no session: {}", refusal(&other, RefuseCode::RateLimited).1);
                ctx.record("foreign_datagrams", true, &why);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let send = |m: &Message| -> bool {
            let Ok(bytes) = encode_datagram(m) else { return false };
            conn.datagram_mut(|d: &mut s2n_quic::provider::datagram::default::Sender| {
                d.send_datagram_forced(bytes::Bytes::from(bytes)).is_ok()
            })
            .unwrap_or(false)
        };
        let input = |seq: u32| WireInput {
            seq,
            move_x: 127,
            move_z: -127,
            yaw: 0,
            pitch: i16::MAX,
            buttons: 0xff,
            view_tick: 1,
        };
        // Three seconds of hostile datagrams at the tick rate.
        for tick in 0..90u32 {
            let other = me ^ (1 + rng.next() % 64);
            let batch = Message::Inputs(InputBatch { ack_tick: u64::MAX, inputs: vec![input(u32::MAX - tick)] });
            let Ok(payload) = encode_datagram(&batch) else { break };
            let sent = send(&Message::Routed(Routed { player: other, payload }))
                && send(&batch)
                && send(&Message::SnapshotAck(SnapshotAck { tick: u64::MAX - u64::from(tick) }));
            ctx.record("foreign_datagrams", sent, if sent { "sent while logged in" } else { "could not send" });
            tokio::time::sleep(Duration::from_millis(33)).await;
        }
        // Logged out, the connection keeps sending inputs: they must move nobody.
        let _ = s.send_message(&Message::Logout).await;
        for tick in 0..30u32 {
            let batch = Message::Inputs(InputBatch { ack_tick: 0, inputs: vec![input(tick)] });
            ctx.record(
                "foreign_datagrams",
                true,
                if send(&batch) { "sent after logout" } else { "refused after logout" },
            );
            tokio::time::sleep(Duration::from_millis(33)).await;
        }
        drop((conn, s));
        // And a connection that never logs in.
        if let Ok((conn, _s, Answer::Message(Message::Welcome(_)))) =
            ctx.endpoint(6).hello(client_hello(ctx.cfg.sim_digest, "anonymous")).await
        {
            for tick in 0..30u32 {
                let Ok(bytes) =
                    encode_datagram(&Message::Inputs(InputBatch { ack_tick: 0, inputs: vec![input(tick)] }))
                else {
                    break;
                };
                let _ = conn.datagram_mut(|d: &mut s2n_quic::provider::datagram::default::Sender| {
                    d.send_datagram_forced(bytes::Bytes::from(bytes))
                });
                tokio::time::sleep(Duration::from_millis(33)).await;
            }
            ctx.record("foreign_datagrams", true, "sent without a login");
        }
    }
}
