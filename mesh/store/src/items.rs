//! Items of value: one key per item holding its one owner, and an index of each owner's items.
//! Every function works inside a caller's transaction, so a caller can fence it (a zone reads
//! its lease in the same transaction) or combine it (registration grants a starter kit in the
//! transaction that creates the account).
//!
//! Rules:
//! - `[item-1]` an item's record `("pwn", "items", id)` holds its owner; it is written when the
//!   item is created and rewritten when it moves, never deleted: an item is never deleted on one
//!   side and created on the other;
//! - `[item-2]` the index `("pwn", "inventory", owner, id)` changes in the same transaction as the
//!   record, so index and records always agree;
//! - `[item-3]` a move reads the record and fails unless the giver owns the item, so of two
//!   concurrent moves of one item at most one commits (the other conflicts, retries, and finds
//!   a new owner): no item exists twice;
//! - `[item-4]` an owner holds at most [`INVENTORY_ITEMS_MAX`] items; a grant or move beyond
//!   that fails with [`ItemError::Full`] and changes nothing;
//! - `[item-5]` a zone's move ([`move_once`]) is idempotent: it records its operation id as the
//!   giver's last move in the same transaction, so running it again after a commit whose
//!   outcome was unknown (FoundationDB's `commit_unknown_result`, which the store retries)
//!   returns what it moved instead of moving another item or failing as "not yours".

use crate::api::{AsStoreError, RangeOptions, Transaction};
use crate::error::StoreError;
use crate::keys::{ItemRecord, inventory_key, inventory_range, item_key};

/// Most items one owner holds (`[item-4]`); the protocol's inventory event carries this many.
pub const INVENTORY_ITEMS_MAX: usize = 64;
/// Item ids are allocated from this counter.
const ITEM_ID_COUNTER: &str = "item_id";

/// Why an item operation did nothing.
#[derive(Debug, thiserror::Error)]
pub enum ItemError {
    /// No such item.
    #[error("no item {0}")]
    Missing(u64),
    /// The giver does not own the item (any more).
    #[error("item {item} is not yours")]
    NotOwner {
        /// The item.
        item: u64,
    },
    /// The receiver's inventory is full.
    #[error("inventory full ({INVENTORY_ITEMS_MAX} items)")]
    Full,
    /// The store failed, or holds something this build does not read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AsStoreError for ItemError {
    fn as_store_error(&self) -> Option<&StoreError> {
        match self {
            Self::Store(e) => Some(e),
            _ => None,
        }
    }
}

/// How many items `owner` holds (at most `INVENTORY_ITEMS_MAX + 1` are counted).
fn held(t: &mut dyn Transaction, owner: u64) -> Result<usize, StoreError> {
    let (b, e) = inventory_range(owner);
    Ok(t.get_range(&b, &e, RangeOptions { limit: INVENTORY_ITEMS_MAX + 1, reverse: false })?.len())
}

/// Reads an item's record.
pub fn get(t: &mut dyn Transaction, item: u64) -> Result<Option<ItemRecord>, StoreError> {
    let key = item_key(item);
    t.get(&key)?.map(|v| ItemRecord::decode(&key, &v)).transpose()
}

/// Creates an item of `kind` owned by `owner`, returning its id (`[item-2]`, `[item-4]`).
pub fn create(t: &mut dyn Transaction, owner: u64, kind: u32) -> Result<u64, ItemError> {
    if held(t, owner)? >= INVENTORY_ITEMS_MAX {
        return Err(ItemError::Full);
    }
    let id = crate::counters::next_id(t, ITEM_ID_COUNTER)?;
    t.set(&item_key(id), &ItemRecord { owner, kind }.encode())?;
    t.set(&inventory_key(owner, id), b"")?;
    Ok(id)
}

/// Moves `item` from `from` to `to` (`[item-1..4]`), returning its record as it now is. Moving
/// an item to its owner changes nothing.
pub fn move_item(t: &mut dyn Transaction, item: u64, from: u64, to: u64) -> Result<ItemRecord, ItemError> {
    let record = get(t, item)?.ok_or(ItemError::Missing(item))?;
    if record.owner != from {
        return Err(ItemError::NotOwner { item });
    }
    if from == to {
        return Ok(record);
    }
    if held(t, to)? >= INVENTORY_ITEMS_MAX {
        return Err(ItemError::Full);
    }
    let moved = ItemRecord { owner: to, ..record };
    t.set(&item_key(item), &moved.encode())?;
    t.clear(&inventory_key(from, item))?;
    t.set(&inventory_key(to, item), b"")?;
    Ok(moved)
}

/// Moves an item from `from` to `to` as operation `op`, at most once (`[item-5]`): `item`, or
/// when `None` the first item `from` holds (a loot). The transaction also records `op` as
/// `from`'s last move; run again with the same `op` (a retry after a commit whose outcome was
/// unknown, which did commit), it finds that record and returns what was moved without moving
/// anything else. Returns the item and its record as it now is, or `None` if `from` holds
/// nothing to take.
pub fn move_once(
    t: &mut dyn Transaction,
    op: u64,
    item: Option<u64>,
    from: u64,
    to: u64,
) -> Result<Option<(u64, ItemRecord)>, ItemError> {
    let key = crate::keys::item_op_key(from);
    if let Some(done) = t.get(&key)?.map(|v| crate::keys::ItemOpRecord::decode(&key, &v)).transpose()?
        && done.op == op
    {
        return Ok(Some((done.item, ItemRecord { owner: to, kind: done.kind })));
    }
    let item = match item {
        Some(item) => item,
        None => match inventory(t, from)?.first() {
            Some((item, _)) => *item,
            None => return Ok(None),
        },
    };
    let moved = move_item(t, item, from, to)?;
    t.set(&key, &crate::keys::ItemOpRecord { op, item, kind: moved.kind }.encode())?;
    Ok(Some((item, moved)))
}

/// `owner`'s items, by id. Index entries whose record names another owner are skipped (they
/// cannot exist while `[item-2]` holds; a reader never trusts the index over the record).
pub fn inventory(t: &mut dyn Transaction, owner: u64) -> Result<Vec<(u64, ItemRecord)>, StoreError> {
    let (b, e) = inventory_range(owner);
    let rows = t.get_range(&b, &e, RangeOptions { limit: INVENTORY_ITEMS_MAX, reverse: false })?;
    let mut out = Vec::with_capacity(rows.len());
    for (k, _) in rows {
        let Ok((_, _, _, id)) = foundationdb_tuple::unpack::<(String, String, u64, u64)>(&k) else { continue };
        match get(t, id) {
            Ok(Some(r)) if r.owner == owner => out.push((id, r)),
            Ok(_) => {}
            // A record this build cannot read is left out, not the whole inventory with it.
            Err(StoreError::Decode { key, why }) => tracing::warn!(%key, %why, "unreadable item record skipped"),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}
