//! `pwn bench store`: batched entity writes, commit latency and range reads on the configured
//! backend (a fresh SQLite file in a temporary folder unless `--db` or the config says
//! otherwise).

use crate::config::PwnConfig;
use crate::stats::{quantile, round3};
use clap::Args;
use pwn_store::keys::{EntityRecord, entity_at_key, entity_key, finest_quadkey, subspace};
use pwn_store::{BackendKind, StoreConfig, open_store};
use std::path::PathBuf;
use std::time::Instant;

/// Flags of `pwn bench store`.
#[derive(Args, Debug)]
pub struct BenchStoreArgs {
    /// Entity records per transaction.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=20_000))]
    batch: u32,
    /// Transactions to write.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    transactions: u32,
    /// Use this SQLite file instead of a temporary one (it is written to!).
    #[arg(long)]
    db: Option<PathBuf>,
    /// Use the backend from the configuration file (for example FoundationDB) instead.
    #[arg(long, conflicts_with = "db")]
    configured: bool,
    /// Print the figures as one JSON object on the last line.
    #[arg(long)]
    json: bool,
}

/// A ~100-byte entity record, the size of a typical persisted prop or non-player character.
fn record(i: u64) -> EntityRecord {
    let f = i as f32;
    EntityRecord {
        kind: (i % 7) as u32,
        position_m: [(f * 0.37) % 4000.0 - 2000.0, 1.0, (f * 0.53) % 4000.0 - 2000.0],
        yaw_rad: (f * 0.1) % 6.0,
        health: 100,
        data: vec![(i % 251) as u8; 70],
    }
}

/// Runs the benchmark.
pub fn bench_store(cfg: &PwnConfig, args: &BenchStoreArgs) -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    let store_cfg = if args.configured {
        cfg.store.clone()
    } else {
        let path = args.db.clone().unwrap_or_else(|| temp.path().join("bench.sqlite"));
        StoreConfig { backend: BackendKind::Sqlite, path, cluster_file: None }
    };
    let store = open_store(&store_cfg)?;
    eprintln!(
        "pwn bench store: {} backend, {} transactions of {} entity records (~{} bytes each, plus a position-index key)",
        store.backend_name(),
        args.transactions,
        args.batch,
        record(1).encode().len()
    );
    let origin = [-4096.0, -4096.0];
    let size = [8192.0, 8192.0];
    let mut txn_ms = Vec::new();
    let mut commit_ms = Vec::new();
    let started = Instant::now();
    for t in 0..u64::from(args.transactions) {
        let t0 = Instant::now();
        let mut txn = store.begin()?;
        for i in 0..u64::from(args.batch) {
            let id = t * u64::from(args.batch) + i;
            let r = record(id);
            txn.set(&entity_key(id), &r.encode())?;
            txn.set(&entity_at_key(finest_quadkey(r.position_m[0], r.position_m[2], origin, size), id), b"")?;
        }
        let c0 = Instant::now();
        txn.commit()?;
        commit_ms.push(c0.elapsed().as_secs_f64() * 1e3);
        txn_ms.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let write_s = started.elapsed().as_secs_f64();
    let entities = u64::from(args.transactions) * u64::from(args.batch);
    let writes_per_s = entities as f64 / write_s;

    // Read every entity record back in pages, as a zone loading its cells does.
    let (b, e) = subspace("entities").range();
    let read_start = Instant::now();
    let mut bytes = 0u64;
    let read = store.for_each_page(&b, &e, 10_000, |page| {
        bytes += page.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum::<u64>();
    })?;
    let read_s = read_start.elapsed().as_secs_f64();
    if read != entities {
        anyhow::bail!("read back {read} entities, wrote {entities}");
    }
    let (c50, c99) = (quantile(&commit_ms, 0.5), quantile(&commit_ms, 0.99));
    println!("backend            {}", store.backend_name());
    println!("entity writes/s    {writes_per_s:.0}  ({entities} records in {write_s:.2} s)");
    println!("commit ms          p50 {c50:.2}  p99 {c99:.2}  (whole transaction p99 {:.2})", quantile(&txn_ms, 0.99));
    println!("range read         {:.0} records/s, {:.1} MB/s", read as f64 / read_s, bytes as f64 / read_s / 1e6);
    if args.json {
        let out = serde_json::json!({
            "backend": store.backend_name(),
            "entities": entities,
            "batch": args.batch,
            "entity_writes_per_s": writes_per_s.round(),
            "commit_ms_p50": round3(c50),
            "commit_ms_p99": round3(c99),
            "transaction_ms_p99": round3(quantile(&txn_ms, 0.99)),
            "range_read_records_per_s": (read as f64 / read_s).round(),
            "range_read_mb_per_s": round3(bytes as f64 / read_s / 1e6),
        });
        println!("{out}");
    }
    Ok(())
}
