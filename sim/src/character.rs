//! Characters: capsules on kinematic rapier bodies (so projectiles hit them and crates bump
//! into them), moved by PWN's own controller (`controller.rs`).
//!
//! A character's state is small and exact (snapped to the quantization grids after every tick),
//! which is what lets the client predict it and compare with the server bit for bit.

use crate::config::SimConfig;
use crate::hash::StateHasher;
use crate::ids::{EntityId, InputSeq};
use crate::input::{Buttons, PlayerInput};
use glam::Vec3;
use rapier3d::prelude::*;

/// Fastest fall; keeps velocities inside the quantization range.
pub const FALL_SPEED_MAX_MPS: f32 = 60.0;

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
    /// A ghost: another zone owns and simulates it; this world only holds it where the owner
    /// last reported it (see [`crate::Sim::upsert_ghost`]).
    pub ghost: bool,
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
