//! Proxying players to zone nodes: one link per zone node (a pwn-net connection in the
//! `Gateway` role), players multiplexed over it with `Attach`, `Detach` and `Routed`, and a
//! routing table from player to the client connection and zone. Switching a player's zone is a
//! `Detach` on one link and an `Attach` on another; the client's connection never changes.
//!
//! Rules:
//! - `[proxy-1]` the gateway stamps the player id on everything it forwards: a client can only
//!   ever speak for the player its session authenticated;
//! - `[proxy-2]` what a zone sends for a player goes to the client connection that holds the
//!   player's route, datagrams forwarded as they came (no re-encoding), and only if the player
//!   is routed to that zone: a zone that lost the player is not heard, except the zone that
//!   handed it over, for `HANDED_OVER_HEARD_FOR` after the switch (its last snapshot and
//!   events were sent before its `Rehome`, and may arrive after it);
//! - `[proxy-3]` a route belongs to one client connection: a connection that ends or loses its
//!   session detaches only its own route, never a newer session's, and everything forwarded is
//!   checked to come from the connection holding the route (a logged-out connection's late
//!   datagrams never reach the player's new session);
//! - `[proxy-4]` client game traffic is rate limited per connection (one governor limiter over
//!   its datagrams and its chat and item messages, `crate::limits::MessageLimiter`): excess
//!   messages are dropped and counted.
//! - `[proxy-5]` a zone's `Rehome` moves the player's route under the same client connection:
//!   to the node it names (a handoff), or, when it names none, wherever the world server says
//!   the player belongs now (a cell that changed hands), retried until the cell is served;
//! - `[proxy-6]` a zone link that ends is forgotten (the next use makes a new one) and every
//!   player routed over it is re-routed as in `[proxy-5]`: a zone's death costs its players a
//!   pause, not their connection;
//! - `[proxy-7]` a killed zone's link may look alive until QUIC's idle timeout, so the gateway
//!   also watches the world server's list of cell owners: players routed to a zone that serves
//!   no cell any more are re-routed as in `[proxy-5]`; and it links to every zone serving a
//!   cell before it hands anyone there (a handshake during a handoff stalls the player);
//! - `[proxy-8]` no lock is held across a handshake with a zone: forwarding to every other zone
//!   goes on while a link is made;
//! - `[proxy-9]` a zone link's reader never waits for a client: each client connection has a
//!   writer with a queue of `CLIENT_QUEUE_MAX` reliable messages, and a client that lets it fill
//!   (it stopped reading) is disconnected (counted), so it stalls no other player;
//! - `[proxy-10]` a zone's `Refused` for a player (it cannot place it) reaches the client, whose
//!   connection then ends with that code; a zone that shuts down refuses nobody routed: its link
//!   ends and `[proxy-6]` moves its players on.

use crate::limits::Rate;
use pwn_net::{ClientHello, ConnError, ConnTx, NetClient};
use pwn_proto::{Attach, Detach, Message, PeerRole, Routed, decode_datagram, encode_datagram};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// Metric: client datagrams dropped by the per-connection rate limit.
pub const RATE_DROPPED_METRIC: &str = "pwn_gateway_rate_limited_messages_total";
/// Metric: zone messages for players with no route (they left meanwhile).
pub const UNROUTED_METRIC: &str = "pwn_gateway_unrouted_messages_total";

/// Game messages per second a client connection may send, and its burst: four inputs datagrams
/// a tick at 30 Hz is far beyond any honest client.
pub const GAME_RATE: Rate = Rate { per_s: 120.0, burst: 240.0 };

#[derive(Clone, Debug)]
struct Route {
    zone: SocketAddr,
    client: ConnTx,
    /// The client connection's queue of reliable messages (`[proxy-9]`).
    out: tokio::sync::mpsc::Sender<Message>,
    /// The client connection holding the route (`[proxy-3]`).
    conn: u64,
    /// The zone that handed the player over, still heard until then (`[proxy-2]`).
    handed_by: Option<(SocketAddr, std::time::Instant)>,
}

