//! The fixed-tick step and the client's single-character prediction step.
//!
//! Order inside a server tick (the client's prediction follows the same order for its own
//! character, which is why a correct prediction matches the server exactly):
//! 1. respawn characters whose timer ran out (spawn point from the seeded RNG);
//! 2. each live character, in id order: validate its input and move, reading only the world as
//!    it was at the start of the tick (so moves do not depend on each other);
//! 3. apply crate pushes, set characters' kinematic targets, fire projectiles;
//! 4. one rapier step (crates fall and tumble; kinematic characters reach their new poses);
//! 5. each projectile, in id order: swept hit test, damage, despawn or advance.

use crate::character::{Character, effective_input};
use crate::controller::{Env, Push, move_character};
use crate::events::{DespawnReason, EntityKind, HitTarget, SimEvent};
use crate::ids::EntityId;
use crate::input::{Buttons, PlayerInput, SeqVerdict, check_seq};
use crate::projectile::{PROJECTILES_PER_SHOOTER_MAX, Projectile};
use crate::quantize::{snap_position, snap_velocity};
use crate::world::Sim;
use glam::Vec3;
use rapier3d::prelude::*;
use rayon::prelude::*;
use std::collections::BTreeMap;

/// What one step did besides its events: counts for metrics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepReport {
    /// Events in the order they happened.
    pub events: Vec<SimEvent>,
    /// Inputs applied.
    pub inputs_applied: u32,
    /// Characters with no input this tick (their last input was repeated).
    pub inputs_missing: u32,
    /// Inputs dropped as duplicates or older than the last applied one.
    pub inputs_stale: u32,
    /// Inputs dropped for jumping too far ahead.
    pub inputs_too_far_ahead: u32,
    /// Inputs for entities this simulation does not hold.
    pub inputs_unknown: u32,
}

/// Fewer characters than this move on the caller's thread even with a pool (the hand-off
/// would cost more than it saves).
const PARALLEL_MOVES_MIN: usize = 64;

/// A character that fires this tick, with the input it fires by.
type Shooter = (EntityId, PlayerInput);

/// Moves one live character by its fresh input (or its last one repeated); returns it as a
/// shooter if it fires this tick.
fn move_one(env: &Env<'_>, ch: &mut Character, fresh: Option<PlayerInput>, pushes: &mut Vec<Push>) -> Option<Shooter> {
    if !ch.state.alive() {
        return None;
    }
    let input = effective_input(&ch.state, fresh);
    if let Some(i) = fresh {
        ch.state.last_seq = Some(i.seq);
        ch.state.last_input = i;
    }
    move_character(env, ch.id, &mut ch.state, input, pushes);
    ch.state.fire_cooldown_ticks = ch.state.fire_cooldown_ticks.saturating_sub(1);
    (fresh.is_some() && input.buttons.has(Buttons::FIRE) && ch.state.fire_cooldown_ticks == 0).then_some((ch.id, input))
}

impl Sim {
    /// Advances the world by one tick with at most one input per character.
    pub fn step(&mut self, inputs: &BTreeMap<EntityId, PlayerInput>) -> StepReport {
        let mut report = StepReport::default();
        self.tick.0 += 1;
        report.inputs_unknown = inputs.keys().filter(|id| !self.characters.contains_key(id)).count() as u32;
        self.respawn_due(&mut report.events);
        self.advance_platforms(self.tick.0, None);
        // Ghosts belong to other zones: they move only when their owner reports them.
        let ids: Vec<EntityId> = self.characters.values().filter(|c| !c.ghost).map(|c| c.id).collect();
        let mut decided = Vec::with_capacity(ids.len());
        for id in ids {
            let accepted = match inputs.get(&id) {
                None => {
                    report.inputs_missing += 1;
                    None
                }
                Some(raw) => match self.accept_input(id, *raw) {
                    Ok(i) => {
                        report.inputs_applied += 1;
                        Some(i)
                    }
                    Err(SeqVerdict::TooFarAhead) => {
                        report.inputs_too_far_ahead += 1;
                        None
                    }
                    Err(_) => {
                        report.inputs_stale += 1;
                        None
                    }
                },
            };
            decided.push((id, accepted));
        }
        self.move_characters(&decided, None, &mut report.events);
        self.physics.step();
        if !self.objects.is_empty() {
            self.keep_objects_inside();
        }
        let ids: Vec<EntityId> = self.projectiles.keys().copied().collect();
        for id in ids {
            self.advance_projectile(id, true, &mut report.events);
        }
        let centres =
            self.characters.values().filter(|c| c.state.alive()).map(|c| (c.id, c.state.position_m)).collect();
        self.history.record(self.tick.0, centres);
        report
    }

