//! [`Sim`]: one simulated world. Built from a [`WorldDesc`], a [`SimConfig`] and a seed; changed
//! only by [`Sim::step`] (and the prediction calls in `step.rs`), so the same inputs always give
//! the same state.

use crate::character::{Bounds, Character, CharacterState};
use crate::config::{ConfigError, SimConfig};
use crate::controller::Push;
use crate::desc::WorldDesc;
use crate::events::{DespawnReason, EntityKind, SimEvent};
use crate::ids::{EntityId, Tick};
use crate::neighbors::NeighborGrid;
use crate::projectile::Projectile;
use crate::rng::SimRng;
use crate::scene::SceneIndex;
use glam::{EulerRot, Quat, Vec3};
use rapier3d::prelude::*;
use std::collections::BTreeMap;

/// Most characters one simulation holds; a zone splits long before this.
pub const CHARACTER_COUNT_MAX: usize = 100_000;

/// Why a simulation could not be built or changed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SimError {
    /// The configuration is out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The world description is invalid.
    #[error("invalid world description: {0}")]
    World(String),
    /// A character with this id already exists.
    #[error("entity {0} already exists")]
    Duplicate(EntityId),
    /// The id is outside the range for players and gameplay entities.
    #[error("entity id {0} is not in the gameplay range")]
    NotGameplayId(EntityId),
    /// The state to insert is unusable (non-finite or outside the world).
    #[error("invalid character state for {0}: {1}")]
    BadState(EntityId, &'static str),
    /// Too many characters.
    #[error("the simulation already holds {CHARACTER_COUNT_MAX} characters")]
    Full,
}

/// A crate: a dynamic body from the world description.
#[derive(Clone, Debug)]
pub struct CrateBody {
    /// Global id (world-description range).
    pub id: EntityId,
    /// Dynamic body.
    pub body: RigidBodyHandle,
    /// Its collider.
    pub collider: ColliderHandle,
    /// Whether this world simulates it, holds it for another, or leaves it out
    /// (`crate::handover`).
    pub mode: crate::handover::CrateMode,
}

/// One simulated world.
pub struct Sim {
    pub(crate) cfg: SimConfig,
    pub(crate) desc: WorldDesc,
    pub(crate) physics: PhysicsWorld,
    pub(crate) bounds: Bounds,
    pub(crate) tick: Tick,
    pub(crate) rng: SimRng,
    pub(crate) characters: BTreeMap<EntityId, Character>,
    pub(crate) projectiles: BTreeMap<EntityId, Projectile>,
    pub(crate) crates: Vec<CrateBody>,
    /// Placed world objects (`crate::object`).
    pub(crate) objects: BTreeMap<EntityId, crate::object::ObjectBody>,
    /// The ground's collider (objects may overlap it).
    pub(crate) ground: ColliderHandle,
    /// Moving platforms' paths, bodies, and centres at the current tick (`crate::platform`).
    pub(crate) platforms: Vec<crate::platform::PlatformPath>,
    pub(crate) platform_bodies: Vec<(RigidBodyHandle, ColliderHandle)>,
    pub(crate) platform_positions: Vec<Vec3>,
    /// Where characters were in the last ticks (lag compensation).
    pub(crate) history: crate::lagcomp::HitboxHistory,
    /// Scratch: start-of-tick character positions. Not state; rebuilt every tick.
    pub(crate) neighbors: NeighborGrid,
    /// Scratch: pushes collected while moving characters. Not state.
    pub(crate) pushes: Vec<Push>,
    /// Scratch: movement's view of static geometry and crates, refreshed every tick.
    pub(crate) scene: SceneIndex,
    /// Threads that move characters in parallel (`Sim::set_pool`); none: one thread.
    pub(crate) pool: Option<std::sync::Arc<rayon::ThreadPool>>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("world", &self.desc.name)
            .field("tick", &self.tick)
            .field("characters", &self.characters.len())
            .field("projectiles", &self.projectiles.len())
            .field("crates", &self.crates.len())
            .field("objects", &self.objects.len())
            .field("platforms", &self.platforms.len())
            .finish()
    }
}

