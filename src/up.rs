//! `pwn up`: a complete local world with no configuration. Starts each role as its own `pwn`
//! process (a zone node taking players only from gateways, and a gateway where players log in;
//! the world server joins them when it is built), with the store and certificates in one data
//! folder, prints where clients connect, and on Ctrl-C or SIGTERM stops every process cleanly
//! (SIGTERM, then SIGKILL after a grace period).

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

/// Completes on Ctrl-C or SIGTERM: how every long-running role is stopped.
pub async fn ctrl_c_or_sigterm() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending().await,
            }
        } => {}
    }
    tracing::info!("shutting down");
}

/// Starts `pwn ROLE ...` with its stdout piped; returns it and the address its first line
/// names (`pwn zone listening on ADDR ...`), and keeps draining its stdout.
fn start_role(
    exe: &std::path::Path,
    config: Option<&std::path::Path>,
    name: &'static str,
    args: impl FnOnce(&mut Command),
) -> anyhow::Result<(Role, String)> {
    let mut cmd = Command::new(exe);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    args(&mut cmd);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start the {name}"))?;
    let stdout = child.stdout.take().context("role stdout")?;
    let mut role = Role::new(name, child);
    let mut reader = BufReader::new(stdout);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    let Some(addr) = first.split_whitespace().nth(4).map(str::to_owned).filter(|a| a.parse::<SocketAddr>().is_ok())
    else {
        role.stop();
        bail!("the {name} did not start (said {first:?})");
    };
    // Keep draining its stdout so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in reader.lines() {});
    Ok((role, addr))
}

/// Runs the local world until Ctrl-C or SIGTERM.
pub fn run_up(config: Option<&std::path::Path>, args: &UpArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data).with_context(|| format!("cannot create {}", args.data.display()))?;
    let exe = std::env::current_exe().context("cannot find the pwn executable")?;
    // Signals are caught from before the first role starts: a SIGTERM while they start still
    // stops them all, instead of killing this process and orphaning its children.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (mut term, mut interrupt) = {
        let _entered = runtime.enter();
        use tokio::signal::unix::{SignalKind, signal};
        (signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?)
    };
    // The zone node listens on a free loopback port and takes players only from gateways.
    let (mut zone, zone_addr) = start_role(&exe, config, "zone", |c| {
        c.args(["zone", "--listen", "127.0.0.1:0", "--gateway-only", "--data"]).arg(&args.data);
        if let Some(m) = args.metrics {
            c.arg("--metrics").arg(m.to_string());
        }
    })?;
    say(format_args!("pwn up: zone node (pid {}) on {zone_addr} (gateways only)", zone.child.id()));
    let gateway = start_role(&exe, config, "gateway", |c| {
        c.args(["gateway", "--listen", &args.listen.to_string(), "--zone", &zone_addr, "--data"]).arg(&args.data);
        // A local world is where bot swarms run, all from this one address.
        c.args(["--auth-per-address-per-s", "200"]);
    });
    let (mut gateway, gateway_addr) = match gateway {
        Ok(g) => g,
        Err(e) => {
            zone.stop();
            return Err(e);
        }
    };
    let ca = args.data.join(pwn_net::tls::DEV_CA_CERT);
    say(format_args!("pwn up: clients connect to {gateway_addr}, trusting {}", ca.display()));
    say(format_args!("pwn up: gateway (pid {}) on {gateway_addr}; accounts: `pwn user`", gateway.child.id()));
    say(format_args!("pwn up: store at {}; Ctrl-C stops everything", args.data.join("pwn.sqlite").display()));

    let exited = runtime.block_on(async {
        let watch = async {
            loop {
                for role in [&mut zone, &mut gateway] {
                    if let Ok(Some(status)) = role.child.try_wait() {
                        return (role.name, status);
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        tokio::select! {
            _ = interrupt.recv() => None,
            _ = term.recv() => None,
            status = watch => Some(status),
        }
    });
    say(format_args!("pwn up: stopping"));
    // Players first, then the world they were in.
    gateway.stop();
    zone.stop();
    if let Some((name, status)) = exited {
        bail!("the {name} exited on its own ({status})");
    }
    Ok(())
}

/// Prints a line to standard output, ignoring a reader that went away: the world must still
/// stop cleanly when whoever watched its output (a pipe, a test) has closed it.
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}
