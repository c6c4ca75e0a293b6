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

use crate::shared_bodies::{NOT_SHARED, SharedBodies, SharedView};
use pwn_proto::Snapshot;
use pwn_proto::delta::{EntityState, Motion, id_len, pack_body, put_id, update_between};
use std::collections::VecDeque;

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
    /// Its index in this tick's shared bodies (`crate::shared_bodies`), or `NOT_SHARED`.
    pub shared: u32,
}

impl Candidate {
    /// A candidate with no shared body.
    pub fn new(state: EntityState, priority: f32) -> Self {
        Self { state, priority, shared: NOT_SHARED }
    }
}

/// A view as the zone records it: states sorted by id (cheap to copy and to walk in step with
/// the candidates, which is what every tick does for every client).
pub type SortedView = Vec<EntityState>;

/// One client's snapshot state on the server.
#[derive(Debug)]
pub struct ClientSnapshots {
    sent: VecDeque<(u64, SortedView)>,
    acked: Option<(u64, SortedView)>,
    /// Ticks each entity in view has waited for an update it needs, sorted by id.
    waiting: Vec<(u64, u32)>,
    /// The simulation's tick rate, for extrapolated positions (`[delta-6]`).
    tick_hz: u32,
    /// Mean packed size of the updates chosen lately (with ids in full).
    update_bytes_mean: f32,
    /// Views no longer needed, kept for the next snapshots: a crowd's views are kilobytes per
    /// client per tick, and allocating them afresh made the kernel zero new pages every tick.
    spare: Vec<SortedView>,
}

/// Views kept for reuse per client.
const SPARE_VIEWS_MAX: usize = 4;

/// Work lists of a build: what needs sending (in id order), its urgency order, and the packed
/// bodies. Kept by each thread that builds snapshots, not by each client: they are rewritten
/// by every build, and one set per thread stays in its cache while a set per client would be
/// kilobytes more memory to fetch per client per tick.
#[derive(Debug, Default)]
pub struct BuildScratch {
    needed: Vec<Needed>,
    order: Vec<u64>,
    bodies: Vec<u8>,
}

/// A candidate whose state the client does not hold yet: indices into this tick's candidates
/// and the baseline (kept small, since a crowd makes hundreds of these per client per tick).
#[derive(Copy, Clone, Debug)]
struct Needed {
    candidate: u32,
    /// Index in the baseline, or `NO_BASE` for an entity the client does not hold.
    base: u32,
    waited: u32,
    /// Where its packed body sits in the body buffer (`len` 0: nothing to send).
    body_start: u32,
    body_len: u32,
    /// Its cost with its id in full (what the budget counts when not everything fits).
    cost: u32,
    chosen: bool,
}

const NO_BASE: u32 = u32::MAX;

impl ClientSnapshots {
    /// A client that has received nothing yet, of a simulation ticking at `tick_hz`.
    pub fn new(tick_hz: u32) -> Self {
        Self {
            sent: VecDeque::new(),
            acked: None,
            waiting: Vec::new(),
            tick_hz,
            update_bytes_mean: UPDATE_BYTES_TYPICAL as f32,
            spare: Vec::new(),
        }
    }

