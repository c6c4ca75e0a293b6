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
//!   inputs, acks and pings as datagrams, chat reliably;
//! - `[gw-5]` a connection that has not logged in within `GatewayConfig::login_deadline` (30 s;
//!   counted again from a logout) is refused and closed: a connection cannot sit in the gateway
//!   for free;
//! - `[gw-7]` failed logins against one account slow further attempts on it down
//!   (`crate::throttle`: five free, then 1 s doubling to 30 s, refused without hashing meanwhile;
//!   no lockout), and password hashing takes at most half the machine's cores, so a login storm
//!   leaves the rest to the game;
//! - `[gw-8]` only the `Client` role is served (the handshake refused a client whose
//!   simulation digest differs; tools and services skip that check, so they are refused here);
//! - `[gw-6]` one source address (an IPv6 /64) holds at most
//!   `GatewayConfig::connections_per_address` connections (64) at once; beyond, a connection is
//!   refused (`RateLimited`) right after its handshake.

use crate::accounts::Accounts;
use crate::auth::{Auth, AuthRequest, Authenticator, RateLimitLayer, RateLimited, failed};
use crate::limits::{AuthLimits, MessageLimiter, Rate};
use crate::pool::HashPool;
use crate::proxy::{GAME_RATE, RATE_DROPPED_METRIC, Upstreams};
use pwn_net::{Conn, ConnTx, DatagramRx, NetServer};
use pwn_proto::{AuthError, GameEvent, Message, RefuseCode};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

/// Metric names of the gateway.
pub mod metric {
    /// Authentication attempts by outcome (`outcome` label).
    pub const AUTH: &str = "pwn_gateway_auth_total";
    /// Messages ignored because the connection had no session.
    pub const UNAUTHENTICATED: &str = "pwn_gateway_unauthenticated_messages_total";
    /// Connections refused (`reason`: per_address, login_deadline), `[gw-5]`, `[gw-6]`.
    pub const CONNECTIONS_REFUSED: &str = "pwn_gateway_connections_refused_total";
    /// Live connections ended because their session was revoked elsewhere (`[sess-6]`).
    pub const SESSIONS_ENDED: &str = "pwn_gateway_sessions_revoked_total";
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
    /// Niceness of the hashing threads (`[gw-9]`, `crate::pool`).
    pub hash_nice: i32,
    /// Game messages per connection (`crate::proxy` `[proxy-4]`).
    pub game_rate: Rate,
    /// How long a connection may stay without logging in (`[gw-5]`).
    pub login_deadline: std::time::Duration,
    /// Connections one source address (an IPv6 /64) may hold at once (`[gw-6]`).
    pub connections_per_address: u32,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            per_address: Rate { per_s: 2.0, burst: 10.0 },
            global: Rate { per_s: 100.0, burst: 200.0 },
            // `[gw-7]`: half the cores at most, so a login storm leaves the rest to the game.
            hash_workers: std::thread::available_parallelism().map_or(1, |n| (usize::from(n) / 2).max(1)),
            hash_queue_max: 64,
            hash_nice: crate::pool::HASH_NICE,
            game_rate: GAME_RATE,
            login_deadline: std::time::Duration::from_secs(30),
            connections_per_address: 64,
        }
    }
}

/// Where the gateway sends players who log in.
#[derive(Clone, Debug)]
pub enum Placement {
    /// One zone holding the whole world.
    Zone(SocketAddr),
    /// Wherever the world server says each player belongs.
    World(Arc<pwn_partitioner::client::WorldClient>),
}

impl crate::proxy::Router for pwn_partitioner::client::WorldClient {
    async fn route(&self, player: u64) -> Option<SocketAddr> {
        match WorldClient::route(self, player).await {
            Ok(Some(owner)) => owner.addr.parse().ok(),
            Ok(None) => None,
            Err(e) => {
                tracing::debug!(player, error = %e, "the world server did not route the player");
                None
            }
        }
    }

    async fn serving(&self) -> Option<std::collections::HashSet<SocketAddr>> {
        let owners = self.owners().await.ok()?;
        Some(owners.iter().filter_map(|o| o.addr.parse().ok()).collect())
    }
}

