//! Moving platforms: lifts, ferries and sliding gates that follow paths declared in the world
//! file, driven by the world tick alone.
//!
//! A platform's pose is a pure function of the tick number ([`PlatformPath::position_at`]),
//! computed the same way on every zone and every client of the same build, and snapped to the
//! position grid. So a client predicting its character at tick `t` puts each platform exactly
//! where the server has it at `t`: riding a platform never causes a correction, and platforms
//! cost no bytes on the wire (they are not in snapshots; clients compute them) and need no
//! ghosting between zones (every zone computes them from the shared world clock).
//!
//! Rules (`[platform-n]`, tested in `sim/tests/platforms.rs`):
//! - `[platform-1]` the pose at tick `t` depends only on the path and `t`;
//! - `[platform-2]` a character standing on a platform at the start of a tick moves with it by
//!   the platform's displacement over that tick (carried), before its own move;
//! - `[platform-3]` a character a platform moves into is pushed along the platform's
//!   horizontal displacement (and lifted onto it if the platform rises under it);
//! - `[platform-4]` a character that jumps is no longer standing, so it leaves the platform
//!   with its own motion only; projectiles hit platforms like any solid.

use crate::character::CharacterState;
use crate::config::SimConfig;
use crate::controller::HOVER_M;
use crate::quantize::snap_position;
use glam::Vec3;
use serde::{Deserialize, Serialize};

/// Most platforms a world may hold.
pub const PLATFORM_COUNT_MAX: usize = 1_024;
/// Most waypoints on one platform's path.
pub const PATH_POINTS_MAX: usize = 32;
/// Fastest a platform may travel (characters riding it must keep up with the quantization grid
/// and the ghost margin).
pub const PLATFORM_SPEED_MAX_MPS: f32 = 20.0;
/// Longest pause at a waypoint.
pub const PAUSE_MAX_S: f32 = 600.0;
/// Longest one leg of a path may take (an hour); a path slower than that is refused, which
/// also keeps every tick count far from overflowing.
pub const LEG_MAX_S: f32 = 3_600.0;
/// How far a character's feet may be from a platform's top and still stand on it (the
/// controller hovers `HOVER_M` above ground; this covers grid snapping on top).
const STANDING_TOLERANCE_M: f32 = 0.05;

/// A moving platform as the world file declares it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformDesc {
    /// Half extents of its box (platforms do not rotate).
    pub half_extents_m: [f32; 3],
    /// Waypoints its centre visits in order, at least two.
    pub path_m: Vec<[f32; 3]>,
    /// Travel speed between waypoints.
    pub speed_mps: f32,
    /// Pause at every waypoint.
    #[serde(default = "default_pause_s")]
    pub pause_s: f32,
    /// After the last waypoint, go on to the first (a loop); otherwise come back the same way
    /// (a lift, a ferry).
    #[serde(default)]
    pub closed: bool,
}

fn default_pause_s() -> f32 {
    1.0
}

/// One leg of a path in ticks: pause at `from`, then travel to `to`.
#[derive(Clone, Debug, PartialEq)]
struct Leg {
    from: Vec3,
    to: Vec3,
    travel_ticks: u64,
}

/// A platform's path in whole ticks, computed once from its description and the tick rate.
#[derive(Clone, Debug, PartialEq)]
pub struct PlatformPath {
    legs: Vec<Leg>,
    pause_ticks: u64,
    cycle_ticks: u64,
    /// Half extents of the box.
    pub half_extents_m: Vec3,
}

impl PlatformPath {
    /// The path of `desc` at `cfg`'s tick rate (the description is validated already).
    pub fn new(desc: &PlatformDesc, cfg: &SimConfig) -> Self {
        let hz = cfg.tick_hz as f32;
        let mut points: Vec<Vec3> = desc.path_m.iter().map(|p| snap_position(Vec3::from(*p))).collect();
        if desc.closed {
            points.push(points[0]);
        } else {
            let back: Vec<Vec3> = points.iter().rev().skip(1).copied().collect();
            points.extend(back);
        }
        let legs: Vec<Leg> = points
            .windows(2)
            .map(|w| {
                let seconds = w[0].distance(w[1]) / desc.speed_mps;
                Leg { from: w[0], to: w[1], travel_ticks: ((seconds * hz).ceil() as u64).max(1) }
            })
            .collect();
        let pause_ticks = (desc.pause_s * hz).round() as u64;
        // Validation bounds each leg to an hour and a pause to ten minutes: no overflow here.
        let cycle_ticks =
            legs.iter().fold(0u64, |n, l| n.saturating_add(l.travel_ticks).saturating_add(pause_ticks)).max(1);
        Self { legs, pause_ticks, cycle_ticks, half_extents_m: Vec3::from(desc.half_extents_m) }
    }

