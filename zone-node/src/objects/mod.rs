//! World objects in a zone: players' edits are validated here against the simulation, committed
//! by a worker beside the tick as one store transaction each (`pwn_store::objects`), fenced by
//! the lease of every cell they touch, and only then applied to the simulation, where players
//! near the object see it in their next snapshot.
//!
//! Rules:
//! - `[zobj-1]` an edit is checked before it is queued: the player is here and alive; the kind,
//!   state and pose are ones objects can have; where the object is (and, for a move, where it
//!   goes) is within [`REACH_M`] of the player and in a cell this zone serves; a placement,
//!   move or closing leaves nothing overlapping it; the cell holds fewer than
//!   [`OBJECTS_PER_CELL_MAX`]; an owner-only kind is changed by its owner only. A refusal names
//!   its reason (`pwn_proto::EditOutcome`) and is counted;
//! - `[zobj-2]` a player makes at most [`EDITS_PER_S`] edits a second (bursts of
//!   [`EDIT_BURST`]) and has at most [`PENDING_PER_PLAYER_MAX`] waiting; all players together at
//!   most [`QUEUE_MAX`]; beyond, the request is refused (`RateLimited`, `Busy`);
//! - `[zobj-3]` the transaction reads the lease of every cell the edit touches, the object's
//!   version and the player's last request (`pwn_store::objects` `[obj-1]` to `[obj-3]`): a zone
//!   that lost its cell commits nothing, and of two edits of one object exactly one commits;
//! - `[zobj-4]` the simulation changes only after the commit, so nobody sees an edit the store
//!   may not have; every request is answered once (`EditDone`). Until then the edit holds the
//!   space it claims and its object: a later edit overlapping that space is `Blocked`, a later
//!   edit of that object `Busy`. A committed edit whose cell this zone no longer serves is not
//!   applied (its new owner loads it); a character standing where an object was committed (it
//!   walked in meanwhile) is moved out sideways; a retry that finds its edit already committed
//!   applies the record the store holds now;
//! - `[zobj-5]` a zone loading a cell places every object the store indexes in it; checkpoints
//!   write dynamic objects' motion only at the version the simulation holds (`[obj-4]`);
//! - `[zobj-6]` in a partitioned world a zone holds its neighbours' objects within the ghost
//!   margin of its cells as ghosts, read-only (its players see them and collide with them): the
//!   owner sends each committed edit near a border at once, and every few seconds a full listing
//!   (ghosts it no longer names are released); a ghost only moves to a newer version, only from
//!   the zone serving the cell it is in, only near this zone's cells, and is never edited,
//!   checkpointed or loaded as this zone's own;
//! - `[zobj-7]` a dynamic object the simulation moves into another zone's cell (past the
//!   hysteresis) changes hands exactly once (`handoff`).

use glam::{Quat, Vec3};
use pwn_proto::{EditObject, EditOp, EditOutcome};
use pwn_sim::object::Editors;
use pwn_sim::quantize::{dequantize_position, dequantize_rotation, dequantize_yaw, quantize_rotation};
use pwn_sim::{EntityId, Sim};
use pwn_store::keys::CellKey;
use pwn_store::objects::{Bounds, EditDone, EditError, ObjectRecord, StoreEdit};
use std::collections::BTreeMap;

mod ghosts;
mod handoff;
use ghosts::count_ghost;
pub use ghosts::{GHOSTS_PER_NEIGHBOUR_MAX, apply_ghosts, drop_ghosts_in, drop_ghosts_of, ghosts_for, wire_of};
pub use handoff::{DEPARTURE_RETRY_TICKS, ObjectDeparture, arrive, border_pass, commit_departure, departed};

/// Farthest a player may be from where an object is, or is to be.
pub const REACH_M: f32 = 8.0;
/// Most objects one cell holds.
pub const OBJECTS_PER_CELL_MAX: usize = 4_096;
/// Most objects one player owns, across the world.
pub const OBJECTS_PER_PLAYER_MAX: u32 = 256;
/// Edits a player may make per second.
pub const EDITS_PER_S: f32 = 5.0;
/// Edits a player may make at once after a pause.
pub const EDIT_BURST: f32 = 10.0;
/// Edits waiting for the store, all players together.
pub const QUEUE_MAX: usize = 1_024;
/// Edits one player may have waiting.
pub const PENDING_PER_PLAYER_MAX: u8 = 8;
/// Metric: edits committed.
pub const EDITS_METRIC: &str = "pwn_zone_object_edits_total";
/// Metric: edits refused, by reason.
pub const REFUSED_METRIC: &str = "pwn_zone_object_edits_refused_total";
/// Metric: time an edit's store transaction took (milliseconds).
pub const TXN_MS_METRIC: &str = "pwn_zone_object_txn_ms";

