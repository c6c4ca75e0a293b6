//! The zone node's async shell: accepts players, gateways and neighbour zones over pwn-net,
//! feeds their messages to the [`Zone`] core through the tick thread (`tick`), and keeps the
//! store writer (`persister`) and, in a partitioned world, the mesh links (`crate::mesh_link`)
//! beside it.
//!
//! The tick never waits on the network: connection tasks hand messages to the tick through a
//! bounded inbox (full means dropped and counted), snapshots go out as datagrams (queued, never
//! awaited), and reliable events go through a bounded per-player queue drained by a writer task.

mod edits;
mod mesh_entities;
mod mesh_tick;
mod persister;
mod tick;

use crate::items::Items;
use crate::links::{ToZone, serve_direct, serve_gateway};
use crate::persist::SimBounds;
use crate::territory::{BorderConfig, Territory};
use crate::zone::Zone;
use pwn_net::{ClientHello, NetClient, NetServer};
use pwn_partitioner::client::WorldClient;
use pwn_partitioner::lease::HeldLeases;
use pwn_partitioner::{Quadtree, ZoneId};
use pwn_proto::{PeerRole, RefuseCode};
use pwn_sim::EntityId;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Messages waiting for the tick, from all connections together.
pub const INBOX_MAX: usize = 65_536;
/// Messages the tick takes from the inbox per tick, so a flood cannot stretch a tick.
pub const INBOX_PER_TICK_MAX: usize = 16_384;

/// Metric names of the zone node.
pub mod metric {
    /// Tick duration histogram (milliseconds).
    pub const TICK_MS: &str = "pwn_zone_tick_ms";
    /// The simulation step's part of a tick (milliseconds).
    pub const TICK_STEP_MS: &str = "pwn_zone_tick_step_ms";
    /// Building players' views (interest, snapshots), part of a tick (milliseconds).
    pub const TICK_VIEWS_MS: &str = "pwn_zone_tick_views_ms";
    /// Players connected.
    pub const PLAYERS: &str = "pwn_zone_players";
    /// Snapshot bytes sent (all players).
    pub const SNAPSHOT_BYTES: &str = "pwn_zone_snapshot_bytes_total";
    /// Messages dropped because the inbox was full.
    pub const INBOX_DROPPED: &str = "pwn_zone_inbox_dropped_total";
    /// Events dropped because a player's queue was full.
    pub const EVENTS_DROPPED: &str = "pwn_zone_events_dropped_total";
    /// Inputs that arrived too late or were missing, per tick.
    pub const INPUTS_MISSING: &str = "pwn_zone_inputs_missing_total";
    /// Checkpoints written.
    pub const CHECKPOINTS: &str = "pwn_zone_checkpoints_total";
    /// Time from taking a checkpoint's state to its commit (milliseconds).
    pub const CHECKPOINT_LAG_MS: &str = "pwn_zone_checkpoint_lag_ms";
    /// Bytes sent to each client over the last second (one sample per client per second).
    pub const CLIENT_DOWN_BYTES_PER_S: &str = "pwn_zone_client_down_bytes_per_s";
    /// Departing players not saved because the queue to the store was full.
    pub const DEPARTURES_DROPPED: &str = "pwn_zone_departures_dropped_total";
    /// Entities in the simulation (characters, crates, projectiles).
    pub const ENTITIES: &str = "pwn_zone_entities";
    /// Time from an input reaching the zone process to the first snapshot acknowledging it
    /// being queued (milliseconds).
    pub const INPUT_ACK_MS: &str = "pwn_zone_input_ack_ms";
}

/// Where and how often the zone checkpoints its entities.
#[derive(Clone, Debug)]
pub struct Persistence {
    /// The store.
    pub store: pwn_store::Store,
    /// The cell the zone holds (the whole world until the partitioner splits it).
    pub cell: pwn_store::keys::CellKey,
    /// The lease epoch every write is fenced by.
    pub epoch: u64,
    /// Ticks between checkpoints (30: once a second at 30 Hz).
    pub interval_ticks: u32,
}

