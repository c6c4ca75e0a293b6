//! What of the server's view the predicted world holds (`[game-8]`, `[game-12]`, `[game-15]`):
//! crates and world objects at the poses snapshots show, and the other characters near the player, carried forward by their
//! velocity to the tick being predicted. The client never simulates them; they are there so the
//! player's own predicted movement meets them as the server's does.

use crate::predict::Predictor;
use pwn_proto::delta::{EntityState, View};
use pwn_sim::EntityId;
use pwn_sim::ids::{OBJECT_ID_BASE, PROJECTILE_ID_BASE, WORLD_ENTITY_ID_BASE};
use pwn_sim::quantize::{dequantize_position, dequantize_rotation, dequantize_velocity};
use std::collections::{BTreeMap, BTreeSet};

/// Crates whose last mirrored state is remembered (`[game-8]`).
pub const MIRRORED_CRATES_MAX: usize = 100_000;
/// Other characters within this distance of the player are placed in the world it predicts
/// against (`[game-12]`): a character runs 0.2 m a tick, so this covers contacts for more than a
/// round trip's worth of ticks.
pub const MIRROR_CHARACTERS_WITHIN_M: f32 = 8.0;

/// World objects held in the predicted world at once (`[game-15]`).
pub const MIRRORED_OBJECTS_MAX: usize = 100_000;

/// The mirrored part of one predicted world; start a new one with each new predictor.
#[derive(Clone, Debug, Default)]
pub struct Mirror {
    crates: BTreeMap<u64, EntityState>,
    objects: BTreeMap<u64, EntityState>,
    characters: BTreeSet<u64>,
}

impl Mirror {
    /// Brings `p`'s world in line with `view` (the newest snapshot's), other characters moved on
    /// by `ahead_s` seconds of their velocity.
    pub fn follow(&mut self, p: &mut Predictor, view: &View, me: EntityId, ahead_s: f32) {
        self.follow_objects(p, view);
        for (id, e) in view.range(WORLD_ENTITY_ID_BASE..OBJECT_ID_BASE) {
            if self.crates.get(id) != Some(e) && self.crates.len() < MIRRORED_CRATES_MAX {
                p.mirror_crate(EntityId(*id), dequantize_position(e.position), dequantize_rotation(e.rotation));
                self.crates.insert(*id, *e);
            }
        }
        let mut near = BTreeSet::new();
        // Dead (not in its own view), the player meets nobody.
        if let Some(here) = view.get(&me.0).map(|o| dequantize_position(o.position)) {
            for (id, e) in view.range(0..WORLD_ENTITY_ID_BASE).filter(|(id, _)| **id != me.0) {
                let (at, v) = (dequantize_position(e.position), dequantize_velocity(e.velocity));
                if at.distance(here) <= MIRROR_CHARACTERS_WITHIN_M
                    && p.mirror_character(EntityId(*id), at + v * ahead_s, v)
                {
                    near.insert(*id);
                }
            }
        }
        for gone in self.characters.difference(&near) {
            p.forget_character(EntityId(*gone));
        }
        self.characters = near;
    }

    /// `[game-15]`: world objects in view are in the predicted world as the server has them
    /// (kind from the id, state in the health field), so walking into a wall placed a moment
    /// ago stops the prediction where it stops the server; objects that left the view leave it.
    fn follow_objects(&mut self, p: &mut Predictor, view: &View) {
        let gone: Vec<u64> = self.objects.keys().filter(|id| !view.contains_key(id)).copied().collect();
        for id in gone {
            p.forget_object(EntityId(id));
            self.objects.remove(&id);
        }
        for (id, e) in view.range(OBJECT_ID_BASE..PROJECTILE_ID_BASE) {
            let held = self.objects.get(id);
            if held == Some(e) || (held.is_none() && self.objects.len() >= MIRRORED_OBJECTS_MAX) {
                continue;
            }
            let state = e.health;
            if p.mirror_object(EntityId(*id), dequantize_position(e.position), dequantize_rotation(e.rotation), state) {
                self.objects.insert(*id, *e);
            }
        }
    }
}
