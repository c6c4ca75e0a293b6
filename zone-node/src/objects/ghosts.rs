//! Neighbours' objects near the border, held as read-only ghosts (`[zobj-6]`): what this zone
//! sends of its own, and how it takes, keeps and releases what its neighbours send.

use super::{OBJECTS_PER_CELL_MAX, ObjectBook, place_record, record_of};
use glam::{Quat, Vec3};
use pwn_sim::{EntityId, Sim};
use pwn_store::objects::ObjectRecord;
use std::collections::BTreeMap;

/// This zone's objects as a neighbour holds them (`[zobj-6]`), grouped by the nodes `near`
/// names for each position (the neighbours whose cells are within the ghost margin).
pub fn ghosts_for(
    sim: &Sim,
    book: &ObjectBook,
    mut near: impl FnMut(Vec3, &mut Vec<u64>),
) -> BTreeMap<u64, Vec<pwn_proto::WireObject>> {
    let mut out: BTreeMap<u64, Vec<pwn_proto::WireObject>> = BTreeMap::new();
    let mut nodes = Vec::new();
    for o in sim.objects() {
        let Some(meta) = book.get(o.id) else { continue };
        near(o.position_m, &mut nodes);
        for node in &nodes {
            out.entry(*node).or_default().push(wire_of(&o, meta.version));
        }
    }
    out
}

/// One object for a neighbour (`None` view: removed).
pub fn wire_of(o: &pwn_sim::ObjectView, version: u64) -> pwn_proto::WireObject {
    pwn_proto::WireObject {
        id: o.id.0,
        state: o.state,
        version,
        removed: false,
        position_m: o.position_m.to_array(),
        rotation: o.rotation.to_array(),
    }
}

/// Ghosts one neighbour may have held here at once (`[zobj-6]`, four cells' worth of objects):
/// a flood of listings never grows this zone's memory or crowds out its own objects beyond it.
pub const GHOSTS_PER_NEIGHBOUR_MAX: usize = 4 * OBJECTS_PER_CELL_MAX;

/// Applies a neighbour's ghosts (`[zobj-6]`): `from` is the sending node; `accept` says whether
/// a position lies in a cell `from` serves and near this zone's cells. Returns how many were
/// refused.
pub fn apply_ghosts(
    sim: &mut Sim,
    book: &mut ObjectBook,
    from: u64,
    g: &pwn_proto::ObjectGhosts,
    accept: impl Fn(Vec3) -> bool,
) -> u32 {
    let mut refused = 0;
    if g.full && g.first {
        // A new listing: whatever an earlier one left half-said does not count.
        book.listing.insert(from, Default::default());
    }
    for o in &g.objects {
        let id = EntityId(o.id);
        let at = Vec3::from(o.position_m);
        if book.meta.contains_key(&id) || !id.is_object() {
            refused += 1;
            continue;
        }
        if !accept(at) {
            // Moved out of reach (or never ours to hold): a ghost of it goes.
            if !o.removed && book.ghosts.get(&id).is_some_and(|(node, _)| *node == from) {
                release_ghost(sim, book, id);
            }
            refused += 1;
            continue;
        }
        if o.removed {
            // Ids are never given again: a removal of a ghost held here is final, whatever
            // arrives late (only those: removals of ids never held cost nothing).
            if book.ghosts.contains_key(&id) {
                release_ghost(sim, book, id);
            } else {
                continue;
            }
            if book.removed.insert(id) {
                book.removed_order.push_back(id);
                while book.removed_order.len() > GHOSTS_PER_NEIGHBOUR_MAX {
                    if let Some(old) = book.removed_order.pop_front() {
                        book.removed.remove(&old);
                    }
                }
            }
            continue;
        }
        if book.removed.contains(&id) {
            continue;
        }
        let held = book.ghosts.get(&id).copied();
        let from_count = book.ghosts_of.get(&from).copied().unwrap_or(0);
        if held.is_none() && from_count >= GHOSTS_PER_NEIGHBOUR_MAX {
            refused += 1;
            continue;
        }
        if g.full {
            let listing = book.listing.entry(from).or_default();
            if listing.len() < GHOSTS_PER_NEIGHBOUR_MAX {
                listing.insert(id);
            }
        }
        // Older than what is held: ignored. The same version from the same node (a listing)
        // still moves it (a dynamic object its owner simulates); from another node (the cell's
        // new owner) it is taken over.
        if held.is_some_and(|(_, v)| v > o.version) {
            continue;
        }
        let kind = id.object_kind().unwrap_or(u16::MAX);
        let r = ObjectRecord {
            state: o.state,
            version: o.version,
            rotation: o.rotation,
            ..record_of(kind, o.state, at, Quat::IDENTITY)
        };
        match place_record(sim, id, &r).and_then(|()| sim.hold_object(id)) {
            Ok(()) => {
                if let Some((before, _)) = book.ghosts.insert(id, (from, o.version)) {
                    count_ghost(book, before, -1);
                }
                count_ghost(book, from, 1);
                sim.clear_object_footprint(id);
            }
            Err(_) => refused += 1,
        }
    }
    if g.full && g.last {
        // The sender's listing is the truth for its cells: ghosts it does not name go, its own
        // and those another node (a dead one, say) sent for cells the sender serves now.
        let listed = book.listing.remove(&from).unwrap_or_default();
        let stale: Vec<EntityId> = book
            .ghosts
            .iter()
            .filter(|(id, (node, _))| {
                !listed.contains(id) && (*node == from || sim.object(**id).is_some_and(|o| accept(o.position_m)))
            })
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            release_ghost(sim, book, id);
        }
    }
    refused
}

/// Takes a ghost out (never one of this zone's own objects).
fn release_ghost(sim: &mut Sim, book: &mut ObjectBook, id: EntityId) {
    if let Some((node, _)) = book.ghosts.remove(&id) {
        count_ghost(book, node, -1);
    }
    if !book.meta.contains_key(&id) {
        sim.remove_object(id);
    }
}

pub(super) fn count_ghost(book: &mut ObjectBook, node: u64, delta: isize) {
    let n = book.ghosts_of.entry(node).or_default();
    *n = n.saturating_add_signed(delta);
    if *n == 0 {
        book.ghosts_of.remove(&node);
    }
}

/// Releases every ghost `node` sent (it left the world server's map).
pub fn drop_ghosts_of(sim: &mut Sim, book: &mut ObjectBook, node: u64) {
    let ids: Vec<EntityId> = book.ghosts.iter().filter(|(_, (n, _))| *n == node).map(|(id, _)| *id).collect();
    for id in ids {
        release_ghost(sim, book, id);
    }
    book.listing.remove(&node);
}

/// Releases every ghost at a position `inside` names (a cell this zone now serves: the store,
/// not a neighbour, says what is there).
pub fn drop_ghosts_in(sim: &mut Sim, book: &mut ObjectBook, inside: impl Fn(Vec3) -> bool) {
    let ids: Vec<EntityId> =
        book.ghosts.keys().filter(|id| sim.object(**id).is_some_and(|o| inside(o.position_m))).copied().collect();
    for id in ids {
        release_ghost(sim, book, id);
    }
}
