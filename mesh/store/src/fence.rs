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
