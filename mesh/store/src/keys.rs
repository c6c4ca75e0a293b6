//! The world-state key layout. Every key is a FoundationDB tuple under the root `("pwn",)`, so
//! fdbcli, the FoundationDB bindings and `pwn kv` can all read world state; docs/STORAGE.md lists
//! every subspace with examples. Values are tuples too, starting with a format version.
//!
//! Positions are indexed by the quadkey of the finest quadtree level (a Morton code), so any
//! quadtree cell, at any level, is one contiguous key range: loading a cell is one range read
//! whatever the tree looks like now.

use crate::error::StoreError;
use foundationdb_tuple::{Subspace, TuplePack, TupleUnpack, pack, unpack};

/// The tuple element every PWN key starts with.
pub const ROOT: &str = "pwn";
/// The layout version written at `("pwn", "schema")`.
pub const SCHEMA_VERSION: i64 = 1;
/// Depth of the finest quadtree level used for position keys (16 levels: cells of 1/65,536 of
/// the world's edge, 12.5 cm on the default 8,192 m world).
pub const QUADKEY_LEVEL_MAX: u8 = 16;

/// The root subspace `("pwn",)`.
pub fn root() -> Subspace {
    Subspace::all().subspace(&ROOT)
}

/// A named subspace under the root, e.g. `("pwn", "entities")`.
pub fn subspace(name: &str) -> Subspace {
    root().subspace(&name)
}

/// `("pwn", "schema")` holds `SCHEMA_VERSION` as a one-element tuple.
pub fn schema_key() -> Vec<u8> {
    root().pack(&"schema")
}

/// `("pwn", "accounts", folded_username)`.
pub fn account_key(folded_username: &str) -> Vec<u8> {
    subspace("accounts").pack(&folded_username)
}

/// `("pwn", "sessions", token_hash)`: sessions are found by the hash of their token only.
pub fn session_key(token_hash: &[u8]) -> Vec<u8> {
    subspace("sessions").pack(&foundationdb_tuple::Bytes::from(token_hash))
}

/// `("pwn", "players", player_id)`.
pub fn player_key(player_id: u64) -> Vec<u8> {
    subspace("players").pack(&player_id)
}

/// `("pwn", "entities", entity_id)`.
pub fn entity_key(entity_id: u64) -> Vec<u8> {
    subspace("entities").pack(&entity_id)
}

/// `("pwn", "entity_at", finest_quadkey, entity_id)`: the position index (empty value).
pub fn entity_at_key(finest_quadkey: u64, entity_id: u64) -> Vec<u8> {
    subspace("entity_at").pack(&(finest_quadkey, entity_id))
}

/// `("pwn", "items", item_id)`: an item of value and its owner.
pub fn item_key(item_id: u64) -> Vec<u8> {
    subspace("items").pack(&item_id)
}

/// `("pwn", "inventory", owner, item_id)`: the index of an owner's items (empty value), kept in
/// the same transactions as the item records.
pub fn inventory_key(owner: u64, item_id: u64) -> Vec<u8> {
    subspace("inventory").pack(&(owner, item_id))
}

/// The range of `owner`'s inventory index.
pub fn inventory_range(owner: u64) -> (Vec<u8>, Vec<u8>) {
    subspace("inventory").subspace(&owner).range()
}

/// `("pwn", "item_ops", player_id)`: the last item move taken from a player (`ItemOpRecord`),
/// written in that move's transaction so a retry of it finds it done (`pwn_store::items`
/// `[item-5]`).
pub fn item_op_key(player_id: u64) -> Vec<u8> {
    subspace("item_ops").pack(&player_id)
}

/// `("pwn", "cells", level, path, "lease")`.
pub fn lease_key(cell: CellKey) -> Vec<u8> {
    subspace("cells").pack(&(u32::from(cell.level), cell.path, "lease"))
}

/// `("pwn", "nodes", node_id)`: a zone node's address and heartbeat.
pub fn node_key(node_id: u64) -> Vec<u8> {
    subspace("nodes").pack(&node_id)
}

