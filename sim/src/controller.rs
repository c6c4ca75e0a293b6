//! PWN's character controller: lean on purpose, because it runs for thousands of characters
//! per tick on one core.
//!
//! Per moving character and tick it does: a neighbour lookup in a grid (other characters are
//! kept apart there, not by shape casts), one capsule cast along the horizontal motion (more
//! only when sliding along or stepping onto something), and one sphere cast down to follow the
//! ground. A grounded character with no input and nobody overlapping it costs nothing.
//!
//! It reads only the world as it was at the start of the tick (rapier's scene queries and the
//! neighbour grid) and writes only the character's own state plus a list of pushes to apply to
//! crates afterwards, so server and client compute the same move and the moves of different
//! characters do not depend on each other.

use crate::character::{Bounds, CharacterState, FALL_SPEED_MAX_MPS};
use crate::config::SimConfig;
use crate::ids::EntityId;
use crate::input::{Buttons, PlayerInput};
use crate::neighbors::NeighborGrid;
use crate::quantize::{snap_pitch, snap_position, snap_velocity, snap_yaw};
use crate::scene::{Contact, SceneIndex};
use glam::Vec3;
use rapier3d::parry::query::QueryDispatcher;
use rapier3d::prelude::*;

/// Distance kept between the capsule and what it slides along.
const SKIN_M: f32 = 0.005;
/// Height the capsule floats above the ground, so horizontal casts do not graze the floor.
pub const HOVER_M: f32 = 0.02;
/// How far down the ground is followed (down slopes and small steps) without falling.
const SNAP_M: f32 = 0.25;
/// Most casts of one horizontal move (first contact, then slides).
const SLIDE_ITERATIONS_MAX: usize = 3;
/// Largest push per tick that separates two overlapping characters, each.
const SEPARATION_PER_TICK_MAX_M: f32 = 0.1;
/// Movements shorter than this are treated as none.
const MOVE_EPSILON_M: f32 = 1e-5;

/// A push given to a dynamic body that a character walked into.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Push {
    pub body: RigidBodyHandle,
    pub impulse: Vec3,
    pub point: Vec3,
}

/// What the controller reads: the world at the start of the tick.
pub(crate) struct Env<'a> {
    pub dispatcher: &'a dyn QueryDispatcher,
    pub bodies: &'a RigidBodySet,
    pub colliders: &'a ColliderSet,
    /// Ground, static geometry and crates (characters excluded).
    pub scene: &'a SceneIndex,
    pub neighbors: &'a NeighborGrid,
    pub cfg: &'a SimConfig,
    pub bounds: Bounds,
}

impl Env<'_> {
    fn capsule(&self) -> Capsule {
        Capsule::new_y(self.cfg.character.half_height_m, self.cfg.character.radius_m)
    }

    fn walkable(&self, n: Vec3) -> bool {
        n.y >= self.cfg.character.max_slope_climb_deg.to_radians().cos()
    }

    /// Casts `shape` (lowest point `bottom_m` below `from`) along `motion`.
    fn cast(&self, shape: &dyn Shape, bottom_m: f32, from: Vec3, motion: Vec3, target_m: f32) -> Option<Contact> {
        self.scene.cast(self.dispatcher, self.bodies, self.colliders, shape, bottom_m, from, motion, target_m)
    }

    /// How far the capsule's lowest point is below its centre.
    fn capsule_bottom_m(&self) -> f32 {
        self.cfg.character.half_height_m + self.cfg.character.radius_m
    }

    /// The dynamic body a collider belongs to, if it is dynamic.
    fn dynamic_body(&self, collider: Option<ColliderHandle>) -> Option<(RigidBodyHandle, f32)> {
        let parent = self.colliders.get(collider?)?.parent()?;
        let body = self.bodies.get(parent)?;
        body.is_dynamic().then(|| (parent, body.mass()))
    }
}

