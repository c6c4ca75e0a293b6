//! Lag compensation: where characters were, tick by tick, for about a second, so that a shot is
//! hit tested against characters where its shooter saw them. A player draws remote characters
//! an interpolation delay in the past, and its input reaches the server half a round trip
//! later still; without this, a shooter must lead its aim by its own latency.
//!
//! A projectile fired with an input whose `view_tick` is `r` ticks before the tick it is fired
//! at keeps `r` for its whole flight: each tick it is tested against the static world and crates
//! as they are now, and against characters as they were `r` ticks ago. `r` is at most
//! [`REWIND_TICKS_MAX`]; the zone narrows it further to what its operator allows. The cost is
//! the usual one: a target can be hit by a shot that, on its own screen, it had already moved
//! away from (behind cover), by up to the rewind.

use crate::ids::EntityId;
use glam::Vec3;
use rapier3d::parry::query::{Ray, RayCast};
use rapier3d::parry::shape::Capsule;
use rapier3d::prelude::Pose;
use std::collections::VecDeque;

/// The most ticks a shot is ever rewound (about a second at 30 Hz), and the history kept.
pub const REWIND_TICKS_MAX: u64 = 30;

/// Character centres at the end of each of the last ticks, oldest first.
#[derive(Clone, Debug, Default)]
pub struct HitboxHistory {
    ticks: VecDeque<(u64, Vec<(EntityId, Vec3)>)>,
}

impl HitboxHistory {
    /// Records the characters' centres at the end of `tick`, dropping what is older than the
    /// longest rewind.
    pub(crate) fn record(&mut self, tick: u64, centres: Vec<(EntityId, Vec3)>) {
        // A clock set back (not done by zones, which only skip ahead) makes what is kept a
        // different past; forgetting it keeps the ticks in order and the history bounded.
        if self.ticks.back().is_some_and(|(t, _)| *t >= tick) {
            self.ticks.clear();
        }
        while self.ticks.front().is_some_and(|(t, _)| *t + REWIND_TICKS_MAX < tick) {
            self.ticks.pop_front();
        }
        self.ticks.push_back((tick, centres));
    }

    /// Feeds the whole history to a state hash: it decides what rewound shots hit, so two
    /// worlds with different histories are different worlds.
    pub(crate) fn hash_into(&self, h: &mut crate::hash::StateHasher) {
        h.u64(self.ticks.len() as u64);
        for (tick, centres) in &self.ticks {
            h.u64(*tick);
            h.u64(centres.len() as u64);
            for (id, centre) in centres {
                h.u64(id.0);
                h.vec3(*centre);
            }
        }
    }

    /// Character centres at the end of `tick`, if still kept. Ticks are searched, not
    /// counted from the oldest: a zone that falls behind the world clock skips ticks
    /// (`Sim::join_clock`), and the history then has a gap.
    pub fn at(&self, tick: u64) -> Option<&[(EntityId, Vec3)]> {
        let i = self.ticks.binary_search_by_key(&tick, |(t, _)| *t).ok()?;
        Some(self.ticks[i].1.as_slice())
    }
}

/// The rewind of a shot fired at `now` by an input made while drawing `view_tick` (0: none).
pub fn rewind_ticks(now: u64, view_tick: u64) -> u8 {
    if view_tick == 0 {
        return 0;
    }
    now.saturating_sub(view_tick).min(REWIND_TICKS_MAX) as u8
}

/// The first character (not `owner`, and `hittable` now) the segment from `origin` along
/// `displacement` enters, with the fraction of the segment travelled; capsules of
/// `half_height_m` and `radius_m` around `centres`. Ties go to the lower id, so the result does
/// not depend on order. Characters that are not `hittable` (dead or gone since) are skipped
/// before the nearest is chosen: one of them nearer on the path must not hide a live one.
pub(crate) fn sweep(
    centres: &[(EntityId, Vec3)],
    owner: EntityId,
    hittable: impl Fn(EntityId) -> bool,
    origin: Vec3,
    displacement: Vec3,
    half_height_m: f32,
    radius_m: f32,
) -> Option<(EntityId, f32)> {
    let capsule = Capsule::new_y(half_height_m, radius_m);
    let ray = Ray::new(origin, displacement);
    let reach = displacement.length() + half_height_m + radius_m;
    let mut best: Option<(EntityId, f32)> = None;
    for (id, centre) in centres {
        if *id == owner || centre.distance(origin) > reach || !hittable(*id) {
            continue;
        }
        if let Some(toi) = capsule.cast_ray(&Pose::from_translation(*centre), &ray, 1.0, true)
            && best.is_none_or(|(b_id, b_toi)| toi < b_toi || (toi == b_toi && *id < b_id))
        {
            best = Some((*id, toi));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_about_a_second_and_finds_each_tick() {
        let mut h = HitboxHistory::default();
        for t in 1..=100u64 {
            h.record(t, vec![(EntityId(1), Vec3::new(t as f32, 0.0, 0.0))]);
        }
        assert_eq!(h.at(100).unwrap()[0].1.x, 100.0);
        assert_eq!(h.at(70).unwrap()[0].1.x, 70.0);
        assert!(h.at(69).is_none(), "kept more than the longest rewind");
        assert!(h.at(101).is_none());
    }

    #[test]
    fn history_finds_each_tick_across_a_skip_of_the_clock() {
        let mut h = HitboxHistory::default();
        let ticks = (1..=10u64).chain(20..=25);
        for t in ticks.clone() {
            h.record(t, vec![(EntityId(1), Vec3::new(t as f32, 0.0, 0.0))]);
        }
        for t in ticks {
            assert_eq!(h.at(t).map(|c| c[0].1.x), Some(t as f32), "tick {t}");
        }
        assert!(h.at(15).is_none(), "a skipped tick");
        h.record(5, vec![]);
        assert!(h.at(5).is_some_and(|c| c.is_empty()) && h.at(25).is_none(), "a clock set back");
    }

    #[test]
    fn rewind_is_bounded_and_none_without_a_view_tick() {
        assert_eq!(rewind_ticks(100, 0), 0);
        assert_eq!(rewind_ticks(100, 95), 5);
        assert_eq!(rewind_ticks(100, 120), 0, "a view from the future is no rewind");
        assert_eq!(u64::from(rewind_ticks(1_000, 1)), REWIND_TICKS_MAX);
    }

    #[test]
    fn sweep_finds_the_nearest_capsule_and_skips_the_shooter() {
        let centres = vec![
            (EntityId(1), Vec3::ZERO),
            (EntityId(2), Vec3::new(0.0, 0.0, 10.0)),
            (EntityId(3), Vec3::new(0.0, 0.0, 5.0)),
            (EntityId(4), Vec3::new(3.0, 0.0, 5.0)),
        ];
        let all = |_| true;
        let hit = sweep(&centres, EntityId(1), all, Vec3::ZERO, Vec3::new(0.0, 0.0, 20.0), 0.5, 0.4);
        let (id, toi) = hit.unwrap();
        assert_eq!(id, EntityId(3));
        assert!((toi * 20.0 - 4.6).abs() < 1e-3, "{toi}");
        assert!(sweep(&centres, EntityId(1), all, Vec3::ZERO, Vec3::new(0.0, 0.0, 4.0), 0.5, 0.4).is_none());
        let not_3 = |id| id != EntityId(3);
        let hit = sweep(&centres, EntityId(1), not_3, Vec3::ZERO, Vec3::new(0.0, 0.0, 20.0), 0.5, 0.4);
        assert_eq!(hit.map(|(id, _)| id), Some(EntityId(2)), "an unhittable nearer one hides the next");
    }
}
