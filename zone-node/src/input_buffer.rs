//! One player's inputs between the network and the tick.
//!
//! Clients send each input several times (every `Inputs` datagram repeats the newest few), so
//! the server sees duplicates, reordering, late arrivals and gaps. The buffer keeps the inputs
//! not yet applied, in sequence order, and releases at most one per tick. Rules:
//! - `[input-1]` an input at or below the last released sequence is late (or a duplicate of one
//!   applied) and is dropped, counted;
//! - `[input-2]` an input already waiting is a duplicate and is dropped, counted;
//! - `[input-3]` an input further ahead than `pwn_sim::input::INPUT_SEQ_JUMP_MAX` is dropped,
//!   counted: accepting it would make every honest input after it look late;
//! - `[input-4]` each tick releases the lowest waiting input that is due; with none due the tick
//!   gets none and the simulation repeats the player's last movement (counted as missing);
//! - `[input-6]` inputs play out at a fixed offset: input `n` is due at tick `n + offset`. The
//!   first input sets the offset with `PLAYOUT_CUSHION_TICKS` of slack, enough for a lost
//!   datagram (its inputs come one datagram later) plus jitter, so that no tick goes without
//!   input: a tick without input makes the server's movement differ from the client's
//!   prediction. An input that misses its tick anyway raises the offset by one (bounded); after
//!   `PLAYOUT_SHRINK_TICKS` ticks in which the buffer always held more than it needed, the offset
//!   shrinks by one, so a clean link gets back to low latency;
//! - `[input-5]` at most `BACKLOG_MAX` inputs wait: when a client runs ahead (clock drift, a
//!   burst after a stall) the oldest waiting inputs are skipped so that input latency stays
//!   bounded (counted), never an unbounded queue.

use pwn_proto::WireInput;
use pwn_sim::input::INPUT_SEQ_JUMP_MAX;
use pwn_sim::{InputSeq, PlayerInput};
use std::collections::BTreeMap;

/// Inputs allowed to wait; past this the oldest are skipped. Four ticks is 133 ms at 30 Hz.
pub const BACKLOG_MAX: usize = 4;
/// Ticks of slack added to the first input's arrival to set the playout offset.
pub const PLAYOUT_CUSHION_TICKS: i64 = 2;
/// Ticks of surplus (always more than `PLAYOUT_CUSHION_TICKS` inputs waiting) before the offset
/// shrinks by one.
pub const PLAYOUT_SHRINK_TICKS: u32 = 300;

/// What happened to inputs, for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InputCounters {
    /// Inputs accepted into the buffer.
    pub accepted: u64,
    /// Inputs dropped as duplicates of one waiting.
    pub duplicates: u64,
    /// Inputs dropped for arriving after their tick (or after a later input was released).
    pub late: u64,
    /// Inputs dropped for jumping too far ahead.
    pub too_far_ahead: u64,
    /// Inputs skipped to keep the backlog bounded.
    pub skipped: u64,
    /// Ticks with no input to release.
    pub missing: u64,
    /// Inputs released to the simulation.
    pub released: u64,
}

/// One player's input buffer.
#[derive(Clone, Debug, Default)]
pub struct InputBuffer {
    waiting: BTreeMap<u32, PlayerInput>,
    /// Ticks run so far (this buffer's own clock).
    tick: i64,
    /// Input `n` is due at tick `n + playout_offset`; set by the first input.
    playout_offset: Option<i64>,
    /// Consecutive ticks with more inputs waiting than the cushion needs.
    surplus_ticks: u32,
    last_released: Option<u32>,
    counters: InputCounters,
}

