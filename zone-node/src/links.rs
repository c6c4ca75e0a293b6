//! The zone node's connections: a player connected directly (development and tests), or a
//! gateway link carrying many players, each message wrapped in `Routed { player, payload }`
//! (`Attach` and `Detach` start and end a player). Both feed the tick's inbox; the tick answers
//! through a [`Sink`], which wraps for gateway players.
//!
//! Rules:
//! - `[link-1]` a gateway link's players are those it attached; it speaks for them (the gateway
//!   authenticated them; gateways are services, authenticated by mutual TLS when the zone runs
//!   behind gateways and by the service key always, `[link-5]`), and for no one else: its
//!   messages and datagrams for a player it did not attach are ignored (counted);
//! - `[link-2]` when a link ends, every player it attached leaves;
//! - `[link-3]` only inputs, acks, pings, chat and item gifts are taken from players; anything else is
//!   ignored (counted).
//! - `[link-5]` a gateway link is refused unless its first message is `ServiceAuth` with the
//!   deployment's service key (a zone without one refuses every gateway link);
//! - `[link-4]` a player attached again while still in the zone (a gateway restarted before
//!   its old link timed out, or a new session) is taken over by the newer connection: the
//!   character stays as it is, its snapshots and events go to the new connection, and the old
//!   connection's departure no longer removes it.

use crate::persist::{PlayerState, load_owned_player};
use pwn_net::{Conn, ConnError, ConnTx};
use pwn_proto::{GameEvent, Message, Routed, decode_datagram, encode_datagram};
use pwn_sim::EntityId;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Reliable events queued per player; a player who cannot keep up loses the oldest (counted).
pub const EVENTS_QUEUE_MAX: usize = 256;
/// Metric: messages from players the zone does not take.
pub const IGNORED_METRIC: &str = "pwn_zone_ignored_messages_total";

/// What connections hand the tick.
pub(crate) enum ToZone {
    Joined {
        player: EntityId,
        sink: Sink,
        events: mpsc::Sender<GameEvent>,
        saved: Option<PlayerState>,
        /// The cell owning the player in the store (a partitioned world).
        owner: Option<pwn_store::keys::CellKey>,
        /// The gateway says the player was handed over to this zone (`Attach::handoff`).
        handoff: bool,
        link: u64,
    },
    Left {
        player: EntityId,
        link: u64,
    },
    /// A player's message, and when it reached this process.
    Message {
        player: EntityId,
        message: Message,
        arrived: std::time::Instant,
    },
    /// The world server's answer to a heartbeat sent at `sent_ms` (`crate::mesh_link`).
    Map {
        sent_ms: u64,
        answer: pwn_partitioner::wire::HeartbeatAnswer,
    },
    /// A neighbour zone's message (`crate::mesh_link` `[zlink-1]`, `[zlink-4]`).
    Peer {
        from: pwn_partitioner::ZoneId,
        message: Message,
        arrived: std::time::Instant,
    },
    /// A store job the committer finished.
    Committed(Box<crate::mesh_link::Committed>),
}

/// Where a player's snapshots and events go.
#[derive(Clone, Debug)]
pub(crate) enum Sink {
    Direct(ConnTx),
    Routed { link: ConnTx, player: u64 },
}

impl Sink {
    /// Queues a datagram for the player; returns its encoded size.
    pub(crate) fn send_datagram(&self, m: &Message) -> Result<usize, ConnError> {
        let payload = encode_datagram(m)?;
        let n = payload.len();
        self.send_encoded(payload)?;
        Ok(n)
    }

    /// Queues a datagram message already encoded (`encode_datagram`) for the player.
    pub(crate) fn send_encoded(&self, payload: Vec<u8>) -> Result<(), ConnError> {
        match self {
            Self::Direct(tx) => tx.send_datagram_encoded(payload.into()),
            Self::Routed { link, player } => link.send_datagram(&Message::Routed(Routed { player: *player, payload })),
        }
    }

    /// Sends a reliable message to the player.
    pub(crate) async fn send(&self, m: &Message) -> Result<(), ConnError> {
        match self {
            Self::Direct(tx) => tx.send(m).await,
            Self::Routed { link, player } => {
                link.send(&Message::Routed(Routed { player: *player, payload: encode_datagram(m)? })).await
            }
        }
    }

