//! A zone node's links within the mesh, beside the tick: heartbeats to the world server (their
//! answers go to the tick as the new map of leases and owners), one outgoing link per
//! neighbour zone (ghosts, handoffs, hits and chat go out on it, in order), the incoming links
//! of neighbours (their messages go to the tick), and the handoff committer (one worker running
//! the fenced store transactions of handoffs and claims, in order, off the tick).
//!
//! Rules:
//! - `[zlink-1]` a zone link opens like a gateway link: mutual TLS with the service certificate,
//!   then the service key (`pwn_net::service_auth`); only ghosts, handoffs, hits, chat, the
//!   inputs of players it handed over and notices of gifts to this zone's players are taken on
//!   it (anything else is counted and ignored);
//! - `[zlink-4]` the connecting zone says which node it is right after the key; everything on
//!   the link is then taken as that node's and checked against the world server's map: ghosts
//!   only under its own id, handoffs only from cells it serves, hits and chat only near its
//!   cells, inputs only for players it handed over in the last `FORWARD_INPUTS_TICKS`, gift
//!   notices only for players near its cells;
//! - `[zlink-2]` each neighbour has one outgoing link with a bounded queue; a full queue drops
//!   the message (counted): a lost ghost batch is replaced by the next tick's, and a lost
//!   handoff message leaves the player to be loaded from the store when its gateway attaches it
//!   (the store already names its new owner);
//! - `[zlink-3]` a link that drops is made again (with a pause); messages meanwhile are dropped,
//!   counted, as in `[zlink-2]`;
//! - `[handoff-7]` a crossing player's inputs do not wait for this zone's ticks: from its
//!   departure the link tasks hold them, the committer sends them after the handoff on the same
//!   link, and for `RELAY_FOR` after it the link tasks send later ones straight to the new
//!   zone; a handoff that fails gives the held inputs back to the player.

use crate::border::Departure;
use crate::border_crates::CrateDeparture;
use crate::links::{ToZone, forward};
use pwn_net::{ClientHello, Conn, NetClient};
use pwn_partitioner::ZoneId;
use pwn_partitioner::client::WorldClient;
use pwn_proto::Message;
use pwn_sim::EntityId;
use pwn_store::Store;
use pwn_store::keys::CellKey;
use pwn_store::ownership::{Handoff, OwnershipError};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Inputs a departing player's relay holds until its handoff commits.
pub const RELAY_HELD_MAX: usize = 32;
/// How long inputs that reach this zone after a player's handoff are relayed to its new zone.
pub const RELAY_FOR: Duration = Duration::from_secs(2);

/// What happens to a player's inputs arriving on a link while it crosses a border
/// (`[handoff-7]`): held while its handoff commits, then sent straight to its new zone by the
/// link task that received them, without waiting for a tick of this zone.
pub(crate) enum Relay {
    /// The handoff is being committed: inputs wait here.
    Hold(Vec<pwn_proto::WireInput>),
    /// Committed: inputs go to the new zone's link queue until the deadline.
    To(mpsc::Sender<Message>, Instant),
}

/// Players whose inputs are relayed, shared by the link tasks, the tick and the committer.
pub(crate) type Relays = Arc<std::sync::Mutex<HashMap<u64, Relay>>>;

fn relay_batch(peer: &mpsc::Sender<Message>, player: u64, inputs: &[pwn_proto::WireInput]) {
    for chunk in inputs.chunks(pwn_proto::codec::INPUT_REDUNDANCY_MAX) {
        let batch = pwn_proto::InputBatch { ack_tick: 0, inputs: chunk.to_vec() };
        if let Ok(payload) = pwn_proto::encode_datagram(&Message::Inputs(batch))
            && peer.try_send(Message::Routed(pwn_proto::Routed { player, payload })).is_err()
        {
            metrics::counter!(metric::PEER_DROPPED).increment(1);
        }
    }
}

