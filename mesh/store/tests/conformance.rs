//! The conformance suite: every guarantee of `pwn_store::api`, run against every backend present
//! (memory and SQLite always; FoundationDB when built with `--features fdb` and FDB_CLUSTER_FILE
//! names a cluster).

use pwn_store::fence::{check_lease, grant_lease};
use pwn_store::keys::{CellKey, entity_key};
use pwn_store::limits::{KEY_SIZE_MAX, TRANSACTION_SIZE_MAX, VALUE_SIZE_MAX};
use pwn_store::{MemoryBackend, RangeOptions, SqliteBackend, Store, StoreError};
use std::sync::Arc;

/// A prefix per test so that a shared FoundationDB cluster can run the suite repeatedly.
fn k(test: &str, key: &str) -> Vec<u8> {
    format!("conformance/{test}/{key}").into_bytes()
}

fn all(test: &str) -> (Vec<u8>, Vec<u8>) {
    (format!("conformance/{test}/").into_bytes(), format!("conformance/{test}0").into_bytes())
}

fn clean(store: &Store, test: &str) {
    let (b, e) = all(test);
    store.transact(|t| t.clear_range(&b, &e)).unwrap();
}

fn ordering_and_limits(store: Store) {
    clean(&store, "order");
    let keys = ["m", "a", "z", "b", "ab", "a\u{0}", "y"];
    store
        .transact(|t| {
            for key in keys {
                t.set(&k("order", key), key.as_bytes())?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
    let (b, e) = all("order");
    let mut txn = store.begin().unwrap();
    let forward: Vec<Vec<u8>> =
        txn.get_range(&b, &e, RangeOptions::default()).unwrap().into_iter().map(|(_, v)| v).collect();
    let mut sorted: Vec<Vec<u8>> = keys.iter().map(|s| s.as_bytes().to_vec()).collect();
    sorted.sort();
    assert_eq!(forward, sorted);
    let reverse: Vec<Vec<u8>> =
        txn.get_range(&b, &e, RangeOptions { limit: 3, reverse: true }).unwrap().into_iter().map(|(_, v)| v).collect();
    let expected: Vec<Vec<u8>> = sorted.iter().rev().take(3).cloned().collect();
    assert_eq!(reverse, expected);
    assert_eq!(txn.get_range(&b, &e, RangeOptions { limit: 2, reverse: false }).unwrap().len(), 2);
    assert!(txn.get_range(&e, &b, RangeOptions::default()).unwrap().is_empty(), "an inverted range reads nothing");
}

fn read_your_writes(store: Store) {
    clean(&store, "ryw");
    store.transact(|t| t.set(&k("ryw", "b"), b"committed")).unwrap();
    let mut t = store.begin().unwrap();
    t.set(&k("ryw", "a"), b"1").unwrap();
    assert_eq!(t.get(&k("ryw", "a")).unwrap().as_deref(), Some(&b"1"[..]));
    t.clear(&k("ryw", "b")).unwrap();
    assert_eq!(t.get(&k("ryw", "b")).unwrap(), None);
    t.set(&k("ryw", "c"), b"3").unwrap();
    t.set(&k("ryw", "d"), b"4").unwrap();
    t.clear_range(&k("ryw", "c"), &k("ryw", "d")).unwrap();
    t.atomic_add(&k("ryw", "n"), 5).unwrap();
    t.atomic_add(&k("ryw", "n"), -2).unwrap();
    assert_eq!(t.get(&k("ryw", "n")).unwrap(), Some(3i64.to_le_bytes().to_vec()));
    let (b, e) = all("ryw");
    let keys: Vec<Vec<u8>> =
        t.get_range(&b, &e, RangeOptions::default()).unwrap().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, vec![k("ryw", "a"), k("ryw", "d"), k("ryw", "n")]);
    // Another transaction sees none of it before commit...
    assert_eq!(store.begin().unwrap().get(&k("ryw", "a")).unwrap(), None);
    t.commit().unwrap();
    // ...and all of it after.
    let mut after = store.begin().unwrap();
    assert_eq!(after.get(&k("ryw", "a")).unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(after.get(&k("ryw", "b")).unwrap(), None);
    assert_eq!(after.get(&k("ryw", "c")).unwrap(), None);
}

fn dropped_transactions_write_nothing(store: Store) {
    clean(&store, "drop");
    {
        let mut t = store.begin().unwrap();
        t.set(&k("drop", "x"), b"1").unwrap();
    }
    assert_eq!(store.begin().unwrap().get(&k("drop", "x")).unwrap(), None);
}

fn conflicting_read_modify_write_fails_then_retries(store: Store) {
    clean(&store, "conflict");
    let key = k("conflict", "x");
    store.transact(|t| t.set(&key, b"0")).unwrap();
    let mut a = store.begin().unwrap();
    assert_eq!(a.get(&key).unwrap().as_deref(), Some(&b"0"[..]));
    store.transact(|t| t.set(&key, b"b")).unwrap();
    a.set(&key, b"a").unwrap();
    let err = a.commit().unwrap_err();
    assert!(matches!(err, StoreError::Conflict) || err.is_retryable(), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(store.begin().unwrap().get(&key).unwrap().as_deref(), Some(&b"b"[..]));
}

fn blind_writes_do_not_conflict(store: Store) {
    clean(&store, "blind");
    let mut a = store.begin().unwrap();
    a.set(&k("blind", "a"), b"1").unwrap();
    a.atomic_add(&k("blind", "n"), 1).unwrap();
    store.transact(|t| t.atomic_add(&k("blind", "n"), 10)).unwrap();
    a.commit().unwrap();
    assert_eq!(store.begin().unwrap().get(&k("blind", "n")).unwrap(), Some(11i64.to_le_bytes().to_vec()));
}

fn concurrent_increments_lose_nothing(store: Store) {
    clean(&store, "incr");
    let threads = 4;
    let per_thread = 50;
    let add = k("incr", "add");
    let rmw = k("incr", "rmw");
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..per_thread {
                    store.transact(|t| t.atomic_add(&add, 1)).unwrap();
                    // Read-modify-write: correct only if conflicts are detected and retried.
                    store
                        .transact(|t| {
                            let n = t.get(&rmw)?.map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap_or([0; 8])));
                            t.set(&rmw, &(n + 1).to_le_bytes())
                        })
                        .unwrap();
                }
            });
        }
    });
    let mut t = store.begin().unwrap();
    let expected = (threads * per_thread) as i64;
    assert_eq!(t.get(&add).unwrap(), Some(expected.to_le_bytes().to_vec()));
    assert_eq!(t.get(&rmw).unwrap(), Some((expected as u64).to_le_bytes().to_vec()));
}

