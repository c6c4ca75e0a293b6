//! Store errors. Each says whether retrying the whole transaction can succeed, as
//! FoundationDB's errors do; they are never flattened into strings.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another transaction committed something this one read: retry from the start.
    #[error("transaction conflict: retry")]
    Conflict,
    /// The transaction ran longer than the 5 s limit: retry, and do less per transaction.
    #[error("transaction older than {limit_ms} ms: retry with a shorter transaction")]
    TooOld {
        /// The limit.
        limit_ms: u64,
    },
    /// The store was busy for longer than the lock timeout (another process holds the write
    /// lock); retrying may succeed.
    #[error("store busy")]
    Busy(#[source] rusqlite::Error),
    /// A key is longer than the limit.
    #[error("key of {len} bytes exceeds the {max}-byte limit")]
    KeyTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A value is longer than the limit (use the chunking helpers).
    #[error("value of {len} bytes exceeds the {max}-byte limit (store large values chunked)")]
    ValueTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The transaction's writes exceed the size limit.
    #[error("transaction writes of {bytes} bytes exceed the {max}-byte limit")]
    TransactionTooLarge {
        /// Bytes written so far.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// A range's end sorts before its beginning.
    #[error("inverted range")]
    InvertedRange,
    /// A write on behalf of a cell found that the cell's lease moved on: this writer is stale
    /// and must stop writing for the cell. Not retryable.
    #[error("fenced: cell {cell} lease epoch is {found:?}, writer holds {expected}")]
    Fenced {
        /// The cell, as text.
        cell: String,
        /// The epoch the writer believed it held.
        expected: u64,
        /// The epoch in the store (`None` if the lease is gone).
        found: Option<u64>,
    },
    /// A stored value could not be decoded: the store holds something this build does not
    /// understand (a newer format, or damage).
    #[error("cannot decode stored value at {key}: {why}")]
    Decode {
        /// The key, printed.
        key: String,
        /// What was wrong.
        why: String,
    },
    /// SQLite failed (disk full, I/O error, a file that is not a database).
    #[error("sqlite")]
    Sqlite(#[source] rusqlite::Error),
    /// A file or folder of the store could not be used.
    #[error("cannot use {path}")]
    Io {
        /// The path.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The operation is not available in this build or state.
    #[error("{0}")]
    Unsupported(&'static str),
    /// The FoundationDB client reported an error.
    #[cfg(feature = "fdb")]
    #[error("foundationdb: {0}")]
    Fdb(#[from] foundationdb::FdbError),
}

impl StoreError {
    /// Whether running the whole transaction again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Conflict | StoreError::TooOld { .. } | StoreError::Busy(_) => true,
            #[cfg(feature = "fdb")]
            StoreError::Fdb(e) => e.is_retryable(),
            _ => false,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => StoreError::Busy(e),
            _ => StoreError::Sqlite(e),
        }
    }
}
