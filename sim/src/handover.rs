//! What crosses between simulations when zones split the world: a zone node simulates only what
//! lies in its cells, so a projectile that flies into a neighbour's cell is taken out here and
//! flown on there from its exact state ([`Sim::take_projectile`], [`Sim::insert_projectile`]),
//! and every crate is in one of three modes ([`CrateMode`]): simulated here (a dynamic body),
//! held as a ghost of the zone that simulates it (a kinematic body at the pose its owner
//! reports, which characters bump into and shots hit), or left out (no collider, in no
//! snapshot). A world that is not split simulates every crate, as before.

use crate::ids::EntityId;
use crate::projectile::{PROJECTILES_PER_SHOOTER_MAX, Projectile};
use crate::quantize::{snap_position, snap_velocity};
use crate::world::Sim;
use glam::{Quat, Vec3};
use rapier3d::prelude::RigidBodyType;

/// How this world holds a crate.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CrateMode {
    /// A dynamic body this world simulates.
    Simulated,
    /// Another zone's crate near this one: kinematic, at the pose its owner reports.
    Ghost,
    /// Another zone's crate out of reach: no collider, not listed by [`Sim::crates`].
    Away,
}

/// Why a projectile from another zone was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProjectileRefused {
    /// The id is not in the projectile range.
    #[error("not a projectile id")]
    NotProjectile,
    /// This world already flies it.
    #[error("already in flight here")]
    Duplicate,
    /// Non-finite, outside the world, faster than a shot leaves the muzzle, or longer-lived
    /// or more damaging than this world's projectiles.
    #[error("not a state a shot can have")]
    Implausible,
    /// Its shooter already has the most projectiles in flight here.
    #[error("its shooter has too many projectiles in flight")]
    TooMany,
}

impl Sim {
    /// Takes a projectile out of this world (it flew into another zone's cell, which flies it
    /// on); its hits are no longer tested here.
    pub fn take_projectile(&mut self, id: EntityId) -> Option<Projectile> {
        self.projectiles.remove(&id)
    }

    /// Flies on a projectile another zone took out of its world. It is checked like any state
    /// from outside: a projectile id not in flight here, finite, inside the world, no faster
    /// than the muzzle speed plus what gravity adds over its lifetime, and no longer-lived or
    /// more damaging than this world's projectiles.
    pub fn insert_projectile(&mut self, p: Projectile) -> Result<(), ProjectileRefused> {
        if !p.id.is_projectile() {
            return Err(ProjectileRefused::NotProjectile);
        }
        if self.projectiles.contains_key(&p.id) {
            return Err(ProjectileRefused::Duplicate);
        }
        let cfg = &self.cfg.projectile;
        let fall = self.cfg.gravity_mps2 * cfg.gravity_scale.abs() * f32::from(cfg.lifetime_ticks) * self.cfg.dt_s();
        let speed_max = cfg.muzzle_speed_mps + fall + 1.0;
        let plausible = p.position_m.is_finite()
            && p.velocity_mps.is_finite()
            && p.velocity_mps.length() <= speed_max
            && self.desc.contains_xz(p.position_m.x, p.position_m.z)
            && p.position_m.y.abs() <= 8192.0
            && p.ticks_left >= 1
            && p.ticks_left <= cfg.lifetime_ticks
            && p.damage <= cfg.damage;
        if !plausible {
            return Err(ProjectileRefused::Implausible);
        }
        if self.projectiles.values().filter(|q| q.owner == p.owner).count() >= PROJECTILES_PER_SHOOTER_MAX {
            return Err(ProjectileRefused::TooMany);
        }
        let p =
            Projectile { position_m: snap_position(p.position_m), velocity_mps: snap_velocity(p.velocity_mps), ..p };
        self.projectiles.insert(p.id, p);
        Ok(())
    }

    /// How this world holds crate `id`, if it has one.
    pub fn crate_mode(&self, id: EntityId) -> Option<CrateMode> {
        self.crates.iter().find(|c| c.id == id).map(|c| c.mode)
    }

    /// Sets how this world holds crate `id`. `state` (position, rotation, linear and angular
    /// velocity) is where it is now, for a crate this world starts simulating or a ghost's
    /// pose; `None` keeps its pose. Returns false for an unknown crate or a state
    /// [`Sim::restore_crate`] refuses.
    pub fn set_crate_mode(&mut self, id: EntityId, mode: CrateMode, state: Option<(Vec3, Quat, Vec3, Vec3)>) -> bool {
        let Some(i) = self.crates.iter().position(|c| c.id == id) else { return false };
        if let Some((p, r, v, w)) = state
            && !crate_state_valid(&self.desc, p, r, v, w)
        {
            return false;
        }
        let c = &mut self.crates[i];
        let (body, collider) = (c.body, c.collider);
        let was = c.mode;
        c.mode = mode;
        let kind = match mode {
            CrateMode::Simulated => RigidBodyType::Dynamic,
            CrateMode::Ghost | CrateMode::Away => RigidBodyType::KinematicPositionBased,
        };
        // The body's kind first: rapier ignores velocities given to a kinematic body, so a crate
        // made dynamic must be dynamic before it is handed its velocities.
        if was != mode
            && let Some(b) = self.physics.bodies.get_mut(body)
        {
            b.set_body_type(kind, true);
        }
        if let Some((p, r, v, w)) = state {
            let (v, w) = if mode == CrateMode::Simulated { (v, w) } else { (Vec3::ZERO, Vec3::ZERO) };
            self.restore_crate(id, p, r, v, w);
        }
        if mode != CrateMode::Simulated
            && let Some(b) = self.physics.bodies.get_mut(body)
        {
            b.set_linvel(Vec3::ZERO, false);
            b.set_angvel(Vec3::ZERO, false);
            let (at, rot) = (b.translation(), *b.rotation());
            b.set_next_kinematic_translation(at);
            b.set_next_kinematic_rotation(rot);
        }
        if let Some(c) = self.physics.colliders.get_mut(collider) {
            c.set_enabled(mode != CrateMode::Away);
        }
        self.physics.bodies.propagate_modified_body_positions_to_colliders(&mut self.physics.colliders);
        true
    }
}