/// What the zone knows of an object besides what the simulation holds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The player who placed it.
    pub owner: u64,
    /// The store version the simulation's copy is at.
    pub version: u64,
}

/// The space an object takes: its box's half extents and pose.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Footprint {
    /// Half extents of the box.
    pub half_extents_m: Vec3,
    /// Centre.
    pub position_m: Vec3,
    /// Orientation.
    pub rotation: Quat,
}

impl Footprint {
    fn overlaps(&self, other: &Footprint) -> bool {
        let a = (self.half_extents_m, self.position_m, self.rotation);
        pwn_sim::object::boxes_overlap(a, (other.half_extents_m, other.position_m, other.rotation))
    }
}

/// An edit waiting for the store (`[zobj-4]`).
#[derive(Clone, Debug, PartialEq)]
struct Reservation {
    id: u64,
    object: Option<EntityId>,
    footprint: Option<Footprint>,
}

/// The objects of a zone: who owns each and at which version the simulation holds it, and the
/// edits waiting for the store.
#[derive(Clone, Debug, Default)]
pub struct ObjectBook {
    meta: BTreeMap<EntityId, ObjectMeta>,
    reserved: Vec<Reservation>,
    /// The last reservation's id.
    last_reservation: u64,
    /// Neighbours' objects held here (`[zobj-6]`): the node that sent each, and its version.
    ghosts: BTreeMap<EntityId, (u64, u64)>,
    /// Full listings being received, per sending node.
    listing: BTreeMap<u64, std::collections::BTreeSet<EntityId>>,
    /// Objects neighbours said were removed, newest last (bounded), so a late copy of one is
    /// not held again.
    removed: std::collections::BTreeSet<EntityId>,
    removed_order: std::collections::VecDeque<EntityId>,
    /// Ghosts held per sending node.
    ghosts_of: BTreeMap<u64, usize>,
    /// Objects whose change of hands is being committed (`[zobj-7]`).
    departing: std::collections::BTreeSet<EntityId>,
    /// Objects whose departure was refused, and the tick they may try again.
    retry_at: BTreeMap<EntityId, u64>,
}

impl ObjectBook {
    /// Neighbours' objects held as ghosts.
    pub fn ghost_count(&self) -> usize {
        self.ghosts.len()
    }

    /// Whether `id` is a neighbour's object held here.
    pub fn is_ghost(&self, id: EntityId) -> bool {
        self.ghosts.contains_key(&id)
    }

    /// Edits waiting for the store.
    pub fn pending(&self) -> usize {
        self.reserved.len()
    }

    fn busy(&self, id: EntityId) -> bool {
        self.reserved.iter().any(|r| r.object == Some(id))
    }

    fn claimed(&self, f: &Footprint) -> bool {
        self.reserved.iter().filter_map(|r| r.footprint.as_ref()).any(|r| r.overlaps(f))
    }

    /// One object's owner and version.
    pub fn get(&self, id: EntityId) -> Option<ObjectMeta> {
        self.meta.get(&id).copied()
    }

    /// Objects known.
    pub fn len(&self) -> usize {
        self.meta.len()
    }

    /// Whether none are known.
    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }
}

/// An edit checked against `[zobj-1]`, ready for the store.
#[derive(Clone, Debug, PartialEq)]
pub struct Validated {
    /// Who asked.
    pub player: EntityId,
    /// The player's request number.
    pub request: u64,
    /// What to write.
    pub edit: StoreEdit,
    /// Every cell the edit touches, with the lease epoch this zone holds it at.
    pub fences: Vec<(CellKey, u64)>,
    /// What was asked.
    pub op: EditOp,
    /// The space the object will take, when the edit makes it solid somewhere.
    pub footprint: Option<Footprint>,
    /// What it holds until it is finished (`[zobj-4]`; 0 before `reserve`).
    pub reservation: u64,
}

/// What the zone serves: the cell (and its lease epoch) holding a point, if this zone serves
/// it, and how many objects that cell holds.
pub trait Serving {
    /// The cell holding `(x, z)` and its epoch, if served here.
    fn cell_at(&self, x: f32, z: f32) -> Option<(CellKey, u64)>;
    /// Objects in the simulation inside `cell`.
    fn objects_in(&self, sim: &Sim, cell: CellKey) -> usize;
}

/// A zone holding the whole world: one cell, every object in it.
#[derive(Copy, Clone, Debug)]
pub struct WholeWorld {
    /// The cell and its epoch.
    pub cell: (CellKey, u64),
}