/// `("pwn", "counters", name)`: an atomic little-endian i64 (id allocation, statistics).
pub fn counter_key(name: &str) -> Vec<u8> {
    subspace("counters").pack(&name)
}

/// `("pwn", "world", name)`: the world server's own records (`"start"`: the world clock's start).
pub fn world_key(name: &str) -> Vec<u8> {
    subspace("world").pack(&name)
}

/// `("pwn", "world", "leaves", level, path)`: one key per leaf cell of the partition (empty value).
pub fn leaf_key(cell: CellKey) -> Vec<u8> {
    subspace("world").pack(&("leaves", u32::from(cell.level), cell.path))
}

/// The range of every leaf key.
pub fn leaves_range() -> (Vec<u8>, Vec<u8>) {
    subspace("world").subspace(&"leaves").range()
}

/// The range of every node record.
pub fn nodes_range() -> (Vec<u8>, Vec<u8>) {
    subspace("nodes").range()
}

/// `("pwn", "owners", entity_id)`: the cell that owns an entity (`OwnerRecord`).
pub fn owner_key(entity_id: u64) -> Vec<u8> {
    subspace("owners").pack(&entity_id)
}

/// `("pwn", "owned", level, path, entity_id)`: the index of the entities a cell owns (empty
/// value), changed in the same transactions as the owner records.
pub fn owned_key(cell: CellKey, entity_id: u64) -> Vec<u8> {
    subspace("owned").pack(&(u32::from(cell.level), cell.path, entity_id))
}

/// The range of a cell's owned-entity index: loading a cell's entities is one range read.
pub fn owned_range(cell: CellKey) -> (Vec<u8>, Vec<u8>) {
    subspace("owned").subspace(&(u32::from(cell.level), cell.path)).range()
}

/// `("pwn", "handoffs", entity_id)`: the entity's last handoff (`HandoffRecord`), written in
/// the handoff's transaction so a retry finds it done.
pub fn handoff_key(entity_id: u64) -> Vec<u8> {
    subspace("handoffs").pack(&entity_id)
}

/// A quadtree cell: its level (0 is the whole world) and its Morton path at that level (two
/// bits per level, X in the low bit of each pair, Z in the high bit).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct CellKey {
    /// Depth, 0..=QUADKEY_LEVEL_MAX.
    pub level: u8,
    /// Morton code of the cell at its level, `< 4^level`.
    pub path: u64,
}

impl std::fmt::Display for CellKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "L{}:", self.level)?;
        for l in (0..self.level).rev() {
            write!(f, "{}", (self.path >> (2 * u32::from(l))) & 3)?;
        }
        Ok(())
    }
}

impl CellKey {
    /// The whole world.
    pub const ROOT: CellKey = CellKey { level: 0, path: 0 };

    /// The cell at `level` containing the world position `(x, z)` of a world with minimum
    /// corner `origin` and edge lengths `size`; positions outside are clamped to the edge.
    pub fn containing(level: u8, x: f32, z: f32, origin: [f32; 2], size: [f32; 2]) -> Self {
        let level = level.min(QUADKEY_LEVEL_MAX);
        let cells = 1u64 << level;
        let idx = |v: f32, o: f32, s: f32| {
            let t = ((v - o) / s).clamp(0.0, 1.0);
            let t = if t.is_finite() { t } else { 0.0 };
            ((t * cells as f32) as u64).min(cells - 1)
        };
        Self { level, path: morton(idx(x, origin[0], size[0]), idx(z, origin[1], size[1])) }
    }

    /// The range of finest-level quadkeys inside this cell: `[lo, hi)`.
    pub fn finest_range(self) -> (u64, u64) {
        let shift = 2 * u32::from(QUADKEY_LEVEL_MAX - self.level.min(QUADKEY_LEVEL_MAX));
        (self.path << shift, (self.path + 1) << shift)
    }

    /// The key range of the position index covering this cell: one range read loads it.
    pub fn entity_at_range(self) -> (Vec<u8>, Vec<u8>) {
        let (lo, hi) = self.finest_range();
        let s = subspace("entity_at");
        (s.pack(&(lo,)), s.pack(&(hi,)))
    }

