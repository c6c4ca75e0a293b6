//! Each player's view of a tick: interest (what is near it, the nearest first in a crowd) and
//! the snapshot built from it. The work is independent per player, so with a pool
//! (`ZoneConfig::tick_threads` above 1) it runs across the pool's threads; the bytes are the
//! serial path's: each player's snapshot depends only on the tick's shared, read-only states
//! and on that player's own snapshot state, and the results come back in player order.

use crate::interest::{GRID_MIN_ENTITIES, Grid, nearest_linear};
use crate::shared_bodies::SharedBodies;
use crate::snapshots::{BuildScratch, Candidate};
use crate::zone::{PlayerSlot, SNAPSHOT_BUDGET_MAX_BYTES, ZoneConfig};
use pwn_proto::Snapshot;
use pwn_proto::delta::EntityState;
use pwn_sim::{EntityId, Sim};
use rayon::prelude::*;
use std::collections::BTreeMap;

/// Everything visible this tick, sorted by id (state, speed), their positions on the ground,
/// and the interest grid over them when there are too many for a linear scan. Kept by the zone
/// from tick to tick and refilled, so its buffers are not allocated afresh every tick.
#[derive(Default)]
pub(crate) struct Visible {
    pub(crate) states: Vec<(EntityState, f32)>,
    pub(crate) positions: Vec<[f32; 2]>,
    pub(crate) grid: Option<Grid>,
    /// Their updates packed once against their recent states (`crate::shared_bodies`).
    pub(crate) shared: SharedBodies,
}

impl Visible {
    /// Refills with the tick's visible entities, `(state, position, speed)` sorted by id.
    pub(crate) fn refill(&mut self, tick: u64, tick_hz: u32, sorted: &[(EntityState, [f32; 2], f32)], radius_m: f32) {
        self.positions.clear();
        self.positions.extend(sorted.iter().map(|(_, p, _)| *p));
        self.grid = (self.positions.len() > GRID_MIN_ENTITIES).then(|| Grid::build(&self.positions, radius_m));
        self.states.clear();
        self.states.extend(sorted.iter().map(|(s, _, v)| (*s, *v)));
        self.shared.refill(tick, tick_hz, sorted.iter().map(|(s, _, _)| *s));
    }
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
    hits: Vec<crate::interest::Hit>,
    candidates: Vec<Candidate>,
    build: BuildScratch,
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
    let visible = shared.visible;
    let states = &visible.states;
    let cfg = shared.cfg;
    let (mine, me) = match states.binary_search_by_key(&player.0, |(s, _)| s.id) {
        Ok(i) => (Some(i), visible.positions[i]),
        // Dead: the view stays where the character fell, and snapshots keep acknowledging
        // inputs until it respawns.
        Err(_) => {
            let c = shared.sim.character(player)?;
            (None, [c.position_m.x, c.position_m.z])
        }
    };
    let hits = &mut scratch.hits;
    // In a crowd only the nearest count (the player itself is at distance 0).
    let (r, cap) = (cfg.interest_radius_m, cfg.interest_entities_max.max(1));
    match &visible.grid {
        Some(grid) => grid.nearest(&visible.positions, me, r, cap, hits),
        None => nearest_linear(&visible.positions, me, r, cap, hits),
    }
    let candidates = &mut scratch.candidates;
    candidates.clear();
    candidates.extend(hits.iter().map(|&(i, d2)| {
        let (state, speed) = &states[i as usize];
        let priority = if Some(i as usize) == mine { f32::MAX } else { (1.0 + speed) / (1.0 + d2.sqrt()) };
        Candidate { state: *state, priority, shared: i }
    }));
    let input_ack = slot.inputs.newest_released().map_or(0, |s| s.0);
    let mut snapshot = slot.snapshots.build_shared(
        shared.tick,
        input_ack,
        candidates,
        cfg.snapshot_budget_bytes.min(SNAPSHOT_BUDGET_MAX_BYTES),
        Some(&visible.shared),
        &mut scratch.build,
    );
    snapshot.input_backlog = slot.inputs.backlog().min(usize::from(u8::MAX)) as u8;
    Some((player, snapshot))
}
