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
