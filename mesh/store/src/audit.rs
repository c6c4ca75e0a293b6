//! The store's own consistency check, for operators (`pwn audit`) and load tests: every
//! entity has exactly one owner and its cell's index agrees; every owning cell is a leaf of
//! the partition with a lease; every item of value exists once, in its owner's inventory and
//! nowhere else, and none has vanished. It reads one consistent snapshot (one transaction),
//! so it can run against a live world.

use crate::api::{RangeOptions, Transaction};
use crate::error::StoreError;
use crate::keys::{CellKey, ItemRecord, LeaseRecord, OwnerRecord, counter_key, subspace};
use foundationdb_tuple::unpack;
use std::collections::{BTreeMap, BTreeSet};

/// Most problems listed (all are counted).
pub const PROBLEMS_LISTED_MAX: usize = 100;

/// What the audit found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditReport {
    /// Entities with an owner record.
    pub owned_entities: u64,
    /// Cells owning at least one entity.
    pub owning_cells: u64,
    /// Leaf cells of the partition (0: no partition recorded, a world held by one zone).
    pub leaves: u64,
    /// Leases recorded.
    pub leases: u64,
    /// Items of value.
    pub items: u64,
    /// Entities owned twice (two index entries, or an index entry disagreeing with the record).
    pub duplicates: u64,
    /// Entities or items lost (an item id never allocated-then-missing, an owner record with no
    /// index entry).
    pub losses: u64,
    /// Other inconsistencies (an owning cell without a lease or outside the partition,
    /// undecodable records).
    pub other: u64,
    /// The first problems, in words.
    pub problems: Vec<String>,
}

impl AuditReport {
    /// Whether nothing is wrong.
    pub fn clean(&self) -> bool {
        self.duplicates == 0 && self.losses == 0 && self.other == 0
    }

    fn problem(&mut self, kind: Kind, what: String) {
        *match kind {
            Kind::Duplicate => &mut self.duplicates,
            Kind::Loss => &mut self.losses,
            Kind::Other => &mut self.other,
        } += 1;
        if self.problems.len() < PROBLEMS_LISTED_MAX {
            self.problems.push(what);
        }
    }
}

#[derive(Copy, Clone)]
enum Kind {
    Duplicate,
    Loss,
    Other,
}

fn all(t: &mut dyn Transaction, name: &str) -> Result<Vec<crate::KeyValue>, StoreError> {
    let (b, e) = subspace(name).range();
    let rows = t.get_range(&b, &e, RangeOptions::default())?;
    if rows.len() >= crate::limits::RANGE_LIMIT_MAX {
        return Err(StoreError::Decode {
            key: format!("(\"pwn\", {name:?})"),
            why: format!("more than {} keys: too large to audit in one transaction", crate::limits::RANGE_LIMIT_MAX),
        });
    }
    Ok(rows)
}

fn cell(level: u32, path: u64) -> Option<CellKey> {
    u8::try_from(level).ok().filter(|l| *l <= crate::keys::QUADKEY_LEVEL_MAX).map(|level| CellKey { level, path })
}

