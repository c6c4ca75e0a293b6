//! World objects: things players place, move, turn, change and remove (walls, doors, crates of
//! their own), of kinds the world file declares ([`ObjectKind`]).
//!
//! An object is a box of its kind's size: a fixed body (a wall, a door) or a dynamic one
//! (pushed, shot and stacked like the world file's crates). Its state is a small number whose
//! meaning the game gives (a door open or shut); states listed as passable do not collide.
//! Object ids carry their kind (`EntityId::object`), so a client that sees an id in a snapshot
//! knows its shape without another message.
//!
//! The simulation only holds objects; who may edit them, and whether an edit is committed,
//! is the zone's business (`pwn_zone_node::objects`). [`Sim::object_blocked`] is the overlap test
//! the zone validates a placement with.

use crate::ids::EntityId;
use crate::world::Sim;
use glam::{Quat, Vec3};
use rapier3d::prelude::*;
use serde::{Deserialize, Serialize};

/// Most object kinds a world may declare (kinds travel in the low 16 bits of object ids).
pub const OBJECT_KIND_COUNT_MAX: usize = 1_024;
/// Most objects one simulation holds; zones bound objects per cell far below this.
pub const OBJECT_COUNT_MAX: usize = 100_000;
/// Most states one kind may have.
pub const OBJECT_STATES_MAX: u16 = 256;

/// Who may change or remove an object of a kind.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Editors {
    /// Any player in reach.
    #[default]
    Anyone,
    /// Only the player who placed it.
    Owner,
}

/// A kind of world object, declared in the world file (`[[object_kind]]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectKind {
    /// A name for tools and logs ("wall", "door").
    pub name: String,
    /// Half extents of its box.
    pub half_extents_m: [f32; 3],
    /// Whether it is a dynamic body (pushed, shot, falls) or fixed where it is placed.
    #[serde(default)]
    pub dynamic: bool,
    /// Density of a dynamic object.
    #[serde(default = "default_density")]
    pub density_kgpm3: f32,
    /// How many states it has (a door: 2); states are 0..states.
    #[serde(default = "default_states")]
    pub states: u16,
    /// States in which it does not collide (a door's open state).
    #[serde(default)]
    pub passable_states: Vec<u16>,
    /// Who may change or remove it once placed.
    #[serde(default)]
    pub editors: Editors,
}

fn default_density() -> f32 {
    100.0
}

fn default_states() -> u16 {
    1
}

impl ObjectKind {
    /// Checks sizes, density and states; `what` names it in the error.
    pub(crate) fn validate(&self, what: &str) -> Result<(), String> {
        let h = self.half_extents_m;
        if !h.iter().all(|v| v.is_finite() && *v >= 0.05 && *v <= 32.0) {
            return Err(format!("{what} half extents must be in [0.05, 32] m"));
        }
        if !(self.density_kgpm3.is_finite() && self.density_kgpm3 > 0.0 && self.density_kgpm3 < 1e5) {
            return Err(format!("{what} density must be in (0, 1e5)"));
        }
        if self.states == 0 || self.states > OBJECT_STATES_MAX {
            return Err(format!("{what} states must be 1 to {OBJECT_STATES_MAX}"));
        }
        if self.passable_states.iter().any(|s| *s >= self.states) {
            return Err(format!("{what} lists a passable state it does not have"));
        }
        if self.name.is_empty() || self.name.len() > 64 {
            return Err(format!("{what} needs a name of 1 to 64 bytes"));
        }
        Ok(())
    }

    /// Whether objects of this kind collide in `state`.
    pub fn solid_in(&self, state: u16) -> bool {
        !self.passable_states.contains(&state)
    }
}

/// A placed object in the simulation.
#[derive(Clone, Debug)]
pub(crate) struct ObjectBody {
    pub kind: u16,
    pub state: u16,
    pub body: RigidBodyHandle,
    pub collider: ColliderHandle,
}

