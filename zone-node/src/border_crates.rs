//! Crates across borders, as a pure extension of the zone core. In a partitioned world a crate
//! is simulated by the zone whose cell owns it in the store (its owner record,
//! `pwn_store::ownership`), held as a ghost by neighbours within the ghost margin, left out
//! everywhere else, and handed from zone to zone like a player: one fenced store transaction
//! moves its owner record and its state ([`Zone::crate_border_pass`], [`Zone::arrive_crate`]).
//! A world that is not partitioned simulates every crate, as before.
//!
//! Rules:
//! - `[crate-1]` a zone of a partitioned world starts with every crate left out
//!   (`CrateMode::Away`); a cell's crates are simulated once the shell has read them with their
//!   owner records (`crate::persist::load_cell_crates`), and left out again when the cell is lost
//!   (departing ones too); the shell reads its cells again every few seconds and adopts crates
//!   the store says are its own that it does not simulate (a handoff whose message was lost),
//!   never one that left since the read was asked for;
//! - `[crate-2]` after each tick, an owned crate that moved past the hysteresis into another
//!   cell departs: it is frozen where it is (held like a ghost, still ghosted to neighbours) and
//!   handed to the shell, which commits the move of its owner record with its state, fenced by
//!   both cells' leases; then it is the taking zone's (`HandoffCrate`), or, on failure, simulated
//!   here again as it was;
//! - `[crate-3]` an arriving crate is simulated from the state it was handed at, velocities
//!   included; one this zone owns or is handing over already, a replay (no newer than when it
//!   last left this zone), an unknown crate, or a state no simulation produces (not a unit
//!   rotation, faster than 100 m/s or spinning faster than 100 rad/s,
//!   `pwn_sim::handover::crate_state_valid`) is refused (counted), as are such crate ghosts; the
//!   shell also checks the cell and the sender;
//! - `[crate-4]` each tick, owned and departing crates within the ghost margin of another zone's
//!   cells go to that zone, which holds them as kinematic ghosts at the reported pose; a
//!   complete batch leaves out the sender's crate ghosts it does not name, as does
//!   `GHOST_STALE_TICKS` of silence; a crate ghost never replaces a crate this zone owns.

use crate::border::{GHOST_FUTURE_TICKS_MAX, HANDOFF_AGE_MAX_TICKS};
use crate::persist::CrateState;
use crate::territory::{Placement, Territory};
use crate::zone::Zone;
use glam::{Quat, Vec3};
use pwn_partitioner::{Epoch, ZoneId};
use pwn_proto::{HandoffCrate, WireCell, WireCrate};
use pwn_sim::{CrateMode, EntityId};
use pwn_store::keys::CellKey;
use std::collections::{BTreeMap, HashMap};

/// Ticks a crate handed away stays held where it left, waiting for its new owner's ghosts.
pub const CRATE_HANDOFF_GRACE_TICKS: u64 = 5;

/// A crate leaving for another cell: the shell commits it, then calls [`Zone::crate_departed`]
/// or [`Zone::crate_departure_failed`].
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct CrateDeparture {
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
    pub state: CrateState,
}

impl CrateDeparture {
    /// The message that tells the taking zone (after the commit).
    pub fn message(&self) -> HandoffCrate {
        let cell = |c: CellKey| WireCell { level: c.level, path: c.path };
        HandoffCrate {
            tick: self.tick,
            from_cell: cell(self.from),
            to_cell: cell(self.to),
            to_epoch: self.to_epoch.0,
            state: wire(&self.state),
        }
    }
}

/// The wire form of a crate's state.
pub fn wire(c: &CrateState) -> WireCrate {
    WireCrate {
        id: c.id.0,
        position_m: c.position.to_array(),
        rotation: c.rotation.to_array(),
        linvel_mps: c.linvel.to_array(),
        angvel_rps: c.angvel.to_array(),
    }
}

fn unwire(w: &WireCrate) -> CrateState {
    CrateState {
        id: EntityId(w.id),
        position: Vec3::from(w.position_m),
        rotation: Quat::from_array(w.rotation),
        linvel: Vec3::from(w.linvel_mps),
        angvel: Vec3::from(w.angvel_rps),
    }
}