    /// Keeps a view no longer needed for a later snapshot.
    fn recycle(&mut self, view: SortedView) {
        if self.spare.len() < SPARE_VIEWS_MAX {
            self.spare.push(view);
        }
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
                if let Some((_, old)) = self.acked.replace((t, view)) {
                    self.recycle(old);
                }
                return;
            }
            if t > tick {
                self.sent.push_front((t, view));
                return;
            }
            self.recycle(view);
        }
    }

    /// Builds the snapshot for `tick` from this tick's candidates (those in the interest
    /// radius), spending at most `budget_bytes` on packed updates. Runs for every client every
    /// tick, so it walks sorted lists in step, keeps its work lists and views between calls,
    /// orders by urgency only when not everything fits, and then only partly (the most urgent
    /// chunk that can fit, then the rest); the candidates are sorted by id in place if they are
    /// not already.
    pub fn build(&mut self, tick: u64, input_ack: u32, candidates: &mut [Candidate], budget_bytes: usize) -> Snapshot {
        self.build_shared(tick, input_ack, candidates, budget_bytes, None, &mut BuildScratch::default())
    }

    /// [`ClientSnapshots::build`], copying the bodies packed once for this tick (`shared`)
    /// where the client holds the state they were packed against: the same bytes, packed once
    /// for every client instead of once per client.
    pub fn build_shared(
        &mut self,
        tick: u64,
        input_ack: u32,
        candidates: &mut [Candidate],
        budget_bytes: usize,
        shared: Option<&SharedBodies>,
        scratch: &mut BuildScratch,
    ) -> Snapshot {
        if self.acked_tick().is_some_and(|t| t + BASELINE_AGE_MAX < tick) {
            self.acked = None;
        }
        let (baseline_tick, baseline): (u64, &[EntityState]) = match &self.acked {
            Some((t, v)) => (*t, v),
            None => (0, &[]),
        };
        let motion = Motion::between(baseline_tick, tick, self.tick_hz);
        let shared = shared.map_or(SharedView::NONE, |s| s.view(tick, self.tick_hz, baseline_tick));
        if !candidates.is_sorted_by_key(|c| c.state.id) {
            candidates.sort_unstable_by_key(|c| c.state.id);
        }

        // One walk over baseline and candidates together: departures, and what needs sending.
        let mut removed = Vec::new();
        let BuildScratch { needed, order, bodies } = scratch;
        needed.clear();
        order.clear();
        let (mut b, mut w) = (0usize, 0usize);
        let mut last_id = None;
        for (ci, c) in candidates.iter().enumerate() {
            let id = c.state.id;
            if last_id == Some(id) {
                continue;
            }
            last_id = Some(id);
            while b < baseline.len() && baseline[b].id < id {
                if removed.len() < REMOVED_PER_SNAPSHOT_MAX {
                    removed.push(baseline[b].id);
                }
                b += 1;
            }
            let mut base = NO_BASE;
            if b < baseline.len() && baseline[b].id == id {
                if baseline[b] == c.state {
                    b += 1;
                    continue;
                }
                base = b as u32;
                b += 1;
            }
            while w < self.waiting.len() && self.waiting[w].0 < id {
                w += 1;
            }
            let waited = match self.waiting.get(w) {
                Some((wid, n)) if *wid == id => *n,
                _ => 0,
            };
            // Waiting raises urgency ([snap-3]).
            order.push(urgency_key(c.priority * (1.0 + waited as f32), needed.len() as u32));
            needed.push(Needed {
                candidate: ci as u32,
                base,
                waited,
                body_start: 0,
                body_len: 0,
                cost: 0,
                chosen: false,
            });
        }
        for rest in &baseline[b.min(baseline.len())..] {
            if removed.len() >= REMOVED_PER_SNAPSHOT_MAX {
                break;
            }
            removed.push(rest.id);
        }

        // Every body packed once, in id order. When not everything fits, each update's cost
        // counts its id in full: the real packing writes id gaps, never longer, so the budget
        // holds ([snap-2]).
        bodies.clear();
        let (mut total, mut prev_sent) = (0usize, None);
        for n in needed.iter_mut() {
            let Candidate { state, shared: index, .. } = &candidates[n.candidate as usize];
            let base = (n.base != NO_BASE).then(|| &baseline[n.base as usize]);
            let start = bodies.len();
            match base.and_then(|b| shared.body(*index, b, state)) {
                Some(body) => bodies.extend_from_slice(body),
                None => {
                    let Some(update) = update_between(base, state) else { continue };
                    pack_body(bodies, base, &update, motion);
                }
            }
            n.body_start = start as u32;
            n.body_len = (bodies.len() - start) as u32;
            n.cost = (id_len(state.id) + n.body_len as usize) as u32;
            // What the update takes if every update goes: its id as a gap from the previous.
            total += gap_len(prev_sent, state.id) + n.body_len as usize;
            prev_sent = Some(state.id);
        }
        let (mut spent, mut chosen) = (0usize, 0usize);
        if total <= budget_bytes {
            // Everything fits, ids written as gaps as they will be (a quiet view, or a crowd
            // within the budget): no ordering needed.
            for n in needed.iter_mut().filter(|n| n.body_len > 0) {
                n.chosen = true;
                chosen += 1;
            }
            spent = total;
        } else {
            // Most urgent first: the most urgent of what can fit (guessed from the last
            // snapshot's mean update size) are split off in linear time and ordered, then
            // tried in order; the rest, in no particular order, only if budget remains.
            let fit_guess = ((budget_bytes as f32 / self.update_bytes_mean.max(1.0)) * 1.2) as usize + 1;
            let head = fit_guess.min(order.len());
            if head < order.len() {
                order.select_nth_unstable(head);
            }
            order[..head].sort_unstable();
            for &key in order.iter() {
                let i = key as u32;
                if spent + UPDATE_BYTES_MIN > budget_bytes {
                    break;
                }
                let n = &mut needed[i as usize];
                let cost = n.cost as usize;
                if n.body_len == 0 || spent + cost > budget_bytes {
                    continue;
                }
                spent += cost;
                chosen += 1;
                n.chosen = true;
            }
        }
        if chosen > 0 {
            // A slow-moving mean: the guess for the next snapshot.
            let mean = spent as f32 / chosen as f32;
            self.update_bytes_mean = 0.8 * self.update_bytes_mean + 0.2 * mean;
        }

        // In id order (the walk's): the packing, the entities left waiting, and the new view,
        // which is the baseline without the departures, with the chosen states ([snap-5]).
        let mut packed = Vec::with_capacity(spent);
        let mut prev = None;
        self.waiting.clear();
        let mut view = self.spare.pop().unwrap_or_default();
        view.clear();
        view.reserve(baseline.len() + needed.len());
        let mut next = needed.iter().filter(|n| n.chosen).map(|n| candidates[n.candidate as usize].state).peekable();
        for e in baseline.iter().filter(|e| !removed.contains(&e.id)) {
            while let Some(c) = next.next_if(|c| c.id < e.id) {
                view.push(c);
            }
            match next.next_if(|c| c.id == e.id) {
                Some(c) => view.push(c),
                None => view.push(*e),
            }
        }
        view.extend(next);
        for n in needed.iter() {
            let id = candidates[n.candidate as usize].state.id;
            if n.chosen {
                put_id(&mut packed, prev, id);
                let (start, len) = (n.body_start as usize, n.body_len as usize);
                packed.extend_from_slice(&bodies[start..start + len]);
                prev = Some(id);
            } else {
                self.waiting.push((id, n.waited + 1));
            }
        }
        debug_assert!(packed.len() <= budget_bytes.max(spent));
        self.sent.push_back((tick, view));
        while self.sent.len() > SENT_VIEWS_MAX {
            if let Some((_, old)) = self.sent.pop_front() {
                self.recycle(old);
            }
        }
        Snapshot { tick, baseline_tick, input_ack, input_backlog: 0, updates: packed, removed }
    }
}

