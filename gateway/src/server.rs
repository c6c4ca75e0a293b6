//! The gateway's authentication service over the game connection: `Register`, `Login`,
//! `Resume` and `Logout` on the control stream, answered with `AuthOk` or `AuthFailed`.
//! Password hashing runs on the bounded pool; attempts are rate limited per source address and
//! globally; a login that replaces an older session ends that session's connection.
//!
//! Rules:
//! - `[gw-1]` `Register`, `Login` and `Resume` pass the rate limits first (refused with
//!   `RateLimited`, counted); a full hashing pool answers `RateLimited` too;
//! - `[gw-2]` failures never say which credential was wrong (`crate::accounts` `[sess-3]`);
//! - `[gw-3]` a connection carries at most one session; a login elsewhere for the same account
//!   closes it with a `Refused` explaining why;
//! - `[gw-4]` messages other than authentication before a session exists are counted and
//!   ignored; after it, game messages are proxied to the player's zone (`crate::proxy`):
//!   inputs, acks and pings as datagrams, chat reliably.

use crate::accounts::{AccountError, Accounts, Session};
use crate::limits::TokenBucket;
use crate::limits::{AuthLimits, Rate};
use crate::pool::{HashPool, PoolError};
use crate::proxy::{GAME_RATE, RATE_DROPPED_METRIC, Upstreams};
use crate::rules::random_16;
use pwn_net::{Conn, ConnTx, DatagramRx, NetServer};
use pwn_proto::{AuthError, AuthFailed, AuthOk, Credentials, GameEvent, Message, RefuseCode, SessionToken};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Metric names of the gateway.
pub mod metric {
    /// Authentication attempts by outcome (`outcome` label).
    pub const AUTH: &str = "pwn_gateway_auth_total";
    /// Messages ignored because the connection had no session.
    pub const UNAUTHENTICATED: &str = "pwn_gateway_unauthenticated_messages_total";
}

/// Gateway settings.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Authentication attempts per source address.
    pub per_address: Rate,
    /// Authentication attempts for everyone together.
    pub global: Rate,
    /// Password hashes computed at once (19 MiB each).
    pub hash_workers: usize,
    /// Password hashes allowed to wait.
    pub hash_queue_max: usize,
    /// Game messages per connection (`crate::proxy` `[proxy-4]`).
    pub game_rate: Rate,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            per_address: Rate { per_s: 2.0, burst: 10.0 },
            global: Rate { per_s: 100.0, burst: 200.0 },
            hash_workers: std::thread::available_parallelism().map_or(2, usize::from),
            hash_queue_max: 64,
            game_rate: GAME_RATE,
        }
    }
}

struct Shared {
    game_rate: Rate,
    accounts: Accounts,
    upstreams: Arc<Upstreams>,
    /// Where new players go (until the world server routes them).
    zone: SocketAddr,
    pool: HashPool,
    limits: Mutex<AuthLimits>,
    /// The connection holding each player's session, to end it when another login replaces it.
    live: Mutex<HashMap<u64, (u64, ConnTx)>>,
    started: Instant,
    next_conn: std::sync::atomic::AtomicU64,
}

impl Shared {
    fn now_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn allow(&self, remote: SocketAddr) -> bool {
        let now = self.now_s();
        self.limits.lock().map(|mut l| l.allow(remote.ip(), now)).unwrap_or(false)
    }
}

fn unix_now_s() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn failed(error: AuthError, message: &str) -> Message {
    metrics::counter!(metric::AUTH, "outcome" => format!("{error:?}")).increment(1);
    Message::AuthFailed(AuthFailed { error, message: message.to_owned() })
}

