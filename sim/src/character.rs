//! Characters: capsules moved by rapier's kinematic character controller.
//!
//! A character's state is small and exact (snapped to the quantization grids after every tick),
//! which is what lets the client predict it and compare with the server bit for bit.

use crate::config::SimConfig;
use crate::hash::StateHasher;
use crate::ids::{EntityId, InputSeq};
use crate::input::{Buttons, PlayerInput};
use crate::quantize::{snap_pitch, snap_position, snap_velocity, snap_yaw};
use glam::Vec3;
use rapier3d::control::{CharacterAutostep, CharacterCollision, CharacterLength, KinematicCharacterController};
use rapier3d::prelude::*;

/// Fastest fall; keeps velocities inside the quantization range.
pub const FALL_SPEED_MAX_MPS: f32 = 60.0;
/// Most collisions of one character handled in one tick (the controller reports one per slide).
pub const CHARACTER_COLLISIONS_MAX: usize = 16;

/// Everything about a character that the simulation evolves, all on the quantization grids.
#[derive(Clone, Debug, PartialEq)]
pub struct CharacterState {
    /// Capsule centre.
    pub position_m: Vec3,
    /// Horizontal part: last tick's displacement per second; vertical: the fall/jump speed.
    pub velocity_mps: Vec3,
    /// Heading.
    pub yaw_rad: f32,
    /// Aim elevation.
    pub pitch_rad: f32,
    /// Standing on something after the last move.
    pub grounded: bool,
    /// Health; 0 means dead and waiting to respawn.
    pub health: u16,
    /// Ticks left before a dead character respawns.
    pub respawn_ticks: u16,
    /// Ticks before the next shot is allowed.
    pub fire_cooldown_ticks: u16,
    /// The last applied input (sanitized); repeated, without jump or fire, when one is missing.
    pub last_input: PlayerInput,
    /// Sequence number of the last applied input; `None` before the first.
    pub last_seq: Option<InputSeq>,
}

impl CharacterState {
    /// A live character standing at `position_m` (snapped to the grid when inserted).
    pub fn spawned_at(position_m: Vec3, cfg: &SimConfig) -> Self {
        Self {
            position_m,
            velocity_mps: Vec3::ZERO,
            yaw_rad: 0.0,
            pitch_rad: 0.0,
            grounded: false,
            health: cfg.character.max_health,
            respawn_ticks: 0,
            fire_cooldown_ticks: 0,
            last_input: PlayerInput::default(),
            last_seq: None,
        }
    }

    /// Whether the character is alive.
    pub fn alive(&self) -> bool {
        self.health > 0
    }

    /// Feeds every field into a state hash.
    pub fn hash_into(&self, h: &mut StateHasher) {
        h.vec3(self.position_m);
        h.vec3(self.velocity_mps);
        h.f32(self.yaw_rad);
        h.f32(self.pitch_rad);
        h.u32(u32::from(self.grounded));
        h.u32(u32::from(self.health));
        h.u32(u32::from(self.respawn_ticks));
        h.u32(u32::from(self.fire_cooldown_ticks));
        h.u64(self.last_seq.map_or(u64::MAX, |s| u64::from(s.0)));
        let i = &self.last_input;
        for v in [i.move_x, i.move_z, i.yaw_rad, i.pitch_rad] {
            h.f32(v);
        }
        h.u32(u32::from(i.buttons.0));
    }

    /// Where shots leave from.
    pub fn eye_m(&self, cfg: &SimConfig) -> Vec3 {
        self.position_m + Vec3::Y * cfg.character.eye_height_m
    }
}

/// A character in the physics world: its state plus the rapier handles of its kinematic body.
#[derive(Clone, Debug)]
pub struct Character {
    /// Global id.
    pub id: EntityId,
    /// Kinematic body.
    pub body: RigidBodyHandle,
    /// Capsule collider.
    pub collider: ColliderHandle,
    /// Simulated state.
    pub state: CharacterState,
}

