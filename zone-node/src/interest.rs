//! Interest management: which entities a player can see, from an R-tree of positions rebuilt
//! each tick (bulk loading a few thousand points is cheaper than keeping a tree up to date as
//! everything moves).

use rstar::primitives::GeomWithData;
use rstar::{AABB, RTree};

type Point = GeomWithData<[f32; 2], u64>;

/// Entity positions on the ground plane at one tick.
#[derive(Debug, Default)]
pub struct InterestIndex {
    tree: RTree<Point>,
}

impl InterestIndex {
    /// Indexes `(entity id, [x, z])` pairs.
    pub fn build(entities: impl IntoIterator<Item = (u64, [f32; 2])>) -> Self {
        let points: Vec<Point> = entities.into_iter().map(|(id, p)| GeomWithData::new(p, id)).collect();
        Self { tree: RTree::bulk_load(points) }
    }

    /// Entities within `radius_m` of `center` (inclusive), with their squared distance, in no
    /// particular order.
    pub fn within(&self, center: [f32; 2], radius_m: f32) -> impl Iterator<Item = (u64, f32)> + '_ {
        let r2 = radius_m * radius_m;
        let envelope = AABB::from_corners(
            [center[0] - radius_m, center[1] - radius_m],
            [center[0] + radius_m, center[1] + radius_m],
        );
        self.tree.locate_in_envelope(envelope).filter_map(move |p| {
            let [x, z] = *p.geom();
            let d2 = (x - center[0]).powi(2) + (z - center[1]).powi(2);
            (d2 <= r2).then_some((p.data, d2))
        })
    }

    /// Entities indexed.
    pub fn len(&self) -> usize {
        self.tree.size()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.tree.size() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn within_matches_a_linear_scan(
            points in proptest::collection::vec((-500.0f32..500.0, -500.0f32..500.0), 0..200),
            cx in -500.0f32..500.0, cz in -500.0f32..500.0, r in 0.0f32..300.0
        ) {
            let index = InterestIndex::build(points.iter().enumerate().map(|(i, (x, z))| (i as u64, [*x, *z])));
            let mut found: Vec<u64> = index.within([cx, cz], r).map(|(id, _)| id).collect();
            found.sort();
            let expected: Vec<u64> = points.iter().enumerate()
                .filter(|(_, (x, z))| (x - cx).powi(2) + (z - cz).powi(2) <= r * r)
                .map(|(i, _)| i as u64).collect();
            prop_assert_eq!(found, expected);
        }
    }
}