/// Fastest a crate from outside may move or spin: no shove or shot in this simulation comes near.
pub const CRATE_SPEED_MAX_MPS: f32 = 100.0;
/// Fastest spin of a crate from outside, radians per second.
pub const CRATE_SPIN_MAX_RPS: f32 = 100.0;

/// Whether a crate's motion state is one the simulation could have produced: finite, inside
/// the world, a unit rotation (a zero quaternion normalizes to NaN), no faster than
/// `CRATE_SPEED_MAX_MPS` nor spinning faster than `CRATE_SPIN_MAX_RPS`.
pub fn crate_state_valid(desc: &crate::WorldDesc, p: Vec3, r: Quat, v: Vec3, w: Vec3) -> bool {
    p.is_finite()
        && r.is_finite()
        && v.is_finite()
        && w.is_finite()
        && (r.length_squared() - 1.0).abs() <= 0.01
        && v.length() <= CRATE_SPEED_MAX_MPS
        && w.length() <= CRATE_SPIN_MAX_RPS
        && desc.contains_xz(p.x, p.z)
        && p.y.abs() <= 8192.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InputSeq, SimConfig, WorldDesc};
    use std::collections::BTreeMap;

    fn sim() -> Sim {
        Sim::new(WorldDesc::arena(), SimConfig::default(), 1).unwrap()
    }

    #[test]
    fn a_projectile_taken_from_one_world_flies_on_in_another_bit_for_bit() {
        let (mut a, mut b, mut whole) = (sim(), sim(), sim());
        let shooter = EntityId(1);
        let mut first = true;
        for s in [&mut a, &mut whole] {
            s.insert_character(shooter, crate::CharacterState::spawned_at(Vec3::new(0.0, 1.0, -60.0), s.config()))
                .unwrap();
        }
        for tick in 0..8u32 {
            let input = PlayerInput {
                seq: InputSeq(tick + 1),
                buttons: crate::Buttons(if first { crate::Buttons::FIRE } else { 0 }),
                pitch_rad: 0.2,
                ..PlayerInput::default()
            };
            first = false;
            let inputs: BTreeMap<_, _> = [(shooter, input)].into();
            a.step(&inputs);
            whole.step(&inputs);
        }
        let id = a.projectiles().next().expect("a shot in flight").id;
        let p = a.take_projectile(id).unwrap();
        assert!(a.projectile(id).is_none());
        b.join_clock(a.tick());
        b.insert_projectile(p.clone()).unwrap();
        assert_eq!(b.insert_projectile(p), Err(ProjectileRefused::Duplicate));
        for _ in 0..5 {
            b.step(&BTreeMap::new());
            whole.step(&BTreeMap::new());
            assert_eq!(b.projectile(id), whole.projectile(id), "flies on exactly as if it had never moved");
        }
    }

    use crate::PlayerInput;

    #[test]
    fn implausible_projectiles_are_refused() {
        let mut s = sim();
        let cfg = s.config().clone();
        let good = Projectile::fired(
            EntityId::projectile(EntityId(1), InputSeq(1)),
            EntityId(1),
            Vec3::new(0.0, 2.0, 0.0),
            Vec3::X,
            &cfg,
        );
        let bad = [
            Projectile { id: EntityId(5), ..good.clone() },
            Projectile { velocity_mps: Vec3::new(f32::NAN, 0.0, 0.0), ..good.clone() },
            Projectile { velocity_mps: Vec3::X * 10_000.0, ..good.clone() },
            Projectile { position_m: Vec3::new(1.0e6, 0.0, 0.0), ..good.clone() },
            Projectile { ticks_left: cfg.projectile.lifetime_ticks + 1, ..good.clone() },
            Projectile { damage: cfg.projectile.damage + 1, ..good.clone() },
        ];
        for p in bad {
            assert!(s.insert_projectile(p.clone()).is_err(), "{p:?} was taken");
        }
        s.insert_projectile(good).unwrap();
    }

    #[test]
    fn crates_left_out_are_not_listed_and_ghost_crates_stay_where_put() {
        let mut s = sim();
        let (id, at, rot, _) = s.crates().next().unwrap();
        assert_eq!(s.crate_mode(id), Some(CrateMode::Simulated));
        assert!(s.set_crate_mode(id, CrateMode::Away, None));
        assert!(s.crates().all(|(c, ..)| c != id));
        let held = at + Vec3::new(3.0, 5.0, 0.0);
        assert!(s.set_crate_mode(id, CrateMode::Ghost, Some((held, rot, Vec3::ZERO, Vec3::ZERO))));
        for _ in 0..10 {
            s.step(&BTreeMap::new());
        }
        let (_, now, _, _) = s.crates().find(|(c, ..)| *c == id).unwrap();
        assert_eq!(now, held, "a ghost crate does not fall: its owner moves it");
        assert!(s.set_crate_mode(id, CrateMode::Simulated, None));
        for _ in 0..30 {
            s.step(&BTreeMap::new());
        }
        let (_, fell, _, _) = s.crates().find(|(c, ..)| *c == id).unwrap();
        assert!(fell.y < held.y - 1.0, "simulated again, it falls: {fell:?}");
    }
}
