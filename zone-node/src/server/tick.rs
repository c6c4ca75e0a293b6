//! The tick thread: takes what connections handed in, advances the zone core one tick on the
//! world clock, and sends each tick's snapshots and events. It runs on its own thread, never on
//! the IO runtime, and never waits on the network or the store: everything slow is handed to
//! tasks and workers through bounded queues.
//!
//! In a partitioned world it also keeps the node's leases (stopping to serve a cell the moment
//! its lease lapses on the node's own clock), hands departing players to the committer and, once
//! committed, to their new zone and gateway, ghosts its players to its neighbours and applies
//! theirs (`crate::border`, `crate::mesh_link`).

use super::persister::{Checkpoint, Leaving};
use super::{ZoneStats, metric};
use crate::items::{ItemOp, Items, OwnersFence, check_give};
use crate::links::{Sink, ToZone};
use crate::mesh_link::{Committed, Committer, Job, Peers};
use crate::persist::{CellCheckpoint, PlayerState, crate_states};
use crate::territory::Territory;
use crate::zone::Zone;
use pwn_partitioner::lease::HeldLeases;
use pwn_partitioner::{Epoch, ZoneId};
use pwn_proto::{GameEvent, Message, RefuseCode};
use pwn_sim::EntityId;
use pwn_store::keys::CellKey;
use pwn_store::ownership::{Handoff, OwnershipError};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Ticks a zone may fall behind the world clock before it skips ahead to it (counted).
pub const CATCH_UP_TICKS_MAX: u64 = 5;
/// Ticks a gateway's attach of a handed-over player waits for the handoff itself before the
/// player is placed from the store instead.
pub const HANDOFF_WAIT_TICKS: u64 = 15;
/// Ticks inputs that reach this zone after a player's handoff are forwarded to its new zone.
pub const FORWARD_INPUTS_TICKS: u64 = 60;
/// Events kept for a player this zone simulates before its gateway's link arrives.
pub const UNBOUND_EVENTS_MAX: usize = 64;

/// A gateway's attach waiting for its handoff.
pub(crate) struct Parked {
    sink: Sink,
    events: mpsc::Sender<GameEvent>,
    saved: Option<PlayerState>,
    owner: Option<CellKey>,
    link: u64,
    until_tick: u64,
}

/// The world clock as this process sees it: tick `n` starts at `origin + n * period`.
#[derive(Copy, Clone, Debug)]
pub(crate) struct WorldClock {
    pub(crate) origin: Instant,
    pub(crate) period: Duration,
}

impl WorldClock {
    /// The clock of a world whose tick 0 started at `start_unix_ms`.
    pub(crate) fn from_unix_start(start_unix_ms: u64, period: Duration) -> Self {
        let now_unix_ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let now = Instant::now();
        let since = Duration::from_millis(now_unix_ms.saturating_sub(start_unix_ms));
        Self { origin: now.checked_sub(since).unwrap_or(now), period }
    }

    /// The tick running now.
    pub(crate) fn current(&self) -> u64 {
        (self.origin.elapsed().as_nanos() / self.period.as_nanos().max(1)) as u64
    }

    /// When tick `n` starts.
    pub(crate) fn start_of(&self, n: u64) -> Instant {
        self.origin + self.period.saturating_mul(n.min(u64::from(u32::MAX)) as u32)
    }
}

/// The part of the tick loop that exists in a partitioned world.
pub(crate) struct MeshTick {
    pub(crate) me: ZoneId,
    pub(crate) territory: Territory,
    pub(crate) held: HeldLeases,
    /// The clock leases are measured on (the heartbeats' clock).
    pub(crate) lease_clock: Instant,
    pub(crate) addrs: BTreeMap<ZoneId, String>,
    pub(crate) peers: Peers,
    pub(crate) committer: Committer,
    /// Attaches of handed-over players waiting for their handoff.
    pub(crate) parked: HashMap<EntityId, Parked>,
    /// Players handed to another zone recently, where their late inputs go (`[handoff-5]`).
    pub(crate) forwarded: HashMap<EntityId, (ZoneId, u64)>,
    /// Players handed here recently, by whom and until which tick their inputs may come from
    /// that zone (`[zlink-4]`).
    pub(crate) arrived_from: HashMap<EntityId, (ZoneId, u64)>,
    /// Events for players simulated here whose gateway link has not arrived yet.
    pub(crate) unbound: HashMap<EntityId, Vec<GameEvent>>,
    /// Cells whose stored crates are loaded (only these are checkpointed).
    pub(crate) loaded: HashSet<CellKey>,
}

impl MeshTick {
    fn now_ms(&self) -> u64 {
        self.lease_clock.elapsed().as_millis() as u64
    }

    fn serving(&self, cell: CellKey) -> Option<Epoch> {
        self.held.serving(cell, self.now_ms())
    }
}