/// An object as the simulation holds it now.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct ObjectView {
    /// Its id (which carries its kind).
    pub id: EntityId,
    /// Its kind: an index into the world file's kinds.
    pub kind: u16,
    /// Its state.
    pub state: u16,
    /// Centre.
    pub position_m: Vec3,
    /// Orientation.
    pub rotation: Quat,
    /// Linear velocity (zero for fixed objects).
    pub linvel_mps: Vec3,
    /// Angular velocity (zero for fixed objects).
    pub angvel_rps: Vec3,
}

/// Why the simulation refused to hold or change an object.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ObjectRefused {
    /// The id is not an object id, or its kind is not declared.
    #[error("not an object of a declared kind")]
    UnknownKind,
    /// An object with this id is already here.
    #[error("the object already exists")]
    Duplicate,
    /// No object with this id is here.
    #[error("no such object")]
    Missing,
    /// Non-finite, outside the world or not a unit rotation.
    #[error("not a pose an object can have")]
    BadPose,
    /// The state is not one of the kind's states.
    #[error("not a state of its kind")]
    BadState,
    /// The simulation holds the most objects it may.
    #[error("too many objects")]
    Full,
}

impl Sim {
    /// The world file's object kinds.
    pub fn object_kinds(&self) -> &[ObjectKind] {
        &self.desc.object_kinds
    }

    fn object_pose_valid(&self, p: Vec3, r: Quat) -> bool {
        p.is_finite() && r.is_finite() && self.desc.contains_xz(p.x, p.z) && p.y.abs() <= 4096.0 && r.length() > 0.5
    }

    /// Holds a new object at a pose (position and rotation, snapped to the grids) in `state`.
    pub fn place_object(
        &mut self,
        id: EntityId,
        position: Vec3,
        rotation: Quat,
        state: u16,
    ) -> Result<(), ObjectRefused> {
        let kind_index = id.object_kind().ok_or(ObjectRefused::UnknownKind)?;
        let kind = self.desc.object_kinds.get(usize::from(kind_index)).ok_or(ObjectRefused::UnknownKind)?.clone();
        if self.objects.contains_key(&id) {
            return Err(ObjectRefused::Duplicate);
        }
        if !self.object_pose_valid(position, rotation) {
            return Err(ObjectRefused::BadPose);
        }
        if state >= kind.states {
            return Err(ObjectRefused::BadState);
        }
        if self.objects.len() >= OBJECT_COUNT_MAX {
            return Err(ObjectRefused::Full);
        }
        let (position, rotation) = snap_pose(position, rotation);
        let body = if kind.dynamic { RigidBodyBuilder::dynamic() } else { RigidBodyBuilder::fixed() };
        let h = kind.half_extents_m;
        let (body, collider) = self.physics.insert(
            body.pose(Pose::from_parts(position, rotation)).user_data(u128::from(id.0)),
            ColliderBuilder::cuboid(h[0], h[1], h[2]).density(kind.density_kgpm3).user_data(u128::from(id.0)),
        );
        self.physics.colliders[collider].set_enabled(kind.solid_in(state));
        self.objects.insert(id, ObjectBody { kind: kind_index, state, body, collider });
        self.physics.bodies.propagate_modified_body_positions_to_colliders(&mut self.physics.colliders);
        Ok(())
    }

    /// Moves or turns an object (a dynamic one keeps its kind and comes to rest there).
    pub fn move_object(&mut self, id: EntityId, position: Vec3, rotation: Quat) -> Result<(), ObjectRefused> {
        self.set_object_motion(id, position, rotation, Vec3::ZERO, Vec3::ZERO)
    }

    /// Puts an object at a pose with velocities (a checkpoint of a dynamic object, or a client
    /// mirroring the server).
    pub fn set_object_motion(
        &mut self,
        id: EntityId,
        position: Vec3,
        rotation: Quat,
        linvel: Vec3,
        angvel: Vec3,
    ) -> Result<(), ObjectRefused> {
        if !self.object_pose_valid(position, rotation) || !linvel.is_finite() || !angvel.is_finite() {
            return Err(ObjectRefused::BadPose);
        }
        let o = self.objects.get(&id).ok_or(ObjectRefused::Missing)?;
        let (position, rotation) = snap_pose(position, rotation);
        let b = self.physics.bodies.get_mut(o.body).ok_or(ObjectRefused::Missing)?;
        b.set_translation(position, true);
        b.set_rotation(rotation, true);
        if b.is_dynamic() {
            b.set_linvel(linvel, true);
            b.set_angvel(angvel, true);
        }
        self.physics.bodies.propagate_modified_body_positions_to_colliders(&mut self.physics.colliders);
        Ok(())
    }

