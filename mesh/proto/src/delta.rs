//! Snapshot delta encoding: the server sends each client only what changed since a snapshot
//! the client acknowledged; entities at rest cost nothing once the client has them.
//!
//! Rules:
//! - `[delta-1]` an entity unchanged since the baseline is not sent at all;
//! - `[delta-2]` a changed entity carries only its changed fields;
//! - `[delta-3]` an entity new to the baseline carries every field; a partial update of an
//!   entity the client does not hold is a protocol violation;
//! - `[delta-4]` entities in the baseline but not in the new view are listed as removed.
//! - `[delta-5]` updates travel packed ([`pack`]): ids ascending as varint gaps, a field mask,
//!   and each field as a zigzag varint of its change against the baseline (absolute for new
//!   entities).
//! - `[delta-6]` a position is sent as its difference from where the baseline's velocity
//!   would have carried it over the ticks since the baseline ([`Motion`], integer arithmetic
//!   both ends agree on), so an entity moving steadily costs one byte per axis: about five
//!   bytes per update for a running character. [`unpack`] refuses anything
//!   malformed (truncated, ids not ascending, unknown mask bits, more than
//!   `SNAPSHOT_ENTITIES_MAX` updates, values out of range) without panicking.

use crate::codec::{SNAPSHOT_ENTITIES_MAX, Violation};
use crate::messages::EntityUpdate;
use std::collections::BTreeMap;

/// Position grid steps per velocity grid step per second (1024 / 64).
const POSITION_STEPS_PER_VELOCITY_STEP: i64 =
    (pwn_sim::quantize::POSITION_STEPS_PER_M / pwn_sim::quantize::VELOCITY_STEPS_PER_MPS) as i64;
/// Ticks of extrapolation at most (baselines are never this old; bounds the arithmetic).
const EXTRAPOLATION_TICKS_MAX: u64 = 1 << 16;

/// The time between a snapshot and its baseline, over which positions are extrapolated
/// (`[delta-6]`). Both ends derive it from the snapshot's ticks and the agreed tick rate.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Motion {
    /// Ticks from the baseline to the snapshot (0: no extrapolation).
    pub elapsed_ticks: u64,
    /// The simulation's tick rate.
    pub tick_hz: u32,
}

impl Motion {
    /// No extrapolation (a full snapshot, or tests of the packing alone).
    pub const STILL: Motion = Motion { elapsed_ticks: 0, tick_hz: 1 };

    /// The motion between a baseline and a snapshot (a full snapshot, `baseline_tick` 0, has
    /// none).
    pub fn between(baseline_tick: u64, tick: u64, tick_hz: u32) -> Self {
        let elapsed_ticks = if baseline_tick == 0 { 0 } else { tick.saturating_sub(baseline_tick) };
        Self { elapsed_ticks: elapsed_ticks.min(EXTRAPOLATION_TICKS_MAX), tick_hz: tick_hz.max(1) }
    }

    /// Where `base`'s velocity carries its position after the elapsed ticks, per axis.
    fn extrapolate(&self, base: &EntityState) -> [i64; 3] {
        let dt = self.elapsed_ticks.min(EXTRAPOLATION_TICKS_MAX) as i64;
        let hz = i64::from(self.tick_hz.max(1));
        std::array::from_fn(|k| {
            i64::from(base.position[k]) + i64::from(base.velocity[k]) * POSITION_STEPS_PER_VELOCITY_STEP * dt / hz
        })
    }
}

/// One entity's full quantized state, as both ends hold it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct EntityState {
    /// Global entity id.
    pub id: u64,
    /// Position on pwn-sim's grid.
    pub position: [i32; 3],
    /// Velocity on pwn-sim's grid.
    pub velocity: [i16; 3],
    /// Heading.
    pub yaw: u16,
    /// Orientation, smallest-three.
    pub rotation: u32,
    /// Health.
    pub health: u16,
}

pub use crate::view::{UpdateCounts, View};

fn changed<T: PartialEq + Copy>(old: Option<T>, new: T) -> Option<T> {
    if old == Some(new) { None } else { Some(new) }
}