/// Players leaving, waiting to be saved (`[persist-4]`); a full queue means the store is far
/// behind, and the player's last checkpoint stands (counted).
pub const DEPARTURES_QUEUE_MAX: usize = 4_096;

/// Counters a caller (a test, a benchmark) can read while the zone runs.
#[derive(Debug, Default)]
pub struct ZoneStats {
    /// Ticks run.
    pub ticks: AtomicU64,
    /// Players connected now.
    pub players: AtomicU64,
    /// Ticks whose work took longer than the tick period.
    pub overruns: AtomicU64,
    /// Inputs that missed their tick (or were skipped), all players.
    pub inputs_missed: AtomicU64,
    /// Durations of the ticks since the last [`ZoneStats::take_tick_ms`], milliseconds (at most
    /// `TICK_SAMPLES_MAX`; older ones are dropped if nobody takes them).
    pub tick_ms: std::sync::Mutex<Vec<f32>>,
    /// Time from an input reaching the zone process to the queueing of the first snapshot
    /// that acknowledges it, milliseconds, as a histogram of `INPUT_ACK_BUCKETS` buckets of
    /// 1 ms (the last holds everything beyond), since the last
    /// [`ZoneStats::take_input_ack_ms`].
    pub input_ack_ms: std::sync::Mutex<Vec<u64>>,
    /// At the borders, since the start (a partitioned world; copied from the zone core once a
    /// second).
    pub border: std::sync::Mutex<crate::border::BorderCounters>,
}

/// Buckets of [`ZoneStats::input_ack_ms`] (1 ms each).
pub const INPUT_ACK_BUCKETS: usize = 256;

/// Tick durations kept for [`ZoneStats::take_tick_ms`].
pub const TICK_SAMPLES_MAX: usize = 4_096;

impl ZoneStats {
    /// The tick durations recorded since the last call.
    pub fn take_tick_ms(&self) -> Vec<f32> {
        self.tick_ms.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default()
    }

    /// Counts input-to-acknowledgement times (milliseconds).
    pub fn record_input_acks(&self, ms: impl Iterator<Item = f64>) {
        if let Ok(mut h) = self.input_ack_ms.lock() {
            h.resize(INPUT_ACK_BUCKETS, 0);
            // One registry lookup per tick, not per input.
            let metric = metrics::histogram!(metric::INPUT_ACK_MS);
            for m in ms {
                metric.record(m);
                h[(m.max(0.0) as usize).min(INPUT_ACK_BUCKETS - 1)] += 1;
            }
        }
    }

    /// The input-to-acknowledgement histogram since the last call (`INPUT_ACK_BUCKETS` 1 ms
    /// buckets, or empty if nothing was recorded).
    pub fn take_input_ack_ms(&self) -> Vec<u64> {
        self.input_ack_ms.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default()
    }
}

/// What a zone node serving part of a partitioned world needs (`pwn zone --world-server ADDR`).
pub struct MeshOptions {
    /// What the world server answered when this node registered.
    pub registered: pwn_partitioner::wire::Registered,
    /// The world server.
    pub world: Arc<WorldClient>,
    /// The client endpoint for links to neighbour zones (it presents the service certificate).
    pub peers: Arc<NetClient>,
    /// How this node introduces itself to neighbours.
    pub hello: ClientHello,
    /// Ghost margin and hysteresis.
    pub border: BorderConfig,
    /// The store.
    pub store: pwn_store::Store,
    /// Ticks between checkpoints.
    pub interval_ticks: u32,
}

impl std::fmt::Debug for MeshOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshOptions").field("node", &self.registered.node).finish_non_exhaustive()
    }
}

/// How a zone node runs.
#[derive(Debug, Default)]
pub struct ZoneOptions {
    /// Players may connect directly, with ids counting up from this (development, tests).
    pub direct_players: Option<u64>,
    /// The deployment's service key (gateways and neighbour zones prove it).
    pub service_key: Option<[u8; 32]>,
    /// A zone holding the whole world: its one cell's lease and checkpoints.
    pub persistence: Option<Persistence>,
    /// A zone serving part of a partitioned world.
    pub mesh: Option<MeshOptions>,
}