impl InputBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The counters so far.
    pub fn counters(&self) -> &InputCounters {
        &self.counters
    }

    /// Inputs waiting for their tick.
    pub fn backlog(&self) -> usize {
        self.waiting.len()
    }

    /// The newest sequence number received or released, for acknowledgements.
    pub fn newest_seq(&self) -> Option<InputSeq> {
        self.waiting.keys().next_back().copied().or(self.last_released).map(InputSeq)
    }

    /// The sequence number of the last input released to the simulation (what the server
    /// acknowledges in snapshots).
    pub fn newest_released(&self) -> Option<InputSeq> {
        self.last_released.map(InputSeq)
    }

    /// Takes in one datagram's inputs (any order, possibly repeated).
    pub fn receive(&mut self, inputs: &[WireInput]) {
        for w in inputs {
            let seq = w.seq;
            match self.last_released {
                Some(last) if seq <= last => {
                    self.counters.late += 1;
                    continue;
                }
                Some(last) if seq - last > INPUT_SEQ_JUMP_MAX => {
                    self.counters.too_far_ahead += 1;
                    continue;
                }
                _ => {}
            }
            // Before the first release there is no anchor: bound the jump against what waits.
            if let Some(lowest) = self.waiting.keys().next()
                && seq > *lowest
                && seq - lowest > INPUT_SEQ_JUMP_MAX
            {
                self.counters.too_far_ahead += 1;
                continue;
            }
            if self.waiting.contains_key(&seq) {
                self.counters.duplicates += 1;
                continue;
            }
            let next_tick = self.tick + 1;
            let offset = *self.playout_offset.get_or_insert(next_tick - i64::from(seq) + PLAYOUT_CUSHION_TICKS);
            if i64::from(seq) + offset < next_tick && self.waiting.is_empty() {
                let raised = (offset + 1).min(next_tick - i64::from(seq) + BACKLOG_MAX as i64);
                self.playout_offset = Some(raised);
            }
            self.waiting.insert(seq, w.to_input());
            self.counters.accepted += 1;
        }
        while self.waiting.len() > BACKLOG_MAX {
            let Some((oldest, _)) = self.waiting.pop_first() else { break };
            self.last_released = Some(oldest);
            self.counters.skipped += 1;
            if let Some(o) = self.playout_offset.as_mut() {
                *o -= 1;
            }
        }
    }

    /// The input for this tick, if any (see `[input-4]`).
    pub fn next_for_tick(&mut self) -> Option<PlayerInput> {
        self.tick += 1;
        if self.waiting.len() as i64 > PLAYOUT_CUSHION_TICKS {
            self.surplus_ticks += 1;
            if self.surplus_ticks >= PLAYOUT_SHRINK_TICKS
                && let Some(o) = self.playout_offset.as_mut()
            {
                *o -= 1;
                self.surplus_ticks = 0;
            }
        } else {
            self.surplus_ticks = 0;
        }
        let due = match (self.waiting.first_key_value(), self.playout_offset) {
            (Some((seq, _)), Some(offset)) => i64::from(*seq) + offset <= self.tick,
            _ => false,
        };
        match due.then(|| self.waiting.pop_first()).flatten() {
            Some((seq, input)) => {
                self.last_released = Some(seq);
                self.counters.released += 1;
                Some(input)
            }
            None => {
                self.counters.missing += 1;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn w(seq: u32) -> WireInput {
        WireInput { seq, move_z: 127, ..WireInput::default() }
    }

    #[test]
    fn input_1_to_4_redundant_reordered_and_late_inputs() {
        let mut b = InputBuffer::new();
        // Datagrams carry the newest inputs first, repeated.
        b.receive(&[w(2), w(1)]);
        b.receive(&[w(3), w(2), w(1)]);
        assert_eq!(b.counters().duplicates, 2);
        // Input 1 is due after the playout cushion ([input-6]), counted from the newest input
        // of the first datagram (2, so 1 is already a tick late).
        for _ in 0..PLAYOUT_CUSHION_TICKS - 1 {
            assert!(b.next_for_tick().is_none());
        }
        assert_eq!(b.next_for_tick().unwrap().seq, InputSeq(1));
        assert_eq!(b.next_for_tick().unwrap().seq, InputSeq(2));
        // A reordered old datagram arrives after 1 and 2 were applied.
        b.receive(&[w(2), w(1)]);
        assert_eq!(b.counters().late, 2);
        assert_eq!(b.next_for_tick().unwrap().seq, InputSeq(3));
        assert_eq!(b.counters().missing, PLAYOUT_CUSHION_TICKS as u64 - 1);
        // A lost datagram is recovered by the redundancy of the next one, still in time.
        b.receive(&[w(5), w(4)]);
        assert_eq!(b.next_for_tick().unwrap().seq, InputSeq(4));
        assert_eq!(b.newest_seq(), Some(InputSeq(5)));
    }

    #[test]
    fn input_3_absurd_jumps_are_dropped() {
        let mut b = InputBuffer::new();
        b.receive(&[w(10)]);
        while b.next_for_tick().is_none() {}
        b.receive(&[w(10 + INPUT_SEQ_JUMP_MAX + 1), w(u32::MAX)]);
        assert_eq!(b.counters().too_far_ahead, 2);
        b.receive(&[w(11)]);
        assert_eq!(b.next_for_tick().unwrap().seq, InputSeq(11));
    }

    #[test]
    fn input_5_backlog_stays_bounded() {
        let mut b = InputBuffer::new();
        for s in 1..=20 {
            b.receive(&[w(s)]);
        }
        assert_eq!(b.backlog(), BACKLOG_MAX);
        assert_eq!(b.counters().skipped, 20 - BACKLOG_MAX as u64);
        let first = loop {
            if let Some(i) = b.next_for_tick() {
                break i;
            }
        };
        assert_eq!(first.seq, InputSeq(17));
        // Skipped inputs are behind us now: they count as late if they turn up.
        b.receive(&[w(3)]);
        assert_eq!(b.counters().late, 1);
    }

    #[test]
    fn input_6_the_playout_offset_absorbs_loss_and_jitter_then_shrinks_on_a_clean_link() {
        let mut b = InputBuffer::new();
        b.receive(&[w(1)]);
        let mut released = Vec::new();
        // One input per tick, except that 10's datagram is lost (10 comes with 11) and 20 is a
        // tick late: still no tick after the first release goes without input.
        let mut late = None;
        for seq in 2..=40u32 {
            if let Some(i) = b.next_for_tick() {
                released.push(i.seq.0);
            }
            match seq {
                10 => {}
                11 => b.receive(&[w(11), w(10)]),
                20 => late = Some(20),
                _ => {
                    b.receive(&[w(seq)]);
                    if let Some(l) = late.take() {
                        b.receive(&[w(l)]);
                    }
                }
            }
        }
        let first = released[0];
        assert_eq!(released, (first..first + released.len() as u32).collect::<Vec<_>>());
        assert_eq!(b.counters().missing, PLAYOUT_CUSHION_TICKS as u64, "only the cushion at the start");
        // A client sending two inputs per tick (its clock runs fast) fills the buffer; the
        // backlog bound and the shrinking offset keep the wait short.
        let mut seq = 41;
        for _ in 0..(2 * PLAYOUT_SHRINK_TICKS) {
            b.receive(&[w(seq + 1), w(seq)]);
            seq += 2;
            b.next_for_tick();
            assert!(b.backlog() <= BACKLOG_MAX);
        }
    }

    proptest! {
        #[test]
        fn releases_are_strictly_increasing_and_bounded(batches in proptest::collection::vec(proptest::collection::vec(0u32..600, 0..8), 0..80)) {
            let mut b = InputBuffer::new();
            let mut last: Option<u32> = None;
            for batch in &batches {
                let inputs: Vec<WireInput> = batch.iter().map(|s| w(*s)).collect();
                b.receive(&inputs);
                prop_assert!(b.backlog() <= BACKLOG_MAX);
                if let Some(i) = b.next_for_tick() {
                    prop_assert!(last.is_none_or(|l| i.seq.0 > l));
                    last = Some(i.seq.0);
                }
            }
            let c = b.counters();
            let received: u64 = batches.iter().map(|v| v.len() as u64).sum();
            prop_assert_eq!(c.accepted + c.duplicates + c.late + c.too_far_ahead, received);
        }
    }
}