/// A link task's inputs for `player`: `true` if the relay took them (`[handoff-7]`).
pub(crate) fn relay_inputs(relays: &Relays, player: u64, batch: &pwn_proto::InputBatch) -> bool {
    let Ok(mut map) = relays.lock() else { return false };
    match map.get_mut(&player) {
        Some(Relay::Hold(held)) => {
            let room = RELAY_HELD_MAX.saturating_sub(held.len());
            held.extend(batch.inputs.iter().take(room).copied());
            true
        }
        Some(Relay::To(peer, until)) if Instant::now() < *until => {
            relay_batch(peer, player, &batch.inputs);
            true
        }
        Some(Relay::To(..)) => {
            map.remove(&player);
            false
        }
        None => false,
    }
}

/// Messages waiting per outgoing zone link.
pub const PEER_QUEUE_MAX: usize = 4_096;
/// Store jobs waiting for the committer.
pub const COMMIT_QUEUE_MAX: usize = 4_096;
/// How often a node beats.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(500);
/// Pause before a dropped zone link is made again.
pub const RELINK_PAUSE: Duration = Duration::from_millis(200);

/// Metric names of the mesh links.
pub mod metric {
    /// Messages to neighbours dropped (full queue or broken link).
    pub const PEER_DROPPED: &str = "pwn_zone_peer_messages_dropped_total";
    /// Messages from neighbours refused (unknown sender, stale, not ours).
    pub const PEER_REFUSED: &str = "pwn_zone_peer_messages_refused_total";
    /// Handoffs committed, by direction (`dir` = out or in).
    pub const HANDOFFS: &str = "pwn_zone_handoffs_total";
    /// Handoffs that failed to commit (the player stayed).
    pub const HANDOFFS_FAILED: &str = "pwn_zone_handoffs_failed_total";
    /// Time from a departure to its commit (milliseconds).
    pub const HANDOFF_COMMIT_MS: &str = "pwn_zone_handoff_commit_ms";
    /// Ghosts held.
    pub const GHOSTS: &str = "pwn_zone_ghosts";
    /// Cells lost (lease lapsed or moved) while serving them.
    pub const CELLS_LOST: &str = "pwn_zone_cells_lost_total";
    /// Heartbeats the world server did not answer.
    pub const HEARTBEATS_FAILED: &str = "pwn_zone_heartbeats_failed_total";
}

/// Beats to the world server every `HEARTBEAT_INTERVAL` until the inbox closes; each answer
/// goes to the tick with the time (on `clock`) its heartbeat was sent.
pub(crate) async fn heartbeats(
    world: Arc<WorldClient>,
    (node, token): (ZoneId, [u8; 16]),
    clock: Instant,
    stats: Arc<crate::server::ZoneStats>,
    inbox: mpsc::Sender<ToZone>,
) {
    let mut every = tokio::time::interval(HEARTBEAT_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let beat = pwn_partitioner::wire::Heartbeat {
            node: node.0,
            token,
            players: stats.players.load(std::sync::atomic::Ordering::Relaxed).min(u64::from(u32::MAX)) as u32,
            ..Default::default()
        };
        let sent_ms = clock.elapsed().as_millis() as u64;
        match world.heartbeat(beat).await {
            Ok(answer) => {
                if inbox.send(ToZone::Map { sent_ms, answer }).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                metrics::counter!(metric::HEARTBEATS_FAILED).increment(1);
                tracing::warn!(node = %node, error = %e, "heartbeat not answered; leases lapse unless the next one is");
            }
        }
    }
}

/// Outgoing links to neighbour zones (`[zlink-2]`, `[zlink-3]`).
pub(crate) struct Peers {
    me: ZoneId,
    net: Arc<NetClient>,
    hello: ClientHello,
    service_key: [u8; 32],
    rt: tokio::runtime::Handle,
    links: HashMap<ZoneId, (String, mpsc::Sender<Message>, tokio::task::JoinHandle<()>)>,
}

impl Peers {
    pub(crate) fn new(
        me: ZoneId,
        net: Arc<NetClient>,
        hello: ClientHello,
        service_key: [u8; 32],
        rt: tokio::runtime::Handle,
    ) -> Self {
        Self { me, net, hello, service_key, rt, links: HashMap::new() }
    }

