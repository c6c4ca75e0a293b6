//! Per-client snapshots. Each tick the zone offers every client the entities in its interest
//! radius with a priority; the builder sends what changed since the client's last acknowledged
//! view, most important first, until the byte budget is spent. Rules:
//! - `[snap-1]` nothing is sent for an entity the client already has in its acknowledged view
//!   with the same state (entities at rest cost nothing);
//! - `[snap-2]` the packed updates of one snapshot never exceed the byte budget;
//! - `[snap-3]` an entity left out for budget keeps gaining priority each tick it waits, so
//!   every entity in view is eventually sent (no starvation);
//! - `[snap-4]` an entity that leaves the interest radius is listed as removed (at most
//!   `REMOVED_PER_SNAPSHOT_MAX` per snapshot, so a snapshot always fits in a datagram; the rest
//!   stay in the view and are removed in the following snapshots);
//! - `[snap-5]` the view recorded for a tick is exactly what the client builds by applying that
//!   snapshot to its baseline, so later deltas are against what the client really holds;
//! - `[snap-6]` when acknowledgements have been lost for longer than `BASELINE_AGE_MAX` ticks the
//!   builder falls back to a full snapshot, because the client may no longer hold the baseline.

use pwn_proto::EntityUpdate;
use pwn_proto::Snapshot;
use pwn_proto::delta::{EntityState, Motion, View, pack_one, update_between};
use std::collections::{HashMap, VecDeque};

/// Removals listed in one snapshot (8 bytes each, inside the datagram limit with a full budget).
pub const REMOVED_PER_SNAPSHOT_MAX: usize = 8;

/// Views remembered per client while waiting for acknowledgements (two seconds at 30 Hz).
pub const SENT_VIEWS_MAX: usize = 64;
/// A baseline older than this many ticks may already be gone from the client's history
/// (`pwn_proto::delta::RECEIVED_VIEWS_MAX`), so the builder sends a full snapshot instead.
pub const BASELINE_AGE_MAX: u64 = pwn_proto::delta::RECEIVED_VIEWS_MAX as u64 - 16;

/// An entity offered for this tick's snapshot.
#[derive(Copy, Clone, Debug)]
pub struct Candidate {
    /// Its quantized state.
    pub state: EntityState,
    /// Importance: larger goes first (the zone derives it from distance and speed).
    pub priority: f32,
}

/// One client's snapshot state on the server.
#[derive(Debug)]
pub struct ClientSnapshots {
    sent: VecDeque<(u64, View)>,
    acked: Option<(u64, View)>,
    /// Ticks each entity in view has waited for an update it needs.
    waiting: HashMap<u64, u32>,
    /// The simulation's tick rate, for extrapolated positions (`[delta-6]`).
    tick_hz: u32,
    /// Reused for measuring each update's packed size.
    scratch: Vec<u8>,
}

impl ClientSnapshots {
    /// A client that has received nothing yet, of a simulation ticking at `tick_hz`.
    pub fn new(tick_hz: u32) -> Self {
        Self { sent: VecDeque::new(), acked: None, waiting: HashMap::new(), tick_hz, scratch: Vec::with_capacity(64) }
    }

    /// The tick of the newest acknowledged snapshot, if any.
    pub fn acked_tick(&self) -> Option<u64> {
        self.acked.as_ref().map(|(t, _)| *t)
    }

    /// Records an acknowledgement (late or unknown ticks are ignored).
    pub fn ack(&mut self, tick: u64) {
        if self.acked_tick().is_some_and(|t| tick <= t) {
            return;
        }
        while let Some((t, view)) = self.sent.pop_front() {
            if t == tick {
                self.acked = Some((t, view));
                return;
            }
            if t > tick {
                self.sent.push_front((t, view));
                return;
            }
        }
    }

