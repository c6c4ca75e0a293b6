//! `pwn up` and `pwn bots` as real processes: twenty headless bots join the local world over
//! QUIC, play for a few seconds with prediction on, and report no disconnects, every bot
//! moving, and chat from other bots delivered; bots over a conditioned link see its latency.

mod common;

use std::process::Command;

#[test]
fn twenty_bots_play_in_a_local_world_without_disconnects() {
    let dir = tempfile::tempdir().unwrap();
    let common::Up { child: mut up, addr, guard: _guard, .. } = common::start_up(dir.path(), true);

    let bots = Command::new(env!("CARGO_BIN_EXE_pwn"))
        .args(["bots", "--addr", &addr, "--data", dir.path().to_str().unwrap()])
        .args(["--count", "20", "--duration", "4", "--scenario", "wander", "--json"])
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
    assert_eq!(summary["disconnects"], 0, "{summary}");
    assert_eq!(summary["moved"], 20, "{summary}");
    // Bots spawn within chat range of each other at the arena's spawn points.
    assert!(summary["heard_chat"].as_u64().unwrap() >= 10, "{summary}");
    assert!(summary["bytes_per_entity_update"].as_f64().unwrap() > 0.0, "{summary}");
}
