//! The scene as character movement sees it: static boxes and crates in two bounding volume
//! trees of our own, and the ground as an exact plane.
//!
//! Rapier's broad phase also holds every character's capsule; a shape cast through it visits
//! those leaves only to filter them out, and with thousands of characters that traversal is most
//! of the cost. Characters keep apart through the neighbour grid instead, so movement queries
//! use trees without them: one built once over static geometry, one rebuilt each tick over the
//! crates (few, and the only scene objects that move). The ground plane is solved in closed form.

use glam::Vec3;
use rapier3d::parry::partitioning::{Bvh, BvhBuildStrategy};
use rapier3d::parry::query::{QueryDispatcher, ShapeCastOptions};
use rapier3d::prelude::*;

/// The first thing a cast shape touches.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Contact {
    /// The collider touched; `None` for the ground plane.
    pub collider: Option<ColliderHandle>,
    /// Fraction of the motion travelled before touching (0..=1).
    pub toi: f32,
    /// Outward normal of what was touched, world space.
    pub normal: Vec3,
    /// Contact point on what was touched, world space.
    pub point: Vec3,
}

/// Movement's view of the scene. Scratch space derived from the physics world, not state.
#[derive(Default)]
pub(crate) struct SceneIndex {
    static_tree: Bvh,
    crate_tree: Bvh,
    ground_y_m: f32,
}

impl std::fmt::Debug for SceneIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SceneIndex").field("ground_y_m", &self.ground_y_m).finish_non_exhaustive()
    }
}

/// Leaves below which the tree is built by insertion: parry 0.31's bulk build ignores the
/// given leaf indices when it has only one or two leaves.
const BULK_BUILD_LEAVES_MIN: usize = 3;

fn tree_of(colliders: &ColliderSet, handles: &[ColliderHandle]) -> Bvh {
    let leaves: Vec<(usize, rapier3d::parry::bounding_volume::Aabb)> = handles
        .iter()
        .filter_map(|h| colliders.get(*h).map(|c| (h.into_raw_parts().0 as usize, c.compute_aabb())))
        .collect();
    if leaves.len() >= BULK_BUILD_LEAVES_MIN {
        return Bvh::from_iter(BvhBuildStrategy::Binned, leaves);
    }
    let mut tree = Bvh::new();
    for (index, aabb) in leaves {
        tree.insert(aabb, index as u32);
    }
    tree
}

impl SceneIndex {
    /// Indexes the static colliders (never rebuilt) over a ground plane at `ground_y_m`.
    pub fn new(colliders: &ColliderSet, statics: &[ColliderHandle], ground_y_m: f32) -> Self {
        Self { static_tree: tree_of(colliders, statics), crate_tree: Bvh::new(), ground_y_m }
    }

    /// Re-indexes the crates where they are now.
    pub fn refresh_crates(&mut self, colliders: &ColliderSet, crates: &[ColliderHandle]) {
        self.crate_tree = tree_of(colliders, crates);
    }

    /// Casts `shape` (whose lowest point is `bottom_m` below `from`) along `motion`, stopping
    /// `target_m` short of contact; the nearest contact over ground, static boxes and crates.
    #[allow(clippy::too_many_arguments)]
    pub fn cast(
        &self,
        dispatcher: &dyn QueryDispatcher,
        bodies: &RigidBodySet,
        colliders: &ColliderSet,
        shape: &dyn Shape,
        bottom_m: f32,
        from: Vec3,
        motion: Vec3,
        target_m: f32,
    ) -> Option<Contact> {
        let mut best = self.ground_contact(bottom_m, from, motion, target_m);
        let opts = ShapeCastOptions {
            max_time_of_impact: best.map_or(1.0, |c| c.toi),
            target_distance: target_m,
            stop_at_penetration: false,
            compute_impact_geometry_on_penetration: true,
        };
        let pose = Pose::from_translation(from);
        for bvh in [&self.static_tree, &self.crate_tree] {
            if bvh.is_empty() {
                continue;
            }
            let query = QueryPipeline { dispatcher, bvh, bodies, colliders, filter: QueryFilter::default() };
            if let Some((h, hit)) = query.cast_shape(&pose, motion, shape, opts)
                && best.is_none_or(|b| hit.time_of_impact < b.toi)
            {
                best = Some(Contact {
                    collider: Some(h),
                    toi: hit.time_of_impact,
                    normal: hit.normal1,
                    point: hit.witness1,
                });
            }
        }
        best
    }

    /// Contact with the ground plane, in closed form.
    fn ground_contact(&self, bottom_m: f32, from: Vec3, motion: Vec3, target_m: f32) -> Option<Contact> {
        if motion.y >= 0.0 {
            return None;
        }
        let clearance = from.y - bottom_m - self.ground_y_m - target_m;
        let toi = (clearance / -motion.y).max(0.0);
        (toi <= 1.0).then(|| Contact {
            collider: None,
            toi,
            normal: Vec3::Y,
            point: Vec3::new(from.x + motion.x * toi, self.ground_y_m, from.z + motion.z * toi),
        })
    }
}
