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
//! - `[input-5]` at most `BACKLOG_MAX` inputs wait: when a client runs ahead (a burst after a
//!   stall) the oldest waiting inputs are skipped so that input latency stays bounded
//!   (counted), never an unbounded queue;
//! - `[input-6]` the buffer is a jitter queue paced by the client: releases start once
//!   `PLAYOUT_CUSHION_TICKS` inputs wait; after that one input leaves per tick and one arrives
//!   per client tick, so the depth only changes when the client sends a little faster or
//!   slower, or when an input misses its tick (the queue is then one deeper for good). The
//!   client knows its link's jitter, so it sets the depth: its first inputs arrive as a burst
//!   as deep as it needs.
//!   Every snapshot reports the depth ([`InputBuffer::backlog`]) and the client steers it
//!   (pwn-client `[game-7]`): a clean link drains to nearly nothing (low input latency), a
//!   jittery one keeps a margin. Changing the depth on the server instead would skip or
//!   stall an input, which the client's prediction cannot know about: a correction every time.

use pwn_proto::WireInput;
use pwn_sim::input::INPUT_SEQ_JUMP_MAX;
use pwn_sim::{InputSeq, PlayerInput};
use std::collections::BTreeMap;

/// Inputs allowed to wait; past this the oldest are skipped. Six ticks is 200 ms at 30 Hz:
/// room for the deepest queue a client paces for (three) plus a burst after jitter.
pub const BACKLOG_MAX: usize = 6;
/// Inputs that must be waiting before the first is released (the client's first burst sets
/// the real depth).
pub const PLAYOUT_CUSHION_TICKS: usize = 1;

/// What happened to inputs, for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InputCounters {
    /// Inputs accepted into the buffer.
    pub accepted: u64,
    /// Inputs dropped as duplicates of one waiting.
    pub duplicates: u64,
    /// Inputs dropped for arriving after a later input was released.
    pub late: u64,
    /// Inputs dropped for jumping too far ahead.
    pub too_far_ahead: u64,
    /// Inputs skipped to keep the backlog bounded.
    pub skipped: u64,
    /// Ticks, after the first release, with no input to release.
    pub missing: u64,
    /// Inputs released to the simulation.
    pub released: u64,
}

/// One player's input buffer.
#[derive(Clone, Debug, Default)]
pub struct InputBuffer {
    /// Waiting inputs and when each first arrived (the caller's clock, opaque here).
    waiting: BTreeMap<u32, (PlayerInput, u64)>,
    last_released: Option<u32>,
    /// When the input released at the last tick first arrived, if one was released.
    released_arrival: Option<u64>,
    counters: InputCounters,
}