/// Everything the tick thread owns.
pub(crate) struct TickLoop {
    pub(crate) zone: Zone,
    pub(crate) stats: Arc<ZoneStats>,
    pub(crate) inbox: mpsc::Receiver<ToZone>,
    pub(crate) rt: tokio::runtime::Handle,
    pub(crate) clock: WorldClock,
    /// Each player's sink, event queue, and the connection it came on (`[link-4]`).
    pub(crate) players: HashMap<EntityId, (Sink, mpsc::Sender<GameEvent>, u64)>,
    pub(crate) bytes_sent: HashMap<EntityId, u64>,
    /// Players who came through a gateway: the ones saved and restored (`[persist-4]`).
    pub(crate) persistent: HashSet<EntityId>,
    /// The last state of players who left, newest last (`[persist-4]`).
    pub(crate) departed: VecDeque<PlayerState>,
    pub(crate) items: Option<Items>,
    pub(crate) checkpoints: Option<watch::Sender<Option<Checkpoint>>>,
    pub(crate) leaving: Option<mpsc::Sender<Leaving>>,
    pub(crate) interval_ticks: u64,
    /// The one cell and epoch of a zone holding the whole world.
    pub(crate) single: Option<(CellKey, u64)>,
    pub(crate) mesh: Option<MeshTick>,
    /// Input arrival times are given to the core as microseconds since this instant.
    pub(crate) inputs_epoch: Instant,
    /// Inputs of players crossing a border (`crate::mesh_link` `[handoff-7]`).
    pub(crate) relays: crate::mesh_link::Relays,
}

impl TickLoop {
    /// Runs until `stop` is set, then writes a last checkpoint and ends every player's route.
    pub(crate) fn run(mut self, stop: Arc<AtomicBool>) {
        let period = self.clock.period;
        let ticks_per_s = (1.0 / period.as_secs_f64()).round().max(1.0) as u64;
        while !stop.load(Ordering::Relaxed) {
            let next = self.zone.sim().tick().0 + 1;
            let due = self.clock.start_of(next);
            let now = Instant::now();
            if due > now {
                // Sleep in short steps so a stop is noticed within one.
                std::thread::sleep((due - now).min(period));
                if Instant::now() < due {
                    continue;
                }
            } else if self.clock.current() > next + CATCH_UP_TICKS_MAX {
                let behind = self.clock.current() - next;
                tracing::warn!(behind, "the zone fell behind the world clock; skipping ahead");
                self.stats.overruns.fetch_add(behind, Ordering::Relaxed);
                self.zone.join_clock(self.clock.current().saturating_sub(1));
                continue;
            }
            let started = Instant::now();
            self.drain_inbox();
            self.expire_leases();
            self.tick(ticks_per_s);
            let took = started.elapsed();
            metrics::histogram!(metric::TICK_MS).record(took.as_secs_f64() * 1e3);
            metrics::gauge!(metric::PLAYERS).set(self.players.len() as f64);
            self.stats.ticks.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut samples) = self.stats.tick_ms.lock()
                && samples.len() < super::TICK_SAMPLES_MAX
            {
                samples.push(took.as_secs_f32() * 1e3);
            }
            self.stats.players.store(self.players.len() as u64, Ordering::Relaxed);
            if took > period {
                self.stats.overruns.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.finish();
    }

    fn finish(mut self) {
        // A last checkpoint on the way out; closing the channels ends the writer.
        if let Some(tx) = self.checkpoints.take() {
            tx.send_replace(Some(self.checkpoint()));
        }
        self.leaving = None;
        let sinks: Vec<Sink> = self.players.drain().map(|(_, (s, _, _))| s).collect();
        self.rt.block_on(async move {
            for sink in sinks {
                sink.refuse(RefuseCode::Unavailable, "the zone is shutting down").await;
            }
        });
    }

    fn drain_inbox(&mut self) {
        for _ in 0..super::INBOX_PER_TICK_MAX {
            let Ok(msg) = self.inbox.try_recv() else { break };
            match msg {
                ToZone::Joined { player, sink, events, saved, owner, handoff, link } => {
                    let wait = handoff && !self.zone.has_player(player) && !self.players.contains_key(&player);
                    match (&mut self.mesh, wait) {
                        (Some(mesh), true) => {
                            let until_tick = self.zone.sim().tick().0 + HANDOFF_WAIT_TICKS;
                            mesh.parked.insert(player, Parked { sink, events, saved, owner, link, until_tick });
                        }
                        _ => self.on_joined(player, sink, events, saved, owner, link),
                    }
                }
                ToZone::Left { player, link } => self.on_left(player, link),
                ToZone::Message { player, message, arrived } => self.on_message(player, message, arrived),
                ToZone::Map { sent_ms, answer } => self.on_map(sent_ms, &answer),
                ToZone::Peer { from, message, arrived } => self.on_peer(from, message, arrived),
                ToZone::Committed(done) => self.on_committed(*done),
            }
        }
    }

    fn arrived_us(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.inputs_epoch).as_micros() as u64
    }

    /// Tells a gateway where its player went (`node` 0: ask the world server again).
    fn rehome(&self, sink: &Sink, player: EntityId, node: ZoneId) {
        let Sink::Routed { link, .. } = sink else { return };
        let addr = self.mesh.as_ref().and_then(|m| m.addrs.get(&node).cloned()).unwrap_or_default();
        let (link, m) = (link.clone(), Message::Rehome(pwn_proto::Rehome { player: player.0, node: node.0, addr }));
        self.rt.spawn(async move {
            let _ = link.send(&m).await;
        });
    }

