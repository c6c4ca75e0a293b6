//! `pwn bots` and `pwn demo` as an operator gating CI on them runs them: a threshold that can
//! never pass (a key that holds no number, or a figure this mode does not report) is refused
//! before any bot starts, not failed after the run as "missing"; and a post-run audit of a
//! store that is not there fails rather than auditing an empty store it just created.

use std::process::Command;
use std::time::{Duration, Instant};

fn pwn(args: &[&str]) -> (bool, String, String, Duration) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_pwn")).args(args).output().expect("run pwn");
    let took = started.elapsed();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
        took,
    )
}

/// Port 9 (discard) on loopback: nothing answers QUIC there, so a bot never joins.
const NOWHERE: &str = "127.0.0.1:9";

#[test]
fn a_threshold_on_a_key_that_holds_no_number_is_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    // `audit` is the audit's details (an object): `audit<1` can only fail.
    let (ok, out, err, _) =
        pwn(&["bots", "--addr", NOWHERE, "--data", data, "--count", "1", "--duration", "1", "--threshold", "audit<1"]);
    assert!(!ok, "{out}");
    assert!(err.contains("no such figure"), "refused before the run, not failed after it: {out}\n{err}");
    assert!(!out.contains("FAIL"), "no run: {out}");

    let report = dir.path().join("report.html");
    let report = report.to_str().unwrap();
    for (zones, threshold) in [
        ("1", "scenario==1"),
        ("1", "zone_tick_ms_p99<=100"),
        // Ghost lag is reported with several zones only.
        ("1", "ghost_lag_ticks_p99<=3"),
    ] {
        let (ok, out, err, took) = pwn(&[
            "demo",
            "--bots",
            "1",
            "--duration",
            "1",
            "--zones",
            zones,
            "--report",
            report,
            "--threshold",
            threshold,
        ]);
        assert!(!ok, "{threshold}: {out}");
        assert!(
            err.contains("no such figure") && !out.contains("FAIL"),
            "{threshold} with {zones} zone(s): refused before the run, not failed after it ({took:?}): {out}\n{err}"
        );
    }
}

#[test]
fn auditing_a_store_that_is_not_there_fails_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let missing = dir.path().join("typo.sqlite");
    let (ok, out, err, _) = pwn(&[
        "bots",
        "--addr",
        NOWHERE,
        "--data",
        data,
        "--count",
        "1",
        "--duration",
        "1",
        "--audit-db",
        missing.to_str().unwrap(),
        "--json",
    ]);
    assert!(!missing.exists(), "the audit created an empty store at the path it was given: {out}");
    assert!(!ok, "an audit of no store is not a clean audit: {out}\n{err}");
    assert!(err.contains("no store to audit"), "{err}");
}
