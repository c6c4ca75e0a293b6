//! Figures from every role: the swarm scrapes each role's Prometheus endpoint (`/metrics`,
//! text format) once a second during the run and keeps what it read, so the report puts the
//! zones', the gateway's and the world server's own figures beside what the bots measured.
//!
//! The parser is a pure function over the text format's sample lines (`name{labels} value`);
//! comments, timestamps and unparsable lines are skipped (counted), never fatal.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Largest `/metrics` answer read (a role's endpoint is a few tens of kilobytes).
pub const SCRAPE_BYTES_MAX: usize = 4 << 20;
/// How long one scrape may take.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

/// One sample: a metric's name, its labels, its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The metric (with `_bucket`, `_sum`, `_count` suffixes as exposed).
    pub name: String,
    /// Its labels, sorted by name.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// Parses the Prometheus text format; returns the samples and how many lines were skipped.
pub fn parse(text: &str) -> (Vec<Sample>, usize) {
    let mut samples = Vec::new();
    let mut skipped = 0;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        match parse_line(line) {
            Some(s) => samples.push(s),
            None => skipped += 1,
        }
    }
    (samples, skipped)
}

fn parse_line(line: &str) -> Option<Sample> {
    let (name, labels, rest) = match line.find('{') {
        Some(open) => {
            let close = line.rfind('}')?;
            (&line[..open], parse_labels(&line[open + 1..close])?, &line[close + 1..])
        }
        None => {
            let end = line.find(char::is_whitespace)?;
            (&line[..end], BTreeMap::new(), &line[end..])
        }
    };
    let value = match rest.split_whitespace().next()? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let name_ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    name_ok.then(|| Sample { name: name.to_owned(), labels, value })
}

fn parse_labels(s: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let key = rest[..eq].trim().to_owned();
        let after = rest[eq + 1..].trim_start().strip_prefix('"')?;
        // The value runs to the first unescaped quote.
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        out.insert(key, value);
        rest = after[end + 1..].trim_start().trim_start_matches(',').trim_start();
    }
    Some(out)
}

/// Reads `http://addr/metrics` (plain HTTP/1.0 on loopback, bounded in size and time).
pub fn fetch(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, SCRAPE_TIMEOUT)?;
    s.set_read_timeout(Some(SCRAPE_TIMEOUT))?;
    s.set_write_timeout(Some(SCRAPE_TIMEOUT))?;
    s.write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())?;
    // The whole answer within the timeout, not each read: an endpoint trickling a byte at a
    // time would otherwise hold the scraper (and the demo waiting for it) indefinitely.
    let deadline = std::time::Instant::now() + SCRAPE_TIMEOUT;
    let mut body = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the answer took too long"));
        }
        s.set_read_timeout(Some(left))?;
        let n = match s.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 || body.len() > SCRAPE_BYTES_MAX {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    if body.len() > SCRAPE_BYTES_MAX {
        return Err(std::io::Error::other(format!("more than {SCRAPE_BYTES_MAX} bytes")));
    }
    let text = String::from_utf8_lossy(&body);
    let (head, rest) = text.split_once("\r\n\r\n").ok_or_else(|| std::io::Error::other("no HTTP header"))?;
    if !head.lines().next().is_some_and(|l| l.contains(" 200")) {
        return Err(std::io::Error::other(format!("answered {:?}", head.lines().next().unwrap_or_default())));
    }
    Ok(rest.to_owned())
}

/// What one scrape of one role read.
#[derive(Clone, Debug, Default)]
pub struct Scrape {
    /// The samples.
    pub samples: Vec<Sample>,
}

impl Scrape {
    /// The sum of a metric's samples over every label set (0 when absent).
    pub fn sum(&self, name: &str) -> f64 {
        // An empty float sum is -0.0; report a plain zero.
        self.samples.iter().filter(|s| s.name == name).map(|s| s.value).sum::<f64>() + 0.0
    }

    /// The `q` quantile of a histogram from its cumulative buckets (summed over label sets
    /// other than `le`): the upper bound of the first bucket holding it; `None` with no
    /// observations.
    pub fn histogram_quantile(&self, name: &str, q: f64) -> Option<f64> {
        let bucket = format!("{name}_bucket");
        let mut buckets: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
        for s in self.samples.iter().filter(|s| s.name == bucket) {
            let Some(le) = s.labels.get("le") else { continue };
            let le: f64 = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            buckets.entry(le.to_bits()).or_insert((le, 0.0)).1 += s.value;
        }
        let mut sorted: Vec<(f64, f64)> = buckets.into_values().collect();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total = sorted.last()?.1;
        if total <= 0.0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total).ceil().max(1.0);
        sorted.iter().find(|(_, n)| *n >= rank).map(|(le, _)| *le)
    }
}

