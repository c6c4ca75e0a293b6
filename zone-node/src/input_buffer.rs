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
//! - `[input-4]` each tick releases the lowest waiting input; with none waiting the tick gets
//!   none and the simulation repeats the player's last movement (counted as missing);
//! - `[input-5]` at most `BACKLOG_MAX` inputs wait: when a client runs ahead (clock drift, a
//!   burst after a stall) the oldest waiting inputs are skipped so that input latency stays
//!   bounded (counted), never an unbounded queue.

use pwn_proto::WireInput;
use pwn_sim::input::INPUT_SEQ_JUMP_MAX;
use pwn_sim::{InputSeq, PlayerInput};
use std::collections::BTreeMap;

/// Inputs allowed to wait; past this the oldest are skipped. Four ticks is 133 ms at 30 Hz.
pub const BACKLOG_MAX: usize = 4;

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
            self.waiting.insert(seq, w.to_input());
            self.counters.accepted += 1;
        }
        while self.waiting.len() > BACKLOG_MAX {
            let (oldest, _) = self.waiting.pop_first().expect("non-empty: len > BACKLOG_MAX");
            self.last_released = Some(oldest);
            self.counters.skipped += 1;
        }
    }

    /// The input for this tick, if any (see `[input-4]`).
    pub fn next_for_tick(&mut self) -> Option<PlayerInput> {
        match self.waiting.pop_first() {
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
        assert_eq!(b.next_for_tick().unwrap().seq, InputSeq(1));
        assert_eq!(b.next_for_tick().unwrap().seq, InputSeq(2));
        // A reordered old datagram arrives after 1 and 2 were applied.
        b.receive(&[w(2), w(1)]);
        assert_eq!(b.counters().late, 2);
        assert_eq!(b.next_for_tick().unwrap().seq, InputSeq(3));
        assert!(b.next_for_tick().is_none());
        assert_eq!(b.counters().missing, 1);
        // A lost datagram is recovered by the redundancy of the next one.
        b.receive(&[w(6), w(5), w(4)]);
        assert_eq!(b.next_for_tick().unwrap().seq, InputSeq(4));
        assert_eq!(b.newest_seq(), Some(InputSeq(6)));
    }

    #[test]
    fn input_3_absurd_jumps_are_dropped() {
        let mut b = InputBuffer::new();
        b.receive(&[w(10)]);
        b.next_for_tick();
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
        assert_eq!(b.next_for_tick().unwrap().seq, InputSeq(17));
        // Skipped inputs are behind us now: they count as late if they turn up.
        b.receive(&[w(3)]);
        assert_eq!(b.counters().late, 1);
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
