//! The tick thread's work in a partitioned world (`crate::server::tick` runs it): leases held
//! and lost, the map of who serves what, placing players in this zone's cells, neighbours'
//! messages, committed handoffs and claims, and the border pass with its ghosts. Split from
//! `tick` so each file reads as one responsibility.

use super::tick::TickLoop;
use crate::items::OwnersFence;
use crate::links::Sink;
use crate::mesh_link::{Committed, Committer, Job, Peers};
use crate::persist::PlayerState;
use crate::territory::Territory;
use pwn_partitioner::lease::HeldLeases;
use pwn_partitioner::{Epoch, ZoneId};
use pwn_proto::{GameEvent, Message};
use pwn_sim::EntityId;
use pwn_store::keys::CellKey;
use pwn_store::ownership::{Handoff, OwnershipError};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;
use tokio::sync::mpsc;

/// Ticks a gateway's attach of a handed-over player waits for the handoff itself before the
/// player is placed from the store instead.
pub const HANDOFF_WAIT_TICKS: u64 = 15;
/// Ticks inputs that reach this zone after a player's handoff are forwarded to its new zone.
pub const FORWARD_INPUTS_TICKS: u64 = 60;
/// Events kept for a player this zone simulates before its gateway's link arrives.
pub const UNBOUND_EVENTS_MAX: usize = 64;

/// A gateway's attach waiting for its handoff.
pub(crate) struct Parked {
    pub(super) sink: Sink,
    pub(super) events: mpsc::Sender<GameEvent>,
    pub(super) saved: Option<PlayerState>,
    pub(super) owner: Option<CellKey>,
    pub(super) link: u64,
    pub(super) until_tick: u64,
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
    /// The world file's crates and where it places them (claimed by the cell they start in).
    pub(crate) placed_crates: std::sync::Arc<Vec<(EntityId, glam::Vec3)>>,
}

impl MeshTick {
    pub(super) fn now_ms(&self) -> u64 {
        self.lease_clock.elapsed().as_millis() as u64
    }

    pub(super) fn serving(&self, cell: CellKey) -> Option<Epoch> {
        self.held.serving(cell, self.now_ms())
    }
}

impl TickLoop {
    /// A new player in a partitioned world enters at a spawn point inside this zone's cells
    /// (chosen by its id), not at one the simulation would draw anywhere in the world, which
    /// would hand it to another zone at once.
    pub(super) fn spawn_here(&self, player: EntityId) -> Option<PlayerState> {
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
    pub(super) fn place_in_mesh(
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

    /// The fence of an item move between two of this zone's players (`[zitem-5]`).
    pub(super) fn owners_fence(&self, from: EntityId, to: EntityId) -> Result<Option<OwnersFence>, &'static str> {
        let Some(mesh) = &self.mesh else { return Ok(None) };
        let side = |p: EntityId| {
            let cell = self.zone.player_cell(p)?;
            Some((cell, mesh.serving(cell)?.0))
        };
        // A receiver across a border (`[zitem-6]`): the cell of its zone nearest to where it
        // stands (its leaf, or the one it is still within the hysteresis of), at the epoch the
        // map names; the transaction checks its owner record against that.
        let across = |p: EntityId| {
            let node = self.zone.ghost_owner(p)?;
            let at = self.zone.sim().character(p)?.position_m;
            let t = &mesh.territory;
            t.tree()
                .leaves()
                .filter_map(|c| t.owner(c).filter(|(n, _)| *n == node).map(|(_, e)| (c, e)))
                .min_by(|a, b| {
                    t.tree().rect(a.0).distance(at.x, at.z).total_cmp(&t.tree().rect(b.0).distance(at.x, at.z))
                })
                .map(|(c, e)| (c, e.0))
        };
        match (side(from), side(to).or_else(|| across(to))) {
            (Some(from), Some(to)) => Ok(Some(OwnersFence { from, to })),
            _ => Err("the world is changing hands here; try again"),
        }
    }

    /// A proximity line spoken near a border reaches the neighbours' players too.
    pub(super) fn chat_across_borders(&self, from: EntityId, text: String) {
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
    pub(super) fn on_map(&mut self, sent_ms: u64, answer: &pwn_partitioner::wire::HeartbeatAnswer) {
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
            let job = Self::load_crates(mesh, *cell, epoch.0, self.zone.sim().tick().0);
            if !mesh.committer.submit(job) {
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
            self.zone.drop_crate_ghosts_of(gone);
            self.zone.drop_object_ghosts_of(gone.0);
        }
        self.lose_cells(&lost);
    }

    /// Leases that lapsed on this node's clock end its service of their cells (`[lease-1]`).
    pub(super) fn expire_leases(&mut self) {
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
    pub(super) fn lose_cells(&mut self, cells: &[CellKey]) {
        if cells.is_empty() {
            return;
        }
        metrics::counter!(crate::mesh_link::metric::CELLS_LOST).increment(cells.len() as u64);
        self.zone.leave_crates_of(cells);
        if let Some(mesh) = &self.mesh {
            let tree = mesh.territory.tree();
            self.zone.unload_objects(|p| cells.contains(&tree.leaf_at(p.x, p.z)));
        }
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
    pub(super) fn near_cells_of(mesh: &MeshTick, node: ZoneId, x: f32, z: f32) -> bool {
        let margin = mesh.territory.config().ghost_margin_m;
        mesh.territory.tree().leaves().any(|c| {
            mesh.territory.owner(c).is_some_and(|(n, _)| n == node)
                && mesh.territory.tree().rect(c).distance(x, z) <= margin
        })
    }

    pub(super) fn on_peer(&mut self, from: ZoneId, message: Message, arrived: Instant) {
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
                        waiting = h.waiting.len(),
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
                        tracing::debug!(
                            player = %player,
                            tick,
                            newest = batch.inputs.first().map_or(0, |i| i.seq),
                            "relayed inputs"
                        );
                        let at = self.arrived_us(arrived);
                        self.zone.on_inputs(player, &batch, at);
                    }
                    // `[zitem-6]`: a gift from the sender's player to one of this zone's near its
                    // cells, committed there; this zone tells its player.
                    Ok(Message::Event(event @ GameEvent::ItemMoved { .. })) => {
                        let GameEvent::ItemMoved { to, .. } = event else { return refused() };
                        let near = self
                            .zone
                            .sim()
                            .character(player)
                            .is_some_and(|c| Self::near_cells_of(mesh, from, c.position_m.x, c.position_m.z));
                        if to != player.0 || !self.zone.has_player(player) || !near {
                            return refused();
                        }
                        self.tell(player, event);
                    }
                    _ => refused(),
                }
            }
            m @ (Message::HandoffProjectile(_)
            | Message::BorderEvent(_)
            | Message::CrateGhosts(_)
            | Message::HandoffCrate(_)) => self.on_peer_entity(from, m),
            _ => refused(),
        }
    }

