//! Swarms as several processes reporting as one (`pwn bots --workers N`, `pwn demo --workers
//! N`): the command starts N `pwn bots --worker K` processes, each running the bots whose index
//! is K modulo N (so accounts, seeds and which bots predict are those of one swarm), and each
//! prints its bots' results and timeline as one JSON line at the end; the command merges them and
//! reports, audits and checks thresholds once. On a machine with more cores than one swarm
//! process uses, or across machines, this is how a swarm grows.

use anyhow::{Context, bail};
use pwn_load_tests::swarm::{BotResult, Timeline};
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// A worker prints this line on its standard output every [`WORKER_HEARTBEAT`], so the command
/// can tell a worker that plays (joins may retry for minutes) from one that is stopped or hung.
pub(crate) const WORKER_ALIVE_LINE: &str = "worker-alive";
/// How often a worker says it is alive.
pub(crate) const WORKER_HEARTBEAT: Duration = Duration::from_secs(1);
/// A worker silent this long is taken as stopped or hung: it is killed and the run fails.
pub(crate) const WORKER_SILENCE_MAX: Duration = Duration::from_secs(20);
/// Longest line a worker may print (its results: every bot's counters, trail and timeline).
pub(crate) const WORKER_LINE_BYTES_MAX: usize = 1 << 30;
/// How often the command looks at its workers.
const WORKER_POLL: Duration = Duration::from_millis(100);

/// In a worker: says it is alive every [`WORKER_HEARTBEAT`] until the process ends.
pub(crate) fn heartbeat() {
    std::thread::spawn(|| {
        loop {
            println!("{WORKER_ALIVE_LINE}");
            std::thread::sleep(WORKER_HEARTBEAT);
        }
    });
}

/// Reads a worker's standard output to its end: calls `heard` on every line and returns the
/// last result line. Lines are read as bytes, bounded by `line_max` (a longer line is an
/// error, the rest still read so the worker never blocks on a full pipe), and need not be
/// UTF-8 (only the result line must be).
fn read_output(mut r: impl BufRead, line_max: usize, heard: impl Fn()) -> Result<Option<String>, String> {
    let mut last = None;
    let mut too_long = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut r).take(line_max as u64 + 1).read_until(b'\n', &mut line).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        heard();
        if line.len() > line_max {
            too_long.get_or_insert_with(|| format!("printed a line of more than {line_max} bytes"));
            // Skip the rest of that line.
            loop {
                let buf = r.fill_buf().map_err(|e| e.to_string())?;
                if buf.is_empty() {
                    break;
                }
                match buf.iter().position(|b| *b == b'\n') {
                    Some(i) => {
                        r.consume(i + 1);
                        break;
                    }
                    None => {
                        let len = buf.len();
                        r.consume(len);
                    }
                }
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix(WORKER_RESULT_PREFIX.as_bytes()) {
            let rest = rest.strip_suffix(b"\n").unwrap_or(rest);
            last = Some(String::from_utf8(rest.to_vec()).map_err(|_| "printed results that are not UTF-8".to_owned())?);
        }
    }
    match too_long {
        Some(e) => Err(e),
        None => Ok(last),
    }
}

/// A worker running.
struct Running {
    k: u32,
    child: std::process::Child,
    reader: std::thread::JoinHandle<Result<Option<String>, String>>,
    heard: Arc<Mutex<Instant>>,
}

/// Kills every worker still running (they would play on against a world that is going away).
fn kill_all(running: &mut Vec<Running>) {
    for w in running.iter_mut() {
        let _ = w.child.kill();
        let _ = w.child.wait();
    }
    running.clear();
}