/// The figures the report shows for a role, by the kind its name starts with (`zone`,
/// `gateway`, `world`): what a name means and its value, from the role's last scrape.
pub fn figures(role: &str, s: &Scrape) -> Vec<(&'static str, Option<f64>)> {
    let q = |name: &str, q: f64| s.histogram_quantile(name, q);
    let sum = |name: &str| Some(s.sum(name));
    let mut out = if role.starts_with("zone") {
        vec![
            ("tick ms p50 (histogram bucket)", q("pwn_zone_tick_ms", 0.5)),
            ("tick ms p99 (histogram bucket)", q("pwn_zone_tick_ms", 0.99)),
            ("players at the end", sum("pwn_zone_players")),
            ("ghosts at the end", sum("pwn_zone_ghosts")),
            ("handoffs", sum("pwn_zone_handoffs_total")),
            ("handoffs failed", sum("pwn_zone_handoffs_failed_total")),
            ("handoff commit ms p99", q("pwn_zone_handoff_commit_ms", 0.99)),
            ("item transaction ms p99", q("pwn_zone_item_txn_ms", 0.99)),
            ("checkpoint lag ms p99", q("pwn_zone_checkpoint_lag_ms", 0.99)),
            ("input ack ms p99 (in zone)", q("pwn_zone_input_ack_ms", 0.99)),
            ("inputs missing", sum("pwn_zone_inputs_missing_total")),
            ("inbox messages dropped", sum("pwn_zone_inbox_dropped_total")),
            ("events dropped", sum("pwn_zone_events_dropped_total")),
        ]
    } else if role.starts_with("gateway") {
        vec![
            ("authentications", sum("pwn_gateway_auth_total")),
            ("connections refused", sum("pwn_gateway_connections_refused_total")),
            ("logins refused by the hashing pool", sum("pwn_gateway_hash_pool_refused_total")),
            ("messages rate limited", sum("pwn_gateway_rate_limited_messages_total")),
            ("messages with no route", sum("pwn_gateway_unrouted_messages_total")),
            ("slow clients disconnected", sum("pwn_gateway_slow_clients_disconnected_total")),
            ("players switched to another zone", sum("pwn_gateway_zone_switches_total")),
        ]
    } else if role.starts_with("world") {
        vec![
            ("zone nodes", sum("pwn_world_nodes")),
            ("cells served", sum("pwn_world_cells_served")),
            ("lease grants", sum("pwn_world_grants_total")),
            ("lease grants failed", sum("pwn_world_grants_failed_total")),
        ]
    } else {
        Vec::new()
    };
    out.extend([
        ("datagrams dropped (transport)", sum("pwn_net_datagrams_dropped_total")),
        ("protocol violations", sum("pwn_net_protocol_violations_total")),
    ]);
    out
}

/// Roles scraped once a second on a thread of their own until [`Scraper::stop`].
pub struct Scraper {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<RoleScrapes>>,
}

/// What was read from one role.
#[derive(Clone, Debug, Default)]
pub struct RoleScrapes {
    /// The role's name (`zone-1`, `gateway`, `world`).
    pub role: String,
    /// Its endpoint.
    pub addr: Option<SocketAddr>,
    /// The last scrape that succeeded.
    pub last: Scrape,
    /// Scrapes that succeeded, and that failed (the role was down or slow).
    pub ok: u64,
    /// Scrapes that failed.
    pub failed: u64,
    /// Handoffs the role had counted (zones), at each successful scrape: seconds since the
    /// scraper started, total.
    pub handoffs_total: Vec<(f64, f64)>,
}

impl Scraper {
    /// Starts scraping `roles` (name, endpoint) once a second.
    pub fn start(roles: Vec<(String, SocketAddr)>) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut out: Vec<RoleScrapes> = roles
                .iter()
                .map(|(role, addr)| RoleScrapes { role: role.clone(), addr: Some(*addr), ..RoleScrapes::default() })
                .collect();
            let started = std::time::Instant::now();
            let mut next = started;
            loop {
                for r in &mut out {
                    match r.addr.map(fetch) {
                        Some(Ok(text)) => {
                            r.last = Scrape { samples: parse(&text).0 };
                            r.ok += 1;
                            let at_s = started.elapsed().as_secs_f64();
                            r.handoffs_total.push((at_s, r.last.sum("pwn_zone_handoffs_total")));
                        }
                        _ => r.failed += 1,
                    }
                }
                if flag.load(std::sync::atomic::Ordering::Relaxed) {
                    return out;
                }
                // A round slowed by a stalled role does not make the next ones come faster.
                next = (next + Duration::from_secs(1)).max(std::time::Instant::now());
                while std::time::Instant::now() < next && !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        });
        Self { stop, thread }
    }

    /// Takes one last scrape of every role and returns what was read.
    pub fn stop(self) -> Vec<RoleScrapes> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// A counter's rate per second from `(seconds, total)` readings, one value per whole second
