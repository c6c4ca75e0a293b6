//! Proxying players to zone nodes: one link per zone node (a pwn-net connection in the
//! `Gateway` role), players multiplexed over it with `Attach`, `Detach` and `Routed`, and a
//! routing table from player to the client connection and zone. Switching a player's zone is a
//! `Detach` on one link and an `Attach` on another; the client's connection never changes.
//!
//! Rules:
//! - `[proxy-1]` the gateway stamps the player id on everything it forwards: a client can only
//!   ever speak for the player its session authenticated;
//! - `[proxy-2]` what a zone sends for a player goes to the client connection that holds the
//!   player's route, datagrams forwarded as they came (no re-encoding);
//! - `[proxy-3]` a route belongs to one client connection: a connection that ends or loses its
//!   session detaches only its own route, never a newer session's;
//! - `[proxy-4]` client game traffic is rate limited per connection (one governor limiter over
//!   its datagrams and its chat and item messages, `crate::limits::MessageLimiter`): excess
//!   messages are dropped and counted.

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
    /// The client connection holding the route (`[proxy-3]`).
    conn: u64,
}

type Routes = Arc<Mutex<HashMap<u64, Route>>>;

/// The gateway's links to zone nodes and its players' routes.
pub struct Upstreams {
    net: NetClient,
    hello: ClientHello,
    service_key: [u8; 32],
    links: tokio::sync::Mutex<HashMap<SocketAddr, ConnTx>>,
    routes: Routes,
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
        Self {
            net,
            service_key,
            hello: ClientHello::new(PeerRole::Gateway, sim_digest, concat!("pwn-gateway/", env!("CARGO_PKG_VERSION"))),
            links: tokio::sync::Mutex::new(HashMap::new()),
            routes: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The zone a player is routed to.
    pub fn zone_of(&self, player: u64) -> Option<SocketAddr> {
        self.routes.lock().ok()?.get(&player).map(|r| r.zone)
    }

    /// The link to `zone`, made on first use; its reader forwards to clients (`[proxy-2]`).
    async fn link(&self, zone: SocketAddr) -> Result<ConnTx, ConnError> {
        let mut links = self.links.lock().await;
        if let Some(tx) = links.get(&zone) {
            return Ok(tx.clone());
        }
        let conn = self.net.connect(zone, "localhost", &self.hello).await?;
        let pwn_net::Conn { tx, mut rx, mut datagrams, .. } = conn;
        pwn_net::service_auth::prove(&tx, self.service_key).await?;
        let routes = self.routes.clone();
        tokio::spawn(async move {
            while let Ok(Message::Routed(r)) = datagrams.recv().await {
                match routes.lock().ok().and_then(|m| m.get(&r.player).map(|x| x.client.clone())) {
                    Some(client) => {
                        let _ = client.send_datagram_encoded(r.payload.into());
                    }
                    None => metrics::counter!(UNROUTED_METRIC).increment(1),
                }
            }
        });
        let routes = self.routes.clone();
        tokio::spawn(async move {
            while let Ok(Some(message)) = rx.recv().await {
                let Message::Routed(r) = message else { continue };
                let client = routes.lock().ok().and_then(|m| m.get(&r.player).map(|x| x.client.clone()));
                match (client, decode_datagram(&r.payload)) {
                    (Some(client), Ok(inner)) => {
                        let _ = client.send(&inner).await;
                    }
                    _ => metrics::counter!(UNROUTED_METRIC).increment(1),
                }
            }
            tracing::warn!(%zone, "zone link ended");
        });
        links.insert(zone, tx.clone());
        tracing::info!(%zone, "linked to zone");
        Ok(tx)
    }

    /// Routes `player` to `zone` for the client connection `conn` (sending its messages to
    /// `client`), replacing any older route of the player (whose zone is told it left).
    pub async fn attach(&self, player: u64, client: ConnTx, conn: u64, zone: SocketAddr) -> Result<(), ConnError> {
        let old = self.routes.lock().ok().and_then(|mut m| m.insert(player, Route { zone, client, conn }));
        if let Some(old) = old {
            let link = self.link(old.zone).await?;
            link.send(&Message::Detach(Detach { player })).await?;
        }
        let link = self.link(zone).await?;
        link.send(&Message::Attach(Attach { player })).await
    }

    /// Ends `player`'s route if connection `conn` holds it (`[proxy-3]`).
    pub async fn detach(&self, player: u64, conn: u64) {
        let removed = self.routes.lock().ok().and_then(|mut m| match m.get(&player) {
            Some(r) if r.conn == conn => m.remove(&player),
            _ => None,
        });
        if let Some(r) = removed
            && let Ok(link) = self.link(r.zone).await
        {
            let _ = link.send(&Message::Detach(Detach { player })).await;
        }
    }

    /// Moves `player` to another zone under the same client connection: the old zone is told
    /// it left, the new one that it arrived; the client keeps its connection.
    pub async fn switch(&self, player: u64, zone: SocketAddr) -> Result<(), ConnError> {
        let route = self.routes.lock().ok().and_then(|m| m.get(&player).cloned());
        let Some(route) = route else { return Err(ConnError::Datagram(format!("player {player} has no route"))) };
        if route.zone == zone {
            return Ok(());
        }
        self.attach(player, route.client, route.conn, zone).await
    }

    /// Forwards a client's datagram for `player` to its zone, stamped with the player (`[proxy-1]`).
    pub async fn forward_datagram(&self, player: u64, message: &Message) -> Result<(), ConnError> {
        let Some(zone) = self.zone_of(player) else { return Ok(()) };
        let link = self.link(zone).await?;
        link.send_datagram(&Message::Routed(Routed { player, payload: encode_datagram(message)? }))
    }

    /// Forwards a client's reliable message for `player` to its zone (`[proxy-1]`).
    pub async fn forward_reliable(&self, player: u64, message: &Message) -> Result<(), ConnError> {
        let Some(zone) = self.zone_of(player) else { return Ok(()) };
        let link = self.link(zone).await?;
        link.send(&Message::Routed(Routed { player, payload: encode_datagram(message)? })).await
    }
}