    /// Keeps one link to each node in `addrs` other than `me` (new addresses, new links; gone
    /// nodes, links closed).
    pub(crate) fn sync(&mut self, me: ZoneId, addrs: &BTreeMap<ZoneId, String>) {
        self.links.retain(|node, (addr, _, task)| {
            let keep = addrs.get(node) == Some(addr);
            if !keep {
                task.abort();
            }
            keep
        });
        for (node, addr) in addrs {
            if *node == me || self.links.contains_key(node) {
                continue;
            }
            let Ok(sock) = addr.parse::<SocketAddr>() else {
                tracing::warn!(node = %node, %addr, "neighbour address does not parse");
                continue;
            };
            let (tx, rx) = mpsc::channel(PEER_QUEUE_MAX);
            let who = (self.me, self.service_key);
            let task = self.rt.spawn(peer_link(self.net.clone(), self.hello.clone(), who, sock, rx));
            self.links.insert(*node, (addr.clone(), tx, task));
        }
    }

    /// The queue of the link to `node`, for a sender off the tick (the committer).
    pub(crate) fn queue(&self, node: ZoneId) -> Option<mpsc::Sender<Message>> {
        self.links.get(&node).map(|(_, tx, _)| tx.clone())
    }

    /// Queues `m` for `node` (`[zlink-2]`).
    pub(crate) fn send(&self, node: ZoneId, m: Message) {
        match self.links.get(&node) {
            Some((_, tx, _)) if tx.try_send(m).is_ok() => {}
            _ => metrics::counter!(metric::PEER_DROPPED).increment(1),
        }
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        for (_, _, task) in self.links.values() {
            task.abort();
        }
    }
}

async fn peer_link(
    net: Arc<NetClient>,
    hello: ClientHello,
    (me, key): (ZoneId, [u8; 32]),
    addr: SocketAddr,
    mut queue: mpsc::Receiver<Message>,
) {
    loop {
        let conn = match net.connect(addr, "localhost", &hello).await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::debug!(%addr, error = %e, "cannot link to a neighbour yet");
                // Whatever waits meanwhile is stale by the time the link is back.
                while queue.try_recv().is_ok() {
                    metrics::counter!(metric::PEER_DROPPED).increment(1);
                }
                tokio::time::sleep(RELINK_PAUSE).await;
                continue;
            }
        };
        let introduced =
            pwn_net::service_auth::prove(&conn.tx, key).await.is_ok() && conn.tx.send(&introduction(me)).await.is_ok();
        if !introduced {
            tokio::time::sleep(RELINK_PAUSE).await;
            continue;
        }
        tracing::info!(%addr, "linked to a neighbour zone");
        let Conn { tx, mut rx, .. } = conn;
        // The neighbour says nothing on this link; its end is the link's end.
        let closed = tokio::spawn(async move { while let Ok(Some(_)) = rx.recv().await {} });
        while let Some(m) = queue.recv().await {
            if closed.is_finished() || tx.send(&m).await.is_err() {
                metrics::counter!(metric::PEER_DROPPED).increment(1);
                break;
            }
        }
        closed.abort();
        if queue.is_closed() {
            return;
        }
        tokio::time::sleep(RELINK_PAUSE).await;
    }
}

/// The topic of the `Notify` a zone introduces itself with on its links (its node id, 8 bytes
/// little-endian), right after the service key (`[zlink-4]`).
pub const PEER_NODE_TOPIC: u16 = 1;

fn introduction(me: ZoneId) -> Message {
    Message::Notify(pwn_proto::Notify { topic: PEER_NODE_TOPIC, body: me.0.to_le_bytes().to_vec() })
}