    fn on_joined(
        &mut self,
        player: EntityId,
        sink: Sink,
        events: mpsc::Sender<GameEvent>,
        saved: Option<PlayerState>,
        owner: Option<CellKey>,
        link: u64,
    ) {
        if let Some(entry) = self.players.get_mut(&player) {
            // `[link-4]`: a newer connection takes the player over as it is.
            tracing::info!(player = %player, "player taken over by a newer connection");
            *entry = (sink, events, link);
            self.zone.announce(player);
            if let (Some(items), true) = (&mut self.items, self.persistent.contains(&player)) {
                let _ = items.submit(ItemOp::Load { player });
            }
            return;
        }
        if self.zone.has_player(player) {
            // Handed over by a neighbour before its gateway attached it here: it keeps its
            // state and its input sequence; the gateway's link is all that was missing.
            tracing::debug!(player = %player, tick = self.zone.sim().tick().0, "handed-over player bound to its gateway");
            self.persistent.insert(player);
            if let Some(waiting) = self.mesh.as_mut().and_then(|m| m.unbound.remove(&player)) {
                for e in waiting {
                    let _ = events.try_send(e);
                }
            }
            self.players.insert(player, (sink, events, link));
            return;
        }
        let recent = self.departed.iter().rposition(|d| d.id == player).and_then(|i| self.departed.remove(i));
        let saved = recent.or(saved);
        let saved = saved.or_else(|| self.spawn_here(player));
        let cell = match self.place_in_mesh(player, &sink, owner, saved.as_ref()) {
            Ok(cell) => cell,
            Err(()) => return,
        };
        let character = saved.and_then(|s| s.character(self.zone.sim().config()));
        match self.zone.join_at(player, character) {
            Ok(()) => {
                tracing::debug!(player = %player, "placed in the world");
                if let (Some(mesh), Some((cell, claim))) = (&self.mesh, cell) {
                    self.zone.set_player_cell(player, cell);
                    if claim && let Some(epoch) = mesh.serving(cell) {
                        let _ = mesh.committer.submit(Job::Claim { player, cell, epoch: epoch.0 });
                    }
                }
                if matches!(sink, Sink::Routed { .. }) {
                    self.persistent.insert(player);
                    if let Some(items) = &mut self.items {
                        let _ = items.submit(ItemOp::Load { player });
                    }
                }
                self.players.insert(player, (sink, events, link));
            }
            Err(e) => {
                tracing::warn!(player = %player, error = %e, "cannot place player");
                let sink = sink.clone();
                self.rt
                    .spawn(async move { sink.refuse(RefuseCode::Unavailable, "cannot place you in the world").await });
            }
        }
    }

    /// A new player in a partitioned world enters at a spawn point inside this zone's cells
    /// (chosen by its id), not at one the simulation would draw anywhere in the world, which
    /// would hand it to another zone at once.
    fn spawn_here(&self, player: EntityId) -> Option<PlayerState> {
        let mesh = self.mesh.as_ref()?;
        let now = mesh.now_ms();
        let tree = mesh.territory.tree();
        let here: Vec<[f32; 3]> = self
            .zone
            .sim()
            .desc()
            .spawn_points
            .iter()
            .copied()
            .filter(|p| mesh.held.serving(tree.leaf_at(p[0], p[2]), now).is_some())
            .collect();
        let p = *here.get((player.0 % here.len().max(1) as u64) as usize)?;
        let health = self.zone.sim().config().character.max_health;
        Some(PlayerState { id: player, position: glam::Vec3::from(p), yaw_rad: 0.0, health })
    }

    /// Where a player attached in a partitioned world goes: `Ok(Some((cell, needs_claim)))` to
    /// place it here, `Ok(None)` outside a partitioned world, `Err` when it is not this zone's
    /// (its gateway was told where to go instead).
    fn place_in_mesh(
        &mut self,
        player: EntityId,
        sink: &Sink,
        owner: Option<CellKey>,
        saved: Option<&PlayerState>,
    ) -> Result<Option<(CellKey, bool)>, ()> {
        let Some(mesh) = &self.mesh else { return Ok(None) };
        let (cell, claim) = match owner {
            Some(cell) => (cell, false),
            None => {
                let at = saved
                    .map(|s| (s.position.x, s.position.z))
                    .or_else(|| self.zone.sim().desc().spawn_points.first().map(|p| (p[0], p[2])));
                let (x, z) = at.unwrap_or((0.0, 0.0));
                (mesh.territory.tree().leaf_at(x, z), true)
            }
        };
        if mesh.serving(cell).is_some() {
            return Ok(Some((cell, claim)));
        }
        let node = mesh.territory.owner(cell).map_or(ZoneId(0), |(n, _)| n);
        tracing::info!(player = %player, cell = %cell, node = %node, "attached to the wrong zone; sent on");
        self.rehome(sink, player, if node == mesh.me { ZoneId(0) } else { node });
        Err(())
    }

