//! Ownership of entities, recorded per entity: each persisted entity (player, crate,
//! projectile, world object) names the cell that owns it, and only a zone holding that cell's
//! lease may write it. Every function works inside the caller's transaction.
//!
//! Rules:
//! - `[own-1]` an owned entity has one owner record `("pwn", "owners", id)` and one entry in its
//!   cell's index `("pwn", "owned", level, path, id)`, changed together: index and records agree;
//! - `[own-2]` a write for an entity reads both the writer's cell lease (at the writer's epoch)
//!   and the entity's owner record (naming the writer's cell) in the same transaction
//!   ([`check_owner`]), so neither a stale zone nor a zone that never owned the entity commits;
//! - `[own-3]` a handoff ([`hand_off`]) is one transaction fenced by both leases: it checks the
//!   giver's lease and ownership, the taker's lease at the epoch the giver was told, rewrites
//!   the owner and index, writes the entity's state, and records the handoff; of two racing
//!   handoffs of one entity at most one commits (the other finds another owner);
//! - `[own-4]` a handoff is idempotent: a retry of one that committed (an unknown commit result)
//!   finds its record and reports [`Handoff::AlreadyDone`] instead of failing or doing it twice;
//! - `[own-5]` an entity nobody owns is claimed by the cell it is in ([`claim`]), fenced by
//!   that cell's lease; claiming an entity another cell owns fails.

use crate::api::{AsStoreError, Transaction};
use crate::error::StoreError;
use crate::fence::check_lease;
use crate::keys::{CellKey, HandoffRecord, OwnerRecord, handoff_key, owned_key, owner_key};

/// Why an ownership operation did nothing.
#[derive(Debug, thiserror::Error)]
pub enum OwnershipError {
    /// Another cell owns the entity (or nobody does).
    #[error("entity {entity} is owned by {owner:?}, not by {expected}")]
    NotOwner {
        /// The entity.
        entity: u64,
        /// The cell the caller believed owns it.
        expected: CellKey,
        /// Its owner, if any.
        owner: Option<CellKey>,
    },
    /// A lease moved (`StoreError::Fenced`), or the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AsStoreError for OwnershipError {
    fn as_store_error(&self) -> Option<&StoreError> {
        match self {
            Self::Store(e) => Some(e),
            Self::NotOwner { .. } => None,
        }
    }
}

/// The cell owning `entity`, if any.
pub fn owner(t: &mut dyn Transaction, entity: u64) -> Result<Option<CellKey>, StoreError> {
    let key = owner_key(entity);
    Ok(t.get(&key)?.map(|v| OwnerRecord::decode(&key, &v)).transpose()?.map(|r| r.cell))
}

fn set_owner(t: &mut dyn Transaction, entity: u64, old: Option<CellKey>, new: CellKey) -> Result<(), StoreError> {
    if let Some(old) = old {
        t.clear(&owned_key(old, entity))?;
    }
    t.set(&owner_key(entity), &OwnerRecord { cell: new }.encode())?;
    t.set(&owned_key(new, entity), b"")
}

/// Fails unless `cell` holds its lease at `epoch` and owns `entity` (`[own-2]`).
pub fn check_owner(t: &mut dyn Transaction, entity: u64, cell: CellKey, epoch: u64) -> Result<(), OwnershipError> {
    check_lease(t, cell, epoch)?;
    match owner(t, entity)? {
        Some(c) if c == cell => Ok(()),
        other => Err(OwnershipError::NotOwner { entity, expected: cell, owner: other }),
    }
}

/// Claims `entity` for `cell` if nobody owns it (`[own-5]`); owning it already is fine.
pub fn claim(t: &mut dyn Transaction, entity: u64, cell: CellKey, epoch: u64) -> Result<(), OwnershipError> {
    check_lease(t, cell, epoch)?;
    match owner(t, entity)? {
        None => Ok(set_owner(t, entity, None, cell)?),
        Some(c) if c == cell => Ok(()),
        Some(c) => Err(OwnershipError::NotOwner { entity, expected: cell, owner: Some(c) }),
    }
}

/// Removes `entity`'s ownership (it ended: a projectile that hit, a removed object), fenced
/// like a write (`[own-2]`).
pub fn release(t: &mut dyn Transaction, entity: u64, cell: CellKey, epoch: u64) -> Result<(), OwnershipError> {
    check_owner(t, entity, cell, epoch)?;
    t.clear(&owner_key(entity))?;
    t.clear(&owned_key(cell, entity))?;
    Ok(())
}

/// One side of a handoff: a cell and the lease epoch it is held at.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Side {
    /// The cell.
    pub cell: CellKey,
    /// Its lease epoch.
    pub epoch: u64,
}

/// What [`hand_off`] did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Handoff {
    /// Ownership moved in this transaction.
    Moved,
    /// This very handoff had committed before (a retry, `[own-4]`): nothing changed.
    AlreadyDone,
}

/// Hands `entity` from `from` to `to` at world tick `tick`, writing `state` (the entity's
/// record, for example under `keys::player_key`) in the same transaction (`[own-3]`, `[own-4]`).
pub fn hand_off(
    t: &mut dyn Transaction,
    entity: u64,
    tick: u64,
    from: Side,
    to: Side,
    state: (&[u8], &[u8]),
) -> Result<Handoff, OwnershipError> {
    let record = HandoffRecord { tick, from: from.cell, to: to.cell };
    let key = handoff_key(entity);
    let done = t.get(&key)?.map(|v| HandoffRecord::decode(&key, &v)).transpose()?;
    if done == Some(record) && owner(t, entity)? == Some(to.cell) {
        return Ok(Handoff::AlreadyDone);
    }
    check_owner(t, entity, from.cell, from.epoch)?;
    check_lease(t, to.cell, to.epoch)?;
    set_owner(t, entity, Some(from.cell), to.cell)?;
    t.set(state.0, state.1)?;
    t.set(&key, &record.encode())?;
    Ok(Handoff::Moved)
}