fn limits_are_enforced(store: Store) {
    let mut t = store.begin().unwrap();
    let long_key = vec![b'k'; KEY_SIZE_MAX + 1];
    assert!(matches!(t.set(&long_key, b"v"), Err(StoreError::KeyTooLarge { .. })));
    assert!(matches!(t.get(&long_key), Err(StoreError::KeyTooLarge { .. })));
    let big = vec![0u8; VALUE_SIZE_MAX + 1];
    assert!(matches!(t.set(&k("limits", "v"), &big), Err(StoreError::ValueTooLarge { .. })));
    let chunk = vec![0u8; VALUE_SIZE_MAX];
    let mut result = Ok(());
    for i in 0..(TRANSACTION_SIZE_MAX / VALUE_SIZE_MAX + 2) {
        result = t.set(&k("limits", &i.to_string()), &chunk);
        if result.is_err() {
            break;
        }
    }
    assert!(matches!(result, Err(StoreError::TransactionTooLarge { .. })), "{result:?}");
    assert!(!StoreError::KeyTooLarge { len: 1, max: 0 }.is_retryable());
}

fn large_ranges_stream_in_order(store: Store) {
    clean(&store, "large");
    let n = 12_000u32;
    for batch in 0..(n / 3_000) {
        store
            .transact(|t| {
                for i in batch * 3_000..(batch + 1) * 3_000 {
                    t.set(&k("large", &format!("{i:06}")), &i.to_le_bytes())?;
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
    }
    let (b, e) = all("large");
    let mut t = store.begin().unwrap();
    assert_eq!(t.get_range(&b, &e, RangeOptions::default()).unwrap().len(), n as usize);
    // Page through it 1,000 at a time, as a streaming reader does.
    let mut seen = 0u32;
    let mut cursor = b.clone();
    loop {
        let page = t.get_range(&cursor, &e, RangeOptions { limit: 1_000, reverse: false }).unwrap();
        for (_, v) in &page {
            assert_eq!(u32::from_le_bytes(v.as_slice().try_into().unwrap()), seen);
            seen += 1;
        }
        match page.last() {
            Some((last, _)) if page.len() == 1_000 => {
                cursor = last.clone();
                cursor.push(0);
            }
            _ => break,
        }
    }
    assert_eq!(seen, n);
    let mut last: Option<Vec<u8>> = None;
    let streamed = store
        .for_each_page(&b, &e, 700, |page| {
            for (k, _) in page {
                assert!(last.as_ref().is_none_or(|l| l < k), "pages out of order");
                last = Some(k.clone());
            }
        })
        .unwrap();
    assert_eq!(streamed, u64::from(n));
    // Buffered writes interleave correctly with a large committed range.
    t.clear(&k("large", "000005")).unwrap();
    t.set(&k("large", "000005x"), b"new").unwrap();
    let page = t.get_range(&b, &e, RangeOptions { limit: 8, reverse: false }).unwrap();
    let names: Vec<String> =
        page.iter().map(|(k, _)| String::from_utf8_lossy(&k[k.len() - 7..]).into_owned()).collect();
    assert_eq!(names, ["/000000", "/000001", "/000002", "/000003", "/000004", "000005x", "/000006", "/000007"]);
}

fn chunked_values_round_trip(store: Store) {
    clean(&store, "chunk");
    let base = k("chunk", "blob");
    let data: Vec<u8> = (0..250_000u32).map(|i| (i % 251) as u8).collect();
    store.transact(|t| pwn_store::chunk::write_chunked(t, &base, &data)).unwrap();
    let back = store.transact(|t| pwn_store::chunk::read_chunked(t, &base)).unwrap();
    assert_eq!(back.as_deref(), Some(data.as_slice()));
    store.transact(|t| pwn_store::chunk::write_chunked(t, &base, b"short")).unwrap();
    let back = store.transact(|t| pwn_store::chunk::read_chunked(t, &base)).unwrap();
    assert_eq!(back.as_deref(), Some(&b"short"[..]));
}

fn stale_lease_holders_never_commit(store: Store) {
    let cell = CellKey { level: 3, path: 0b10_01_11 };
    let a = store.transact(|t| grant_lease(t, cell, 1)).unwrap();
    let key = entity_key(0xfe11ce);
    store
        .transact(|t| {
            check_lease(t, cell, a.epoch)?;
            t.set(&key, b"written by a")
        })
        .unwrap();
    // The cell moves to node 2 while node 1 is in the middle of a write.
    let mut stale = store.begin().unwrap();
    check_lease(stale.as_mut(), cell, a.epoch).unwrap();
    stale.set(&key, b"stale write").unwrap();
    let b = store.transact(|t| grant_lease(t, cell, 2)).unwrap();
    assert!(b.epoch > a.epoch);
    assert!(stale.commit().is_err(), "a write fenced by a moved lease committed");
    // Retrying as node 1 is refused outright, and never retried by the runner.
    let err = store
        .transact(|t| {
            check_lease(t, cell, a.epoch)?;
            t.set(&key, b"stale retry")
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::Fenced { expected, found: Some(f), .. } if expected == a.epoch && f == b.epoch));
    assert!(!err.is_retryable());
    assert_eq!(store.begin().unwrap().get(&key).unwrap().as_deref(), Some(&b"written by a"[..]));
}

macro_rules! suite {
    ($module:ident, $make:expr) => {
        mod $module {
            use super::*;
            #[test]
            fn ordering_and_limits() {
                super::ordering_and_limits($make);
            }
            #[test]
            fn read_your_writes() {
                super::read_your_writes($make);
            }
            #[test]
            fn dropped_transactions_write_nothing() {
                super::dropped_transactions_write_nothing($make);
            }
            #[test]
            fn conflicting_read_modify_write_fails_then_retries() {
                super::conflicting_read_modify_write_fails_then_retries($make);
            }
            #[test]
            fn blind_writes_do_not_conflict() {
                super::blind_writes_do_not_conflict($make);
            }
            #[test]
            fn concurrent_increments_lose_nothing() {
                super::concurrent_increments_lose_nothing($make);
            }
            #[test]
            fn limits_are_enforced() {
                super::limits_are_enforced($make);
            }
            #[test]
            fn large_ranges_stream_in_order() {
                super::large_ranges_stream_in_order($make);
            }
            #[test]
            fn chunked_values_round_trip() {
                super::chunked_values_round_trip($make);
            }
            #[test]
            fn stale_lease_holders_never_commit() {
                super::stale_lease_holders_never_commit($make);
            }
        }
    };
}

suite!(memory, Store::new(Arc::new(MemoryBackend::new())));

/// Each SQLite test gets its own file in a temporary folder. The folders' guards are kept in a
/// static list so they live as long as the test process.
fn sqlite_store() -> Store {
    use std::sync::Mutex;
    static DIRS: Mutex<Vec<tempfile::TempDir>> = Mutex::new(Vec::new());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(Arc::new(SqliteBackend::open(dir.path().join("pwn.sqlite")).unwrap()));
    DIRS.lock().unwrap().push(dir);
    store
}

suite!(sqlite, sqlite_store());

#[cfg(feature = "fdb")]
fn fdb_store() -> Option<Store> {
    let cluster = std::env::var("FDB_CLUSTER_FILE").ok()?;
    Some(Store::new(Arc::new(pwn_store::FdbBackend::open(Some(std::path::Path::new(&cluster))).unwrap())))
}

#[cfg(feature = "fdb")]
mod fdb_cluster {
    //! Runs only where FDB_CLUSTER_FILE names a cluster; elsewhere each test says so and returns.
    macro_rules! fdb_case {
        ($name:ident) => {
            #[test]
            fn $name() {
                match super::fdb_store() {
                    Some(store) => super::$name(store),
                    None => eprintln!("FDB_CLUSTER_FILE not set: FoundationDB conformance not run"),
                }
            }
        };
    }
    fdb_case!(ordering_and_limits);
    fdb_case!(read_your_writes);
    fdb_case!(dropped_transactions_write_nothing);
    fdb_case!(conflicting_read_modify_write_fails_then_retries);
    fdb_case!(blind_writes_do_not_conflict);
    fdb_case!(concurrent_increments_lose_nothing);
    fdb_case!(limits_are_enforced);
    fdb_case!(large_ranges_stream_in_order);
    fdb_case!(chunked_values_round_trip);
    fdb_case!(stale_lease_holders_never_commit);
}