use pwn_partitioner::client::WorldClient;

/// How long a login waits for the world server to name a zone for the player.
pub const PLACE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

impl Placement {
    /// The zone `player` enters now, waiting a little for a cell nobody serves yet.
    async fn zone_for(&self, player: u64) -> Option<SocketAddr> {
        match self {
            Self::Zone(z) => Some(*z),
            Self::World(w) => {
                let deadline = std::time::Instant::now() + PLACE_DEADLINE;
                loop {
                    if let Some(z) = crate::proxy::Router::route(w.as_ref(), player).await {
                        return Some(z);
                    }
                    if std::time::Instant::now() > deadline {
                        return None;
                    }
                    tokio::time::sleep(crate::proxy::REROUTE_PAUSE).await;
                }
            }
        }
    }
}

/// A live session: the client connection holding it (its id and sender) and its token.
type LiveSession = (u64, ConnTx, [u8; 16]);

struct Shared {
    game_rate: Rate,
    login_deadline: std::time::Duration,
    connections_per_address: u32,
    /// Connections held per source address (an IPv6 /64), `[gw-6]`.
    connections: Mutex<HashMap<std::net::IpAddr, u32>>,
    accounts: Accounts,
    upstreams: Arc<Upstreams>,
    /// Where new players go.
    placement: Placement,
    /// Authentication: the rate limits in front of the accounts (`[gw-1]`).
    auth: RateLimited<Authenticator>,
    /// The connection holding each player's session, to end it when another login replaces it.
    live: Mutex<HashMap<u64, LiveSession>>,
    next_conn: std::sync::atomic::AtomicU64,
}

/// The player a client connection is logged in as now, if any: its datagrams go to that
/// player only while it is (a logout ends proxying; a later login starts it again).
type Current = Arc<std::sync::Mutex<Option<u64>>>;

/// Forwards a client's datagrams to its current player's zone, rate limited (`crate::proxy`).
fn proxy_datagrams(
    shared: Arc<Shared>,
    conn: u64,
    current: Current,
    mut datagrams: DatagramRx,
    limiter: Arc<MessageLimiter>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok(message) = datagrams.recv().await {
            if !limiter.allow() {
                metrics::counter!(RATE_DROPPED_METRIC).increment(1);
                continue;
            }
            let Some(player) = current.lock().ok().and_then(|c| *c) else {
                metrics::counter!(metric::UNAUTHENTICATED).increment(1);
                continue;
            };
            if matches!(message, Message::Inputs(_) | Message::SnapshotAck(_) | Message::Ping(_)) {
                let _ = shared.upstreams.forward_datagram(player, conn, &message).await;
            }
        }
    })
}

/// A connection's place in its address's count, given back when it ends (`[gw-6]`).
struct AddressSlot {
    shared: Arc<Shared>,
    key: std::net::IpAddr,
}

impl AddressSlot {
    fn take(shared: &Arc<Shared>, ip: std::net::IpAddr) -> Option<Self> {
        // `[gw-6]`: IPv6 by its /64, an IPv4-mapped address as its IPv4 one.
        let key = crate::limits::network_of(ip);
        let mut m = shared.connections.lock().ok()?;
        let n = m.entry(key).or_default();
        if *n >= shared.connections_per_address {
            return None;
        }
        *n += 1;
        Some(Self { shared: shared.clone(), key })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.shared.connections.lock()
            && let Some(n) = m.get_mut(&self.key)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.key);
            }
        }
    }
}