impl Route {
    /// Whether `zone` may speak to the player now (`[proxy-2]`).
    fn heard(&self, zone: SocketAddr) -> bool {
        heard(self.zone, self.handed_by, zone, std::time::Instant::now())
    }
}

/// `[proxy-2]`: the zone a player is routed to is heard; the one that handed it over, until the
/// instant it was given.
fn heard(
    routed: SocketAddr,
    handed_by: Option<(SocketAddr, std::time::Instant)>,
    zone: SocketAddr,
    now: std::time::Instant,
) -> bool {
    routed == zone || handed_by.is_some_and(|(z, until)| z == zone && now < until)
}

/// Reliable messages from zones queued for one client connection (`[proxy-9]`): a client that
/// lets this many wait is not reading, and is disconnected.
pub const CLIENT_QUEUE_MAX: usize = 512;
/// Metric: clients disconnected for not reading their messages.
pub const SLOW_CLIENTS_METRIC: &str = "pwn_gateway_slow_clients_disconnected_total";

/// The writer of a client connection's reliable messages: zone links hand messages to its
/// queue without waiting, so one client that stops reading stalls nobody else (`[proxy-9]`).
fn client_writer(client: ConnTx) -> tokio::sync::mpsc::Sender<Message> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Message>(CLIENT_QUEUE_MAX);
    tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if client.send(&m).await.is_err() {
                break;
            }
        }
    });
    tx
}

/// How long the zone that handed a player over is still heard for it (`[proxy-2]`): a few
/// ticks, enough for what it sent before its `Rehome` to arrive.
pub const HANDED_OVER_HEARD_FOR: std::time::Duration = std::time::Duration::from_millis(250);

type Routes = Arc<Mutex<HashMap<u64, Route>>>;
type Links = Arc<tokio::sync::Mutex<HashMap<SocketAddr, ConnTx>>>;

/// Re-routes waiting to be resolved (`[proxy-5]`); more are dropped, counted (their players
/// stay where they are until the next one).
pub const REHOMES_QUEUE_MAX: usize = 16_384;
/// Metric: re-routes dropped because the queue was full.
pub const REHOMES_DROPPED_METRIC: &str = "pwn_gateway_rehomes_dropped_total";
/// Metric: players moved to another zone (handoffs and re-routes).
pub const SWITCHES_METRIC: &str = "pwn_gateway_zone_switches_total";

/// The gateway's links to zone nodes and its players' routes.
pub struct Upstreams {
    net: NetClient,
    hello: ClientHello,
    service_key: [u8; 32],
    links: Links,
    routes: Routes,
    rehomes: tokio::sync::mpsc::Sender<pwn_proto::Rehome>,
    rehomes_rx: Mutex<Option<tokio::sync::mpsc::Receiver<pwn_proto::Rehome>>>,
}

impl std::fmt::Debug for Upstreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstreams").finish_non_exhaustive()
    }
}

impl Upstreams {
    /// Links made with `net` (which trusts the zones' certificates), announcing `sim_digest`
    /// and proving `service_key` (`pwn_net::tls::service_key`).
    pub fn new(net: NetClient, sim_digest: u64, service_key: [u8; 32]) -> Self {
        let (rehomes, rx) = tokio::sync::mpsc::channel(REHOMES_QUEUE_MAX);
        Self {
            net,
            service_key,
            hello: ClientHello::new(PeerRole::Gateway, sim_digest, concat!("pwn-gateway/", env!("CARGO_PKG_VERSION"))),
            links: Arc::new(tokio::sync::Mutex::new(HashMap::new())),
            routes: Arc::new(Mutex::new(HashMap::new())),
            rehomes,
            rehomes_rx: Mutex::new(Some(rx)),
        }
    }

    /// The re-routes zones asked for (`[proxy-5]`, `[proxy-6]`); taken once, by whoever
    /// resolves them ([`follow_rehomes`]).
    pub fn take_rehomes(&self) -> Option<tokio::sync::mpsc::Receiver<pwn_proto::Rehome>> {
        self.rehomes_rx.lock().ok()?.take()
    }

