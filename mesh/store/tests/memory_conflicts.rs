//! The memory backend's FoundationDB semantics under the cases a hostile reviewer tries:
//! write skew, a range cleared over a key read, atomic adds read back, read-your-writes
//! beside the snapshot, and the commit log's edge (4,096 commits).

use pwn_store::{Backend, MemoryBackend, RangeOptions, StoreError};

fn put(b: &MemoryBackend, key: &[u8], value: &[u8]) {
    let mut t = b.begin().unwrap();
    t.set(key, value).unwrap();
    t.commit().unwrap();
}

/// Two transactions each read the other's key and write their own: one must fail.
#[test]
fn write_skew_is_a_conflict() {
    let b = MemoryBackend::new();
    put(&b, b"x", b"1");
    put(&b, b"y", b"1");
    let mut t1 = b.begin().unwrap();
    let mut t2 = b.begin().unwrap();
    t1.get(b"y").unwrap();
    t2.get(b"x").unwrap();
    t1.set(b"x", b"0").unwrap();
    t2.set(b"y", b"0").unwrap();
    t1.commit().unwrap();
    assert!(matches!(t2.commit(), Err(StoreError::Conflict)));
}

/// An atomic add over a key another transaction read is a write to it; an atomic add read back
/// in its own transaction reads the base, so a later change to the base conflicts.
#[test]
fn atomic_adds_conflict_as_writes_and_as_reads() {
    let b = MemoryBackend::new();
    let mut t = b.begin().unwrap();
    t.get(b"n").unwrap();
    let mut adder = b.begin().unwrap();
    adder.atomic_add(b"n", 1).unwrap();
    adder.commit().unwrap();
    t.set(b"other", b"1").unwrap();
    assert!(matches!(t.commit(), Err(StoreError::Conflict)));

    let mut t = b.begin().unwrap();
    t.atomic_add(b"n", 5).unwrap();
    assert_eq!(t.get(b"n").unwrap(), Some(6i64.to_le_bytes().to_vec()));
    put(&b, b"n", &10i64.to_le_bytes());
    assert!(matches!(t.commit(), Err(StoreError::Conflict)));
    // Blind adds never conflict and add to the value at commit.
    let mut t = b.begin().unwrap();
    t.atomic_add(b"n", 5).unwrap();
    put(&b, b"n", &20i64.to_le_bytes());
    t.commit().unwrap();
    assert_eq!(b.begin().unwrap().get(b"n").unwrap(), Some(25i64.to_le_bytes().to_vec()));
}

/// A key written inside a range read after a limit stopped it still conflicts (conservative),
/// and a range cleared over a read range conflicts.
#[test]
fn ranges_read_conflict_over_their_whole_span() {
    let b = MemoryBackend::new();
    for k in [b"k1", b"k2", b"k3"] {
        put(&b, k, b"v");
    }
    let mut t = b.begin().unwrap();
    let first = t.get_range(b"k", b"l", RangeOptions { limit: 1, ..RangeOptions::default() }).unwrap();
    assert_eq!(first.len(), 1);
    put(&b, b"k9", b"v");
    t.set(b"z", b"1").unwrap();
    assert!(matches!(t.commit(), Err(StoreError::Conflict)));

    let mut t = b.begin().unwrap();
    t.get_range(b"k2", b"k3", RangeOptions::default()).unwrap();
    let mut c = b.begin().unwrap();
    c.clear_range(b"a", b"k25").unwrap();
    c.commit().unwrap();
    t.set(b"z", b"2").unwrap();
    assert!(matches!(t.commit(), Err(StoreError::Conflict)));
}

/// A snapshot older than every commit kept in the log conflicts; one just inside does not.
#[test]
fn the_commit_log_edge_is_exact() {
    let b = MemoryBackend::new();
    put(&b, b"a", b"0");
    let mut inside = b.begin().unwrap();
    inside.get(b"a").unwrap();
    for i in 0..4_096u32 {
        put(&b, b"noise", &i.to_le_bytes());
    }
    inside.set(b"b", b"1").unwrap();
    inside.commit().unwrap();
    let mut outside = b.begin().unwrap();
    outside.get(b"a").unwrap();
    for i in 0..4_097u32 {
        put(&b, b"noise", &i.to_le_bytes());
    }
    outside.set(b"c", b"1").unwrap();
    assert!(matches!(outside.commit(), Err(StoreError::Conflict)));
}
