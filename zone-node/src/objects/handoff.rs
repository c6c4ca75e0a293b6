//! Dynamic objects the simulation moves into a neighbour's cell (`[zobj-7]`): the owner holds
//! the object still where it left, commits the change of hands in one store transaction fenced
//! by both cells' leases and its version (`pwn_store::objects::move_across`), then takes it out
//! and tells the taking zone, which adopts it as its own. Exactly once: the store holds one
//! record, in the taking cell's index, and only the zone the store names goes on simulating it.
//! A refused commit lets the object move again here and tries later.

use super::{ObjectBook, ObjectMeta, place_record};
use crate::territory::{Placement, Territory};
use glam::Vec3;
use pwn_proto::{EditOutcome, HandoffObject, WireCell};
use pwn_sim::{EntityId, Sim};
use pwn_store::keys::CellKey;
use pwn_store::objects::{Bounds, EditError, ObjectRecord};

/// Ticks a refused departure waits before the object may try again (a second at 30 Hz).
pub const DEPARTURE_RETRY_TICKS: u64 = 30;

/// A dynamic object leaving for another zone's cell.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct ObjectDeparture {
    /// The object.
    pub id: EntityId,
    /// The version this zone holds it at.
    pub version: u64,
    /// Position, rotation, linear and angular velocity as it left.
    pub motion: ([f32; 3], [f32; 4], [f32; 3], [f32; 3]),
    /// The taking cell and its lease epoch (the world server's map).
    pub to: (CellKey, u64),
    /// The zone serving it.
    pub node: u64,
}

/// This zone's dynamic objects now in another zone's cell, past the hysteresis: each is held
/// still and marked departing (`[zobj-7]`).
pub fn border_pass(sim: &mut Sim, book: &mut ObjectBook, territory: &Territory) -> Vec<ObjectDeparture> {
    let tick = sim.tick().0;
    book.retry_at.retain(|_, at| *at > tick);
    let kinds = sim.object_kinds();
    let candidates: Vec<(EntityId, u64)> = sim
        .objects()
        .filter(|o| kinds.get(usize::from(o.kind)).is_some_and(|k| k.dynamic))
        .filter_map(|o| Some((o.id, book.meta.get(&o.id)?.version)))
        .filter(|(id, _)| !book.departing.contains(id) && !book.retry_at.contains_key(id))
        .collect();
    let mut out = Vec::new();
    for (id, version) in candidates {
        let Some(o) = sim.object(id) else { continue };
        let p = o.position_m;
        let Placement::Move { cell, node, epoch } = territory.place(CellKey::ROOT, p.x, p.z) else { continue };
        if node == territory.me() {
            continue;
        }
        let motion = (p.to_array(), o.rotation.to_array(), o.linvel_mps.to_array(), o.angvel_rps.to_array());
        if sim.hold_object(id).is_err() {
            continue;
        }
        book.departing.insert(id);
        out.push(ObjectDeparture { id, version, motion, to: (cell, epoch.0), node: node.0 });
    }
    out
}

/// Commits a departure (`pwn_store::objects` `[obj-5]`): `from_cells` are this zone's cells
/// with their epochs.
pub fn commit_departure(
    store: &pwn_store::Store,
    d: &ObjectDeparture,
    from_cells: &[(CellKey, u64)],
    bounds: &Bounds,
) -> Result<ObjectRecord, EditOutcome> {
    let result =
        store.transact(|t| pwn_store::objects::move_across(t, d.id.0, d.version, d.motion, from_cells, d.to, bounds));
    result.map_err(|e| match e {
        EditError::Stale => EditOutcome::Stale,
        EditError::Missing => EditOutcome::Missing,
        EditError::NotAllowed | EditError::PlayerFull | EditError::IdTaken => EditOutcome::NotAllowed,
        EditError::Store(e) => {
            tracing::warn!(object = %d.id, error = %e, "object departure not committed");
            EditOutcome::StoreFailed
        }
    })
}

/// A departure's outcome: committed, the object leaves this zone and the message for its new
/// zone is returned; refused, it moves here again and retries later.
pub fn departed(
    sim: &mut Sim,
    book: &mut ObjectBook,
    d: &ObjectDeparture,
    result: &Result<ObjectRecord, EditOutcome>,
) -> Option<HandoffObject> {
    if !book.departing.remove(&d.id) {
        return None;
    }
    match result {
        Ok(r) => {
            sim.remove_object(d.id);
            book.meta.remove(&d.id);
            let object = pwn_proto::WireObject {
                id: d.id.0,
                state: r.state,
                version: r.version,
                removed: false,
                position_m: r.position_m,
                rotation: r.rotation,
            };
            let to_cell = WireCell { level: d.to.0.level, path: d.to.0.path };
            Some(HandoffObject {
                object,
                owner: r.owner,
                linvel_mps: r.linvel_mps,
                angvel_rps: r.angvel_rps,
                to_cell,
                to_epoch: d.to.1,
            })
        }
        Err(EditOutcome::StoreFailed) => {
            // It may have committed (an unknown outcome): held where it left, it tries again
            // with the same state, which the store answers as done if it was.
            book.retry_at.insert(d.id, sim.tick().0 + DEPARTURE_RETRY_TICKS);
            None
        }
        Err(why) => {
            tracing::debug!(object = %d.id, ?why, "object departure refused; it stays here for now");
            let _ = sim.free_object(d.id);
            book.retry_at.insert(d.id, sim.tick().0 + DEPARTURE_RETRY_TICKS);
            None
        }
    }
}

/// A neighbour handed this zone an object it now owns: adopted only as the store holds it
/// (`stored`, read after the message came: the same version, in a cell `serves` says is this
/// zone's), so a replayed or forged message adopts nothing. It replaces any ghost of it and is
/// simulated here from the state it left at.
pub fn arrive(
    sim: &mut Sim,
    book: &mut ObjectBook,
    h: &HandoffObject,
    stored: Option<&ObjectRecord>,
    serves: impl Fn(Vec3) -> bool,
) -> bool {
    let id = EntityId(h.object.id);
    let Some(kind) = id.object_kind() else { return false };
    let Some(s) = stored else { return false };
    if s.version != h.object.version || s.kind != kind || !serves(Vec3::from(s.position_m)) {
        return false;
    }
    if book.meta.get(&id).is_some_and(|m| m.version >= h.object.version) {
        return false;
    }
    if let Some((node, _)) = book.ghosts.remove(&id) {
        super::count_ghost(book, node, -1);
        sim.remove_object(id);
    }
    if place_record(sim, id, s).is_err() {
        return false;
    }
    let _ = sim.free_object(id);
    book.meta.insert(id, ObjectMeta { owner: s.owner, version: s.version });
    true
}
