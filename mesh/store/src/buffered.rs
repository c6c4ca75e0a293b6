//! The write buffer shared by the embedded and in-memory backends: writes are held in memory
//! until commit, reads see them over the backend's snapshot (read your writes), and the limits
//! are enforced as writes arrive.

use crate::api::{KeyValue, RangeOptions, Transaction};
use crate::error::StoreError;
use crate::limits::{self, RANGE_LIMIT_MAX, TRANSACTION_DURATION_MAX, WriteBudget};
use std::collections::BTreeMap;
use std::time::Instant;

/// A pending write to one key.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Op {
    Set(Vec<u8>),
    Clear,
    /// An atomic add whose base is read only at commit.
    Add(i64),
}

/// Everything a transaction will write: range clears first, then per-key operations.
#[derive(Default, Debug)]
pub(crate) struct WriteSet {
    pub cleared: Vec<(Vec<u8>, Vec<u8>)>,
    pub ops: BTreeMap<Vec<u8>, Op>,
}

impl WriteSet {
    fn in_cleared(&self, key: &[u8]) -> bool {
        self.cleared.iter().any(|(b, e)| key >= b.as_slice() && key < e.as_slice())
    }

    /// Whether there is anything to write.
    pub fn is_empty(&self) -> bool {
        self.cleared.is_empty() && self.ops.is_empty()
    }
}

/// FoundationDB's ADD on a little-endian value: zero-extend or truncate to 8 bytes, add, wrap.
pub(crate) fn add_le(base: Option<&[u8]>, delta: i64) -> Vec<u8> {
    let mut bytes = [0u8; 8];
    if let Some(b) = base {
        let n = b.len().min(8);
        bytes[..n].copy_from_slice(&b[..n]);
    }
    i64::from_le_bytes(bytes).wrapping_add(delta).to_le_bytes().to_vec()
}

/// What a backend provides under the buffer: consistent reads and an atomic apply.
pub(crate) trait Snapshot: Send {
    /// The committed value at `key` as of this transaction's snapshot.
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Committed key-values in `[begin, end)`, at most `limit`, in order or reverse.
    fn range(&mut self, begin: &[u8], end: &[u8], limit: usize, reverse: bool) -> Result<Vec<KeyValue>, StoreError>;
    /// Applies `writes` atomically, failing with `Conflict` if anything read has changed since.
    fn apply(self: Box<Self>, writes: &WriteSet) -> Result<(), StoreError>;
}

/// A transaction: a backend snapshot plus the buffered writes.
pub(crate) struct Buffered {
    snap: Box<dyn Snapshot>,
    writes: WriteSet,
    budget: WriteBudget,
    started: Instant,
}

impl Buffered {
    pub fn new(snap: Box<dyn Snapshot>) -> Self {
        Self { snap, writes: WriteSet::default(), budget: WriteBudget::default(), started: Instant::now() }
    }

    fn check_age(&self) -> Result<(), StoreError> {
        if self.started.elapsed() > TRANSACTION_DURATION_MAX {
            return Err(StoreError::TooOld { limit_ms: TRANSACTION_DURATION_MAX.as_millis() as u64 });
        }
        Ok(())
    }

    /// The value of `key` given a pending op and the committed base.
    fn view(&self, key: &[u8], op: Option<&Op>, base: Option<&[u8]>) -> Option<Vec<u8>> {
        let base = if self.writes.in_cleared(key) { None } else { base };
        match op {
            Some(Op::Set(v)) => Some(v.clone()),
            Some(Op::Clear) => None,
            Some(Op::Add(d)) => Some(add_le(base, *d)),
            None => base.map(<[u8]>::to_vec),
        }
    }
}

fn successor(key: &[u8]) -> Vec<u8> {
    let mut k = key.to_vec();
    k.push(0);
    k
}