    /// The four children (one level deeper), or `None` at the finest level.
    pub fn children(self) -> Option<[CellKey; 4]> {
        (self.level < QUADKEY_LEVEL_MAX)
            .then(|| [0, 1, 2, 3].map(|q| CellKey { level: self.level + 1, path: (self.path << 2) | q }))
    }
}

/// Interleaves the bits of `x` (even positions) and `z` (odd positions).
fn morton(x: u64, z: u64) -> u64 {
    let mut out = 0;
    for bit in 0..u64::from(QUADKEY_LEVEL_MAX) {
        out |= ((x >> bit) & 1) << (2 * bit);
        out |= ((z >> bit) & 1) << (2 * bit + 1);
    }
    out
}

/// The finest-level quadkey of a position.
pub fn finest_quadkey(x: f32, z: f32, origin: [f32; 2], size: [f32; 2]) -> u64 {
    CellKey::containing(QUADKEY_LEVEL_MAX, x, z, origin, size).path
}

fn decode<'de, T: TupleUnpack<'de>>(key: &[u8], value: &'de [u8]) -> Result<T, StoreError> {
    unpack(value).map_err(|e| StoreError::Decode { key: crate::keys::describe(key), why: e.to_string() })
}

fn check_format(key: &[u8], found: i64, expected: i64) -> Result<(), StoreError> {
    if found == expected {
        Ok(())
    } else {
        Err(StoreError::Decode { key: describe(key), why: format!("format {found}, this build reads {expected}") })
    }
}

/// A cell's lease: the node holding it and the epoch, which only grows.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
    /// The zone node holding the lease.
    pub node: u64,
    /// The lease epoch; every write for the cell is fenced by it.
    pub epoch: u64,
}

impl LeaseRecord {
    const FORMAT: i64 = 1;

    /// The stored form: `(1, node, epoch)`.
    pub fn encode(&self) -> Vec<u8> {
        pack(&(Self::FORMAT, self.node, self.epoch))
    }

    /// Reads the stored form.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self, StoreError> {
        let (format, node, epoch): (i64, u64, u64) = decode(key, value)?;
        check_format(key, format, Self::FORMAT)?;
        Ok(Self { node, epoch })
    }
}

/// An item of value: its kind and its one owner. Never deleted; moving it rewrites the owner.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ItemRecord {
    /// The owning player.
    pub owner: u64,
    /// Gameplay kind, defined by the game.
    pub kind: u32,
}

impl ItemRecord {
    const FORMAT: i64 = 1;

    /// The stored form: `(1, owner, kind)`.
    pub fn encode(&self) -> Vec<u8> {
        pack(&(Self::FORMAT, self.owner, self.kind))
    }

    /// Reads the stored form.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self, StoreError> {
        let (format, owner, kind): (i64, u64, u32) = decode(key, value)?;
        check_format(key, format, Self::FORMAT)?;
        Ok(Self { owner, kind })
    }
}

/// The last item move taken from a player: the operation's id and what it moved.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ItemOpRecord {
    /// The operation (unique per move the zone asked for).
    pub op: u64,
    /// The item it moved.
    pub item: u64,
    /// Its kind.
    pub kind: u32,
}

impl ItemOpRecord {
    const FORMAT: i64 = 1;

    /// The stored form: `(1, op, item, kind)`.
    pub fn encode(&self) -> Vec<u8> {
        pack(&(Self::FORMAT, self.op, self.item, self.kind))
    }

    /// Reads the stored form.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self, StoreError> {
        let (format, op, item, kind): (i64, u64, u64, u32) = decode(key, value)?;
        check_format(key, format, Self::FORMAT)?;
        Ok(Self { op, item, kind })
    }
}

/// A zone node as the world server registered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRecord {
    /// Where gateways and other zones reach it (`host:port`).
    pub addr: String,
    /// Relative capacity.
    pub capacity: u32,
    /// SHA-256 of the token the node proves in its heartbeats (the token itself is never
    /// stored).
    pub token_hash: [u8; 32],
}

impl NodeRecord {
    const FORMAT: i64 = 1;