    /// Client-side prediction: advances only `id` and the projectiles it owns by one tick,
    /// exactly as [`Sim::step`] would for that character, without stepping the rest of the world.
    /// Predicted hits despawn the projectile but do not change anyone's health (the server
    /// decides damage). Returns `None` if the character is unknown.
    pub fn predict_step(&mut self, id: EntityId, input: PlayerInput) -> Option<Vec<SimEvent>> {
        let tick = self.tick.0 + 1;
        self.predict_step_at(id, input, tick)
    }

    /// [`Sim::predict_step`] for the server tick `tick` the input will be applied at: moving
    /// platforms are where the server has them at that tick (`crate::platform`), so a
    /// character riding one is predicted exactly.
    pub fn predict_step_at(&mut self, id: EntityId, input: PlayerInput, tick: u64) -> Option<Vec<SimEvent>> {
        self.predict_at(id, Some(input), tick)
    }

    /// A server tick at which the predicted character had no input (it arrived late): the
    /// character repeats its last movement without jump or fire, as [`Sim::step`] does, with
    /// platforms where they are at `tick`. A client that learns the server missed an input
    /// predicts that tick with this, instead of correcting for it.
    pub fn predict_missed_at(&mut self, id: EntityId, tick: u64) -> Option<Vec<SimEvent>> {
        self.predict_at(id, None, tick)
    }

    fn predict_at(&mut self, id: EntityId, input: Option<PlayerInput>, tick: u64) -> Option<Vec<SimEvent>> {
        if !self.characters.contains_key(&id) {
            return None;
        }
        if !self.platforms.is_empty() {
            self.place_platforms(tick.saturating_sub(1));
            self.advance_platforms(tick, Some(id));
        }
        let mut events = Vec::new();
        let accepted = input.and_then(|i| self.accept_input(id, i).ok());
        let near = self.characters.get(&id).map(|c| c.state.position_m);
        self.move_characters(&[(id, accepted)], near, &mut events);
        let owned: Vec<EntityId> = self.projectiles.values().filter(|p| p.owner == id).map(|p| p.id).collect();
        for pid in owned {
            self.advance_projectile(pid, false, &mut events);
        }
        Some(events)
    }

    /// Moves the platforms from where they are to where they are at `tick` and carries or
    /// pushes the characters (`only`: just that one, for prediction) by their motion
    /// (`crate::platform`). The colliders move now, for this tick's character moves; the
    /// bodies reach the same pose in the physics step (kinematic, so crates feel the motion).
    fn advance_platforms(&mut self, tick: u64, only: Option<EntityId>) {
        if self.platforms.is_empty() {
            return;
        }
        let after: Vec<Vec3> = self.platforms.iter().map(|p| p.position_at(tick)).collect();
        let Sim { characters, platforms, platform_positions, cfg, .. } = self;
        for ch in characters.values_mut().filter(|c| !c.ghost && only.is_none_or(|id| id == c.id)) {
            crate::platform::carry(platforms, platform_positions, &after, &mut ch.state, cfg);
        }
        for (i, at) in after.iter().enumerate() {
            let (body, collider) = self.platform_bodies[i];
            if let Some(b) = self.physics.bodies.get_mut(body) {
                b.set_next_kinematic_translation(*at);
            }
            if let Some(c) = self.physics.colliders.get_mut(collider) {
                c.set_translation(*at);
            }
        }
        self.platform_positions = after;
    }

    /// Validates an input against the character's last sequence number and sanitizes it.
    fn accept_input(&self, id: EntityId, raw: PlayerInput) -> Result<PlayerInput, SeqVerdict> {
        let last = self.characters.get(&id).and_then(|c| c.state.last_seq);
        match check_seq(last, raw.seq) {
            SeqVerdict::Apply => Ok(raw.sanitized()),
            other => Err(other),
        }
    }

