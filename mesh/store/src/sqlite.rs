//! The embedded backend: one SQLite database file in WAL mode, shared safely by every process
//! of a local world (zone nodes, gateway, world server) and readable with the `sqlite3` shell
//! (`SELECT hex(key), hex(value) FROM kv ORDER BY key`).
//!
//! Concurrency is optimistic, like FoundationDB's. A transaction that reads opens a SQLite read
//! transaction at its first read (a consistent snapshot); its writes wait in memory. At commit it
//! upgrades to a write transaction; if any other connection committed since its snapshot, SQLite
//! refuses the upgrade and the commit fails with a retryable conflict. A transaction that only
//! writes takes the write lock at commit (waiting for other writers), so blind writes and atomic
//! adds never conflict. Commits are synced to disk before they return (`synchronous = FULL`).

use crate::api::{Backend, KeyValue, Transaction};
use crate::buffered::{Buffered, Op, Snapshot, WriteSet, add_le};
use crate::error::StoreError;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Idle connections kept for reuse.
const POOL_IDLE_MAX: usize = 16;
/// How long a writer waits for another process's write lock before giving up (retryably).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The SQLite backend.
pub struct SqliteBackend {
    path: PathBuf,
    idle: Arc<Mutex<Vec<Connection>>>,
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBackend").field("path", &self.path).finish()
    }
}

fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY NOT NULL, value BLOB NOT NULL) WITHOUT ROWID;",
    )?;
    Ok(conn)
}

impl SqliteBackend {
    /// Opens (creating if needed) the database file at `path`, and its folder.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io { path: dir.to_path_buf(), source })?;
        }
        let first = open(&path)?;
        Ok(Self { path, idle: Arc::new(Mutex::new(vec![first])) })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Backend for SqliteBackend {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn begin(&self) -> Result<Box<dyn Transaction>, StoreError> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            None => open(&self.path)?,
        };
        Ok(Box::new(Buffered::new(Box::new(SqliteSnapshot {
            conn: Some(conn),
            idle: self.idle.clone(),
            reading: false,
        }))))
    }
}

struct SqliteSnapshot {
    conn: Option<Connection>,
    idle: Arc<Mutex<Vec<Connection>>>,
    /// Whether a read transaction (the snapshot) is open.
    reading: bool,
}

impl SqliteSnapshot {
    fn conn(&mut self) -> Result<&Connection, StoreError> {
        let conn = self.conn.as_ref().ok_or_else(|| StoreError::Unsupported("transaction already finished"))?;
        if !self.reading {
            conn.execute_batch("BEGIN DEFERRED")?;
            self.reading = true;
        }
        Ok(conn)
    }
}

fn apply_writes(conn: &Connection, writes: &WriteSet) -> Result<(), rusqlite::Error> {
    for (b, e) in &writes.cleared {
        conn.prepare_cached("DELETE FROM kv WHERE key >= ?1 AND key < ?2")?.execute(params![b, e])?;
    }
    for (k, op) in &writes.ops {
        match op {
            Op::Set(v) => {
                conn.prepare_cached("INSERT OR REPLACE INTO kv (key, value) VALUES (?1, ?2)")?
                    .execute(params![k, v])?;
            }
            Op::Clear => {
                conn.prepare_cached("DELETE FROM kv WHERE key = ?1")?.execute(params![k])?;
            }
            Op::Add(d) => {
                let base: Option<Vec<u8>> = conn
                    .prepare_cached("SELECT value FROM kv WHERE key = ?1")?
                    .query_row(params![k], |r| r.get(0))
                    .optional()?;
                let v = add_le(base.as_deref(), *d);
                conn.prepare_cached("INSERT OR REPLACE INTO kv (key, value) VALUES (?1, ?2)")?
                    .execute(params![k, v])?;
            }
        }
    }
    Ok(())
}

impl Snapshot for SqliteSnapshot {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let conn = self.conn()?;
        let v = conn
            .prepare_cached("SELECT value FROM kv WHERE key = ?1")?
            .query_row(params![key], |r| r.get(0))
            .optional()?;
        Ok(v)
    }

    fn range(&mut self, begin: &[u8], end: &[u8], limit: usize, reverse: bool) -> Result<Vec<KeyValue>, StoreError> {
        let conn = self.conn()?;
        let sql = if reverse {
            "SELECT key, value FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key DESC LIMIT ?3"
        } else {
            "SELECT key, value FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key ASC LIMIT ?3"
        };
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params![begin, end, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<Vec<KeyValue>, _>>()?)
    }

    fn apply(mut self: Box<Self>, writes: &WriteSet) -> Result<(), StoreError> {
        let conn = self.conn.as_ref().ok_or_else(|| StoreError::Unsupported("transaction already finished"))?;
        if writes.is_empty() {
            return Ok(()); // Drop ends the read transaction.
        }
        let was_reading = self.reading;
        if !was_reading {
            // Blind writes: take the write lock now, waiting for other writers.
            conn.execute_batch("BEGIN IMMEDIATE")?;
            self.reading = true;
        }
        let result = apply_writes(conn, writes).and_then(|()| conn.execute_batch("COMMIT"));
        match result {
            Ok(()) => {
                self.reading = false;
                Ok(())
            }
            Err(e) => {
                let busy = matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy));
                // The read snapshot is stale (someone committed after it) or another writer holds
                // the lock and will commit first: either way this transaction must start over.
                if busy && was_reading { Err(StoreError::Conflict) } else { Err(e.into()) }
            }
        }
    }
}

impl Drop for SqliteSnapshot {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if self.reading && conn.execute_batch("ROLLBACK").is_err() {
            // A connection we could not reset is not returned to the pool.
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < POOL_IDLE_MAX {
            idle.push(conn);
        }
    }
}