/// The updates and removals that turn `baseline` into `current`.
pub fn diff(baseline: &View, current: &View) -> (Vec<EntityUpdate>, Vec<u64>) {
    let updates = current.values().filter_map(|now| update_between(baseline.get(&now.id), now)).collect();
    let removed = baseline.keys().filter(|id| !current.contains_key(id)).copied().collect();
    (updates, removed)
}

/// The update that takes one entity from `old` (`None`: the client does not hold it) to `now`;
/// `None` when nothing changed (`[delta-1]` to `[delta-3]` for one entity).
#[inline]
pub fn update_between(old: Option<&EntityState>, now: &EntityState) -> Option<EntityUpdate> {
    let u = EntityUpdate {
        id: now.id,
        position: changed(old.map(|o| o.position), now.position),
        velocity: changed(old.map(|o| o.velocity), now.velocity),
        yaw: changed(old.map(|o| o.yaw), now.yaw),
        rotation: changed(old.map(|o| o.rotation), now.rotation),
        health: changed(old.map(|o| o.health), now.health),
    };
    let any =
        u.position.is_some() || u.velocity.is_some() || u.yaw.is_some() || u.rotation.is_some() || u.health.is_some();
    (any || old.is_none()).then_some(u)
}

/// The state an update gives an entity that was `old` (`None`: not held, so the update must
/// carry every field).
fn updated(old: Option<&EntityState>, u: &EntityUpdate) -> Result<EntityState, Violation> {
    match old {
        Some(old) => Ok(EntityState {
            id: u.id,
            position: u.position.unwrap_or(old.position),
            velocity: u.velocity.unwrap_or(old.velocity),
            yaw: u.yaw.unwrap_or(old.yaw),
            rotation: u.rotation.unwrap_or(old.rotation),
            health: u.health.unwrap_or(old.health),
        }),
        None => match (u.position, u.velocity, u.yaw, u.rotation, u.health) {
            (Some(position), Some(velocity), Some(yaw), Some(rotation), Some(health)) => {
                Ok(EntityState { id: u.id, position, velocity, yaw, rotation, health })
            }
            _ => Err(Violation::OutOfRange {
                field: "snapshot.entities",
                why: format!("partial update of entity {} the client does not hold", u.id),
            }),
        },
    }
}

/// Applies removals, then updates, to `baseline`, giving the new view: one merge pass when the
/// updates are in id order (as `unpack` returns them).
pub fn apply(baseline: &View, updates: &[EntityUpdate], removed: &[u64]) -> Result<View, Violation> {
    let mut gone = removed.to_vec();
    gone.sort_unstable();
    let is_gone = |id: &u64| gone.binary_search(id).is_ok();
    if !updates.windows(2).all(|w| w[0].id < w[1].id) {
        // Not in order (never from `unpack`): one at a time.
        let mut view: View = baseline.iter().filter(|(id, _)| !is_gone(id)).map(|(id, s)| (*id, *s)).collect();
        for u in updates {
            let state = updated(view.get(&u.id), u)?;
            view.insert(u.id, state);
        }
        return Ok(view);
    }
    let mut out = Vec::with_capacity(baseline.len() + updates.len());
    let mut next = updates.iter().peekable();
    for old in baseline.values() {
        while let Some(u) = next.next_if(|u| u.id < old.id) {
            out.push(updated(None, u)?);
        }
        let held = (!is_gone(&old.id)).then_some(old);
        match next.next_if(|u| u.id == old.id) {
            Some(u) => out.push(updated(held, u)?),
            None => out.extend(held.copied()),
        }
    }
    for u in next {
        out.push(updated(None, u)?);
    }
    Ok(View::from_states(out))
}

/// Snapshot views a receiver keeps, for resolving baselines (about two seconds at 30 Hz).
pub const RECEIVED_VIEWS_MAX: usize = 64;

/// Why a received snapshot could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Its baseline is older than the views kept (or was never received): drop it and keep
    /// acknowledging; the sender will move to a newer baseline.
    #[error("baseline {0} is unknown")]
    UnknownBaseline(u64),
    /// Older than, or the same as, the newest snapshot applied: a late or duplicated datagram.
    #[error("snapshot {0} is not newer than the last applied")]
    Stale(u64),
    /// The sender broke the protocol.
    #[error(transparent)]
    Violation(#[from] Violation),
}