fn rotation(deg: [f32; 3]) -> Quat {
    Quat::from_euler(EulerRot::XYZ, deg[0].to_radians(), deg[1].to_radians(), deg[2].to_radians())
}

impl Sim {
    /// Builds the world: ground, static boxes, crates. `seed` feeds the only randomness
    /// (spawn point choice).
    pub fn new(desc: WorldDesc, cfg: SimConfig, seed: u64) -> Result<Self, SimError> {
        cfg.validate()?;
        desc.validate().map_err(|e| SimError::World(e.to_string()))?;
        let mut physics = PhysicsWorld::new();
        physics.gravity = Vec3::new(0.0, -cfg.gravity_mps2, 0.0);
        physics.integration_parameters.dt = cfg.dt_s();

        // The ground is a half-space: one huge box would give imprecise contact normals far
        // from its centre, and characters never leave the bounds anyway.
        let (_, ground) = physics.insert(
            RigidBodyBuilder::fixed().translation(Vec3::new(0.0, desc.ground_y_m, 0.0)),
            ColliderBuilder::new(SharedShape::halfspace(Vec3::Y)).friction(0.8),
        );
        let mut statics = Vec::with_capacity(desc.boxes.len());
        for b in &desc.boxes {
            let pose = Pose::from_parts(Vec3::from(b.center_m), rotation(b.rotation_deg));
            let h = b.half_extents_m;
            let (_, collider) =
                physics.insert(RigidBodyBuilder::fixed().pose(pose), ColliderBuilder::cuboid(h[0], h[1], h[2]));
            statics.push(collider);
        }
        let mut crates = Vec::with_capacity(desc.crates.len());
        for (i, c) in desc.crates.iter().enumerate() {
            let id = EntityId::world_entity(i as u32);
            let h = c.half_extents_m;
            let (body, collider) = physics.insert(
                RigidBodyBuilder::dynamic().translation(Vec3::from(c.center_m)).user_data(u128::from(id.0)),
                ColliderBuilder::cuboid(h[0], h[1], h[2]).density(c.density_kgpm3).user_data(u128::from(id.0)),
            );
            crates.push(CrateBody { id, body, collider, mode: crate::handover::CrateMode::Simulated });
        }
        let platforms: Vec<crate::platform::PlatformPath> =
            desc.platforms.iter().map(|p| crate::platform::PlatformPath::new(p, &cfg)).collect();
        let platform_positions: Vec<Vec3> = platforms.iter().map(|p| p.position_at(0)).collect();
        let platform_bodies = platforms
            .iter()
            .zip(&platform_positions)
            .map(|(p, at)| {
                let h = p.half_extents_m;
                physics.insert(
                    RigidBodyBuilder::kinematic_position_based().translation(*at),
                    ColliderBuilder::cuboid(h.x, h.y, h.z),
                )
            })
            .collect();
        let r = cfg.character.radius_m;
        let bounds = Bounds {
            min: [desc.origin_m[0] + r, desc.origin_m[1] + r],
            max: [desc.origin_m[0] + desc.size_m[0] - r, desc.origin_m[1] + desc.size_m[1] - r],
        };
        // One step before any character exists builds the broad phase (so the first tick, and a
        // client that predicts without stepping the world, query the same geometry the server
        // does) and registers the crates with rapier's island manager. A collision-only update
        // would build the broad phase too, but mixing it with full steps on one island manager
        // breaks rapier's bookkeeping.
        physics.step();
        let scene = SceneIndex::new(&physics.colliders, &statics, desc.ground_y_m);
        Ok(Self {
            cfg,
            desc,
            physics,
            bounds,
            tick: Tick(0),
            rng: SimRng::new(seed),
            characters: BTreeMap::new(),
            projectiles: BTreeMap::new(),
            history: crate::lagcomp::HitboxHistory::default(),
            crates,
            objects: BTreeMap::new(),
            ground,
            platforms,
            platform_bodies,
            platform_positions,
            neighbors: NeighborGrid::default(),
            pushes: Vec::new(),
            scene,
            pool: None,
        })
    }

