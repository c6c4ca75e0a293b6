//! A zone's borders, as a pure extension of the zone core: after each tick, players who
//! crossed into another zone's cell are taken out of the simulation and handed to the shell
//! to commit ([`Departure`]); players handed over by a neighbour are promoted from their ghost
//! ([`Zone::arrive`]); this zone's players near a neighbour are mirrored to it
//! ([`Zone::ghost_batches`]) and the neighbour's are held as ghosts ([`Zone::apply_ghosts`]).
//! The store transaction in between is the shell's (`pwn_store::ownership::hand_off`).
//!
//! Rules:
//! - `[handoff-1]` a departing player leaves the simulation at the tick it crossed, and is kept
//!   aside, frozen, until the shell reports the commit: on success it is gone from this zone,
//!   on failure (a lease moved, the store failed) it is put back as it was;
//! - `[handoff-2]` while departing, the player is still ghosted to its neighbours, frozen, so
//!   no player near the border sees it vanish between the two zones;
//! - `[handoff-3]` an arriving player replaces its ghost with the state it was handed at, keeps
//!   its input sequence (the buffer resumes after the last released input) and is told its
//!   authority moved (`AuthorityMoved`), never `Joined`: the client's prediction goes on;
//! - `[handoff-4]` an arrival for a player this zone already simulates is a duplicate and is
//!   refused (counted), as is a replay: a handoff no newer than the one the player last left
//!   this zone with, one older than `HANDOFF_AGE_MAX_TICKS`, or a state the simulation could
//!   not have produced (non-finite, faster than `SPEED_MAX_MPS`);
//! - `[ghost-1]` a ghost batch replaces what the sender holds here: ghosts of the sender not in
//!   a complete batch are dropped; a ghost never replaces a character this zone simulates,
//!   and a batch older than the last one applied from the same sender, or stamped more than
//!   `GHOST_FUTURE_TICKS_MAX` ahead of this zone's tick, is ignored (counted);
//! - `[handoff-5]` inputs that reach a departing player wait with it and travel with the
//!   handoff; inputs that reach this zone after the handoff committed are forwarded to the taking
//!   zone for a while (`crate::server`), so a crossing costs the player no input;
//! - `[handoff-6]` the taking zone and the player's gateway hear of a committed handoff from
//!   the committer at once (`crate::mesh_link`), so the taking zone simulates the player from
//!   the tick after the one it left at: no tick without it;
//! - `[ghost-3]` a ghost no batch has named for `GHOST_STALE_TICKS` is dropped (its owner went
//!   quiet), as are all of a zone's ghosts once the world server no longer lists that zone;
//! - `[ghost-2]` a shot of this zone that hits a ghost deals no damage here: the hit goes to the
//!   ghost's owner ([`GhostHitOut`]), which applies each projectile's hit once.

use crate::input_buffer::InputBuffer;
use crate::snapshots::ClientSnapshots;
use crate::territory::{Placement, Territory};
use crate::zone::{PlayerSlot, Zone};
use pwn_partitioner::{Epoch, ZoneId};
use pwn_proto::{ExactInput, GameEvent, GhostState, WireCharacter};
use pwn_sim::{CharacterState, EntityId, HitTarget, PlayerInput, SimEvent};
use pwn_store::keys::CellKey;
use std::collections::{BTreeMap, HashSet, VecDeque};

/// A handoff older than this (by the tick of its state) is refused as a replay (`[handoff-4]`).
pub const HANDOFF_AGE_MAX_TICKS: u64 = 300;
/// Players whose departure tick is remembered, to refuse replays of older handoffs.
pub const DEPARTED_REMEMBERED_MAX: usize = 16_384;
/// A ghost batch stamped further ahead of this zone's tick than this is refused (`[ghost-1]`).
pub const GHOST_FUTURE_TICKS_MAX: u64 = 30;
/// Fastest a handed-over or ghost character may move (falling included): anything faster is
/// not a state the simulation produces.
pub const SPEED_MAX_MPS: f32 = 100.0;
/// Ticks without a batch naming a ghost before it is dropped (`[ghost-3]`).
pub const GHOST_STALE_TICKS: u64 = 30;
/// Projectile ids remembered to apply each remote hit once.
pub const HITS_REMEMBERED_MAX: usize = 4_096;
/// Ghosts one zone holds at most (a neighbour cannot make it hold more).
pub const GHOSTS_MAX: usize = 16_384;