    pub(super) fn on_committed(&mut self, done: Committed) {
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
            done @ (Committed::Crates { .. } | Committed::CrateHandoff { .. }) => self.on_crates_committed(done),
            Committed::AdoptObject { handoff, stored } => {
                let tree = mesh.territory.tree();
                let now = mesh.now_ms();
                let serves = |p: glam::Vec3| mesh.held.serving(tree.leaf_at(p.x, p.z), now).is_some();
                let stored = stored.ok().flatten();
                if self.zone.arrive_object(&handoff, stored.as_ref(), serves) {
                    metrics::counter!(crate::mesh_link::metric::HANDOFFS, "dir" => "in", "kind" => "object")
                        .increment(1);
                    // The zone it came from (and any other near it) holds it as a ghost at once.
                    let at = glam::Vec3::from(handoff.object.position_m);
                    self.send_object_ghosts(false, Some(&[(EntityId(handoff.object.id), at)]));
                } else {
                    metrics::counter!(crate::mesh_link::metric::PEER_REFUSED).increment(1);
                    tracing::warn!(object = handoff.object.id, "object handoff not backed by the store; not adopted");
                }
            }
            Committed::ObjectDeparture { departure, result } => {
                if let Some(h) = self.zone.object_departed(&departure, &result) {
                    metrics::counter!(crate::mesh_link::metric::HANDOFFS, "dir" => "out", "kind" => "object")
                        .increment(1);
                    mesh.peers.send(ZoneId(departure.node), Message::HandoffObject(h));
                }
            }
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

    /// An event for `player` from outside the tick: to its gateway, or kept until its gateway's
    /// link arrives (a player handed over just now).
    pub(super) fn tell(&mut self, player: EntityId, event: GameEvent) {
        match self.players.get(&player) {
            Some((_, events, _)) => {
                if events.try_send(event).is_err() {
                    metrics::counter!(super::metric::EVENTS_DROPPED).increment(1);
                }
            }
            None => {
                if let Some(mesh) = &mut self.mesh {
                    let q = mesh.unbound.entry(player).or_default();
                    if q.len() < UNBOUND_EVENTS_MAX {
                        q.push(event);
                    } else {
                        metrics::counter!(super::metric::EVENTS_DROPPED).increment(1);
                    }
                }
            }
        }
    }

    /// A player that stays: what its relay held goes to it, and the relay ends (`[handoff-7]`).
    pub(super) fn release_relay(&mut self, player: EntityId) {
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

    pub(super) fn border(&mut self) {
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
        self.zone.expire_crate_ghosts(crate::border::GHOST_STALE_TICKS);
        self.crates_and_shots_border();
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
}