    fn on_left(&mut self, player: EntityId, link: u64) {
        if self.players.get(&player).is_none_or(|(_, _, l)| *l != link) {
            return;
        }
        let cell = self.zone.player_cell(player);
        let last = self.zone.leave(player);
        if self.persistent.remove(&player)
            && let Some(c) = last
        {
            let state = PlayerState::of(player, &c);
            self.departed.push_back(state);
            while self.departed.len() > super::DEPARTURES_QUEUE_MAX {
                self.departed.pop_front();
            }
            let fence = match (&self.mesh, cell, self.single) {
                (Some(mesh), Some(cell), _) => mesh.serving(cell).map(|e| (cell, e.0, true)),
                (None, _, Some((cell, epoch))) => Some((cell, epoch, false)),
                _ => None,
            };
            if let (Some(tx), Some((cell, epoch, owners_checked))) = (&self.leaving, fence)
                && tx.try_send(Leaving { state, cell, epoch, owners_checked }).is_err()
            {
                metrics::counter!(metric::DEPARTURES_DROPPED).increment(1);
            }
        }
        self.players.remove(&player);
        tracing::info!(player = %player, "player left");
    }

    fn on_message(&mut self, player: EntityId, message: Message, arrived: Instant) {
        if let (Some(mesh), Message::Inputs(_)) = (&self.mesh, &message)
            && !self.zone.has_player(player)
            && !self.zone.is_departing(player)
            && let Some((node, _)) = mesh.forwarded.get(&player)
            && let Ok(payload) = pwn_proto::encode_datagram(&message)
        {
            // `[handoff-5]`: late inputs follow the player to its new zone.
            mesh.peers.send(*node, Message::Routed(pwn_proto::Routed { player: player.0, payload }));
            return;
        }
        match message {
            Message::Inputs(batch) => {
                let at = self.arrived_us(arrived);
                self.zone.on_inputs(player, &batch, at)
            }
            Message::SnapshotAck(ack) => self.zone.on_ack(player, ack.tick),
            Message::Chat(chat) => {
                let text = chat.text.clone();
                let proximity = chat.channel == pwn_proto::ChatChannel::Proximity;
                match self.zone.on_chat(player, chat) {
                    Ok(()) if proximity => self.chat_across_borders(player, text),
                    Ok(()) => {}
                    Err(e) => tracing::debug!(player = %player, error = %e, "chat refused"),
                }
            }
            Message::GiveItem(give) => {
                let to = EntityId(give.to);
                let persistent = &self.persistent;
                let checked = check_give(self.zone.sim(), |id| persistent.contains(&id), player, to);
                let fence = self.owners_fence(player, to);
                let submitted = match (&mut self.items, fence) {
                    (Some(items), Ok(fence)) => checked
                        .and_then(|()| items.submit_fenced(ItemOp::Give { item: give.item, from: player, to }, fence)),
                    (Some(_), Err(why)) => Err(why),
                    (None, _) => Err("this world keeps no items"),
                };
                if let (Err(why), Some((_, events, _))) = (submitted, self.players.get(&player)) {
                    metrics::counter!(crate::items::REFUSED_METRIC, "reason" => "rules").increment(1);
                    let _ = events.try_send(GameEvent::Notice { text: format!("cannot give: {why}") });
                }
            }
            _ => {}
        }
    }

