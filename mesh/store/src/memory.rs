//! The in-memory backend, for deterministic single-process tests. One map behind a mutex and a
//! commit counter: a transaction that has read fails with a conflict as soon as (and whenever)
//! anyone else has committed since its first read, so its reads are always consistent.

use crate::api::{Backend, KeyValue, Transaction};
use crate::buffered::{Buffered, Op, Snapshot, WriteSet, add_le};
use crate::error::StoreError;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Default)]
struct State {
    data: BTreeMap<Vec<u8>, Vec<u8>>,
    version: u64,
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
        Ok(Box::new(Buffered::new(Box::new(MemorySnapshot { state: self.state.clone(), read_version: None }))))
    }
}

struct MemorySnapshot {
    state: Arc<Mutex<State>>,
    read_version: Option<u64>,
}

impl MemorySnapshot {
    fn read<T>(&mut self, f: impl FnOnce(&State) -> T) -> Result<T, StoreError> {
        let s = lock(&self.state);
        match self.read_version {
            None => self.read_version = Some(s.version),
            Some(v) if v != s.version => return Err(StoreError::Conflict),
            Some(_) => {}
        }
        Ok(f(&s))
    }
}

impl Snapshot for MemorySnapshot {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|s| s.data.get(key).cloned())
    }

    fn range(&mut self, begin: &[u8], end: &[u8], limit: usize, reverse: bool) -> Result<Vec<KeyValue>, StoreError> {
        self.read(|s| {
            let r = s.data.range(begin.to_vec()..end.to_vec());
            let it: Box<dyn Iterator<Item = (&Vec<u8>, &Vec<u8>)>> =
                if reverse { Box::new(r.rev()) } else { Box::new(r) };
            it.take(limit).map(|(k, v)| (k.clone(), v.clone())).collect()
        })
    }

    fn apply(self: Box<Self>, writes: &WriteSet) -> Result<(), StoreError> {
        let mut s = lock(&self.state);
        if self.read_version.is_some_and(|v| v != s.version) {
            return Err(StoreError::Conflict);
        }
        if writes.is_empty() {
            return Ok(());
        }
        for (b, e) in &writes.cleared {
            let doomed: Vec<Vec<u8>> = s.data.range(b.clone()..e.clone()).map(|(k, _)| k.clone()).collect();
            for k in doomed {
                s.data.remove(&k);
            }
        }
        for (k, op) in &writes.ops {
            match op {
                Op::Set(v) => {
                    s.data.insert(k.clone(), v.clone());
                }
                Op::Clear => {
                    s.data.remove(k);
                }
                Op::Add(d) => {
                    let v = add_le(s.data.get(k).map(Vec::as_slice), *d);
                    s.data.insert(k.clone(), v);
                }
            }
        }
        s.version += 1;
        Ok(())
    }
}
