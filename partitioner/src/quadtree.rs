//! The quadtree of cells over the world's XZ plane: which leaf cells exist now, where each one
//! lies, which leaf holds a position, and which leaves touch each other. Cells are named by
//! their quadkey (`pwn_store::keys::CellKey`), so a cell at any level is one contiguous range
//! of the position index.
//!
//! The leaves always cover the world exactly once (checked when a tree is built): every
//! position belongs to exactly one leaf.

use pwn_store::keys::{CellKey, QUADKEY_LEVEL_MAX};
use std::collections::BTreeSet;

/// Deepest level the partition may use: cells of 1/256 of the world's edge (32 m on the
/// default 8 km world), well above the minimum cell size of twice an interest radius.
pub const PARTITION_LEVEL_MAX: u8 = 8;

/// Leaves a partition may have (every leaf of a full tree at `PARTITION_LEVEL_MAX`).
pub const LEAVES_MAX: usize = 1 << (2 * PARTITION_LEVEL_MAX as usize);

/// An axis-aligned rectangle on the XZ plane, metres: `[min, max)` on each axis.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Rect {
    /// Minimum corner (x, z).
    pub min: [f32; 2],
    /// Maximum corner (x, z).
    pub max: [f32; 2],
}

impl Rect {
    /// Whether `(x, z)` lies inside, more than `margin_m` from every edge (a negative margin
    /// grows the rectangle).
    pub fn contains(&self, x: f32, z: f32, margin_m: f32) -> bool {
        x >= self.min[0] + margin_m
            && x < self.max[0] - margin_m
            && z >= self.min[1] + margin_m
            && z < self.max[1] - margin_m
    }

    /// Distance from `(x, z)` to the rectangle (0 inside).
    pub fn distance(&self, x: f32, z: f32) -> f32 {
        let dx = (self.min[0] - x).max(0.0).max(x - self.max[0]);
        let dz = (self.min[1] - z).max(0.0).max(z - self.max[1]);
        (dx * dx + dz * dz).sqrt()
    }
}

/// Why a set of leaves is not a partition of the world.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuadtreeError {
    /// No leaves at all.
    #[error("a partition needs at least one cell")]
    Empty,
    /// A cell deeper than the partition allows, or with a path outside its level.
    #[error("cell {0} is not a valid partition cell (deepest level {PARTITION_LEVEL_MAX})")]
    BadCell(CellKey),
    /// Two leaves overlap (one contains the other).
    #[error("cells {0} and {1} overlap")]
    Overlap(CellKey, CellKey),
    /// Part of the world is in no leaf.
    #[error("the cells do not cover the whole world")]
    Gap,
    /// The world's bounds are not a finite, positive rectangle.
    #[error("the world's bounds are not a finite, positive rectangle")]
    BadBounds,
}

/// The cells of the world: a quadtree's leaves over fixed world bounds.
#[derive(Clone, Debug, PartialEq)]
pub struct Quadtree {
    origin_m: [f32; 2],
    size_m: [f32; 2],
    leaves: BTreeSet<CellKey>,
}

impl Quadtree {
    /// A tree of all cells at `level` (level 1: four cells in a 2x2 split).
    pub fn uniform(origin_m: [f32; 2], size_m: [f32; 2], level: u8) -> Result<Self, QuadtreeError> {
        let level = level.min(PARTITION_LEVEL_MAX);
        let leaves = (0..(1u64 << (2 * u32::from(level)))).map(|path| CellKey { level, path });
        Self::new(origin_m, size_m, leaves)
    }

    /// A tree with the given leaves, which must cover the world exactly once.
    pub fn new(
        origin_m: [f32; 2],
        size_m: [f32; 2],
        leaves: impl IntoIterator<Item = CellKey>,
    ) -> Result<Self, QuadtreeError> {
        if !(origin_m.iter().chain(&size_m).all(|v| v.is_finite()) && size_m[0] > 0.0 && size_m[1] > 0.0) {
            return Err(QuadtreeError::BadBounds);
        }
        let mut set = BTreeSet::new();
        for c in leaves {
            if c.level > PARTITION_LEVEL_MAX || c.path >= 1u64 << (2 * u32::from(c.level)) || set.len() >= LEAVES_MAX {
                return Err(QuadtreeError::BadCell(c));
            }
            set.insert(c);
        }
        if set.is_empty() {
            return Err(QuadtreeError::Empty);
        }
        // Ranges of finest quadkeys: leaves partition the world exactly when, sorted, each
        // starts where the previous ended, from 0 to the end of the root's range.
        let mut ranges: Vec<(u64, u64, CellKey)> = set
            .iter()
            .map(|c| {
                let (lo, hi) = c.finest_range();
                (lo, hi, *c)
            })
            .collect();
        ranges.sort_unstable();
        let mut next = 0u64;
        let mut prev: Option<CellKey> = None;
        for (lo, hi, c) in ranges {
            if lo < next {
                return Err(QuadtreeError::Overlap(prev.unwrap_or(c), c));
            }
            if lo > next {
                return Err(QuadtreeError::Gap);
            }
            next = hi;
            prev = Some(c);
        }
        if next != CellKey::ROOT.finest_range().1 {
            return Err(QuadtreeError::Gap);
        }
        Ok(Self { origin_m, size_m, leaves: set })
    }

