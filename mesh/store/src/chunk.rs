//! Values larger than the 100 kB value limit, split over several keys:
//! `base + ("n",)` holds `(total_len, chunk_count)` and `base + (i,)` holds chunk `i`.
//! Writing replaces the whole previous value; reading checks the length.

use crate::api::{RangeOptions, Transaction};
use crate::error::StoreError;
use foundationdb_tuple::{Subspace, pack, unpack};

/// Bytes per chunk (under the value limit, leaving room for FoundationDB's overheads).
pub const CHUNK_SIZE: usize = 90_000;

/// Writes `data` under `base`, replacing any value stored there before.
pub fn write_chunked(txn: &mut dyn Transaction, base: &[u8], data: &[u8]) -> Result<(), StoreError> {
    let s = Subspace::from_bytes(base.to_vec());
    let (b, e) = s.range();
    txn.clear_range(&b, &e)?;
    let chunks = data.len().div_ceil(CHUNK_SIZE);
    txn.set(&s.pack(&"n"), &pack(&(data.len() as u64, chunks as u64)))?;
    for (i, c) in data.chunks(CHUNK_SIZE).enumerate() {
        txn.set(&s.pack(&(i as u64)), c)?;
    }
    Ok(())
}

/// Reads a value written by [`write_chunked`]; `None` if there is none.
pub fn read_chunked(txn: &mut dyn Transaction, base: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
    let s = Subspace::from_bytes(base.to_vec());
    let header_key = s.pack(&"n");
    let Some(header) = txn.get(&header_key)? else { return Ok(None) };
    let (len, chunks): (u64, u64) = unpack(&header)
        .map_err(|e| StoreError::Decode { key: crate::keys::describe(&header_key), why: e.to_string() })?;
    // Chunk indices are tuple integers, which sort after the string "n" of the header.
    let begin = s.pack(&0u64);
    let end = s.pack(&chunks);
    let rows = txn.get_range(&begin, &end, RangeOptions { limit: chunks as usize, reverse: false })?;
    let mut out = Vec::with_capacity(len.min(crate::limits::TRANSACTION_SIZE_MAX as u64) as usize);
    for (i, (k, v)) in rows.iter().enumerate() {
        if *k != s.pack(&(i as u64)) {
            return Err(StoreError::Decode { key: crate::keys::describe(k), why: format!("chunk {i} missing") });
        }
        out.extend_from_slice(v);
    }
    if out.len() as u64 != len || rows.len() as u64 != chunks {
        return Err(StoreError::Decode {
            key: crate::keys::describe(&header_key),
            why: format!("expected {len} bytes in {chunks} chunks, found {} in {}", out.len(), rows.len()),
        });
    }
    Ok(Some(out))
}
