//! World objects players place: one record per object, a position index, and per player the
//! last edit committed and how many objects it owns. Every function works inside a caller's
//! transaction, which the zone fences with its lease (`crate::fence::check_lease`).
//!
//! Keys (docs/STORAGE.md):
//! - `("pwn", "objects", id)` → [`ObjectRecord`];
//! - `("pwn", "object_at", finest_quadkey, id)` → empty: the position index, so a cell's
//!   objects are one range read (`object_at_range`);
//! - `("pwn", "object_edits", player)` → [`EditRecord`]: the player's last committed edit;
//! - `("pwn", "object_counts", player)` → i64 little-endian: objects the player owns.
//!
//! Rules:
//! - `[obj-1]` an edit is idempotent: it records `(player, request)` as the player's last edit in
//!   the same transaction, and an edit whose request is at or below the recorded one commits
//!   nothing (the same request answers with what it did; an older one is stale), so a retry
//!   after `commit_unknown_result` or a client's resend never applies twice;
//! - `[obj-2]` a change or removal names the version it was validated against and fails as
//!   stale if the record moved on: of two concurrent edits of one object exactly one commits;
//! - `[obj-3]` record, index and the owner's count change in one transaction, so they always
//!   agree; a player owns at most the caller's limit;
//! - `[obj-4]` a checkpoint of a dynamic object's motion ([`save_motion`]) writes only while
//!   the record's version is the one the simulation holds, so it never undoes a committed edit;
//! - `[obj-5]` a dynamic object that moved into another zone's cell changes hands in one
//!   transaction fenced by both cells' leases and its version ([`move_across`]): its record and
//!   index move to where it left, at the next version, exactly once.

use crate::api::{AsStoreError, RangeOptions, Transaction};
use crate::error::StoreError;
use crate::keys::{CellKey, describe, finest_quadkey, subspace};
use foundationdb_tuple::{pack, unpack};

/// Object serials are allocated from this counter.
const OBJECT_SERIAL_COUNTER: &str = "object_serial";
/// Objects returned by one page of [`objects_in`].
pub const OBJECTS_PAGE_MAX: usize = 1_000;

/// `("pwn", "objects", id)`.
pub fn object_key(id: u64) -> Vec<u8> {
    subspace("objects").pack(&id)
}

/// `("pwn", "object_at", finest_quadkey, id)`.
pub fn object_at_key(finest_quadkey: u64, id: u64) -> Vec<u8> {
    subspace("object_at").pack(&(finest_quadkey, id))
}

/// The position index range of a cell.
pub fn object_at_range(cell: CellKey) -> (Vec<u8>, Vec<u8>) {
    let (lo, hi) = cell.finest_range();
    let s = subspace("object_at");
    (s.pack(&(lo,)), s.pack(&(hi,)))
}

/// `("pwn", "object_edits", player)`.
pub fn edit_key(player: u64) -> Vec<u8> {
    subspace("object_edits").pack(&player)
}

/// `("pwn", "object_counts", player)`.
pub fn count_key(player: u64) -> Vec<u8> {
    subspace("object_counts").pack(&player)
}

/// A placed object.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct ObjectRecord {
    /// Its kind (an index into the world file's kinds; also in the id's low bits).
    pub kind: u16,
    /// Its state.
    pub state: u16,
    /// The player who placed it.
    pub owner: u64,
    /// Centre.
    pub position_m: [f32; 3],
    /// Orientation, a unit quaternion (x, y, z, w).
    pub rotation: [f32; 4],
    /// Linear velocity (dynamic objects).
    pub linvel_mps: [f32; 3],
    /// Angular velocity (dynamic objects).
    pub angvel_rps: [f32; 3],
    /// Edits committed so far (1 after placement); motion checkpoints leave it alone.
    pub version: u64,
}

type Stored = (i64, u16, u16, u64, (f32, f32, f32), (f32, f32, f32, f32), (f32, f32, f32), (f32, f32, f32), u64);

impl ObjectRecord {
    const FORMAT: i64 = 1;

    /// `(1, kind, state, owner, (x, y, z), (qx, qy, qz, qw), (vx, vy, vz), (wx, wy, wz), version)`.
    pub fn encode(&self) -> Vec<u8> {
        let [x, y, z] = self.position_m;
        let [qx, qy, qz, qw] = self.rotation;
        let [vx, vy, vz] = self.linvel_mps;
        let [wx, wy, wz] = self.angvel_rps;
        let stored: Stored = (
            Self::FORMAT,
            self.kind,
            self.state,
            self.owner,
            (x, y, z),
            (qx, qy, qz, qw),
            (vx, vy, vz),
            (wx, wy, wz),
            self.version,
        );
        pack(&stored)
    }

