//! The simulation's only source of randomness: a seeded SplitMix64 stream whose state is part
//! of the simulation state (snapshotted and hashed), so runs replay bit for bit.

use crate::ids::splitmix64;

/// A small deterministic random number generator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimRng {
    state: u64,
}

impl SimRng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        splitmix64(self.state)
    }

    /// A number in `0..n` (`n > 0`); the modulo bias is irrelevant at the sizes we draw.
    pub fn below(&mut self, n: u32) -> u32 {
        debug_assert!(n > 0);
        (self.next_u64() % u64::from(n.max(1))) as u32
    }

    /// The raw state, for hashing.
    pub fn state(&self) -> u64 {
        self.state
    }
}