    /// The stored form: `(1, addr, capacity, token_hash)`.
    pub fn encode(&self) -> Vec<u8> {
        pack(&(Self::FORMAT, self.addr.as_str(), self.capacity, foundationdb_tuple::Bytes::from(&self.token_hash[..])))
    }

    /// Reads the stored form.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self, StoreError> {
        let (format, addr, capacity, hash): (i64, String, u32, foundationdb_tuple::Bytes<'_>) = decode(key, value)?;
        check_format(key, format, Self::FORMAT)?;
        let token_hash = <[u8; 32]>::try_from(hash.0.as_ref())
            .map_err(|_| StoreError::Decode { key: describe(key), why: "token hash is not 32 bytes".into() })?;
        Ok(Self { addr, capacity, token_hash })
    }
}

/// The cell owning an entity: only a zone holding this cell's lease writes the entity.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct OwnerRecord {
    /// The owning cell.
    pub cell: CellKey,
}

impl OwnerRecord {
    const FORMAT: i64 = 1;

    /// The stored form: `(1, level, path)`.
    pub fn encode(&self) -> Vec<u8> {
        pack(&(Self::FORMAT, u32::from(self.cell.level), self.cell.path))
    }

    /// Reads the stored form.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self, StoreError> {
        let (format, level, path): (i64, u32, u64) = decode(key, value)?;
        check_format(key, format, Self::FORMAT)?;
        let level = u8::try_from(level)
            .ok()
            .filter(|l| *l <= QUADKEY_LEVEL_MAX)
            .ok_or_else(|| StoreError::Decode { key: describe(key), why: format!("cell level {level}") })?;
        Ok(Self { cell: CellKey { level, path } })
    }
}

/// An entity's last handoff: which tick, from which cell to which.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct HandoffRecord {
    /// The world tick the entity's state was taken at.
    pub tick: u64,
    /// The cell that gave it.
    pub from: CellKey,
    /// The cell that took it.
    pub to: CellKey,
}

impl HandoffRecord {
    const FORMAT: i64 = 1;

    /// The stored form: `(1, tick, (level, path), (level, path))`.
    pub fn encode(&self) -> Vec<u8> {
        let c = |k: CellKey| (u32::from(k.level), k.path);
        pack(&(Self::FORMAT, self.tick, c(self.from), c(self.to)))
    }

    /// Reads the stored form.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self, StoreError> {
        type Stored = (i64, u64, (u32, u64), (u32, u64));
        let (format, tick, from, to): Stored = decode(key, value)?;
        check_format(key, format, Self::FORMAT)?;
        let cell = |(level, path): (u32, u64)| {
            u8::try_from(level)
                .ok()
                .filter(|l| *l <= QUADKEY_LEVEL_MAX)
                .map(|level| CellKey { level, path })
                .ok_or_else(|| StoreError::Decode { key: describe(key), why: format!("cell level {level}") })
        };
        Ok(Self { tick, from: cell(from)?, to: cell(to)? })
    }
}

/// A persisted entity (a crate, a dropped item, a non-player character...).
#[derive(Clone, Debug, PartialEq)]
pub struct EntityRecord {
    /// Gameplay kind, defined by the game.
    pub kind: u32,
    /// Position.
    pub position_m: [f32; 3],
    /// Heading.
    pub yaw_rad: f32,
    /// Health.
    pub health: u32,
    /// Opaque gameplay data (keep it small; values are limited to 100 kB).
    pub data: Vec<u8>,
}

impl EntityRecord {
    const FORMAT: i64 = 1;

    /// The stored form: `(1, kind, (x, y, z), yaw, health, data)`.
    pub fn encode(&self) -> Vec<u8> {
        let [x, y, z] = self.position_m;
        pack(&(
            Self::FORMAT,
            self.kind,
            (x, y, z),
            self.yaw_rad,
            self.health,
            foundationdb_tuple::Bytes::from(self.data.as_slice()),
        ))
    }

