//! Interpolation of remote entities: they are drawn a little in the past, between two
//! snapshots that have both arrived, so they move smoothly whatever the network does.
//!
//! Rules:
//! - `[interp-1]` the render time is the estimated server time minus an adaptive delay; the
//!   server time comes from the earliest-arriving recent snapshot (arrival times only grow with
//!   delay, so the earliest is the best estimate of the clock offset);
//! - `[interp-2]` the delay is one tick plus twice the recent arrival jitter (the spread of
//!   `tick time - arrival time` over the window), clamped to `DELAY_TICKS_MIN..=DELAY_TICKS_MAX`;
//! - `[interp-3]` positions are linear between the snapshots around the render time; an entity
//!   is never extrapolated past the newest snapshot (it holds there);
//! - `[interp-4]` at most `HISTORY_MAX` snapshots are kept.

use glam::Vec3;
use pwn_proto::delta::View;
use pwn_sim::quantize::dequantize_position;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// Snapshots kept for interpolation (two seconds at 30 Hz).
pub const HISTORY_MAX: usize = 64;
/// Arrivals remembered for the clock and jitter estimates.
pub const ARRIVALS_WINDOW: usize = 60;
/// Smallest interpolation delay.
pub const DELAY_TICKS_MIN: f64 = 1.0;
/// Largest interpolation delay.
pub const DELAY_TICKS_MAX: f64 = 10.0;

/// Remote entities' recent states and the clock needed to draw them.
#[derive(Debug)]
pub struct Interpolator {
    tick_s: f64,
    views: BTreeMap<u64, Arc<View>>,
    /// `tick time - arrival time` of recent snapshots, seconds.
    offsets: VecDeque<f64>,
}

impl Interpolator {
    /// An interpolator for a simulation running at `tick_hz`.
    pub fn new(tick_hz: u32) -> Self {
        Self { tick_s: 1.0 / f64::from(tick_hz.max(1)), views: BTreeMap::new(), offsets: VecDeque::new() }
    }

    /// Records a snapshot's view of `tick`, which arrived at `arrival_s` on the client's clock.
    pub fn push(&mut self, tick: u64, arrival_s: f64, view: &View) {
        self.push_shared(tick, arrival_s, Arc::new(view.clone()));
    }

    /// Like [`Interpolator::push`] with a view shared with its owner (no copy).
    pub fn push_shared(&mut self, tick: u64, arrival_s: f64, view: Arc<View>) {
        self.views.insert(tick, view);
        while self.views.len() > HISTORY_MAX {
            self.views.pop_first();
        }
        self.offsets.push_back(tick as f64 * self.tick_s - arrival_s);
        while self.offsets.len() > ARRIVALS_WINDOW {
            self.offsets.pop_front();
        }
    }

    fn clock_offset_s(&self) -> Option<f64> {
        self.offsets.iter().copied().reduce(f64::max)
    }

    /// The current interpolation delay in ticks (`[interp-2]`).
    pub fn delay_ticks(&self) -> f64 {
        let (Some(max), Some(min)) = (self.clock_offset_s(), self.offsets.iter().copied().reduce(f64::min)) else {
            return DELAY_TICKS_MIN;
        };
        (1.0 + 2.0 * (max - min) / self.tick_s).clamp(DELAY_TICKS_MIN, DELAY_TICKS_MAX)
    }

    /// The server tick (fractional) to draw at client time `now_s`.
    pub fn render_tick(&self, now_s: f64) -> Option<f64> {
        Some((now_s + self.clock_offset_s()?) / self.tick_s - self.delay_ticks())
    }

    /// Every entity's position to draw at `now_s` (`[interp-3]`).
    pub fn sample(&self, now_s: f64) -> BTreeMap<u64, Vec3> {
        let mut out = Vec::new();
        self.sample_into(now_s, &mut out);
        out.into_iter().collect()
    }

    /// Like [`Interpolator::sample`], into a reused list in id order.
    pub fn sample_into(&self, now_s: f64, out: &mut Vec<(u64, Vec3)>) {
        out.clear();
        let Some(at) = self.render_tick(now_s) else { return };
        let newest = self.views.keys().next_back().copied();
        let at = newest.map_or(at, |n| at.min(n as f64));
        let before = self.views.range(..=at.floor().max(0.0) as u64).next_back();
        let after = self.views.range(at.ceil().max(0.0) as u64..).next();
        match (before, after) {
            (Some((t0, v0)), Some((t1, v1))) if t1 > t0 => {
                let f = ((at - *t0 as f64) / (*t1 - *t0) as f64).clamp(0.0, 1.0) as f32;
                for (id, s1) in v1.iter() {
                    let p1 = dequantize_position(s1.position);
                    let p = v0.get(id).map_or(p1, |s0| dequantize_position(s0.position).lerp(p1, f));
                    out.push((*id, p));
                }
            }
            (Some((_, v)), _) | (None, Some((_, v))) => {
                out.extend(v.iter().map(|(id, s)| (*id, dequantize_position(s.position))));
            }
            (None, None) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pwn_proto::delta::EntityState;
    use pwn_sim::quantize::quantize_position;

    fn view_at(x: f32) -> View {
        let s = EntityState { id: 9, position: quantize_position(Vec3::new(x, 0.0, 0.0)), ..EntityState::default() };
        [(9, s)].into()
    }

    #[test]
    fn interp_1_3_steady_snapshots_interpolate_linearly() {
        let mut i = Interpolator::new(30);
        let dt = 1.0 / 30.0;
        // Tick t is at x = t metres and arrives 50 ms after it happened.
        for t in 0..=30u64 {
            i.push(t, t as f64 * dt + 0.05, &view_at(t as f32));
        }
        assert!((i.delay_ticks() - 1.0).abs() < 1e-6, "no jitter, minimum delay: {}", i.delay_ticks());
        // Half a tick after tick 20 arrived, we draw 1 tick behind: x = 19.5.
        let now = 20.0 * dt + 0.05 + 0.5 * dt;
        let x = i.sample(now)[&9].x;
        assert!((x - 19.5).abs() < 0.01, "{x}");
        // Far in the future: held at the newest snapshot, never extrapolated.
        assert!((i.sample(100.0)[&9].x - 30.0).abs() < 1e-3);
    }

    #[test]
    fn interp_2_jitter_raises_the_delay_within_bounds() {
        let mut i = Interpolator::new(30);
        let dt = 1.0 / 30.0;
        for t in 0..60u64 {
            let jitter = if t % 3 == 0 { 0.04 } else { 0.0 };
            i.push(t, t as f64 * dt + 0.05 + jitter, &view_at(t as f32));
        }
        let d = i.delay_ticks();
        assert!(d > 3.0 && d <= DELAY_TICKS_MAX, "{d}");
        let mut wild = Interpolator::new(30);
        for t in 0..60u64 {
            wild.push(t, t as f64 * dt + if t % 2 == 0 { 2.0 } else { 0.0 }, &view_at(0.0));
        }
        assert_eq!(wild.delay_ticks(), DELAY_TICKS_MAX);
    }

    #[test]
    fn interp_4_history_is_bounded() {
        let mut i = Interpolator::new(30);
        for t in 0..500u64 {
            i.push(t, t as f64 / 30.0, &view_at(0.0));
        }
        assert_eq!(i.views.len(), HISTORY_MAX);
        assert!(i.offsets.len() <= ARRIVALS_WINDOW);
    }
}
