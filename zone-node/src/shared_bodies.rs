//! Updates packed once per tick for every client that needs the same one.
//!
//! A client's update for an entity depends only on the state it holds (its baseline's), the
//! entity's state now, and how many ticks lie between its baseline and now (`[delta-6]`
//! extrapolation). Most clients acknowledged a recent snapshot that carried the entity, so they
//! hold the state the entity had at that tick: in a crowd of 2,000 each entity is packed for
//! a hundred clients from the same base. This table packs each visible entity once against its
//! state one, two and three ticks ago; the snapshot builder copies the packed body when the
//! client's base is that state and its baseline that tick, and packs it itself otherwise. The
//! bytes are the same either way (the packing is a pure function of those three things), so
//! this is a cache, not a second encoder.

use pwn_proto::delta::{EntityState, Motion, pack_body, update_between};
use std::collections::VecDeque;

/// Baseline ages packed for (a client acknowledging within this many ticks gets shared
/// bodies; one further behind packs its own).
pub const AGES_SHARED: usize = 3;

/// Marks a candidate with no entry in the table.
pub const NOT_SHARED: u32 = u32::MAX;

/// Bodies against one past tick.
#[derive(Debug, Default)]
struct AgeTable {
    baseline_tick: u64,
    /// Per visible entity: the state it had at `baseline_tick` (the base the body is packed
    /// against), and where its body sits in `bytes` (`len` 0: none, it did not exist then or
    /// has not changed since).
    bases: Vec<EntityState>,
    spans: Vec<(u32, u32)>,
    bytes: Vec<u8>,
}

/// This tick's shared bodies, and the visible states of the last ticks they are packed from.
#[derive(Debug, Default)]
pub struct SharedBodies {
    tick: u64,
    tick_hz: u32,
    ages: Vec<AgeTable>,
    /// The visible states of the last `AGES_SHARED` ticks, newest last, each sorted by id.
    recent: VecDeque<(u64, Vec<EntityState>)>,
    /// The list that fell out of `recent`, reused for the next tick's states.
    spare: Vec<EntityState>,
}

/// The table a client with a given baseline reads during one build.
#[derive(Clone, Copy, Debug)]
pub struct SharedView<'a> {
    table: Option<&'a AgeTable>,
    /// The states the bodies were packed to (this tick's visible states).
    now: &'a [EntityState],
}

impl SharedView<'_> {
    /// No shared bodies (tests, or a client whose baseline is too old).
    pub const NONE: SharedView<'static> = SharedView { table: None, now: &[] };

    /// The packed body for the candidate at `index` if it goes from the client's `base` to
    /// the candidate's `state` (both checked: an index pointing elsewhere copies nothing).
    pub fn body(&self, index: u32, base: &EntityState, state: &EntityState) -> Option<&[u8]> {
        let t = self.table?;
        let i = index as usize;
        let (start, len) = *t.spans.get(i)?;
        let same = len > 0 && t.bases[i] == *base && self.now.get(i) == Some(state);
        same.then(|| &t.bytes[start as usize..(start + len) as usize])
    }
}

