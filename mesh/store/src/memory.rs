//! The in-memory backend, for deterministic single-process tests, with FoundationDB's
//! semantics: a transaction reads one consistent snapshot (taken at its first read, never a
//! conflict mid-read), and its commit fails with a conflict only if a transaction that
//! committed after that snapshot wrote a key or range it read. A read-only transaction always
//! commits. Reads are recorded conservatively: a range read conflicts over its whole span, even
//! when a limit stopped it early (FoundationDB narrows it to what was returned), so this backend
//! conflicts at least as often as FoundationDB, never less.

use crate::api::{Backend, KeyValue, Transaction};
use crate::buffered::{Buffered, Op, Snapshot, WriteSet, add_le};
use crate::error::StoreError;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// Commits whose written keys are kept for conflict checks; a transaction whose snapshot is
/// older than all of them conflicts (FoundationDB's `transaction_too_old`, by count here).
const COMMIT_LOG_MAX: usize = 4_096;

type Data = BTreeMap<Vec<u8>, Vec<u8>>;

/// What one commit wrote: keys, and cleared ranges `[begin, end)`.
struct Written {
    version: u64,
    keys: Vec<Vec<u8>>,
    ranges: Vec<(Vec<u8>, Vec<u8>)>,
}

#[derive(Default)]
struct State {
    /// Copy-on-write: a reader's snapshot is a clone of this `Arc`.
    data: Arc<Data>,
    version: u64,
    /// The newest commits, oldest first.
    log: VecDeque<Written>,
}

/// An in-memory store; clones share the same data.
#[derive(Clone, Default)]
pub struct MemoryBackend {
    state: Arc<Mutex<State>>,
}

impl MemoryBackend {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic while holding the lock cannot leave the map half-written (writes are applied
    // after every check), so a poisoned lock is still consistent.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl Backend for MemoryBackend {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn begin(&self) -> Result<Box<dyn Transaction>, StoreError> {
        Ok(Box::new(Buffered::new(Box::new(MemorySnapshot {
            state: self.state.clone(),
            snapshot: None,
            read_keys: Vec::new(),
            read_ranges: Vec::new(),
        }))))
    }
}

struct MemorySnapshot {
    state: Arc<Mutex<State>>,
    /// The data and its version as of the first read.
    snapshot: Option<(Arc<Data>, u64)>,
    read_keys: Vec<Vec<u8>>,
    read_ranges: Vec<(Vec<u8>, Vec<u8>)>,
}

impl MemorySnapshot {
    fn data(&mut self) -> &Data {
        let state = &self.state;
        &self
            .snapshot
            .get_or_insert_with(|| {
                let s = lock(state);
                (s.data.clone(), s.version)
            })
            .0
    }

    /// Whether a commit's writes touch what this transaction read.
    fn overlaps(&self, w: &Written) -> bool {
        let in_read_range = |k: &[u8]| self.read_ranges.iter().any(|(b, e)| k >= b.as_slice() && k < e.as_slice());
        let key_in = |k: &[u8], b: &[u8], e: &[u8]| k >= b && k < e;
        w.keys.iter().any(|k| in_read_range(k) || self.read_keys.iter().any(|r| r == k))
            || w.ranges.iter().any(|(b, e)| {
                self.read_keys.iter().any(|k| key_in(k, b, e))
                    || self
                        .read_ranges
                        .iter()
                        .any(|(rb, re)| rb.as_slice() < e.as_slice() && b.as_slice() < re.as_slice())
            })
    }
}

