//! Projectiles: point masses under (scaled) gravity with a swept ray test each tick, so a fast
//! shot cannot pass through a thin wall or a character between two ticks.

use crate::config::SimConfig;
use crate::hash::StateHasher;
use crate::ids::EntityId;
use crate::quantize::{snap_position, snap_velocity};
use glam::Vec3;
use serde::{Deserialize, Serialize};

/// Most live projectiles per shooter; a shot past this is not fired. Bounds memory and the
/// per-tick ray casts even if the fire interval is configured to zero.
pub const PROJECTILES_PER_SHOOTER_MAX: usize = 64;

/// A projectile in flight, on the quantization grids.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Projectile {
    /// Deterministic id from (owner, input sequence).
    pub id: EntityId,
    /// Who fired it; its body is never hit by its own shot.
    pub owner: EntityId,
    /// Current position.
    pub position_m: Vec3,
    /// Current velocity.
    pub velocity_mps: Vec3,
    /// Ticks left before it expires.
    pub ticks_left: u16,
    /// Damage on a character hit.
    pub damage: u16,
    /// Ticks back in time its shooter saw characters (`crate::lagcomp`); characters are hit
    /// where they were that long ago.
    #[serde(default)]
    pub rewind_ticks: u8,
}

impl Projectile {
    /// A projectile leaving `eye_m` along the unit vector `aim`.
    pub fn fired(id: EntityId, owner: EntityId, eye_m: Vec3, aim: Vec3, cfg: &SimConfig) -> Self {
        let start = eye_m + aim * (cfg.character.radius_m + 0.05);
        Self {
            id,
            owner,
            position_m: snap_position(start),
            velocity_mps: snap_velocity(aim * cfg.projectile.muzzle_speed_mps),
            ticks_left: cfg.projectile.lifetime_ticks,
            damage: cfg.projectile.damage,
            rewind_ticks: 0,
        }
    }

    /// The straight segment covered during the next tick, and the velocity at its end.
    pub fn next_motion(&self, cfg: &SimConfig) -> (Vec3, Vec3) {
        let dt = cfg.dt_s();
        let g = Vec3::new(0.0, -cfg.gravity_mps2 * cfg.projectile.gravity_scale, 0.0);
        let displacement = self.velocity_mps * dt + g * (0.5 * dt * dt);
        (displacement, self.velocity_mps + g * dt)
    }

    /// Feeds every field into a state hash.
    pub fn hash_into(&self, h: &mut StateHasher) {
        h.u64(self.id.0);
        h.u64(self.owner.0);
        h.vec3(self.position_m);
        h.vec3(self.velocity_mps);
        h.u32(u32::from(self.ticks_left));
        h.u32(u32::from(self.damage));
        h.u32(u32::from(self.rewind_ticks));
    }
}
