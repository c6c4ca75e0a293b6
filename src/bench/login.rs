//! `pwn bench login`: login latency at a fixed arrival rate, with OWASP's argon2id parameters,
//! through the gateway's bounded hashing pool and the real store (a fresh SQLite file). Each
//! login is timed from when it was due, not from when it started, so queueing behind slow
//! logins counts (no coordinated omission).

use crate::stats::{quantile, round3};
use clap::Args;
use pwn_gateway::accounts::Accounts;
use pwn_gateway::pool::HashPool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Flags of `pwn bench login`.
#[derive(Args, Debug)]
pub struct BenchLoginArgs {
    /// Logins per second offered.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Logins to time.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    count: u32,
    /// Accounts the logins cycle through.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    accounts: u32,
    /// Hashing workers (the gateway uses one per core).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Print the figures as one JSON object on the last line.
    #[arg(long)]
    json: bool,
}

/// Runs the benchmark.
pub fn bench_login(args: &BenchLoginArgs) -> anyhow::Result<()> {
    if !(args.rate.is_finite() && args.rate > 0.0 && args.rate <= 10_000.0) {
        anyhow::bail!("--rate must be between 0 and 10000 logins per second");
    }
    let dir = tempfile::tempdir()?;
    let store = pwn_store::Store::new(Arc::new(pwn_store::SqliteBackend::open(dir.path().join("pwn.sqlite"))?));
    let accounts = Accounts::new(store, 3_600);
    let password = "benchmark passphrase";
    let started = Instant::now();
    for i in 0..args.accounts {
        accounts.register(&format!("bench{i}"), password, pwn_gateway::rules::random_16()?, 0)?;
    }
    let register_ms = started.elapsed().as_secs_f64() * 1e3 / f64::from(args.accounts);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let pool = HashPool::new(args.workers, 1_024);
    let period = Duration::from_secs_f64(1.0 / args.rate);
    let latencies_ms: Vec<f64> = runtime.block_on(async {
        let t0 = tokio::time::Instant::now();
        let mut jobs = Vec::with_capacity(args.count as usize);
        for i in 0..args.count {
            let due = t0 + period * i;
            tokio::time::sleep_until(due).await;
            let (pool, accounts) = (pool.clone(), accounts.clone());
            let user = format!("bench{}", i % args.accounts);
            jobs.push(tokio::spawn(async move {
                let token = pwn_gateway::rules::random_16().map_err(|e| anyhow::anyhow!(e))?;
                let done = pool.run(move || accounts.login(&user, password, token, 1)).await;
                done.map_err(|e| anyhow::anyhow!(e))?.map_err(|e| anyhow::anyhow!(e))?;
                anyhow::Ok(due.elapsed().as_secs_f64() * 1e3)
            }));
        }
        let mut out = Vec::with_capacity(jobs.len());
        for j in jobs {
            out.push(j.await??);
        }
        anyhow::Ok(out)
    })?;
    let (p50, p99) = (quantile(&latencies_ms, 0.5), quantile(&latencies_ms, 0.99));
    println!(
        "pwn bench login: {} logins at {:.1}/s over {} accounts, {} hashing workers (argon2id m=19 MiB t=2 p=1)",
        args.count, args.rate, args.accounts, args.workers
    );
    println!("  login ms p50 {p50:.1}  p99 {p99:.1}  (registration {register_ms:.1} ms each)");
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "logins_per_s": args.rate,
                "login_ms_p50": round3(p50),
                "login_ms_p99": round3(p99),
                "logins": args.count,
                "workers": args.workers,
            })
        );
    }
    Ok(())
}