/// Counts of crates crossing borders.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CrateCounters {
    /// Crates handed to other zones (committed).
    pub handoffs_out: u64,
    /// Crates taken from other zones.
    pub handoffs_in: u64,
    /// Departures put back after a failed commit.
    pub handoffs_failed: u64,
    /// Arrivals and ghost states refused (`[crate-3]`, `[crate-4]`).
    pub refused: u64,
}

/// The zone's crates in a partitioned world.
#[derive(Default)]
pub struct CrateBook {
    partitioned: bool,
    /// Crates simulated here, by the cell owning each.
    owned: BTreeMap<EntityId, CellKey>,
    departing: BTreeMap<EntityId, CrateDeparture>,
    /// Each crate ghost's owner and the tick of the batch that last named it.
    ghosts: BTreeMap<EntityId, (ZoneId, u64)>,
    batches: BTreeMap<ZoneId, u64>,
    /// The tick each crate last left this zone at (`[crate-3]`); at most one per crate.
    left_at: HashMap<EntityId, u64>,
    counters: CrateCounters,
}

impl Zone {
    /// The counters of crates crossing borders.
    pub fn crate_counters(&self) -> &CrateCounters {
        &self.crates.counters
    }

    /// The zone serves part of a partitioned world: every crate is left out until its cell's
    /// owner loads it (`[crate-1]`).
    pub fn partition_crates(&mut self) {
        self.crates.partitioned = true;
        let ids: Vec<EntityId> = self.sim.crates().map(|(id, ..)| id).collect();
        for id in ids {
            self.sim.set_crate_mode(id, CrateMode::Away, None);
        }
    }

    /// The cell owning crate `id` here, if this zone simulates it.
    pub fn crate_cell(&self, id: EntityId) -> Option<CellKey> {
        self.crates.owned.get(&id).copied()
    }

    /// The zone `id` belongs to, if this zone holds it as a crate ghost.
    pub fn crate_ghost_owner(&self, id: EntityId) -> Option<ZoneId> {
        self.crates.ghosts.get(&id).map(|(n, _)| *n)
    }

    /// Whether crate `id` is departing (its handoff not yet committed).
    pub fn is_crate_departing(&self, id: EntityId) -> bool {
        self.crates.departing.contains_key(&id)
    }