    /// Reads the stored form.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self, StoreError> {
        type Stored<'a> = (i64, u32, (f32, f32, f32), f32, u32, foundationdb_tuple::Bytes<'a>);
        let (format, kind, (x, y, z), yaw_rad, health, data): Stored<'_> = decode(key, value)?;
        check_format(key, format, Self::FORMAT)?;
        Ok(Self { kind, position_m: [x, y, z], yaw_rad, health, data: data.0.into_owned() })
    }
}

/// A key as readable text: the tuple if it is one (`("pwn", "entities", 42)`), else hex.
pub fn describe(key: &[u8]) -> String {
    match unpack::<Vec<foundationdb_tuple::Element>>(key) {
        Ok(elements) => crate::keys::format_tuple(&elements),
        Err(_) => format!("0x{}", hex(key)),
    }
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A tuple in Python-like notation.
pub fn format_tuple(elements: &[foundationdb_tuple::Element]) -> String {
    let inner: Vec<String> = elements.iter().map(format_element).collect();
    if inner.len() == 1 { format!("({},)", inner[0]) } else { format!("({})", inner.join(", ")) }
}

fn format_element(e: &foundationdb_tuple::Element) -> String {
    use foundationdb_tuple::Element as E;
    match e {
        E::Nil => "None".into(),
        E::Bytes(b) => format!("b'{}'", b.0.iter().map(|c| format!("\\x{c:02x}")).collect::<String>()),
        E::String(s) => format!("{s:?}"),
        E::Tuple(t) => format_tuple(t),
        E::Int(i) => i.to_string(),
        E::Float(f) => f.to_string(),
        E::Double(d) => d.to_string(),
        E::Bool(b) => {
            if *b {
                "True".into()
            } else {
                "False".into()
            }
        }
        other => format!("{other:?}"),
    }
}

/// Whether `T` round-trips through the tuple layer (used by tests of the layout).
pub fn roundtrips<T>(value: &T) -> bool
where
    T: TuplePack + for<'de> TupleUnpack<'de> + PartialEq,
{
    unpack::<T>(&pack(value)).is_ok_and(|v| v == *value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys_read_as_tuples() {
        assert_eq!(describe(&entity_key(42)), "(\"pwn\", \"entities\", 42)");
        assert_eq!(describe(&lease_key(CellKey { level: 2, path: 6 })), "(\"pwn\", \"cells\", 2, 6, \"lease\")");
        assert!(describe(&[0xff, 0x00]).starts_with("0x"));
    }

    #[test]
    fn records_round_trip_and_refuse_other_formats() {
        let lease = LeaseRecord { node: 7, epoch: 12 };
        assert_eq!(LeaseRecord::decode(b"k", &lease.encode()).unwrap(), lease);
        let e = EntityRecord { kind: 3, position_m: [1.5, 2.0, -3.25], yaw_rad: 0.5, health: 80, data: vec![1, 2, 3] };
        assert_eq!(EntityRecord::decode(b"k", &e.encode()).unwrap(), e);
        let future = pack(&(2i64, 7u64, 12u64));
        assert!(matches!(LeaseRecord::decode(b"k", &future), Err(StoreError::Decode { .. })));
        assert!(matches!(EntityRecord::decode(b"k", b"\xff\xfe"), Err(StoreError::Decode { .. })));
    }

    proptest! {
        #[test]
        fn every_cell_is_one_contiguous_range_of_its_descendants(
            x in -4096.0f32..4096.0, z in -4096.0f32..4096.0, level in 0u8..=QUADKEY_LEVEL_MAX
        ) {
            let origin = [-4096.0, -4096.0];
            let size = [8192.0, 8192.0];
            let cell = CellKey::containing(level, x, z, origin, size);
            let q = finest_quadkey(x, z, origin, size);
            let (lo, hi) = cell.finest_range();
            prop_assert!(lo <= q && q < hi);
            // The entity key of anything in the cell sorts inside the cell's key range.
            let (b, e) = cell.entity_at_range();
            let k = entity_at_key(q, 99);
            prop_assert!(b <= k && k < e);
            if let Some(children) = cell.children() {
                let inside: Vec<_> = children.iter().filter(|c| { let (l, h) = c.finest_range(); l <= q && q < h }).collect();
                prop_assert_eq!(inside.len(), 1);
            }
        }
    }
}