impl Serving for WholeWorld {
    fn cell_at(&self, _x: f32, _z: f32) -> Option<(CellKey, u64)> {
        Some(self.cell)
    }
    fn objects_in(&self, sim: &Sim, _cell: CellKey) -> usize {
        sim.object_count()
    }
}

fn upright(yaw: u16) -> Quat {
    dequantize_rotation(quantize_rotation(Quat::from_rotation_y(dequantize_yaw(yaw))))
}

fn record_of(kind: u16, state: u16, position: Vec3, rotation: Quat) -> ObjectRecord {
    ObjectRecord {
        kind,
        state,
        owner: 0,
        position_m: position.to_array(),
        rotation: rotation.to_array(),
        linvel_mps: [0.0; 3],
        angvel_rps: [0.0; 3],
        version: 0,
    }
}

/// Checks `req` from `player` against `[zobj-1]`.
pub fn check(
    sim: &Sim,
    book: &ObjectBook,
    serving: &dyn Serving,
    player: EntityId,
    req: &EditObject,
) -> Result<Validated, EditOutcome> {
    let me = match sim.character(player) {
        Some(c) if c.alive() && !sim.is_ghost(player) => c.position_m,
        _ => return Err(EditOutcome::OutOfReach),
    };
    let near = |p: Vec3| p.distance(me) <= REACH_M;
    let served = |p: Vec3| serving.cell_at(p.x, p.z).ok_or(EditOutcome::OutOfBounds);
    let kinds = sim.object_kinds();
    let footprint = |kind: u16, position_m: Vec3, rotation: Quat| Footprint {
        half_extents_m: Vec3::from(kinds[usize::from(kind)].half_extents_m),
        position_m,
        rotation,
    };
    let free = |kind: u16, at: Vec3, rotation: Quat, ignore: Option<EntityId>| {
        let f = footprint(kind, at, rotation);
        match sim.object_blocked(kind, at, rotation, ignore).is_some() || book.claimed(&f) {
            true => Err(EditOutcome::Blocked),
            false => Ok(f),
        }
    };
    let done = |edit: StoreEdit, fences: Vec<(CellKey, u64)>, footprint: Option<Footprint>| {
        let mut fences = fences;
        fences.dedup();
        Ok(Validated { player, request: req.request, edit, fences, op: req.op, footprint, reservation: 0 })
    };
    if let EditOp::Place { kind, position, yaw, state } = req.op {
        let k = kinds.get(usize::from(kind)).ok_or(EditOutcome::Invalid)?;
        if state >= k.states {
            return Err(EditOutcome::Invalid);
        }
        let at = dequantize_position(position);
        if !sim.desc().contains_xz(at.x, at.z) || at.y.abs() > 4096.0 {
            return Err(EditOutcome::OutOfBounds);
        }
        if !near(at) {
            return Err(EditOutcome::OutOfReach);
        }
        let cell = served(at)?;
        if serving.objects_in(sim, cell.0) >= OBJECTS_PER_CELL_MAX {
            return Err(EditOutcome::CellFull);
        }
        let rotation = upright(yaw);
        let claims = if k.solid_in(state) { Some(free(kind, at, rotation, None)?) } else { None };
        let edit =
            StoreEdit::Place { record: record_of(kind, state, at, rotation), per_player_max: OBJECTS_PER_PLAYER_MAX };
        return done(edit, vec![cell], claims);
    }
    let id = EntityId(req.op.object().unwrap_or(0));
    let (Some(now), Some(meta)) = (sim.object(id), book.get(id)) else { return Err(EditOutcome::Missing) };
    if book.busy(id) {
        return Err(EditOutcome::Busy);
    }
    let k = &kinds[usize::from(now.kind)];
    let owner_only = k.editors == Editors::Owner;
    if owner_only && meta.owner != player.0 {
        return Err(EditOutcome::NotAllowed);
    }
    if !near(now.position_m) {
        return Err(EditOutcome::OutOfReach);
    }
    let here = served(now.position_m)?;
    let expect_version = meta.version;
    match req.op {
        EditOp::Place { .. } => Err(EditOutcome::Invalid),
        EditOp::Move { position, yaw, .. } => {
            let to = dequantize_position(position);
            if !sim.desc().contains_xz(to.x, to.z) || to.y.abs() > 4096.0 {
                return Err(EditOutcome::OutOfBounds);
            }
            if !near(to) {
                return Err(EditOutcome::OutOfReach);
            }
            let there = served(to)?;
            if there.0 != here.0 && serving.objects_in(sim, there.0) >= OBJECTS_PER_CELL_MAX {
                return Err(EditOutcome::CellFull);
            }
            let rotation = upright(yaw);
            let claims = if k.solid_in(now.state) { Some(free(now.kind, to, rotation, Some(id))?) } else { None };
            let record = record_of(now.kind, now.state, to, rotation);
            done(StoreEdit::Update { id: id.0, expect_version, record, owner_only }, vec![here, there], claims)
        }
        EditOp::SetState { state, .. } => {
            if state >= k.states {
                return Err(EditOutcome::Invalid);
            }
            let closing = !k.solid_in(now.state) && k.solid_in(state);
            let claims = if closing { Some(free(now.kind, now.position_m, now.rotation, Some(id))?) } else { None };
            let record = ObjectRecord {
                linvel_mps: now.linvel_mps.to_array(),
                angvel_rps: now.angvel_rps.to_array(),
                ..record_of(now.kind, state, now.position_m, now.rotation)
            };
            done(StoreEdit::Update { id: id.0, expect_version, record, owner_only }, vec![here], claims)
        }
        EditOp::Remove { .. } => done(StoreEdit::Remove { id: id.0, expect_version, owner_only }, vec![here], None),
    }
}