    /// The leaves, in quadkey order.
    pub fn leaves(&self) -> impl Iterator<Item = CellKey> + '_ {
        self.leaves.iter().copied()
    }

    /// Number of leaves.
    pub fn len(&self) -> usize {
        self.leaves.len()
    }

    /// Whether the tree has no leaves (never: a tree has at least one).
    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    /// Whether `cell` is a leaf.
    pub fn is_leaf(&self, cell: CellKey) -> bool {
        self.leaves.contains(&cell)
    }

    /// The world's minimum corner and extent.
    pub fn bounds(&self) -> ([f32; 2], [f32; 2]) {
        (self.origin_m, self.size_m)
    }

    /// The leaf holding `(x, z)` (positions outside the world belong to the nearest edge cell).
    pub fn leaf_at(&self, x: f32, z: f32) -> CellKey {
        let q = CellKey::containing(QUADKEY_LEVEL_MAX, x, z, self.origin_m, self.size_m).path;
        // The leaf whose range starts at or before q: leaves are disjoint and cover everything.
        *self
            .leaves
            .iter()
            .rev()
            .find(|c| c.finest_range().0 <= q)
            .or_else(|| self.leaves.iter().next())
            .unwrap_or(&CellKey::ROOT)
    }

    /// Where a cell lies.
    pub fn rect(&self, cell: CellKey) -> Rect {
        let n = (1u64 << cell.level) as f32;
        let (mut x, mut z) = (0u64, 0u64);
        for bit in 0..u32::from(cell.level) {
            x |= ((cell.path >> (2 * bit)) & 1) << bit;
            z |= ((cell.path >> (2 * bit + 1)) & 1) << bit;
        }
        let w = [self.size_m[0] / n, self.size_m[1] / n];
        let min = [self.origin_m[0] + x as f32 * w[0], self.origin_m[1] + z as f32 * w[1]];
        Rect { min, max: [min[0] + w[0], min[1] + w[1]] }
    }

    /// The leaves other than `cell` within `margin_m` of any point of `cell` (its neighbours for
    /// ghosting, when the margin is the ghost margin).
    pub fn neighbours(&self, cell: CellKey, margin_m: f32) -> Vec<CellKey> {
        let r = self.rect(cell);
        self.leaves
            .iter()
            .copied()
            .filter(|c| *c != cell)
            .filter(|c| {
                let o = self.rect(*c);
                let dx = (o.min[0] - r.max[0]).max(r.min[0] - o.max[0]).max(0.0);
                let dz = (o.min[1] - r.max[1]).max(r.min[1] - o.max[1]).max(0.0);
                dx * dx + dz * dz <= margin_m * margin_m
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ORIGIN: [f32; 2] = [-512.0, -512.0];
    const SIZE: [f32; 2] = [1024.0, 1024.0];

    #[test]
    fn a_2x2_split_has_four_quadrants() {
        let t = Quadtree::uniform(ORIGIN, SIZE, 1).unwrap();
        assert_eq!(t.len(), 4);
        let rects: Vec<Rect> = t.leaves().map(|c| t.rect(c)).collect();
        assert!(rects.contains(&Rect { min: [-512.0, -512.0], max: [0.0, 0.0] }));
        assert!(rects.contains(&Rect { min: [0.0, 0.0], max: [512.0, 512.0] }));
        assert_eq!(t.rect(t.leaf_at(10.0, -10.0)), Rect { min: [0.0, -512.0], max: [512.0, 0.0] });
        // Every quadrant touches the other three at the centre.
        for c in t.leaves() {
            assert_eq!(t.neighbours(c, 0.0).len(), 3);
        }
    }

    #[test]
    fn overlaps_and_gaps_are_refused() {
        let root = CellKey::ROOT;
        let kids = root.children().unwrap();
        assert!(matches!(Quadtree::new(ORIGIN, SIZE, [root, kids[0]]), Err(QuadtreeError::Overlap(..))));
        assert_eq!(Quadtree::new(ORIGIN, SIZE, kids[..3].to_vec()), Err(QuadtreeError::Gap));
        assert_eq!(Quadtree::new(ORIGIN, SIZE, []), Err(QuadtreeError::Empty));
        assert_eq!(Quadtree::new(ORIGIN, [0.0, 1.0], [root]), Err(QuadtreeError::BadBounds));
        assert!(matches!(Quadtree::new(ORIGIN, SIZE, [CellKey { level: 1, path: 4 }]), Err(QuadtreeError::BadCell(_))));
        // A mixed tree: one quadrant split again.
        let mut mixed = vec![kids[1], kids[2], kids[3]];
        mixed.extend(kids[0].children().unwrap());
        assert_eq!(Quadtree::new(ORIGIN, SIZE, mixed).unwrap().len(), 7);
    }

    proptest! {
        #[test]
        fn every_position_is_in_exactly_one_leaf(x in -600.0f32..600.0, z in -600.0f32..600.0, level in 0u8..=4) {
            let t = Quadtree::uniform(ORIGIN, SIZE, level).unwrap();
            let leaf = t.leaf_at(x, z);
            prop_assert!(t.is_leaf(leaf));
            let (cx, cz) = (x.clamp(-512.0, 511.99), z.clamp(-512.0, 511.99));
            let holding: Vec<CellKey> = t.leaves().filter(|c| t.rect(*c).contains(cx, cz, 0.0)).collect();
            prop_assert_eq!(holding, vec![leaf]);
        }
    }
}
