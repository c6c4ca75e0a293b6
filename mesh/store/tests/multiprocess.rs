//! The embedded store shared by several processes, as `pwn up` shares it: concurrent increments
//! from many processes lose nothing, and a writer killed with SIGKILL in the middle of
//! transactions leaves the store consistent.
//!
//! The test binary re-runs itself as the worker processes: when PWN_STORE_WORKER is set, the
//! test function does the worker's job instead of the parent's.

use pwn_store::keys::counter_key;
use pwn_store::{RangeOptions, SqliteBackend, Store, StoreError};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

const WORKER_ENV: &str = "PWN_STORE_WORKER";
const DB_ENV: &str = "PWN_STORE_DB";

fn store(path: &Path) -> Store {
    Store::new(Arc::new(SqliteBackend::open(path).expect("open store")))
}

fn spawn_worker(test: &str, role: &str, db: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(WORKER_ENV, role)
        .env(DB_ENV, db)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn worker")
}

const PROCESSES: usize = 4;
const INCREMENTS: u64 = 100;

#[test]
fn increments_from_many_processes_lose_nothing() {
    if let Ok(role) = std::env::var(WORKER_ENV) {
        let s = store(Path::new(&std::env::var(DB_ENV).unwrap()));
        assert_eq!(role, "increment");
        for _ in 0..INCREMENTS {
            s.transact(|t| t.atomic_add(&counter_key("atomic"), 1)).unwrap();
            // A read-modify-write counter is only right if cross-process conflicts are caught.
            s.transact(|t| {
                let key = counter_key("rmw");
                let n = t.get(&key)?.map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap_or([0; 8])));
                t.set(&key, &(n + 1).to_le_bytes())
            })
            .unwrap();
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pwn.sqlite");
    store(&db);
    let workers: Vec<Child> =
        (0..PROCESSES).map(|_| spawn_worker("increments_from_many_processes_lose_nothing", "increment", &db)).collect();
    for mut w in workers {
        assert!(w.wait().unwrap().success(), "a worker failed");
    }
    let s = store(&db);
    let mut t = s.begin().unwrap();
    let expected = PROCESSES as u64 * INCREMENTS;
    assert_eq!(t.get(&counter_key("atomic")).unwrap(), Some((expected as i64).to_le_bytes().to_vec()));
    assert_eq!(t.get(&counter_key("rmw")).unwrap(), Some(expected.to_le_bytes().to_vec()));
}

/// Keys a generation writes: every one holds the generation number, so a half-applied
/// transaction would show mixed numbers.
const KEYS_PER_GENERATION: u32 = 500;

#[test]
fn a_writer_killed_mid_transaction_leaves_the_store_consistent() {
    if let Ok(role) = std::env::var(WORKER_ENV) {
        assert_eq!(role, "generations");
        let s = store(Path::new(&std::env::var(DB_ENV).unwrap()));
        for generation in 1u64.. {
            s.transact(|t| {
                for i in 0..KEYS_PER_GENERATION {
                    t.set(format!("gen/{i:04}").as_bytes(), &generation.to_le_bytes())?;
                }
                t.set(b"gen-count", &generation.to_le_bytes())
            })
            .unwrap();
            if generation == 1 {
                // Tell the parent that at least one generation is committed.
                std::fs::write(Path::new(&std::env::var(DB_ENV).unwrap()).with_extension("ready"), b"1").unwrap();
            }
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pwn.sqlite");
    store(&db);
    for round in 0..3 {
        let ready = db.with_extension("ready");
        let _ = std::fs::remove_file(&ready);
        let mut w = spawn_worker("a_writer_killed_mid_transaction_leaves_the_store_consistent", "generations", &db);
        // Wait for a first commit, then kill at a point that varies with the round.
        let started = std::time::Instant::now();
        while !ready.exists() {
            assert!(started.elapsed() < std::time::Duration::from_secs(60), "worker never committed");
            assert!(w.try_wait().unwrap().is_none(), "worker exited early");
            std::thread::yield_now();
        }
        std::thread::sleep(std::time::Duration::from_millis(20 + 37 * round));
        w.kill().unwrap(); // SIGKILL
        w.wait().unwrap();

        let s = store(&db);
        let (count, values) = s
            .transact(|t| {
                let count = t.get(b"gen-count")?.map(|v| u64::from_le_bytes(v.try_into().unwrap()));
                let values = t.get_range(b"gen/", b"gen0", RangeOptions::default())?;
                Ok::<_, StoreError>((count, values))
            })
            .unwrap();
        let count = count.expect("at least one generation committed");
        assert_eq!(values.len(), KEYS_PER_GENERATION as usize);
        for (k, v) in values {
            let g = u64::from_le_bytes(v.try_into().unwrap());
            assert_eq!(
                g,
                count,
                "key {} holds generation {g} but the committed count is {count}",
                String::from_utf8_lossy(&k)
            );
        }
    }
}