/// since the first reading (seconds with no reading in them are `None`; a rate between two
/// readings is spread over the seconds between them).
pub fn rate_per_second(readings: &[(f64, f64)]) -> Vec<Option<f64>> {
    let Some(last) = readings.last() else { return Vec::new() };
    let seconds = (last.0.max(0.0).ceil() as usize).min(crate::swarm::TIMELINE_POINTS_MAX);
    let mut out = vec![None; seconds];
    for w in readings.windows(2) {
        let ((t0, v0), (t1, v1)) = (w[0], w[1]);
        // Readings out of order (or NaN times) give no rate.
        if t1.partial_cmp(&t0) != Some(std::cmp::Ordering::Greater) {
            continue;
        }
        let rate = (v1 - v0).max(0.0) / (t1 - t0);
        let (from, to) = (t0.floor() as usize, (t1.ceil() as usize).min(seconds));
        for slot in out.iter_mut().take(to).skip(from) {
            *slot = Some(rate);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_follow_the_clock_not_the_rounds() {
        // A reading every second, then a 3 s gap (a stalled round), then every second again.
        let r = [(0.0, 0.0), (1.0, 2.0), (2.0, 4.0), (5.0, 10.0), (6.0, 10.0)];
        let v = rate_per_second(&r);
        assert_eq!(v, vec![Some(2.0), Some(2.0), Some(2.0), Some(2.0), Some(2.0), Some(0.0)]);
        assert!(rate_per_second(&[]).is_empty());
        assert_eq!(rate_per_second(&[(0.5, 3.0)]), vec![None]);
        // A counter that went back (a restarted role) gives no negative rate.
        assert_eq!(rate_per_second(&[(0.0, 5.0), (1.0, 0.0)]), vec![Some(0.0)]);
    }

    #[test]
    fn the_text_format_parses_and_histograms_give_quantiles() {
        let text = "# HELP pwn_zone_tick_ms tick\n# TYPE pwn_zone_tick_ms histogram\n\
            pwn_zone_tick_ms_bucket{le=\"1\"} 5\npwn_zone_tick_ms_bucket{le=\"4\"} 90\n\
            pwn_zone_tick_ms_bucket{le=\"33\"} 99\npwn_zone_tick_ms_bucket{le=\"+Inf\"} 100\n\
            pwn_zone_tick_ms_sum 210.5\npwn_zone_tick_ms_count 100\n\
            pwn_gateway_auth_total{outcome=\"ok\",why=\"a \\\"quoted\\\" one, with a comma\"} 7 1700000000\n\
            pwn_gateway_auth_total{outcome=\"refused\"} 3\n\
            garbage line\nbroken{le=\"1} 3\nnan_value x\n";
        let (samples, skipped) = parse(text);
        assert_eq!(skipped, 3, "{samples:?}");
        let s = Scrape { samples };
        assert_eq!(s.sum("pwn_gateway_auth_total"), 10.0);
        assert_eq!(s.sum("missing"), 0.0);
        assert_eq!(s.histogram_quantile("pwn_zone_tick_ms", 0.5), Some(4.0));
        assert_eq!(s.histogram_quantile("pwn_zone_tick_ms", 0.99), Some(33.0));
        assert_eq!(s.histogram_quantile("pwn_zone_tick_ms", 1.0), Some(f64::INFINITY));
        assert_eq!(s.histogram_quantile("missing", 0.5), None);
        let quoted = s.samples.iter().find(|x| x.labels.get("outcome").is_some_and(|o| o == "ok")).unwrap();
        assert_eq!(quoted.labels["why"], "a \"quoted\" one, with a comma");
    }

    #[test]
    fn an_endpoint_that_trickles_its_answer_times_out() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            let _ = c.write_all(b"HTTP/1.0 200 OK\r\n\r\n");
            // A byte every 200 ms: each read succeeds well within the timeout.
            for _ in 0..100 {
                if c.write_all(b"#").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        let started = std::time::Instant::now();
        let got = fetch(addr);
        assert!(got.is_err(), "{:?}", got.map(|b| b.len()));
        assert!(started.elapsed() < SCRAPE_TIMEOUT + Duration::from_secs(1), "took {:?}", started.elapsed());
    }
}
