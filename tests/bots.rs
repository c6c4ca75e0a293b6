//! `pwn up` and `pwn bots` as real processes: twenty headless bots join the local world over
//! QUIC, play for a few seconds with prediction on, and report no disconnects, every bot
//! moving, and chat from other bots delivered; bots over a conditioned link see its latency.
//! Most of the twenty are cheap bots (no prediction, pwn-client `[game-14]`): they join, move
//! and chat like the five that predict. A threshold that fails, and a store the post-run audit
//! finds a planted duplicate in, make `pwn bots` exit non-zero.

mod common;

use std::process::Command;

/// Each test here runs a whole world (five processes) and a swarm. Run side by side on a
/// two-core machine their logins and joins time each other out, so they take turns.
static ONE_WORLD_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_world_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_WORLD_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn twenty_bots_play_in_a_local_world_without_disconnects() {
    let _turn = one_world_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let common::Up { child: mut up, addr, guard: _guard, .. } = common::start_up(dir.path(), true);

    let bots = Command::new(env!("CARGO_BIN_EXE_pwn"))
        .args(["bots", "--addr", &addr, "--data", dir.path().to_str().unwrap()])
        .args(["--count", "20", "--predicting", "5", "--duration", "4", "--scenario", "wander", "--json"])
        .args(["--threshold", "disconnects==0", "--threshold", "audit_clean==1"])
        .output()
        .unwrap();
    // A few more over a conditioned link: pings ride the same datagrams, so the round trip
    // they measure is the link's.
    let slow = Command::new(env!("CARGO_BIN_EXE_pwn"))
        .args(["bots", "--addr", &addr, "--data", dir.path().to_str().unwrap()])
        .args(["--count", "3", "--duration", "3", "--link", "50ms,5ms,1%", "--seed", "7", "--json"])
        .output()
        .unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(up.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let _ = up.wait();
    let slow_out = String::from_utf8_lossy(&slow.stdout);
    assert!(slow.status.success(), "pwn bots --link failed: {slow_out}");
    let slow_summary: serde_json::Value = serde_json::from_str(slow_out.lines().last().unwrap()).unwrap();
    assert_eq!(slow_summary["disconnects"], 0, "{slow_summary}");
    let rtt = slow_summary["rtt_ms_mean"].as_f64().unwrap();
    // At least the link's 2 x 50 ms (an upper bound would be a timing assertion).
    assert!(rtt >= 95.0, "round trip over a 50 ms link: {rtt} ms");
    let stdout = String::from_utf8_lossy(&bots.stdout);
    assert!(bots.status.success(), "pwn bots failed: {}\n{}", stdout, String::from_utf8_lossy(&bots.stderr));
    let last = stdout.lines().last().unwrap();
    let summary: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(summary["joined"], 20, "{summary}");
    assert_eq!(summary["predicting"], 5, "{summary}");
    assert_eq!(summary["thresholds_failed"], 0, "{summary}");
    assert_eq!(summary["audit_clean"], true, "the post-run audit ran on the world's store: {summary}");
    assert!(summary["inputs_sent"].as_u64().unwrap() > 20 * 60, "cheap bots send inputs too: {summary}");
    assert!(summary["input_ack_ticks_p99"].as_f64().unwrap() > 0.0, "{summary}");
    assert_eq!(summary["disconnects"], 0, "{summary}");
    assert_eq!(summary["moved"], 20, "{summary}");
    // Bots spawn within chat range of each other at the arena's spawn points.
    assert!(summary["heard_chat"].as_u64().unwrap() >= 10, "{summary}");
    assert!(summary["bytes_per_entity_update"].as_f64().unwrap() > 0.0, "{summary}");
}

fn bots(addr: &str, data: &std::path::Path, extra: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pwn"))
        .args(["bots", "--addr", addr, "--data", data.to_str().unwrap(), "--json"])
        .args(extra)
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn a_failing_threshold_or_a_dirty_store_fails_the_run() {
    let _turn = one_world_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let common::Up { child: mut up, addr, guard: _guard, .. } = common::start_up(dir.path(), true);

    // A typo is refused before any bot starts.
    let (ok, _, err) = bots(&addr, dir.path(), &["--threshold", "input_ack_tick_p99<=2"]);
    assert!(!ok && err.contains("no such figure"), "{err}");
    // A threshold the run cannot meet: the run completes, reports it failed, exits non-zero.
    let (ok, out, err) =
        bots(&addr, dir.path(), &["--count", "2", "--duration", "2", "--threshold", "input_ack_ticks_p99<0"]);
    assert!(!ok, "a failed threshold exits non-zero: {out}");
    assert!(out.contains("FAIL  input_ack_ticks_p99<0"), "{out}");
    assert!(err.contains("1 threshold(s) failed"), "{err}");
    let summary: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(summary["thresholds_failed"], 1, "{summary}");
    assert_eq!(summary["audit_clean"], true, "{summary}");

    // Plant a duplicate: item 1 (a bot's starter kit) also in another player's inventory.
    let store = pwn_store::open_store(&pwn_store::StoreConfig {
        backend: pwn_store::BackendKind::Sqlite,
        path: dir.path().join("pwn.sqlite"),
        ..pwn_store::StoreConfig::default()
    })
    .unwrap();
    assert!(store.transact(|t| t.get(&pwn_store::keys::item_key(1))).unwrap().is_some(), "bots got items");
    store.transact(|t| t.set(&pwn_store::keys::inventory_key(4_000_000_000, 1), b"")).unwrap();
    let (ok, out, err) = bots(&addr, dir.path(), &["--count", "1", "--duration", "1"]);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(up.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let _ = up.wait();
    assert!(!ok, "a dirty store fails the run: {out}");
    assert!(err.contains("store audit found problems"), "{err}");
    let summary: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(summary["audit_clean"], false, "{summary}");
    assert_eq!(summary["duplicates"], 1, "{summary}");
}

#[test]
fn a_swarm_of_two_worker_processes_reports_as_one() {
    let _turn = one_world_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    // The world's zones serve metrics (zone i at this port plus i); the swarm scrapes the first.
    let metrics = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let common::Up { child: mut up, addr, guard: _guard, .. } =
        common::start_up_with(dir.path(), true, &["--metrics", &metrics.to_string()]);
    let report = dir.path().join("bots.html");
    let (ok, out, err) = bots(
        &addr,
        dir.path(),
        &[
            "--count",
            "6",
            "--predicting",
            "2",
            "--duration",
            "3",
            "--workers",
            "2",
            "--threshold",
            "joined==6",
            "--scrape",
            &format!("zone-1={metrics}"),
            "--report",
            report.to_str().unwrap(),
        ],
    );
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(up.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let _ = up.wait();
    assert!(ok, "{out}\n{err}");
    let summary: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    // Six bots from two processes: every one joined once (accounts bot-0..5, no session taken
    // over by a twin), the two predicting ones among them, and one audit over the world.
    assert_eq!(summary["bots"], 6, "{summary}");
    assert_eq!(summary["joined"], 6, "{summary}");
    assert_eq!(summary["disconnects"], 0, "{summary}");
    assert_eq!(summary["predicting"], 2, "{summary}");
    assert_eq!(summary["moved"], 6, "{summary}");
    assert_eq!(summary["audit_clean"], true, "{summary}");
    assert!(summary["input_ack_ticks_p99"].as_f64().unwrap() > 0.0, "{summary}");
    // The zone's own figures, scraped during the run, beside the bots', and in the report.
    assert!(summary["roles"]["zone-1"]["tick ms p99 (histogram bucket)"].is_number(), "{summary}");
    let page = std::fs::read_to_string(&report).unwrap();
    assert!(page.contains("Figures from every role") && page.contains("zone-1"), "the report has the zone's figures");
}

/// A gateway admits at most 64 connections from one address (against floods); a swarm larger
/// than that spreads its bots over several loopback addresses, as players come from many.
#[test]
fn a_swarm_larger_than_one_address_may_open_all_joins_through_the_gateway() {
    let _turn = one_world_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let common::Up { child: mut up, addr, guard: _guard, .. } = common::start_up(dir.path(), true);
    let (ok, out, err) = bots(&addr, dir.path(), &["--count", "70", "--predicting", "0", "--duration", "2"]);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(up.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let _ = up.wait();
    assert!(ok, "{out}\n{err}");
    let summary: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(summary["joined"], 70, "{summary}\n{out}");
    assert_eq!(summary["disconnects"], 0, "{summary}");
}
