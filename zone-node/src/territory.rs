//! What part of the world this zone node serves, and what that means for an entity at a
//! position: kept here (its cell), handed to another cell's owner, or mirrored as a ghost to
//! the zones owning cells nearby. Pure: the shell updates the map of owners from the world
//! server's answers.
//!
//! Rules:
//! - `[border-1]` an entity belongs to the owner of the leaf cell it stands in, with
//!   hysteresis: it is handed over only once it is more than `hysteresis_m` inside a cell this
//!   zone does not own (measured from every cell this zone owns), so an entity standing on a
//!   border, or pacing across it, does not bounce between zones;
//! - `[border-2]` moving between two cells of this zone rewrites the entity's owner record
//!   too (a handoff to itself), so a restart of either cell finds it;
//! - `[border-3]` an entity is ghosted to every other zone owning a leaf within
//!   `ghost_margin_m` of it; the margin is at least the interest radius plus what the fastest
//!   entity covers in a few ticks, so a player near the border sees everything it would see
//!   if the border were not there;
//! - `[border-4]` a cell nobody serves (its owner died and the world server has not granted it
//!   again) takes nothing: entities stay with their owner until the cell is served again.

use pwn_partitioner::{Epoch, Quadtree, ZoneId};
use pwn_store::keys::CellKey;
use std::collections::BTreeMap;

/// Border settings.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct BorderConfig {
    /// Entities this close to another zone's cell are ghosted there (`[border-3]`).
    pub ghost_margin_m: f32,
    /// How far into another zone's cell an entity goes before it is handed over (`[border-1]`).
    pub hysteresis_m: f32,
}

impl Default for BorderConfig {
    fn default() -> Self {
        // The interest radius (80 m) plus a second of running (5.4 m/s) and then some.
        Self { ghost_margin_m: 90.0, hysteresis_m: 2.0 }
    }
}

/// Where an entity belongs now.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Here, in this cell.
    Here(CellKey),
    /// With another cell: of another zone, or another of this zone's cells (`[border-2]`).
    Move {
        /// The cell.
        cell: CellKey,
        /// Its owner.
        node: ZoneId,
        /// Its lease epoch.
        epoch: Epoch,
    },
}

/// A zone node's view of the partition.
#[derive(Clone, Debug)]
pub struct Territory {
    tree: Quadtree,
    me: ZoneId,
    cfg: BorderConfig,
    owners: BTreeMap<CellKey, (ZoneId, Epoch)>,
}

impl Territory {
    /// The view of node `me` over `tree`, owning nothing yet.
    pub fn new(tree: Quadtree, me: ZoneId, cfg: BorderConfig) -> Self {
        Self { tree, me, cfg, owners: BTreeMap::new() }
    }

    /// This node's id.
    pub fn me(&self) -> ZoneId {
        self.me
    }

    /// The partition.
    pub fn tree(&self) -> &Quadtree {
        &self.tree
    }

    /// The settings.
    pub fn config(&self) -> &BorderConfig {
        &self.cfg
    }

    /// Replaces the map of who serves which cell (cells missing are served by nobody now).
    pub fn set_owners(&mut self, owners: impl IntoIterator<Item = (CellKey, ZoneId, Epoch)>) {
        self.owners = owners.into_iter().filter(|(c, ..)| self.tree.is_leaf(*c)).map(|(c, n, e)| (c, (n, e))).collect();
    }

    /// Who serves `cell`, if anyone.
    pub fn owner(&self, cell: CellKey) -> Option<(ZoneId, Epoch)> {
        self.owners.get(&cell).copied()
    }