/// A neighbour's link (`[zlink-1]`, `[zlink-4]`): its messages go to the tick with the node it
/// said it is; a handoff waits for room.
pub(crate) async fn serve_peer(conn: Conn, inbox: mpsc::Sender<ToZone>, service_key: Option<[u8; 32]>) {
    let Conn { tx, mut rx, peer, .. } = conn;
    if !pwn_net::service_auth::expect(&tx, &mut rx, service_key).await {
        tracing::warn!(remote = %peer.remote, "refused a zone link without the service key");
        return;
    }
    let node = match tokio::time::timeout(pwn_net::service_auth::SERVICE_AUTH_TIMEOUT, rx.recv()).await {
        Ok(Ok(Some(Message::Notify(n)))) if n.topic == PEER_NODE_TOPIC => {
            <[u8; 8]>::try_from(n.body.as_slice()).ok().map(|b| ZoneId(u64::from_le_bytes(b)))
        }
        _ => None,
    };
    let Some(from) = node else {
        tracing::warn!(remote = %peer.remote, "refused a zone link that did not say which node it is");
        tx.refuse(pwn_proto::RefuseCode::ProtocolViolation, "a zone link starts with its node id".into()).await;
        return;
    };
    while let Ok(Some(message)) = rx.recv().await {
        let arrived = Instant::now();
        match message {
            // Handoffs wait for room: one dropped would leave its entity to the store (a player,
            // a crate) or lose it (a projectile).
            Message::HandoffPlayer(_) | Message::HandoffCrate(_) | Message::HandoffProjectile(_) => {
                if inbox.send(ToZone::Peer { from, message, arrived }).await.is_err() {
                    return;
                }
            }
            // Inputs of a player this link's zone handed over (`[handoff-5]`, checked by the
            // tick).
            Message::Ghosts(_)
            | Message::CrateGhosts(_)
            | Message::GhostHit(_)
            | Message::BorderChat(_)
            | Message::BorderEvent(_)
            | Message::Routed(_) => forward(&inbox, ToZone::Peer { from, message, arrived }),
            _ => metrics::counter!(metric::PEER_REFUSED).increment(1),
        }
    }
    // Keep the connection's sending side until the end, so the neighbour sees a clean close.
    drop(tx);
}

/// Who hears of a committed handoff straight from the committer, so the taking zone can
/// simulate the player from the very next tick (`[handoff-6]`).
pub(crate) struct Notify {
    /// The link to the taking zone.
    pub(crate) peer: Option<mpsc::Sender<Message>>,
    /// The player's gateway link, and the taking zone's address for its `Rehome`.
    pub(crate) gateway: Option<(pwn_net::ConnTx, String)>,
    pub(crate) rt: tokio::runtime::Handle,
    /// The inputs relay (`[handoff-7]`).
    pub(crate) relays: Relays,
}

/// Work for the committer.
pub(crate) enum Job {
    /// Commit a departure, fenced by the giving cell's epoch.
    Handoff { departure: Box<Departure>, from_epoch: u64, queued: Instant, notify: Option<Notify> },
    /// Claim a player nobody owns for a cell of this zone.
    Claim { player: EntityId, cell: CellKey, epoch: u64 },
    /// Read (and claim) the crates of a cell this zone now serves (`crate::persist::load_cell_crates`).
    LoadCrates {
        cell: CellKey,
        epoch: u64,
        rect: pwn_partitioner::Rect,
        placed: Arc<Vec<(EntityId, glam::Vec3)>>,
        /// The tick it was asked at.
        tick: u64,
    },
    /// Read an object a neighbour says it handed over, before adopting it (`[zobj-7]`).
    AdoptObject { handoff: pwn_proto::HandoffObject },
    /// Commit a dynamic object's change of hands (`crate::objects` `[zobj-7]`).
    ObjectDeparture {
        departure: crate::objects::ObjectDeparture,
        from_cells: Vec<(CellKey, u64)>,
        bounds: pwn_store::objects::Bounds,
    },
    /// Commit a crate's departure, fenced by the giving cell's epoch.
    CrateHandoff {
        departure: CrateDeparture,
        from_epoch: u64,
        from_rect: pwn_partitioner::Rect,
        bounds: crate::persist::SimBounds,
    },
}

/// What the committer did.
pub(crate) enum Committed {
    Handoff {
        departure: Departure,
        result: Result<Handoff, OwnershipError>,
    },
    Claim {
        player: EntityId,
        cell: CellKey,
        result: Result<(), OwnershipError>,
    },
    Crates {
        cell: CellKey,
        epoch: u64,
        tick: u64,
        result: Result<CellCrates, OwnershipError>,
        /// The cell's world objects (`crate::objects` `[zobj-5]`).
        objects: Result<Vec<(u64, pwn_store::objects::ObjectRecord)>, pwn_store::StoreError>,
    },
    ObjectDeparture {
        departure: crate::objects::ObjectDeparture,
        result: Result<pwn_store::objects::ObjectRecord, pwn_proto::EditOutcome>,
    },
    AdoptObject {
        handoff: pwn_proto::HandoffObject,
        stored: Result<Option<pwn_store::objects::ObjectRecord>, pwn_store::StoreError>,
    },
    CrateHandoff {
        departure: CrateDeparture,
        result: Result<Handoff, OwnershipError>,
    },
}

