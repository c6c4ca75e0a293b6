//! The tick thread: takes what connections handed in, advances the zone core one tick on the
//! world clock, and sends each tick's snapshots and events. It runs on its own thread, never on
//! the IO runtime, and never waits on the network or the store: everything slow is handed to
//! tasks and workers through bounded queues.
//!
//! In a partitioned world it also keeps the node's leases (stopping to serve a cell the moment
//! its lease lapses on the node's own clock), hands departing players to the committer, ghosts
//! its players to its neighbours and applies theirs: that part is `super::mesh_tick`
//! (`crate::border`, `crate::mesh_link`).

use super::mesh_tick::{HANDOFF_WAIT_TICKS, MeshTick, Parked, UNBOUND_EVENTS_MAX};
use super::persister::{Checkpoint, Leaving};
use super::{ZoneStats, metric};
use crate::items::{ItemOp, Items, OwnersFence, check_give};
use crate::links::{Sink, ToZone};
use crate::mesh_link::Job;
use crate::persist::{CellCheckpoint, PlayerState, crate_states};
use crate::zone::Zone;
use pwn_partitioner::ZoneId;
use pwn_proto::{GameEvent, Message, RefuseCode};
use pwn_sim::EntityId;
use pwn_store::keys::CellKey;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Ticks a zone may fall behind the world clock before it skips ahead to it (counted).
pub const CATCH_UP_TICKS_MAX: u64 = 5;

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
    /// World-object edits waiting for the store (`super::edits`).
    pub(crate) edits: Option<super::edits::Edits>,
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
    /// A tick's snapshots, encoded, to the IO runtime's sender (`SnapshotSender`).
    pub(crate) snapshots_out: mpsc::Sender<SnapshotBatch>,
}

/// A tick's snapshots, encoded, each with the player's sink.
pub(crate) type SnapshotBatch = Vec<(Sink, Vec<u8>)>;
/// Ticks of snapshots waiting for the IO runtime; past this the tick thread sends them itself.
pub(crate) const SNAPSHOT_BATCHES_MAX: usize = 2;

