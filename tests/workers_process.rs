//! `pwn demo --workers 2` as real processes, with one worker process killed or stopped
//! mid-run: the command ends soon with an error naming the worker, never hangs waiting for it,
//! and leaves no worker behind.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The pid of `parent`'s child whose command line holds `--worker K`, once it is there.
fn worker_pid(parent: u32, k: u32) -> Option<i32> {
    let want = format!("\0--worker\0{k}\0");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // The parent pid is the second field after the command name's closing parenthesis.
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid != Some(parent) {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&want) {
            return Some(pid);
        }
    }
    None
}

fn demo(dir: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_pwn"))
        .args(["demo", "--bots", "4", "--duration", "120", "--workers", "2", "--report"])
        .arg(dir.join("report.html"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for `child` at most `limit`; kills it (and fails) past that.
fn wait_at_most(mut child: Child, limit: Duration) -> (bool, String) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return (status.success(), String::from_utf8_lossy(&out.stderr).into());
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the demo was still running {limit:?} after its worker was signalled");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn signal_worker_1(signal: nix::sys::signal::Signal) {
    let dir = tempfile::tempdir().unwrap();
    let child = demo(dir.path());
    let parent = child.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    let pid = loop {
        if let Some(pid) = worker_pid(parent, 1) {
            break pid;
        }
        assert!(Instant::now() < deadline, "worker 1 never started");
        std::thread::sleep(Duration::from_millis(100));
    };
    // Let it join and play a little first.
    std::thread::sleep(Duration::from_secs(3));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).unwrap();
    // The bots would play for two minutes; the command must not wait for them.
    let (ok, err) = wait_at_most(child, Duration::from_secs(45));
    let still_there = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "));
    if still_there {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    assert!(!ok, "{err}");
    assert!(err.contains("worker 1"), "the error names the worker: {err}");
    assert!(!still_there, "the stopped worker was left behind");
    assert!(worker_pid(parent, 0).is_none(), "worker 0 was left behind");
}

#[test]
fn a_stopped_worker_fails_the_run_instead_of_hanging_it() {
    signal_worker_1(nix::sys::signal::Signal::SIGSTOP);
}

#[test]
fn a_killed_worker_fails_the_run_at_once_and_the_others_are_stopped() {
    signal_worker_1(nix::sys::signal::Signal::SIGKILL);
}
