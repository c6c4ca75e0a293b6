//! What a client measures about itself: prediction, input latency, snapshots, bandwidth.
//!
//! Distributions are kept in fixed-width [`Histogram`]s (bounded memory whatever the run's
//! length, and mergeable, so a swarm of bots sums into one report).

/// A histogram of non-negative values in equal-width buckets; values past the last bucket land
/// in it (their exact maximum is kept separately). Serialized with only its non-empty buckets
/// (a load-test worker's results travel to the process that reports them).
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(into = "HistogramWire", try_from = "HistogramWire")]
pub struct Histogram {
    width: f64,
    counts: Vec<u64>,
    count: u64,
    sum: f64,
    max: f64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("mean", &self.mean())
            .field("p99", &self.quantile(0.99))
            .field("max", &self.max)
            .finish()
    }
}

/// Most buckets a deserialized histogram may have.
pub const HISTOGRAM_BUCKETS_MAX: u32 = 1 << 20;

/// The serialized form of a [`Histogram`].
#[derive(serde::Serialize, serde::Deserialize)]
struct HistogramWire {
    width: f64,
    buckets: u32,
    /// Non-empty buckets: index, count.
    counts: Vec<(u32, u64)>,
    count: u64,
    sum: f64,
    max: f64,
}

impl From<Histogram> for HistogramWire {
    fn from(h: Histogram) -> Self {
        Self {
            width: h.width,
            buckets: h.counts.len() as u32,
            counts: h.counts.iter().enumerate().filter(|(_, n)| **n > 0).map(|(i, n)| (i as u32, *n)).collect(),
            count: h.count,
            sum: h.sum,
            max: h.max,
        }
    }
}

impl TryFrom<HistogramWire> for Histogram {
    type Error = String;
    fn try_from(w: HistogramWire) -> Result<Self, String> {
        if !(w.width.is_finite() && w.width > 0.0) || w.buckets == 0 || w.buckets > HISTOGRAM_BUCKETS_MAX {
            return Err(format!("a histogram of {} buckets of width {}", w.buckets, w.width));
        }
        let mut counts = vec![0u64; w.buckets as usize];
        let mut total = 0u64;
        for (i, n) in w.counts {
            let c = counts.get_mut(i as usize).ok_or_else(|| format!("bucket {i} of {}", w.buckets))?;
            *c = c.checked_add(n).ok_or("a bucket overflows")?;
            total = total.checked_add(n).ok_or("the counts overflow")?;
        }
        if total != w.count {
            return Err(format!("buckets hold {total} values, not {}", w.count));
        }
        // Values are finite and non-negative (`record` makes them so), and the maximum is at
        // least every value recorded: in the highest bucket holding one, as `record` files it.
        if !(w.sum.is_finite() && w.sum >= 0.0 && w.max.is_finite() && w.max >= 0.0) {
            return Err(format!("a sum of {} and a maximum of {}", w.sum, w.max));
        }
        if let Some(top) = counts.iter().rposition(|n| *n > 0)
            && ((w.max / w.width) as usize) < top
        {
            return Err(format!("a maximum of {} below a value in bucket {top} of width {}", w.max, w.width));
        }
        Ok(Self { width: w.width, counts, count: w.count, sum: w.sum, max: w.max })
    }
}

impl Histogram {
    /// `buckets` buckets of `width` each.
    pub fn new(width: f64, buckets: usize) -> Self {
        Self { width, counts: vec![0; buckets.max(1)], count: 0, sum: 0.0, max: 0.0 }
    }

    /// Records one value (negative and NaN values count as zero).
    pub fn record(&mut self, v: f64) {
        let v = if v.is_finite() { v.max(0.0) } else { 0.0 };
        let i = ((v / self.width) as usize).min(self.counts.len() - 1);
        self.counts[i] += 1;
        self.count += 1;
        self.sum += v;
        self.max = self.max.max(v);
    }

    /// Adds another histogram of the same shape (a different shape is ignored).
    pub fn merge(&mut self, other: &Histogram) {
        if other.width != self.width || other.counts.len() != self.counts.len() {
            return;
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    /// What was recorded since `earlier` (an earlier copy of this histogram): the difference
    /// of the counts and sums. The maximum is this one's (a maximum cannot be subtracted), so
    /// quantiles are capped by the whole run's maximum, not the interval's.
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        let mut out = self.clone();
        if earlier.width != self.width || earlier.counts.len() != self.counts.len() {
            return out;
        }
        for (a, b) in out.counts.iter_mut().zip(&earlier.counts) {
            *a = a.saturating_sub(*b);
        }
        out.count = self.count.saturating_sub(earlier.count);
        out.sum = (self.sum - earlier.sum).max(0.0);
        out
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Mean value (0 with none).
    pub fn mean(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.sum / self.count as f64 }
    }

    /// Largest value recorded.
    pub fn max(&self) -> f64 {
        self.max
    }

    /// The `q` quantile (0..=1): the upper edge of the bucket holding it, never above the
    /// maximum recorded. 0 with no values.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return ((i + 1) as f64 * self.width).min(self.max);
            }
        }
        self.max
    }
}