    /// The zone a player is routed to.
    pub fn zone_of(&self, player: u64) -> Option<SocketAddr> {
        self.routes.lock().ok()?.get(&player).map(|r| r.zone)
    }

    /// The link to `zone`, made on first use; its reader forwards to clients (`[proxy-2]`).
    async fn link(&self, zone: SocketAddr) -> Result<ConnTx, ConnError> {
        if let Some(tx) = self.links.lock().await.get(&zone) {
            return Ok(tx.clone());
        }
        // The handshake runs without the map's lock: every forward to every zone takes that
        // lock, and a handshake can take long (a zone that is starting, or gone).
        let conn = self.net.connect(zone, "localhost", &self.hello).await?;
        let pwn_net::Conn { tx, mut rx, mut datagrams, .. } = conn;
        pwn_net::service_auth::prove(&tx, self.service_key).await?;
        let mut links = self.links.lock().await;
        if let Some(made) = links.get(&zone) {
            // Another task linked meanwhile: this connection is dropped before anything reads
            // from it.
            return Ok(made.clone());
        }
        let routes = self.routes.clone();
        tokio::spawn(async move {
            while let Ok(Message::Routed(r)) = datagrams.recv().await {
                // `[proxy-2]`: only the zone the player is routed to speaks to it; a zone that
                // lost the player (a stale one, waking from a pause) is not heard.
                match routes
                    .lock()
                    .ok()
                    .and_then(|m| m.get(&r.player).filter(|x| x.heard(zone)).map(|x| x.client.clone()))
                {
                    Some(client) => {
                        let _ = client.send_datagram_encoded(r.payload.into());
                    }
                    None => metrics::counter!(UNROUTED_METRIC).increment(1),
                }
            }
        });
        let routes = self.routes.clone();
        let (link_map, rehomes) = (self.links.clone(), self.rehomes.clone());
        let ended_tx = tx.clone();
        tokio::spawn(async move {
            while let Ok(Some(message)) = rx.recv().await {
                let r = match message {
                    Message::Routed(r) => r,
                    Message::Rehome(r) => {
                        if rehomes.try_send(r).is_err() {
                            metrics::counter!(REHOMES_DROPPED_METRIC).increment(1);
                        }
                        continue;
                    }
                    _ => continue,
                };
                let client = routes.lock().ok().and_then(|m| {
                    m.get(&r.player).filter(|x| x.heard(zone)).map(|x| (x.client.clone(), x.out.clone()))
                });
                match (client, decode_datagram(&r.payload)) {
                    // A zone that cannot take the player: the client is told why and its
                    // connection ends (`[proxy-10]`).
                    (Some((client, _)), Ok(Message::Refused(r))) => {
                        tracing::warn!(%zone, why = %r.message, "a zone refused a player");
                        tokio::spawn(async move { client.refuse(r.code, r.message).await });
                    }
                    // `[proxy-9]`: queued, never awaited here.
                    (Some((client, out)), Ok(inner)) => {
                        if let Err(tokio::sync::mpsc::error::TrySendError::Full(_)) = out.try_send(inner) {
                            metrics::counter!(SLOW_CLIENTS_METRIC).increment(1);
                            tracing::warn!(player = r.player, "a client does not read its messages: disconnected");
                            client.close(pwn_proto::RefuseCode::RateLimited);
                        }
                    }
                    _ => metrics::counter!(UNROUTED_METRIC).increment(1),
                }
            }
            tracing::warn!(%zone, "zone link ended");
            // `[proxy-6]`: forget the link (unless a newer one replaced it) and re-route its players.
            let mut map = link_map.lock().await;
            if map.get(&zone).is_some_and(|l| l.handle().id() == ended_tx.handle().id()) {
                map.remove(&zone);
            }
            drop(map);
            let players: Vec<u64> = routes
                .lock()
                .map(|m| m.iter().filter(|(_, r)| r.zone == zone).map(|(p, _)| *p).collect())
                .unwrap_or_default();
            for player in players {
                if rehomes.try_send(pwn_proto::Rehome { player, node: 0, addr: String::new() }).is_err() {
                    metrics::counter!(REHOMES_DROPPED_METRIC).increment(1);
                }
            }
        });
        links.insert(zone, tx.clone());
        tracing::info!(%zone, "linked to zone");
        Ok(tx)
    }