/// Moves one character by one tick with an already validated input. Returns nothing; writes the
/// new state and appends pushes for crates.
pub(crate) fn move_character(
    env: &Env<'_>,
    id: EntityId,
    st: &mut CharacterState,
    input: PlayerInput,
    pushes: &mut Vec<Push>,
) {
    let cfg = env.cfg;
    let c = &cfg.character;
    let dt = cfg.dt_s();
    st.yaw_rad = snap_yaw(input.yaw_rad);
    st.pitch_rad = snap_pitch(input.pitch_rad);
    let speed = if input.buttons.has(Buttons::RUN) { c.run_speed_mps } else { c.walk_speed_mps };
    let wanted = input.world_move() * speed * dt;
    let jumping = st.grounded && input.buttons.has(Buttons::JUMP);
    let (mut horizontal, overlapping) = keep_apart(env, id, st.position_m, wanted);
    let limit = c.run_speed_mps * dt;
    if horizontal.length() > limit {
        horizontal = horizontal.normalize_or_zero() * limit;
    }
    if st.grounded && !jumping && !overlapping && horizontal.length_squared() < MOVE_EPSILON_M * MOVE_EPSILON_M {
        // Idle on the ground: nothing can move this character, so skip every query.
        st.velocity_mps = Vec3::ZERO;
        return;
    }

    let start = st.position_m;
    let mut pos = start;
    if horizontal.length_squared() >= MOVE_EPSILON_M * MOVE_EPSILON_M {
        pos = slide(env, pos, horizontal, st.grounded, pushes);
    }
    let mut vy = if jumping { c.jump_speed_mps } else { st.velocity_mps.y };
    let mut grounded = false;
    if st.grounded && !jumping {
        match ground_below(env, pos, SNAP_M) {
            Some(y) => {
                pos.y = y;
                grounded = true;
                vy = 0.0;
            }
            None => vy = -cfg.gravity_mps2 * dt,
        }
    } else {
        vy = (vy - cfg.gravity_mps2 * dt).max(-FALL_SPEED_MAX_MPS);
    }
    if !grounded {
        (pos, vy, grounded) = vertical(env, pos, vy * dt, vy);
    }
    pos.x = pos.x.clamp(env.bounds.min[0], env.bounds.max[0]);
    pos.z = pos.z.clamp(env.bounds.min[1], env.bounds.max[1]);
    let pos = snap_position(pos);
    let applied = pos - start;
    st.velocity_mps = snap_velocity(Vec3::new(applied.x / dt, vy, applied.z / dt));
    st.position_m = pos;
    st.grounded = grounded;
}

/// Limits `wanted` so the character closes at most half the gap to any neighbour per tick (the
/// neighbour may close the other half) and adds a push out of any neighbour it overlaps.
/// Returns the adjusted motion and whether it overlapped anyone.
fn keep_apart(env: &Env<'_>, id: EntityId, pos: Vec3, wanted: Vec3) -> (Vec3, bool) {
    let c = &env.cfg.character;
    let two_r = 2.0 * c.radius_m;
    let tall = 2.0 * (c.half_height_m + c.radius_m);
    let mut h = wanted;
    let mut push = Vec3::ZERO;
    let mut overlapping = false;
    env.neighbors.around(pos, |other, q| {
        if other == id || (q.y - pos.y).abs() >= tall {
            return;
        }
        let d = Vec3::new(pos.x - q.x, 0.0, pos.z - q.z);
        let dist = d.length();
        if dist >= two_r + wanted.length() + two_r {
            return;
        }
        if dist < two_r {
            overlapping = true;
            // Exactly coincident characters part along a direction fixed by their ids.
            let away = if dist > 1e-4 { d / dist } else { tie_break(id, other) };
            push += away * ((two_r - dist) * 0.5).min(SEPARATION_PER_TICK_MAX_M);
            let into = -h.dot(away);
            if into > 0.0 {
                h += away * into;
            }
        } else {
            let toward = -d / dist;
            let into = h.dot(toward);
            let allowed = (dist - two_r) * 0.5;
            if into > allowed {
                h -= toward * (into - allowed);
            }
        }
    });
    (h + push, overlapping)
}

fn tie_break(a: EntityId, b: EntityId) -> Vec3 {
    let angle = ((a.0 ^ b.0.rotate_left(17)) % 360) as f32 * std::f32::consts::PI / 180.0;
    let v = Vec3::new(angle.cos(), 0.0, angle.sin());
    if a < b { v } else { -v }
}