/// A player leaving for another cell: the shell commits the handoff, then calls
/// [`Zone::departed`] or, if it failed, [`Zone::departure_failed`].
#[derive(Clone, Debug, PartialEq)]
pub struct Departure {
    /// The player.
    pub player: EntityId,
    /// The world tick of its state.
    pub tick: u64,
    /// The cell that owned it.
    pub from: CellKey,
    /// The cell taking it.
    pub to: CellKey,
    /// The node serving `to` (this node for a move between its own cells).
    pub node: ZoneId,
    /// `to`'s lease epoch.
    pub to_epoch: Epoch,
    /// Its state.
    pub character: CharacterState,
    /// The last input released to the simulation.
    pub last_released: Option<u32>,
    /// Inputs waiting.
    pub waiting: Vec<PlayerInput>,
}

impl Departure {
    /// The message that tells the taking zone (after the commit).
    pub fn message(&self) -> pwn_proto::HandoffPlayer {
        let cell = |c: CellKey| pwn_proto::WireCell { level: c.level, path: c.path };
        pwn_proto::HandoffPlayer {
            player: self.player.0,
            tick: self.tick,
            from_cell: cell(self.from),
            to_cell: cell(self.to),
            to_epoch: self.to_epoch.0,
            character: WireCharacter::of(&self.character),
            last_released: self.last_released,
            waiting: self.waiting.iter().take(pwn_proto::HANDOFF_INPUTS_MAX).map(ExactInput::of).collect(),
        }
    }
}

/// A hit on another zone's character (`[ghost-2]`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct GhostHitOut {
    /// The ghost's owner.
    pub node: ZoneId,
    /// The hit.
    pub hit: pwn_proto::GhostHit,
}

/// Counts of what happened at the borders.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BorderCounters {
    /// Players handed to other zones (committed).
    pub handoffs_out: u64,
    /// Players taken from other zones.
    pub handoffs_in: u64,
    /// Departures put back after a failed commit.
    pub handoffs_failed: u64,
    /// Arrivals refused as duplicates (`[handoff-4]`).
    pub arrivals_refused: u64,
    /// Ghost batches ignored as stale (`[ghost-1]`).
    pub ghost_batches_stale: u64,
    /// Ghost states refused (a local character, a bad state, the ghost bound).
    pub ghosts_refused: u64,
    /// Remote hits ignored as repeated.
    pub hits_repeated: u64,
    /// Ghost states applied, by lag in ticks (`GHOST_LAG_BUCKETS`, the last holding everything
    /// beyond): the tick of the first snapshot that can carry the state minus the owner's tick
    /// of it. 1 is a ghost shown one tick after its owner simulated it.
    pub ghost_lag_ticks: [u64; GHOST_LAG_BUCKETS],
}

/// Buckets of [`BorderCounters::ghost_lag_ticks`].
pub const GHOST_LAG_BUCKETS: usize = 16;

struct Departing {
    slot: PlayerSlot,
    departure: Departure,
}

/// The zone's border state.
#[derive(Default)]
pub struct BorderState {
    departing: BTreeMap<EntityId, Departing>,
    /// Each ghost's owner and the tick of the batch that last named it.
    ghosts: BTreeMap<EntityId, (ZoneId, u64)>,
    /// The newest batch tick applied per sender.
    batches: BTreeMap<ZoneId, u64>,
    hits_seen: HashSet<u64>,
    hits_order: VecDeque<u64>,
    /// The tick each recently departed player left at, oldest first (`[handoff-4]`).
    left_at: std::collections::HashMap<EntityId, u64>,
    left_order: VecDeque<EntityId>,
    counters: BorderCounters,
}

/// Whether a character state from a neighbour is one the simulation could have produced:
/// finite everywhere and no faster than `SPEED_MAX_MPS` (the rest, the simulation checks when
/// it takes it).
fn plausible(c: &pwn_proto::WireCharacter) -> bool {
    let finite = c.position_m.iter().chain(&c.velocity_mps).all(|v| v.is_finite())
        && c.yaw_rad.is_finite()
        && c.pitch_rad.is_finite();
    let speed2: f32 = c.velocity_mps.iter().map(|v| v * v).sum();
    finite && speed2 <= SPEED_MAX_MPS * SPEED_MAX_MPS
}

impl Zone {
    /// The border counters.
    pub fn border_counters(&self) -> &BorderCounters {
        &self.border.counters
    }