/// Commits a validated edit in one transaction fenced by its cells' leases (`[zobj-3]`).
pub fn commit(store: &pwn_store::Store, v: &Validated, bounds: &Bounds) -> Result<EditDone, EditOutcome> {
    let kind_of = |edit: &StoreEdit| match edit {
        StoreEdit::Place { record, .. } => record.kind,
        _ => 0,
    };
    let kind = kind_of(&v.edit);
    let outcome = store.transact(|t| {
        for (cell, epoch) in &v.fences {
            pwn_store::fence::check_lease(t, *cell, *epoch)?;
        }
        pwn_store::objects::edit_once(t, v.player.0, v.request, &v.edit, bounds, |serial| {
            (serial < pwn_sim::ids::OBJECT_SERIAL_LIMIT).then(|| EntityId::object(serial, kind).0)
        })
    });
    outcome.map_err(|e| match e {
        EditError::Stale => EditOutcome::Stale,
        EditError::Missing => EditOutcome::Missing,
        EditError::NotAllowed => EditOutcome::NotAllowed,
        EditError::PlayerFull => EditOutcome::PlayerFull,
        EditError::IdTaken => {
            tracing::error!(player = %v.player, "no free object id (the serial counter is behind the objects)");
            EditOutcome::StoreFailed
        }
        EditError::Store(e) => {
            tracing::warn!(player = %v.player, request = v.request, error = %e, "object edit not committed");
            EditOutcome::StoreFailed
        }
    })
}

/// Holds the space and object of a validated edit until it is finished (`[zobj-4]`).
pub fn reserve(book: &mut ObjectBook, v: &mut Validated) {
    let object = v.op.object().map(EntityId);
    book.last_reservation += 1;
    v.reservation = book.last_reservation;
    book.reserved.push(Reservation { id: v.reservation, object, footprint: v.footprint });
}

/// Finishes an edit (`[zobj-4]`): releases what it held and, once committed, puts the store's
/// record into the simulation if this zone serves where it is. Returns the object it was about
/// (0 for a refused placement).
pub fn finish(
    sim: &mut Sim,
    book: &mut ObjectBook,
    serving: &dyn Serving,
    v: &Validated,
    outcome: &Result<EditDone, EditOutcome>,
) -> u64 {
    book.reserved.retain(|r| r.id != v.reservation);
    let (id, record) = match *outcome {
        Err(_) => return v.op.object().unwrap_or(0),
        Ok(EditDone::Applied { id, record } | EditDone::AlreadyDone { id, record }) => (EntityId(id), record),
    };
    let held = book.meta.get(&id).map(|m| m.version);
    let Some(r) = record else {
        if held.is_some() {
            sim.remove_object(id);
            book.meta.remove(&id);
        }
        return id.0;
    };
    if held.is_some_and(|version| version >= r.version) {
        return id.0;
    }
    if serving.cell_at(r.position_m[0], r.position_m[2]).is_none() {
        // Not ours (any more): whoever serves the cell loads it from the store.
        sim.remove_object(id);
        book.meta.remove(&id);
        return id.0;
    }
    if let Some((node, _)) = book.ghosts.remove(&id) {
        // A neighbour's ghost under this id (planted, or stale): this zone's own object wins.
        count_ghost(book, node, -1);
        sim.remove_object(id);
    }
    let applied = match (v.op, sim.object(id)) {
        // A state change leaves a moving object where the simulation has it.
        (EditOp::SetState { .. }, Some(_)) => sim.set_object_state(id, r.state),
        _ => place_record(sim, id, &r),
    };
    if let Err(e) = applied {
        // Committed but refused by the simulation: only a world file changed under a running
        // store could do this. The store stays the truth; say so.
        tracing::error!(object = %id, error = %e, "a committed object does not fit the simulation");
    }
    book.meta.insert(id, ObjectMeta { owner: r.owner, version: r.version });
    sim.clear_object_footprint(id);
    id.0
}