/// Moves the capsule along `motion`, sliding along what it hits: up walkable slopes, along
/// walls, onto steps no higher than the step height. Pushes crates it runs into.
fn slide(env: &Env<'_>, mut pos: Vec3, motion: Vec3, grounded: bool, pushes: &mut Vec<Push>) -> Vec3 {
    let capsule = env.capsule();
    let mut rest = motion;
    let mut stepped = false;
    for _ in 0..SLIDE_ITERATIONS_MAX {
        let Some(Contact { collider, toi, normal: n, point }) =
            env.cast(&capsule, env.capsule_bottom_m(), pos, rest, SKIN_M)
        else {
            return pos + rest;
        };
        pos += rest * toi;
        let mut remaining = rest * (1.0 - toi);
        if let Some((body, mass)) = env.dynamic_body(collider) {
            let dt = env.cfg.dt_s();
            let into = remaining.dot(-n).max(0.0) / dt;
            let impulse = Vec3::new(-n.x, 0.0, -n.z) * into * mass.min(env.cfg.character.mass_kg);
            pushes.push(Push { body, impulse, point });
        }
        if env.walkable(n) {
            remaining -= n * remaining.dot(n);
        } else {
            if grounded && !stepped {
                stepped = true;
                if let Some(p) = step_up(env, &capsule, pos, remaining) {
                    return p;
                }
            }
            let nh = Vec3::new(n.x, 0.0, n.z).normalize_or_zero();
            remaining -= nh * remaining.dot(nh);
            remaining.y = remaining.y.min(0.0);
        }
        if remaining.length_squared() < MOVE_EPSILON_M * MOVE_EPSILON_M {
            return pos;
        }
        rest = remaining;
    }
    pos
}

/// Tries to climb onto a step in the way: up by the step height, along the remaining motion,
/// then down onto walkable ground. Only runs when a grounded character hits something steep.
fn step_up(env: &Env<'_>, capsule: &Capsule, pos: Vec3, remaining: Vec3) -> Option<Vec3> {
    let step = env.cfg.character.step_height_m;
    let flat = Vec3::new(remaining.x, 0.0, remaining.z);
    if step <= 0.0 || flat.length_squared() < MOVE_EPSILON_M * MOVE_EPSILON_M {
        return None;
    }
    // Probe at least a fraction of the radius ahead so a tiny remainder still finds the tread.
    let probe = flat.normalize_or_zero() * flat.length().max(env.cfg.character.radius_m * 0.5);
    let up = Vec3::Y * step;
    let bottom = env.capsule_bottom_m();
    let raised = match env.cast(capsule, bottom, pos, up, SKIN_M) {
        Some(c) => pos + up * c.toi,
        None => pos + up,
    };
    if raised.y - pos.y < step * 0.9 {
        return None;
    }
    if env.cast(capsule, bottom, raised, probe, SKIN_M).is_some() {
        return None;
    }
    let ahead = raised + probe;
    let down = env.cast(capsule, bottom, ahead, -up - Vec3::Y * HOVER_M, 0.0)?;
    if !env.walkable(down.normal) {
        return None;
    }
    let landed = ahead - (up + Vec3::Y * HOVER_M) * down.toi + Vec3::Y * HOVER_M;
    // The step must actually be a step: higher than where we stood, no higher than allowed.
    (landed.y > pos.y + SKIN_M).then_some(Vec3::new(raised.x + flat.x, landed.y, raised.z + flat.z))
}

/// The centre height at which the capsule hovers above walkable ground within `reach_m` below
/// its current hover height, or `None` if there is none.
fn ground_below(env: &Env<'_>, pos: Vec3, reach_m: f32) -> Option<f32> {
    let c = &env.cfg.character;
    let ball = Ball::new(c.radius_m);
    let foot = pos - Vec3::Y * c.half_height_m;
    let motion = -Vec3::Y * (reach_m + HOVER_M);
    let hit = env.cast(&ball, c.radius_m, foot, motion, 0.0)?;
    env.walkable(hit.normal).then_some(pos.y + motion.y * hit.toi + HOVER_M)
}

/// Moves the capsule vertically by `dy` (jumping or falling). Lands on walkable ground, stops at
/// ceilings, slides down steep slopes. Returns position, vertical speed and grounded.
fn vertical(env: &Env<'_>, pos: Vec3, dy: f32, vy: f32) -> (Vec3, f32, bool) {
    let capsule = env.capsule();
    let motion = Vec3::Y * dy;
    let bottom = env.capsule_bottom_m();
    let Some(Contact { toi, normal: n, .. }) = env.cast(&capsule, bottom, pos, motion, HOVER_M) else {
        return (pos + motion, vy, false);
    };
    let at = pos + motion * toi;
    if dy > 0.0 {
        return (at, 0.0, false);
    }
    if env.walkable(n) {
        return (at, 0.0, true);
    }
    // Too steep to stand on: slide down along it with what is left of the fall.
    let rest = motion * (1.0 - toi);
    let along = rest - n * rest.dot(n);
    match env.cast(&capsule, bottom, at, along, HOVER_M) {
        Some(c) => (at + along * c.toi, vy, false),
        None => (at + along, vy, false),
    }
}