    /// Moves the given characters (fresh input or `None` to repeat the last), then writes the
    /// results to the physics world: kinematic targets, new shots, and crate pushes. `predicting`
    /// is the predicted character's position on a client: only neighbours near it are indexed,
    /// and crates are not pushed (the server moves them).
    fn move_characters(
        &mut self,
        decided: &[(EntityId, Option<PlayerInput>)],
        predicting: Option<Vec3>,
        events: &mut Vec<SimEvent>,
    ) {
        self.rebuild_neighbors(predicting);
        // Everything that moves or changes: crates, objects, platforms (a small tree, rebuilt).
        let mut crate_colliders: Vec<ColliderHandle> =
            self.crates.iter().filter(|c| c.mode != crate::handover::CrateMode::Away).map(|c| c.collider).collect();
        crate_colliders.extend(self.object_colliders().filter(|h| self.physics.colliders[*h].is_enabled()));
        crate_colliders.extend(self.platform_bodies.iter().map(|(_, c)| *c));
        self.scene.refresh_crates(&self.physics.colliders, &crate_colliders);
        let Sim { physics, characters, neighbors, pushes, cfg, bounds, scene, pool, .. } = self;
        pushes.clear();
        let mut shooters = Vec::new();
        {
            let env = Env {
                dispatcher: physics.narrow_phase.query_dispatcher(),
                bodies: &physics.bodies,
                colliders: &physics.colliders,
                scene,
                neighbors,
                cfg,
                bounds: *bounds,
            };
            let ascending = decided.windows(2).all(|w| w[0].0 < w[1].0);
            match pool.as_ref().filter(|_| decided.len() >= PARALLEL_MOVES_MIN && ascending) {
                Some(pool) => {
                    // The characters to move, matched to their inputs (both in id order).
                    let mut wanted = decided.iter().peekable();
                    let mut work: Vec<(&mut Character, Option<PlayerInput>)> = Vec::with_capacity(decided.len());
                    for (id, ch) in characters.iter_mut() {
                        while wanted.next_if(|(w, _)| w < id).is_some() {}
                        if let Some((_, fresh)) = wanted.next_if(|(w, _)| w == id) {
                            work.push((ch, *fresh));
                        }
                    }
                    let chunk = work.len().div_ceil(pool.current_num_threads() * 4).max(1);
                    let parts: Vec<(Vec<Push>, Vec<Shooter>)> = pool.install(|| {
                        work.par_chunks_mut(chunk)
                            .map(|part| {
                                let (mut pushed, mut fired) = (Vec::new(), Vec::new());
                                for (ch, fresh) in part.iter_mut() {
                                    fired.extend(move_one(&env, ch, *fresh, &mut pushed));
                                }
                                (pushed, fired)
                            })
                            .collect()
                    });
                    // Concatenated in id order: what the serial loop below produces.
                    for (pushed, fired) in parts {
                        pushes.extend(pushed);
                        shooters.extend(fired);
                    }
                }
                None => {
                    for (id, fresh) in decided {
                        let Some(ch) = characters.get_mut(id) else { continue };
                        shooters.extend(move_one(&env, ch, *fresh, pushes));
                    }
                }
            }
        }
        if predicting.is_none() {
            for p in pushes.iter() {
                if let Some(b) = physics.bodies.get_mut(p.body) {
                    b.apply_impulse_at_point(p.impulse, p.point, true);
                }
            }
        }
        for (id, _) in decided {
            if let Some(ch) = characters.get(id)
                && let Some(b) = physics.bodies.get_mut(ch.body)
            {
                b.set_next_kinematic_translation(ch.state.position_m);
            }
        }
        for (id, input) in shooters {
            self.fire(id, input, events);
        }
    }

    /// Rebuilds the grid of live characters' start-of-tick positions (only those that can
    /// matter to a character at `near`, when given).
    fn rebuild_neighbors(&mut self, near: Option<Vec3>) {
        let c = &self.cfg.character;
        // A neighbour further than this cannot come within two radii during one tick.
        let reach = 2.0 * c.radius_m + 2.0 * c.run_speed_mps * self.cfg.dt_s() + 0.01;
        self.neighbors.reset(reach, self.characters.len());
        for (id, ch) in &self.characters {
            let relevant = near.is_none_or(|p| p.distance_squared(ch.state.position_m) <= 4.0 * reach * reach);
            if ch.state.alive() && relevant {
                self.neighbors.insert(*id, ch.state.position_m);
            }
        }
    }