/// Places or updates one object in the simulation as its record says.
fn place_record(sim: &mut Sim, id: EntityId, r: &ObjectRecord) -> Result<(), pwn_sim::ObjectRefused> {
    let (p, q) = (Vec3::from(r.position_m), Quat::from_array(r.rotation));
    let (v, w) = (Vec3::from(r.linvel_mps), Vec3::from(r.angvel_rps));
    if sim.object(id).is_none() {
        sim.place_object(id, p, q, r.state)?;
    } else {
        sim.set_object_state(id, r.state)?;
    }
    sim.set_object_motion(id, p, q, v, w)
}

/// Reads `cell`'s objects from the store, page by page (`[zobj-5]`).
pub fn read_cell(store: &pwn_store::Store, cell: CellKey) -> Result<Vec<(u64, ObjectRecord)>, pwn_store::StoreError> {
    let mut out = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let from = after.clone();
        let (page, next) = store.transact(|t| pwn_store::objects::objects_in(t, cell, from.as_deref()))?;
        out.extend(page);
        match next {
            Some(k) => after = Some(k),
            None => return Ok(out),
        }
    }
}

/// Places objects read from the store (`[zobj-5]`); returns how many were placed and how many
/// records were skipped (a kind or pose this world does not allow).
pub fn place_loaded(sim: &mut Sim, book: &mut ObjectBook, records: &[(u64, ObjectRecord)]) -> (u32, u32) {
    let (mut placed, mut skipped) = (0, 0);
    for (id, r) in records {
        let id = EntityId(*id);
        if id.object_kind() != Some(r.kind) || place_record(sim, id, r).is_err() {
            skipped += 1;
            continue;
        }
        book.meta.insert(id, ObjectMeta { owner: r.owner, version: r.version });
        if let Some((node, _)) = book.ghosts.remove(&id) {
            count_ghost(book, node, -1);
        }
        placed += 1;
    }
    (placed, skipped)
}

/// Takes out of the simulation every object `inside` says is in cells no longer served.
pub fn unload(sim: &mut Sim, book: &mut ObjectBook, inside: impl Fn(Vec3) -> bool) -> usize {
    let gone: Vec<EntityId> = sim.objects().filter(|o| inside(o.position_m)).map(|o| o.id).collect();
    for id in &gone {
        sim.remove_object(*id);
        book.meta.remove(id);
        if let Some((node, _)) = book.ghosts.remove(id) {
            count_ghost(book, node, -1);
        }
    }
    gone.len()
}

/// Loads `cell`'s objects into the simulation (`[zobj-5]`): placed, skipped.
pub fn load(
    store: &pwn_store::Store,
    cell: CellKey,
    sim: &mut Sim,
    book: &mut ObjectBook,
) -> Result<(u32, u32), pwn_store::StoreError> {
    Ok(place_loaded(sim, book, &read_cell(store, cell)?))
}

/// The motion of every dynamic object in `in_cell`, with the version it was checkpointed at
/// (`[zobj-5]`).
pub fn motions(sim: &Sim, book: &ObjectBook, in_cell: impl Fn(Vec3) -> bool) -> Vec<ObjectMotion> {
    let kinds = sim.object_kinds();
    sim.objects()
        .filter(|o| kinds.get(usize::from(o.kind)).is_some_and(|k| k.dynamic) && in_cell(o.position_m))
        .filter_map(|o| {
            let meta = book.get(o.id)?;
            Some(ObjectMotion {
                id: o.id,
                version: meta.version,
                motion: (
                    o.position_m.to_array(),
                    o.rotation.to_array(),
                    o.linvel_mps.to_array(),
                    o.angvel_rps.to_array(),
                ),
            })
        })
        .collect()
}

/// A dynamic object's motion to checkpoint.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct ObjectMotion {
    /// The object.
    pub id: EntityId,
    /// The version the simulation holds it at.
    pub version: u64,
    /// Position, rotation, linear and angular velocity.
    pub motion: ([f32; 3], [f32; 4], [f32; 3], [f32; 3]),
}