    /// Routes `player` to `zone` for the client connection `conn` (sending its messages to
    /// `client`), replacing any older route of the player (whose zone is told it left).
    pub async fn attach(&self, player: u64, client: ConnTx, conn: u64, zone: SocketAddr) -> Result<(), ConnError> {
        self.attach_as(player, client, conn, zone, false).await
    }

    /// [`Upstreams::attach`], telling the zone whether the player was handed over to it.
    async fn attach_as(
        &self,
        player: u64,
        client: ConnTx,
        conn: u64,
        zone: SocketAddr,
        handoff: bool,
    ) -> Result<(), ConnError> {
        let old = self.routes.lock().ok().and_then(|mut m| {
            let previous = m.get(&player).map(|r| r.zone);
            let handed_by =
                previous.filter(|_| handoff).map(|z| (z, std::time::Instant::now() + HANDED_OVER_HEARD_FOR));
            // The same connection keeps its writer (its messages stay in order across a switch).
            let out = match m.get(&player) {
                Some(r) if r.conn == conn => r.out.clone(),
                _ => client_writer(client.clone()),
            };
            m.insert(player, Route { zone, client, out, conn, handed_by })
        });
        let mut attached = Ok(());
        if handoff {
            // The taking zone first: it simulates the player already and sends its snapshots
            // only once the player is attached there. If it cannot be reached, the old zone is
            // still told the player left (it handed the player over) before the error returns.
            attached = match self.link(zone).await {
                Ok(link) => link.send(&Message::Attach(Attach { player, handoff })).await,
                Err(e) => Err(e),
            };
        }
        if let Some(old) = old {
            // Only over a link that exists: the old zone may be dead, and connecting to it would
            // hold the player up for a handshake timeout.
            let link = self.links.lock().await.get(&old.zone).cloned();
            if let Some(link) = link {
                let _ = link.send(&Message::Detach(Detach { player })).await;
            }
        }
        if handoff {
            return attached;
        }
        let link = self.link(zone).await?;
        link.send(&Message::Attach(Attach { player, handoff })).await
    }

    /// Attaches `player` again to the zone it is routed to (that zone lost it, or asked to be
    /// asked again and there is nowhere else to go).
    pub async fn reattach(&self, player: u64) -> Result<(), ConnError> {
        let Some(zone) = self.zone_of(player) else { return Ok(()) };
        let link = self.link(zone).await?;
        link.send(&Message::Attach(Attach { player, handoff: false })).await
    }

    /// Ends `player`'s route if connection `conn` holds it (`[proxy-3]`).
    pub async fn detach(&self, player: u64, conn: u64) {
        let removed = self.routes.lock().ok().and_then(|mut m| match m.get(&player) {
            Some(r) if r.conn == conn => m.remove(&player),
            _ => None,
        });
        // Only over a link that exists: making one to tell a zone that may be dead about a
        // player that left would hold the leaving connection up for a handshake.
        if let Some(r) = removed
            && let Some(link) = self.links.lock().await.get(&r.zone).cloned()
        {
            let _ = link.send(&Message::Detach(Detach { player })).await;
        }
    }

    /// Moves `player` to another zone under the same client connection: the old zone is told
    /// it left, the new one that it arrived; the client keeps its connection.
    pub async fn switch(&self, player: u64, zone: SocketAddr) -> Result<(), ConnError> {
        self.switch_as(player, zone, false).await
    }

    /// [`Upstreams::switch`] for a player its zone handed to `zone` (`[proxy-5]`).
    pub async fn switch_handed_over(&self, player: u64, zone: SocketAddr) -> Result<(), ConnError> {
        self.switch_as(player, zone, true).await
    }

    async fn switch_as(&self, player: u64, zone: SocketAddr, handoff: bool) -> Result<(), ConnError> {
        let route = self.routes.lock().ok().and_then(|m| m.get(&player).cloned());
        let Some(route) = route else { return Err(ConnError::Datagram(format!("player {player} has no route"))) };
        if route.zone == zone {
            return Ok(());
        }
        self.attach_as(player, route.client, route.conn, zone, handoff).await
    }