    /// Fires a projectile for `id` if it has fewer than the maximum in flight.
    fn fire(&mut self, id: EntityId, input: PlayerInput, events: &mut Vec<SimEvent>) {
        let owned = self.projectiles.values().filter(|p| p.owner == id).count();
        let pid = EntityId::projectile(id, input.seq);
        if owned >= PROJECTILES_PER_SHOOTER_MAX || self.projectiles.contains_key(&pid) {
            return;
        }
        let Some(ch) = self.characters.get_mut(&id) else { return };
        ch.state.fire_cooldown_ticks = self.cfg.projectile.fire_interval_ticks;
        let aim = PlayerInput { yaw_rad: ch.state.yaw_rad, pitch_rad: ch.state.pitch_rad, ..input }.aim();
        let mut p = Projectile::fired(pid, id, ch.state.eye_m(&self.cfg), aim, &self.cfg);
        p.rewind_ticks = crate::lagcomp::rewind_ticks(self.tick.0, input.view_tick);
        self.projectiles.insert(pid, p);
        events.push(SimEvent::Spawned { entity: pid, kind: EntityKind::Projectile });
    }

    /// Sweeps one projectile over the tick; on a hit applies its effect (damage only when
    /// `authoritative`), otherwise moves it on and ages it.
    fn advance_projectile(&mut self, pid: EntityId, authoritative: bool, events: &mut Vec<SimEvent>) {
        let Some(p) = self.projectiles.get(&pid).cloned() else { return };
        let (displacement, velocity_end) = p.next_motion(&self.cfg);
        // Lag compensation (`crate::lagcomp`): characters as the shooter saw them, `rewind`
        // ticks ago; the server's own step only (a client predicts against what it draws).
        let rewind = if authoritative { u64::from(p.rewind_ticks) } else { 0 };
        let past = if rewind > 0 { self.history.at(self.tick.0.saturating_sub(rewind)) } else { None };
        let mut hit = {
            let owner_body = self.characters.get(&p.owner).map(|c| c.body);
            let characters = &self.characters;
            let not_a_character = |h: ColliderHandle, c: &Collider| {
                !characters.get(&EntityId(c.user_data as u64)).is_some_and(|ch| ch.collider == h)
            };
            let mut filter = QueryFilter::default().exclude_sensors();
            if let Some(b) = owner_body {
                filter = filter.exclude_rigid_body(b);
            }
            if past.is_some() {
                filter = filter.predicate(&not_a_character);
            }
            let query = self.physics.broad_phase.as_query_pipeline(
                self.physics.narrow_phase.query_dispatcher(),
                &self.physics.bodies,
                &self.physics.colliders,
                filter,
            );
            let ray = Ray::new(p.position_m, displacement);
            query.cast_ray(&ray, 1.0, true).map(|(h, toi)| (self.classify(h), Some(h), toi))
        };
        if let Some(centres) = past {
            let c = &self.cfg.character;
            // Only characters alive now can be hit where they were (one dead or gone since
            // is skipped, not allowed to hide those behind it).
            let alive = |id: EntityId| self.characters.get(&id).is_some_and(|ch| ch.state.alive());
            let seen =
                crate::lagcomp::sweep(centres, p.owner, alive, p.position_m, displacement, c.half_height_m, c.radius_m);
            if let Some((victim, toi)) = seen
                && hit.is_none_or(|(_, _, t)| toi < t)
            {
                hit = Some((HitTarget::Character(victim), None, toi));
            }
        }
        let hit = hit.map(|(target, collider, toi)| (target, collider, p.position_m + displacement * toi));
        if let Some((target, collider, point)) = hit {
            let mut damage = 0;
            match target {
                HitTarget::Character(victim) if authoritative && !self.is_ghost(victim) => {
                    damage = self.damage(victim, p.damage, p.owner, events);
                }
                HitTarget::Crate(_) | HitTarget::Object(_) if authoritative => {
                    if let Some(body) = collider.and_then(|h| self.physics.colliders.get(h)).and_then(|c| c.parent()) {
                        let impulse = displacement.normalize_or_zero() * self.cfg.projectile.impulse_ns;
                        self.physics.bodies[body].apply_impulse_at_point(impulse, point, true);
                    }
                }
                _ => {}
            }
            events.push(SimEvent::Hit { projectile: pid, shooter: p.owner, target, point_m: point.to_array(), damage });
            self.despawn_projectile(pid, DespawnReason::Hit, events);
            return;
        }
        let next = p.position_m + displacement;
        let expired =
            p.ticks_left <= 1 || !self.desc.contains_xz(next.x, next.z) || next.y < self.desc.ground_y_m - 100.0;
        if expired {
            self.despawn_projectile(pid, DespawnReason::Expired, events);
            return;
        }
        if let Some(q) = self.projectiles.get_mut(&pid) {
            q.position_m = snap_position(next);
            q.velocity_mps = snap_velocity(velocity_end);
            q.ticks_left -= 1;
        }
    }