/// A cell's crates as the store holds them, each with its state if it was ever stored.
pub(crate) type CellCrates = Vec<(EntityId, Option<crate::persist::CrateState>)>;

/// `[handoff-6]`: the taking zone and the gateway hear of a committed handoff at once, not a
/// tick later when the tick thread would read the outcome.
fn tell(d: &Departure, n: Notify) {
    if let Some(peer) = &n.peer {
        if peer.try_send(Message::HandoffPlayer(d.message())).is_err() {
            metrics::counter!(metric::PEER_DROPPED).increment(1);
        }
        // `[handoff-7]`: what the relay held follows the handoff on the same link, and from now
        // on inputs go straight there.
        if let Ok(mut map) = n.relays.lock() {
            let to = Relay::To(peer.clone(), Instant::now() + RELAY_FOR);
            if let Some(Relay::Hold(held)) = map.insert(d.player.0, to) {
                relay_batch(peer, d.player.0, &held);
            }
        }
    }
    if let Some((link, addr)) = n.gateway {
        let m = Message::Rehome(pwn_proto::Rehome { player: d.player.0, node: d.node.0, addr });
        n.rt.spawn(async move {
            let _ = link.send(&m).await;
        });
    }
}

/// The committer: one thread running store jobs in order (`std` thread: the store blocks).
pub(crate) struct Committer {
    jobs: std::sync::mpsc::SyncSender<Job>,
}

impl Committer {
    pub(crate) fn start(store: Store, inbox: mpsc::Sender<ToZone>) -> std::io::Result<Self> {
        let (jobs, rx) = std::sync::mpsc::sync_channel::<Job>(COMMIT_QUEUE_MAX);
        std::thread::Builder::new().name("pwn-zone-commit".into()).spawn(move || {
            while let Ok(job) = rx.recv() {
                let done = match job {
                    Job::Handoff { departure, from_epoch, queued, notify } => {
                        let result = crate::persist::commit_departure(&store, &departure, from_epoch);
                        metrics::histogram!(metric::HANDOFF_COMMIT_MS).record(queued.elapsed().as_secs_f64() * 1e3);
                        // Not handed over: the tick puts the player back and takes what the
                        // relay held (`[handoff-7]`).
                        if let (Ok(_), Some(n)) = (&result, notify) {
                            tell(&departure, n);
                        }
                        Committed::Handoff { departure: *departure, result }
                    }
                    Job::Claim { player, cell, epoch } => {
                        let result = crate::persist::claim_player(&store, player, cell, epoch);
                        Committed::Claim { player, cell, result }
                    }
                    Job::LoadCrates { cell, epoch, rect, placed, tick } => {
                        let result = crate::persist::load_cell_crates(&store, cell, epoch, rect, &placed);
                        let objects = crate::objects::read_cell(&store, cell);
                        Committed::Crates { cell, epoch, tick, result, objects }
                    }
                    Job::AdoptObject { handoff } => {
                        let stored = store.transact(|t| pwn_store::objects::get(t, handoff.object.id));
                        Committed::AdoptObject { handoff, stored }
                    }
                    Job::ObjectDeparture { departure, from_cells, bounds } => {
                        let result = crate::objects::commit_departure(&store, &departure, &from_cells, &bounds);
                        Committed::ObjectDeparture { departure, result }
                    }
                    Job::CrateHandoff { departure, from_epoch, from_rect, bounds } => {
                        let result =
                            crate::persist::commit_crate_departure(&store, &departure, from_epoch, from_rect, &bounds);
                        Committed::CrateHandoff { departure, result }
                    }
                };
                // The tick must hear of every outcome: wait for room (this is not the tick).
                if inbox.blocking_send(ToZone::Committed(Box::new(done))).is_err() {
                    return;
                }
            }
        })?;
        Ok(Self { jobs })
    }

    /// Queues a job; `false` if the queue is full (the caller puts things back as they were).
    pub(crate) fn submit(&self, job: Job) -> bool {
        self.jobs.try_send(job).is_ok()
    }
}
