//! The FoundationDB backend (cargo feature `fdb`). A thin synchronous shell over the
//! `foundationdb` crate: each call blocks on the client's future. FoundationDB already has the
//! semantics the interface promises; this adds the same size checks the other backends make, so
//! code behaves identically everywhere.
#![allow(unsafe_code)]

use crate::api::{Backend, KeyValue, RangeOptions, Transaction};
use crate::error::StoreError;
use crate::limits::{self, WriteBudget};
use foundationdb::options::{MutationType, StreamingMode};
use foundationdb::{Database, RangeOption};
use futures::executor::block_on;
use std::path::Path;
use std::sync::Once;

static NETWORK: Once = Once::new();

/// A FoundationDB cluster.
pub struct FdbBackend {
    db: Database,
}

impl FdbBackend {
    /// Starts the client network thread (once per process) and opens the cluster named by
    /// `cluster_file` (the client's default cluster file when `None`).
    pub fn open(cluster_file: Option<&Path>) -> Result<Self, StoreError> {
        NETWORK.call_once(|| {
            // SAFETY: called exactly once per process, before any other FoundationDB call. The
            // network thread must outlive every database handle, and handles can live until
            // exit, so it is never stopped.
            let network = unsafe { foundationdb::boot() };
            std::mem::forget(network);
        });
        let path = cluster_file.map(|p| p.to_string_lossy().into_owned());
        let db = Database::new(path.as_deref())?;
        Ok(Self { db })
    }
}

impl Backend for FdbBackend {
    fn name(&self) -> &'static str {
        "fdb"
    }

    fn begin(&self) -> Result<Box<dyn Transaction>, StoreError> {
        Ok(Box::new(FdbTransaction { trx: self.db.create_trx()?, budget: WriteBudget::default() }))
    }
}

struct FdbTransaction {
    trx: foundationdb::Transaction,
    budget: WriteBudget,
}

impl Transaction for FdbTransaction {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        limits::check_key(key)?;
        Ok(block_on(self.trx.get(key, false))?.map(|v| v.to_vec()))
    }

    fn get_range(&mut self, begin: &[u8], end: &[u8], opts: RangeOptions) -> Result<Vec<KeyValue>, StoreError> {
        let mut out = Vec::new();
        let Some(limit) = limits::range_limit(begin, end, opts.limit)? else { return Ok(out) };
        let mut range = RangeOption::from((begin, end));
        range.limit = Some(limit);
        range.reverse = opts.reverse;
        range.mode = StreamingMode::WantAll;
        let mut iteration = 1;
        loop {
            let page = block_on(self.trx.get_range(&range, iteration, false))?;
            out.extend(page.iter().map(|kv| (kv.key().to_vec(), kv.value().to_vec())));
            if out.len() >= limit {
                out.truncate(limit);
                return Ok(out);
            }
            match range.next_range(&page) {
                Some(next) => range = next,
                None => return Ok(out),
            }
            iteration += 1;
        }
    }

    fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.budget.set(key, value)?;
        self.trx.set(key, value);
        Ok(())
    }

    fn clear(&mut self, key: &[u8]) -> Result<(), StoreError> {
        self.budget.clear(key)?;
        self.trx.clear(key);
        Ok(())
    }

    fn clear_range(&mut self, begin: &[u8], end: &[u8]) -> Result<(), StoreError> {
        self.budget.clear_range(begin, end)?;
        self.trx.clear_range(begin, end);
        Ok(())
    }

    fn atomic_add(&mut self, key: &[u8], delta: i64) -> Result<(), StoreError> {
        self.budget.atomic_add(key)?;
        self.trx.atomic_op(key, &delta.to_le_bytes(), MutationType::Add);
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        block_on(self.trx.commit()).map(|_| ()).map_err(|e| StoreError::Fdb(e.into()))
    }
}