impl SharedBodies {
    /// Packs this tick's `now` (the visible states sorted by id, indexed as the candidates
    /// will be) against the states of the last ticks, then remembers `now` for the next ticks.
    pub fn refill(&mut self, tick: u64, tick_hz: u32, now: impl ExactSizeIterator<Item = EntityState>) {
        self.tick = tick;
        self.tick_hz = tick_hz;
        let mut current = std::mem::take(&mut self.spare);
        current.clear();
        current.extend(now);
        self.ages.resize_with(AGES_SHARED, AgeTable::default);
        for (age, table) in self.ages.iter_mut().enumerate() {
            table.bases.clear();
            table.spans.clear();
            table.bytes.clear();
            table.baseline_tick = 0;
            // `recent` is newest last: age 1 is the last entry.
            let Some((past_tick, past)) = self.recent.len().checked_sub(age + 1).and_then(|i| self.recent.get(i))
            else {
                continue;
            };
            if *past_tick == 0 || *past_tick >= tick {
                continue;
            }
            table.baseline_tick = *past_tick;
            let motion = Motion::between(*past_tick, tick, tick_hz);
            let mut p = 0usize;
            for state in &current {
                while p < past.len() && past[p].id < state.id {
                    p += 1;
                }
                let base = past.get(p).filter(|b| b.id == state.id);
                let start = table.bytes.len();
                if let Some(base) = base
                    && let Some(update) = update_between(Some(base), state)
                {
                    pack_body(&mut table.bytes, Some(base), &update, motion);
                }
                table.bases.push(base.copied().unwrap_or_default());
                table.spans.push((start as u32, (table.bytes.len() - start) as u32));
            }
        }
        self.recent.push_back((tick, current));
        while self.recent.len() > AGES_SHARED {
            if let Some((_, old)) = self.recent.pop_front() {
                self.spare = old;
            }
        }
    }

    /// What a client whose baseline is `baseline_tick` can copy when building for `tick` at
    /// `tick_hz`.
    pub fn view(&self, tick: u64, tick_hz: u32, baseline_tick: u64) -> SharedView<'_> {
        if tick != self.tick || tick_hz != self.tick_hz || baseline_tick == 0 {
            return SharedView::NONE;
        }
        let now = self.recent.back().filter(|(t, _)| *t == tick).map_or(&[][..], |(_, v)| &v[..]);
        SharedView { table: self.ages.iter().find(|t| t.baseline_tick == baseline_tick), now }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(id: u64, x: i32, vx: i16) -> EntityState {
        EntityState { id, position: [x, 0, 0], velocity: [vx, 0, 0], health: 100, ..EntityState::default() }
    }

    #[test]
    fn a_shared_body_is_the_body_the_builder_would_pack() {
        let mut shared = SharedBodies::default();
        let ticks: Vec<Vec<EntityState>> = (1..=5)
            .map(|t| {
                (1..=20u64)
                    .filter(|id| (id + t) % 7 != 0)
                    .map(|id| state(id, (t * id * 37) as i32, id as i16))
                    .collect()
            })
            .collect();
        for (t, states) in ticks.iter().enumerate() {
            let tick = t as u64 + 1;
            shared.refill(tick, 30, states.iter().copied());
            for age in 1..=AGES_SHARED as u64 {
                let Some(past) = tick.checked_sub(age).filter(|p| *p > 0).map(|p| &ticks[p as usize - 1]) else {
                    continue;
                };
                let view = shared.view(tick, 30, tick - age);
                for (i, now) in states.iter().enumerate() {
                    let Some(base) = past.iter().find(|b| b.id == now.id) else { continue };
                    let mut expected = Vec::new();
                    if let Some(u) = update_between(Some(base), now) {
                        pack_body(&mut expected, Some(base), &u, Motion::between(tick - age, tick, 30));
                    }
                    let got = view.body(i as u32, base, now);
                    assert_eq!(got.unwrap_or(&[]), &expected[..], "tick {tick} age {age} entity {}", now.id);
                    // Another base gets nothing to copy.
                    let other = EntityState { health: base.health + 1, ..*base };
                    assert!(view.body(i as u32, &other, now).is_none());
                    // Nor does a state other than the one the body was packed to.
                    let moved = EntityState { position: [now.position[0] + 1, 0, 0], ..*now };
                    assert!(view.body(i as u32, base, &moved).is_none());
                }
            }
            // A baseline older than the table holds, or another tick, shares nothing.
            let (first, now0) = (&ticks[0][0], &states[0]);
            assert!(shared.view(tick, 30, tick.saturating_sub(AGES_SHARED as u64 + 1)).body(0, first, now0).is_none());
            assert!(shared.view(tick + 1, 30, tick).body(0, now0, now0).is_none());
        }
    }
}
