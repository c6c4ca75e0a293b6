//! pwn-store: where all persistent PWN state lives.
//!
//! One ordered, transactional key-value store with FoundationDB's semantics and limits, behind
//! one interface ([`Store`], [`Transaction`]), with three backends:
//! - [`SqliteBackend`]: the embedded default for one machine; a SQLite file in WAL mode shared by
//!   several processes;
//! - [`MemoryBackend`]: for deterministic single-process tests;
//! - `FdbBackend` (cargo feature `fdb`): FoundationDB, for production and many machines.
//!
//! # Layout
//! - [`api`]: the interface, what it guarantees, and the retrying transaction runner.
//! - [`limits`]: FoundationDB's limits, enforced on every backend.
//! - [`keys`]: the world-state key layout (tuple-encoded, documented in docs/STORAGE.md) and the
//!   versioned value records.
//! - [`fence`]: lease fencing: a write for a cell fails if the cell's lease epoch moved.
//! - [`ownership`]: which cell owns each entity; fenced writes and exactly-once handoffs.
//! - [`audit`]: the store's consistency check (one owner per entity, every item once).
//! - [`items`]: items of value: created, moved between owners and listed, each in one
//!   transaction.
//! - [`objects`]: world objects players place: records, position index, idempotent edits.
//! - [`chunk`]: values larger than the value limit, split over several keys.
//! - [`counters`]: id allocation from named counters.
//! - `open`: choosing a backend from configuration.

pub mod api;
pub mod audit;
mod buffered;
pub mod chunk;
pub mod counters;
pub mod error;
#[cfg(feature = "fdb")]
mod fdb;
pub mod fence;
pub mod items;
pub mod keys;
pub mod limits;
mod memory;
pub mod objects;
mod open;
pub mod ownership;
mod sqlite;

pub use api::{AsStoreError, Backend, KeyValue, RangeOptions, RetryPolicy, Store, Transaction};
pub use error::StoreError;
#[cfg(feature = "fdb")]
pub use fdb::FdbBackend;
pub use memory::MemoryBackend;
pub use open::{BackendKind, StoreConfig, ensure_schema, open_store};
pub use sqlite::SqliteBackend;
