//! What the world server keeps in the store, and nothing else: the world clock's start, the
//! partition's leaves, node records and cell leases. Everything else (load reports, when a
//! node was last heard from) is rebuilt after a restart from the nodes' heartbeats.
//! Synchronous (store calls block): the shell runs these on blocking threads.
//!
//! Rules:
//! - `[wstore-1]` the first start writes the world clock's start and the partition from
//!   configuration; later starts read both from the store and ignore the configuration's
//!   partition, so a restart never reshapes the world;
//! - `[wstore-2]` a grant is written with `pwn_store::fence::grant_lease_at`: only over an older
//!   epoch, never backwards.

use crate::core::{Epoch, Grant, ZoneId};
use crate::quadtree::{Quadtree, QuadtreeError};
use foundationdb_tuple::{pack, unpack};
use pwn_store::keys::{CellKey, NodeRecord, leaf_key, leaves_range, node_key, nodes_range, world_key};
use pwn_store::{RangeOptions, Store, StoreError};

/// Most nodes read at once.
pub const NODES_READ_MAX: usize = 10_000;

/// Why the world's records could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WorldStoreError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored leaves are not a partition of the world.
    #[error("the stored partition is invalid: {0}")]
    Partition(#[from] QuadtreeError),
}

/// The world as the store holds it.
#[derive(Clone, Debug)]
pub struct StoredWorld {
    /// When tick 0 started, milliseconds since the Unix epoch.
    pub start_unix_ms: u64,
    /// The cells.
    pub tree: Quadtree,
    /// Registered nodes: id, address, capacity.
    pub nodes: Vec<(ZoneId, String, u32)>,
    /// Each node's heartbeat token hash.
    pub token_hashes: Vec<(ZoneId, [u8; 32])>,
    /// Leases: cell, node, epoch.
    pub leases: Vec<(CellKey, ZoneId, Epoch)>,
}

fn read_start(t: &mut dyn pwn_store::Transaction) -> Result<Option<u64>, StoreError> {
    let key = world_key("start");
    let Some(v) = t.get(&key)? else { return Ok(None) };
    let (format, start): (i64, u64) =
        unpack(&v).map_err(|e| StoreError::Decode { key: pwn_store::keys::describe(&key), why: e.to_string() })?;
    if format != 1 {
        return Err(StoreError::Decode { key: pwn_store::keys::describe(&key), why: format!("format {format}") });
    }
    Ok(Some(start))
}

/// Reads the world, writing the clock's start and `initial` partition on the first start
/// (`[wstore-1]`).
pub fn load_or_init(store: &Store, initial: &Quadtree, now_unix_ms: u64) -> Result<StoredWorld, WorldStoreError> {
    let (origin, size) = initial.bounds();
    let (start, leaves, nodes, leases) = store.transact(|t| {
        let start = match read_start(t)? {
            Some(s) => s,
            None => {
                t.set(&world_key("start"), &pack(&(1i64, now_unix_ms)))?;
                for c in initial.leaves() {
                    t.set(&leaf_key(c), b"")?;
                }
                now_unix_ms
            }
        };
        let (b, e) = leaves_range();
        let mut leaves = Vec::new();
        for (k, _) in t.get_range(&b, &e, RangeOptions { limit: crate::quadtree::LEAVES_MAX, reverse: false })? {
            if let Ok((_, _, _, level, path)) = unpack::<(String, String, String, u32, u64)>(&k) {
                leaves.push(CellKey { level: u8::try_from(level).unwrap_or(u8::MAX), path });
            }
        }
        let (b, e) = nodes_range();
        let mut nodes = Vec::new();
        for (k, v) in t.get_range(&b, &e, RangeOptions { limit: NODES_READ_MAX, reverse: false })? {
            if let (Ok((_, _, id)), Ok(r)) = (unpack::<(String, String, u64)>(&k), NodeRecord::decode(&k, &v)) {
                nodes.push((ZoneId(id), r.addr, r.capacity, r.token_hash));
            }
        }
        let leases = pwn_store::fence::all_leases(t)?;
        Ok::<_, StoreError>((start, leaves, nodes, leases))
    })?;
    let tree = Quadtree::new(origin, size, leaves)?;
    let leases = leases.into_iter().map(|(c, l)| (c, ZoneId(l.node), Epoch(l.epoch))).collect();
    let token_hashes = nodes.iter().map(|(id, _, _, h)| (*id, *h)).collect();
    let nodes = nodes.into_iter().map(|(id, addr, capacity, _)| (id, addr, capacity)).collect();
    Ok(StoredWorld { start_unix_ms: start, tree, nodes, leases, token_hashes })
}

/// SHA-256 of a node's heartbeat token.
pub fn token_hash(token: &[u8; 16]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token).into()
}

/// Registers a node: allocates its id and writes its record with the hash of `token`, which
/// its heartbeats must prove (`[world-6]`).
pub fn register_node(store: &Store, addr: &str, capacity: u32, token: &[u8; 16]) -> Result<ZoneId, StoreError> {
    let token_hash = token_hash(token);
    store.transact(|t| {
        let id = pwn_store::counters::next_id(t, "node_id")?;
        t.set(&node_key(id), &NodeRecord { addr: addr.to_owned(), capacity, token_hash }.encode())?;
        Ok(ZoneId(id))
    })
}

/// Writes a grant (`[wstore-2]`).
pub fn write_grant(store: &Store, grant: &Grant) -> Result<(), StoreError> {
    store.transact(|t| pwn_store::fence::grant_lease_at(t, grant.cell, grant.node.0, grant.epoch.0).map(|_| ()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{WorldConfig, WorldCore};

    #[test]
    fn a_restarted_world_server_finds_its_world_as_it_left_it() {
        let store = Store::new(std::sync::Arc::new(pwn_store::MemoryBackend::new()));
        let initial = Quadtree::uniform([-512.0, -512.0], [1024.0, 1024.0], 1).unwrap();
        let first = load_or_init(&store, &initial, 1_000).unwrap();
        assert_eq!(first.start_unix_ms, 1_000);
        let mut core = WorldCore::restore(WorldConfig::default(), first.tree, first.nodes, first.leases, 0);
        let a = register_node(&store, "127.0.0.1:9001", 1, &[1; 16]).unwrap();
        let b = register_node(&store, "127.0.0.1:9002", 2, &[2; 16]).unwrap();
        assert_ne!(a, b);
        core.register(a, "127.0.0.1:9001".into(), 1, 0).unwrap();
        core.register(b, "127.0.0.1:9002".into(), 2, 0).unwrap();
        for g in core.poll(0) {
            write_grant(&store, &g).unwrap();
            core.confirm(&g);
        }
        // Another configuration's partition is ignored on the second start.
        let other = Quadtree::uniform([-512.0, -512.0], [1024.0, 1024.0], 2).unwrap();
        let again = load_or_init(&store, &other, 99_000).unwrap();
        assert_eq!(again.start_unix_ms, 1_000);
        assert_eq!(again.tree.len(), 4);
        assert_eq!(again.nodes.len(), 2);
        assert!(again.token_hashes.contains(&(a, token_hash(&[1; 16]))));
        let mut leases = again.leases.clone();
        leases.sort();
        let mut expected: Vec<_> = core.leases().map(|l| (l.cell, l.node, l.epoch)).collect();
        expected.sort();
        assert_eq!(leases, expected);
        // An epoch never goes backwards in the store.
        let stale = Grant { cell: leases[0].0, node: a, epoch: Epoch(1), previous: None };
        assert!(matches!(write_grant(&store, &stale), Err(StoreError::Fenced { .. })));
    }
}
