//! Input pacing (`[game-7]`): the client steers how many of its inputs wait in the zone's
//! input queue (reported in every snapshot) by sending a little slower or faster, never by
//! skipping or repeating an input, so pacing itself never causes a correction.
//!
//! Rules:
//! - `[pace-1]` the target depth is twice the measured arrival jitter in ticks, rounded up;
//!   none on a clean link (twice the jitter under `PACE_CLEAN_JITTER_TICKS`), but at least one
//!   for `PACE_MISS_MEMORY_S` after an input missed its tick (arrivals that straddle the
//!   zone's tick boundary, or a lost datagram, need that margin); at most `PACE_TARGET_MAX`;
//! - `[pace-2]` after each window of `PACE_WINDOW_SNAPSHOTS` snapshots the smallest depth seen
//!   is compared with the target; each input too many is drained by sending `PACE_INPUTS`
//!   inputs `PACE_STEP` slower, each too few added by sending them that much faster;
//! - `[pace-3]` after a step, reports are ignored until the change has had time to reach the
//!   zone and come back (the latest send-to-acknowledgement time plus two ticks), and for
//!   `PACE_SETTLE_S` after prediction starts.

/// Snapshots observed before each pacing decision (`[pace-2]`).
pub const PACE_WINDOW_SNAPSHOTS: u32 = 15;
/// Inputs sent at the adjusted rate for one step of pacing: ten at 10 % off moves the server's
/// queue by exactly one input.
pub const PACE_INPUTS: u32 = 10;
/// Rate change while pacing.
pub const PACE_STEP: f64 = 0.1;
/// Twice the arrival jitter below which a link counts as clean (no queue margin), in ticks.
pub const PACE_CLEAN_JITTER_TICKS: f64 = 0.25;
/// Seconds a missed input keeps a margin of one in the queue.
pub const PACE_MISS_MEMORY_S: f64 = 30.0;
/// Seconds after prediction starts before pacing looks at the reported queue.
pub const PACE_SETTLE_S: f64 = 1.0;
/// Deepest queue the pacing aims for (the server keeps at most four).
pub const PACE_TARGET_MAX: u8 = 3;

/// The pacing state of one client.
#[derive(Clone, Debug, Default)]
pub struct Pacing {
    /// Smallest queue depth reported in the current window.
    min_backlog: Option<u8>,
    /// Snapshots in the current window.
    observed: u32,
    /// Snapshots arriving before this time still show the last adjustment's past: ignored.
    observe_after_s: f64,
    /// Inputs left to send at the adjusted rate, and the rate factor on the tick period.
    inputs_left: u32,
    scale: f64,
    /// The latest input's send-to-acknowledgement time: how long a change in pacing takes to
    /// show in the reported depth.
    ack_latency_s: f64,
    /// Until when a missed input keeps a margin of one in the queue.
    missed_until_s: f64,
}

impl Pacing {
    /// The queue depth to aim for (`[pace-1]`), for a link with `jitter_ticks` of arrival
    /// jitter, at client time `now_s`.
    pub fn target(&self, jitter_ticks: f64, now_s: f64) -> u8 {
        let twice = 2.0 * jitter_ticks.max(0.0);
        let from_jitter = if twice < PACE_CLEAN_JITTER_TICKS { 0.0 } else { (twice - 1e-3).ceil() };
        let floor = if now_s < self.missed_until_s { 1.0 } else { 0.0 };
        (from_jitter.max(floor).min(f64::from(PACE_TARGET_MAX))) as u8
    }

    /// A snapshot reporting `backlog` arrived at `arrival_s` (`[pace-2]`, `[pace-3]`); returns
    /// whether a pacing step started.
    pub fn observe(&mut self, arrival_s: f64, backlog: u8, jitter_ticks: f64) -> bool {
        if self.inputs_left > 0 || arrival_s < self.observe_after_s {
            return false;
        }
        self.min_backlog = Some(self.min_backlog.map_or(backlog, |m| m.min(backlog)));
        self.observed += 1;
        if self.observed < PACE_WINDOW_SNAPSHOTS {
            return false;
        }
        let target = self.target(jitter_ticks, arrival_s);
        let min = self.min_backlog.take().unwrap_or(0);
        self.observed = 0;
        if min == target {
            return false;
        }
        self.scale = if min > target { 1.0 + PACE_STEP } else { 1.0 - PACE_STEP };
        self.inputs_left = PACE_INPUTS * u32::from(min.abs_diff(target));
        true
    }

    /// The factor on the tick period for the next input.
    pub fn period_scale(&self) -> f64 {
        if self.inputs_left > 0 { self.scale } else { 1.0 }
    }

    /// An input went out at `now_s`.
    pub fn input_sent(&mut self, now_s: f64, tick_s: f64) {
        if self.inputs_left > 0 {
            self.inputs_left -= 1;
            if self.inputs_left == 0 {
                // Look again once the change has reached the server and come back.
                self.observe_after_s = now_s + self.ack_latency_s + 2.0 * tick_s;
            }
        }
    }

    /// The latest input took `latency_s` from sending to acknowledgement.
    pub fn acknowledged(&mut self, latency_s: f64) {
        self.ack_latency_s = latency_s.max(0.0);
    }

    /// An input missed its tick at the zone.
    pub fn missed(&mut self, now_s: f64) {
        self.missed_until_s = now_s + PACE_MISS_MEMORY_S;
    }

    /// Prediction (and so sending inputs) started at `now_s`.
    pub fn started(&mut self, now_s: f64) {
        self.observe_after_s = now_s + PACE_SETTLE_S;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pace_1_targets_follow_jitter_and_misses() {
        let p = Pacing::default();
        assert_eq!(p.target(0.05, 0.0), 0, "a clean link keeps no margin");
        assert_eq!(p.target(0.3, 0.0), 1);
        assert_eq!(p.target(0.6, 0.0), 2);
        assert_eq!(p.target(9.0, 0.0), PACE_TARGET_MAX);
        let mut missed = Pacing::default();
        missed.missed(10.0);
        assert_eq!(missed.target(0.0, 20.0), 1, "a miss keeps one input of margin");
        assert_eq!(missed.target(0.0, 10.0 + PACE_MISS_MEMORY_S), 0, "for a while");
    }

    #[test]
    fn pace_2_3_too_deep_a_queue_is_drained_one_step_at_a_time() {
        let tick_s = 1.0 / 30.0;
        let mut p = Pacing::default();
        p.acknowledged(0.05);
        let mut now = 0.0;
        let mut stepped = false;
        for _ in 0..PACE_WINDOW_SNAPSHOTS {
            now += tick_s;
            stepped |= p.observe(now, 2, 0.0);
        }
        assert!(stepped);
        assert!(p.period_scale() > 1.0, "two too many: slower");
        // Two inputs to drain: twice PACE_INPUTS slower inputs, then back to normal.
        for _ in 0..2 * PACE_INPUTS {
            assert!(!p.observe(now, 2, 0.0), "reports during a step are ignored");
            p.input_sent(now, tick_s);
            now += tick_s;
        }
        assert_eq!(p.period_scale(), 1.0);
        assert!(!p.observe(now, 0, 0.0), "reports from before the change came back are ignored");
        // Too shallow after a miss: faster.
        p.missed(now);
        now += 1.0;
        for _ in 0..PACE_WINDOW_SNAPSHOTS {
            now += tick_s;
            p.observe(now, 0, 0.0);
        }
        assert!(p.period_scale() < 1.0);
    }
}