/// Sorts ascending as urgency descending, then index ascending (`f32::total_cmp`'s order of
/// the urgency, inverted, above the index): integers order far faster than a comparator.
fn urgency_key(urgency: f32, index: u32) -> u64 {
    let bits = urgency.to_bits();
    let ordered = if bits >> 31 == 1 { !bits } else { bits | 0x8000_0000 };
    (u64::from(!ordered) << 32) | u64::from(index)
}

/// Bytes [`put_id`] writes for `id` after `prev`.
fn gap_len(prev: Option<u64>, id: u64) -> usize {
    id_len(prev.map_or(id, |p| id - p))
}

/// A typical packed update of a moving character (`[delta-6]`), for guessing how many fit.
const UPDATE_BYTES_TYPICAL: usize = 4;

/// The smallest packed update (a one-byte id gap, the mask, one one-byte field): with less
/// budget left than this, nothing more fits.
const UPDATE_BYTES_MIN: usize = 3;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use pwn_proto::delta::ReceivedViews;
    use std::collections::{BTreeMap, HashMap};

    fn entity(id: u64, x: i32) -> Candidate {
        Candidate::new(EntityState { id, position: [x, 0, 0], health: 100, ..EntityState::default() }, 1.0)
    }

    proptest! {
        #[test]
        fn urgency_keys_sort_as_the_urgency_comparator(
            u in proptest::collection::vec((any::<f32>(), any::<u32>()), 0..60)
        ) {
            let mut by_cmp = u.clone();
            by_cmp.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let mut keys: Vec<u64> = u.iter().map(|(f, i)| urgency_key(*f, *i)).collect();
            keys.sort_unstable();
            let back: Vec<u32> = keys.iter().map(|k| *k as u32).collect();
            prop_assert_eq!(back, by_cmp.iter().map(|(_, i)| *i).collect::<Vec<_>>());
        }
    }

    #[test]
    fn snap_1_entities_at_rest_cost_nothing_once_acknowledged() {
        let mut c = ClientSnapshots::new(30);
        let world: Vec<Candidate> = (1..=10).map(|i| entity(i, i as i32 * 100)).collect();
        let first = c.build(1, 0, &mut world.clone(), 10_000);
        assert!(!first.updates.is_empty());
        c.ack(1);
        let second = c.build(2, 0, &mut world.clone(), 10_000);
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
            let s = c.build(tick, 0, &mut world.clone(), 60);
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
    fn snap_2_a_crowd_that_fits_with_ids_as_gaps_is_sent_whole() {
        // Ids of two bytes in full, one as gaps: counted in full the crowd would not fit.
        let crowd: Vec<Candidate> = (1_000..1_100).map(|i| entity(i, i as i32 * 3)).collect();
        let whole = ClientSnapshots::new(30).build(1, 0, &mut crowd.clone(), 100_000);
        let full_ids: usize = crowd.iter().map(|c| id_len(c.state.id)).sum::<usize>() - crowd.len();
        let budget = whole.updates.len();
        let mut c = ClientSnapshots::new(30);
        let s = c.build(1, 0, &mut crowd.clone(), budget);
        assert!(full_ids > 0, "the test needs ids longer in full than as gaps");
        assert_eq!(s.updates, whole.updates, "everything fits exactly: nothing may be left out");
        let fewer = ClientSnapshots::new(30).build(1, 0, &mut crowd.clone(), budget - 1);
        assert!(fewer.updates.len() < budget, "one byte less cannot carry the whole crowd");
    }

    #[test]
    fn views_are_reused_and_still_what_the_client_holds() {
        let mut c = ClientSnapshots::new(30);
        let mut client = ReceivedViews::new(30);
        for tick in 1..=20u64 {
            let world: Vec<Candidate> = (1..=30).map(|i| entity(i, (tick * i) as i32)).collect();
            let s = c.build(tick, 0, &mut world.clone(), 10_000);
            let view = client.apply(&s).unwrap().clone();
            let recorded = c.sent.iter().find(|(t, _)| *t == tick).map(|(_, v)| v.clone()).unwrap();
            assert_eq!(view.values().copied().collect::<Vec<_>>(), recorded, "tick {tick}");
            c.ack(tick);
        }
        assert!(!c.spare.is_empty(), "acknowledged views are kept for reuse");
        assert!(c.spare.len() <= SPARE_VIEWS_MAX);
    }

    #[test]
    fn snap_4_leaving_the_interest_radius_is_a_removal() {
        let mut c = ClientSnapshots::new(30);
        c.build(1, 0, &mut [entity(1, 0), entity(2, 5)], 1_000);
        c.ack(1);
        let s = c.build(2, 0, &mut [entity(1, 0)], 1_000);
        assert_eq!(s.removed, vec![2]);
    }

    #[test]
    fn snap_4_many_departures_are_spread_over_snapshots_that_fit_a_datagram() {
        let mut c = ClientSnapshots::new(30);
        let mut client = ReceivedViews::new(30);
        let crowd: Vec<Candidate> = (1..=40).map(|i| entity(i, i as i32)).collect();
        client.apply(&c.build(1, 0, &mut crowd.clone(), 1_000)).unwrap();
        c.ack(1);
        let mut tick = 2;
        while client.latest().is_some_and(|(_, v)| !v.is_empty()) {
            let s = c.build(tick, 0, &mut [], 1_000);
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
        c.build(1, 0, &mut world.clone(), 1_000);
        c.ack(1);
        let recent = c.build(2, 0, &mut world.clone(), 1_000);
        assert_eq!(recent.baseline_tick, 1);
        let late = c.build(2 + BASELINE_AGE_MAX, 0, &mut world.clone(), 1_000);
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
                    world.insert(*id, Candidate::new(EntityState { id: *id, position: [*x, 0, 0], health: *hp, ..EntityState::default() }, 1.0));
                }
                let mut candidates: Vec<Candidate> = world.values().copied().collect();
                let s = server.build(tick, 0, &mut candidates, *budget);
                prop_assert!(s.updates.len() <= *budget);
                // Datagrams may be lost; acks may be lost.
                if *delivered
                    && let Ok(view) = client.apply(&s)
                {
                    let recorded = server.sent.iter().find(|(t, _)| *t == tick).map(|(_, v)| v.clone()).unwrap();
                    prop_assert_eq!(view.values().copied().collect::<Vec<_>>(), recorded);
                    if *acked {
                        server.ack(tick);
                    }
                }
            }
        }
    }
}