    /// Each crate ghost held and the zone it belongs to.
    pub fn crate_ghosts(&self) -> impl Iterator<Item = (EntityId, ZoneId)> + '_ {
        self.crates.ghosts.iter().map(|(id, (n, _))| (*id, *n))
    }

    /// `cell`'s crates as the store holds them: simulated here from now on (`[crate-1]`). A
    /// crate without a stored state keeps its pose here. Crates this zone simulates or is
    /// handing over already are left as they are (the store's state of them is older), so the
    /// shell may read a cell again to adopt crates whose handoff message never came.
    /// `read_at` is the tick the read was asked for: a crate that left this zone since then may
    /// still be this cell's in that read, and is not taken back.
    pub fn own_crates(&mut self, cell: CellKey, crates: &[(EntityId, Option<CrateState>)], read_at: u64) -> usize {
        let mut n = 0;
        for (id, state) in crates {
            if self.crates.departing.contains_key(id)
                || self.crates.owned.contains_key(id)
                || self.crates.left_at.get(id).is_some_and(|t| *t >= read_at)
            {
                continue;
            }
            let s = state.map(|c| (c.position, c.rotation, c.linvel, c.angvel));
            if self.sim.set_crate_mode(*id, CrateMode::Simulated, s)
                || self.sim.set_crate_mode(*id, CrateMode::Simulated, None)
            {
                self.crates.owned.insert(*id, cell);
                self.crates.ghosts.remove(id);
                n += 1;
            }
        }
        n
    }

    /// The crates of `cells` (lost) are left out (`[crate-1]`), those departing from them too:
    /// whatever their commit's outcome, they are not this zone's to simulate any more (a
    /// committed one is told to its taker all the same).
    pub fn leave_crates_of(&mut self, cells: &[CellKey]) {
        let gone: Vec<EntityId> =
            self.crates.owned.iter().filter(|(_, c)| cells.contains(c)).map(|(id, _)| *id).collect();
        for id in gone {
            self.crates.owned.remove(&id);
            self.sim.set_crate_mode(id, CrateMode::Away, None);
        }
        let leaving: Vec<EntityId> =
            self.crates.departing.iter().filter(|(_, d)| cells.contains(&d.from)).map(|(id, _)| *id).collect();
        for id in leaving {
            self.crates.departing.remove(&id);
            self.crates.ghosts.remove(&id);
            self.sim.set_crate_mode(id, CrateMode::Away, None);
        }
    }

    /// The crates `cell` owns here, with their state now (for its checkpoint).
    pub fn crates_of(&self, cell: CellKey) -> Vec<CrateState> {
        self.crates
            .owned
            .iter()
            .filter(|(_, c)| **c == cell)
            .filter_map(|(id, _)| {
                let (position, rotation, linvel, angvel) = self.sim.crate_state(*id)?;
                Some(CrateState { id: *id, position, rotation, linvel, angvel })
            })
            .collect()
    }

    /// After a tick: the owned crates that moved into another cell (`[crate-2]`).
    pub fn crate_border_pass(&mut self, territory: &Territory) -> Vec<CrateDeparture> {
        let tick = self.sim.tick().0;
        let mut out = Vec::new();
        let owned: Vec<(EntityId, CellKey)> = self.crates.owned.iter().map(|(id, c)| (*id, *c)).collect();
        for (id, cell) in owned {
            let Some((position, rotation, linvel, angvel)) = self.sim.crate_state(id) else { continue };
            let Placement::Move { cell: to, node, epoch } = territory.place(cell, position.x, position.z) else {
                continue;
            };
            let state = CrateState { id, position, rotation, linvel, angvel };
            let d = CrateDeparture { tick, from: cell, to, node, to_epoch: epoch, state };
            self.crates.owned.remove(&id);
            self.sim.set_crate_mode(id, CrateMode::Ghost, None);
            self.crates.departing.insert(id, d);
            out.push(d);
        }
        out
    }

    /// The shell committed crate `id`'s handoff: it is the taking cell's (simulated on here for
    /// a move between this zone's cells; otherwise held where it left until its new owner's
    /// ghosts name it).
    pub fn crate_departed(&mut self, id: EntityId, me: ZoneId) {
        let Some(d) = self.crates.departing.remove(&id) else { return };
        if d.node == me {
            self.resume_crate(&d, d.to);
            return;
        }
        self.crates.counters.handoffs_out += 1;
        self.crates.left_at.insert(id, d.tick);
        let until = self.sim.tick().0 + CRATE_HANDOFF_GRACE_TICKS;
        self.crates.ghosts.insert(id, (d.node, until));
    }

    /// The handoff of crate `id` failed: it is simulated here again as it was (`[crate-2]`).
    pub fn crate_departure_failed(&mut self, id: EntityId) {
        if let Some(d) = self.crates.departing.remove(&id) {
            self.crates.counters.handoffs_failed += 1;
            self.resume_crate(&d, d.from);
        }
    }

    /// The handoff of crate `id` was fenced: this zone may not write it, so it is not its to
    /// simulate; it is left out.
    pub fn crate_departure_lost(&mut self, id: EntityId) {
        if self.crates.departing.remove(&id).is_some() {
            self.crates.counters.handoffs_failed += 1;
            self.sim.set_crate_mode(id, CrateMode::Away, None);
        }
    }

    fn resume_crate(&mut self, d: &CrateDeparture, cell: CellKey) {
        let s = d.state;
        let id = s.id;
        self.crates.ghosts.remove(&id);
        if self.sim.set_crate_mode(id, CrateMode::Simulated, Some((s.position, s.rotation, s.linvel, s.angvel))) {
            self.crates.owned.insert(id, cell);
        }
    }

    /// A crate handed over by a neighbour (`[crate-3]`). Returns false if refused.
    pub fn arrive_crate(&mut self, h: &HandoffCrate) -> bool {
        let id = EntityId(h.state.id);
        let now = self.sim.tick().0;
        let replayed = self.crates.left_at.get(&id).is_some_and(|t| h.tick <= *t)
            || h.tick.saturating_add(HANDOFF_AGE_MAX_TICKS) < now
            || h.tick > now.saturating_add(GHOST_FUTURE_TICKS_MAX);
        let s = unwire(&h.state);
        let fresh = self.sim.crate_mode(id).is_some()
            && !self.crates.owned.contains_key(&id)
            && !self.crates.departing.contains_key(&id);
        if replayed
            || !fresh
            || !h.state.is_finite()
            || !self.sim.set_crate_mode(id, CrateMode::Simulated, Some((s.position, s.rotation, s.linvel, s.angvel)))
        {
            self.crates.counters.refused += 1;
            return false;
        }
        self.crates.ghosts.remove(&id);
        self.crates.owned.insert(id, CellKey { level: h.to_cell.level, path: h.to_cell.path });
        self.crates.counters.handoffs_in += 1;
        true
    }

    /// Owned and departing crates near other zones, per zone (`[crate-4]`). Every neighbour
    /// gets a batch, empty or not, so it leaves out what went away.
    pub fn crate_ghost_batches(&self, territory: &Territory) -> BTreeMap<ZoneId, Vec<WireCrate>> {
        if !self.crates.partitioned {
            return BTreeMap::new();
        }
        let mut out: BTreeMap<ZoneId, Vec<WireCrate>> = territory.neighbour_batches();
        let mut targets = Vec::new();
        let owned = self.crates.owned.keys().filter_map(|id| {
            let (position, rotation, linvel, angvel) = self.sim.crate_state(*id)?;
            Some(CrateState { id: *id, position, rotation, linvel, angvel })
        });
        let departing = self.crates.departing.values().map(|d| d.state);
        for c in owned.chain(departing) {
            territory.ghost_targets(c.position.x, c.position.z, &mut targets);
            for node in &targets {
                out.entry(*node).or_default().push(wire(&c));
            }
        }
        out
    }

    /// A batch of crate ghosts from `from` at `tick` (`[crate-4]`).
    pub fn apply_crate_ghosts(&mut self, from: ZoneId, tick: u64, complete: bool, crates: &[WireCrate]) {
        let future = tick > self.sim.tick().0.saturating_add(GHOST_FUTURE_TICKS_MAX);
        if !self.crates.partitioned || future || self.crates.batches.get(&from).is_some_and(|t| tick < *t) {
            self.crates.counters.refused += 1;
            return;
        }
        self.crates.batches.insert(from, tick);
        for w in crates {
            let id = EntityId(w.id);
            let s = unwire(w);
            if self.crates.owned.contains_key(&id)
                || self.crates.departing.contains_key(&id)
                || !w.is_finite()
                || !self.sim.set_crate_mode(id, CrateMode::Ghost, Some((s.position, s.rotation, s.linvel, s.angvel)))
            {
                self.crates.counters.refused += 1;
                continue;
            }
            let t = self.crates.ghosts.get(&id).map_or(tick, |(_, t)| tick.max(*t));
            self.crates.ghosts.insert(id, (from, t));
        }
        if complete {
            let gone: Vec<EntityId> =
                self.crates.ghosts.iter().filter(|(_, (n, t))| *n == from && *t < tick).map(|(id, _)| *id).collect();
            self.leave_out(&gone);
        }
    }

    /// Leaves out crate ghosts no batch named for `max_age_ticks` (`[crate-4]`).
    pub fn expire_crate_ghosts(&mut self, max_age_ticks: u64) {
        let now = self.sim.tick().0;
        let stale: Vec<EntityId> = self
            .crates
            .ghosts
            .iter()
            .filter(|(_, (_, t))| now.saturating_sub(*t) > max_age_ticks)
            .map(|(id, _)| *id)
            .collect();
        self.leave_out(&stale);
    }

    /// Leaves out every crate ghost of `from`.
    pub fn drop_crate_ghosts_of(&mut self, from: ZoneId) {
        self.crates.batches.remove(&from);
        let gone: Vec<EntityId> =
            self.crates.ghosts.iter().filter(|(_, (n, _))| *n == from).map(|(id, _)| *id).collect();
        self.leave_out(&gone);
    }

    fn leave_out(&mut self, ids: &[EntityId]) {
        for id in ids {
            self.crates.ghosts.remove(id);
            self.sim.set_crate_mode(*id, CrateMode::Away, None);
        }
    }
}
