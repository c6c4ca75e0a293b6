//! Helpers shared by the real-process tests.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

/// A `pwn up` world running as real processes, and what its first lines said.
pub struct Up {
    /// The `pwn up` process.
    pub child: Child,
    /// Every role it started: its name ("world server", "zone", "gateway") and pid.
    pub roles: Vec<(String, i32)>,
    /// Each role's address, in the order of `roles`.
    pub role_addrs: Vec<String>,
    /// Where clients connect (the gateway).
    pub addr: String,
    /// The gateway's pid.
    pub gateway_pid: i32,
    /// Kills everything `pwn up` started when the test ends, passed or failed.
    pub guard: GroupGuard,
}

/// `pwn up` runs in a process group of its own, which its roles (and their replacements)
/// inherit: a test that fails half-way still leaves no process behind (SIGKILL to the group when
/// this drops; after a clean stop, the group is gone already).
pub struct GroupGuard(i32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(self.0), nix::sys::signal::Signal::SIGKILL);
    }
}

impl Up {
    /// The pids of the zone nodes.
    pub fn zone_pids(&self) -> Vec<i32> {
        self.roles.iter().filter(|(n, _)| n == "zone").map(|(_, p)| *p).collect()
    }
}

fn pid_in(line: &str) -> i32 {
    line.split("(pid ").nth(1).and_then(|s| s.split(')').next()).and_then(|p| p.parse().ok()).expect("a pid")
}

/// Starts `pwn up` (its default number of zones) on a free port with its data in `data`, and
/// reads where it listens; with `keep_reading` false, its output is closed after that (as a
/// reader that went away).
pub fn start_up(data: &std::path::Path, keep_reading: bool) -> Up {
    start_up_with(data, keep_reading, &[])
}

/// [`start_up`] with more flags for `pwn up`; the lines `pwn up` prints after starting are
/// handed to `on_line` (when reading is kept up).
pub fn start_up_with(data: &std::path::Path, keep_reading: bool, flags: &[&str]) -> Up {
    start_up_watched(data, keep_reading, flags, |_| {})
}

/// [`start_up_with`], handing every later line of `pwn up` to `on_line`.
pub fn start_up_watched(
    data: &std::path::Path,
    keep_reading: bool,
    flags: &[&str],
    on_line: impl Fn(String) + Send + 'static,
) -> Up {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pwn"))
        .args(["up", "--listen", "127.0.0.1:0", "--data", data.to_str().unwrap()])
        .args(flags)
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let guard = GroupGuard(child.id() as i32);
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut roles = Vec::new();
    let mut role_addrs = Vec::new();
    let mut gateway_pid = 0;
    let addr = loop {
        let line = lines.next().expect("pwn up ended before it listened").unwrap();
        if let Some(rest) = line.strip_prefix("pwn up: clients connect to ") {
            break rest.split(',').next().unwrap().to_owned();
        }
        if line.contains("(pid ") {
            let name = line.trim_start_matches("pwn up: ").split(" (pid").next().unwrap().to_owned();
            let pid = pid_in(&line);
            if name == "gateway" {
                gateway_pid = pid;
            }
            roles.push((name, pid));
            role_addrs
                .push(line.split(") on ").nth(1).and_then(|a| a.split(';').next()).unwrap_or_default().to_owned());
        }
    };
    if keep_reading {
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                on_line(line);
            }
        });
    }
    Up { child, roles, role_addrs, addr, gateway_pid, guard }
}