    /// Ends the player's connection with a reason: a direct one here; a routed one through its
    /// gateway, which passes the refusal on and closes the client's connection.
    pub(crate) async fn refuse(&self, code: pwn_proto::RefuseCode, why: &str) {
        match self {
            Self::Direct(tx) => tx.refuse(code, why.to_owned()).await,
            Self::Routed { .. } => {
                let refused = pwn_proto::Refused { code, message: why.chars().take(256).collect() };
                let _ = self.send(&Message::Refused(refused)).await;
            }
        }
    }
}

pub(crate) fn forward(inbox: &mpsc::Sender<ToZone>, msg: ToZone) {
    if inbox.try_send(msg).is_err() {
        metrics::counter!(crate::server::metric::INBOX_DROPPED).increment(1);
    }
}

/// Starts a player: its event writer, and the `Joined` for the tick. Returns the writer task.
/// Like leaving, joining waits for room in the inbox rather than being dropped: a lost `Joined`
/// would leave a connected player never placed.
async fn join(
    player: EntityId,
    sink: Sink,
    (owner, saved): (Option<pwn_store::keys::CellKey>, Option<PlayerState>),
    (link, handoff): (u64, bool),
    inbox: &mpsc::Sender<ToZone>,
) -> tokio::task::JoinHandle<()> {
    let (events_tx, mut events_rx) = mpsc::channel::<GameEvent>(EVENTS_QUEUE_MAX);
    let joined = ToZone::Joined { player, sink: sink.clone(), events: events_tx, saved, owner, handoff, link };
    let _ = inbox.send(joined).await;
    tokio::spawn(async move {
        while let Some(e) = events_rx.recv().await {
            if sink.send(&Message::Event(e)).await.is_err() {
                return;
            }
        }
    })
}

/// A player's datagram (`[link-3]`): pings are answered here, not by the tick, so the round
/// trip measures the network.
fn on_datagram(
    player: EntityId,
    message: Message,
    sink: &Sink,
    inbox: &mpsc::Sender<ToZone>,
    relays: &crate::mesh_link::Relays,
) {
    match message {
        Message::Ping(ping) => {
            let _ = sink.send_datagram(&Message::Pong(ping));
        }
        // A player crossing a border: its inputs are relayed (`crate::mesh_link` `[handoff-7]`).
        Message::Inputs(ref batch) if crate::mesh_link::relay_inputs(relays, player.0, batch) => {}
        Message::Inputs(_) | Message::SnapshotAck(_) => {
            forward(inbox, ToZone::Message { player, message, arrived: std::time::Instant::now() })
        }
        _ => metrics::counter!(IGNORED_METRIC).increment(1),
    }
}

/// A player connected directly.
pub(crate) async fn serve_direct(
    conn: Conn,
    player: EntityId,
    inbox: mpsc::Sender<ToZone>,
    relays: crate::mesh_link::Relays,
) {
    let Conn { tx, mut rx, mut datagrams, .. } = conn;
    let sink = Sink::Direct(tx);
    let link = next_link();
    let writer = join(player, sink.clone(), (None, None), (link, false), &inbox).await;
    let datagram_inbox = inbox.clone();
    let datagram_sink = sink.clone();
    let datagram_reader = tokio::spawn(async move {
        while let Ok(message) = datagrams.recv().await {
            on_datagram(player, message, &datagram_sink, &datagram_inbox, &relays);
        }
    });
    while let Ok(Some(message)) = rx.recv().await {
        if matches!(message, Message::Chat(_) | Message::GiveItem(_) | Message::EditObject(_)) {
            forward(&inbox, ToZone::Message { player, message, arrived: std::time::Instant::now() });
        }
    }
    datagram_reader.abort();
    writer.abort();
    // Leaving must not be lost to a full inbox, or the character would stay forever.
    let _ = inbox.send(ToZone::Left { player, link }).await;
}

