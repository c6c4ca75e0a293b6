//! Id allocation from named counters under `("pwn", "counters", name)`: read, add one, write,
//! inside the caller's transaction, so two allocations that race conflict and one retries
//! (an atomic add would not conflict, but could not tell the caller the value it got).

use crate::api::Transaction;
use crate::error::StoreError;
use crate::keys::{counter_key, describe};

/// The next id of counter `name` (1 for the first), allocated in `t`.
pub fn next_id(t: &mut dyn Transaction, name: &str) -> Result<u64, StoreError> {
    let counter = counter_key(name);
    let last = match t.get(&counter)? {
        None => 0,
        Some(v) => match <[u8; 8]>::try_from(v.as_slice()) {
            Ok(b) => i64::from_le_bytes(b),
            Err(_) => return Err(StoreError::Decode { key: describe(&counter), why: "not an i64".into() }),
        },
    };
    let id = last
        .checked_add(1)
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| StoreError::Decode { key: describe(&counter), why: format!("counter at {last}") })?;
    t.set(&counter, &(last + 1).to_le_bytes())?;
    Ok(id)
}