    /// Holds an object still where it is put (another zone's object held as a ghost: only its
    /// owner simulates it, so here it is kinematic, moved only by [`Sim::move_object`]).
    pub fn hold_object(&mut self, id: EntityId) -> Result<(), ObjectRefused> {
        let o = self.objects.get(&id).ok_or(ObjectRefused::Missing)?;
        let b = self.physics.bodies.get_mut(o.body).ok_or(ObjectRefused::Missing)?;
        if b.is_dynamic() {
            b.set_body_type(RigidBodyType::KinematicPositionBased, true);
        }
        Ok(())
    }

    /// Lets a held object move again (its kind dynamic): the opposite of [`Sim::hold_object`].
    pub fn free_object(&mut self, id: EntityId) -> Result<(), ObjectRefused> {
        let o = self.objects.get(&id).ok_or(ObjectRefused::Missing)?;
        let dynamic = self.desc.object_kinds.get(usize::from(o.kind)).is_some_and(|k| k.dynamic);
        let b = self.physics.bodies.get_mut(o.body).ok_or(ObjectRefused::Missing)?;
        if dynamic && !b.is_dynamic() {
            b.set_body_type(RigidBodyType::Dynamic, true);
        }
        Ok(())
    }

    /// Changes an object's state (a door opens: it stops colliding if the state is passable).
    pub fn set_object_state(&mut self, id: EntityId, state: u16) -> Result<(), ObjectRefused> {
        let o = self.objects.get_mut(&id).ok_or(ObjectRefused::Missing)?;
        let kind = &self.desc.object_kinds[usize::from(o.kind)];
        if state >= kind.states {
            return Err(ObjectRefused::BadState);
        }
        o.state = state;
        self.physics.colliders[o.collider].set_enabled(kind.solid_in(state));
        Ok(())
    }

    /// Removes an object; returns how it was.
    pub fn remove_object(&mut self, id: EntityId) -> Option<ObjectView> {
        let view = self.object(id)?;
        let o = self.objects.remove(&id)?;
        self.physics.remove_body(o.body);
        Some(view)
    }

    /// One object.
    pub fn object(&self, id: EntityId) -> Option<ObjectView> {
        let o = self.objects.get(&id)?;
        let b = self.physics.bodies.get(o.body)?;
        Some(ObjectView {
            id,
            kind: o.kind,
            state: o.state,
            position_m: b.translation(),
            rotation: *b.rotation(),
            linvel_mps: b.linvel(),
            angvel_rps: b.angvel(),
        })
    }