    /// Moves characters on `pool`'s threads from the next step on (none: on the caller's
    /// thread). The outcome is the same bits either way: each character's move reads only the
    /// world as it was at the start of the tick and writes only its own state
    /// (`crate::controller`), and what the moves hand on (pushes, shots) is gathered in id
    /// order, as the serial loop makes it.
    pub fn set_pool(&mut self, pool: Option<std::sync::Arc<rayon::ThreadPool>>) {
        self.pool = pool;
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// The world description.
    pub fn desc(&self) -> &WorldDesc {
        &self.desc
    }

    /// The tick of the world's state: ticks stepped so far, counted from where the world clock
    /// stood when this simulation joined it ([`Sim::join_clock`]).
    pub fn tick(&self) -> Tick {
        self.tick
    }

    /// Sets the tick number the next step follows: a zone node joining the world clock takes
    /// the clock's current tick, so every zone numbers ticks alike and a player's snapshots
    /// and inputs keep their numbering when it changes zone.
    pub fn join_clock(&mut self, tick: Tick) {
        self.tick = tick;
        self.place_platforms(tick.0);
    }

    /// Moves every platform (body and collider at once) to where it is at `tick`.
    pub(crate) fn place_platforms(&mut self, tick: u64) {
        for (i, path) in self.platforms.iter().enumerate() {
            let at = path.position_at(tick);
            self.platform_positions[i] = at;
            let (body, _) = self.platform_bodies[i];
            if let Some(b) = self.physics.bodies.get_mut(body) {
                b.set_translation(at, true);
                b.set_next_kinematic_translation(at);
            }
        }
        self.physics.bodies.propagate_modified_body_positions_to_colliders(&mut self.physics.colliders);
    }

    /// The moving platforms' paths, in world-file order.
    pub fn platforms(&self) -> &[crate::platform::PlatformPath] {
        &self.platforms
    }

    /// Platform centres at the current tick, in world-file order.
    pub fn platform_positions(&self) -> &[Vec3] {
        &self.platform_positions
    }

    /// A character's state.
    pub fn character(&self, id: EntityId) -> Option<&CharacterState> {
        self.characters.get(&id).map(|c| &c.state)
    }

    /// All characters, in id order.
    pub fn characters(&self) -> impl Iterator<Item = (EntityId, &CharacterState)> {
        self.characters.iter().map(|(id, c)| (*id, &c.state))
    }

    /// All projectiles in flight, in id order.
    pub fn projectiles(&self) -> impl Iterator<Item = &Projectile> {
        self.projectiles.values()
    }

    /// One projectile in flight.
    pub fn projectile(&self, id: EntityId) -> Option<&Projectile> {
        self.projectiles.get(&id)
    }

    /// All crates this world simulates or holds as ghosts (not those it leaves out), with
    /// their pose and velocity: (id, position, rotation, linear velocity).
    pub fn crates(&self) -> impl Iterator<Item = (EntityId, Vec3, Quat, Vec3)> + '_ {
        self.crates.iter().filter(|c| c.mode != crate::handover::CrateMode::Away).filter_map(|c| {
            let b = self.physics.bodies.get(c.body)?;
            Some((c.id, b.translation(), *b.rotation(), b.linvel()))
        })
    }

    /// A crate's full motion state, for persistence: position, rotation, linear and angular
    /// velocity.
    pub fn crate_state(&self, id: EntityId) -> Option<(Vec3, Quat, Vec3, Vec3)> {
        let c = self.crates.iter().find(|c| c.id == id)?;
        let b = self.physics.bodies.get(c.body)?;
        Some((b.translation(), *b.rotation(), b.linvel(), b.angvel()))
    }