    /// Reads the stored form.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self, StoreError> {
        let bad = |why: String| StoreError::Decode { key: describe(key), why };
        let (format, kind, state, owner, p, q, v, w, version): Stored =
            unpack(value).map_err(|e| bad(e.to_string()))?;
        if format != Self::FORMAT {
            return Err(bad(format!("object record format {format}")));
        }
        Ok(Self {
            kind,
            state,
            owner,
            position_m: [p.0, p.1, p.2],
            rotation: [q.0, q.1, q.2, q.3],
            linvel_mps: [v.0, v.1, v.2],
            angvel_rps: [w.0, w.1, w.2],
            version,
        })
    }
}

/// A player's last committed edit (`[obj-1]`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct EditRecord {
    /// The request number.
    pub request: u64,
    /// The object it was about (a placement's new id).
    pub object: u64,
}

impl EditRecord {
    const FORMAT: i64 = 1;

    /// `(1, request, object)`.
    pub fn encode(&self) -> Vec<u8> {
        pack(&(Self::FORMAT, self.request, self.object))
    }

    /// Reads the stored form.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self, StoreError> {
        let (format, request, object): (i64, u64, u64) =
            unpack(value).map_err(|e| StoreError::Decode { key: describe(key), why: e.to_string() })?;
        if format != Self::FORMAT {
            return Err(StoreError::Decode { key: describe(key), why: format!("edit record format {format}") });
        }
        Ok(Self { request, object })
    }
}

/// The world bounds quadkeys are computed over.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Bounds {
    /// Minimum corner on XZ.
    pub origin_m: [f32; 2],
    /// Extent on XZ.
    pub size_m: [f32; 2],
}

impl Bounds {
    fn index_key(&self, id: u64, p: [f32; 3]) -> Vec<u8> {
        object_at_key(finest_quadkey(p[0], p[2], self.origin_m, self.size_m), id)
    }
}

/// What an edit does to the store.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum StoreEdit {
    /// Places a new object (its id is allocated here: `id_of(serial)`).
    Place {
        /// The record (its version is set to 1).
        record: ObjectRecord,
        /// Most objects one player may own (`[obj-3]`).
        per_player_max: u32,
    },
    /// Replaces an object's pose or state.
    Update {
        /// The object.
        id: u64,
        /// The version it was validated against (`[obj-2]`).
        expect_version: u64,
        /// The new pose and state (kind, owner and version are kept from the store).
        record: ObjectRecord,
        /// Only its owner may change it.
        owner_only: bool,
    },
    /// Removes an object.
    Remove {
        /// The object.
        id: u64,
        /// The version it was validated against.
        expect_version: u64,
        /// Only its owner may remove it.
        owner_only: bool,
    },
}

/// What a committed edit did.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum EditDone {
    /// The object was placed, changed or removed; its record as it now is (`None`: removed).
    Applied {
        /// The object.
        id: u64,
        /// Its record after the edit.
        record: Option<ObjectRecord>,
    },
    /// The same request was already committed (`[obj-1]`): nothing more happened. The record
    /// is the object as the store holds it now (`None`: removed), so a zone whose first commit's
    /// outcome was unknown can still apply it.
    AlreadyDone {
        /// The object it was about.
        id: u64,
        /// Its record now.
        record: Option<ObjectRecord>,
    },
}

/// Why an edit committed nothing.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// An older request, or the object changed since it was validated (`[obj-1]`, `[obj-2]`).
    #[error("stale")]
    Stale,
    /// No such object.
    #[error("no such object")]
    Missing,
    /// Not the owner of an owner-only object.
    #[error("not yours")]
    NotAllowed,
    /// The player owns as many objects as it may.
    #[error("too many objects")]
    PlayerFull,
    /// The id allocated is taken, or the serials ran out.
    #[error("no free object id")]
    IdTaken,
    /// The store failed (a fence included).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AsStoreError for EditError {
    fn as_store_error(&self) -> Option<&StoreError> {
        match self {
            Self::Store(e) => Some(e),
            _ => None,
        }
    }
}

/// Reads an object's record.
pub fn get(t: &mut dyn Transaction, id: u64) -> Result<Option<ObjectRecord>, StoreError> {
    let key = object_key(id);
    t.get(&key)?.map(|v| ObjectRecord::decode(&key, &v)).transpose()
}

fn read_count(t: &mut dyn Transaction, player: u64) -> Result<i64, StoreError> {
    let key = count_key(player);
    match t.get(&key)? {
        None => Ok(0),
        Some(v) => <[u8; 8]>::try_from(v.as_slice())
            .map(i64::from_le_bytes)
            .map_err(|_| StoreError::Decode { key: describe(&key), why: "not an i64".into() }),
    }
}

