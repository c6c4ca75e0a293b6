//! World objects on the two-zone fixture: the world with object kinds, what each zone serves,
//! edits as a zone node makes them, and object ghosts as its shell sends and applies them
//! (`pwn_zone_node::objects` `[zobj-6]`).

use super::{EAST, Pair, WEST, field};
use glam::Vec3;
use pwn_partitioner::{Epoch, ZoneId};
use pwn_proto::{EditObject, EditOp, EditOutcome, ObjectGhosts};
use pwn_sim::object::Editors;
use pwn_sim::{EntityId, ObjectKind, Sim, WorldDesc};
use pwn_store::keys::CellKey;
use pwn_store::objects::Bounds;
use pwn_zone_node::objects::{Serving, commit};
use pwn_zone_node::territory::Territory;

/// Kind 0: a wall anyone may edit.
pub const WALL: u16 = 0;
/// Kind 1: a dynamic block.
pub const BLOCK: u16 = 1;

/// The open field with a wall kind and a dynamic block kind, no crates.
pub fn objects_world() -> WorldDesc {
    let kind = |name: &str, h: [f32; 3], dynamic: bool| ObjectKind {
        name: name.into(),
        half_extents_m: h,
        dynamic,
        density_kgpm3: 60.0,
        states: 1,
        passable_states: vec![],
        editors: Editors::Anyone,
    };
    let kinds = vec![kind("wall", [2.0, 1.5, 0.2], false), kind("block", [0.5, 0.5, 0.5], true)];
    WorldDesc { crates: Vec::new(), object_kinds: kinds, ..field() }
}

/// What one zone of the pair serves.
pub struct Served<'a> {
    pub territory: &'a Territory,
    pub epochs: &'a [(CellKey, ZoneId, Epoch)],
    pub me: ZoneId,
}

impl Serving for Served<'_> {
    fn cell_at(&self, x: f32, z: f32) -> Option<(CellKey, u64)> {
        let leaf = self.territory.tree().leaf_at(x, z);
        self.epochs.iter().find(|(c, n, _)| *c == leaf && *n == self.me).map(|(c, _, e)| (*c, e.0))
    }
    fn objects_in(&self, sim: &Sim, _cell: CellKey) -> usize {
        sim.object_count()
    }
}

/// What `send_object_ghosts` sends `to` from zone `from` (one message).
pub fn ghosts(p: &Pair, from: usize, to: ZoneId, full: bool) -> ObjectGhosts {
    let (zone, territory) = &p.zones[from];
    let mut by_node = zone.object_ghosts_for(|at, out| {
        let mut nodes = Vec::new();
        territory.ghost_targets(at.x, at.z, &mut nodes);
        out.clear();
        out.extend(nodes.iter().map(|n| n.0));
    });
    ObjectGhosts { full, first: true, last: true, objects: by_node.remove(&to.0).unwrap_or_default() }
}

/// EAST applies `g` as its shell does (`mesh_entities.rs`): only positions in cells of
/// `sender`, near EAST's cells.
pub fn east_applies(p: &mut Pair, sender: ZoneId, g: &ObjectGhosts) -> u32 {
    let (zone, territory) = &mut p.zones[1];
    let margin = territory.config().ghost_margin_m;
    let accept = |at: Vec3| {
        let tree = territory.tree();
        territory.owner(tree.leaf_at(at.x, at.z)).is_some_and(|(n, _)| n == sender)
            && tree.leaves().any(|c| {
                territory.owner(c).is_some_and(|(n, _)| n == EAST) && tree.rect(c).distance(at.x, at.z) <= margin
            })
    };
    zone.apply_object_ghosts(sender.0, g, accept)
}

/// Checks, commits and finishes one edit in zone `side` (0 WEST, 1 EAST) as a zone node does.
pub fn edit(p: &mut Pair, side: usize, player: u64, request: u64, op: EditOp) -> (EditOutcome, u64) {
    let me = [WEST, EAST][side];
    let epochs = p.epochs.clone();
    let (zone, territory) = &mut p.zones[side];
    let desc = zone.sim().desc();
    let bounds = Bounds { origin_m: desc.origin_m, size_m: desc.size_m };
    let served = Served { territory, epochs: &epochs, me };
    let v = match zone.check_edit(&served, EntityId(player), &EditObject { request, op }) {
        Ok(v) => v,
        Err(why) => return (why, 0),
    };
    let outcome = commit(&p.store, &v, &bounds);
    let object = zone.finish_edit(&served, &v, &outcome);
    (outcome.map_or_else(|e| e, |_| EditOutcome::Committed), object)
}

/// Zone `side` adopts a handed-over object as its shell does (`[zobj-7]`): the record as the
/// store holds it now, in a cell the zone serves.
pub fn adopt(p: &mut Pair, side: usize, h: &pwn_proto::HandoffObject) -> bool {
    let me = [WEST, EAST][side];
    let stored = p.store.transact(|t| pwn_store::objects::get(t, h.object.id)).unwrap();
    let epochs = p.epochs.clone();
    let (zone, territory) = &mut p.zones[side];
    let serves = |at: Vec3| {
        let leaf = territory.tree().leaf_at(at.x, at.z);
        epochs.iter().any(|(c, n, _)| *c == leaf && *n == me)
    };
    zone.arrive_object(h, stored.as_ref(), serves)
}