fn answer_error(e: &AccountError) -> Message {
    match e {
        AccountError::Rule(r) => failed(AuthError::InvalidInput, &r.to_string()),
        AccountError::NameTaken => failed(AuthError::NameTaken, "that username is taken"),
        AccountError::InvalidCredentials | AccountError::NoSuchAccount(_) => {
            failed(AuthError::InvalidCredentials, "unknown user or wrong password")
        }
        AccountError::Disabled => failed(AuthError::InvalidCredentials, "this account is disabled"),
        AccountError::SessionInvalid => failed(AuthError::SessionInvalid, "the session is unknown, expired or revoked"),
        other => {
            tracing::warn!(error = %other, "authentication failed on the server side");
            failed(AuthError::RateLimited, "the server cannot log you in right now; try again shortly")
        }
    }
}

enum Auth {
    Register(Credentials),
    Login(Credentials),
    Resume(SessionToken),
}

/// Runs one authentication request; returns the answer and the session it opened.
async fn authenticate(
    shared: &Arc<Shared>,
    remote: SocketAddr,
    request: Auth,
) -> (Message, Option<(Session, [u8; 16])>) {
    if !shared.allow(remote) {
        return (failed(AuthError::RateLimited, "too many attempts; wait a little"), None);
    }
    let Ok(token) = random_16() else {
        return (failed(AuthError::RateLimited, "the server cannot log you in right now"), None);
    };
    let accounts = shared.accounts.clone();
    let now = unix_now_s();
    let result: Result<Result<Session, AccountError>, PoolError> = match request {
        Auth::Register(c) => {
            shared
                .pool
                .run(move || {
                    let salt = random_16().map_err(|e| AccountError::Hash(e.to_string()))?;
                    accounts.register(&c.username, &c.password, salt, now)?;
                    accounts.start_session(&c.username, token, now)
                })
                .await
        }
        Auth::Login(c) => shared.pool.run(move || accounts.login(&c.username, &c.password, token, now)).await,
        // No hashing: a plain blocking store read.
        Auth::Resume(t) => match tokio::task::spawn_blocking(move || accounts.resume(&t.0, now)).await {
            Ok(r) => Ok(r.map(|s| Session { replaced: None, ..s })),
            Err(_) => Err(PoolError::Failed),
        },
    };
    match result {
        Err(PoolError::Busy) => (failed(AuthError::RateLimited, "the server is busy; try again shortly"), None),
        Err(PoolError::Failed) => (failed(AuthError::RateLimited, "the server cannot log you in right now"), None),
        Ok(Err(e)) => (answer_error(&e), None),
        Ok(Ok(session)) => {
            metrics::counter!(metric::AUTH, "outcome" => "ok").increment(1);
            let ok = Message::AuthOk(AuthOk { player_id: session.player_id, token: SessionToken(token) });
            (ok, Some((session, token)))
        }
    }
}

/// Forwards a client's datagrams to its player's zone, rate limited (`crate::proxy`).
fn proxy_datagrams(shared: Arc<Shared>, player: u64, mut datagrams: DatagramRx) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut bucket = TokenBucket::new(shared.game_rate, shared.now_s());
        while let Ok(message) = datagrams.recv().await {
            if !bucket.allow(shared.now_s()) {
                metrics::counter!(RATE_DROPPED_METRIC).increment(1);
                continue;
            }
            if matches!(message, Message::Inputs(_) | Message::SnapshotAck(_) | Message::Ping(_)) {
                let _ = shared.upstreams.forward_datagram(player, &message).await;
            }
        }
    })
}

