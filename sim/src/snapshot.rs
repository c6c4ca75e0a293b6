//! Saving and restoring simulation state, and the state hash.
//!
//! Two sizes of snapshot, for two jobs:
//! - [`SimSnapshot`] is the whole world (rapier's sets cloned in memory, plus characters,
//!   projectiles, tick and RNG). Restoring it and stepping again gives the same bits as never
//!   having left; used by determinism checks and, later, by zone checkpoints.
//! - [`PredictedState`] is what a client predicts: its own character and its own projectiles.
//!   It is a few hundred bytes, so a client can keep one per unacknowledged tick and roll back
//!   without touching the rest of the world.

use crate::character::{Character, CharacterState};
use crate::hash::StateHasher;
use crate::ids::{EntityId, Tick};
use crate::projectile::Projectile;
use crate::rng::SimRng;
use crate::world::Sim;
use rapier3d::prelude::*;
use std::collections::BTreeMap;

/// The whole simulation state, in memory.
#[derive(Clone)]
pub struct SimSnapshot {
    tick: Tick,
    rng: SimRng,
    characters: BTreeMap<EntityId, Character>,
    projectiles: BTreeMap<EntityId, Projectile>,
    history: crate::lagcomp::HitboxHistory,
    objects: BTreeMap<EntityId, crate::object::ObjectBody>,
    platform_positions: Vec<glam::Vec3>,
    islands: IslandManager,
    broad_phase: BroadPhaseBvh,
    narrow_phase: NarrowPhase,
    bodies: RigidBodySet,
    colliders: ColliderSet,
    impulse_joints: ImpulseJointSet,
    multibody_joints: MultibodyJointSet,
}

impl std::fmt::Debug for SimSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimSnapshot").field("tick", &self.tick).finish_non_exhaustive()
    }
}

impl SimSnapshot {
    /// The tick the snapshot was taken at.
    pub fn tick(&self) -> Tick {
        self.tick
    }
}

/// One character's predicted state and its projectiles in flight.
#[derive(Clone, Debug, PartialEq)]
pub struct PredictedState {
    /// The predicted character.
    pub id: EntityId,
    /// Its state.
    pub character: CharacterState,
    /// Its projectiles, in id order.
    pub projectiles: Vec<Projectile>,
}

impl Sim {
    /// Captures the whole state.
    pub fn snapshot(&self) -> SimSnapshot {
        let p = &self.physics;
        SimSnapshot {
            tick: self.tick,
            rng: self.rng.clone(),
            characters: self.characters.clone(),
            projectiles: self.projectiles.clone(),
            history: self.history.clone(),
            objects: self.objects.clone(),
            platform_positions: self.platform_positions.clone(),
            islands: p.islands.clone(),
            broad_phase: p.broad_phase.clone(),
            narrow_phase: p.narrow_phase.clone(),
            bodies: p.bodies.clone(),
            colliders: p.colliders.clone(),
            impulse_joints: p.impulse_joints.clone(),
            multibody_joints: p.multibody_joints.clone(),
        }
    }

    /// Puts the whole state back as it was when `snap` was taken (of this same world).
    pub fn restore(&mut self, snap: &SimSnapshot) {
        let s = snap.clone();
        self.tick = s.tick;
        self.rng = s.rng;
        self.characters = s.characters;
        self.projectiles = s.projectiles;
        self.history = s.history;
        self.objects = s.objects;
        self.platform_positions = s.platform_positions;
        let p = &mut self.physics;
        p.islands = s.islands;
        p.broad_phase = s.broad_phase;
        p.narrow_phase = s.narrow_phase;
        p.bodies = s.bodies;
        p.colliders = s.colliders;
        p.impulse_joints = s.impulse_joints;
        p.multibody_joints = s.multibody_joints;
    }

    /// Captures what a client predicts for `id`.
    pub fn save_predicted(&self, id: EntityId) -> Option<PredictedState> {
        let ch = self.characters.get(&id)?;
        Some(PredictedState {
            id,
            character: ch.state.clone(),
            projectiles: self.projectiles.values().filter(|p| p.owner == id).cloned().collect(),
        })
    }

    /// Rolls the predicted character and its projectiles back to `state` (for example the
    /// server's authoritative state), leaving the rest of the world alone. Returns false if the
    /// character is unknown.
    pub fn restore_predicted(&mut self, state: &PredictedState) -> bool {
        let Some(ch) = self.characters.get_mut(&state.id) else { return false };
        ch.state = state.character.clone();
        let alive = ch.state.alive();
        let (body, collider, pos) = (ch.body, ch.collider, ch.state.position_m);
        if let Some(c) = self.physics.colliders.get_mut(collider) {
            c.set_enabled(alive);
        }
        if let Some(b) = self.physics.bodies.get_mut(body) {
            b.set_translation(pos, false);
            b.set_next_kinematic_translation(pos);
        }
        self.projectiles.retain(|_, p| p.owner != state.id);
        for p in &state.projectiles {
            self.projectiles.insert(p.id, p.clone());
        }
        true
    }

    /// A 64-bit hash of everything that evolves: tick, RNG, characters, projectiles, where
    /// characters were (lag compensation), crates, objects, platforms.
    /// Equal hashes on two runs mean (with overwhelming probability) bit-identical worlds.
    pub fn state_hash(&self) -> u64 {
        let mut h = StateHasher::new();
        h.u64(self.tick.0);
        h.u64(self.rng.state());
        for (id, c) in &self.characters {
            h.u64(id.0);
            c.state.hash_into(&mut h);
        }
        for p in self.projectiles.values() {
            p.hash_into(&mut h);
        }
        self.history.hash_into(&mut h);
        for k in &self.crates {
            h.u64(k.id.0);
            if let Some(b) = self.physics.bodies.get(k.body) {
                h.vec3(b.translation());
                let r = b.rotation();
                for v in [r.x, r.y, r.z, r.w] {
                    h.f32(v);
                }
                h.vec3(b.linvel());
                h.vec3(b.angvel());
            }
        }
        for o in self.objects() {
            h.u64(o.id.0);
            h.u32(u32::from(o.state));
            h.vec3(o.position_m);
            for v in [o.rotation.x, o.rotation.y, o.rotation.z, o.rotation.w] {
                h.f32(v);
            }
            h.vec3(o.linvel_mps);
            h.vec3(o.angvel_rps);
        }
        for p in &self.platform_positions {
            h.vec3(*p);
        }
        h.finish()
    }
}
