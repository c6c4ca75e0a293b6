//! The leases a zone node holds, by its own clock: a lease the world server renewed for
//! `valid_for_ms` is held until the node's send time of the heartbeat that renewed it plus
//! `valid_for_ms`. The node's send time is before the world server's receipt, so the node's
//! deadline always falls before the world server's expiry, and the world server waits a margin
//! more before granting the cell again (`crate::core` `[world-2]`): a node that cannot renew
//! stops serving before anyone else starts (`[lease-1]`).
//!
//! Rules:
//! - `[lease-1]` a node serves a cell only while `now < valid_until` on its own clock;
//! - `[lease-2]` an answer carries every lease the node holds: a cell missing from it, or held at
//!   another epoch, is no longer held at the old epoch (a new epoch means a new grant: the node
//!   loads the cell again);
//! - `[lease-3]` answers are applied only if newer than the last one applied (by send time), so
//!   a late answer to an older heartbeat never extends a lease.

use crate::core::{Epoch, HeldLease};
use pwn_store::keys::CellKey;
use std::collections::BTreeMap;

/// A lease as a node holds it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// Its epoch.
    pub epoch: Epoch,
    /// Serving stops at this time on the node's clock (milliseconds).
    pub valid_until_ms: u64,
}

/// What changed when an answer was applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseChanges {
    /// Cells newly held (or held at a new epoch): load them from the store.
    pub gained: Vec<(CellKey, Epoch)>,
    /// Cells no longer held (at the epoch held before): stop serving them.
    pub lost: Vec<(CellKey, Epoch)>,
}

/// The leases of one node.
#[derive(Clone, Debug, Default)]
pub struct HeldLeases {
    held: BTreeMap<CellKey, Held>,
    last_answer_sent_ms: Option<u64>,
}

impl HeldLeases {
    /// Applies the answer to a heartbeat the node sent at `sent_ms` (`[lease-2]`, `[lease-3]`).
    pub fn apply(&mut self, sent_ms: u64, answer: &[HeldLease]) -> LeaseChanges {
        let mut changes = LeaseChanges::default();
        if self.last_answer_sent_ms.is_some_and(|t| sent_ms < t) {
            return changes;
        }
        self.last_answer_sent_ms = Some(sent_ms);
        let mut next = BTreeMap::new();
        for l in answer {
            next.insert(l.cell, Held { epoch: l.epoch, valid_until_ms: sent_ms.saturating_add(l.valid_for_ms) });
            if self.held.get(&l.cell).is_none_or(|h| h.epoch != l.epoch) {
                changes.gained.push((l.cell, l.epoch));
            }
        }
        for (cell, h) in &self.held {
            if next.get(cell).is_none_or(|n| n.epoch != h.epoch) {
                changes.lost.push((*cell, h.epoch));
            }
        }
        self.held = next;
        changes
    }

    /// Drops the leases that lapsed by `now_ms` and returns them (`[lease-1]`).
    pub fn expire(&mut self, now_ms: u64) -> Vec<(CellKey, Epoch)> {
        let lapsed: Vec<(CellKey, Epoch)> =
            self.held.iter().filter(|(_, h)| now_ms >= h.valid_until_ms).map(|(c, h)| (*c, h.epoch)).collect();
        for (c, _) in &lapsed {
            self.held.remove(c);
        }
        lapsed
    }

    /// The epoch `cell` is served at now, if it is (`[lease-1]`).
    pub fn serving(&self, cell: CellKey, now_ms: u64) -> Option<Epoch> {
        self.held.get(&cell).filter(|h| now_ms < h.valid_until_ms).map(|h| h.epoch)
    }

    /// Every cell held, with its lease.
    pub fn cells(&self) -> impl Iterator<Item = (CellKey, Held)> + '_ {
        self.held.iter().map(|(c, h)| (*c, *h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: CellKey = CellKey { level: 1, path: 0 };
    const B: CellKey = CellKey { level: 1, path: 1 };

    fn lease(cell: CellKey, epoch: u64) -> HeldLease {
        HeldLease { cell, epoch: Epoch(epoch), valid_for_ms: 3_000 }
    }

    #[test]
    fn a_node_stops_serving_at_its_own_deadline_without_an_answer() {
        let mut h = HeldLeases::default();
        let c = h.apply(1_000, &[lease(A, 1), lease(B, 1)]);
        assert_eq!(c.gained.len(), 2);
        assert_eq!(h.serving(A, 3_999), Some(Epoch(1)));
        assert_eq!(h.serving(A, 4_000), None);
        assert_eq!(h.expire(4_000).len(), 2);
    }

    #[test]
    fn a_new_epoch_is_a_loss_and_a_gain_and_late_answers_do_not_extend() {
        let mut h = HeldLeases::default();
        h.apply(1_000, &[lease(A, 1), lease(B, 1)]);
        let c = h.apply(2_000, &[lease(A, 2)]);
        assert_eq!(c.gained, vec![(A, Epoch(2))]);
        assert_eq!(c.lost, vec![(A, Epoch(1)), (B, Epoch(1))]);
        // The answer to a heartbeat sent before the last applied one changes nothing.
        assert_eq!(h.apply(1_500, &[lease(A, 2), lease(B, 1)]), LeaseChanges::default());
        assert_eq!(h.serving(B, 2_001), None);
        assert_eq!(h.serving(A, 4_999), Some(Epoch(2)));
    }
}
