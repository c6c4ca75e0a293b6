//! The seamless world as real processes: `pwn up --zones 4` (a world server, four zone nodes, a
//! gateway), bots crossing the borders at the centre constantly, and zone nodes killed with
//! SIGKILL in the middle of it, again and again (`pwn up` replaces each). Afterwards every bot
//! is still playing, handoffs happened, and `pwn audit` finds every player and item with
//! exactly one owner and nothing duplicated or lost.

mod common;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Each test runs a four-zone world and a swarm: two at once would measure a machine with two
/// cores overloaded, not the mesh. They take turns.
static ONE_WORLD_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Zone kills over the run.
const KILLS: usize = 4;
/// Seconds the bots play.
const PLAY_S: u64 = 20;

#[test]
fn bots_crossing_borders_survive_zone_kills_and_the_store_stays_consistent() {
    let _turn = ONE_WORLD_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().unwrap();
    // Zones that come up later (replacements) are announced on pwn up's output.
    let zones: Arc<Mutex<Vec<i32>>> = Arc::default();
    let seen = zones.clone();
    let up = common::start_up_watched(dir.path(), true, &["--zones", "4"], move |line| {
        if line.starts_with("pwn up: zone (pid")
            && let Some(pid) = line.split("(pid ").nth(1).and_then(|s| s.split(')').next()).and_then(|p| p.parse().ok())
            && let Ok(mut z) = seen.lock()
        {
            z.push(pid);
        }
    });
    zones.lock().unwrap().extend(up.zone_pids());
    let (addr, data) = (up.addr.clone(), dir.path().to_str().unwrap().to_owned());
    let bots = std::thread::spawn(move || {
        Command::new(env!("CARGO_BIN_EXE_pwn"))
            .args(["bots", "--addr", &addr, "--data", &data, "--count", "24", "--scenario", "border", "--json"])
            .args(["--duration", &PLAY_S.to_string()])
            .output()
            .unwrap()
    });
    // Kill a zone every few seconds while the bots play, a different one each time (the
    // newest is left to settle).
    let started = Instant::now();
    let mut killed = Vec::new();
    for k in 0..KILLS {
        let due = Duration::from_secs(3) + Duration::from_millis(3_500 * k as u64);
        std::thread::sleep(due.saturating_sub(started.elapsed()));
        let victim = zones.lock().unwrap().iter().copied().find(|p| !killed.contains(p));
        if let Some(pid) = victim {
            kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
            killed.push(pid);
        }
    }
    let out = bots.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "pwn bots failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    kill(Pid::from_raw(up.child.id() as i32), Signal::SIGTERM).unwrap();
    let mut child = up.child;
    let status = child.wait().unwrap();
    assert!(status.success(), "pwn up: {status}");
    assert_eq!(killed.len(), KILLS, "zones killed: {killed:?}");
    assert!(zones.lock().unwrap().len() >= 4 + KILLS, "every killed zone was replaced: {:?}", zones.lock().unwrap());

    assert_eq!(summary["joined"], 24, "{summary}");
    assert_eq!(summary["disconnects"], 0, "every bot still plays: {summary}");
    assert!(summary["handoffs"].as_u64().unwrap() > 0, "bots crossed borders: {summary}");
    // Bots of the killed zones were placed again by their cells' new owners, on the same
    // connection.
    assert!(summary["zone_switches"].as_u64().unwrap() > 0, "bots of killed zones placed again: {summary}");
    eprintln!("{summary}");
    assert_eq!(summary["moved"], 24, "{summary}");

    let audit = Command::new(env!("CARGO_BIN_EXE_pwn"))
        .args(["audit", "--json", "--db", dir.path().join("pwn.sqlite").to_str().unwrap()])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&audit.stdout).trim()).unwrap();
    assert!(audit.status.success(), "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    assert_eq!(report["losses"], 0, "{report}");
    let crates = pwn_sim::WorldDesc::arena().crates.len();
    assert_eq!(report["owned_entities"], 24 + crates, "every bot and every crate has one owner: {report}");
    // Each bot's starter kit: three items each, all still there.
    assert_eq!(report["items"], 72, "{report}");
}

/// `[lease-1]`, `[world-2]`, `[proxy-7]`: a zone frozen (SIGSTOP) past its lease loses its cells
/// to the living; its players stay connected and are placed again by the cells' new owners;
/// woken up (SIGCONT) it serves nothing, and the store stays consistent.
#[test]
fn a_zone_frozen_past_its_lease_loses_its_cells_and_its_players_move_on() {
    let _turn = ONE_WORLD_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().unwrap();
    let up = common::start_up_with(dir.path(), true, &["--zones", "4"]);
    let frozen = up.roles.iter().position(|(n, _)| n == "zone").unwrap();
    let (frozen_pid, frozen_addr) = (up.roles[frozen].1, up.role_addrs[frozen].clone());
    let (addr, data) = (up.addr.clone(), dir.path().to_str().unwrap().to_owned());
    let bots = std::thread::spawn(move || {
        Command::new(env!("CARGO_BIN_EXE_pwn"))
            .args(["bots", "--addr", &addr, "--data", &data, "--count", "16", "--scenario", "border", "--json"])
            .args(["--duration", "16"])
            .output()
            .unwrap()
    });
    std::thread::sleep(Duration::from_secs(4));
    kill(Pid::from_raw(frozen_pid), Signal::SIGSTOP).unwrap();
    // Past the lease (3 s) and the world server's margin (1 s), with room to re-route.
    std::thread::sleep(Duration::from_secs(6));
    kill(Pid::from_raw(frozen_pid), Signal::SIGCONT).unwrap();
    let out = bots.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "pwn bots failed: {stdout}");
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    kill(Pid::from_raw(up.child.id() as i32), Signal::SIGTERM).unwrap();
    let mut child = up.child;
    assert!(child.wait().unwrap().success());
    assert_eq!(summary["disconnects"], 0, "{summary}");
    assert!(summary["zone_switches"].as_u64().unwrap() > 0, "the frozen zone's bots were placed again: {summary}");

    // The frozen zone holds no lease any more: its cells went to the living.
    let store = pwn_store::Store::new(std::sync::Arc::new(
        pwn_store::SqliteBackend::open(dir.path().join("pwn.sqlite")).unwrap(),
    ));
    let (nodes, leases) = store
        .transact(|t| {
            let (b, e) = pwn_store::keys::nodes_range();
            let nodes = t.get_range(&b, &e, pwn_store::RangeOptions::default())?;
            Ok::<_, pwn_store::StoreError>((nodes, pwn_store::fence::all_leases(t)?))
        })
        .unwrap();
    let frozen_node = nodes
        .iter()
        .find_map(|(k, v)| {
            let r = pwn_store::keys::NodeRecord::decode(k, v).ok()?;
            let (_, _, id) = foundationdb_tuple::unpack::<(String, String, u64)>(k).ok()?;
            (r.addr == frozen_addr).then_some(id)
        })
        .expect("the frozen zone's node record");
    assert_eq!(leases.len(), 4);
    assert!(leases.iter().all(|(_, l)| l.node != frozen_node), "the frozen zone kept a cell: {leases:?}");
    assert!(leases.iter().any(|(_, l)| l.epoch > 1), "its cell was granted again with a higher epoch: {leases:?}");
    let audit = store.transact(|t| pwn_store::audit::audit(t)).unwrap();
    assert!(audit.clean(), "{audit:?}");
    assert_eq!(audit.owned_entities, 16 + pwn_sim::WorldDesc::arena().crates.len() as u64, "{audit:?}");
}