/// A receiver's views by tick: applies snapshots against the baseline they name.
#[derive(Debug, Clone)]
pub struct ReceivedViews {
    /// Shared, so a client can keep views (for interpolation) without copying them.
    views: BTreeMap<u64, std::sync::Arc<View>>,
    tick_hz: u32,
}

impl ReceivedViews {
    /// An empty history, for snapshots of a simulation ticking at `tick_hz` (agreed in the
    /// handshake; positions are extrapolated at it, `[delta-6]`).
    pub fn new(tick_hz: u32) -> Self {
        Self { views: BTreeMap::new(), tick_hz }
    }

    /// The newest view and its tick.
    pub fn latest(&self) -> Option<(u64, &View)> {
        self.views.iter().next_back().map(|(t, v)| (*t, &**v))
    }

    /// Applies `s`, keeping the resulting view for later baselines; returns it.
    pub fn apply(&mut self, s: &crate::messages::Snapshot) -> Result<&View, ApplyError> {
        self.apply_counted(s).map(|(view, _)| view)
    }

    /// Like [`ReceivedViews::apply`], also returning how many entity updates the snapshot
    /// carried, in all and of world objects.
    pub fn apply_counted(&mut self, s: &crate::messages::Snapshot) -> Result<(&View, UpdateCounts), ApplyError> {
        if self.latest().is_some_and(|(t, _)| s.tick <= t) {
            return Err(ApplyError::Stale(s.tick));
        }
        let empty = View::new();
        let baseline = if s.baseline_tick == 0 {
            &empty
        } else {
            self.views.get(&s.baseline_tick).ok_or(ApplyError::UnknownBaseline(s.baseline_tick))?
        };
        let updates = unpack(baseline, &s.updates, Motion::between(s.baseline_tick, s.tick, self.tick_hz))?;
        let objects =
            updates.iter().filter(|u| pwn_sim::EntityId(u.id).is_object() && baseline.contains_key(&u.id)).count();
        let view = apply(baseline, &updates, &s.removed)?;
        self.views.insert(s.tick, std::sync::Arc::new(view));
        while self.views.len() > RECEIVED_VIEWS_MAX {
            self.views.pop_first();
        }
        Ok((&self.views[&s.tick], UpdateCounts { all: updates.len(), objects }))
    }

    /// The view of `tick`, shared (no copy), if still held.
    pub fn shared(&self, tick: u64) -> Option<std::sync::Arc<View>> {
        self.views.get(&tick).cloned()
    }
}