async fn serve_connection(shared: Arc<Shared>, conn: Conn) {
    let id = shared.next_conn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let Conn { tx, mut rx, datagrams, peer, .. } = conn;
    let mut datagrams = Some(datagrams);
    let mut proxying: Option<tokio::task::JoinHandle<()>> = None;
    let mut session: Option<(u64, [u8; 16])> = None;
    loop {
        let message = match rx.recv().await {
            Ok(Some(m)) => m,
            Ok(None) | Err(_) => break,
        };
        let request = match message {
            Message::Register(c) => Auth::Register(c),
            Message::Login(c) => Auth::Login(c),
            Message::Resume(t) => Auth::Resume(t),
            Message::Logout => {
                if let Some((player, token)) = session.take() {
                    shared.upstreams.detach(player, id).await;
                    let accounts = shared.accounts.clone();
                    let _ = tokio::task::spawn_blocking(move || accounts.logout(&token)).await;
                    if let Ok(mut live) = shared.live.lock() {
                        live.retain(|p, (c, _)| !(*p == player && *c == id));
                    }
                }
                let _ = tx.send(&Message::Event(GameEvent::Notice { text: "logged out".into() })).await;
                continue;
            }
            Message::Chat(_) | Message::GiveItem(_) if session.is_some() => {
                if let Some((player, _)) = session {
                    let _ = shared.upstreams.forward_reliable(player, &message).await;
                }
                continue;
            }
            _ => {
                // `[gw-4]`.
                metrics::counter!(metric::UNAUTHENTICATED).increment(1);
                continue;
            }
        };
        if session.is_some() {
            // `[gw-3]`: one session per connection.
            let _ = tx.send(&failed(AuthError::InvalidInput, "already logged in on this connection")).await;
            continue;
        }
        let (answer, opened) = authenticate(&shared, peer.remote, request).await;
        let joined = opened.as_ref().map(|(s, _)| s.player_id);
        if let Some((s, token)) = opened {
            // `[gw-3]`: one session per connection and per account.
            let previous = shared.live.lock().ok().and_then(|mut live| live.insert(s.player_id, (id, tx.clone())));
            if let Some((other, tx)) = previous
                && other != id
            {
                tracing::info!(player = s.player_id, "a new login replaces the previous session");
                tokio::spawn(async move {
                    tx.refuse(RefuseCode::Unavailable, "you logged in from somewhere else".into()).await;
                });
            }
            session = Some((s.player_id, token));
        }
        if tx.send(&answer).await.is_err() {
            break;
        }
        // Into the world: the zone's `Joined` follows the `AuthOk` on this connection.
        if let Some(player) = joined {
            if let Err(e) = shared.upstreams.attach(player, tx.clone(), id, shared.zone).await {
                tracing::warn!(player, error = %e, "cannot reach the zone");
                tx.refuse(RefuseCode::Unavailable, "the world is unavailable; try again shortly".into()).await;
                break;
            }
            if let Some(d) = datagrams.take() {
                proxying = Some(proxy_datagrams(shared.clone(), player, d));
            }
        }
    }
    if let Some(p) = proxying {
        p.abort();
    }
    if let Some((player, _)) = session {
        shared.upstreams.detach(player, id).await;
    }
    if let Some((player, _)) = session
        && let Ok(mut live) = shared.live.lock()
    {
        live.retain(|p, (c, _)| !(*p == player && *c == id));
    }
}

/// Runs the gateway on `net` until `shutdown` completes: authentication, then proxying each
/// player to `zone` through `upstreams` (which the caller keeps, to switch players' zones).
pub async fn run(
    mut net: NetServer,
    accounts: Accounts,
    cfg: GatewayConfig,
    upstreams: Arc<Upstreams>,
    zone: SocketAddr,
    shutdown: impl Future<Output = ()>,
) {
    let shared = Arc::new(Shared {
        game_rate: cfg.game_rate,
        accounts,
        upstreams,
        zone,
        pool: HashPool::new(cfg.hash_workers, cfg.hash_queue_max),
        limits: Mutex::new(AuthLimits::new(cfg.per_address, cfg.global, 0.0)),
        live: Mutex::new(HashMap::new()),
        started: Instant::now(),
        next_conn: std::sync::atomic::AtomicU64::new(1),
    });
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            incoming = net.accept() => {
                let Some(incoming) = incoming else { break };
                let shared = shared.clone();
                tokio::spawn(async move {
                    match incoming.handshake().await {
                        Ok(conn) => serve_connection(shared, conn).await,
                        Err(e) => tracing::debug!(error = %e, "handshake failed"),
                    }
                });
            }
        }
    }
}