    /// Ghosts held now.
    pub fn ghost_count(&self) -> usize {
        self.border.ghosts.len()
    }

    /// The zone `id` belongs to, if this zone holds it as a ghost.
    pub fn ghost_owner(&self, id: EntityId) -> Option<ZoneId> {
        self.border.ghosts.get(&id).map(|(node, _)| *node)
    }

    /// Each ghost held and the zone it belongs to.
    pub fn ghosts(&self) -> impl Iterator<Item = (EntityId, ZoneId)> + '_ {
        self.border.ghosts.iter().map(|(id, (node, _))| (*id, *node))
    }

    /// The cell owning `player` here, if the zone serves part of a partitioned world.
    pub fn player_cell(&self, player: EntityId) -> Option<CellKey> {
        self.players.get(&player).and_then(|p| p.cell)
    }

    /// Records the cell owning `player` (when it joins a partitioned world).
    pub fn set_player_cell(&mut self, player: EntityId, cell: CellKey) {
        if let Some(p) = self.players.get_mut(&player) {
            p.cell = Some(cell);
        }
    }

    /// Whether `player` is departing (its handoff not yet committed).
    pub fn is_departing(&self, player: EntityId) -> bool {
        self.border.departing.contains_key(&player)
    }

    /// After a tick: the players that crossed into a cell of another zone, or another cell of
    /// this one, by the hysteresis (`[border-1]`, `[handoff-1]`).
    pub fn border_pass(&mut self, territory: &Territory) -> Vec<Departure> {
        let tick = self.sim.tick().0;
        let mut out = Vec::new();
        let ids: Vec<(EntityId, CellKey)> =
            self.players.iter().filter_map(|(id, p)| p.cell.map(|c| (*id, c))).collect();
        for (id, cell) in ids {
            let Some(c) = self.sim.character(id) else { continue };
            if !c.alive() {
                continue;
            }
            let Placement::Move { cell: to, node, epoch } = territory.place(cell, c.position_m.x, c.position_m.z)
            else {
                continue;
            };
            let (Some(slot), Some((character, _))) = (self.players.remove(&id), self.sim.remove_character(id)) else {
                continue;
            };
            let (last_released, waiting) = slot.inputs.handover();
            let departure = Departure {
                player: id,
                tick,
                from: cell,
                to,
                node,
                to_epoch: epoch,
                character,
                last_released,
                waiting,
            };
            out.push(departure.clone());
            self.border.departing.insert(id, Departing { slot, departure });
        }
        out
    }

    /// The shell committed `player`'s handoff: it is gone from this zone (or, for a move
    /// between this zone's own cells, back in the simulation under its new cell). Returns the
    /// inputs waiting for it now (those handed over plus any that came while it departed),
    /// for the taking zone.
    pub fn departed(&mut self, player: EntityId, me: ZoneId) -> Vec<PlayerInput> {
        let Some(d) = self.border.departing.remove(&player) else { return Vec::new() };
        if d.departure.node == me {
            let to = d.departure.to;
            self.put_back(d, Some(to));
            return Vec::new();
        }
        self.border.counters.handoffs_out += 1;
        // `[handoff-4]`: a copy of an older handoff of this player arriving later is a replay.
        self.border.left_at.insert(player, d.departure.tick);
        self.border.left_order.push_back(player);
        while self.border.left_order.len() > DEPARTED_REMEMBERED_MAX {
            if let Some(old) = self.border.left_order.pop_front()
                && !self.border.left_order.contains(&old)
            {
                self.border.left_at.remove(&old);
            }
        }
        d.slot.inputs.handover().1
    }

    /// The inputs waiting for a departing player now (those handed over at its departure and
    /// any received since).
    pub fn departing_waiting(&self, player: EntityId) -> Option<Vec<PlayerInput>> {
        self.border.departing.get(&player).map(|d| d.slot.inputs.handover().1)
    }

    /// Inputs for a departing player wait with it, so the taking zone gets them
    /// (`[handoff-5]`). Returns false if the player is not departing.
    pub(crate) fn departing_inputs(&mut self, player: EntityId, batch: &pwn_proto::InputBatch, arrived: u64) -> bool {
        match self.border.departing.get_mut(&player) {
            Some(d) => {
                d.slot.inputs.receive_at(&batch.inputs, arrived);
                true
            }
            None => false,
        }
    }

    /// Drops ghosts no batch has named for `max_age_ticks` (their owner went quiet: dead, or
    /// cut off), `[ghost-3]`.
    pub fn expire_ghosts(&mut self, max_age_ticks: u64) {
        let now = self.sim.tick().0;
        let stale: Vec<EntityId> = self
            .border
            .ghosts
            .iter()
            .filter(|(_, (_, t))| now.saturating_sub(*t) > max_age_ticks)
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            self.border.ghosts.remove(&id);
            if self.sim.is_ghost(id) {
                self.sim.remove_character(id);
            }
        }
    }

    /// The handoff of `player` failed: it is put back as it was (`[handoff-1]`).
    pub fn departure_failed(&mut self, player: EntityId) {
        if let Some(d) = self.border.departing.remove(&player) {
            self.border.counters.handoffs_failed += 1;
            self.put_back(d, None);
        }
    }

    fn put_back(&mut self, d: Departing, cell: Option<CellKey>) {
        let id = d.departure.player;
        // A ghost of it may have arrived meanwhile from a zone that believed it owned it.
        if self.sim.is_ghost(id) {
            self.sim.remove_character(id);
            self.border.ghosts.remove(&id);
        }
        if self.sim.insert_character(id, d.departure.character).is_ok() {
            let mut slot = d.slot;
            if let Some(c) = cell {
                slot.cell = Some(c);
            }
            self.players.insert(id, slot);
        }
    }

    /// A player handed over by a neighbour (`[handoff-3]`, `[handoff-4]`). `arrived` is when the
    /// message reached the zone (the input buffer's clock). Returns false if refused.
    pub fn arrive(&mut self, h: &pwn_proto::HandoffPlayer, arrived: u64) -> bool {
        let id = EntityId(h.player);
        let now = self.sim.tick().0;
        let replayed = self.border.left_at.get(&id).is_some_and(|t| h.tick <= *t)
            || h.tick.saturating_add(HANDOFF_AGE_MAX_TICKS) < now
            || h.tick > now.saturating_add(GHOST_FUTURE_TICKS_MAX);
        if !id.is_gameplay()
            || self.players.contains_key(&id)
            || self.border.departing.contains_key(&id)
            || replayed
            || !plausible(&h.character)
        {
            self.border.counters.arrivals_refused += 1;
            return false;
        }
        if self.sim.is_ghost(id) {
            self.sim.remove_character(id);
        }
        self.border.ghosts.remove(&id);
        let mut state = h.character.state();
        // The input the character repeats is sanitized like any input (`[input]` rules).
        state.last_input = state.last_input.sanitized();
        if self.sim.insert_character(id, state).is_err() {
            self.border.counters.arrivals_refused += 1;
            return false;
        }
        let waiting: Vec<PlayerInput> = h.waiting.iter().map(ExactInput::input).collect();
        let tick_hz = self.sim.config().tick_hz;
        self.players.insert(
            id,
            PlayerSlot {
                inputs: InputBuffer::resumed(h.last_released, &waiting, arrived),
                snapshots: ClientSnapshots::new(tick_hz),
                chat_tokens: self.cfg.chat_lines_per_s,
                cell: Some(CellKey { level: h.to_cell.level, path: h.to_cell.path }),
            },
        );
        self.pending_events.push((id, GameEvent::AuthorityMoved { tick: self.sim.tick().0 + 1 }));
        self.border.counters.handoffs_in += 1;
        true
    }

    /// This zone's players and departing players near other zones, per zone (`[border-3]`,
    /// `[handoff-2]`).
    pub fn ghost_batches(&self, territory: &Territory) -> BTreeMap<ZoneId, Vec<GhostState>> {
        let mut out: BTreeMap<ZoneId, Vec<GhostState>> = territory.neighbour_batches();
        let mut targets = Vec::new();
        let local = self.players.keys().filter_map(|id| self.sim.character(*id).map(|c| (*id, c)));
        let frozen = self.border.departing.values().map(|d| (d.departure.player, &d.departure.character));
        for (id, c) in local.chain(frozen) {
            territory.ghost_targets(c.position_m.x, c.position_m.z, &mut targets);
            for node in &targets {
                out.entry(*node).or_default().push(GhostState { id: id.0, character: WireCharacter::of(c) });
            }
        }
        out
    }

    /// A batch of ghosts from `from` at `tick` (`[ghost-1]`).
    pub fn apply_ghosts(&mut self, from: ZoneId, tick: u64, complete: bool, states: &[GhostState]) {
        let future = tick > self.sim.tick().0.saturating_add(GHOST_FUTURE_TICKS_MAX);
        if future || self.border.batches.get(&from).is_some_and(|t| tick < *t) {
            self.border.counters.ghost_batches_stale += 1;
            return;
        }
        self.border.batches.insert(from, tick);
        let lag = (self.sim.tick().0 + 1).saturating_sub(tick).min(GHOST_LAG_BUCKETS as u64 - 1) as usize;
        self.border.counters.ghost_lag_ticks[lag] += states.len() as u64;
        for g in states {
            let id = EntityId(g.id);
            let known = self.border.ghosts.contains_key(&id);
            if self.players.contains_key(&id)
                || self.border.departing.contains_key(&id)
                || (!known && self.border.ghosts.len() >= GHOSTS_MAX)
                || !plausible(&g.character)
                || !self.sim.upsert_ghost(id, g.character.state())
            {
                self.border.counters.ghosts_refused += 1;
                continue;
            }
            self.border.ghosts.insert(id, (from, tick));
        }
        if complete {
            let gone: Vec<EntityId> =
                self.border.ghosts.iter().filter(|(_, (n, t))| *n == from && *t < tick).map(|(id, _)| *id).collect();
            for id in gone {
                self.border.ghosts.remove(&id);
                if self.sim.is_ghost(id) {
                    self.sim.remove_character(id);
                }
            }
        }
    }

    /// Drops the ghost of `id`, if this zone holds one.
    pub(crate) fn drop_ghost(&mut self, id: EntityId) {
        if self.border.ghosts.remove(&id).is_some() && self.sim.is_ghost(id) {
            self.sim.remove_character(id);
        }
    }

    /// Drops every ghost of `from` (its link ended, or it no longer serves a neighbour cell).
    pub fn drop_ghosts_of(&mut self, from: ZoneId) {
        self.border.batches.remove(&from);
        let gone: Vec<EntityId> =
            self.border.ghosts.iter().filter(|(_, (n, _))| *n == from).map(|(id, _)| *id).collect();
        for id in gone {
            self.border.ghosts.remove(&id);
            if self.sim.is_ghost(id) {
                self.sim.remove_character(id);
            }
        }
    }

    /// The hits this tick's shots scored on ghosts, for their owners (`[ghost-2]`).
    pub fn ghost_hits(&self, report: &pwn_sim::StepReport) -> Vec<GhostHitOut> {
        let damage = self.sim.config().projectile.damage;
        report
            .events
            .iter()
            .filter_map(|e| match *e {
                SimEvent::Hit { projectile, shooter, target: HitTarget::Character(t), .. } => {
                    let (node, _) = self.border.ghosts.get(&t)?;
                    Some(GhostHitOut {
                        node: *node,
                        hit: pwn_proto::GhostHit { projectile: projectile.0, shooter: shooter.0, target: t.0, damage },
                    })
                }
                _ => None,
            })
            .collect()
    }

    /// A hit a neighbour's shot scored on one of this zone's players while it was a ghost
    /// there: applied once per projectile (`[ghost-2]`). Returns the damage dealt.
    pub fn apply_ghost_hit(&mut self, hit: &pwn_proto::GhostHit) -> u16 {
        if !self.border.hits_seen.insert(hit.projectile) {
            self.border.counters.hits_repeated += 1;
            return 0;
        }
        self.border.hits_order.push_back(hit.projectile);
        if self.border.hits_order.len() > HITS_REMEMBERED_MAX
            && let Some(old) = self.border.hits_order.pop_front()
        {
            self.border.hits_seen.remove(&old);
        }
        let target = EntityId(hit.target);
        if !self.players.contains_key(&target) {
            return 0;
        }
        let mut events = Vec::new();
        // A hit deals what a projectile deals, whatever the message says.
        let damage = hit.damage.min(self.sim.config().projectile.damage);
        let dealt = self.sim.apply_remote_hit(target, damage, EntityId(hit.shooter), &mut events);
        for e in events {
            if let SimEvent::Death { entity, killer } = e {
                let death = GameEvent::Death { entity: entity.0, killer: killer.map_or(0, |k| k.0) };
                let everyone: Vec<EntityId> = self.players.keys().copied().collect();
                self.pending_events.extend(everyone.into_iter().map(|p| (p, death.clone())));
            }
        }
        dealt
    }
}