/// Runs `n` workers to the end and merges what they report, in bot order. The first worker
/// that fails, or goes silent for [`WORKER_SILENCE_MAX`], ends the run: the others are killed
/// and the error names it.
pub(crate) fn run(
    config: Option<&std::path::Path>,
    args: &WorkerArgs,
    n: u32,
) -> anyhow::Result<(Vec<BotResult>, Timeline)> {
    if !(1..=WORKERS_MAX).contains(&n) {
        bail!("--workers must be between 1 and {WORKERS_MAX}, not {n}");
    }
    let exe = std::env::current_exe().context("cannot find the pwn executable")?;
    let mut running: Vec<Running> = Vec::new();
    for k in 0..n {
        let mut c = Command::new(&exe);
        if let Some(config) = config {
            c.arg("--config").arg(config);
        }
        let spawned = c.args(args.to_args(k, n)).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                kill_all(&mut running);
                return Err(anyhow::Error::new(e).context(format!("cannot start worker {k}")));
            }
        };
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            kill_all(&mut running);
            bail!("worker {k} has no standard output");
        };
        let heard = Arc::new(Mutex::new(Instant::now()));
        let on_line = heard.clone();
        // Read on a thread each, so no worker blocks on a full pipe while another is waited for.
        let reader = std::thread::spawn(move || {
            read_output(BufReader::new(stdout), WORKER_LINE_BYTES_MAX, || {
                if let Ok(mut at) = on_line.lock() {
                    *at = Instant::now();
                }
            })
        });
        running.push(Running { k, child, reader, heard });
    }
    let mut finished = Vec::new();
    while !running.is_empty() {
        let mut failure = None;
        let mut i = 0;
        while i < running.len() {
            let w = &mut running[i];
            match w.child.try_wait() {
                Ok(Some(status)) if status.success() => {
                    finished.push(running.swap_remove(i));
                    continue;
                }
                Ok(Some(status)) => {
                    failure = Some(format!("worker {} ended with {status} and no results", w.k));
                    running.swap_remove(i);
                    break;
                }
                Err(e) => {
                    failure = Some(format!("cannot wait for worker {}: {e}", w.k));
                    break;
                }
                Ok(None) => {}
            }
            let silent = w.heard.lock().map(|at| at.elapsed()).unwrap_or_default();
            if silent > WORKER_SILENCE_MAX {
                failure = Some(format!(
                    "worker {} said nothing for {:.0} s (stopped or hung); killed it",
                    w.k,
                    silent.as_secs_f64()
                ));
                break;
            }
            i += 1;
        }
        if let Some(failure) = failure {
            kill_all(&mut running);
            bail!("{failure}");
        }
        std::thread::sleep(WORKER_POLL);
    }
    finished.sort_by_key(|w| w.k);
    let mut results = Vec::new();
    let mut timeline = Timeline::default();
    let mut failures = Vec::new();
    for w in finished {
        let k = w.k;
        match w.reader.join() {
            Err(_) => failures.push(format!("the reader of worker {k} panicked")),
            Ok(Err(e)) => failures.push(format!("worker {k} {e}")),
            Ok(Ok(None)) => failures.push(format!("worker {k} ended without results")),
            Ok(Ok(Some(line))) => match serde_json::from_str::<WorkerResult>(&line) {
                Ok(w) => {
                    results.extend(w.results);
                    timeline.merge(&w.timeline);
                }
                Err(e) => failures.push(format!("worker {k} reported nonsense: {e}")),
            },
        }
    }
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    results.sort_by_key(|r| r.index);
    // Every bot of the swarm once: a worker that ran another's bots or lost some is a bug to
    // report, not figures to average.
    let expected = args.count as usize;
    if results.len() != expected || results.iter().enumerate().any(|(i, r)| r.index != i) {
        bail!("the workers reported {} bots, not each of the {expected} once", results.len());
    }
    Ok((results, timeline))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8], line_max: usize) -> (Result<Option<String>, String>, usize) {
        let lines = std::cell::Cell::new(0);
        let got = read_output(std::io::BufReader::with_capacity(8, bytes), line_max, || lines.set(lines.get() + 1));
        (got, lines.get())
    }

    #[test]
    fn worker_output_is_read_to_the_end_bounded_and_need_not_be_utf8() {
        // Heartbeats, a line that is not UTF-8 (a stray byte from a library), then the result:
        // reading stops at neither, and every line counts as a sign of life.
        let out = b"worker-alive\n\xff\xfe not text\nworker-result {\"a\":1}\nworker-alive\n";
        let (got, lines) = read(out, 1_000);
        assert_eq!(got, Ok(Some("{\"a\":1}".to_owned())));
        assert_eq!(lines, 4);
        // The last result line wins; none at all is no result.
        assert_eq!(read(b"worker-result 1\nworker-result 2", 100).0, Ok(Some("2".to_owned())));
        assert_eq!(read(b"worker-alive\n", 100).0, Ok(None));
        // A line past the bound is an error, and the output after it is still read.
        let mut huge = b"worker-result ".to_vec();
        huge.extend(std::iter::repeat_n(b'x', 500));
        huge.extend(b"\nworker-alive\nworker-alive\n");
        let (got, lines) = read(&huge, 100);
        assert!(got.as_ref().is_err_and(|e| e.contains("more than 100 bytes")), "{got:?}");
        assert_eq!(lines, 3);
        // Results that are not UTF-8 say so.
        assert!(read(b"worker-result \xff\n", 100).0.is_err());
    }
}