fn add_count(t: &mut dyn Transaction, player: u64, delta: i64) -> Result<(), StoreError> {
    let n = (read_count(t, player)? + delta).max(0);
    t.set(&count_key(player), &n.to_le_bytes())
}

/// Objects `player` owns.
pub fn owned_count(t: &mut dyn Transaction, player: u64) -> Result<u64, StoreError> {
    Ok(read_count(t, player)?.max(0) as u64)
}

/// Applies `edit` for `player`'s request `request` at most once (`[obj-1]` to `[obj-3]`);
/// `id_of` makes an object id from a new serial (`None` when serials ran out). The caller fences
/// the transaction.
pub fn edit_once(
    t: &mut dyn Transaction,
    player: u64,
    request: u64,
    edit: &StoreEdit,
    bounds: &Bounds,
    id_of: impl Fn(u64) -> Option<u64>,
) -> Result<EditDone, EditError> {
    let key = edit_key(player);
    if let Some(last) = t.get(&key)?.map(|v| EditRecord::decode(&key, &v)).transpose()? {
        if last.request == request {
            return Ok(EditDone::AlreadyDone { id: last.object, record: get(t, last.object)? });
        }
        if last.request > request {
            return Err(EditError::Stale);
        }
    }
    let done = match *edit {
        StoreEdit::Place { record, per_player_max } => {
            if owned_count(t, player)? >= u64::from(per_player_max) {
                return Err(EditError::PlayerFull);
            }
            let id = id_of(crate::counters::next_id(t, OBJECT_SERIAL_COUNTER)?).ok_or(EditError::IdTaken)?;
            if t.get(&object_key(id))?.is_some() {
                // Never over another object (a counter restored from an old backup).
                return Err(EditError::IdTaken);
            }
            let record = ObjectRecord { owner: player, version: 1, ..record };
            t.set(&object_key(id), &record.encode())?;
            t.set(&bounds.index_key(id, record.position_m), b"")?;
            add_count(t, player, 1)?;
            EditDone::Applied { id, record: Some(record) }
        }
        StoreEdit::Update { id, expect_version, record, owner_only } => {
            let old = checked(t, id, player, expect_version, owner_only)?;
            let new = ObjectRecord { kind: old.kind, owner: old.owner, version: old.version + 1, ..record };
            t.clear(&bounds.index_key(id, old.position_m))?;
            t.set(&bounds.index_key(id, new.position_m), b"")?;
            t.set(&object_key(id), &new.encode())?;
            EditDone::Applied { id, record: Some(new) }
        }
        StoreEdit::Remove { id, expect_version, owner_only } => {
            let old = checked(t, id, player, expect_version, owner_only)?;
            t.clear(&bounds.index_key(id, old.position_m))?;
            t.clear(&object_key(id))?;
            add_count(t, old.owner, -1)?;
            EditDone::Applied { id, record: None }
        }
    };
    let EditDone::Applied { id, .. } = done else { return Ok(done) };
    t.set(&key, &EditRecord { request, object: id }.encode())?;
    Ok(done)
}

fn checked(
    t: &mut dyn Transaction,
    id: u64,
    player: u64,
    expect_version: u64,
    owner_only: bool,
) -> Result<ObjectRecord, EditError> {
    let old = get(t, id)?.ok_or(EditError::Missing)?;
    if old.version != expect_version {
        return Err(EditError::Stale);
    }
    if owner_only && old.owner != player {
        return Err(EditError::NotAllowed);
    }
    Ok(old)
}

/// Whether a pose is one a zone can load: finite, a unit rotation, inside the bounds.
fn loadable(position_m: [f32; 3], rotation: [f32; 4], linvel: [f32; 3], angvel: [f32; 3], bounds: &Bounds) -> bool {
    let finite = position_m.iter().chain(&rotation).chain(&linvel).chain(&angvel).all(|v| v.is_finite());
    let unit = (rotation.iter().map(|v| v * v).sum::<f32>() - 1.0).abs() < 0.01;
    let [x0, z0] = bounds.origin_m;
    let inside = position_m[0] >= x0
        && position_m[2] >= z0
        && position_m[0] < x0 + bounds.size_m[0]
        && position_m[2] < z0 + bounds.size_m[1]
        && position_m[1].abs() <= 4096.0;
    finite && unit && inside
}

