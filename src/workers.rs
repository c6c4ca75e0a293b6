//! Swarms as several processes reporting as one (`pwn bots --workers N`, `pwn demo --workers
//! N`): the command starts N `pwn bots --worker K` processes, each running the bots whose index
//! is K modulo N (so accounts, seeds and which bots predict are those of one swarm), and each
//! prints its bots' results and timeline as one JSON line at the end; the command merges them and
//! reports, audits and checks thresholds once. On a machine with more cores than one swarm
//! process uses, or across machines, this is how a swarm grows.

use anyhow::{Context, bail};
use pwn_load_tests::swarm::{BotResult, Timeline};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// The line a worker prints its results on starts with this.
pub(crate) const WORKER_RESULT_PREFIX: &str = "worker-result ";
/// Workers one command starts at most.
pub(crate) const WORKERS_MAX: u32 = 64;

/// What one worker sends back.
#[derive(serde::Serialize, serde::Deserialize)]
struct WorkerResult {
    results: Vec<BotResult>,
    timeline: Timeline,
}

/// In a worker: prints its results for the command that started it (the last line of its
/// standard output).
pub(crate) fn report(results: Vec<BotResult>, timeline: Timeline) -> anyhow::Result<()> {
    println!("{WORKER_RESULT_PREFIX}{}", serde_json::to_string(&WorkerResult { results, timeline })?);
    Ok(())
}

/// What a worker runs: `pwn bots` with these flags (the command adds `--workers` and
/// `--worker`).
#[derive(Clone, Debug)]
pub(crate) struct WorkerArgs {
    pub(crate) addr: String,
    pub(crate) data: std::path::PathBuf,
    pub(crate) count: u32,
    pub(crate) predicting: u32,
    pub(crate) duration_s: f64,
    pub(crate) scenario: String,
    pub(crate) seed: u64,
    pub(crate) world: Option<std::path::PathBuf>,
    pub(crate) direct: bool,
    pub(crate) link: Option<String>,
}

impl WorkerArgs {
    fn to_args(&self, k: u32, n: u32) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "bots".into(),
            "--addr".into(),
            self.addr.clone(),
            "--data".into(),
            self.data.display().to_string(),
            "--count".into(),
            self.count.to_string(),
            "--predicting".into(),
            self.predicting.to_string(),
            "--duration".into(),
            self.duration_s.to_string(),
            "--scenario".into(),
            self.scenario.clone(),
            "--seed".into(),
            self.seed.to_string(),
            "--no-audit".into(),
            "--workers".into(),
            n.to_string(),
            "--worker".into(),
            k.to_string(),
        ];
        if let Some(w) = &self.world {
            a.extend(["--world".into(), w.display().to_string()]);
        }
        if self.direct {
            a.push("--direct".into());
        }
        if let Some(l) = &self.link {
            a.extend(["--link".into(), l.clone()]);
        }
        a
    }
}

/// Runs `n` workers to the end and merges what they report, in bot order.
pub(crate) fn run(
    config: Option<&std::path::Path>,
    args: &WorkerArgs,
    n: u32,
) -> anyhow::Result<(Vec<BotResult>, Timeline)> {
    if !(1..=WORKERS_MAX).contains(&n) {
        bail!("--workers must be between 1 and {WORKERS_MAX}, not {n}");
    }
    let exe = std::env::current_exe().context("cannot find the pwn executable")?;
    let mut children = Vec::new();
    for k in 0..n {
        let mut c = Command::new(&exe);
        if let Some(config) = config {
            c.arg("--config").arg(config);
        }
        let mut child = c
            .args(args.to_args(k, n))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start worker {k}"))?;
        let stdout = child.stdout.take().context("worker stdout")?;
        // Read on a thread each, so no worker blocks on a full pipe while another is waited for.
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| l.strip_prefix(WORKER_RESULT_PREFIX).map(str::to_owned))
                .last()
        });
        children.push((k, child, reader));
    }
    let mut results = Vec::new();
    let mut timeline = Timeline::default();
    let mut failures = Vec::new();
    for (k, mut child, reader) in children {
        let status = child.wait()?;
        let line = reader.join().map_err(|_| anyhow::anyhow!("the reader of worker {k} panicked"))?;
        match (status.success(), line) {
            (true, Some(line)) => {
                let w: WorkerResult =
                    serde_json::from_str(&line).with_context(|| format!("worker {k} reported nonsense"))?;
                results.extend(w.results);
                timeline.merge(&w.timeline);
            }
            (_, _) => failures.push(format!("worker {k} ended with {status} and no results")),
        }
    }
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    results.sort_by_key(|r| r.index);
    Ok((results, timeline))
}