const HAS_POSITION: u8 = 1;
const HAS_VELOCITY: u8 = 2;
const HAS_YAW: u8 = 4;
const HAS_ROTATION: u8 = 8;
const HAS_HEALTH: u8 = 16;
const MASK_ALL: u8 = 31;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_signed(out: &mut Vec<u8>, v: i64) {
    put_varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn bad(why: &str) -> Violation {
    Violation::OutOfRange { field: "snapshot.updates", why: why.to_string() }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn varint(&mut self) -> Result<u64, Violation> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.bytes.get(self.at).ok_or_else(|| bad("truncated"))?;
            self.at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad("varint longer than 10 bytes"))
    }

    fn signed(&mut self) -> Result<i64, Violation> {
        let z = self.varint()?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    fn u8(&mut self) -> Result<u8, Violation> {
        let b = *self.bytes.get(self.at).ok_or_else(|| bad("truncated"))?;
        self.at += 1;
        Ok(b)
    }

    fn u32_le(&mut self) -> Result<u32, Violation> {
        let b = self.bytes.get(self.at..self.at + 4).ok_or_else(|| bad("truncated"))?;
        self.at += 4;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

fn narrow<T: TryFrom<i64>>(v: i64) -> Result<T, Violation> {
    T::try_from(v).map_err(|_| bad("value out of range"))
}

/// Packs updates (ascending ids, as `diff` produces them) against `baseline`, `motion` after it.
pub fn pack(baseline: &View, updates: &[EntityUpdate], motion: Motion) -> Vec<u8> {
    let mut out = Vec::with_capacity(updates.len() * 8);
    let mut prev = None;
    for u in updates {
        debug_assert!(prev.is_none_or(|p| u.id > p), "updates must be in ascending id order");
        pack_one(&mut out, prev, baseline.get(&u.id), u, motion);
        prev = Some(u.id);
    }
    out
}

/// Appends one update to a packing: `prev_id` is the id of the update before it (`None` for
/// the first), `base` the entity's baseline state. [`pack`] is this over every update.
pub fn pack_one(out: &mut Vec<u8>, prev_id: Option<u64>, base: Option<&EntityState>, u: &EntityUpdate, motion: Motion) {
    put_id(out, prev_id, u.id);
    pack_body(out, base, u, motion);
}

/// Appends an update's id: its gap from `prev_id`, or in full for the first update.
#[inline]
pub fn put_id(out: &mut Vec<u8>, prev_id: Option<u64>, id: u64) {
    put_varint(out, prev_id.map_or(id, |p| id - p));
}

/// Bytes [`put_id`] writes for an id in full (the most any gap before it can take).
#[inline]
pub fn id_len(id: u64) -> usize {
    (64 - id.max(1).leading_zeros() as usize).div_ceil(7)
}

/// Appends everything of an update after its id: the field mask and the fields. An encoder
/// that picks updates in another order than ids can measure and keep bodies, then write ids.
pub fn pack_body(out: &mut Vec<u8>, base: Option<&EntityState>, u: &EntityUpdate, motion: Motion) {
    {
        let mask = u.position.map_or(0, |_| HAS_POSITION)
            | u.velocity.map_or(0, |_| HAS_VELOCITY)
            | u.yaw.map_or(0, |_| HAS_YAW)
            | u.rotation.map_or(0, |_| HAS_ROTATION)
            | u.health.map_or(0, |_| HAS_HEALTH);
        out.push(mask);
        let base = base.copied().unwrap_or_default();
        if let Some(p) = u.position {
            for (now, expected) in p.iter().zip(motion.extrapolate(&base)) {
                put_signed(out, i64::from(*now) - expected);
            }
        }
        if let Some(v) = u.velocity {
            for (now, was) in v.iter().zip(base.velocity) {
                put_signed(out, i64::from(*now) - i64::from(was));
            }
        }
        if let Some(y) = u.yaw {
            // The shortest way round: a small turn is one byte.
            put_signed(out, i64::from(y.wrapping_sub(base.yaw) as i16));
        }
        if let Some(r) = u.rotation {
            out.extend_from_slice(&r.to_le_bytes());
        }
        if let Some(h) = u.health {
            put_signed(out, i64::from(h) - i64::from(base.health));
        }
    }
}

/// `base + change`, refusing an overflow (a hostile change can be any `i64`).
fn offset(base: i64, change: i64) -> Result<i64, Violation> {
    base.checked_add(change).ok_or_else(|| bad("value out of range"))
}

/// Unpacks updates packed by [`pack`] against the same `baseline` and `motion`.
pub fn unpack(baseline: &View, bytes: &[u8], motion: Motion) -> Result<Vec<EntityUpdate>, Violation> {
    let mut r = Reader { bytes, at: 0 };
    let mut out = Vec::new();
    let mut prev = 0u64;
    while r.at < bytes.len() {
        if out.len() >= SNAPSHOT_ENTITIES_MAX {
            return Err(bad("too many updates"));
        }
        let gap = r.varint()?;
        let id = if out.is_empty() {
            gap
        } else {
            if gap == 0 {
                return Err(bad("ids not ascending"));
            }
            prev.checked_add(gap).ok_or_else(|| bad("id overflow"))?
        };
        prev = id;
        let mask = r.u8()?;
        if mask & !MASK_ALL != 0 {
            return Err(bad("unknown field bits"));
        }
        let base = baseline.get(&id).copied().unwrap_or_default();
        let mut u = EntityUpdate { id, ..EntityUpdate::default() };
        if mask & HAS_POSITION != 0 {
            let mut p = [0i32; 3];
            let expected = motion.extrapolate(&base);
            for (k, slot) in p.iter_mut().enumerate() {
                *slot = narrow(offset(expected[k], r.signed()?)?)?;
            }
            u.position = Some(p);
        }
        if mask & HAS_VELOCITY != 0 {
            let mut v = [0i16; 3];
            for (k, slot) in v.iter_mut().enumerate() {
                *slot = narrow(offset(i64::from(base.velocity[k]), r.signed()?)?)?;
            }
            u.velocity = Some(v);
        }
        if mask & HAS_YAW != 0 {
            let turn: i16 = narrow(r.signed()?)?;
            u.yaw = Some(base.yaw.wrapping_add(turn as u16));
        }
        if mask & HAS_ROTATION != 0 {
            u.rotation = Some(r.u32_le()?);
        }
        if mask & HAS_HEALTH != 0 {
            u.health = Some(narrow(offset(i64::from(base.health), r.signed()?)?)?);
        }
        out.push(u);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_state() -> impl Strategy<Value = EntityState> {
        (0u64..40, any::<[i32; 3]>(), any::<[i16; 3]>(), 0u16..4, 0u32..4, 0u16..3).prop_map(
            |(id, position, velocity, yaw, rotation, health)| EntityState {
                id,
                position,
                velocity,
                yaw,
                rotation,
                health,
            },
        )
    }

    fn arb_view() -> impl Strategy<Value = View> {
        proptest::collection::vec(arb_state(), 0..30).prop_map(|v| v.into_iter().map(|s| (s.id, s)).collect())
    }

    proptest! {
        #[test]
        fn delta_5_6_packing_round_trips(
            baseline in arb_view(),
            current in arb_view(),
            elapsed in 0u64..200,
            tick_hz in 1u32..240,
        ) {
            let (updates, _) = diff(&baseline, &current);
            for motion in [Motion::STILL, Motion { elapsed_ticks: elapsed, tick_hz }] {
                let packed = pack(&baseline, &updates, motion);
                prop_assert_eq!(unpack(&baseline, &packed, motion).unwrap(), updates.clone());
            }
        }

        #[test]
        fn delta_5_unpacking_arbitrary_bytes_never_panics(baseline in arb_view(), bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(updates) = unpack(&baseline, &bytes, Motion::STILL) {
                prop_assert!(updates.len() <= SNAPSHOT_ENTITIES_MAX);
                prop_assert!(updates.windows(2).all(|w| w[0].id < w[1].id));
            }
        }

        #[test]
        fn delta_1_to_4_apply_of_diff_reproduces_the_view(baseline in arb_view(), current in arb_view()) {
            let (updates, removed) = diff(&baseline, &current);
            prop_assert_eq!(apply(&baseline, &updates, &removed).unwrap(), current.clone());
            // [delta-1]: nothing is sent for entities that did not change.
            for u in &updates {
                prop_assert!(baseline.get(&u.id) != current.get(&u.id));
            }
        }
    }

    #[test]
    fn delta_6_a_character_running_steadily_costs_five_bytes() {
        // 7 m/s along X and Z is 448 velocity steps; in one tick at 30 Hz that is 239 position
        // steps (7 / 30 m): exactly where the velocity says, up to the rounding of the grid.
        let before = EntityState {
            id: 1_000,
            position: [409_600, 921, -204_800],
            velocity: [448, 0, 448],
            yaw: 8_000,
            rotation: 0,
            health: 100,
        };
        let baseline: View = [(before.id, before)].into();
        for ticks in 1..=4u64 {
            let step = (448 * 16 * ticks as i32) / 30;
            let after = EntityState { position: [409_600 + step + 1, 921, -204_800 + step - 1], ..before };
            let (updates, _) = diff(&baseline, &[(after.id, after)].into());
            let motion = Motion::between(10, 10 + ticks, 30);
            let packed = pack(&baseline, &updates, motion);
            // id (2 bytes: 1000 is a two-byte varint for the first entity), mask, 3 x 1 byte.
            assert_eq!(packed.len(), 6, "{ticks} ticks after the baseline: {packed:?}");
            assert_eq!(unpack(&baseline, &packed, motion).unwrap(), updates);
        }
    }

    #[test]
    fn id_len_is_the_varint_length() {
        for id in [0u64, 1, 127, 128, 16_383, 16_384, 1 << 62, u64::MAX] {
            let mut out = Vec::new();
            put_id(&mut out, None, id);
            assert_eq!(out.len(), id_len(id), "{id}");
        }
    }

    #[test]
    fn delta_5_a_running_character_costs_at_most_8_bytes() {
        // A character running at 7 m/s moves 7/30 m = 239 grid steps per tick along X and Z.
        let before = EntityState {
            id: 1_000,
            position: [409_600, 921, -204_800],
            velocity: [300, 0, 300],
            yaw: 8_000,
            rotation: 0,
            health: 100,
        };
        let after = EntityState { position: [409_839, 921, -204_561], ..before };
        let baseline: View = [(before.id, before)].into();
        let current: View = [(after.id, after)].into();
        let (updates, _) = diff(&baseline, &current);
        let packed = pack(&baseline, &updates, Motion::STILL);
        assert!(packed.len() <= 8, "{} bytes: {packed:?}", packed.len());
        // And a turn of half a degree adds at most two bytes.
        let turned: View = [(after.id, EntityState { yaw: 8_100, ..after })].into();
        let (updates, _) = diff(&baseline, &turned);
        assert!(pack(&baseline, &updates, Motion::STILL).len() <= packed.len() + 2);
    }

    #[test]
    fn delta_5_malformed_packs_are_violations() {
        let base = View::new();
        assert!(unpack(&base, &[5], Motion::STILL).is_err(), "truncated after the id");
        assert!(unpack(&base, &[5, 0x40], Motion::STILL).is_err(), "unknown mask bit");
        assert!(unpack(&base, &[5, 0, 0, 0], Motion::STILL).is_err(), "repeated id");
        assert!(unpack(&base, &[0xff; 11], Motion::STILL).is_err(), "overlong varint");
        let huge_position = [1, HAS_POSITION, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0];
        assert!(unpack(&base, &huge_position, Motion::STILL).is_err(), "position beyond i32");
        assert_eq!(unpack(&base, &[], Motion::STILL).unwrap(), vec![]);
        // A change that overflows against a non-zero baseline (found by fuzzing).
        let moving: View =
            [(1, EntityState { id: 1, velocity: [i16::MAX, 0, 0], health: 9, ..EntityState::default() })].into();
        let max_zigzag = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        for mask in [HAS_VELOCITY, HAS_HEALTH, HAS_POSITION] {
            let mut bytes = vec![1, mask];
            for _ in 0..3 {
                bytes.extend_from_slice(&max_zigzag);
            }
            assert!(unpack(&moving, &bytes, Motion::between(1, 2, 30)).is_err(), "mask {mask}");
        }
    }

    #[test]
    fn received_views_refuse_stale_snapshots_and_unknown_baselines() {
        use crate::messages::Snapshot;
        let e = EntityState { id: 3, position: [10, 0, 0], ..EntityState::default() };
        let full = |tick, baseline_tick, view: &View| {
            let (u, removed) = diff(&View::new(), view);
            Snapshot {
                tick,
                baseline_tick,
                input_ack: 0,
                input_backlog: 0,
                updates: pack(&View::new(), &u, Motion::STILL),
                removed,
            }
        };
        let mut r = ReceivedViews::new(30);
        let v: View = [(3, e)].into();
        assert_eq!(r.apply(&full(5, 0, &v)).unwrap(), &v);
        assert_eq!(r.apply(&full(5, 0, &v)), Err(ApplyError::Stale(5)));
        assert_eq!(r.apply(&full(4, 0, &v)), Err(ApplyError::Stale(4)));
        assert_eq!(r.apply(&full(6, 2, &v)), Err(ApplyError::UnknownBaseline(2)));
        let moved: View = [(3, EntityState { position: [11, 0, 0], ..e })].into();
        let (u, removed) = diff(&v, &moved);
        let delta = Snapshot {
            tick: 7,
            baseline_tick: 5,
            input_ack: 0,
            input_backlog: 0,
            updates: pack(&v, &u, Motion::between(5, 7, 30)),
            removed,
        };
        assert_eq!(r.apply(&delta).unwrap(), &moved);
        assert_eq!(r.latest().map(|(t, _)| t), Some(7));
    }

    #[test]
    fn delta_3_partial_update_of_an_unknown_entity_is_a_violation() {
        let u = EntityUpdate { id: 9, position: Some([1, 2, 3]), ..Default::default() };
        assert!(apply(&View::new(), &[u], &[]).is_err());
    }
}
