//! Lease fencing. Every write a zone makes on behalf of a cell goes through [`check_lease`] in
//! the same transaction: it reads the cell's lease, and if the epoch is not the one the writer
//! holds, fails with [`StoreError::Fenced`]. Because the lease is read inside the transaction,
//! a lease that moves concurrently makes the transaction conflict and retry, and the retry then
//! sees the new epoch: a stale writer can never commit.

use crate::api::Transaction;
use crate::error::StoreError;
use crate::keys::{CellKey, LeaseRecord, lease_key};

/// Fails with `Fenced` unless `cell`'s lease is held at exactly `epoch`.
pub fn check_lease(txn: &mut dyn Transaction, cell: CellKey, epoch: u64) -> Result<LeaseRecord, StoreError> {
    let key = lease_key(cell);
    let found = txn.get(&key)?.map(|v| LeaseRecord::decode(&key, &v)).transpose()?;
    match found {
        Some(lease) if lease.epoch == epoch => Ok(lease),
        other => Err(StoreError::Fenced { cell: cell.to_string(), expected: epoch, found: other.map(|l| l.epoch) }),
    }
}

/// Grants `cell`'s lease to `node` with the next epoch (one more than any before), returning it.
/// The partitioner does this when it assigns or reassigns a cell.
pub fn grant_lease(txn: &mut dyn Transaction, cell: CellKey, node: u64) -> Result<LeaseRecord, StoreError> {
    let key = lease_key(cell);
    let previous = txn.get(&key)?.map(|v| LeaseRecord::decode(&key, &v)).transpose()?;
    let lease = LeaseRecord { node, epoch: previous.map_or(1, |l| l.epoch + 1) };
    txn.set(&key, &lease.encode())?;
    Ok(lease)
}

/// Grants `cell`'s lease to `node` at `epoch`, chosen by the world server, if the store holds
/// an older epoch (or none): a world server that lost track (two of them, or a restart from an
/// old state) fails with `Fenced` instead of moving an epoch backwards.
pub fn grant_lease_at(
    txn: &mut dyn Transaction,
    cell: CellKey,
    node: u64,
    epoch: u64,
) -> Result<LeaseRecord, StoreError> {
    let key = lease_key(cell);
    let previous = txn.get(&key)?.map(|v| LeaseRecord::decode(&key, &v)).transpose()?;
    if previous.is_some_and(|l| l.epoch >= epoch) {
        return Err(StoreError::Fenced { cell: cell.to_string(), expected: epoch, found: previous.map(|l| l.epoch) });
    }
    let lease = LeaseRecord { node, epoch };
    txn.set(&key, &lease.encode())?;
    Ok(lease)
}

/// Every stored lease (the world server reads them when it starts).
pub fn all_leases(txn: &mut dyn Transaction) -> Result<Vec<(CellKey, LeaseRecord)>, StoreError> {
    let (b, e) = crate::keys::subspace("cells").range();
    let mut out = Vec::new();
    for (k, v) in txn.get_range(&b, &e, crate::api::RangeOptions { limit: LEASES_READ_MAX, reverse: false })? {
        if let Ok((_, _, level, path, _)) = foundationdb_tuple::unpack::<(String, String, u32, u64, String)>(&k)
            && let Ok(level) = u8::try_from(level)
            && level <= crate::keys::QUADKEY_LEVEL_MAX
        {
            out.push((CellKey { level, path }, LeaseRecord::decode(&k, &v)?));
        }
    }
    Ok(out)
}

/// Most leases read at once: every leaf of the deepest partition the world server allows
/// (256 x 256 cells).
pub const LEASES_READ_MAX: usize = 65_536;