    /// Ticks of one whole cycle.
    pub fn cycle_ticks(&self) -> u64 {
        self.cycle_ticks
    }

    /// Where the centre is at the end of tick `tick`, on the position grid (`[platform-1]`).
    pub fn position_at(&self, tick: u64) -> Vec3 {
        let mut phase = tick % self.cycle_ticks;
        for leg in &self.legs {
            if phase < self.pause_ticks {
                return leg.from;
            }
            phase -= self.pause_ticks;
            if phase < leg.travel_ticks {
                let f = phase as f32 / leg.travel_ticks as f32;
                return snap_position(leg.from + (leg.to - leg.from) * f);
            }
            phase -= leg.travel_ticks;
        }
        self.legs.first().map_or(Vec3::ZERO, |l| l.from)
    }

    /// Where the centre is at a fractional tick (for drawing between ticks).
    pub fn position_between(&self, tick: f64) -> Vec3 {
        // A time from outside (a renderer's clock): anything not finite is the start.
        let t = if tick.is_finite() { tick.max(0.0) } else { 0.0 };
        let base = t.floor() as u64;
        let f = (t - t.floor()) as f32;
        self.position_at(base).lerp(self.position_at(base.saturating_add(1)), f)
    }

    /// Whether a character at `p` stands on the platform when its centre is at `centre`
    /// (`[platform-2]`): its feet at the top, within the top face widened by its radius.
    pub fn carries(&self, centre: Vec3, p: Vec3, cfg: &SimConfig) -> bool {
        let c = &cfg.character;
        let h = self.half_extents_m;
        let feet = p.y - c.half_height_m - c.radius_m - HOVER_M;
        let top = centre.y + h.y;
        (feet - top).abs() <= STANDING_TOLERANCE_M
            && (p.x - centre.x).abs() <= h.x + c.radius_m
            && (p.z - centre.z).abs() <= h.z + c.radius_m
    }

    /// The box every pose of the platform fills over its whole path, widened by `margin_m`
    /// (and raised by `above_m` over its top, where riders stand): (min, max).
    pub fn swept(&self, margin_m: f32, above_m: f32) -> (Vec3, Vec3) {
        let h = self.half_extents_m + Vec3::splat(margin_m);
        let (mut lo, mut hi) = (Vec3::splat(f32::MAX), Vec3::splat(f32::MIN));
        for leg in &self.legs {
            for p in [leg.from, leg.to] {
                lo = lo.min(p - h);
                hi = hi.max(p + h);
            }
        }
        hi.y += above_m;
        (lo, hi)
    }

    /// Whether a character's capsule at `p` overlaps the platform's box at `centre` (bounding
    /// boxes: a platform is a box and a capsule's box is tight enough to push by).
    pub fn overlaps(&self, centre: Vec3, p: Vec3, cfg: &SimConfig) -> bool {
        let c = &cfg.character;
        let h = self.half_extents_m;
        let tall = c.half_height_m + c.radius_m;
        (p.x - centre.x).abs() < h.x + c.radius_m
            && (p.z - centre.z).abs() < h.z + c.radius_m
            && (p.y - centre.y).abs() < h.y + tall
    }
}

/// Carries or pushes one character by the platforms' motion over a tick (`[platform-2]`,
/// `[platform-3]`): `before` and `after` are the platforms' centres at the start and end of the
/// tick. The character is carried by the first platform it stands on; otherwise pushed by every
/// platform that moved into it. Returns whether it moved.
pub(crate) fn carry(
    paths: &[PlatformPath],
    before: &[Vec3],
    after: &[Vec3],
    st: &mut CharacterState,
    cfg: &SimConfig,
) -> bool {
    if !st.alive() {
        return false;
    }
    if st.grounded
        && let Some(i) = (0..paths.len()).find(|i| paths[*i].carries(before[*i], st.position_m, cfg))
    {
        let delta = after[i] - before[i];
        if delta == Vec3::ZERO {
            return false;
        }
        st.position_m = snap_position(st.position_m + delta);
        return true;
    }
    let mut moved = false;
    for (i, path) in paths.iter().enumerate() {
        let delta = after[i] - before[i];
        if delta == Vec3::ZERO || !path.overlaps(after[i], st.position_m, cfg) {
            continue;
        }
        let c = &cfg.character;
        let top = after[i].y + path.half_extents_m.y;
        let mut p = st.position_m + Vec3::new(delta.x, 0.0, delta.z);
        if delta.y > 0.0 && st.position_m.y > after[i].y {
            // Rising under the character: lift it onto the top.
            p.y = top + c.half_height_m + c.radius_m + HOVER_M;
            st.grounded = true;
            st.velocity_mps.y = 0.0;
        }
        st.position_m = snap_position(p);
        moved = true;
    }
    moved
}