    fn despawn_projectile(&mut self, pid: EntityId, reason: DespawnReason, events: &mut Vec<SimEvent>) {
        self.projectiles.remove(&pid);
        events.push(SimEvent::Despawned { entity: pid, kind: EntityKind::Projectile, reason });
    }

    /// What a collider belongs to, from the entity id stored in its user data.
    fn classify(&self, collider: ColliderHandle) -> HitTarget {
        let Some(c) = self.physics.colliders.get(collider) else { return HitTarget::World };
        let id = EntityId(c.user_data as u64);
        if self.characters.get(&id).is_some_and(|ch| ch.collider == collider) {
            HitTarget::Character(id)
        } else if self.crates.iter().any(|k| k.id == id) {
            HitTarget::Crate(id)
        } else if self.is_object_collider(id, collider) {
            HitTarget::Object(id)
        } else {
            HitTarget::World
        }
    }

    /// Applies a hit another zone's projectile scored on this world's character `victim`
    /// while it was a ghost there (the zone applies each projectile's hit once). Returns the
    /// damage dealt; a death is reported in `events`.
    pub fn apply_remote_hit(
        &mut self,
        victim: EntityId,
        amount: u16,
        shooter: EntityId,
        events: &mut Vec<SimEvent>,
    ) -> u16 {
        if self.is_ghost(victim) {
            return 0;
        }
        self.damage(victim, amount, shooter, events)
    }

    /// Applies damage; a character reaching zero dies, stops colliding and starts its respawn timer.
    fn damage(&mut self, victim: EntityId, amount: u16, shooter: EntityId, events: &mut Vec<SimEvent>) -> u16 {
        let respawn_ticks = self.cfg.character.respawn_ticks.max(1);
        let Some(ch) = self.characters.get_mut(&victim) else { return 0 };
        if !ch.state.alive() {
            return 0;
        }
        let dealt = amount.min(ch.state.health);
        ch.state.health -= dealt;
        if !ch.state.alive() {
            ch.state.respawn_ticks = respawn_ticks;
            ch.state.velocity_mps = Vec3::ZERO;
            self.physics.colliders[ch.collider].set_enabled(false);
            events.push(SimEvent::Death { entity: victim, killer: Some(shooter) });
        }
        dealt
    }

    /// Counts down dead characters' timers and respawns those whose time has come.
    fn respawn_due(&mut self, events: &mut Vec<SimEvent>) {
        let due: Vec<EntityId> = self
            .characters
            .values_mut()
            .filter(|c| !c.state.alive() && !c.ghost)
            .filter_map(|c| {
                c.state.respawn_ticks = c.state.respawn_ticks.saturating_sub(1);
                (c.state.respawn_ticks == 0).then_some(c.id)
            })
            .collect();
        for id in due {
            let spawn = snap_position(self.pick_spawn());
            let max_health = self.cfg.character.max_health;
            let Some(ch) = self.characters.get_mut(&id) else { continue };
            ch.state.position_m = spawn;
            ch.state.velocity_mps = Vec3::ZERO;
            ch.state.health = max_health;
            ch.state.grounded = false;
            self.physics.colliders[ch.collider].set_enabled(true);
            if let Some(body) = self.physics.bodies.get_mut(ch.body) {
                body.set_translation(spawn, true);
                body.set_next_kinematic_translation(spawn);
            }
            events.push(SimEvent::Spawned { entity: id, kind: EntityKind::Character });
        }
    }
}