/// Audits the store in one transaction.
pub fn audit(t: &mut dyn Transaction) -> Result<AuditReport, StoreError> {
    let mut r = AuditReport::default();
    let (duplicates, losses, other) = (Kind::Duplicate, Kind::Loss, Kind::Other);

    // The partition and its leases.
    let mut leaves = BTreeSet::new();
    for (k, _) in all(t, "world")? {
        if let Ok((_, _, _, level, path)) = unpack::<(String, String, String, u32, u64)>(&k)
            && let Some(c) = cell(level, path)
        {
            leaves.insert(c);
        }
    }
    r.leaves = leaves.len() as u64;
    let mut leased = BTreeSet::new();
    for (k, v) in all(t, "cells")? {
        if let Ok((_, _, level, path, _)) = unpack::<(String, String, u32, u64, String)>(&k)
            && let Some(c) = cell(level, path)
            && LeaseRecord::decode(&k, &v).is_ok()
        {
            leased.insert(c);
        }
    }
    r.leases = leased.len() as u64;

    // Owners and the owned index.
    let mut owners: BTreeMap<u64, CellKey> = BTreeMap::new();
    for (k, v) in all(t, "owners")? {
        match (unpack::<(String, String, u64)>(&k), OwnerRecord::decode(&k, &v)) {
            (Ok((_, _, id)), Ok(o)) => {
                owners.insert(id, o.cell);
            }
            _ => r.problem(other, format!("undecodable owner record {}", crate::keys::describe(&k))),
        }
    }
    r.owned_entities = owners.len() as u64;
    let mut indexed: BTreeMap<u64, Vec<CellKey>> = BTreeMap::new();
    for (k, _) in all(t, "owned")? {
        match unpack::<(String, String, u32, u64, u64)>(&k) {
            Ok((_, _, level, path, id)) if cell(level, path).is_some() => {
                indexed.entry(id).or_default().push(cell(level, path).unwrap_or_default());
            }
            _ => r.problem(other, format!("undecodable owned index key {}", crate::keys::describe(&k))),
        }
    }
    let mut owning = BTreeSet::new();
    for (id, c) in &owners {
        owning.insert(*c);
        match indexed.get(id).map(Vec::as_slice) {
            Some([only]) if only == c => {}
            None => r.problem(losses, format!("entity {id} is owned by {c} but missing from its index")),
            Some(cells) => r.problem(duplicates, format!("entity {id} is owned by {c} but indexed under {cells:?}")),
        }
    }
    for (id, cells) in &indexed {
        if !owners.contains_key(id) {
            r.problem(duplicates, format!("entity {id} is indexed under {cells:?} with no owner record"));
        }
    }
    r.owning_cells = owning.len() as u64;
    for c in owning {
        if !leased.contains(&c) {
            r.problem(other, format!("cell {c} owns entities but has no lease"));
        }
        if !leaves.is_empty() && !leaves.contains(&c) {
            r.problem(other, format!("cell {c} owns entities but is not a cell of the partition"));
        }
    }

    // The position index: an entity listed at two places is in two cells' checkpoints at once.
    let mut at: BTreeMap<u64, u32> = BTreeMap::new();
    for (k, _) in all(t, "entity_at")? {
        if let Ok((_, _, _, id)) = unpack::<(String, String, u64, u64)>(&k) {
            *at.entry(id).or_default() += 1;
        }
    }
    for (id, n) in at.iter().filter(|(_, n)| **n > 1) {
        r.problem(duplicates, format!("entity {id} is in the position index {n} times"));
    }

    // Items of value: each once, in its owner's inventory only; none missing.
    let mut items: BTreeMap<u64, u64> = BTreeMap::new();
    for (k, v) in all(t, "items")? {
        match (unpack::<(String, String, u64)>(&k), ItemRecord::decode(&k, &v)) {
            (Ok((_, _, id)), Ok(rec)) => {
                items.insert(id, rec.owner);
            }
            _ => r.problem(other, format!("undecodable item {}", crate::keys::describe(&k))),
        }
    }
    r.items = items.len() as u64;
    let mut held: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (k, _) in all(t, "inventory")? {
        if let Ok((_, _, owner, id)) = unpack::<(String, String, u64, u64)>(&k) {
            held.entry(id).or_default().push(owner);
        }
    }
    for (id, owner) in &items {
        match held.get(id).map(Vec::as_slice) {
            Some([only]) if only == owner => {}
            None => r.problem(losses, format!("item {id} of {owner} is in no inventory")),
            Some(owners) => r.problem(duplicates, format!("item {id} of {owner} is in the inventories of {owners:?}")),
        }
    }
    for (id, owners) in &held {
        if !items.contains_key(id) {
            r.problem(losses, format!("item {id} is in the inventories of {owners:?} but no longer exists"));
        }
    }
    // Items are never deleted: every id the counter handed out exists.
    let counter = counter_key("item_id");
    let allocated = match t.get(&counter)? {
        Some(v) => <[u8; 8]>::try_from(v.as_slice()).map(i64::from_le_bytes).unwrap_or(0).max(0) as u64,
        None => 0,
    };
    for id in 1..=allocated {
        if !items.contains_key(&id) && !held.contains_key(&id) {
            r.problem(losses, format!("item {id} was created and no longer exists"));
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{inventory_key, owned_key};
    use crate::{MemoryBackend, Store};
    use std::sync::Arc;

    #[test]
    fn planted_duplicates_and_a_lost_item_are_found() {
        let store = Store::new(Arc::new(MemoryBackend::new()));
        let a = CellKey { level: 1, path: 0 };
        let lease = store.transact(|t| crate::fence::grant_lease(t, a, 1)).unwrap();
        store.transact(|t| crate::ownership::claim(t, 7, a, lease.epoch).map_err(|_| StoreError::Conflict)).unwrap();
        let sword = store.transact(|t| crate::items::create(t, 1, 3).map_err(|_| StoreError::Conflict)).unwrap();
        let clean = store.transact(|t| audit(t)).unwrap();
        assert!(clean.clean(), "{clean:?}");
        assert_eq!((clean.owned_entities, clean.items), (1, 1));
        // The same item in a second inventory: a duplicate.
        store.transact(|t| t.set(&inventory_key(2, sword), b"")).unwrap();
        // Entity 7 also indexed under another cell: owned twice.
        let b = CellKey { level: 1, path: 1 };
        store.transact(|t| t.set(&owned_key(b, 7), b"")).unwrap();
        // An item that vanished.
        let shield = store.transact(|t| crate::items::create(t, 1, 4).map_err(|_| StoreError::Conflict)).unwrap();
        store.transact(|t| t.clear(&crate::keys::item_key(shield))).unwrap();
        let found = store.transact(|t| audit(t)).unwrap();
        assert!(!found.clean());
        assert_eq!(found.duplicates, 2, "{found:?}");
        assert_eq!(found.losses, 1, "{found:?}");
        assert!(found.problems.iter().any(|p| p.contains("item") && p.contains("inventories")));
    }
}