impl Transaction for Buffered {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.check_age()?;
        limits::check_key(key)?;
        let op = self.writes.ops.get(key).cloned();
        if matches!(op, Some(Op::Set(_)) | Some(Op::Clear)) || (op.is_none() && self.writes.in_cleared(key)) {
            return Ok(self.view(key, op.as_ref(), None));
        }
        let base = self.snap.get(key)?;
        Ok(self.view(key, op.as_ref(), base.as_deref()))
    }

    fn get_range(&mut self, begin: &[u8], end: &[u8], opts: RangeOptions) -> Result<Vec<KeyValue>, StoreError> {
        self.check_age()?;
        let mut out = Vec::new();
        let Some(limit) = limits::range_limit(begin, end, opts.limit)? else { return Ok(out) };
        let batch = (limit + 16).min(RANGE_LIMIT_MAX);
        let (mut lo, mut hi) = (begin.to_vec(), end.to_vec());
        loop {
            let rows = self.snap.range(&lo, &hi, batch, opts.reverse)?;
            let exhausted = rows.len() < batch;
            // The part of the window this batch covers completely.
            let (cov_lo, cov_hi) = match (rows.last(), exhausted, opts.reverse) {
                (Some((k, _)), false, false) => (lo.clone(), successor(k)),
                (Some((k, _)), false, true) => (k.clone(), hi.clone()),
                _ => (lo.clone(), hi.clone()),
            };
            let mut merged: BTreeMap<Vec<u8>, Option<Vec<u8>>> =
                rows.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
            for (k, op) in self.writes.ops.range(cov_lo..cov_hi) {
                if !matches!(op, Op::Clear) {
                    merged.entry(k.clone()).or_insert(None);
                }
            }
            let ordered: Vec<(&Vec<u8>, &Option<Vec<u8>>)> =
                if opts.reverse { merged.iter().rev().collect() } else { merged.iter().collect() };
            for (k, base) in ordered {
                if let Some(v) = self.view(k, self.writes.ops.get(k), base.as_deref()) {
                    out.push((k.clone(), v));
                    if out.len() == limit {
                        return Ok(out);
                    }
                }
            }
            match (rows.last(), exhausted) {
                (Some((k, _)), false) => {
                    if opts.reverse {
                        hi = k.clone();
                    } else {
                        lo = successor(k);
                    }
                }
                _ => return Ok(out),
            }
        }
    }

    fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.check_age()?;
        self.budget.set(key, value)?;
        self.writes.ops.insert(key.to_vec(), Op::Set(value.to_vec()));
        Ok(())
    }

    fn clear(&mut self, key: &[u8]) -> Result<(), StoreError> {
        self.check_age()?;
        self.budget.clear(key)?;
        self.writes.ops.insert(key.to_vec(), Op::Clear);
        Ok(())
    }

    fn clear_range(&mut self, begin: &[u8], end: &[u8]) -> Result<(), StoreError> {
        self.check_age()?;
        self.budget.clear_range(begin, end)?;
        let doomed: Vec<Vec<u8>> =
            self.writes.ops.range(begin.to_vec()..end.to_vec()).map(|(k, _)| k.clone()).collect();
        for k in doomed {
            self.writes.ops.remove(&k);
        }
        self.writes.cleared.push((begin.to_vec(), end.to_vec()));
        Ok(())
    }

    fn atomic_add(&mut self, key: &[u8], delta: i64) -> Result<(), StoreError> {
        self.check_age()?;
        self.budget.atomic_add(key)?;
        let next = match self.writes.ops.get(key) {
            Some(Op::Set(v)) => Op::Set(add_le(Some(v), delta)),
            Some(Op::Clear) => Op::Set(add_le(None, delta)),
            Some(Op::Add(d)) => Op::Add(d.wrapping_add(delta)),
            None if self.writes.in_cleared(key) => Op::Set(add_le(None, delta)),
            None => Op::Add(delta),
        };
        self.writes.ops.insert(key.to_vec(), next);
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.check_age()?;
        let Buffered { snap, writes, .. } = *self;
        snap.apply(&writes)
    }
}
