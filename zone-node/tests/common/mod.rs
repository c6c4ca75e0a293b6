//! The two-zone fixture of the border tests: WEST leases the cells with x < 0, EAST the others,
//! over one in-memory store; each zone loads its cells' crates as a zone node does when it
//! gains them.

// Each test binary uses part of it.
#![allow(dead_code)]

pub mod objects;

use glam::Vec3;
use pwn_partitioner::{Epoch, Quadtree, ZoneId};
use pwn_sim::{CrateDesc, EntityId, Sim, SimConfig, WorldDesc};
use pwn_store::keys::CellKey;
use pwn_store::{MemoryBackend, Store};
use pwn_zone_node::persist::{PlayerState, load_cell_crates};
use pwn_zone_node::territory::{BorderConfig, Territory};
use pwn_zone_node::zone::{Zone, ZoneConfig};
use std::sync::Arc;

pub const WEST: ZoneId = ZoneId(1);
pub const EAST: ZoneId = ZoneId(2);

/// An open field with one crate just west of the border at x = 0.
pub fn field() -> WorldDesc {
    let crates = vec![CrateDesc { center_m: [-6.0, 0.5, 100.0], half_extents_m: [0.5; 3], density_kgpm3: 100.0 }];
    WorldDesc { boxes: Vec::new(), crates, ..WorldDesc::arena() }
}

pub struct Pair {
    pub store: Store,
    pub zones: [(Zone, Territory); 2],
    pub epochs: Vec<(CellKey, ZoneId, Epoch)>,
    pub placed: Vec<(EntityId, Vec3)>,
}

impl Pair {
    pub fn epoch_of(&self, c: CellKey) -> u64 {
        self.epochs.iter().find(|(k, _, _)| *k == c).map(|(_, _, e)| e.0).unwrap()
    }
}

/// Two zones over one store, each with its cells' crates loaded.
pub fn pair(desc: WorldDesc) -> Pair {
    let store = Store::new(Arc::new(MemoryBackend::new()));
    let tree = Quadtree::uniform(desc.origin_m, desc.size_m, 1).unwrap();
    let epochs: Vec<(CellKey, ZoneId, Epoch)> = tree
        .leaves()
        .map(|c| {
            let node = if tree.rect(c).min[0] < 0.0 { WEST } else { EAST };
            let lease = store.transact(|t| pwn_store::fence::grant_lease(t, c, node.0)).unwrap();
            (c, node, Epoch(lease.epoch))
        })
        .collect();
    let placed: Vec<(EntityId, Vec3)> = desc
        .crates
        .iter()
        .enumerate()
        .map(|(i, c)| (EntityId::world_entity(i as u32), Vec3::from(c.center_m)))
        .collect();
    let zones = [WEST, EAST].map(|me| {
        let mut t = Territory::new(tree.clone(), me, BorderConfig::default());
        t.set_owners(epochs.iter().copied());
        let mut z = Zone::new(Sim::new(desc.clone(), SimConfig::default(), 1).unwrap(), ZoneConfig::default());
        z.partition_crates();
        for (cell, node, epoch) in &epochs {
            if *node == me {
                let crates = load_cell_crates(&store, *cell, epoch.0, tree.rect(*cell), &placed).unwrap();
                z.own_crates(*cell, &crates, 0);
            }
        }
        (z, t)
    });
    Pair { store, zones, epochs, placed }
}

/// Places player `id` in `zone` at `at`, owned by the leaf it stands in.
pub fn place(zone: &mut Zone, territory: &Territory, id: u64, at: [f32; 3]) {
    let state = PlayerState { id: EntityId(id), position: at.into(), yaw_rad: 0.0, health: 100 };
    zone.join_at(EntityId(id), state.character(zone.sim().config())).unwrap();
    zone.set_player_cell(EntityId(id), territory.tree().leaf_at(at[0], at[2]));
}
