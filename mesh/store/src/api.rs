//! The store interface: what every backend guarantees, and the retrying transaction runner.
//!
//! Guarantees of every backend (the conformance suite in `tests/conformance.rs` checks them):
//! - **Ordered bytes.** Keys are byte strings ordered lexicographically (memcmp); range reads
//!   return keys in that order (or its reverse).
//! - **Serializable transactions.** A committed transaction behaves as if it ran alone at its
//!   commit point. If anything it read was changed by a transaction that committed after it
//!   started reading, its commit fails with [`StoreError::Conflict`] and nothing it wrote is
//!   visible. (FoundationDB detects conflicts per key range; the embedded backends detect them
//!   per database, which is stricter: more retries, never fewer guarantees.)
//! - **Read your writes.** Reads inside a transaction see its own earlier writes.
//! - **Blind writes do not conflict.** A transaction that only writes (sets, clears, atomic adds)
//!   never fails with a conflict; atomic adds from concurrent transactions all apply.
//! - **Atomic commit and durability.** A transaction's writes become visible all at once or not
//!   at all, and once `commit` returns `Ok` they survive a crash of the process (and, on the
//!   embedded backend, of the machine: it syncs before returning).
//! - **Limits** ([`crate::limits`]): keys, values, transaction size and duration, checked the same
//!   way everywhere; past a limit the operation fails with a typed error.

use crate::error::StoreError;
use std::sync::Arc;
use std::time::Duration;

/// One key and its value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// How to read a range.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RangeOptions {
    /// At most this many key-values (capped at [`crate::limits::RANGE_LIMIT_MAX`]).
    pub limit: usize,
    /// From the end of the range backwards.
    pub reverse: bool,
}

impl Default for RangeOptions {
    fn default() -> Self {
        Self { limit: crate::limits::RANGE_LIMIT_MAX, reverse: false }
    }
}

/// One transaction. Dropping it without `commit` discards its writes.
pub trait Transaction: Send {
    /// The value at `key`, including this transaction's own writes.
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Key-values with `begin <= key < end`, in order (or reverse order), up to `opts.limit`.
    fn get_range(&mut self, begin: &[u8], end: &[u8], opts: RangeOptions) -> Result<Vec<KeyValue>, StoreError>;
    /// Sets `key` to `value`.
    fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError>;
    /// Removes `key`.
    fn clear(&mut self, key: &[u8]) -> Result<(), StoreError>;
    /// Removes every key with `begin <= key < end`.
    fn clear_range(&mut self, begin: &[u8], end: &[u8]) -> Result<(), StoreError>;
    /// Adds `delta` to the little-endian 64-bit integer at `key` (a missing key counts as 0;
    /// a value of another length is zero-extended or truncated to 8 bytes first, as in
    /// FoundationDB). Does not read, so concurrent adds never conflict.
    fn atomic_add(&mut self, key: &[u8], delta: i64) -> Result<(), StoreError>;
    /// Makes every write visible atomically and durably, or fails with nothing written.
    fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// A store backend: a source of transactions.
pub trait Backend: Send + Sync {
    /// A short name for logs ("sqlite", "memory", "fdb").
    fn name(&self) -> &'static str;
    /// Starts a transaction.
    fn begin(&self) -> Result<Box<dyn Transaction>, StoreError>;
}

/// How the runner retries.
#[derive(Copy, Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts before giving up with the last retryable error.
    pub attempts_max: u32,
    /// First backoff; doubles each retry.
    pub backoff_initial: Duration,
    /// Longest backoff.
    pub backoff_max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { attempts_max: 100, backoff_initial: Duration::from_millis(1), backoff_max: Duration::from_millis(200) }
    }
}

/// A handle to a store; cheap to clone and share between threads.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend.name()).finish()
    }
}

impl Store {
    /// A store over `backend` with the default retry policy.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Self { backend, retry: RetryPolicy::default() }
    }

    /// The same store with another retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The backend's name.
    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    /// Starts a transaction for callers that manage retries themselves.
    pub fn begin(&self) -> Result<Box<dyn Transaction>, StoreError> {
        self.backend.begin()
    }

    /// Runs `body` in a transaction and commits it, retrying the whole thing with exponential
    /// backoff while the error is retryable. `body` may run several times, so it must not have
    /// effects outside the transaction. Errors that are not retryable (including any error of
    /// `body`'s own type) are returned at once.
    pub fn transact<T, E>(&self, mut body: impl FnMut(&mut dyn Transaction) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError> + AsStoreError,
    {
        let mut backoff = self.retry.backoff_initial;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result: Result<T, E> = (|| {
                let mut txn = self.backend.begin()?;
                let value = body(txn.as_mut())?;
                txn.commit()?;
                Ok(value)
            })();
            match result {
                Err(e) if attempt < self.retry.attempts_max && e.as_store_error().is_some_and(|s| s.is_retryable()) => {
                    tracing::debug!(attempt, error = %e.as_store_error().map(|s| s.to_string()).unwrap_or_default(), "retrying transaction");
                    // Jitter spreads retries of processes, and of threads, that conflicted
                    // with each other.
                    let jitter = Duration::from_nanos(retry_jitter_ns(attempt) % 1_000_000);
                    std::thread::sleep(backoff + jitter.min(backoff));
                    backoff = (backoff * 2).min(self.retry.backoff_max);
                }
                other => return other,
            }
        }
    }
}

/// A jitter for retry `attempt` that differs between processes and between threads of one
/// process (two threads of a zone retrying in lockstep would conflict again).
fn retry_jitter_ns(attempt: u32) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::process::id().hash(&mut h);
    std::thread::current().id().hash(&mut h);
    attempt.hash(&mut h);
    h.finish()
}

impl Store {
    /// Streams `[begin, end)` in key order, `page` key-values at a time, each page read in its
    /// own transaction so that a range of any size stays inside the per-transaction limits.
    /// `f` sees every page; the pages together are not one consistent snapshot if the range
    /// changes meanwhile. Returns the number of key-values seen.
    pub fn for_each_page(
        &self,
        begin: &[u8],
        end: &[u8],
        page: usize,
        mut f: impl FnMut(&[KeyValue]),
    ) -> Result<u64, StoreError> {
        let page = page.clamp(1, crate::limits::RANGE_LIMIT_MAX);
        let mut cursor = begin.to_vec();
        let mut seen = 0u64;
        loop {
            let rows = self.transact(|t| t.get_range(&cursor, end, RangeOptions { limit: page, reverse: false }))?;
            seen += rows.len() as u64;
            f(&rows);
            match rows.last() {
                Some((k, _)) if rows.len() == page => {
                    cursor = k.clone();
                    cursor.push(0);
                }
                _ => return Ok(seen),
            }
        }
    }
}

/// Lets the runner see whether a caller's error wraps a retryable store error.
pub trait AsStoreError {
    /// The store error inside, if any.
    fn as_store_error(&self) -> Option<&StoreError>;
}

impl AsStoreError for StoreError {
    fn as_store_error(&self) -> Option<&StoreError> {
        Some(self)
    }
}

#[cfg(test)]
mod jitter_tests {
    #[test]
    fn retry_jitter_differs_between_threads() {
        let here = super::retry_jitter_ns(1);
        let there = std::thread::spawn(|| super::retry_jitter_ns(1)).join().unwrap();
        assert_ne!(here, there);
        assert_eq!(here, super::retry_jitter_ns(1), "the same thread and attempt: the same jitter");
    }
}