/// Handoffs whose stall is kept per client.
pub const HANDOFFS_KEPT_MAX: usize = 4_096;

/// A client's counters; see [`crate::game::GameClient::counters`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClientCounters {
    /// Snapshots applied.
    pub snapshots: u64,
    /// Snapshots dropped: late, duplicated, or against a baseline no longer held.
    pub snapshots_dropped: u64,
    /// Entity updates in applied snapshots.
    pub entity_updates: u64,
    /// Entity updates of world objects the client already held (a change, a dynamic object
    /// moving; none for objects at rest).
    pub object_updates: u64,
    /// Packed update bytes in applied snapshots (the `updates` field).
    pub update_bytes: u64,
    /// Inputs sent (each once; repeats for redundancy not counted).
    pub inputs_sent: u64,
    /// Inputs not sent because the game loop stalled for more than the catch-up limit.
    pub inputs_skipped: u64,
    /// Pacing adjustments made to the input rate (pwn-client `[game-7]`).
    pub pacing_steps: u64,
    /// Inputs that missed their tick at the server (seen as two consecutive snapshots
    /// acknowledging the same input while newer ones had been sent).
    pub inputs_missed: u64,
    /// Server states that matched the prediction exactly.
    pub confirmations: u64,
    /// Server states that forced a rollback and replay.
    pub corrections: u64,
    /// Prediction error at every comparison with the server (0 when confirmed), metres.
    pub prediction_error_m: Histogram,
    /// Time from sending an input to receiving the snapshot acknowledging it, in ticks.
    pub input_ack_ticks: Histogram,
    /// The interpolation delay now, in ticks.
    pub interpolation_delay_ticks: f64,
    /// The latest measured round trip, milliseconds (0 before the first).
    pub rtt_ms: f64,
    /// Projectiles this client fired by prediction.
    pub projectiles_predicted: u64,
    /// The server's copies of those that arrived for a projectile already predicted (replaced
    /// without a pop).
    pub projectiles_confirmed: u64,
    /// Game events received.
    pub events: u64,
    /// Times the gateway moved this player to another zone.
    pub zone_switches: u64,
    /// Chat lines received.
    pub chat_received: u64,
    /// Chat lines received from other players.
    pub chat_from_others: u64,
    /// Items of value this player received (committed moves: gifts, loot).
    pub items_received: u64,
    /// Times the player's character came back after dying (`[game-11]`).
    pub respawns: u64,
    /// World-object edits sent (`[game-16]`).
    pub edits_sent: u64,
    /// Edits the zone committed.
    pub edits_committed: u64,
    /// Edits the zone refused.
    pub edits_refused: u64,
    /// Ticks from sending an edit to its answer (`EditDone`), committed ones only.
    pub edit_done_ticks: Histogram,
    /// Payload bytes received (snapshots, events; without QUIC framing).
    pub bytes_in: u64,
    /// Payload bytes sent.
    pub bytes_out: u64,
    /// Times another zone took the player over (`AuthorityMoved`, `[game-13]`).
    pub handoffs: u64,
    /// Per handoff (the newest `HANDOFFS_KEPT_MAX`), the ticks the player went without a
    /// snapshot acknowledging a new input, beyond the one tick every snapshot takes
    /// (`[game-13]`); whole ticks, kept exactly.
    pub handoff_ticks: std::collections::VecDeque<u32>,
    /// Prediction error (0 for a confirmation) within `CROSSING_WINDOW_TICKS` after a handoff.
    pub prediction_error_crossing_m: Histogram,
    /// Prediction error (0 for a confirmation) everywhere else.
    pub prediction_error_elsewhere_m: Histogram,
}