    /// This node's cells and their epochs.
    pub fn mine(&self) -> impl Iterator<Item = (CellKey, Epoch)> + '_ {
        self.owners.iter().filter(|(_, (n, _))| *n == self.me).map(|(c, (_, e))| (*c, *e))
    }

    /// Whether this node serves the leaf holding `(x, z)`.
    pub fn serves(&self, x: f32, z: f32) -> bool {
        self.owners.get(&self.tree.leaf_at(x, z)).is_some_and(|(n, _)| *n == self.me)
    }

    /// Where an entity of this zone, recorded as owned by `cell`, belongs at `(x, z)`
    /// (`[border-1]`, `[border-2]`, `[border-4]`).
    pub fn place(&self, cell: CellKey, x: f32, z: f32) -> Placement {
        let leaf = self.tree.leaf_at(x, z);
        if leaf == cell {
            return Placement::Here(cell);
        }
        let Some((node, epoch)) = self.owner(leaf) else { return Placement::Here(cell) };
        if node == self.me {
            return Placement::Move { cell: leaf, node, epoch };
        }
        // How far the entity is from everything this zone serves.
        let inside_by = self.mine().map(|(c, _)| self.tree.rect(c).distance(x, z)).fold(f32::INFINITY, f32::min);
        if inside_by > self.cfg.hysteresis_m {
            Placement::Move { cell: leaf, node, epoch }
        } else {
            Placement::Here(cell)
        }
    }

    /// An empty batch for every other zone serving a cell within the ghost margin of this
    /// zone's cells: each gets one every tick, empty or not, so it drops what went away.
    pub fn neighbour_batches<T>(&self) -> std::collections::BTreeMap<ZoneId, Vec<T>> {
        let mut out = std::collections::BTreeMap::new();
        for (cell, _) in self.mine() {
            for n in self.tree.neighbours(cell, self.cfg.ghost_margin_m) {
                if let Some((node, _)) = self.owner(n)
                    && node != self.me
                {
                    out.entry(node).or_insert_with(Vec::new);
                }
            }
        }
        out
    }

    /// The other zones an entity at `(x, z)` is ghosted to (`[border-3]`), each once.
    pub fn ghost_targets(&self, x: f32, z: f32, out: &mut Vec<ZoneId>) {
        out.clear();
        for (cell, (node, _)) in &self.owners {
            if *node != self.me
                && !out.contains(node)
                && self.tree.rect(*cell).distance(x, z) <= self.cfg.ghost_margin_m
            {
                out.push(*node);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn territory(me: u64) -> Territory {
        let tree = Quadtree::uniform([-512.0, -512.0], [1024.0, 1024.0], 1).unwrap();
        let mut t = Territory::new(tree, ZoneId(me), BorderConfig { ghost_margin_m: 90.0, hysteresis_m: 2.0 });
        // Quadrants: 0 = (-x, -z), 1 = (+x, -z), 2 = (-x, +z), 3 = (+x, +z). Node 1 holds the
        // west half, node 2 the north-east, node 3 the south-east.
        t.set_owners([
            (CellKey { level: 1, path: 0 }, ZoneId(1), Epoch(1)),
            (CellKey { level: 1, path: 2 }, ZoneId(1), Epoch(1)),
            (CellKey { level: 1, path: 1 }, ZoneId(3), Epoch(1)),
            (CellKey { level: 1, path: 3 }, ZoneId(2), Epoch(4)),
        ]);
        t
    }

    const SW: CellKey = CellKey { level: 1, path: 0 };
    const NW: CellKey = CellKey { level: 1, path: 2 };

    #[test]
    fn border_1_hand_over_only_past_the_hysteresis() {
        let t = territory(1);
        assert_eq!(t.place(NW, -1.0, 100.0), Placement::Here(NW));
        assert_eq!(t.place(NW, 1.5, 100.0), Placement::Here(NW), "on the border: stays");
        assert_eq!(
            t.place(NW, 2.5, 100.0),
            Placement::Move { cell: CellKey { level: 1, path: 3 }, node: ZoneId(2), epoch: Epoch(4) }
        );
        // Node 2's view of the same entity walking back: it stays with 2 until 2 m into the west.
        let t2 = territory(2);
        let ne = CellKey { level: 1, path: 3 };
        assert_eq!(t2.place(ne, -1.5, 100.0), Placement::Here(ne));
        assert!(matches!(t2.place(ne, -2.5, 100.0), Placement::Move { node: ZoneId(1), .. }));
    }

    #[test]
    fn border_2_and_4_own_cells_and_unserved_cells() {
        let mut t = territory(1);
        assert_eq!(t.place(SW, -10.0, 0.5), Placement::Move { cell: NW, node: ZoneId(1), epoch: Epoch(1) });
        // The north-east's owner died: nothing is handed there.
        t.set_owners([(SW, ZoneId(1), Epoch(1)), (NW, ZoneId(1), Epoch(1))]);
        assert_eq!(t.place(NW, 50.0, 100.0), Placement::Here(NW));
    }

    #[test]
    fn border_3_ghosts_go_to_each_zone_within_the_margin_once() {
        let t = territory(1);
        let mut out = Vec::new();
        t.ghost_targets(-200.0, 200.0, &mut out);
        assert!(out.is_empty());
        t.ghost_targets(-50.0, 200.0, &mut out);
        assert_eq!(out, vec![ZoneId(2)]);
        t.ghost_targets(-50.0, 20.0, &mut out);
        out.sort();
        assert_eq!(out, vec![ZoneId(2), ZoneId(3)]);
    }
}