    /// Puts a crate back where a checkpoint left it (a zone loading its cells). Refuses unknown
    /// crates and states no simulation produces (`crate::handover::crate_state_valid`),
    /// returning false.
    pub fn restore_crate(&mut self, id: EntityId, position: Vec3, rotation: Quat, linvel: Vec3, angvel: Vec3) -> bool {
        if !crate::handover::crate_state_valid(&self.desc, position, rotation, linvel, angvel) {
            return false;
        }
        let Some(c) = self.crates.iter().find(|c| c.id == id) else { return false };
        let Some(b) = self.physics.bodies.get_mut(c.body) else { return false };
        b.set_translation(position, true);
        b.set_rotation(rotation.normalize(), true);
        b.set_linvel(linvel, true);
        b.set_angvel(angvel, true);
        true
    }

    /// Moves a crate to the pose a server reported, colliders included (a client mirrors the
    /// server's crates in the world it predicts against, and never steps physics, so the
    /// collider must move now). Returns false like [`Sim::restore_crate`].
    pub fn mirror_crate(&mut self, id: EntityId, position: Vec3, rotation: Quat) -> bool {
        if !self.restore_crate(id, position, rotation, Vec3::ZERO, Vec3::ZERO) {
            return false;
        }
        self.physics.bodies.propagate_modified_body_positions_to_colliders(&mut self.physics.colliders);
        true
    }

    /// Places another player's character where a server reported it, in a world a client
    /// predicts against: the predicted character then keeps clear of it as the server's does.
    /// It is never stepped there, and projectiles pass through it (its collider is off: hits
    /// are the server's to decide). Returns false for an id or position the world refuses.
    pub fn mirror_character(&mut self, id: EntityId, position: Vec3, velocity: Vec3) -> bool {
        if let Some(ch) = self.characters.get_mut(&id) {
            if !(position.is_finite() && velocity.is_finite()) {
                return false;
            }
            ch.state.position_m = crate::quantize::snap_position(position);
            ch.state.velocity_mps = crate::quantize::snap_velocity(velocity);
            return true;
        }
        let state = CharacterState::spawned_at(position, &self.cfg);
        let Ok(_) = self.insert_character(id, CharacterState { velocity_mps: velocity, ..state }) else { return false };
        if let Some(ch) = self.characters.get(&id) {
            self.physics.colliders[ch.collider].set_enabled(false);
        }
        true
    }

    /// Holds another zone's character as a ghost at the state its owner reported: inserted on
    /// first sight, moved (body and collider at once) after. A ghost is never stepped or
    /// respawned here; local characters keep clear of it and projectiles hit it, but damage to
    /// it is not applied here (its `Hit` reports no damage: the owner applies it). Returns
    /// false for an id or state the world refuses, or an id this world simulates itself.
    pub fn upsert_ghost(&mut self, id: EntityId, state: CharacterState) -> bool {
        let p = state.position_m;
        if !(p.is_finite()
            && state.velocity_mps.is_finite()
            && state.yaw_rad.is_finite()
            && state.pitch_rad.is_finite())
        {
            return false;
        }
        if !self.desc.contains_xz(p.x, p.z) || p.y.abs() > 8192.0 {
            return false;
        }
        match self.characters.get_mut(&id) {
            Some(ch) if !ch.ghost => false,
            Some(ch) => {
                ch.state = CharacterState {
                    position_m: crate::quantize::snap_position(p),
                    velocity_mps: crate::quantize::snap_velocity(state.velocity_mps),
                    ..state
                };
                let alive = ch.state.alive();
                let (body, collider, at) = (ch.body, ch.collider, ch.state.position_m);
                self.physics.colliders[collider].set_enabled(alive);
                if let Some(b) = self.physics.bodies.get_mut(body) {
                    b.set_translation(at, true);
                    b.set_next_kinematic_translation(at);
                }
                self.physics.bodies.propagate_modified_body_positions_to_colliders(&mut self.physics.colliders);
                true
            }
            None => {
                if self.insert_character(id, state).is_err() {
                    return false;
                }
                if let Some(ch) = self.characters.get_mut(&id) {
                    ch.ghost = true;
                }
                self.physics.bodies.propagate_modified_body_positions_to_colliders(&mut self.physics.colliders);
                true
            }
        }
    }