/// Checks a platform description: finite numbers, sizes and counts within bounds, every
/// waypoint inside the world. `what` names it in the error.
pub(crate) fn validate(what: &str, p: &PlatformDesc, contains_xz: impl Fn(f32, f32) -> bool) -> Result<(), String> {
    let finite = |v: &[f32]| v.iter().all(|x| x.is_finite());
    if !finite(&p.half_extents_m) || !p.half_extents_m.iter().all(|h| *h > 0.0 && *h <= 64.0) {
        return Err(format!("{what} half extents must be in (0, 64] m"));
    }
    if p.path_m.len() < 2 || p.path_m.len() > PATH_POINTS_MAX {
        return Err(format!("{what} needs 2 to {PATH_POINTS_MAX} waypoints"));
    }
    for w in &p.path_m {
        if !finite(w) || !contains_xz(w[0], w[2]) || w[1].abs() > 4096.0 {
            return Err(format!("{what} has a waypoint outside the world"));
        }
    }
    if !(p.speed_mps.is_finite() && p.speed_mps > 0.0 && p.speed_mps <= PLATFORM_SPEED_MAX_MPS) {
        return Err(format!("{what} speed must be in (0, {PLATFORM_SPEED_MAX_MPS}] m/s"));
    }
    let slowest = p.path_m.windows(2).map(|w| Vec3::from(w[0]).distance(Vec3::from(w[1]))).fold(0.0f32, f32::max);
    let leg_s = slowest / p.speed_mps;
    if !leg_s.is_finite() || leg_s > LEG_MAX_S {
        return Err(format!("{what} takes longer than {LEG_MAX_S} s for one leg at its speed"));
    }
    if !(p.pause_s.is_finite() && (0.0..=PAUSE_MAX_S).contains(&p.pause_s)) {
        return Err(format!("{what} pause must be in [0, {PAUSE_MAX_S}] s"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lift() -> PlatformDesc {
        PlatformDesc {
            half_extents_m: [2.0, 0.25, 2.0],
            path_m: vec![[0.0, 0.25, 0.0], [0.0, 6.25, 0.0]],
            speed_mps: 2.0,
            pause_s: 1.0,
            closed: false,
        }
    }

    #[test]
    fn a_lift_goes_up_pauses_and_comes_back() {
        let cfg = SimConfig::default();
        let p = PlatformPath::new(&lift(), &cfg);
        // 6 m at 2 m/s = 90 ticks each way, 30 ticks of pause at each end.
        assert_eq!(p.cycle_ticks(), 2 * (90 + 30));
        assert_eq!(p.position_at(0), Vec3::new(0.0, 0.25, 0.0));
        assert_eq!(p.position_at(30 + 90 + 1), Vec3::new(0.0, 6.25, 0.0));
        let mid = p.position_at(30 + 45);
        assert!((mid.y - 3.25).abs() < 1e-3, "{mid}");
        assert_eq!(p.position_at(7), p.position_at(7 + p.cycle_ticks()));
    }

    #[test]
    fn positions_are_on_the_grid_and_bounded_by_the_path() {
        let cfg = SimConfig::default();
        let p = PlatformPath::new(&lift(), &cfg);
        for t in 0..p.cycle_ticks() {
            let at = p.position_at(t);
            assert_eq!(at, snap_position(at));
            assert!((0.25..=6.25).contains(&at.y), "tick {t}: {at}");
        }
    }

    #[test]
    fn bad_platforms_are_refused_with_a_reason() {
        let inside = |_: f32, _: f32| true;
        let mut p = lift();
        p.path_m.truncate(1);
        assert!(validate("platform 0", &p, inside).unwrap_err().contains("waypoints"));
        let mut p = lift();
        p.speed_mps = f32::NAN;
        assert!(validate("platform 0", &p, inside).unwrap_err().contains("speed"));
        let p = lift();
        assert!(validate("platform 0", &p, |_, _| false).unwrap_err().contains("outside"));
    }
}
