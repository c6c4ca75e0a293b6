//! Shots across borders, as a pure extension of the zone core: a projectile of this zone that
//! flies into a cell another zone serves is taken out of the simulation and handed to that zone,
//! which flies it on from its exact state and tests its hits against what it simulates
//! ([`Zone::projectiles_leaving`], [`Zone::arrive_projectile`]); shots fired and hits near a
//! border are told to the neighbours, whose players near them fly and end the projectile on
//! their screens like one of their own zone's ([`Zone::border_events`],
//! [`Zone::apply_border_event`]). Projectiles live a few seconds and are never stored, so they
//! move over the zone link alone: the sender forgets one before it sends it, so it is flown by
//! one zone at a time (a link that drops loses it, never doubles it).
//!
//! Rules:
//! - `[shot-1]` after each tick, a projectile in a leaf another zone serves leaves this
//!   simulation and is handed to that zone; one in a leaf nobody serves flies on here;
//! - `[shot-2]` an arriving projectile is refused (counted) unless its tick is within
//!   `SHOT_AGE_MAX_TICKS` of this zone's and newer than any state of it this zone had before
//!   (a replay, or a copy of one that already flew here), fewer than `ARRIVED_IN_FLIGHT_MAX`
//!   arrived ones are in flight, and the simulation takes it (`pwn_sim::Sim::insert_projectile`);
//!   the shell also refuses one outside this zone's cells; its rewind (lag compensation) is
//!   narrowed to this zone's `ZoneConfig::max_rewind_ms`;
//! - `[shot-3]` a shot fired, and a hit, within the ghost margin of another zone's cells is
//!   told to that zone (`BorderEvent`), which gives it to its players within the interest
//!   radius; an arriving projectile is announced (`Fired`) to this zone's players within it.

use crate::territory::Territory;
use crate::zone::Zone;
use pwn_partitioner::ZoneId;
use pwn_proto::{BorderEvent, GameEvent, HandoffProjectile, WireProjectile};
use pwn_sim::quantize::{quantize_position, quantize_velocity};
use pwn_sim::{EntityId, HitTarget, SimEvent, StepReport};
use std::collections::{HashMap, VecDeque};

/// A handed-over projectile whose state is older than this (in ticks) is refused (`[shot-2]`).
pub const SHOT_AGE_MAX_TICKS: u64 = 30;
/// Projectile ids whose last tick here is remembered, to refuse replays. An id is forgotten
/// only once its tick is older than `SHOT_AGE_MAX_TICKS` (a replay of it is refused for its age
/// then); while the memory is full of younger ones, arrivals are refused.
pub const SHOTS_REMEMBERED_MAX: usize = 16_384;
/// Projectiles handed over by neighbours that may be in flight here at once; more are refused
/// (a neighbour cannot make this zone fly an unbounded number of shots).
pub const ARRIVED_IN_FLIGHT_MAX: usize = 4_096;

/// Counts of projectiles crossing borders.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShotCounters {
    /// Projectiles handed to other zones.
    pub out: u64,
    /// Projectiles taken from other zones.
    pub arrived: u64,
    /// Projectiles refused (`[shot-2]`).
    pub refused: u64,
}

/// The zone's memory of projectiles that crossed.
#[derive(Default)]
pub struct ShotBook {
    /// The newest tick each recently crossing projectile had here (left or arrived).
    last_tick: HashMap<EntityId, u64>,
    /// Ids in the order first remembered, with that tick.
    order: VecDeque<(EntityId, u64)>,
    /// Projectiles from neighbours in flight here.
    arrived: std::collections::HashSet<EntityId>,
    counters: ShotCounters,
}

impl ShotBook {
    /// Remembers `id` at `tick`; `force` (a projectile leaving) makes room by forgetting the
    /// oldest id, otherwise a full memory of ids still young enough to be replayed refuses.
    fn remember(&mut self, id: EntityId, tick: u64, now: u64, force: bool) -> bool {
        while let Some((old, t)) = self.order.front().copied() {
            let expired = t.saturating_add(SHOT_AGE_MAX_TICKS) < now;
            let make_room = force && self.order.len() >= SHOTS_REMEMBERED_MAX;
            if !expired && !make_room {
                break;
            }
            self.order.pop_front();
            if self.last_tick.get(&old).is_some_and(|last| *last == t) {
                self.last_tick.remove(&old);
            }
        }
        if !self.last_tick.contains_key(&id) && self.order.len() >= SHOTS_REMEMBERED_MAX {
            return false;
        }
        self.last_tick.insert(id, tick);
        self.order.push_back((id, tick));
        true
    }
}

impl Zone {
    /// The counters of projectiles crossing borders.
    pub fn shot_counters(&self) -> &ShotCounters {
        &self.shots.counters
    }

