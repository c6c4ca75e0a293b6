//! The store's own consistency check, for operators (`pwn audit`) and load tests: every
//! entity has exactly one owner and its cell's index agrees; every owning cell is a leaf of
//! the partition with a lease; every item of value exists once, in its owner's inventory and
//! nowhere else, and none has vanished; every world object is in the position index exactly
//! once, every index entry names an object, and each player's object count is what it owns. It reads one consistent snapshot (one transaction),
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
    /// World objects.
    pub objects: u64,
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
    audit_objects(t, &mut r)?;
    Ok(r)
}

/// World objects (`crate::objects` `[obj-3]`): indexed once each, no index entry without its
/// object (a zone loading the cell would skip it), counts that match.
fn audit_objects(t: &mut dyn Transaction, r: &mut AuditReport) -> Result<(), StoreError> {
    let mut owned: BTreeMap<u64, i64> = BTreeMap::new();
    let mut objects = BTreeSet::new();
    for (k, v) in all(t, "objects")? {
        match (unpack::<(String, String, u64)>(&k), crate::objects::ObjectRecord::decode(&k, &v)) {
            (Ok((_, _, id)), Ok(rec)) => {
                objects.insert(id);
                *owned.entry(rec.owner).or_default() += 1;
            }
            _ => r.problem(Kind::Other, format!("undecodable object {}", crate::keys::describe(&k))),
        }
    }
    r.objects = objects.len() as u64;
    let mut indexed: BTreeMap<u64, u32> = BTreeMap::new();
    for (k, _) in all(t, "object_at")? {
        if let Ok((_, _, _, id)) = unpack::<(String, String, u64, u64)>(&k) {
            *indexed.entry(id).or_default() += 1;
        }
    }
    for id in &objects {
        match indexed.get(id) {
            Some(1) => {}
            None => r.problem(Kind::Loss, format!("object {id} is in no position index: no zone loads it")),
            Some(n) => r.problem(Kind::Duplicate, format!("object {id} is in the position index {n} times")),
        }
    }
    for id in indexed.keys().filter(|id| !objects.contains(id)) {
        r.problem(Kind::Other, format!("the position index names object {id}, which does not exist"));
    }
    for (k, v) in all(t, "object_counts")? {
        let Ok((_, _, player)) = unpack::<(String, String, u64)>(&k) else { continue };
        let n = <[u8; 8]>::try_from(v.as_slice()).map(i64::from_le_bytes).unwrap_or(-1);
        let have = owned.remove(&player).unwrap_or(0);
        if n != have {
            r.problem(Kind::Other, format!("player {player} is counted {n} objects but owns {have}"));
        }
    }
    for (player, have) in owned {
        r.problem(Kind::Other, format!("player {player} owns {have} objects but is counted none"));
    }
    Ok(())
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

    #[test]
    fn objects_indexed_twice_or_not_at_all_and_wrong_counts_are_found() {
        use crate::objects::{Bounds, EditDone, ObjectRecord, StoreEdit, edit_once, object_at_key};
        let store = Store::new(Arc::new(MemoryBackend::new()));
        let bounds = Bounds { origin_m: [-100.0, -100.0], size_m: [200.0, 200.0] };
        let record = ObjectRecord {
            kind: 0,
            state: 0,
            owner: 0,
            position_m: [1.0, 1.0, 1.0],
            rotation: [0.0, 0.0, 0.0, 1.0],
            linvel_mps: [0.0; 3],
            angvel_rps: [0.0; 3],
            version: 0,
        };
        let mut placed = Vec::new();
        for request in 1..=3 {
            let edit = StoreEdit::Place { record, per_player_max: 10 };
            let done = store.transact(|t| edit_once(t, 7, request, &edit, &bounds, |s| Some(100 + s))).unwrap();
            let EditDone::Applied { id, .. } = done else { panic!("{done:?}") };
            placed.push(id);
        }
        let clean = store.transact(|t| audit(t)).unwrap();
        assert!(clean.clean(), "{clean:?}");
        assert_eq!(clean.objects, 3);
        // One indexed twice, one not at all, an index entry for nothing, a count that is off.
        store.transact(|t| t.set(&object_at_key(5, placed[0]), b"")).unwrap();
        let (b, e) = crate::objects::object_at_range(CellKey::ROOT);
        let entries = store.transact(|t| t.get_range(&b, &e, RangeOptions::default())).unwrap();
        let second = entries.iter().find(|(k, _)| unpack::<(String, String, u64, u64)>(k).unwrap().3 == placed[1]);
        store.transact(|t| t.clear(&second.unwrap().0)).unwrap();
        store.transact(|t| t.set(&object_at_key(9, 4242), b"")).unwrap();
        store.transact(|t| t.set(&crate::objects::count_key(7), &5i64.to_le_bytes())).unwrap();
        let found = store.transact(|t| audit(t)).unwrap();
        assert_eq!((found.duplicates, found.losses, found.other), (1, 1, 2), "{found:?}");
    }
}