impl Default for ClientCounters {
    fn default() -> Self {
        Self {
            snapshots: 0,
            snapshots_dropped: 0,
            entity_updates: 0,
            object_updates: 0,
            update_bytes: 0,
            inputs_sent: 0,
            inputs_skipped: 0,
            pacing_steps: 0,
            inputs_missed: 0,
            confirmations: 0,
            corrections: 0,
            // 5 mm buckets up to 5 m.
            prediction_error_m: Histogram::new(0.005, 1_000),
            // A twentieth of a tick up to 20 ticks.
            input_ack_ticks: Histogram::new(0.05, 400),
            interpolation_delay_ticks: 0.0,
            rtt_ms: 0.0,
            projectiles_predicted: 0,
            projectiles_confirmed: 0,
            events: 0,
            zone_switches: 0,
            chat_received: 0,
            chat_from_others: 0,
            items_received: 0,
            respawns: 0,
            edits_sent: 0,
            edits_committed: 0,
            edits_refused: 0,
            // A tenth of a tick up to 100 ticks.
            edit_done_ticks: Histogram::new(0.1, 1_000),
            bytes_in: 0,
            bytes_out: 0,
            handoffs: 0,
            handoff_ticks: std::collections::VecDeque::new(),
            prediction_error_crossing_m: Histogram::new(0.005, 1_000),
            prediction_error_elsewhere_m: Histogram::new(0.005, 1_000),
        }
    }
}

impl ClientCounters {
    /// Mean packed bytes per entity update (0 with none).
    pub fn bytes_per_entity_update(&self) -> f64 {
        if self.entity_updates == 0 { 0.0 } else { self.update_bytes as f64 / self.entity_updates as f64 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_what_was_recorded_in_between() {
        let mut h = Histogram::new(1.0, 10);
        h.record(1.0);
        h.record(1.0);
        let earlier = h.clone();
        h.record(5.0);
        h.record(6.0);
        let d = h.since(&earlier);
        assert_eq!(d.count(), 2);
        assert_eq!(d.quantile(0.5), 6.0);
        assert_eq!(d.mean(), 5.5);
    }

    #[test]
    fn quantiles_merge_and_bounds() {
        let mut h = Histogram::new(1.0, 10);
        for v in 0..100 {
            h.record(f64::from(v) / 10.0); // 0.0 .. 9.9
        }
        assert_eq!(h.count(), 100);
        assert!((h.quantile(0.5) - 5.0).abs() < 1e-9, "{}", h.quantile(0.5));
        assert!((h.quantile(0.99) - 9.9).abs() < 1e-9, "capped by the max: {}", h.quantile(0.99));
        h.record(1e9);
        assert_eq!(h.max(), 1e9);
        h.record(f64::NAN);
        h.record(-3.0);
        assert_eq!(h.quantile(0.0), 1.0, "NaN and negatives count as zero");
        let mut other = Histogram::new(1.0, 10);
        other.record(2.5);
        let before = h.count();
        h.merge(&other);
        assert_eq!(h.count(), before + 1);
        h.merge(&Histogram::new(2.0, 10));
        assert_eq!(h.count(), before + 1, "a different shape is not merged");
        assert_eq!(Histogram::new(1.0, 3).quantile(0.99), 0.0);
    }

    #[test]
    fn histograms_serialize_sparsely_and_refuse_what_is_not_one() {
        let mut h = Histogram::new(0.5, 1_000);
        for v in [0.1, 0.7, 0.7, 400.0, 1e9] {
            h.record(v);
        }
        let wire: HistogramWire = h.clone().into();
        assert_eq!(wire.counts, vec![(0, 1), (1, 2), (800, 1), (999, 1)], "only non-empty buckets");
        let back = Histogram::try_from(wire).unwrap();
        assert_eq!(back, h);
        let bad = |f: fn(&mut HistogramWire)| {
            let mut w: HistogramWire = h.clone().into();
            f(&mut w);
            Histogram::try_from(w).is_err()
        };
        assert!(bad(|w| w.counts.push((1_000, 1))), "a bucket past the end");
        assert!(bad(|w| w.count += 1), "counts that do not add up");
        assert!(bad(|w| w.width = f64::NAN));
        assert!(bad(|w| w.buckets = 0));
        assert!(bad(|w| w.buckets = HISTOGRAM_BUCKETS_MAX + 1));
        assert!(bad(|w| w.counts.push((0, u64::MAX))), "overflowing counts");
        // What does not add up beyond the counts: a maximum below values recorded (quantiles
        // are capped by it, so a p99 would read 0), negative or infinite sums and maxima.
        assert!(bad(|w| w.max = 0.0), "a maximum below the highest bucket holding a value");
        assert!(bad(|w| w.max = -1.0));
        assert!(bad(|w| w.sum = -5.0));
        assert!(bad(|w| w.sum = f64::INFINITY));
        assert!(bad(|w| w.max = f64::INFINITY));
        // What `since` and `merge` produce still travels: an interval's counts with the whole
        // run's maximum, and no values at all with a maximum kept.
        let mut later = h.clone();
        later.record(3.0);
        for ok in [later.since(&h), h.since(&h), Histogram::new(0.5, 1_000)] {
            let back = Histogram::try_from(HistogramWire::from(ok.clone()));
            assert_eq!(back.as_ref().ok(), Some(&ok), "{back:?}");
        }
    }
}
