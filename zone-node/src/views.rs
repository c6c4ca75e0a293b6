//! Each player's view of a tick: interest (what is near it, the nearest first in a crowd) and
//! the snapshot built from it. The work is independent per player, so with a pool
//! (`ZoneConfig::tick_threads` above 1) it runs across the pool's threads; the bytes are the
//! serial path's: each player's snapshot depends only on the tick's shared, read-only states
//! and on that player's own snapshot state, and the results come back in player order.

use crate::interest::InterestIndex;
use crate::snapshots::Candidate;
use crate::zone::{LINEAR_SCAN_MAX, PlayerSlot, SNAPSHOT_BUDGET_MAX_BYTES, ZoneConfig};
use pwn_proto::Snapshot;
use pwn_proto::delta::EntityState;
use pwn_sim::{EntityId, Sim};
use rayon::prelude::*;
use std::collections::BTreeMap;

/// Everything visible this tick, sorted by id (state, position on the ground, speed), with the
/// interest index over it when there are too many for a linear scan.
pub(crate) struct Visible {
    pub(crate) states: Vec<(EntityState, [f32; 2], f32)>,
    pub(crate) index: InterestIndex,
}

/// What one player's view needs besides its own slot.
struct Shared<'a> {
    visible: &'a Visible,
    sim: &'a Sim,
    cfg: &'a ZoneConfig,
    tick: u64,
}

/// Reusable buffers, one set per thread.
#[derive(Default)]
struct Scratch {
    hits: Vec<(u32, f32)>,
    candidates: Vec<Candidate>,
}

/// Every player's snapshot for this tick, in player order; on `pool`'s threads if given.
pub(crate) fn build_views(
    pool: Option<&rayon::ThreadPool>,
    players: &mut BTreeMap<EntityId, PlayerSlot>,
    sim: &Sim,
    cfg: &ZoneConfig,
    tick: u64,
    visible: &Visible,
) -> Vec<(EntityId, Snapshot)> {
    let shared = Shared { visible, sim, cfg, tick };
    let mut slots: Vec<(&EntityId, &mut PlayerSlot)> = players.iter_mut().collect();
    let views: Vec<Option<(EntityId, Snapshot)>> = match pool {
        Some(pool) => pool.install(|| {
            slots
                .par_iter_mut()
                .map_init(Scratch::default, |scratch, (id, slot)| view(&shared, scratch, **id, slot))
                .collect()
        }),
        None => {
            let mut scratch = Scratch::default();
            slots.iter_mut().map(|(id, slot)| view(&shared, &mut scratch, **id, slot)).collect()
        }
    };
    views.into_iter().flatten().collect()
}

/// One player's snapshot (none if its character is gone altogether).
fn view(
    shared: &Shared<'_>,
    scratch: &mut Scratch,
    player: EntityId,
    slot: &mut PlayerSlot,
) -> Option<(EntityId, Snapshot)> {
    let states = &shared.visible.states;
    let cfg = shared.cfg;
    let (mine, me) = match states.binary_search_by_key(&player.0, |(s, _, _)| s.id) {
        Ok(i) => (Some(i), states[i].1),
        // Dead: the view stays where the character fell, and snapshots keep acknowledging
        // inputs until it respawns.
        Err(_) => {
            let c = shared.sim.character(player)?;
            (None, [c.position_m.x, c.position_m.z])
        }
    };
    let hits = &mut scratch.hits;
    hits.clear();
    let r = cfg.interest_radius_m;
    if states.len() <= LINEAR_SCAN_MAX {
        // A straight pass over a few thousand positions beats the tree, and comes out in id
        // order without sorting.
        hits.extend(states.iter().enumerate().filter_map(|(i, (_, p, _))| {
            let d2 = (p[0] - me[0]) * (p[0] - me[0]) + (p[1] - me[1]) * (p[1] - me[1]);
            (d2 <= r * r).then_some((i as u32, d2))
        }));
    } else {
        hits.extend(shared.visible.index.within(me, r).map(|(i, d2)| (i as u32, d2)));
        hits.sort_unstable_by_key(|(i, _)| *i);
    }
    let cap = cfg.interest_entities_max.max(1);
    if hits.len() > cap {
        // A crowd: only the nearest count (the player itself is at distance 0).
        hits.select_nth_unstable_by(cap - 1, |a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        hits.truncate(cap);
        hits.sort_unstable_by_key(|(i, _)| *i);
    }
    let candidates = &mut scratch.candidates;
    candidates.clear();
    candidates.extend(hits.iter().map(|&(i, d2)| {
        let (state, _, speed) = &states[i as usize];
        let priority = if Some(i as usize) == mine { f32::MAX } else { (1.0 + speed) / (1.0 + d2.sqrt()) };
        Candidate { state: *state, priority }
    }));
    let input_ack = slot.inputs.newest_released().map_or(0, |s| s.0);
    let mut snapshot = slot.snapshots.build(
        shared.tick,
        input_ack,
        candidates,
        cfg.snapshot_budget_bytes.min(SNAPSHOT_BUDGET_MAX_BYTES),
    );
    snapshot.input_backlog = slot.inputs.backlog().min(usize::from(u8::MAX)) as u8;
    Some((player, snapshot))
}
