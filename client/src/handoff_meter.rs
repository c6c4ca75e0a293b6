//! How long a crossing player went without progress (`[game-13]`): the ticks between the last
//! snapshot of the old zone and the first snapshot of the new zone that acknowledges a newer
//! input, less one (0: the new zone's first tick already applied a fresh input).
//!
//! `AuthorityMoved` comes on the reliable stream and snapshots come as datagrams, so the new
//! zone's first snapshots can arrive before the event that says they are the new zone's. The
//! meter therefore keeps the last few snapshots' ticks and acknowledgements and measures from
//! them once it knows the first tick of the new zone, whichever came first.

use std::collections::VecDeque;

/// Snapshots remembered; a handoff not resolved within them is measured against the last.
pub const SNAPSHOTS_REMEMBERED: usize = 64;

/// The meter.
#[derive(Clone, Debug, Default)]
pub struct HandoffMeter {
    /// (tick, input acknowledged) of the last snapshots, in arrival order.
    recent: VecDeque<(u64, u32)>,
    /// The first tick of the new zone, while its handoff is being measured.
    pending: Option<u64>,
}

impl HandoffMeter {
    /// A snapshot of `tick` acknowledging `input_ack` arrived. Returns a measured stall, if this
    /// resolves one.
    pub fn snapshot(&mut self, tick: u64, input_ack: u32) -> Option<u32> {
        self.recent.push_back((tick, input_ack));
        if self.recent.len() > SNAPSHOTS_REMEMBERED {
            self.recent.pop_front();
        }
        self.resolve()
    }

    /// The new zone simulates the player from `first` on. Returns a measured stall, if its
    /// snapshots already tell.
    pub fn authority_moved(&mut self, first: u64) -> Option<u32> {
        self.pending = Some(first);
        self.resolve()
    }

    fn resolve(&mut self) -> Option<u32> {
        let first = self.pending?;
        let before = self.recent.iter().filter(|(t, _)| *t < first);
        let (last_before, ack_before) = before
            .fold((None, 0u32), |(t, a), (tick, ack)| (Some(t.map_or(*tick, |t: u64| t.max(*tick))), a.max(*ack)));
        // Without a snapshot of the old zone there is nothing to measure from.
        let Some(last_before) = last_before else {
            if self.recent.len() >= SNAPSHOTS_REMEMBERED {
                self.pending = None;
            }
            return None;
        };
        let progress = self.recent.iter().filter(|(t, ack)| *t >= first && *ack > ack_before).map(|(t, _)| *t).min()?;
        self.pending = None;
        Some(progress.saturating_sub(last_before).saturating_sub(1).min(u64::from(u32::MAX)) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn game_13_a_handoff_with_no_tick_lost_is_zero_whatever_came_first() {
        // The event first, then the new zone's first snapshot with a fresh input.
        let mut m = HandoffMeter::default();
        assert_eq!(m.snapshot(130, 40), None);
        assert_eq!(m.authority_moved(131), None);
        assert_eq!(m.snapshot(131, 41), Some(0));
        // The snapshot first (datagrams overtake the stream), then the event.
        let mut m = HandoffMeter::default();
        m.snapshot(130, 40);
        assert_eq!(m.snapshot(131, 41), None);
        assert_eq!(m.authority_moved(131), Some(0));
    }

    #[test]
    fn game_13_ticks_without_a_fresh_input_are_counted() {
        let mut m = HandoffMeter::default();
        m.snapshot(130, 40);
        m.authority_moved(131);
        // The new zone's first two ticks repeated the last input; a late old-zone snapshot
        // arrives in between and does not end the measurement.
        assert_eq!(m.snapshot(131, 40), None);
        assert_eq!(m.snapshot(129, 39), None);
        assert_eq!(m.snapshot(132, 40), None);
        assert_eq!(m.snapshot(133, 41), Some(2));
        // Measured once.
        assert_eq!(m.snapshot(134, 42), None);
        // A handoff whose old zone sent nothing the client kept is not measured.
        let mut m = HandoffMeter::default();
        assert_eq!(m.authority_moved(200), None);
        assert_eq!(m.snapshot(200, 5), None);
    }
}
