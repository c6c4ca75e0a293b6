//! FoundationDB's limits, enforced the same way on every backend so that code which works on
//! the embedded store also works on a cluster.

use crate::error::StoreError;
use std::time::Duration;

/// Longest key.
pub const KEY_SIZE_MAX: usize = 10_000;
/// Longest value.
pub const VALUE_SIZE_MAX: usize = 100_000;
/// Most bytes (keys plus values, plus range-clear bounds) one transaction may write.
pub const TRANSACTION_SIZE_MAX: usize = 10_000_000;
/// Longest a transaction may live, from its first operation to its commit.
pub const TRANSACTION_DURATION_MAX: Duration = Duration::from_secs(5);
/// Most key-values one range read returns in one call (the caller pages for more).
pub const RANGE_LIMIT_MAX: usize = 100_000;

/// Checks a key's size.
pub fn check_key(key: &[u8]) -> Result<(), StoreError> {
    if key.len() > KEY_SIZE_MAX {
        return Err(StoreError::KeyTooLarge { len: key.len(), max: KEY_SIZE_MAX });
    }
    Ok(())
}

/// Checks a value's size.
pub fn check_value(value: &[u8]) -> Result<(), StoreError> {
    if value.len() > VALUE_SIZE_MAX {
        return Err(StoreError::ValueTooLarge { len: value.len(), max: VALUE_SIZE_MAX });
    }
    Ok(())
}

/// The effective limit of a range read, or `None` when it reads nothing (empty or inverted
/// range, zero limit); checks both bounds.
pub(crate) fn range_limit(begin: &[u8], end: &[u8], limit: usize) -> Result<Option<usize>, StoreError> {
    check_key(begin)?;
    check_key(end)?;
    let limit = limit.min(RANGE_LIMIT_MAX);
    Ok((begin < end && limit > 0).then_some(limit))
}

/// What a transaction has written so far, checked against the write limits as it grows: the
/// one place every backend's transaction enforces key, value and transaction sizes.
#[derive(Debug, Default)]
pub(crate) struct WriteBudget {
    bytes: usize,
}

impl WriteBudget {
    fn add(&mut self, bytes: usize) -> Result<(), StoreError> {
        let total = self.bytes + bytes;
        if total > TRANSACTION_SIZE_MAX {
            return Err(StoreError::TransactionTooLarge { bytes: total, max: TRANSACTION_SIZE_MAX });
        }
        self.bytes = total;
        Ok(())
    }

    /// A set of `key` to `value`.
    pub fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        check_key(key)?;
        check_value(value)?;
        self.add(key.len() + value.len())
    }

    /// A clear of `key`.
    pub fn clear(&mut self, key: &[u8]) -> Result<(), StoreError> {
        check_key(key)?;
        self.add(key.len())
    }

    /// A clear of `[begin, end)`.
    pub fn clear_range(&mut self, begin: &[u8], end: &[u8]) -> Result<(), StoreError> {
        check_key(begin)?;
        check_key(end)?;
        if begin > end {
            return Err(StoreError::InvertedRange);
        }
        self.add(begin.len() + end.len())
    }

    /// An atomic add at `key`.
    pub fn atomic_add(&mut self, key: &[u8]) -> Result<(), StoreError> {
        check_key(key)?;
        self.add(key.len() + 8)
    }
}