/// The controller all characters share, from the configuration.
pub(crate) fn controller(cfg: &SimConfig) -> KinematicCharacterController {
    let c = &cfg.character;
    KinematicCharacterController {
        up: Vector::Y,
        offset: CharacterLength::Absolute(0.02),
        slide: true,
        autostep: Some(CharacterAutostep {
            max_height: CharacterLength::Absolute(c.step_height_m),
            min_width: CharacterLength::Absolute(c.radius_m * 0.5),
            include_dynamic_bodies: false,
        }),
        max_slope_climb_angle: c.max_slope_climb_deg.to_radians(),
        min_slope_slide_angle: c.min_slope_slide_deg.to_radians(),
        snap_to_ground: Some(CharacterLength::Absolute(0.2)),
        normal_nudge_factor: 1.0e-4,
    }
}

/// The input to apply this tick: the fresh one, or the last one repeated without its one-shot
/// buttons (so a lost packet neither stops a runner nor fires twice).
pub(crate) fn effective_input(state: &CharacterState, fresh: Option<PlayerInput>) -> PlayerInput {
    match fresh {
        Some(i) => i,
        None => {
            let mut i = state.last_input;
            i.buttons = Buttons(i.buttons.0 & Buttons::RUN);
            i
        }
    }
}

/// The world's XZ bounds with the capsule radius taken off, so a character stays on the ground.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Bounds {
    pub min: [f32; 2],
    pub max: [f32; 2],
}

/// Moves one character by one tick. Reads the world through its query pipeline (excluding the
/// character's own body), pushes dynamic bodies it walks into, and leaves the new position as
/// the body's next kinematic target. Returns the sanitized input that was applied.
pub(crate) fn move_character(
    physics: &mut PhysicsWorld,
    controller: &KinematicCharacterController,
    cfg: &SimConfig,
    bounds: Bounds,
    ch: &mut Character,
    input: PlayerInput,
) {
    let dt = cfg.dt_s();
    let c = &cfg.character;
    let st = &mut ch.state;
    st.yaw_rad = snap_yaw(input.yaw_rad);
    st.pitch_rad = snap_pitch(input.pitch_rad);
    let speed = if input.buttons.has(Buttons::RUN) { c.run_speed_mps } else { c.walk_speed_mps };
    let horizontal = input.world_move() * speed;
    let mut vy = st.velocity_mps.y;
    if st.grounded && input.buttons.has(Buttons::JUMP) {
        vy = c.jump_speed_mps;
    }
    vy = (vy - cfg.gravity_mps2 * dt).max(-FALL_SPEED_MAX_MPS);
    let desired = Vec3::new(horizontal.x * dt, vy * dt, horizontal.z * dt);

    let shape = Capsule::new_y(c.half_height_m, c.radius_m);
    let pose = Pose::from_translation(st.position_m);
    let mut collisions: Vec<CharacterCollision> = Vec::new();
    let filter = QueryFilter::default().exclude_rigid_body(ch.body).exclude_sensors();
    let moved = {
        let query = physics.broad_phase.as_query_pipeline(
            physics.narrow_phase.query_dispatcher(),
            &physics.bodies,
            &physics.colliders,
            filter,
        );
        controller.move_shape(dt, &query, &shape, &pose, desired, |hit| {
            if collisions.len() < CHARACTER_COLLISIONS_MAX {
                collisions.push(hit);
            }
        })
    };
    if !collisions.is_empty() {
        let mut query = physics.broad_phase.as_query_pipeline_mut(
            physics.narrow_phase.query_dispatcher(),
            &mut physics.bodies,
            &mut physics.colliders,
            filter,
        );
        controller.solve_character_collision_impulses(dt, &mut query, &shape, c.mass_kg, collisions.iter());
    }

    let mut next = st.position_m + moved.translation;
    next.x = next.x.clamp(bounds.min[0], bounds.max[0]);
    next.z = next.z.clamp(bounds.min[1], bounds.max[1]);
    let next = snap_position(next);
    let applied = next - st.position_m;
    st.grounded = moved.grounded;
    if st.grounded && vy < 0.0 {
        vy = 0.0;
    }
    if vy > 0.0 && applied.y < desired.y * 0.5 {
        // Head hit a ceiling: the jump ends there.
        vy = 0.0;
    }
    st.velocity_mps = snap_velocity(Vec3::new(applied.x / dt, vy, applied.z / dt));
    st.position_m = next;
    if let Some(body) = physics.bodies.get_mut(ch.body) {
        body.set_next_kinematic_translation(next);
    }
}
