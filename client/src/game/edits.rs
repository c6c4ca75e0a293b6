//! Edits of world objects from the client's side (`[game-16]`): numbering, and the answers.

use super::*;
use pwn_proto::{EditObject, EditOp, EditOutcome};

/// Edits whose answer is awaited and timed; older ones are forgotten (still answered, not timed).
pub const EDITS_PENDING_MAX: usize = 256;

impl GameClient {
    /// Makes the request for `op`, numbered after every earlier one and no lower than
    /// `wall_clock_us` (microseconds since the Unix epoch), so numbers keep increasing across
    /// sessions (`pwn_proto::objects` `[edit-1]`). Send it on the reliable stream.
    pub fn edit(&mut self, op: EditOp, wall_clock_us: u64) -> EditObject {
        let request = wall_clock_us.max(self.last_edit_request.saturating_add(1));
        self.last_edit_request = request;
        self.counters.edits_sent += 1;
        if self.edits_pending.len() >= EDITS_PENDING_MAX {
            self.edits_pending.pop_first();
        }
        self.edits_pending.insert(request, self.now_s);
        EditObject { request, op }
    }

    /// Edits sent and not answered yet.
    pub fn edits_pending(&self) -> usize {
        self.edits_pending.len()
    }

    pub(super) fn edit_done(&mut self, request: u64, outcome: EditOutcome) {
        let sent = self.edits_pending.remove(&request);
        if outcome != EditOutcome::Committed {
            self.counters.edits_refused += 1;
            return;
        }
        self.counters.edits_committed += 1;
        if let Some(at) = sent {
            let ticks = (self.now_s - at) * f64::from(self.cfg.tick_hz);
            self.counters.edit_done_ticks.record(ticks.max(0.0));
        }
    }
}