    /// The fence of an item move between two of this zone's players (`[zitem-5]`).
    fn owners_fence(&self, from: EntityId, to: EntityId) -> Result<Option<OwnersFence>, &'static str> {
        let Some(mesh) = &self.mesh else { return Ok(None) };
        let side = |p: EntityId| {
            let cell = self.zone.player_cell(p)?;
            Some((cell, mesh.serving(cell)?.0))
        };
        match (side(from), side(to)) {
            (Some(from), Some(to)) => Ok(Some(OwnersFence { from, to })),
            _ => Err("the world is changing hands here; try again"),
        }
    }

    /// A proximity line spoken near a border reaches the neighbours' players too.
    fn chat_across_borders(&self, from: EntityId, text: String) {
        let Some(mesh) = &self.mesh else { return };
        let Some(c) = self.zone.sim().character(from) else { return };
        let mut targets = Vec::new();
        mesh.territory.ghost_targets(c.position_m.x, c.position_m.z, &mut targets);
        for node in targets {
            let chat = pwn_proto::BorderChat { from: from.0, position_m: c.position_m.to_array(), text: text.clone() };
            mesh.peers.send(node, Message::BorderChat(chat));
        }
    }

    /// A new map from the world server: leases held, who serves which cell.
    fn on_map(&mut self, sent_ms: u64, answer: &pwn_partitioner::wire::HeartbeatAnswer) {
        let Some(mesh) = &mut self.mesh else { return };
        let changes = mesh.held.apply(sent_ms, &answer.held());
        let owners: Vec<_> = answer.owners.iter().map(|o| o.owner()).collect();
        mesh.addrs = owners.iter().map(|o| (o.node, o.addr.clone())).collect();
        mesh.territory.set_owners(owners.iter().map(|o| (o.cell, o.node, o.epoch)));
        mesh.peers.sync(mesh.me, &mesh.addrs);
        for (cell, epoch) in &changes.gained {
            tracing::info!(cell = %cell, epoch = epoch.0, "serving a cell");
            // Its crates as the store holds them; until they are in, it is not checkpointed.
            mesh.loaded.remove(cell);
            if !mesh.committer.submit(Job::LoadCrates { cell: *cell, epoch: epoch.0 }) {
                tracing::warn!(cell = %cell, "cannot queue the cell's crates; it is not checkpointed");
            }
        }
        let lost: Vec<CellKey> = changes.lost.iter().map(|(c, _)| *c).collect();
        for c in &lost {
            mesh.loaded.remove(c);
        }
        // `[ghost-3]`: a zone the world server no longer lists has no ghosts here.
        let listed: Vec<ZoneId> = mesh.addrs.keys().copied().collect();
        let holders: HashSet<ZoneId> = self.zone.ghosts().map(|(_, n)| n).collect();
        for gone in holders.into_iter().filter(|n| !listed.contains(n)) {
            self.zone.drop_ghosts_of(gone);
        }
        self.lose_cells(&lost);
    }

    /// Leases that lapsed on this node's clock end its service of their cells (`[lease-1]`).
    fn expire_leases(&mut self) {
        let Some(mesh) = &mut self.mesh else { return };
        let now = mesh.lease_clock.elapsed().as_millis() as u64;
        let lapsed: Vec<CellKey> = mesh.held.expire(now).into_iter().map(|(c, _)| c).collect();
        if !lapsed.is_empty() {
            tracing::error!(cells = lapsed.len(), "leases lapsed before they were renewed: no longer serving them");
        }
        self.lose_cells(&lapsed);
    }

    /// Stops serving `cells`: their players leave without being saved (this zone may not
    /// write them any more) and their gateways are told to find the cells' next owner.
    fn lose_cells(&mut self, cells: &[CellKey]) {
        if cells.is_empty() {
            return;
        }
        metrics::counter!(crate::mesh_link::metric::CELLS_LOST).increment(cells.len() as u64);
        let gone: Vec<EntityId> =
            self.zone.players().filter(|p| self.zone.player_cell(*p).is_some_and(|c| cells.contains(&c))).collect();
        for p in gone {
            self.zone.leave(p);
            self.persistent.remove(&p);
            if let Some((sink, _, _)) = self.players.remove(&p) {
                self.rehome(&sink, p, ZoneId(0));
            }
        }
    }

    /// Whether `(x, z)` lies within the ghost margin of a cell `node` serves (`[zlink-4]`).
    fn near_cells_of(mesh: &MeshTick, node: ZoneId, x: f32, z: f32) -> bool {
        let margin = mesh.territory.config().ghost_margin_m;
        mesh.territory.tree().leaves().any(|c| {
            mesh.territory.owner(c).is_some_and(|(n, _)| n == node)
                && mesh.territory.tree().rect(c).distance(x, z) <= margin
        })
    }

    fn on_peer(&mut self, from: ZoneId, message: Message, arrived: Instant) {
        let Some(mesh) = &self.mesh else { return };
        let refused = || metrics::counter!(crate::mesh_link::metric::PEER_REFUSED).increment(1);
        // `[zlink-4]`: only zones the world server lists speak here.
        if from == mesh.me || !mesh.addrs.contains_key(&from) {
            return refused();
        }
        match message {
            Message::Ghosts(g) => {
                if ZoneId(g.from_node) != from {
                    return refused();
                }
                self.zone.apply_ghosts(from, g.tick, g.complete, &g.states);
            }
            Message::HandoffPlayer(h) => {
                let cell = CellKey { level: h.to_cell.level, path: h.to_cell.path };
                let from_cell = CellKey { level: h.from_cell.level, path: h.from_cell.path };
                if mesh.serving(cell) != Some(Epoch(h.to_epoch))
                    || mesh.territory.owner(from_cell).is_none_or(|(n, _)| n != from)
                {
                    // Not this zone's (any more), or not the sender's to give: the store names
                    // the owner, which loads the player when its gateway attaches it there.
                    tracing::warn!(player = h.player, cell = %cell, from = %from, "handoff refused: wrong cell or sender");
                    return refused();
                }
                let at = self.arrived_us(arrived);
                if self.zone.arrive(&h, at) {
                    tracing::debug!(
                        player = h.player,
                        tick = self.zone.sim().tick().0,
                        from_tick = h.tick,
                        "player arrived"
                    );
                    metrics::counter!(crate::mesh_link::metric::HANDOFFS, "dir" => "in").increment(1);
                    let id = EntityId(h.player);
                    self.persistent.insert(id);
                    let until = self.zone.sim().tick().0 + FORWARD_INPUTS_TICKS;
                    if let Some(mesh) = &mut self.mesh {
                        mesh.arrived_from.insert(id, (from, until));
                    }
                    if let Some(p) = self.mesh.as_mut().and_then(|m| m.parked.remove(&id)) {
                        self.on_joined(id, p.sink, p.events, p.saved, p.owner, p.link);
                    }
                } else {
                    refused();
                }
            }
            Message::GhostHit(hit) => {
                let target = EntityId(hit.target);
                let near = self
                    .zone
                    .sim()
                    .character(target)
                    .is_some_and(|c| Self::near_cells_of(mesh, from, c.position_m.x, c.position_m.z));
                if !self.zone.has_player(target) || !near {
                    return refused();
                }
                let _ = self.zone.apply_ghost_hit(&hit);
            }
            Message::BorderChat(chat) => {
                let [x, _, z] = chat.position_m;
                if !Self::near_cells_of(mesh, from, x, z) {
                    return refused();
                }
                self.zone.border_chat(EntityId(chat.from), chat.position_m.into(), &chat.text)
            }
            Message::Routed(r) => {
                let player = EntityId(r.player);
                let tick = self.zone.sim().tick().0;
                let handed_by_sender =
                    mesh.arrived_from.get(&player).is_some_and(|(n, until)| *n == from && tick <= *until);
                match pwn_proto::decode_datagram(&r.payload) {
                    Ok(Message::Inputs(batch)) if handed_by_sender => {
                        let at = self.arrived_us(arrived);
                        self.zone.on_inputs(player, &batch, at);
                    }
                    _ => refused(),
                }
            }
            _ => refused(),
        }
    }

    fn on_committed(&mut self, done: Committed) {
        let Some(mesh) = &self.mesh else { return };
        match done {
            Committed::Handoff { departure, result } => {
                let d = departure;
                match result {
                    Ok(Handoff::Moved | Handoff::AlreadyDone) => {
                        let waiting = self.zone.departed(d.player, mesh.me);
                        if d.node == mesh.me {
                            return;
                        }
                        metrics::counter!(crate::mesh_link::metric::HANDOFFS, "dir" => "out").increment(1);
                        tracing::debug!(player = %d.player, to = %d.node, tick = d.tick, "handed off");
                        // The committer told the taking zone and the gateway (`[handoff-6]`);
                        // inputs that reached the departing player in the tick's inbox follow it
                        // (`[handoff-5]`).
                        let fresh: Vec<pwn_proto::WireInput> = waiting
                            .iter()
                            .filter(|i| !d.waiting.iter().any(|w| w.seq == i.seq))
                            .map(pwn_proto::WireInput::from_input)
                            .collect();
                        for chunk in fresh.chunks(pwn_proto::codec::INPUT_REDUNDANCY_MAX) {
                            let batch =
                                pwn_proto::InputBatch { ack_tick: 0, inputs: chunk.iter().rev().copied().collect() };
                            if let Ok(payload) = pwn_proto::encode_datagram(&Message::Inputs(batch)) {
                                mesh.peers
                                    .send(d.node, Message::Routed(pwn_proto::Routed { player: d.player.0, payload }));
                            }
                        }
                        let until = self.zone.sim().tick().0 + FORWARD_INPUTS_TICKS;
                        if let Some(mesh) = &mut self.mesh {
                            mesh.forwarded.insert(d.player, (d.node, until));
                        }
                        self.persistent.remove(&d.player);
                        self.bytes_sent.remove(&d.player);
                        self.players.remove(&d.player);
                    }
                    Err(OwnershipError::Store(pwn_store::StoreError::Fenced { .. }))
                    | Err(OwnershipError::NotOwner { .. }) => {
                        // This zone may not write the player: it is not ours to keep.
                        tracing::warn!(player = %d.player, "handoff fenced: dropping the player here");
                        metrics::counter!(crate::mesh_link::metric::HANDOFFS_FAILED).increment(1);
                        self.zone.departure_failed(d.player);
                        if let Ok(mut map) = self.relays.lock() {
                            map.remove(&d.player.0);
                        }
                        self.zone.leave(d.player);
                        self.persistent.remove(&d.player);
                        if let Some((sink, _, _)) = self.players.remove(&d.player) {
                            self.rehome(&sink, d.player, ZoneId(0));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(player = %d.player, error = %e, "handoff not committed; the player stays");
                        metrics::counter!(crate::mesh_link::metric::HANDOFFS_FAILED).increment(1);
                        self.zone.departure_failed(d.player);
                        self.release_relay(d.player);
                    }
                }
            }
            Committed::Crates { cell, epoch, result } => match result {
                Ok(crates) if mesh.serving(cell) == Some(Epoch(epoch)) => {
                    let n = crates.len();
                    for c in crates {
                        self.zone.restore_crate(c.id, c.position, c.rotation, c.linvel, c.angvel);
                    }
                    tracing::info!(cell = %cell, crates = n, "crates of the cell loaded");
                    if let Some(mesh) = &mut self.mesh {
                        mesh.loaded.insert(cell);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(cell = %cell, error = %e, "cannot read the cell's crates; trying again");
                    let _ = mesh.committer.submit(Job::LoadCrates { cell, epoch });
                }
            },
            Committed::Claim { player, cell, result } => {
                if let Err(e) = result {
                    // Another cell owns it: it is not ours to simulate.
                    tracing::warn!(player = %player, cell = %cell, error = %e, "claim refused; sending the player on");
                    self.zone.leave(player);
                    self.persistent.remove(&player);
                    if let Some((sink, _, _)) = self.players.remove(&player) {
                        self.rehome(&sink, player, ZoneId(0));
                    }
                }
            }
        }
    }

    /// This tick's checkpoint: every cell served, with its crates and players.
    fn checkpoint(&self) -> Checkpoint {
        let crates = crate_states(self.zone.sim());
        let players: Vec<(PlayerState, Option<CellKey>)> = self
            .persistent
            .iter()
            .filter_map(|id| {
                self.zone.sim().character(*id).map(|c| (PlayerState::of(*id, c), self.zone.player_cell(*id)))
            })
            .collect();
        let cells = match (&self.mesh, self.single) {
            (Some(mesh), _) => {
                let now = mesh.now_ms();
                let tree = mesh.territory.tree();
                mesh.held
                    .cells()
                    .filter(|(c, h)| now < h.valid_until_ms && mesh.loaded.contains(c))
                    .map(|(cell, h)| {
                        let rect = tree.rect(cell);
                        CellCheckpoint {
                            cell,
                            epoch: h.epoch.0,
                            crates: crates
                                .iter()
                                .filter(|k| rect.contains(k.position.x, k.position.z, 0.0))
                                .copied()
                                .collect(),
                            players: players.iter().filter(|(_, c)| *c == Some(cell)).map(|(p, _)| *p).collect(),
                            owners_checked: true,
                        }
                    })
                    .collect()
            }
            (None, Some((cell, epoch))) => vec![CellCheckpoint {
                cell,
                epoch,
                crates,
                players: players.into_iter().map(|(p, _)| p).collect(),
                owners_checked: false,
            }],
            (None, None) => Vec::new(),
        };
        Checkpoint { taken: Instant::now(), cells }
    }

    /// A player that stays: what its relay held goes to it, and the relay ends (`[handoff-7]`).
    fn release_relay(&mut self, player: EntityId) {
        let held = self.relays.lock().ok().and_then(|mut m| m.remove(&player.0));
        if let Some(crate::mesh_link::Relay::Hold(inputs)) = held
            && !inputs.is_empty()
        {
            let at = self.arrived_us(Instant::now());
            for chunk in inputs.chunks(pwn_proto::codec::INPUT_REDUNDANCY_MAX) {
                self.zone.on_inputs(player, &pwn_proto::InputBatch { ack_tick: 0, inputs: chunk.to_vec() }, at);
            }
        }
    }

    fn border(&mut self) {
        let tick = self.zone.sim().tick().0;
        if tick.is_multiple_of(30)
            && let Ok(mut map) = self.relays.lock()
        {
            let now = Instant::now();
            map.retain(|_, r| !matches!(r, crate::mesh_link::Relay::To(_, until) if *until <= now));
        }
        let mut due = Vec::new();
        if let Some(mesh) = &mut self.mesh {
            mesh.forwarded.retain(|_, (_, until)| *until > tick);
            mesh.arrived_from.retain(|_, (_, until)| *until >= tick);
            let zone = &self.zone;
            mesh.unbound.retain(|p, _| zone.has_player(*p));
            let ids: Vec<EntityId> =
                mesh.parked.iter().filter(|(_, p)| p.until_tick <= tick).map(|(id, _)| *id).collect();
            due.extend(ids.into_iter().filter_map(|id| mesh.parked.remove(&id).map(|p| (id, p))));
        }
        for (id, p) in due {
            tracing::info!(player = %id, "the handoff did not come; placing the player from the store");
            self.on_joined(id, p.sink, p.events, p.saved, p.owner, p.link);
        }
        self.zone.expire_ghosts(crate::border::GHOST_STALE_TICKS);
        let Some(mesh) = &self.mesh else { return };
        let me = mesh.me;
        let departures = self.zone.border_pass(&mesh.territory);
        if !departures.is_empty() {
            // `[handoff-7]`: from now on the link tasks hold the departing players' inputs;
            // what already waits in the inbox is taken in now, so every input that reached this
            // zone travels with the handoff.
            if let Ok(mut map) = self.relays.lock() {
                for d in departures.iter().filter(|d| d.node != me) {
                    map.insert(d.player.0, crate::mesh_link::Relay::Hold(Vec::new()));
                }
            }
            self.drain_inbox();
        }
        let mut failed = Vec::new();
        let Some(mesh) = &self.mesh else { return };
        for mut d in departures {
            if let Some(waiting) = self.zone.departing_waiting(d.player) {
                d.waiting = waiting;
            }
            let queued = Instant::now();
            let from_epoch = mesh.serving(d.from);
            let notify = (d.node != mesh.me).then(|| crate::mesh_link::Notify {
                peer: mesh.peers.queue(d.node),
                gateway: match self.players.get(&d.player) {
                    Some((Sink::Routed { link, .. }, _, _)) => {
                        Some((link.clone(), mesh.addrs.get(&d.node).cloned().unwrap_or_default()))
                    }
                    _ => None,
                },
                rt: self.rt.clone(),
                relays: self.relays.clone(),
            });
            let player = d.player;
            let submitted = from_epoch.is_some_and(|e| {
                mesh.committer.submit(Job::Handoff { departure: Box::new(d), from_epoch: e.0, queued, notify })
            });
            if !submitted {
                failed.push(player);
            }
        }
        for player in failed {
            self.zone.departure_failed(player);
            self.release_relay(player);
        }
        let Some(mesh) = &self.mesh else { return };
        for (node, states) in self.zone.ghost_batches(&mesh.territory) {
            let chunks = states.chunks(pwn_proto::GHOSTS_PER_MESSAGE_MAX).count().max(1);
            let mut sent = 0;
            for chunk in states.chunks(pwn_proto::GHOSTS_PER_MESSAGE_MAX) {
                sent += 1;
                let g = pwn_proto::Ghosts { from_node: me.0, tick, complete: sent == chunks, states: chunk.to_vec() };
                mesh.peers.send(node, Message::Ghosts(g));
            }
            if states.is_empty() {
                mesh.peers.send(
                    node,
                    Message::Ghosts(pwn_proto::Ghosts { from_node: me.0, tick, complete: true, states: Vec::new() }),
                );
            }
        }
        metrics::gauge!(crate::mesh_link::metric::GHOSTS).set(self.zone.ghost_count() as f64);
    }

    fn tick(&mut self, ticks_per_s: u64) {
        let mut out = self.zone.tick();
        if let Some(mesh) = &self.mesh {
            for h in self.zone.ghost_hits(&out.report) {
                mesh.peers.send(h.node, Message::GhostHit(h.hit));
            }
        }
        self.border();
        if let Some(items) = &mut self.items {
            // A player killed by another drops one item to the killer.
            for e in &out.report.events {
                if let pwn_sim::SimEvent::Death { entity, killer: Some(killer) } = *e
                    && entity != killer
                    && self.persistent.contains(&entity)
                    && self.persistent.contains(&killer)
                {
                    let fence = match &self.mesh {
                        None => Ok(None),
                        Some(mesh) => {
                            let side = |p: EntityId| {
                                let cell = self.zone.player_cell(p)?;
                                Some((cell, mesh.serving(cell)?.0))
                            };
                            match (side(entity), side(killer)) {
                                (Some(from), Some(to)) => Ok(Some(OwnersFence { from, to })),
                                _ => Err(()),
                            }
                        }
                    };
                    if let Ok(fence) = fence {
                        let _ = items.submit_fenced(ItemOp::Loot { victim: entity, killer }, fence);
                    }
                }
            }
            items.drain(&mut out.events);
        }
        if self.interval_ticks > 0
            && self.zone.sim().tick().0.is_multiple_of(self.interval_ticks)
            && let Some(tx) = &self.checkpoints
        {
            tx.send_replace(Some(self.checkpoint()));
        }
        metrics::counter!(metric::INPUTS_MISSING).increment(u64::from(out.inputs_missed));
        self.stats.inputs_missed.fetch_add(u64::from(out.inputs_missed), Ordering::Relaxed);
        for (player, snapshot) in out.snapshots {
            if let Some((sink, _, _)) = self.players.get(&player) {
                metrics::counter!(metric::SNAPSHOT_BYTES).increment(snapshot.updates.len() as u64);
                // Snapshots fit a datagram by construction (budget cap, bounded removals). A send
                // can still fail on a closing connection; the player's task reports the end.
                if let Ok(n) = sink.send_datagram(&Message::Snapshot(snapshot)) {
                    *self.bytes_sent.entry(player).or_default() += n as u64;
                }
            }
        }
        // Inputs applied this tick are acknowledged by the snapshots just queued.
        if !out.inputs_arrived.is_empty() {
            let now_us = self.inputs_epoch.elapsed().as_micros() as u64;
            self.stats.record_input_acks(out.inputs_arrived.iter().map(|a| now_us.saturating_sub(*a) as f64 / 1e3));
        }
        for (player, event) in out.events {
            match self.players.get(&player) {
                Some((_, events, _)) => {
                    if events.try_send(event).is_err() {
                        metrics::counter!(metric::EVENTS_DROPPED).increment(1);
                    }
                }
                // Handed over here, its gateway's link not in yet: kept until it is.
                None => {
                    if let Some(mesh) = &mut self.mesh
                        && self.zone.has_player(player)
                    {
                        let q = mesh.unbound.entry(player).or_default();
                        if q.len() < UNBOUND_EVENTS_MAX {
                            q.push(event);
                        } else {
                            metrics::counter!(metric::EVENTS_DROPPED).increment(1);
                        }
                    }
                }
            }
        }
        if self.zone.sim().tick().0.is_multiple_of(ticks_per_s) {
            if self.mesh.is_some()
                && let Ok(mut b) = self.stats.border.lock()
            {
                *b = self.zone.border_counters().clone();
            }
            let sim = self.zone.sim();
            let entities = sim.characters().count() + sim.crates().count() + sim.projectiles().count();
            metrics::gauge!(metric::ENTITIES).set(entities as f64);
            let players = &self.players;
            self.bytes_sent.retain(|p, _| players.contains_key(p));
            for sent in self.bytes_sent.values_mut() {
                metrics::histogram!(metric::CLIENT_DOWN_BYTES_PER_S).record(*sent as f64);
                *sent = 0;
            }
        }
    }
}