    /// The client connection of `player`'s route, to tell it something.
    pub fn client_of(&self, player: u64) -> Option<ConnTx> {
        self.routes.lock().ok()?.get(&player).map(|r| r.client.clone())
    }

    /// The zone of `player`'s route if client connection `conn` holds it (`[proxy-3]`).
    fn zone_for_conn(&self, player: u64, conn: u64) -> Option<SocketAddr> {
        self.routes.lock().ok()?.get(&player).filter(|r| r.conn == conn).map(|r| r.zone)
    }

    /// Forwards a client's datagram for `player` to its zone, stamped with the player
    /// (`[proxy-1]`), if client connection `conn` holds the player's route (`[proxy-3]`).
    pub async fn forward_datagram(&self, player: u64, conn: u64, message: &Message) -> Result<(), ConnError> {
        let Some(zone) = self.zone_for_conn(player, conn) else { return Ok(()) };
        let link = self.link(zone).await?;
        link.send_datagram(&Message::Routed(Routed { player, payload: encode_datagram(message)? }))
    }

    /// Forwards a client's reliable message for `player` to its zone (`[proxy-1]`), if client
    /// connection `conn` holds the player's route (`[proxy-3]`).
    pub async fn forward_reliable(&self, player: u64, conn: u64, message: &Message) -> Result<(), ConnError> {
        let Some(zone) = self.zone_for_conn(player, conn) else { return Ok(()) };
        let link = self.link(zone).await?;
        link.send(&Message::Routed(Routed { player, payload: encode_datagram(message)? })).await
    }
}

/// How often the gateway compares its routes with the world server's owners (`[proxy-7]`).
pub const OWNERS_WATCH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

impl Upstreams {
    /// Re-routes the players of every zone not in `serving` (`[proxy-7]`); returns how many.
    pub fn reroute_unserved(&self, serving: &std::collections::HashSet<SocketAddr>) -> usize {
        let stranded: Vec<u64> = self
            .routes
            .lock()
            .map(|m| m.iter().filter(|(_, r)| !serving.contains(&r.zone)).map(|(p, _)| *p).collect())
            .unwrap_or_default();
        for player in &stranded {
            if self.rehomes.try_send(pwn_proto::Rehome { player: *player, node: 0, addr: String::new() }).is_err() {
                metrics::counter!(REHOMES_DROPPED_METRIC).increment(1);
            }
        }
        stranded.len()
    }
}

/// Where a player goes when its zone says it is not there any more (`[proxy-5]`).
pub trait Router: Send + Sync + 'static {
    /// The address of the zone serving `player`'s cell now, if any serves it.
    fn route(&self, player: u64) -> impl std::future::Future<Output = Option<SocketAddr>> + Send;
    /// The addresses of every zone serving a cell now (`None`: not known right now).
    fn serving(&self) -> impl std::future::Future<Output = Option<std::collections::HashSet<SocketAddr>>> + Send;
}

/// Re-routes players whose zone no longer serves any cell, every `OWNERS_WATCH_INTERVAL`
/// (`[proxy-7]`).
pub async fn watch_owners<R: Router>(upstreams: Arc<Upstreams>, router: Arc<R>) {
    let mut every = tokio::time::interval(OWNERS_WATCH_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Some(serving) = router.serving().await {
            let n = upstreams.reroute_unserved(&serving);
            if n > 0 {
                tracing::info!(players = n, "players of a zone that serves no cell any more: re-routing");
            }
            // Linked ahead of the first player handed there: a handshake in the middle of a
            // handoff would stall the player for its duration.
            let linked: std::collections::HashSet<SocketAddr> = upstreams.links.lock().await.keys().copied().collect();
            for zone in serving.into_iter().filter(|z| !linked.contains(z)) {
                let upstreams = upstreams.clone();
                tokio::spawn(async move {
                    if let Err(e) = upstreams.link(zone).await {
                        tracing::debug!(%zone, error = %e, "cannot link to a zone yet");
                    }
                });
            }
        }
    }
}