    /// Builds the snapshot for `tick` from this tick's candidates (those in the interest
    /// radius), spending at most `budget_bytes` on packed updates. Runs for every client every
    /// tick, so it allocates little: one pass over the candidates sorted by id, costs measured
    /// in a reused buffer.
    pub fn build(&mut self, tick: u64, input_ack: u32, candidates: &[Candidate], budget_bytes: usize) -> Snapshot {
        if self.acked_tick().is_some_and(|t| t + BASELINE_AGE_MAX < tick) {
            self.acked = None;
        }
        let empty = View::new();
        let (baseline_tick, baseline) = match &self.acked {
            Some((t, v)) => (*t, v),
            None => (0, &empty),
        };
        let motion = Motion::between(baseline_tick, tick, self.tick_hz);
        let mut by_id: Vec<&Candidate> = candidates.iter().collect();
        by_id.sort_unstable_by_key(|c| c.state.id);
        by_id.dedup_by_key(|c| c.state.id);
        let in_interest = |id: &u64| by_id.binary_search_by_key(id, |c| c.state.id).is_ok();
        let removed: Vec<u64> =
            baseline.keys().filter(|id| !in_interest(id)).take(REMOVED_PER_SNAPSHOT_MAX).copied().collect();

        // Those that need sending, most urgent first; waiting raises urgency ([snap-3]).
        let mut needed: Vec<(&Candidate, f32)> = by_id
            .iter()
            .filter(|c| baseline.get(&c.state.id) != Some(&c.state))
            .map(|c| {
                let waited = self.waiting.get(&c.state.id).copied().unwrap_or(0);
                (*c, c.priority * (1.0 + waited as f32))
            })
            .collect();
        needed.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.state.id.cmp(&b.0.state.id)));

        // Each update's cost with its id written in full: the real packing writes id gaps,
        // never longer, so the budget holds ([snap-2]).
        let mut spent = 0usize;
        let mut chosen: Vec<(EntityUpdate, EntityState)> = Vec::with_capacity(needed.len());
        for (c, _) in &needed {
            let base = baseline.get(&c.state.id);
            let Some(update) = update_between(base, &c.state) else { continue };
            self.scratch.clear();
            pack_one(&mut self.scratch, None, base, &update, motion);
            if spent + self.scratch.len() > budget_bytes {
                continue;
            }
            spent += self.scratch.len();
            chosen.push((update, c.state));
        }
        // Updates in ascending id order, as packing requires.
        chosen.sort_unstable_by_key(|(u, _)| u.id);
        let mut view: View = baseline.clone();
        for id in &removed {
            view.remove(id);
        }
        let mut packed = Vec::with_capacity(spent);
        let mut prev = None;
        for (update, state) in &chosen {
            pack_one(&mut packed, prev, baseline.get(&update.id), update, motion);
            prev = Some(update.id);
            view.insert(update.id, *state);
        }
        debug_assert!(packed.len() <= budget_bytes.max(spent));

        let waiting = std::mem::take(&mut self.waiting);
        for (c, _) in &needed {
            if chosen.binary_search_by_key(&c.state.id, |(u, _)| u.id).is_err() {
                self.waiting.insert(c.state.id, waiting.get(&c.state.id).copied().unwrap_or(0) + 1);
            }
        }
        self.sent.push_back((tick, view));
        while self.sent.len() > SENT_VIEWS_MAX {
            self.sent.pop_front();
        }
        Snapshot { tick, baseline_tick, input_ack, input_backlog: 0, updates: packed, removed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use pwn_proto::delta::ReceivedViews;
    use std::collections::BTreeMap;

    fn entity(id: u64, x: i32) -> Candidate {
        Candidate {
            state: EntityState { id, position: [x, 0, 0], health: 100, ..EntityState::default() },
            priority: 1.0,
        }
    }

    #[test]
    fn snap_1_entities_at_rest_cost_nothing_once_acknowledged() {
        let mut c = ClientSnapshots::new(30);
        let world: Vec<Candidate> = (1..=10).map(|i| entity(i, i as i32 * 100)).collect();
        let first = c.build(1, 0, &world, 10_000);
        assert!(!first.updates.is_empty());
        c.ack(1);
        let second = c.build(2, 0, &world, 10_000);
        assert!(second.updates.is_empty() && second.removed.is_empty(), "{second:?}");
        assert_eq!(second.baseline_tick, 1);
    }

    #[test]
    fn snap_2_3_budget_is_respected_and_nobody_starves() {
        let mut c = ClientSnapshots::new(30);
        let mut client = ReceivedViews::new(30);
        let mut last_seen: HashMap<u64, u64> = HashMap::new();
        for tick in 1..=60u64 {
            // 50 entities all moving every tick; the budget fits only a few.
            let world: Vec<Candidate> = (1..=50)
                .map(|i| Candidate { priority: 1.0 / i as f32, ..entity(i, (tick * 239) as i32 + i as i32) })
                .collect();
            let s = c.build(tick, 0, &world, 60);
            assert!(s.updates.len() <= 60);
            let view = client.apply(&s).unwrap().clone();
            for (id, state) in &view {
                if world.iter().any(|w| w.state == *state) {
                    last_seen.insert(*id, tick);
                }
            }
            c.ack(tick);
        }
        for id in 1..=50u64 {
            let seen = last_seen.get(&id).copied().unwrap_or(0);
            assert!(seen > 0, "entity {id} was never sent");
        }
    }

    #[test]
    fn snap_4_leaving_the_interest_radius_is_a_removal() {
        let mut c = ClientSnapshots::new(30);
        c.build(1, 0, &[entity(1, 0), entity(2, 5)], 1_000);
        c.ack(1);
        let s = c.build(2, 0, &[entity(1, 0)], 1_000);
        assert_eq!(s.removed, vec![2]);
    }

    #[test]
    fn snap_4_many_departures_are_spread_over_snapshots_that_fit_a_datagram() {
        let mut c = ClientSnapshots::new(30);
        let mut client = ReceivedViews::new(30);
        let crowd: Vec<Candidate> = (1..=40).map(|i| entity(i, i as i32)).collect();
        client.apply(&c.build(1, 0, &crowd, 1_000)).unwrap();
        c.ack(1);
        let mut tick = 2;
        while client.latest().is_some_and(|(_, v)| !v.is_empty()) {
            let s = c.build(tick, 0, &[], 1_000);
            assert!(s.removed.len() <= REMOVED_PER_SNAPSHOT_MAX);
            let bytes = pwn_proto::encode_datagram(&pwn_proto::Message::Snapshot(s.clone())).unwrap();
            assert!(bytes.len() <= pwn_proto::codec::DATAGRAM_SIZE_MAX);
            client.apply(&s).unwrap();
            c.ack(tick);
            tick += 1;
            assert!(tick < 20, "departures never finished");
        }
    }

    #[test]
    fn snap_6_long_lost_acks_fall_back_to_a_full_snapshot() {
        let mut c = ClientSnapshots::new(30);
        let world = [entity(1, 0)];
        c.build(1, 0, &world, 1_000);
        c.ack(1);
        let recent = c.build(2, 0, &world, 1_000);
        assert_eq!(recent.baseline_tick, 1);
        let late = c.build(2 + BASELINE_AGE_MAX, 0, &world, 1_000);
        assert_eq!(late.baseline_tick, 0);
        assert!(!late.updates.is_empty(), "a full snapshot resends what the client may have lost");
    }

    proptest! {
        #[test]
        fn snap_5_the_client_holds_what_the_server_recorded(
            ticks in proptest::collection::vec((proptest::collection::vec((1u64..30, -500i32..500, 0u16..3), 0..30), any::<bool>(), any::<bool>(), 0usize..200), 1..40)
        ) {
            let mut server = ClientSnapshots::new(30);
            let mut client = ReceivedViews::new(30);
            for (t, (entities, delivered, acked, budget)) in ticks.iter().enumerate() {
                let tick = t as u64 + 1;
                let mut world: BTreeMap<u64, Candidate> = BTreeMap::new();
                for (id, x, hp) in entities {
                    world.insert(*id, Candidate { state: EntityState { id: *id, position: [*x, 0, 0], health: *hp, ..EntityState::default() }, priority: 1.0 });
                }
                let candidates: Vec<Candidate> = world.values().copied().collect();
                let s = server.build(tick, 0, &candidates, *budget);
                prop_assert!(s.updates.len() <= *budget);
                // Datagrams may be lost; acks may be lost.
                if *delivered
                    && let Ok(view) = client.apply(&s)
                {
                    let recorded = server.sent.iter().find(|(t, _)| *t == tick).map(|(_, v)| v.clone()).unwrap();
                    prop_assert_eq!(view, &recorded);
                    if *acked {
                        server.ack(tick);
                    }
                }
            }
        }
    }
}
