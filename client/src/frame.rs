//! What the game loop exchanges with the client core each frame: the player's [`Intent`] in,
//! a [`Frame`] to draw out.

use glam::Vec3;
use pwn_proto::GameEvent;
use pwn_proto::delta::EntityState;
use pwn_sim::Buttons;
use pwn_sim::quantize::dequantize_yaw;

/// What the player wants this frame.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Intent {
    /// Strafe, -1 (left) to 1 (right).
    pub move_x: f32,
    /// Forward, -1 (back) to 1 (forward).
    pub move_z: f32,
    /// Facing, radians.
    pub yaw_rad: f32,
    /// Aim up or down, radians.
    pub pitch_rad: f32,
    /// Buttons held.
    pub buttons: Buttons,
}

/// An entity to draw.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Drawn {
    /// Its id.
    pub id: u64,
    /// Where to draw it.
    pub position_m: Vec3,
    /// Facing, radians (characters).
    pub yaw_rad: f32,
    /// Health (characters; 0 for crates).
    pub health: u16,
}

/// A projectile to draw.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DrawnProjectile {
    /// Its deterministic id.
    pub id: u64,
    /// Who fired it.
    pub owner: u64,
    /// Where to draw it.
    pub position_m: Vec3,
    /// Whether it is the local player's prediction.
    pub predicted: bool,
}

/// One frame's view of the world.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Frame {
    /// The local player (predicted), once the server has placed it.
    pub me: Option<Drawn>,
    /// Everyone and everything else in view (interpolated).
    pub others: Vec<Drawn>,
    /// Projectiles in flight.
    pub projectiles: Vec<DrawnProjectile>,
    /// Events since the last frame (hits, deaths, chat, notices).
    pub events: Vec<GameEvent>,
}

/// An entity of a snapshot drawn at `position_m`.
pub(crate) fn drawn(s: &EntityState, position_m: Vec3) -> Drawn {
    Drawn { id: s.id, position_m, yaw_rad: dequantize_yaw(s.yaw), health: s.health }
}