    /// Whether `id` is held as a ghost.
    pub fn is_ghost(&self, id: EntityId) -> bool {
        self.characters.get(&id).is_some_and(|c| c.ghost)
    }

    /// Adds a character at a spawn point chosen with the simulation's seeded randomness.
    pub fn spawn_character(&mut self, id: EntityId) -> Result<SimEvent, SimError> {
        let spawn = self.pick_spawn();
        self.insert_character(id, CharacterState::spawned_at(spawn, &self.cfg))
    }

    /// Adds a character with a given state (a returning player, or one handed over by another
    /// zone). The state is checked: finite, inside the world, on the grid.
    pub fn insert_character(&mut self, id: EntityId, state: CharacterState) -> Result<SimEvent, SimError> {
        if !id.is_gameplay() {
            return Err(SimError::NotGameplayId(id));
        }
        if self.characters.contains_key(&id) {
            return Err(SimError::Duplicate(id));
        }
        if self.characters.len() >= CHARACTER_COUNT_MAX {
            return Err(SimError::Full);
        }
        let p = state.position_m;
        if !(p.is_finite() && state.velocity_mps.is_finite()) {
            return Err(SimError::BadState(id, "non-finite position or velocity"));
        }
        if !self.desc.contains_xz(p.x, p.z) || p.y.abs() > 8192.0 {
            return Err(SimError::BadState(id, "outside the world"));
        }
        let mut state = state;
        state.position_m = crate::quantize::snap_position(p);
        state.velocity_mps = crate::quantize::snap_velocity(state.velocity_mps);
        let c = &self.cfg.character;
        let (body, collider) = self.physics.insert(
            RigidBodyBuilder::kinematic_position_based().translation(state.position_m).user_data(u128::from(id.0)),
            ColliderBuilder::capsule_y(c.half_height_m, c.radius_m).user_data(u128::from(id.0)),
        );
        if !state.alive() {
            self.physics.colliders[collider].set_enabled(false);
        }
        self.characters.insert(id, Character { id, body, collider, state, ghost: false });
        Ok(SimEvent::Spawned { entity: id, kind: EntityKind::Character })
    }

    /// Removes a character (logout, handoff); its projectiles fly on.
    pub fn remove_character(&mut self, id: EntityId) -> Option<(CharacterState, SimEvent)> {
        let ch = self.characters.remove(&id)?;
        self.physics.remove_body(ch.body);
        Some((
            ch.state,
            SimEvent::Despawned { entity: id, kind: EntityKind::Character, reason: DespawnReason::Removed },
        ))
    }

    /// Chooses where a (re)spawning character appears: a spawn point drawn from the seeded RNG,
    /// moved out along a ring when another character already stands there, because two capsules
    /// spawned inside each other would be pushed apart faster than anyone can run.
    pub(crate) fn pick_spawn(&mut self) -> Vec3 {
        let n = self.desc.spawn_points.len() as u32;
        let clearance = 2.0 * self.cfg.character.radius_m + 0.2;
        let mut candidate = Vec3::ZERO;
        for attempt in 0..SPAWN_ATTEMPTS_MAX {
            let base = Vec3::from(self.desc.spawn_points[self.rng.below(n) as usize]);
            let ring = attempt / 4;
            let angle = self.rng.below(360) as f32 * std::f32::consts::PI / 180.0;
            let radius = clearance * ring as f32;
            candidate = base + Vec3::new(angle.cos() * radius, 0.0, angle.sin() * radius);
            candidate.x = candidate.x.clamp(self.bounds.min[0], self.bounds.max[0]);
            candidate.z = candidate.z.clamp(self.bounds.min[1], self.bounds.max[1]);
            let free = self.characters.values().filter(|c| c.state.alive()).all(|c| {
                let d = c.state.position_m - candidate;
                d.x * d.x + d.z * d.z > clearance * clearance
            }) && !self.object_at_character(candidate);
            if free {
                break;
            }
        }
        candidate
    }
}

/// Tries to find a free spot around the spawn points before giving up and overlapping.
const SPAWN_ATTEMPTS_MAX: u32 = 32;
