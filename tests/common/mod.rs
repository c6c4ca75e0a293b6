//! Helpers shared by the real-process tests.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

/// A `pwn up` world running as real processes, and what its first lines said.
pub struct Up {
    /// The `pwn up` process.
    pub child: Child,
    /// The zone node's pid.
    pub zone_pid: i32,
    /// Where clients connect (the gateway).
    pub addr: String,
    /// The gateway's pid.
    pub gateway_pid: i32,
}

fn pid_in(line: &str) -> i32 {
    line.split("(pid ").nth(1).and_then(|s| s.split(')').next()).and_then(|p| p.parse().ok()).expect("a pid")
}

/// Starts `pwn up` on a free port with its data in `data`, and reads where it listens; with
/// `keep_reading` false, its output is closed after that (as a reader that went away).
pub fn start_up(data: &std::path::Path, keep_reading: bool) -> Up {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pwn"))
        .args(["up", "--listen", "127.0.0.1:0", "--data", data.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || lines.next().unwrap().unwrap();
    let (zone, clients, gateway) = (next(), next(), next());
    if keep_reading {
        std::thread::spawn(move || for _ in lines {});
    }
    let addr = clients.split("connect to ").nth(1).and_then(|s| s.split(',').next()).unwrap().to_owned();
    Up { child, zone_pid: pid_in(&zone), addr, gateway_pid: pid_in(&gateway) }
}