/// How long a player whose cell nobody serves waits for a new owner before it is told the
/// world is unavailable (a zone's lease plus its margin, and room to start a replacement).
pub const REROUTE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);
/// Pause between asking where a player belongs.
pub const REROUTE_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);

/// Resolves the re-routes zones ask for until `rehomes` closes (`[proxy-5]`, `[proxy-6]`).
pub async fn follow_rehomes<R: Router>(
    upstreams: Arc<Upstreams>,
    router: Option<Arc<R>>,
    mut rehomes: tokio::sync::mpsc::Receiver<pwn_proto::Rehome>,
) {
    // One re-route in flight per player: a newer request replaces an older one.
    let pending: Arc<Mutex<HashMap<u64, u64>>> = Arc::new(Mutex::new(HashMap::new()));
    let mut serial = 0u64;
    while let Some(r) = rehomes.recv().await {
        serial += 1;
        if let Ok(mut p) = pending.lock() {
            p.insert(r.player, serial);
        }
        let (upstreams, router, pending, mine) = (upstreams.clone(), router.clone(), pending.clone(), serial);
        tokio::spawn(async move {
            let current = || pending.lock().ok().and_then(|p| p.get(&r.player).copied()) == Some(mine);
            let deadline = std::time::Instant::now() + REROUTE_DEADLINE;
            let mut target = r.addr.parse::<SocketAddr>().ok();
            // A zone naming its successor handed the player over (`Rehome` after a handoff).
            let handed_over = target.is_some();
            loop {
                if !current() || upstreams.zone_of(r.player).is_none() {
                    // Replaced by a newer re-route, or the player left: nothing more to do
                    // (the entry is ours to remove only if it is still ours, below).
                    break;
                }
                if target.is_none() {
                    target = match &router {
                        Some(router) => router.route(r.player).await,
                        // A single zone: the same one, once it is back.
                        None => upstreams.zone_of(r.player),
                    };
                }
                if let Some(zone) = target {
                    let done = if upstreams.zone_of(r.player) == Some(zone) {
                        upstreams.reattach(r.player).await
                    } else if handed_over {
                        upstreams.switch_handed_over(r.player, zone).await
                    } else {
                        upstreams.switch(r.player, zone).await
                    };
                    match done {
                        Ok(()) => {
                            metrics::counter!(SWITCHES_METRIC).increment(1);
                            tracing::debug!(player = r.player, %zone, "player re-routed");
                            break;
                        }
                        Err(e) => tracing::debug!(player = r.player, %zone, error = %e, "re-route failed; again"),
                    }
                    target = None;
                }
                if std::time::Instant::now() > deadline {
                    tracing::warn!(player = r.player, "no zone serves the player's place; giving up");
                    if let Some(client) = upstreams.client_of(r.player) {
                        client
                            .refuse(
                                pwn_proto::RefuseCode::Unavailable,
                                "the world is unavailable; try again shortly".into(),
                            )
                            .await;
                    }
                    break;
                }
                tokio::time::sleep(REROUTE_PAUSE).await;
            }
            if let Ok(mut p) = pending.lock()
                && p.get(&r.player) == Some(&mine)
            {
                p.remove(&r.player);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn proxy_2_only_the_routed_zone_and_briefly_the_one_that_handed_over_are_heard() {
        let (a, b, c): (SocketAddr, SocketAddr, SocketAddr) =
            ("127.0.0.1:1".parse().unwrap(), "127.0.0.1:2".parse().unwrap(), "127.0.0.1:3".parse().unwrap());
        let now = Instant::now();
        assert!(heard(b, None, b, now));
        assert!(!heard(b, None, a, now), "a zone that lost the player is not heard");
        let handed = Some((a, now + HANDED_OVER_HEARD_FOR));
        assert!(heard(b, handed, a, now), "the zone that handed it over, just after the switch");
        assert!(!heard(b, handed, a, now + HANDED_OVER_HEARD_FOR), "and not after");
        assert!(!heard(b, handed, c, now + Duration::from_millis(1)), "no other zone");
    }
}
