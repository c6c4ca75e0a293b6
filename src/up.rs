//! `pwn up`: a complete local world with no configuration. Starts each role as its own `pwn`
//! process (a world server, zone nodes taking players only from gateways and serving the cells
//! the world server grants them, and a gateway where players log in), with the store and
//! certificates in one data folder, prints where clients connect, replaces a role that dies
//! (a zone as a new node, whose cells the world server grants once the dead one's leases
//! expired), and on Ctrl-C or SIGTERM stops every process cleanly (SIGTERM, then SIGKILL after
//! a grace period).

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
    /// Serve Prometheus metrics (`/metrics`): zone node `i` (from 0) at this port plus `i`.
    #[arg(long)]
    metrics: Option<SocketAddr>,
    /// Zone nodes sharing the world (the world server splits it into as many cells as a
    /// quadtree level needs: four up to four zones, sixteen beyond). 1 runs one zone holding
    /// the whole world, with no world server.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    zones: u32,
}

/// Restarts of one role allowed within `RESTART_WINDOW` before `pwn up` gives up on the world.
const RESTARTS_MAX: usize = 5;
/// The window `RESTARTS_MAX` counts in.
const RESTART_WINDOW: Duration = Duration::from_secs(60);

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

    /// Whether it is still running (not exited, not killed).
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
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
pub(crate) fn start_role(
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

/// How each role of a local world is started (again, when it dies).
struct Spec {
    name: &'static str,
    args: Vec<String>,
}

/// Runs the local world until Ctrl-C or SIGTERM, replacing roles that die.
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
    // The certificates and the service key exist before any role starts, so roles starting
    // side by side never race to create them.
    pwn_net::tls::service_cert(&args.data)?;
    pwn_net::tls::service_key(&args.data)?;
    let data = args.data.display().to_string();
    let mut roles: Vec<(Spec, Role, String)> = Vec::new();
    let stop_all = |roles: &mut Vec<(Spec, Role, String)>| {
        // Players first, then the world they were in.
        for (_, role, _) in roles.iter_mut().rev() {
            role.stop();
        }
    };
    let start = |spec: &Spec| {
        start_role(&exe, config, spec.name, |c| {
            c.args(&spec.args);
        })
    };
    let mut specs = Vec::new();
    let zone_target = if args.zones > 1 {
        // A fixed port, so a restarted world server is where every role looks for it.
        let port = std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
        let level = match args.zones {
            0..=4 => "1",
            5..=16 => "2",
            _ => "3",
        };
        specs.push(Spec {
            name: "world server",
            args: ["world", "--listen", &format!("127.0.0.1:{port}"), "--data", &data, "--split-levels", level]
                .into_iter()
                .map(String::from)
                .chain(["--zones-expected".to_string(), args.zones.to_string()])
                .collect(),
        });
        format!("127.0.0.1:{port}")
    } else {
        String::new()
    };
    for i in 0..args.zones {
        let mut a: Vec<String> =
            ["zone", "--listen", "127.0.0.1:0", "--gateway-only", "--data", &data].map(String::from).into();
        if args.zones > 1 {
            a.extend(["--world-server".to_string(), zone_target.clone()]);
        }
        if let Some(m) = args.metrics {
            a.extend(["--metrics".to_string(), SocketAddr::new(m.ip(), m.port().saturating_add(i as u16)).to_string()]);
        }
        specs.push(Spec { name: "zone", args: a });
    }
    for mut spec in specs {
        match start(&spec) {
            Ok((role, addr)) => {
                if args.zones == 1 {
                    // The gateway knows the one zone by its address: a replacement takes it over.
                    if let Some(i) = spec.args.iter().position(|a| a == "--listen") {
                        spec.args[i + 1] = addr.clone();
                    }
                }
                say(format_args!("pwn up: {} (pid {}) on {addr}", spec.name, role.pid()));
                roles.push((spec, role, addr));
            }
            Err(e) => {
                stop_all(&mut roles);
                return Err(e);
            }
        }
    }
    let upstream = match args.zones {
        1 => vec!["--zone".to_string(), roles[0].2.clone()],
        _ => vec!["--world-server".to_string(), zone_target.clone()],
    };
    let gateway = Spec {
        name: "gateway",
        args: ["gateway", "--listen", &args.listen.to_string(), "--data", &data]
            .map(String::from)
            .into_iter()
            .chain(upstream)
            // A local world is where bot swarms run, all from this one address.
            .chain(["--auth-per-address-per-s".to_string(), "200".to_string()])
            .collect(),
    };
    let gateway_addr = match start(&gateway) {
        Ok((role, addr)) => {
            say(format_args!("pwn up: gateway (pid {}) on {addr}; accounts: `pwn user`", role.pid()));
            // A replacement listens where clients were told to connect.
            let mut gateway = gateway;
            if let Some(i) = gateway.args.iter().position(|a| a == "--listen") {
                gateway.args[i + 1] = addr.clone();
            }
            roles.push((gateway, role, addr.clone()));
            addr
        }
        Err(e) => {
            stop_all(&mut roles);
            return Err(e);
        }
    };
    let ca = args.data.join(pwn_net::tls::DEV_CA_CERT);
    say(format_args!("pwn up: clients connect to {gateway_addr}, trusting {}", ca.display()));
    say(format_args!("pwn up: store at {}; Ctrl-C stops everything", args.data.join("pwn.sqlite").display()));

    // Supervision: a role that dies is started again (a zone as a new node: the world server
    // grants its cells to the living, or to it, once its lease expired), unless it keeps dying.
    let mut restarts: Vec<(usize, Instant)> = Vec::new();
    let failed = runtime.block_on(async {
        loop {
            let dead = roles.iter_mut().position(|(_, r, _)| matches!(r.child.try_wait(), Ok(Some(_))));
            if let Some(i) = dead {
                let status = roles[i].1.child.try_wait().ok().flatten();
                let name = roles[i].0.name;
                say(format_args!(
                    "pwn up: the {name} (pid {}) exited ({status:?}); starting another",
                    roles[i].1.pid()
                ));
                restarts.retain(|(_, at)| at.elapsed() < RESTART_WINDOW);
                restarts.push((i, Instant::now()));
                if restarts.iter().filter(|(r, _)| *r == i).count() > RESTARTS_MAX {
                    return Some(format!("the {name} keeps exiting ({status:?})"));
                }
                match start(&roles[i].0) {
                    Ok((role, addr)) => {
                        say(format_args!("pwn up: {name} (pid {}) on {addr}", role.pid()));
                        roles[i].1 = role;
                        roles[i].2 = addr;
                    }
                    Err(e) => return Some(format!("cannot start another {name}: {e:#}")),
                }
                continue;
            }
            tokio::select! {
                _ = interrupt.recv() => return None,
                _ = term.recv() => return None,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    });
    say(format_args!("pwn up: stopping"));
    stop_all(&mut roles);
    if let Some(why) = failed {
        bail!("{why}");
    }
    Ok(())
}

/// Prints a line to standard output, ignoring a reader that went away: the world must still
/// stop cleanly when whoever watched its output (a pipe, a test) has closed it.
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}