    /// After a tick: the projectiles that flew into another zone's leaf, taken out of the
    /// simulation, with the zone each goes to (`[shot-1]`).
    pub fn projectiles_leaving(&mut self, territory: &Territory) -> Vec<(ZoneId, HandoffProjectile)> {
        let tick = self.sim.tick().0;
        let sim = &self.sim;
        self.shots.arrived.retain(|id| sim.projectile(*id).is_some());
        let leaving: Vec<(EntityId, ZoneId)> = self
            .sim
            .projectiles()
            .filter_map(|p| {
                let leaf = territory.tree().leaf_at(p.position_m.x, p.position_m.z);
                let (node, _) = territory.owner(leaf)?;
                (node != territory.me()).then_some((p.id, node))
            })
            .collect();
        let mut out = Vec::with_capacity(leaving.len());
        for (id, node) in leaving {
            if let Some(p) = self.sim.take_projectile(id) {
                self.shots.arrived.remove(&id);
                self.shots.remember(id, tick, tick, true);
                self.shots.counters.out += 1;
                out.push((node, HandoffProjectile { tick, projectile: WireProjectile::of(&p) }));
            }
        }
        out
    }

    /// A projectile handed over by a neighbour (`[shot-2]`, `[shot-3]`). Returns false if refused.
    pub fn arrive_projectile(&mut self, h: &HandoffProjectile) -> bool {
        let now = self.sim.tick().0;
        let id = EntityId(h.projectile.id);
        let stale = h.tick.saturating_add(SHOT_AGE_MAX_TICKS) < now
            || h.tick > now.saturating_add(SHOT_AGE_MAX_TICKS)
            || self.shots.last_tick.get(&id).is_some_and(|t| h.tick <= *t);
        if stale
            || self.shots.arrived.len() >= ARRIVED_IN_FLIGHT_MAX
            || !self.shots.remember(id, h.tick, now, false)
            || self.sim.insert_projectile(self.bounded(h.projectile.projectile())).is_err()
        {
            self.shots.counters.refused += 1;
            return false;
        }
        self.shots.arrived.insert(id);
        self.shots.counters.arrived += 1;
        let Some(p) = self.sim.projectile(id) else { return true };
        let fired = GameEvent::Fired {
            projectile: id.0,
            owner: p.owner.0,
            tick: h.tick,
            position: quantize_position(p.position_m),
            velocity: quantize_velocity(p.velocity_mps),
        };
        let at = p.position_m;
        self.tell_near(at, &fired);
        true
    }

    /// A neighbour's projectile with its rewind narrowed to this zone's bound: zones may be
    /// configured apart, and the bound is the operator's of the zone that hit tests the shot.
    fn bounded(&self, mut p: pwn_sim::Projectile) -> pwn_sim::Projectile {
        p.rewind_ticks = u64::from(p.rewind_ticks).min(self.max_rewind_ticks()) as u8;
        p
    }

    /// This tick's shots fired and hits near other zones' cells, for those zones (`[shot-3]`).
    pub fn border_events(&self, report: &StepReport, territory: &Territory) -> Vec<(ZoneId, BorderEvent)> {
        let tick = self.sim.tick().0;
        let mut out = Vec::new();
        let mut targets = Vec::new();
        for e in &report.events {
            let (at, event) = match *e {
                SimEvent::Spawned { entity, kind: pwn_sim::EntityKind::Projectile } => {
                    let Some(p) = self.sim.projectile(entity) else { continue };
                    let fired = GameEvent::Fired {
                        projectile: entity.0,
                        owner: p.owner.0,
                        tick,
                        position: quantize_position(p.position_m),
                        velocity: quantize_velocity(p.velocity_mps),
                    };
                    (p.position_m, fired)
                }
                SimEvent::Hit { projectile, shooter, target, point_m, damage } => {
                    let target = match target {
                        HitTarget::Character(t) | HitTarget::Crate(t) | HitTarget::Object(t) => t.0,
                        HitTarget::World => 0,
                    };
                    let hit = GameEvent::Hit { projectile: projectile.0, shooter: shooter.0, target, damage };
                    (glam::Vec3::from(point_m), hit)
                }
                _ => continue,
            };
            territory.ghost_targets(at.x, at.z, &mut targets);
            for node in &targets {
                out.push((*node, BorderEvent { position_m: at.to_array(), event: event.clone() }));
            }
        }
        out
    }

    /// A shot or hit a neighbour told of: this zone's players within the interest radius of it
    /// hear of it with the next tick's events (`[shot-3]`).
    pub fn apply_border_event(&mut self, e: &BorderEvent) {
        let at = glam::Vec3::from(e.position_m);
        if !at.is_finite() || !matches!(e.event, GameEvent::Fired { .. } | GameEvent::Hit { .. }) {
            return;
        }
        self.tell_near(at, &e.event);
    }

    /// Queues `event` for this zone's players within the interest radius of `at`.
    fn tell_near(&mut self, at: glam::Vec3, event: &GameEvent) {
        let r2 = self.cfg.interest_radius_m * self.cfg.interest_radius_m;
        let near: Vec<EntityId> = self
            .players
            .keys()
            .copied()
            .filter(|p| {
                self.sim.character(*p).is_some_and(|c| {
                    let d = c.position_m - at;
                    d.x * d.x + d.z * d.z <= r2
                })
            })
            .collect();
        self.pending_events.extend(near.into_iter().map(|p| (p, event.clone())));
    }
}