    /// Every object, in id order.
    pub fn objects(&self) -> impl Iterator<Item = ObjectView> + '_ {
        self.objects.keys().filter_map(|id| self.object(*id))
    }

    /// Objects held.
    pub fn object_count(&self) -> usize {
        self.objects.len()
    }

    /// What an object of `kind` at this pose would overlap: `Some(id)` of a character, crate
    /// or object in the way (`EntityId(0)` for static geometry or a platform's path: anywhere a
    /// platform goes, with room for what it carries and pushes), `None` when the space is free. The ground does not count (objects may be sunk into it), nor does
    /// `ignore` (an object being moved). The zone refuses placements that overlap.
    pub fn object_blocked(
        &self,
        kind: u16,
        position: Vec3,
        rotation: Quat,
        ignore: Option<EntityId>,
    ) -> Option<EntityId> {
        let k = self.desc.object_kinds.get(usize::from(kind))?;
        let h = k.half_extents_m;
        let shape = Cuboid::new(Vec3::new(h[0], h[1], h[2]));
        let pose = Pose::from_parts(position, rotation.normalize());
        let ground = self.ground;
        // Statics and crates from the broad phase (they move only in a step, which refreshes
        // it); characters and objects by hand, since they may have joined or been placed since.
        let characters = &self.characters;
        let objects = &self.objects;
        let in_tree = |handle: ColliderHandle, c: &Collider| {
            let id = EntityId(c.user_data as u64);
            handle != ground
                && !characters.get(&id).is_some_and(|ch| ch.collider == handle)
                && !objects.get(&id).is_some_and(|o| o.collider == handle)
        };
        let query = self.physics.broad_phase.as_query_pipeline(
            self.physics.narrow_phase.query_dispatcher(),
            &self.physics.bodies,
            &self.physics.colliders,
            QueryFilter::default().exclude_sensors().predicate(&in_tree),
        );
        let mut found = query.intersect_shape(pose, &shape).next().map(|(_, c)| EntityId(c.user_data as u64));
        let touches = |collider: ColliderHandle| {
            self.physics
                .colliders
                .get(collider)
                .is_some_and(|c| c.is_enabled() && overlap(&pose, &shape, c.position(), c.shape()))
        };
        if found.is_none() {
            found = self.objects.iter().find(|(id, o)| Some(**id) != ignore && touches(o.collider)).map(|(id, _)| *id);
        }
        if found.is_none() {
            let c = &self.cfg.character;
            let capsule = Capsule::new_y(c.half_height_m, c.radius_m);
            found = self
                .characters
                .values()
                .find(|ch| {
                    ch.state.alive() && overlap(&pose, &shape, &Pose::from_translation(ch.state.position_m), &capsule)
                })
                .map(|ch| ch.id);
        }
        // Platforms: anywhere along their path, with room for the characters they carry on top
        // and push ahead (carrying and pushing test no collisions, so nothing may stand there).
        if found.is_none() {
            let aabb = shape.compute_aabb(&pose);
            let c = &self.cfg.character;
            let (margin, above) = (2.0 * c.radius_m + 0.1, 2.0 * (c.half_height_m + c.radius_m) + 0.1);
            for path in &self.platforms {
                let (lo, hi) = path.swept(margin, above);
                if (0..3).all(|a| aabb.mins[a] < hi[a] && aabb.maxs[a] > lo[a]) {
                    return Some(EntityId(0));
                }
            }
        }
        found
    }

    /// Whether a character standing at `at` would overlap a solid object (spawn points skip
    /// such spots, so an object built on a spawn point cannot trap those who appear there).
    pub(crate) fn object_at_character(&self, at: Vec3) -> bool {
        let c = &self.cfg.character;
        let capsule = Capsule::new_y(c.half_height_m, c.radius_m);
        let pose = Pose::from_translation(at);
        self.objects.values().any(|o| {
            self.physics
                .colliders
                .get(o.collider)
                .is_some_and(|k| k.is_enabled() && overlap(&pose, &capsule, k.position(), k.shape()))
        })
    }

    /// Moves every live character that overlaps object `id` out of it, sideways along the
    /// object's nearer face (an object committed while someone walked into its place: a wall
    /// placed, a door shut). Returns the characters moved.
    pub fn clear_object_footprint(&mut self, id: EntityId) -> Vec<EntityId> {
        let Some(o) = self.objects.get(&id) else { return Vec::new() };
        let Some(k) = self.physics.colliders.get(o.collider) else { return Vec::new() };
        if !k.is_enabled() {
            return Vec::new();
        }
        let (pose, kind) = (*k.position(), usize::from(o.kind));
        let h = Vec3::from(self.desc.object_kinds[kind].half_extents_m);
        let c = self.cfg.character.clone();
        let capsule = Capsule::new_y(c.half_height_m, c.radius_m);
        let shape = Cuboid::new(h);
        let mut moved = Vec::new();
        for ch in self.characters.values_mut().filter(|ch| !ch.ghost && ch.state.alive()) {
            if !overlap(&pose, &shape, &Pose::from_translation(ch.state.position_m), &capsule) {
                continue;
            }
            // In the object's frame: out through the nearer of its X and Z faces.
            let local = pose.rotation.inverse() * (ch.state.position_m - pose.translation);
            let clear = |half: f32, v: f32| (half + c.radius_m + 0.05) * if v < 0.0 { -1.0 } else { 1.0 };
            let out = if h.x - local.x.abs() < h.z - local.z.abs() {
                Vec3::new(clear(h.x, local.x), local.y, local.z)
            } else {
                Vec3::new(local.x, local.y, clear(h.z, local.z))
            };
            let mut at = pose.translation + pose.rotation * out;
            at.y = ch.state.position_m.y;
            ch.state.position_m = crate::quantize::snap_position(at);
            if let Some(b) = self.physics.bodies.get_mut(ch.body) {
                b.set_translation(ch.state.position_m, true);
                b.set_next_kinematic_translation(ch.state.position_m);
            }
            moved.push(ch.id);
        }
        self.physics.bodies.propagate_modified_body_positions_to_colliders(&mut self.physics.colliders);
        moved
    }

    /// Puts dynamic objects that left the world back inside it, at rest: pushed past an edge or
    /// fallen through the ground, they would be lost to every zone (none could load them).
    pub(crate) fn keep_objects_inside(&mut self) {
        let [x0, z0, x1, z1] = self.desc.xz_bounds();
        let floor = self.desc.ground_y_m;
        for o in self.objects.values() {
            let Some(b) = self.physics.bodies.get_mut(o.body) else { continue };
            if !b.is_dynamic() {
                continue;
            }
            let p = b.translation();
            let h = Vec3::from(self.desc.object_kinds[usize::from(o.kind)].half_extents_m).max_element();
            let inside = Vec3::new(
                p.x.clamp(x0 + h, (x1 - h).max(x0 + h)),
                p.y.max(floor - 1.0),
                p.z.clamp(z0 + h, (z1 - h).max(z0 + h)),
            );
            if inside != p || !p.is_finite() {
                let inside = if inside.is_finite() { inside } else { Vec3::new(x0 + h, floor + h, z0 + h) };
                b.set_translation(Vec3::new(inside.x, inside.y.max(floor + h).min(floor + 4096.0), inside.z), true);
                b.set_linvel(Vec3::ZERO, true);
                b.set_angvel(Vec3::ZERO, true);
            }
        }
        self.physics.bodies.propagate_modified_body_positions_to_colliders(&mut self.physics.colliders);
    }

    /// Colliders of objects that characters bump into (for movement's scene index).
    pub(crate) fn object_colliders(&self) -> impl Iterator<Item = ColliderHandle> + '_ {
        self.objects.values().map(|o| o.collider)
    }

    /// Whether a collider belongs to object `id`.
    pub(crate) fn is_object_collider(&self, id: EntityId, collider: ColliderHandle) -> bool {
        self.objects.get(&id).is_some_and(|o| o.collider == collider)
    }
}

/// Whether two oriented boxes, each (half extents, centre, rotation), intersect.
pub fn boxes_overlap(a: (Vec3, Vec3, Quat), b: (Vec3, Vec3, Quat)) -> bool {
    let (sa, sb) = (Cuboid::new(a.0), Cuboid::new(b.0));
    overlap(&Pose::from_parts(a.1, a.2.normalize()), &sa, &Pose::from_parts(b.1, b.2.normalize()), &sb)
}

/// Whether two shapes intersect (a pair parry cannot test counts as overlapping: refuse
/// rather than let an object into something).
fn overlap(a: &Pose, sa: &dyn Shape, b: &Pose, sb: &dyn Shape) -> bool {
    rapier3d::parry::query::intersection_test(a, sa, b, sb).map_or(true, |i| i.intersecting)
}

/// A pose on the grids: position snapped, rotation normalized and snapped to smallest-three.
fn snap_pose(position: Vec3, rotation: Quat) -> (Vec3, Quat) {
    let r = crate::quantize::dequantize_rotation(crate::quantize::quantize_rotation(rotation.normalize()));
    (crate::quantize::snap_position(position), r)
}
