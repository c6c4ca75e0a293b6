//! Simulation parameters. Server and client must run with the same values (the handshake
//! compares a hash of them), so every field has a default and `validate` rejects nonsense.

use serde::{Deserialize, Serialize};

/// Highest tick rate accepted; beyond this a tick has too little time for a step.
pub const TICK_HZ_MAX: u32 = 240;

/// All tunables of the shared simulation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Fixed simulation rate.
    pub tick_hz: u32,
    /// Downward acceleration.
    pub gravity_mps2: f32,
    /// Character movement and health.
    pub character: CharacterConfig,
    /// Projectile ballistics and damage.
    pub projectile: ProjectileConfig,
}

/// Character capsule, movement and health.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CharacterConfig {
    /// Capsule radius.
    pub radius_m: f32,
    /// Half the height of the capsule's cylindrical part.
    pub half_height_m: f32,
    /// Eye height above the capsule centre, where shots start.
    pub eye_height_m: f32,
    /// Horizontal speed when walking.
    pub walk_speed_mps: f32,
    /// Horizontal speed when running; the hard maximum.
    pub run_speed_mps: f32,
    /// Vertical speed given by a jump.
    pub jump_speed_mps: f32,
    /// Steepest slope the character can walk up.
    pub max_slope_climb_deg: f32,
    /// Slopes steeper than this make a standing character slide down.
    pub min_slope_slide_deg: f32,
    /// Highest step climbed without jumping.
    pub step_height_m: f32,
    /// Mass used to push dynamic bodies.
    pub mass_kg: f32,
    /// Health at spawn.
    pub max_health: u16,
    /// Ticks a dead character waits before respawning.
    pub respawn_ticks: u16,
}

/// Projectile ballistics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectileConfig {
    /// Speed at the muzzle.
    pub muzzle_speed_mps: f32,
    /// Fraction of world gravity applied to projectiles.
    pub gravity_scale: f32,
    /// Ticks before an unimpeded projectile despawns.
    pub lifetime_ticks: u16,
    /// Health removed by a hit.
    pub damage: u16,
    /// Minimum ticks between two shots of one character.
    pub fire_interval_ticks: u16,
    /// Impulse given to a dynamic body that is hit.
    pub impulse_ns: f32,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            tick_hz: 30,
            gravity_mps2: 9.81,
            character: CharacterConfig::default(),
            projectile: ProjectileConfig::default(),
        }
    }
}

impl Default for CharacterConfig {
    fn default() -> Self {
        Self {
            radius_m: 0.4,
            half_height_m: 0.5,
            eye_height_m: 0.7,
            walk_speed_mps: 4.0,
            run_speed_mps: 7.0,
            jump_speed_mps: 5.5,
            max_slope_climb_deg: 45.0,
            min_slope_slide_deg: 50.0,
            step_height_m: 0.35,
            mass_kg: 80.0,
            max_health: 100,
            respawn_ticks: 90,
        }
    }
}

impl Default for ProjectileConfig {
    fn default() -> Self {
        Self {
            muzzle_speed_mps: 80.0,
            gravity_scale: 0.25,
            lifetime_ticks: 90,
            damage: 25,
            fire_interval_ticks: 6,
            impulse_ns: 60.0,
        }
    }
}

/// A configuration value outside what the simulation can run with.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("invalid simulation config: {field} = {value} ({why})")]
pub struct ConfigError {
    /// The offending field.
    pub field: &'static str,
    /// Its value, printed.
    pub value: String,
    /// What it must be instead.
    pub why: &'static str,
}

fn check(field: &'static str, value: f32, lo: f32, hi: f32) -> Result<(), ConfigError> {
    if value.is_finite() && (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError { field, value: value.to_string(), why: "out of range or not finite" })
    }
}

impl SimConfig {
    /// The duration of one tick.
    pub fn dt_s(&self) -> f32 {
        1.0 / self.tick_hz as f32
    }

    /// Checks every field against the range the simulation supports.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=TICK_HZ_MAX).contains(&self.tick_hz) {
            return Err(ConfigError { field: "tick_hz", value: self.tick_hz.to_string(), why: "must be 1..=240" });
        }
        check("gravity_mps2", self.gravity_mps2, 0.0, 100.0)?;
        let c = &self.character;
        check("character.radius_m", c.radius_m, 0.05, 5.0)?;
        check("character.half_height_m", c.half_height_m, 0.0, 5.0)?;
        check("character.eye_height_m", c.eye_height_m, 0.0, 10.0)?;
        check("character.walk_speed_mps", c.walk_speed_mps, 0.0, 100.0)?;
        check("character.run_speed_mps", c.run_speed_mps, c.walk_speed_mps, 100.0)?;
        check("character.jump_speed_mps", c.jump_speed_mps, 0.0, 100.0)?;
        check("character.max_slope_climb_deg", c.max_slope_climb_deg, 0.0, 89.0)?;
        check("character.min_slope_slide_deg", c.min_slope_slide_deg, 0.0, 89.0)?;
        check("character.step_height_m", c.step_height_m, 0.0, 2.0)?;
        check("character.mass_kg", c.mass_kg, 1.0, 10_000.0)?;
        let p = &self.projectile;
        check("projectile.muzzle_speed_mps", p.muzzle_speed_mps, 1.0, 2_000.0)?;
        check("projectile.gravity_scale", p.gravity_scale, 0.0, 10.0)?;
        check("projectile.impulse_ns", p.impulse_ns, 0.0, 10_000.0)?;
        if p.lifetime_ticks == 0 {
            return Err(ConfigError {
                field: "projectile.lifetime_ticks",
                value: "0".into(),
                why: "must be at least 1",
            });
        }
        Ok(())
    }

    /// A stable 64-bit digest of every parameter. Peers compare it at handshake: prediction is
    /// only exact when both ends simulate with the same numbers.
    pub fn digest(&self) -> u64 {
        let mut h = crate::hash::StateHasher::new();
        h.u32(self.tick_hz);
        h.f32(self.gravity_mps2);
        let c = &self.character;
        for v in [
            c.radius_m,
            c.half_height_m,
            c.eye_height_m,
            c.walk_speed_mps,
            c.run_speed_mps,
            c.jump_speed_mps,
            c.max_slope_climb_deg,
            c.min_slope_slide_deg,
            c.step_height_m,
            c.mass_kg,
        ] {
            h.f32(v);
        }
        h.u32(u32::from(c.max_health));
        h.u32(u32::from(c.respawn_ticks));
        let p = &self.projectile;
        for v in [p.muzzle_speed_mps, p.gravity_scale, p.impulse_ns] {
            h.f32(v);
        }
        for v in [p.lifetime_ticks, p.damage, p.fire_interval_ticks] {
            h.u32(u32::from(v));
        }
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_bad_values_are_named() {
        SimConfig::default().validate().unwrap();
        let mut c = SimConfig::default();
        c.character.run_speed_mps = f32::NAN;
        assert_eq!(c.validate().unwrap_err().field, "character.run_speed_mps");
        let c = SimConfig { tick_hz: 0, ..SimConfig::default() };
        assert_eq!(c.validate().unwrap_err().field, "tick_hz");
    }

    #[test]
    fn digest_changes_with_any_parameter() {
        let a = SimConfig::default();
        let mut b = a.clone();
        b.projectile.damage += 1;
        assert_ne!(a.digest(), b.digest());
        assert_eq!(a.digest(), SimConfig::default().digest());
    }
}
