//! `pwn up`: a complete local world with no configuration. Starts each role as its own `pwn`
//! process (today the zone node; the gateway and world server join it as they are built), with
//! the store and certificates in one data folder, prints where clients connect, and on Ctrl-C
//! or SIGTERM stops every process cleanly (SIGTERM, then SIGKILL after a grace period).

use anyhow::{Context, bail};
use clap::Args;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a role may take to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Flags of `pwn up`.
#[derive(Args, Debug)]
pub struct UpArgs {
    /// Where players connect (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:7100")]
    listen: SocketAddr,
    /// The data folder: store, certificates.
    #[arg(long, default_value = "data")]
    data: PathBuf,
    /// Serve the zone node's Prometheus metrics at this address (`/metrics`).
    #[arg(long)]
    metrics: Option<SocketAddr>,
}

/// A role's process, stopped cleanly on request.
pub struct Role {
    name: &'static str,
    child: Child,
}

impl Role {
    /// Wraps a started role.
    pub fn new(name: &'static str, child: Child) -> Self {
        Self { name, child }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then SIGKILL after the grace period.
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    tracing::info!(role = self.name, %status, "stopped");
                    return;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => break,
            }
        }
        tracing::warn!(role = self.name, "did not stop in time; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the local world until Ctrl-C or SIGTERM.
pub fn run_up(config: Option<&std::path::Path>, args: &UpArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data).with_context(|| format!("cannot create {}", args.data.display()))?;
    let exe = std::env::current_exe().context("cannot find the pwn executable")?;
    let mut zone = Command::new(&exe);
    if let Some(c) = config {
        zone.arg("--config").arg(c);
    }
    zone.args(["zone", "--listen", &args.listen.to_string(), "--data"]).arg(&args.data);
    if let Some(m) = args.metrics {
        zone.arg("--metrics").arg(m.to_string());
    }
    let mut child =
        zone.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().context("cannot start the zone node")?;
    let mut first = String::new();
    let stdout = child.stdout.take().context("zone stdout")?;
    let mut reader = BufReader::new(stdout);
    reader.read_line(&mut first)?;
    let mut zone = Role { name: "zone", child };
    let Some(addr) = first.split_whitespace().nth(4).map(str::to_owned) else {
        zone.stop();
        bail!("the zone node did not start (said {first:?})");
    };
    // Keep draining the zone's stdout so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in reader.lines() {});
    println!("pwn up: zone node (pid {}) on {addr}", zone.child.id());
    println!("pwn up: clients connect to {addr}, trusting {}", args.data.join(pwn_net::tls::DEV_CA_CERT).display());
    println!("pwn up: store at {}; Ctrl-C stops everything", args.data.join("pwn.sqlite").display());

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let exited = runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let watch = async {
            loop {
                if let Ok(Some(status)) = zone.child.try_wait() {
                    return status;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => anyhow::Ok(None),
            _ = term.recv() => Ok(None),
            status = watch => Ok(Some(status)),
        }
    })?;
    if let Some(status) = exited {
        bail!("the zone node exited on its own ({status})");
    }
    println!("pwn up: stopping");
    zone.stop();
    Ok(())
}