/// A number for each connection, so a player's departure from an old connection never
/// removes the player from a newer one (`[link-4]`).
fn next_link() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A gateway link and the players it attaches (`[link-1]`, `[link-2]`).
pub(crate) async fn serve_gateway(
    conn: Conn,
    inbox: mpsc::Sender<ToZone>,
    store: Option<pwn_store::Store>,
    service_key: Option<[u8; 32]>,
    relays: crate::mesh_link::Relays,
) {
    let Conn { tx, mut rx, mut datagrams, peer, .. } = conn;
    // `[link-5]`: the link's first message proves it is one of our services.
    if !pwn_net::service_auth::expect(&tx, &mut rx, service_key).await {
        tracing::warn!(remote = %peer.remote, "refused a gateway link without the service key");
        return;
    }
    let link = next_link();
    tracing::info!(remote = %peer.remote, link, "gateway linked");
    let datagram_inbox = inbox.clone();
    let datagram_link = tx.clone();
    // `[link-1]`: the players this link attached, shared with its datagram reader.
    let attached: Arc<std::sync::RwLock<HashSet<u64>>> = Arc::default();
    let datagram_attached = attached.clone();
    let datagram_reader = tokio::spawn(async move {
        while let Ok(message) = datagrams.recv().await {
            let Message::Routed(r) = message else { continue };
            if !datagram_attached.read().is_ok_and(|a| a.contains(&r.player)) {
                metrics::counter!(IGNORED_METRIC).increment(1);
                continue;
            }
            let Ok(inner) = decode_datagram(&r.payload) else {
                metrics::counter!(IGNORED_METRIC).increment(1);
                continue;
            };
            let sink = Sink::Routed { link: datagram_link.clone(), player: r.player };
            on_datagram(EntityId(r.player), inner, &sink, &datagram_inbox, &relays);
        }
    });
    let mut writers: HashMap<u64, tokio::task::JoinHandle<()>> = HashMap::new();
    while let Ok(Some(message)) = rx.recv().await {
        match message {
            Message::Attach(a) => {
                if !EntityId(a.player).is_gameplay() {
                    continue;
                }
                // Attached again on the same link (the gateway retrying after this zone sent
                // the player on, `crate::server`): the new attach replaces the old one.
                if let Some(old) = writers.remove(&a.player) {
                    old.abort();
                }
                let sink = Sink::Routed { link: tx.clone(), player: a.player };
                // A returning player comes back where it was saved (`[persist-4]`); in a
                // partitioned world its owner record decides who may take it.
                // A store that cannot be read places nobody: a spawn point now would overwrite
                // the saved position at the next checkpoint. The gateway is asked to try again.
                let saved = match &store {
                    Some(store) => {
                        let (store, id) = (store.clone(), EntityId(a.player));
                        match tokio::task::spawn_blocking(move || load_owned_player(&store, id)).await {
                            Ok(Ok(found)) => found,
                            failed => {
                                tracing::warn!(
                                    player = a.player,
                                    ?failed,
                                    "cannot read the player's record; not placed"
                                );
                                let retry = pwn_proto::Rehome { player: a.player, node: 0, addr: String::new() };
                                let _ = tx.send(&Message::Rehome(retry)).await;
                                continue;
                            }
                        }
                    }
                    None => (None, None),
                };
                writers.insert(a.player, join(EntityId(a.player), sink, saved, (link, a.handoff), &inbox).await);
                if let Ok(mut a2) = attached.write() {
                    a2.insert(a.player);
                }
            }
            Message::Detach(d) => {
                if let Ok(mut a) = attached.write() {
                    a.remove(&d.player);
                }
                if let Some(w) = writers.remove(&d.player) {
                    w.abort();
                    let _ = inbox.send(ToZone::Left { player: EntityId(d.player), link }).await;
                }
            }
            Message::Routed(r) if writers.contains_key(&r.player) => match decode_datagram(&r.payload) {
                Ok(message @ (Message::Chat(_) | Message::GiveItem(_) | Message::EditObject(_))) => {
                    let arrived = std::time::Instant::now();
                    forward(&inbox, ToZone::Message { player: EntityId(r.player), message, arrived })
                }
                _ => metrics::counter!(IGNORED_METRIC).increment(1),
            },
            _ => metrics::counter!(IGNORED_METRIC).increment(1),
        }
    }
    datagram_reader.abort();
    tracing::info!(remote = %peer.remote, players = writers.len(), "gateway link ended");
    for (player, w) in writers {
        w.abort();
        let _ = inbox.send(ToZone::Left { player: EntityId(player), link }).await;
    }
}
