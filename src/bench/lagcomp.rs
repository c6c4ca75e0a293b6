//! `pwn bench lagcomp`: hit rates of a scripted shooter against a running target at several
//! round trips, with and without lag compensation, side by side in one run
//! (`pwn_load_tests::duel`: a bare simulation, no network; the shooter sees the world half a
//! round trip plus an interpolation delay late and aims exactly at what it draws).

use crate::stats::round3;
use clap::Args;

/// Flags of `pwn bench lagcomp`.
#[derive(Args, Debug)]
pub struct BenchLagcompArgs {
    /// Round trips to try, milliseconds (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "0,100,200")]
    rtt_ms: Vec<u32>,
    /// The shooter's interpolation delay, milliseconds (what it draws remote characters behind
    /// the newest snapshot).
    #[arg(long, default_value_t = 100)]
    interp_ms: u32,
    /// The zone's bound on the rewind (`pwn zone --max-rewind-ms`).
    #[arg(long, default_value_t = pwn_zone_node::zone::MAX_REWIND_MS_DEFAULT)]
    max_rewind_ms: u32,
    /// Shots per setting.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    shots: u32,
    /// Print the figures as one JSON object on the last line.
    #[arg(long)]
    json: bool,
}

/// Runs the benchmark.
pub fn bench_lagcomp(cfg: &crate::config::PwnConfig, args: &BenchLagcompArgs) -> anyhow::Result<()> {
    let tick_ms = 1e3 / f64::from(cfg.sim.tick_hz.max(1));
    let ticks = |ms: f64| (ms / tick_ms).round() as u64;
    // As a zone bounds it: whole ticks within the bound.
    let max_rewind =
        (u64::from(args.max_rewind_ms) * u64::from(cfg.sim.tick_hz) / 1_000).min(pwn_sim::lagcomp::REWIND_TICKS_MAX);
    println!(
        "pwn bench lagcomp: {} shots per setting at a target running and turning back, {} ms interpolation, rewind at most {} ms",
        args.shots, args.interp_ms, args.max_rewind_ms
    );
    let mut rows = Vec::new();
    for rtt in &args.rtt_ms {
        let late = ticks(f64::from(*rtt) / 2.0 + f64::from(args.interp_ms));
        if late > 60 {
            anyhow::bail!(
                "{rtt} ms round trip plus {} ms interpolation is past what the bench draws (2 s)",
                args.interp_ms
            );
        }
        let rate = |rewind_max: u64| {
            let o = pwn_load_tests::duel::duel(late, rewind_max, args.shots, true, 1);
            f64::from(o.hits) / f64::from(o.shots.max(1))
        };
        let (with, without) = (rate(max_rewind), rate(0));
        println!(
            "  rtt {rtt:>4} ms (sees {late:>2} ticks late): hit rate with compensation {:>5.1} %, without {:>5.1} %",
            with * 100.0,
            without * 100.0
        );
        rows.push(serde_json::json!({
            "rtt_ms": rtt, "late_ticks": late,
            "hit_rate_compensated": round3(with), "hit_rate_uncompensated": round3(without),
        }));
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "interp_ms": args.interp_ms,
                "max_rewind_ms": args.max_rewind_ms,
                "shots": args.shots,
                "settings": rows,
            })
        );
    }
    Ok(())
}
