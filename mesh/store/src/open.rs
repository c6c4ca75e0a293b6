//! Choosing and opening a backend from configuration (`[store]` in the `pwn` config file).

use crate::api::Store;
use crate::error::StoreError;
use crate::keys::{SCHEMA_VERSION, describe, schema_key};
use crate::memory::MemoryBackend;
use crate::sqlite::SqliteBackend;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

/// Which backend to use.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The embedded SQLite file (the default).
    #[default]
    Sqlite,
    /// In memory, lost at exit (tests and demos).
    Memory,
    /// FoundationDB (requires a build with the `fdb` feature).
    Fdb,
}

/// Store configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// The backend.
    pub backend: BackendKind,
    /// The SQLite database file (backend `sqlite`).
    pub path: PathBuf,
    /// The FoundationDB cluster file (backend `fdb`); the client's default when absent.
    pub cluster_file: Option<PathBuf>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self { backend: BackendKind::Sqlite, path: PathBuf::from("data/pwn.sqlite"), cluster_file: None }
    }
}

/// Opens the configured store and checks (or, on a new store, writes) the layout version.
pub fn open_store(cfg: &StoreConfig) -> Result<Store, StoreError> {
    let store = open_backend(cfg)?;
    ensure_schema(&store)?;
    Ok(store)
}

/// Refuses a store whose key layout this build does not know; stamps a new store with ours.
pub fn ensure_schema(store: &Store) -> Result<(), StoreError> {
    let key = schema_key();
    store.transact(|t| match t.get(&key)? {
        None => t.set(&key, &foundationdb_tuple::pack(&(SCHEMA_VERSION,))),
        Some(v) => match foundationdb_tuple::unpack::<(i64,)>(&v) {
            Ok((found,)) if found == SCHEMA_VERSION => Ok(()),
            Ok((found,)) => Err(StoreError::Decode {
                key: describe(&key),
                why: format!("store layout version {found}; this build reads version {SCHEMA_VERSION}"),
            }),
            Err(e) => Err(StoreError::Decode { key: describe(&key), why: e.to_string() }),
        },
    })
}

fn open_backend(cfg: &StoreConfig) -> Result<Store, StoreError> {
    match cfg.backend {
        BackendKind::Sqlite => Ok(Store::new(Arc::new(SqliteBackend::open(&cfg.path)?))),
        BackendKind::Memory => Ok(Store::new(Arc::new(MemoryBackend::new()))),
        #[cfg(feature = "fdb")]
        BackendKind::Fdb => Ok(Store::new(Arc::new(crate::fdb::FdbBackend::open(cfg.cluster_file.as_deref())?))),
        #[cfg(not(feature = "fdb"))]
        BackendKind::Fdb => {
            Err(StoreError::Unsupported("this build has no FoundationDB support; rebuild with `--features fdb`"))
        }
    }
}