/// Runs a zone node on `net` until `shutdown` completes. Gateways link with the `Gateway`
/// role, prove `service_key` (without one, none can link), and attach their players by id; with `direct_players` set, players may also connect
/// directly (development, tests, load tests without a gateway) and get ids counting up from it.
pub async fn run(
    net: NetServer,
    zone: Zone,
    direct_players: Option<u64>,
    service_key: Option<[u8; 32]>,
    persistence: Option<Persistence>,
    stats: Arc<ZoneStats>,
    shutdown: impl Future<Output = ()>,
) {
    let opts = ZoneOptions { direct_players, service_key, persistence, mesh: None };
    run_with(net, zone, opts, stats, shutdown).await
}

/// Runs a zone node as `opts` says until `shutdown` completes.
pub async fn run_with(
    mut net: NetServer,
    mut zone: Zone,
    opts: ZoneOptions,
    stats: Arc<ZoneStats>,
    shutdown: impl Future<Output = ()>,
) {
    let ZoneOptions { direct_players, service_key, persistence, mesh } = opts;
    let (inbox_tx, inbox) = mpsc::channel::<ToZone>(INBOX_MAX);
    let store = persistence.as_ref().map(|p| p.store.clone()).or_else(|| mesh.as_ref().map(|m| m.store.clone()));
    let period = Duration::from_secs_f32(zone.sim().config().dt_s());

    // The store writer and the items worker.
    let (checkpoint_tx, checkpoint_rx) = tokio::sync::watch::channel(None);
    let (leaving_tx, leaving_rx) = mpsc::channel(DEPARTURES_QUEUE_MAX);
    let items_persistence = match (&persistence, &mesh) {
        (Some(p), _) => Some(p.clone()),
        // In a partitioned world every move is fenced by its players' owners (`[zitem-5]`).
        (None, Some(m)) => Some(Persistence {
            store: m.store.clone(),
            cell: pwn_store::keys::CellKey::ROOT,
            epoch: 0,
            interval_ticks: m.interval_ticks,
        }),
        (None, None) => None,
    };
    let items = items_persistence.map(Items::start);
    let persister = store
        .clone()
        .map(|s| tokio::spawn(persister::persist_loop(s, SimBounds::of(zone.sim()), checkpoint_rx, leaving_rx)));
    let interval_ticks = persistence
        .as_ref()
        .map(|p| p.interval_ticks)
        .or_else(|| mesh.as_ref().map(|m| m.interval_ticks))
        .map_or(0, |t| u64::from(t.max(1)));

    // The mesh: the world clock, heartbeats, neighbours, the committer.
    let mut heartbeat = None;
    let (clock, mesh_tick) = match mesh {
        Some(m) => {
            let clock = tick::WorldClock::from_unix_start(m.registered.world_start_unix_ms, period);
            zone.join_clock(clock.current());
            // `[crate-1]`: crates are simulated only once their cell's owner loads them.
            zone.partition_crates();
            let placed: Vec<(EntityId, glam::Vec3)> = zone
                .sim()
                .desc()
                .crates
                .iter()
                .enumerate()
                .map(|(i, c)| (EntityId::world_entity(i as u32), glam::Vec3::from(c.center_m)))
                .collect();
            let me = ZoneId(m.registered.node);
            let leaves = m.registered.leaves.iter().map(|c| (*c).into());
            let tree = match Quadtree::new(m.registered.origin_m, m.registered.size_m, leaves) {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(error = %e, "the world server sent an invalid partition");
                    return;
                }
            };
            let lease_clock = Instant::now();
            heartbeat = Some(tokio::spawn(crate::mesh_link::heartbeats(
                m.world.clone(),
                (me, m.registered.token),
                lease_clock,
                stats.clone(),
                inbox_tx.clone(),
            )));
            let committer = match crate::mesh_link::Committer::start(m.store.clone(), inbox_tx.clone()) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the handoff committer");
                    return;
                }
            };
            let key = service_key.unwrap_or([0; 32]);
            let rt = tokio::runtime::Handle::current();
            let mesh_tick = mesh_tick::MeshTick {
                me,
                territory: Territory::new(tree, me, m.border),
                held: HeldLeases::default(),
                lease_clock,
                addrs: BTreeMap::new(),
                peers: crate::mesh_link::Peers::new(me, m.peers.clone(), m.hello.clone(), key, rt),
                committer,
                parked: HashMap::new(),
                forwarded: HashMap::new(),
                arrived_from: HashMap::new(),
                unbound: HashMap::new(),
                loaded: HashSet::new(),
                placed_crates: Arc::new(placed),
            };
            (clock, Some(mesh_tick))
        }
        None => (tick::WorldClock { origin: Instant::now(), period }, None),
    };
    let meshed = mesh_tick.is_some();

    let relays: crate::mesh_link::Relays = Arc::default();
    let accept_relays = relays.clone();
    let next_id = Arc::new(AtomicU64::new(direct_players.unwrap_or(0)));
    let accept_inbox = inbox_tx.clone();
    let accept_store = store.clone();
    let acceptor = tokio::spawn(async move {
        while let Some(incoming) = net.accept().await {
            let inbox = accept_inbox.clone();
            let next_id = next_id.clone();
            let store = accept_store.clone();
            let relays = accept_relays.clone();
            tokio::spawn(async move {
                match incoming.handshake().await {
                    Ok(conn) if conn.peer.role == PeerRole::Gateway => {
                        serve_gateway(conn, inbox, store, service_key, relays).await
                    }
                    Ok(conn) if conn.peer.role == PeerRole::Zone && meshed => {
                        crate::mesh_link::serve_peer(conn, inbox, service_key).await
                    }
                    Ok(conn) if conn.peer.role != PeerRole::Client => {
                        let message = format!("a {:?} is not served here", conn.peer.role);
                        conn.tx.refuse(RefuseCode::ProtocolViolation, message).await;
                    }
                    Ok(conn) if direct_players.is_none() => {
                        conn.tx.refuse(RefuseCode::Unavailable, "players connect through a gateway".into()).await;
                    }
                    Ok(conn) => {
                        let player = EntityId(next_id.fetch_add(1, Ordering::Relaxed));
                        tracing::info!(player = %player, remote = %conn.peer.remote, "player connected");
                        serve_direct(conn, player, inbox, relays).await;
                    }
                    Err(e) => tracing::debug!(error = %e, "handshake failed"),
                }
            });
        }
    });
    drop(inbox_tx);

    let bounds = SimBounds::of(zone.sim());
    let edits = store.clone().map(|s| {
        edits::Edits::start(s, pwn_store::objects::Bounds { origin_m: bounds.origin_m, size_m: bounds.size_m })
    });
    let (snapshots_out, batches) = mpsc::channel(tick::SNAPSHOT_BATCHES_MAX);
    tokio::spawn(tick::send_snapshots(batches));
    let tick_loop = tick::TickLoop {
        zone,
        stats,
        inbox,
        rt: tokio::runtime::Handle::current(),
        clock,
        players: HashMap::new(),
        bytes_sent: HashMap::new(),
        persistent: HashSet::new(),
        departed: VecDeque::new(),
        items,
        edits,
        checkpoints: store.is_some().then_some(checkpoint_tx),
        leaving: store.is_some().then_some(leaving_tx),
        interval_ticks,
        single: persistence.as_ref().map(|p| (p.cell, p.epoch)),
        mesh: mesh_tick,
        inputs_epoch: Instant::now(),
        relays,
        snapshots_out,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = stop.clone();
    let ticker =
        match std::thread::Builder::new().name("pwn-zone-tick".into()).spawn(move || tick_loop.run(thread_stop)) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "cannot start the tick thread");
                return;
            }
        };
    shutdown.await;
    stop.store(true, Ordering::Relaxed);
    acceptor.abort();
    if let Some(h) = heartbeat {
        h.abort();
    }
    let _ = tokio::task::spawn_blocking(move || ticker.join()).await;
    if let Some(p) = persister {
        let _ = p.await;
    }
}