impl Snapshot for MemorySnapshot {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let value = self.data().get(key).cloned();
        self.read_keys.push(key.to_vec());
        Ok(value)
    }

    fn range(&mut self, begin: &[u8], end: &[u8], limit: usize, reverse: bool) -> Result<Vec<KeyValue>, StoreError> {
        if begin >= end {
            return Ok(Vec::new());
        }
        let data = self.data();
        let r = data.range(begin.to_vec()..end.to_vec());
        let it: Box<dyn Iterator<Item = (&Vec<u8>, &Vec<u8>)>> = if reverse { Box::new(r.rev()) } else { Box::new(r) };
        let out = it.take(limit).map(|(k, v)| (k.clone(), v.clone())).collect();
        self.read_ranges.push((begin.to_vec(), end.to_vec()));
        Ok(out)
    }

    fn apply(self: Box<Self>, writes: &WriteSet) -> Result<(), StoreError> {
        // A read-only transaction read one consistent snapshot: nothing to check or write.
        if writes.is_empty() {
            return Ok(());
        }
        let mut s = lock(&self.state);
        if let Some((_, read_version)) = &self.snapshot
            && *read_version != s.version
        {
            let oldest_kept = s.log.front().map_or(s.version, |w| w.version);
            if *read_version + 1 < oldest_kept {
                return Err(StoreError::Conflict);
            }
            if s.log.iter().filter(|w| w.version > *read_version).any(|w| self.overlaps(w)) {
                return Err(StoreError::Conflict);
            }
        }
        let data = Arc::make_mut(&mut s.data);
        for (b, e) in &writes.cleared {
            let doomed: Vec<Vec<u8>> = data.range(b.clone()..e.clone()).map(|(k, _)| k.clone()).collect();
            for k in doomed {
                data.remove(&k);
            }
        }
        for (k, op) in &writes.ops {
            match op {
                Op::Set(v) => {
                    data.insert(k.clone(), v.clone());
                }
                Op::Clear => {
                    data.remove(k);
                }
                Op::Add(d) => {
                    let v = add_le(data.get(k).map(Vec::as_slice), *d);
                    data.insert(k.clone(), v);
                }
            }
        }
        s.version += 1;
        let written =
            Written { version: s.version, keys: writes.ops.keys().cloned().collect(), ranges: writes.cleared.clone() };
        if s.log.len() == COMMIT_LOG_MAX {
            s.log.pop_front();
        }
        s.log.push_back(written);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(b: &MemoryBackend, key: &[u8], value: &[u8]) {
        let mut t = b.begin().unwrap();
        t.set(key, value).unwrap();
        t.commit().unwrap();
    }

    /// A transaction reads one snapshot: another's commit in the middle of its reads neither
    /// fails the next read nor shows up in it.
    #[test]
    fn reads_see_one_snapshot_and_never_conflict_mid_read() {
        let b = MemoryBackend::new();
        put(&b, b"a", b"1");
        let mut t = b.begin().unwrap();
        assert_eq!(t.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
        put(&b, b"b", b"2");
        put(&b, b"a", b"3");
        assert_eq!(t.get(b"b").unwrap(), None, "a later commit leaked into the snapshot");
        assert_eq!(t.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
        // Read-only: commits whatever happened since.
        t.commit().unwrap();
    }

    /// A writer conflicts only when a later commit wrote something it read.
    #[test]
    fn a_commit_conflicts_only_over_what_it_read() {
        let b = MemoryBackend::new();
        put(&b, b"a", b"1");
        put(&b, b"k1", b"1");
        // Disjoint: reads `a`, another writes `z`.
        let mut t = b.begin().unwrap();
        t.get(b"a").unwrap();
        put(&b, b"z", b"9");
        t.set(b"a", b"2").unwrap();
        t.commit().unwrap();
        // Overlapping key.
        let mut t = b.begin().unwrap();
        t.get(b"a").unwrap();
        put(&b, b"a", b"5");
        t.set(b"x", b"1").unwrap();
        assert!(matches!(t.commit(), Err(StoreError::Conflict)));
        // A key written inside a range read.
        let mut t = b.begin().unwrap();
        t.get_range(b"k", b"l", crate::api::RangeOptions::default()).unwrap();
        put(&b, b"k5", b"1");
        t.set(b"y", b"1").unwrap();
        assert!(matches!(t.commit(), Err(StoreError::Conflict)));
        // A range cleared over a key read.
        let mut t = b.begin().unwrap();
        t.get(b"k1").unwrap();
        let mut c = b.begin().unwrap();
        c.clear_range(b"k", b"l").unwrap();
        c.commit().unwrap();
        t.set(b"y", b"2").unwrap();
        assert!(matches!(t.commit(), Err(StoreError::Conflict)));
        // Blind writes never conflict.
        let mut t = b.begin().unwrap();
        put(&b, b"a", b"6");
        t.set(b"a", b"7").unwrap();
        t.commit().unwrap();
        let mut t = b.begin().unwrap();
        assert_eq!(t.get(b"a").unwrap().as_deref(), Some(&b"7"[..]));
    }
}
