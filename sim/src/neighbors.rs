//! A uniform grid of character positions as they were at the start of the tick.
//!
//! Characters keep apart through this index rather than through shape casts against each
//! other's capsules: a lookup of nine grid cells is far cheaper than a cast through a bounding
//! volume tree crowded with capsules, and reading start-of-tick positions makes every
//! character's move independent of the others (the same on server and client, and in any order).

use crate::ids::EntityId;
use glam::Vec3;
use std::collections::HashMap;

/// Position index of live characters, rebuilt each tick. Scratch space, not simulation state.
#[derive(Debug, Default)]
pub(crate) struct NeighborGrid {
    cell_m: f32,
    cells: HashMap<(i32, i32), Vec<(EntityId, Vec3)>>,
}

impl NeighborGrid {
    /// Empties the grid and sets the cell size. Keeps the cells' allocations while their number
    /// stays proportional to `expected` characters; drops them when wandering characters have
    /// left a trail of empty cells, so memory stays bounded.
    pub fn reset(&mut self, cell_m: f32, expected: usize) {
        self.cell_m = cell_m.max(0.1);
        if self.cells.len() > 4 * expected + 64 {
            self.cells.clear();
        }
        for v in self.cells.values_mut() {
            v.clear();
        }
    }

    fn key(&self, p: Vec3) -> (i32, i32) {
        ((p.x / self.cell_m).floor() as i32, (p.z / self.cell_m).floor() as i32)
    }

    /// Adds a character; call in id order so iteration order is deterministic.
    pub fn insert(&mut self, id: EntityId, p: Vec3) {
        let k = self.key(p);
        self.cells.entry(k).or_default().push((id, p));
    }

    /// Calls `f` for every character in the 3x3 cells around `p` (so everything within one
    /// cell size), in a fixed order.
    pub fn around(&self, p: Vec3, mut f: impl FnMut(EntityId, Vec3)) {
        let (cx, cz) = self.key(p);
        for dz in -1..=1 {
            for dx in -1..=1 {
                if let Some(v) = self.cells.get(&(cx + dx, cz + dz)) {
                    for (id, q) in v {
                        f(*id, *q);
                    }
                }
            }
        }
    }
}