/// Writes a dynamic object's motion if its record is still at `version` (`[obj-4]`) and the pose
/// is one a zone can load (finite, a unit rotation, inside the bounds); returns whether it wrote.
pub fn save_motion(
    t: &mut dyn Transaction,
    id: u64,
    version: u64,
    motion: ([f32; 3], [f32; 4], [f32; 3], [f32; 3]),
    bounds: &Bounds,
) -> Result<bool, StoreError> {
    let (position_m, rotation, linvel_mps, angvel_rps) = motion;
    if !loadable(position_m, rotation, linvel_mps, angvel_rps, bounds) {
        return Ok(false);
    }
    let Some(old) = get(t, id)? else { return Ok(false) };
    if old.version != version {
        return Ok(false);
    }
    if old.position_m != position_m {
        t.clear(&bounds.index_key(id, old.position_m))?;
        t.set(&bounds.index_key(id, position_m), b"")?;
    }
    t.set(&object_key(id), &ObjectRecord { position_m, rotation, linvel_mps, angvel_rps, ..old }.encode())?;
    Ok(true)
}

/// One page of a cell's objects: ids with records, and the key to continue after (`None`:
/// that was the last page).
pub type ObjectsPage = (Vec<(u64, ObjectRecord)>, Option<Vec<u8>>);

/// The objects indexed inside `cell`, after `after` (exclusive; `None`: from the start), at most
/// [`OBJECTS_PAGE_MAX`]: ids with their records (index entries without a record are skipped).
pub fn objects_in(t: &mut dyn Transaction, cell: CellKey, after: Option<&[u8]>) -> Result<ObjectsPage, StoreError> {
    let (b, e) = object_at_range(cell);
    let from = match after {
        Some(k) => {
            let mut k = k.to_vec();
            k.push(0);
            k
        }
        None => b,
    };
    let rows = t.get_range(&from, &e, RangeOptions { limit: OBJECTS_PAGE_MAX, reverse: false })?;
    let next = (rows.len() >= OBJECTS_PAGE_MAX).then(|| rows.last().map(|(k, _)| k.clone())).flatten();
    let mut out = Vec::with_capacity(rows.len());
    for (k, _) in rows {
        let Ok((_, _, _, id)) = unpack::<(String, String, u64, u64)>(&k) else { continue };
        if let Some(r) = get(t, id)? {
            out.push((id, r));
        }
    }
    Ok((out, next))
}

/// A dynamic object moved by the simulation into a cell of another zone: its record takes the
/// pose it left at and the next version, and its index entry moves, in one transaction fenced by
/// the lease of the cell its record is in (one of `from_cells`, the giving zone's) and of the
/// taking cell `to` (`[obj-5]`). Run again after a commit whose outcome was unknown, it finds
/// the record already moved and returns it. Returns the record as it now is.
pub fn move_across(
    t: &mut dyn Transaction,
    id: u64,
    expect_version: u64,
    motion: ([f32; 3], [f32; 4], [f32; 3], [f32; 3]),
    from_cells: &[(CellKey, u64)],
    to: (CellKey, u64),
    bounds: &Bounds,
) -> Result<ObjectRecord, EditError> {
    let old = get(t, id)?.ok_or(EditError::Missing)?;
    let (position_m, rotation, linvel_mps, angvel_rps) = motion;
    if !loadable(position_m, rotation, linvel_mps, angvel_rps, bounds) {
        // A pose no zone could load would leave the object to nobody.
        return Err(EditError::NotAllowed);
    }
    let [nx, _, nz] = position_m;
    let in_to = CellKey::containing(to.0.level, nx, nz, bounds.origin_m, bounds.size_m) == to.0;
    if old.version == expect_version.saturating_add(1) && old.position_m == position_m && in_to {
        // Already moved (a retry after an unknown outcome): still only for the taking cell's
        // current lease.
        crate::fence::check_lease(t, to.0, to.1)?;
        return Ok(old);
    }
    if old.version != expect_version {
        return Err(EditError::Stale);
    }
    let [x, _, z] = old.position_m;
    let from = from_cells
        .iter()
        .find(|(c, _)| CellKey::containing(c.level, x, z, bounds.origin_m, bounds.size_m) == *c)
        .ok_or(EditError::NotAllowed)?;
    crate::fence::check_lease(t, from.0, from.1)?;
    crate::fence::check_lease(t, to.0, to.1)?;
    if !in_to {
        return Err(EditError::NotAllowed);
    }
    let new = ObjectRecord { position_m, rotation, linvel_mps, angvel_rps, version: old.version + 1, ..old };
    t.clear(&bounds.index_key(id, old.position_m))?;
    t.set(&bounds.index_key(id, new.position_m), b"")?;
    t.set(&object_key(id), &new.encode())?;
    Ok(new)
}