impl InputBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// What another zone needs to continue this buffer (a handoff): the last sequence
    /// released and the inputs waiting, oldest first.
    pub fn handover(&self) -> (Option<u32>, Vec<PlayerInput>) {
        (self.last_released, self.waiting.values().map(|(i, _)| *i).collect())
    }

    /// A buffer continuing one handed over: releases go on from the next sequence, so the
    /// player's inputs are neither repeated nor skipped by the change of zone (inputs beyond
    /// `BACKLOG_MAX` are dropped as a full backlog would).
    pub fn resumed(last_released: Option<u32>, waiting: &[PlayerInput], arrived: u64) -> Self {
        let mut b = Self { last_released, ..Self::default() };
        for i in waiting.iter().filter(|i| last_released.is_none_or(|l| i.seq.0 > l)).take(BACKLOG_MAX) {
            b.waiting.insert(i.seq.0, (*i, arrived));
        }
        b
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

    /// When the input released at the last [`InputBuffer::next_for_tick`] first arrived, on
    /// the clock [`InputBuffer::receive_at`] was given (none if the tick got no input).
    pub fn released_arrival(&self) -> Option<u64> {
        self.released_arrival
    }

    /// Takes in one datagram's inputs (any order, possibly repeated).
    pub fn receive(&mut self, inputs: &[WireInput]) {
        self.receive_at(inputs, 0);
    }

    /// Takes in one datagram's inputs that arrived at `arrived` (any clock the caller keeps;
    /// the first arrival of each input is kept).
    pub fn receive_at(&mut self, inputs: &[WireInput], arrived: u64) {
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
            self.waiting.insert(seq, (w.to_input(), arrived));
            self.counters.accepted += 1;
        }
        while self.waiting.len() > BACKLOG_MAX {
            let Some((oldest, _)) = self.waiting.pop_first() else { break };
            self.last_released = Some(oldest);
            self.counters.skipped += 1;
        }
    }

    /// The input for this tick, if any (see `[input-4]` and `[input-6]`).
    pub fn next_for_tick(&mut self) -> Option<PlayerInput> {
        if self.last_released.is_none() && self.waiting.len() < PLAYOUT_CUSHION_TICKS {
            return None;
        }
        self.released_arrival = None;
        match self.waiting.pop_first() {
            Some((seq, (input, arrived))) => {
                self.last_released = Some(seq);
                self.released_arrival = Some(arrived);
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
        assert!(b.next_for_tick().is_none(), "nothing to release yet");
        b.receive(&[w(2), w(1)]);
        b.receive(&[w(3), w(2), w(1)]);
        assert_eq!(b.counters().duplicates, 2);
        assert_eq!(b.next_for_tick().unwrap().seq, InputSeq(1));
        assert_eq!(b.next_for_tick().unwrap().seq, InputSeq(2));
        // A reordered old datagram arrives after 1 and 2 were applied.
        b.receive(&[w(2), w(1)]);
        assert_eq!(b.counters().late, 2);
        assert_eq!(b.next_for_tick().unwrap().seq, InputSeq(3));
        assert_eq!(b.counters().missing, 0, "the wait before the first release is not a miss");
        assert!(b.next_for_tick().is_none());
        assert_eq!(b.counters().missing, 1);
        // A lost datagram is recovered by the redundancy of the next one.
        b.receive(&[w(5), w(4)]);
        assert_eq!(b.next_for_tick().unwrap().seq, InputSeq(4));
        assert_eq!(b.newest_seq(), Some(InputSeq(5)));
    }

    #[test]
    fn released_inputs_report_their_first_arrival() {
        let mut b = InputBuffer::new();
        b.receive_at(&[w(1)], 100);
        // The redundant copy that comes later does not move the arrival.
        b.receive_at(&[w(2), w(1)], 130);
        assert_eq!(b.next_for_tick().unwrap().seq, InputSeq(1));
        assert_eq!(b.released_arrival(), Some(100));
        assert_eq!(b.next_for_tick().unwrap().seq, InputSeq(2));
        assert_eq!(b.released_arrival(), Some(130));
        assert!(b.next_for_tick().is_none());
        assert_eq!(b.released_arrival(), None, "a tick without input acknowledges nothing new");
    }

    #[test]
    fn input_3_absurd_jumps_are_dropped() {
        let mut b = InputBuffer::new();
        b.receive(&[w(10), w(9)]);
        while b.next_for_tick().is_none() {}
        b.receive(&[w(10 + INPUT_SEQ_JUMP_MAX + 1), w(u32::MAX)]);
        assert_eq!(b.counters().too_far_ahead, 2);
        b.receive(&[w(11)]);
        assert_eq!(b.next_for_tick().unwrap().seq, InputSeq(10));
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
        assert_eq!(b.next_for_tick().unwrap().seq.0, 21 - BACKLOG_MAX as u32);
        // Skipped inputs are behind us now: they count as late if they turn up.
        b.receive(&[w(3)]);
        assert_eq!(b.counters().late, 1);
    }

    #[test]
    fn input_6_the_cushion_absorbs_loss_and_jitter_and_the_client_paces_the_depth() {
        let mut b = InputBuffer::new();
        let mut released = Vec::new();
        // The client's first burst: two inputs deep.
        b.receive(&[w(0)]);
        // One input per tick, except that 10's datagram is lost (10 comes with 11) and 20 is a
        // tick late: no tick after the first release goes without input.
        let mut late = None;
        for seq in 1..=40u32 {
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
            if let Some(i) = b.next_for_tick() {
                released.push(i.seq.0);
            }
        }
        assert_eq!(released, (0..released.len() as u32).collect::<Vec<_>>());
        assert_eq!(b.counters().missing, 0);
        assert_eq!(b.backlog(), 1);
        // The client skips one tick's send (it slowed its clock): the depth drops by one and
        // still no tick goes without input.
        b.next_for_tick();
        assert_eq!(b.backlog(), 0);
        b.receive(&[w(41)]);
        assert_eq!(b.next_for_tick().unwrap().seq, InputSeq(41));
        assert_eq!(b.counters().missing, 0);
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