async fn serve_connection(shared: Arc<Shared>, conn: Conn) {
    let id = shared.next_conn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let Conn { tx, mut rx, datagrams, peer, .. } = conn;
    // `[gw-8]`: this port serves players, whose simulation digest the handshake checked; a
    // tool or a service is refused here.
    if peer.role != pwn_proto::PeerRole::Client {
        tx.refuse(RefuseCode::ProtocolViolation, "this port serves players only".into()).await;
        return;
    }
    let Some(_slot) = AddressSlot::take(&shared, peer.remote.ip()) else {
        metrics::counter!(metric::CONNECTIONS_REFUSED, "reason" => "per_address").increment(1);
        tx.refuse(RefuseCode::RateLimited, "too many connections from your address".into()).await;
        return;
    };
    // `[gw-5]`: a connection has this long to log in.
    let mut login_by = tokio::time::Instant::now() + shared.login_deadline;
    let mut session: Option<(u64, [u8; 16])> = None;
    // `[proxy-4]`: one limit over the connection's game messages, datagrams and stream alike.
    let limiter = Arc::new(MessageLimiter::new(shared.game_rate));
    let current: Current = Arc::default();
    let proxying = proxy_datagrams(shared.clone(), id, current.clone(), datagrams, limiter.clone());
    loop {
        let received = match session {
            Some(_) => rx.recv().await,
            None => match tokio::time::timeout_at(login_by, rx.recv()).await {
                Ok(r) => r,
                Err(_) => {
                    metrics::counter!(metric::CONNECTIONS_REFUSED, "reason" => "login_deadline").increment(1);
                    tx.refuse(RefuseCode::Unavailable, "log in sooner: this connection waited too long".into()).await;
                    break;
                }
            },
        };
        let message = match received {
            Ok(Some(m)) => m,
            Ok(None) | Err(_) => break,
        };
        let request = match message {
            Message::Register(c) => Auth::Register(c),
            Message::Login(c) => Auth::Login(c),
            Message::Resume(t) => Auth::Resume(t),
            Message::Logout => {
                if let Ok(mut c) = current.lock() {
                    *c = None;
                }
                if let Some((player, token)) = session.take() {
                    // A new deadline only for a connection that had a session: a logout
                    // without one does not keep a connection alive (`[gw-5]`).
                    login_by = tokio::time::Instant::now() + shared.login_deadline;
                    shared.upstreams.detach(player, id).await;
                    let accounts = shared.accounts.clone();
                    let _ = tokio::task::spawn_blocking(move || accounts.logout(&token)).await;
                    if let Ok(mut live) = shared.live.lock() {
                        live.retain(|p, (c, _, _)| !(*p == player && *c == id));
                    }
                }
                let _ = tx.send(&Message::Event(GameEvent::Notice { text: "logged out".into() })).await;
                continue;
            }
            Message::Chat(_) | Message::GiveItem(_) | Message::EditObject(_) if session.is_some() => {
                if !limiter.allow() {
                    metrics::counter!(RATE_DROPPED_METRIC).increment(1);
                } else if let Some((player, _)) = session {
                    let _ = shared.upstreams.forward_reliable(player, id, &message).await;
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
        let request = AuthRequest { remote: peer.remote, auth: request };
        let Ok((answer, opened)) = shared.auth.clone().oneshot(request).await;
        let joined = opened.as_ref().map(|(s, _)| s.player_id);
        if let Some((s, token)) = opened {
            // `[gw-3]`: one session per connection and per account.
            let previous =
                shared.live.lock().ok().and_then(|mut live| live.insert(s.player_id, (id, tx.clone(), token)));
            if let Some((other, tx, _)) = previous
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
            let Some(zone) = shared.placement.zone_for(player).await else {
                tracing::warn!(player, "no zone serves the player's place");
                tx.refuse(RefuseCode::Unavailable, "the world is unavailable; try again shortly".into()).await;
                break;
            };
            if let Err(e) = shared.upstreams.attach(player, tx.clone(), id, zone).await {
                tracing::warn!(player, error = %e, "cannot reach the zone");
                tx.refuse(RefuseCode::Unavailable, "the world is unavailable; try again shortly".into()).await;
                break;
            }
            if let Ok(mut c) = current.lock() {
                *c = Some(player);
            }
        }
    }
    proxying.abort();
    if let Some((player, _)) = session {
        shared.upstreams.detach(player, id).await;
    }
    if let Some((player, _)) = session
        && let Ok(mut live) = shared.live.lock()
    {
        live.retain(|p, (c, _, _)| !(*p == player && *c == id));
    }
}

/// How often a gateway re-checks every live session against the store (`[sess-6]`): a session
/// revoked anywhere (logout, a login at another gateway, a disabled account, a password reset)
/// ends its connection within this plus the store read.
pub const SESSION_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// `[sess-6]`: ends the connections whose session the store no longer holds valid.
async fn watch_sessions(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(SESSION_CHECK_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let live: Vec<(u64, u64, ConnTx, [u8; 16])> = shared
            .live
            .lock()
            .map(|m| m.iter().map(|(p, (c, tx, token))| (*p, *c, tx.clone(), *token)).collect())
            .unwrap_or_default();
        if live.is_empty() {
            continue;
        }
        let tokens: Vec<[u8; 16]> = live.iter().map(|(_, _, _, t)| *t).collect();
        let accounts = shared.accounts.clone();
        let valid = match tokio::task::spawn_blocking(move || accounts.still_valid(&tokens)).await {
            Ok(Ok(v)) => v,
            other => {
                // A store that cannot be read ends nobody's session.
                tracing::warn!(?other, "cannot re-check the live sessions");
                continue;
            }
        };
        for ((player, conn, tx, token), ok) in live.into_iter().zip(valid) {
            if ok {
                continue;
            }
            let removed = shared
                .live
                .lock()
                .map(|mut m| match m.get(&player) {
                    // The same connection and the same session: one that logged in again
                    // meanwhile holds a new, valid one.
                    Some((c, _, t)) if *c == conn && *t == token => m.remove(&player).is_some(),
                    _ => false,
                })
                .unwrap_or(false);
            if removed {
                metrics::counter!(metric::SESSIONS_ENDED).increment(1);
                tracing::info!(player, "session revoked elsewhere: ending its connection");
                tokio::spawn(async move {
                    let why = "your session ended (logged out, logged in elsewhere, or the account changed)";
                    tx.refuse(RefuseCode::Unavailable, why.into()).await;
                });
            }
        }
    }
}

/// Runs the gateway on `net` until `shutdown` completes: authentication, then proxying each
/// player to `zone` through `upstreams` (which the caller keeps, to switch players' zones).
pub async fn run(
    net: NetServer,
    accounts: Accounts,
    cfg: GatewayConfig,
    upstreams: Arc<Upstreams>,
    zone: SocketAddr,
    shutdown: impl Future<Output = ()>,
) {
    run_placed(net, accounts, cfg, upstreams, Placement::Zone(zone), shutdown).await
}

/// Runs the gateway with players placed as `placement` says, following zones' re-routes
/// (`crate::proxy` `[proxy-5]`, `[proxy-6]`).
pub async fn run_placed(
    mut net: NetServer,
    accounts: Accounts,
    cfg: GatewayConfig,
    upstreams: Arc<Upstreams>,
    placement: Placement,
    shutdown: impl Future<Output = ()>,
) {
    let router = match &placement {
        Placement::World(w) => Some(w.clone()),
        Placement::Zone(_) => None,
    };
    let watcher = router.clone().map(|r| tokio::spawn(crate::proxy::watch_owners(upstreams.clone(), r)));
    let follower =
        upstreams.take_rehomes().map(|rx| tokio::spawn(crate::proxy::follow_rehomes(upstreams.clone(), router, rx)));
    let shared = Arc::new(Shared {
        game_rate: cfg.game_rate,
        login_deadline: cfg.login_deadline,
        connections_per_address: cfg.connections_per_address,
        connections: Mutex::new(HashMap::new()),
        accounts: accounts.clone(),
        upstreams,
        placement,
        auth: tower::ServiceBuilder::new()
            .layer(RateLimitLayer::new(Arc::new(AuthLimits::new(cfg.per_address, cfg.global))))
            .service(Authenticator::new(
                accounts.clone(),
                HashPool::with_nice(cfg.hash_workers, cfg.hash_queue_max, cfg.hash_nice),
            )),
        live: Mutex::new(HashMap::new()),
        next_conn: std::sync::atomic::AtomicU64::new(1),
    });
    let sessions = tokio::spawn(watch_sessions(shared.clone()));
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
    sessions.abort();
    for task in [follower, watcher].into_iter().flatten() {
        task.abort();
    }
}