/// Hands each tick's snapshots to the QUIC endpoints in one go, on the IO runtime: the tick
/// thread only encodes them. Pushing them one at a time from the tick thread woke the endpoint
/// for each while it ran on another core, so it sent them a few at a time (many wakeups and
/// small `sendmmsg` batches); one task pushing them all lets it send them together.
pub(crate) async fn send_snapshots(mut batches: mpsc::Receiver<SnapshotBatch>) {
    while let Some(batch) = batches.recv().await {
        for (sink, payload) in batch {
            // A closing connection: the player's task reports the end.
            let _ = sink.send_encoded(payload);
        }
    }
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
            self.finish_edits();
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
        // Players of gateways are not refused: their gateway moves them on when the link ends
        // (`pwn_gateway::proxy` `[proxy-6]`), to the cell's next owner or this zone's successor.
        let sinks: Vec<Sink> =
            self.players.drain().map(|(_, (s, _, _))| s).filter(|s| matches!(s, Sink::Direct(_))).collect();
        self.rt.block_on(async move {
            for sink in sinks {
                sink.refuse(RefuseCode::Unavailable, "the zone is shutting down").await;
            }
        });
    }

    pub(super) fn drain_inbox(&mut self) {
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

    pub(super) fn arrived_us(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.inputs_epoch).as_micros() as u64
    }

    /// Tells a gateway where its player went (`node` 0: ask the world server again).
    pub(super) fn rehome(&self, sink: &Sink, player: EntityId, node: ZoneId) {
        let Sink::Routed { link, .. } = sink else { return };
        let addr = self.mesh.as_ref().and_then(|m| m.addrs.get(&node).cloned()).unwrap_or_default();
        let (link, m) = (link.clone(), Message::Rehome(pwn_proto::Rehome { player: player.0, node: node.0, addr }));
        self.rt.spawn(async move {
            let _ = link.send(&m).await;
        });
    }

    pub(super) fn on_joined(
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
            if let (Some(items), true) = (&mut self.items, self.persistent.contains(&player))
                && items.submit(ItemOp::Load { player }).is_err()
            {
                items.resync(player);
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
                    if let Some(items) = &mut self.items
                        && items.submit(ItemOp::Load { player }).is_err()
                    {
                        items.resync(player);
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
                && tx.try_send(Leaving { state, tick: self.zone.sim().tick().0, cell, epoch, owners_checked }).is_err()
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
            Message::EditObject(req) => self.on_edit(player, req),
            Message::GiveItem(give) => {
                let to = EntityId(give.to);
                let persistent = &self.persistent;
                // A receiver across a border is a ghost here: a gift to it is fenced by both
                // zones' leases (`[zitem-6]`).
                let across = self.mesh.is_some() && self.zone.sim().is_ghost(to);
                let has_account = |id: EntityId| persistent.contains(&id) || (across && id == to);
                let checked = check_give(self.zone.sim(), has_account, player, to);
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

    /// This tick's checkpoint: every cell served, with its crates and players.
    pub(super) fn checkpoint(&self) -> Checkpoint {
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
                            objects: crate::objects::motions(self.zone.sim(), self.zone.objects(), |p| {
                                tree.leaf_at(p.x, p.z) == cell
                            }),
                            crates: self.zone.crates_of(cell),
                            players: players.iter().filter(|(_, c)| *c == Some(cell)).map(|(p, _)| *p).collect(),
                            owners_checked: true,
                            rect_m: Some([rect.min[0], rect.min[1], rect.max[0], rect.max[1]]),
                        }
                    })
                    .collect()
            }
            (None, Some((cell, epoch))) => vec![CellCheckpoint {
                cell,
                epoch,
                objects: crate::objects::motions(self.zone.sim(), self.zone.objects(), |_| true),
                crates: crate_states(self.zone.sim()),
                players: players.into_iter().map(|(p, _)| p).collect(),
                owners_checked: false,
                rect_m: None,
            }],
            (None, None) => Vec::new(),
        };
        Checkpoint { taken: Instant::now(), tick: self.zone.sim().tick().0, cells }
    }

    fn tick(&mut self, ticks_per_s: u64) {
        let mut out = self.zone.tick();
        metrics::histogram!(metric::TICK_STEP_MS).record(out.step_ms);
        metrics::histogram!(metric::TICK_VIEWS_MS).record(out.views_ms);
        if let Some(mesh) = &self.mesh {
            for h in self.zone.ghost_hits(&out.report) {
                mesh.peers.send(h.node, Message::GhostHit(h.hit));
            }
            // `[shot-3]`: before the border pass takes leaving projectiles out.
            for (node, e) in self.zone.border_events(&out.report, &mesh.territory) {
                mesh.peers.send(node, Message::BorderEvent(e));
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
            // `[zitem-7]`: inventories to send again, to players whose queue has room now.
            let players = &self.players;
            items.retry_resyncs(|p| {
                players.get(&p).map(|(_, events, _)| events.capacity() > crate::links::EVENTS_QUEUE_MAX / 2)
            });
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
        let mut batch: SnapshotBatch = Vec::with_capacity(out.snapshots.len());
        for (player, snapshot) in out.snapshots {
            if let Some((sink, _, _)) = self.players.get(&player) {
                metrics::counter!(metric::SNAPSHOT_BYTES).increment(snapshot.updates.len() as u64);
                // Snapshots fit a datagram by construction (budget cap, bounded removals).
                if let Ok(payload) = pwn_proto::encode_datagram(&Message::Snapshot(snapshot)) {
                    *self.bytes_sent.entry(player).or_default() += payload.len() as u64;
                    batch.push((sink.clone(), payload));
                }
            }
        }
        if let Err(mpsc::error::TrySendError::Full(batch) | mpsc::error::TrySendError::Closed(batch)) =
            self.snapshots_out.try_send(batch)
        {
            // The IO runtime is behind by two ticks: this tick's go out from here.
            for (sink, payload) in batch {
                let _ = sink.send_encoded(payload);
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
                    let inventory = matches!(event, GameEvent::ItemMoved { .. } | GameEvent::Inventory { .. });
                    if events.try_send(event).is_err() {
                        metrics::counter!(metric::EVENTS_DROPPED).increment(1);
                        // `[zitem-7]`: what it holds is sent again once there is room.
                        if let (true, Some(items)) = (inventory, &mut self.items) {
                            items.resync(player);
                        }
                    }
                }
                // Handed over here, its gateway's link not in yet: kept until it is.
                None => {
                    if let (Some(mesh), GameEvent::ItemMoved { .. }) = (&self.mesh, &event)
                        && let Some(node) = self.zone.ghost_owner(player)
                        && let Ok(payload) = pwn_proto::encode_datagram(&Message::Event(event.clone()))
                    {
                        // A gift to a player across a border (`[zitem-6]`): its zone tells it.
                        mesh.peers.send(node, Message::Routed(pwn_proto::Routed { player: player.0, payload }));
                        continue;
                    }
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
