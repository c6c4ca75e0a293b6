//! What a swarm run measured: one [`Summary`] (the table `pwn bots` prints, the JSON keys of
//! `pwn demo --json`) and an HTML report with charts drawn by [`crate::charts`] (inline SVG, no
//! scripts, no network).

use crate::charts::{MapCell, Series, html_escape, time_chart, trail_map};
use crate::swarm::BotResult;
use pwn_client::Histogram;
use std::fmt::Write as _;

/// The figures of one run.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Bots started.
    pub bots: usize,
    /// Bots that joined.
    pub joined: usize,
    /// Bots that joined as full, predicting clients (the rest are cheap bots); prediction
    /// error and corrections are theirs.
    pub predicting: usize,
    /// Bots that failed to join or lost their connection.
    pub disconnects: usize,
    /// Bots that moved more than a metre from where they started.
    pub moved: usize,
    /// Bots that received at least one chat line from another bot.
    pub heard_chat: usize,
    /// Packed snapshot bytes per entity update, over all bots.
    pub bytes_per_entity_update: f64,
    /// Mean over bots of the payload received, kilobits per second.
    pub down_kbps_per_client_mean: f64,
    /// Send-to-acknowledgement time of inputs, ticks, 99th percentile over all inputs.
    pub input_ack_ticks_p99: f64,
    /// Median of the same.
    pub input_ack_ticks_p50: f64,
    /// Prediction error at every comparison with the server, metres, 99th percentile.
    pub prediction_error_m_p99: f64,
    /// Corrections per bot per minute of play.
    pub corrections_per_bot_minute: f64,
    /// Mean round trip, milliseconds (latest per bot, averaged).
    pub rtt_ms_mean: f64,
    /// Mean interpolation delay at the end, ticks.
    pub interpolation_delay_ticks_mean: f64,
    /// Inputs sent, all bots.
    pub inputs_sent: u64,
    /// Items of value that changed owner (gifts, loot), as the receiving bots heard of them.
    pub items_moved: u64,
    /// Edits of world objects the zones committed (builders).
    pub edits_committed: u64,
    /// Edits the zones refused.
    pub edits_refused: u64,
    /// Ticks from sending an edit to its answer, 99th percentile over committed edits.
    pub edit_done_ticks_p99: f64,
    /// Handoffs between zones the bots were told of (`AuthorityMoved`).
    pub handoffs: u64,
    /// Ticks a crossing bot went without a snapshot acknowledging a new input, beyond the one
    /// each snapshot takes, 99th percentile over handoffs.
    pub handoff_ticks_p99: f64,
    /// The largest of the same.
    pub handoff_ticks_max: f64,
    /// Prediction error within a couple of seconds after a handoff, 99th percentile.
    pub prediction_error_crossing_m_p99: f64,
    /// Prediction error everywhere else, 99th percentile.
    pub prediction_error_elsewhere_m_p99: f64,
    /// Times a bot was placed again by a new zone (`Joined` after the first: its zone died).
    pub zone_switches: u64,
}

impl Summary {
    /// Sums the bots' results.
    pub fn of(results: &[BotResult]) -> Self {
        let mut ack = pwn_client::ClientCounters::default().input_ack_ticks;
        let mut err = pwn_client::ClientCounters::default().prediction_error_m;
        let mut edit_ticks = pwn_client::ClientCounters::default().edit_done_ticks;
        let mut handoff: Vec<u32> = Vec::new();
        let mut crossing = pwn_client::ClientCounters::default().prediction_error_crossing_m;
        let mut elsewhere = pwn_client::ClientCounters::default().prediction_error_elsewhere_m;
        let (mut bytes, mut updates, mut corrections, mut minutes) = (0u64, 0u64, 0u64, 0f64);
        let mut s = Summary { bots: results.len(), ..Summary::default() };
        let mut kbps = Vec::new();
        let mut rtts = Vec::new();
        let mut delays = Vec::new();
        for r in results {
            s.disconnects += usize::from(r.failure.is_some());
            if !r.joined {
                continue;
            }
            let c = &r.counters;
            s.joined += 1;
            s.predicting += usize::from(r.predicting);
            s.moved += usize::from(r.moved_m > 1.0);
            s.heard_chat += usize::from(c.chat_from_others > 0);
            merge(&mut ack, &c.input_ack_ticks);
            merge(&mut err, &c.prediction_error_m);
            handoff.extend(c.handoff_ticks.iter().copied());
            merge(&mut crossing, &c.prediction_error_crossing_m);
            merge(&mut elsewhere, &c.prediction_error_elsewhere_m);
            s.handoffs += c.handoffs;
            s.zone_switches += c.zone_switches;
            bytes += c.update_bytes;
            updates += c.entity_updates;
            if r.predicting {
                corrections += c.corrections;
                minutes += r.played_s / 60.0;
            }
            s.inputs_sent += c.inputs_sent;
            s.items_moved += c.items_received;
            s.edits_committed += c.edits_committed;
            s.edits_refused += c.edits_refused;
            merge(&mut edit_ticks, &c.edit_done_ticks);
            if r.played_s > 0.0 {
                kbps.push(c.bytes_in as f64 * 8.0 / 1e3 / r.played_s);
            }
            if c.rtt_ms > 0.0 {
                rtts.push(c.rtt_ms);
            }
            delays.push(c.interpolation_delay_ticks);
        }
        s.bytes_per_entity_update = if updates == 0 { 0.0 } else { bytes as f64 / updates as f64 };
        s.down_kbps_per_client_mean = mean(&kbps);
        s.input_ack_ticks_p99 = ack.quantile(0.99);
        s.edit_done_ticks_p99 = edit_ticks.quantile(0.99);
        s.input_ack_ticks_p50 = ack.quantile(0.5);
        s.prediction_error_m_p99 = err.quantile(0.99);
        handoff.sort_unstable();
        let n = handoff.len();
        s.handoff_ticks_p99 =
            if n == 0 { 0.0 } else { f64::from(handoff[((0.99 * n as f64).ceil() as usize).clamp(1, n) - 1]) };
        s.handoff_ticks_max = handoff.last().copied().map_or(0.0, f64::from);
        s.prediction_error_crossing_m_p99 = crossing.quantile(0.99);
        s.prediction_error_elsewhere_m_p99 = elsewhere.quantile(0.99);
        s.corrections_per_bot_minute = if minutes > 0.0 { corrections as f64 / minutes } else { 0.0 };
        s.rtt_ms_mean = mean(&rtts);
        s.interpolation_delay_ticks_mean = mean(&delays);
        s
    }

    /// The summary as a table, one figure per line.
    pub fn table(&self) -> String {
        let rows: [(&str, String); 21] = [
            ("bots joined / started", format!("{} / {}", self.joined, self.bots)),
            ("of which predicting", self.predicting.to_string()),
            ("disconnects", self.disconnects.to_string()),
            ("bots that moved", self.moved.to_string()),
            ("bots that heard chat", self.heard_chat.to_string()),
            ("inputs sent", self.inputs_sent.to_string()),
            ("bytes per entity update", format!("{:.2}", self.bytes_per_entity_update)),
            ("down kbps per client (mean)", format!("{:.1}", self.down_kbps_per_client_mean)),
            ("input ack ticks p50", format!("{:.2}", self.input_ack_ticks_p50)),
            ("input ack ticks p99", format!("{:.2}", self.input_ack_ticks_p99)),
            ("prediction error m p99", format!("{:.3}", self.prediction_error_m_p99)),
            ("corrections per bot minute", format!("{:.2}", self.corrections_per_bot_minute)),
            ("rtt ms (mean)", format!("{:.2}", self.rtt_ms_mean)),
            ("interpolation delay ticks (mean)", format!("{:.2}", self.interpolation_delay_ticks_mean)),
            ("items that changed owner", self.items_moved.to_string()),
            (
                "object edits committed / refused",
                format!(
                    "{} / {} (answer p99 {:.1} ticks)",
                    self.edits_committed, self.edits_refused, self.edit_done_ticks_p99
                ),
            ),
            ("handoffs", self.handoffs.to_string()),
            ("handoff ticks p99", format!("{:.0}", self.handoff_ticks_p99)),
            ("prediction error m p99 at crossings", format!("{:.3}", self.prediction_error_crossing_m_p99)),
            ("prediction error m p99 elsewhere", format!("{:.3}", self.prediction_error_elsewhere_m_p99)),
            ("placed again (zone died)", self.zone_switches.to_string()),
        ];
        let mut out = String::new();
        for (k, v) in rows {
            let _ = writeln!(out, "  {k:<34} {v:>12}");
        }
        out
    }

    /// The summary's fields as JSON (the demo adds the zone's).
    pub fn json(&self) -> serde_json::Map<String, serde_json::Value> {
        let r3 = |v: f64| (v * 1e3).round() / 1e3;
        let mut m = serde_json::Map::new();
        m.insert("bots".into(), self.bots.into());
        m.insert("joined".into(), self.joined.into());
        m.insert("predicting".into(), self.predicting.into());
        m.insert("disconnects".into(), self.disconnects.into());
        m.insert("moved".into(), self.moved.into());
        m.insert("inputs_sent".into(), self.inputs_sent.into());
        m.insert("heard_chat".into(), self.heard_chat.into());
        m.insert("bytes_per_entity_update".into(), r3(self.bytes_per_entity_update).into());
        m.insert("down_kbps_per_client_mean".into(), r3(self.down_kbps_per_client_mean).into());
        m.insert("input_ack_ticks_p50".into(), r3(self.input_ack_ticks_p50).into());
        m.insert("input_ack_ticks_p99".into(), r3(self.input_ack_ticks_p99).into());
        m.insert("prediction_error_m_p99".into(), r3(self.prediction_error_m_p99).into());
        m.insert("corrections_per_bot_minute".into(), r3(self.corrections_per_bot_minute).into());
        m.insert("rtt_ms_mean".into(), r3(self.rtt_ms_mean).into());
        m.insert("items_moved".into(), self.items_moved.into());
        m.insert("edits_committed".into(), self.edits_committed.into());
        m.insert("edits_refused".into(), self.edits_refused.into());
        m.insert("edit_done_ticks_p99".into(), r3(self.edit_done_ticks_p99).into());
        m.insert("handoffs".into(), self.handoffs.into());
        m.insert("handoff_ticks_p99".into(), r3(self.handoff_ticks_p99).into());
        m.insert("handoff_ticks_max".into(), r3(self.handoff_ticks_max).into());
        m.insert("prediction_error_crossing_m_p99".into(), r3(self.prediction_error_crossing_m_p99).into());
        m.insert("prediction_error_elsewhere_m_p99".into(), r3(self.prediction_error_elsewhere_m_p99).into());
        m.insert("zone_switches".into(), self.zone_switches.into());
        m
    }
}

fn merge(into: &mut Histogram, from: &Histogram) {
    into.merge(from);
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 }
}

/// One zone's seconds, for the report.
#[derive(Clone, Debug, Default)]
pub struct ZoneTimeline {
    /// Its name in the report.
    pub name: String,
    /// Each tick's duration, milliseconds, second by second.
    pub tick_ms: Vec<Vec<f32>>,
    /// Players it held, second by second.
    pub players: Vec<f64>,
}

/// Everything the HTML report shows.
#[derive(Clone, Copy, Debug)]
pub struct ReportInput<'a> {
    /// The page's title.
    pub title: &'a str,
    /// The run's figures (the JSON summary, thresholds and audit included).
    pub summary: &'a serde_json::Map<String, serde_json::Value>,
    /// The scenario's movement model and its parameters.
    pub scenario: &'a [(String, String)],
    /// Each zone's seconds.
    pub zones: &'a [ZoneTimeline],
    /// What bots measured over time.
    pub timeline: &'a crate::swarm::Timeline,
    /// Every bot's result.
    pub results: &'a [BotResult],
    /// The zone cells and their owners at the end (none for a zone holding the whole world).
    pub cells: &'a [MapCell],
    /// What each role's Prometheus endpoint said.
    pub roles: &'a [crate::scrape::RoleScrapes],
}

/// The unit of a summary figure, from its name's suffix (names carry their unit last).
fn unit(key: &str) -> &'static str {
    let has = |u: &str| key.ends_with(u) || key.contains(&format!("{u}_"));
    if has("_ms") {
        "ms"
    } else if has("_ticks") {
        "ticks"
    } else if has("_kbps") {
        "kbit/s"
    } else if has("_m") {
        "m"
    } else if key.ends_with("per_bot_minute") {
        "per bot per minute"
    } else if has("_s") {
        "s"
    } else {
        ""
    }
}

fn quantile_f32(sorted: &[f32], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(f64::from(sorted[i]))
}

/// p50, p90 and p99 series of per-point histograms.
fn percentiles(points: &[Histogram]) -> Vec<Series> {
    [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)]
        .iter()
        .map(|(name, q)| Series {
            name: (*name).into(),
            values: points.iter().map(|h| (h.count() > 0).then(|| h.quantile(*q))).collect(),
        })
        .collect()
}

/// Failures grouped by reason (numbers in the text are folded, so "bot 12 ..." and "bot 13 ..."
/// count together), most frequent first.
fn failure_table(results: &[BotResult]) -> Vec<(String, u64)> {
    let mut by: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for r in results {
        if let Some(f) = &r.failure {
            let folded: String = f.chars().map(|c| if c.is_ascii_digit() { '#' } else { c }).collect();
            let mut folded = folded.replace("##", "#");
            while folded.contains("##") {
                folded = folded.replace("##", "#");
            }
            *by.entry(folded).or_default() += 1;
        }
    }
    let mut v: Vec<(String, u64)> = by.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

/// The HTML report: one self-contained file (no script, nothing fetched): the verdicts, the
/// summary with units, the scenario, percentiles over time (tick time per zone, input
/// acknowledgement, prediction error, bandwidth), an error table, and a map of the bots'
/// trails at their scale with the zone cells coloured by owner.
pub fn html(input: &ReportInput<'_>) -> String {
    let e = html_escape;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title><style>body{{font-family:sans-serif;margin:2em;max-width:62em}}td,th{{padding:2px 12px;text-align:left}}td.n{{text-align:right}}.pass{{color:#1a7f37}}.fail{{color:#c62828;font-weight:bold}}section{{margin:1.5em 0}}</style></head><body><h1>{}</h1>",
        e(input.title),
        e(input.title)
    );
    // Verdicts first: what CI and a reader look for.
    out.push_str("<section id=\"verdicts\"><h2>Verdicts</h2><table>");
    match input.summary.get("audit_clean") {
        Some(serde_json::Value::Bool(true)) => out.push_str(
            "<tr><td class=\"pass\">PASS</td><td>store audit: one owner per entity, no item twice or lost</td></tr>",
        ),
        Some(serde_json::Value::Bool(false)) => {
            let problems =
                input.summary.get("audit").and_then(|a| a.get("problems")).map(|p| p.to_string()).unwrap_or_default();
            let _ = write!(out, "<tr><td class=\"fail\">FAIL</td><td>store audit: {}</td></tr>", e(&problems));
        }
        _ => out.push_str("<tr><td>-</td><td>store audit not run</td></tr>"),
    }
    if let Some(serde_json::Value::Array(verdicts)) = input.summary.get("thresholds") {
        for v in verdicts {
            let passed = v["passed"].as_bool().unwrap_or(false);
            let _ = write!(
                out,
                "<tr><td class=\"{}\">{}</td><td>{} (was {})</td></tr>",
                if passed { "pass" } else { "fail" },
                if passed { "PASS" } else { "FAIL" },
                e(v["threshold"].as_str().unwrap_or_default()),
                e(&v["actual"].to_string())
            );
        }
    }
    out.push_str("</table></section>");
    out.push_str("<section id=\"summary\"><h2>Summary</h2><table><tr><th>figure</th><th>value</th><th>unit</th></tr>");
    for (k, v) in input.summary {
        if matches!(k.as_str(), "thresholds" | "audit" | "roles") {
            continue;
        }
        let _ = write!(out, "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>", e(k), e(&v.to_string()), unit(k));
    }
    out.push_str("</table></section><section id=\"scenario\"><h2>Scenario</h2><table>");
    for (k, v) in input.scenario {
        let _ = write!(out, "<tr><td>{}</td><td>{}</td></tr>", e(k), e(v));
    }
    out.push_str("</table></section><section id=\"charts\"><h2>Over time</h2>");
    let per_point = input.timeline.seconds_per_point.max(1);
    let every = if per_point == 1 { String::new() } else { format!(" (each point {per_point} s)") };
    for (i, z) in input.zones.iter().enumerate() {
        let series: Vec<Series> = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)]
            .iter()
            .map(|(name, q)| Series {
                name: (*name).into(),
                values: z
                    .tick_ms
                    .iter()
                    .map(|t| {
                        let mut t = t.clone();
                        t.sort_by(f32::total_cmp);
                        quantile_f32(&t, *q)
                    })
                    .collect(),
            })
            .collect();
        out.push_str(&time_chart(
            &format!("chart-tick-{i}"),
            &format!("Tick time, {}", z.name),
            "tick duration (ms)",
            &series,
        ));
    }
    let players: Vec<Series> = input
        .zones
        .iter()
        .map(|z| Series { name: z.name.clone(), values: z.players.iter().map(|p| Some(*p)).collect() })
        .collect();
    out.push_str(&time_chart("chart-players", "Players per zone", "players", &players));
    out.push_str(&time_chart(
        "chart-input-ack",
        &format!("Input acknowledgement, every bot{every}"),
        "input sent to acknowledged (ticks)",
        &percentiles(&input.timeline.input_ack_ticks),
    ));
    out.push_str(&time_chart(
        "chart-prediction-error",
        &format!("Prediction error, predicting bots{every}"),
        "error (m)",
        &percentiles(&input.timeline.prediction_error_m),
    ));
    out.push_str(&time_chart(
        "chart-bandwidth",
        &format!("Bandwidth per client, down{every}"),
        "kbit/s",
        &percentiles(&input.timeline.down_kbps),
    ));
    let handoffs: Vec<Series> = input
        .roles
        .iter()
        .filter(|r| r.role.starts_with("zone"))
        .map(|r| Series { name: r.role.clone(), values: crate::scrape::rate_per_second(&r.handoffs_total) })
        .collect();
    out.push_str(&time_chart(
        "chart-handoffs",
        "Handoffs per second, as each zone counts them",
        "handoffs per second",
        &handoffs,
    ));
    out.push_str("</section><section id=\"roles\"><h2>Figures from every role</h2><p>Read from each role's Prometheus endpoint once a second during the run; these are the last values (histogram quantiles are bucket bounds).</p><table><tr><th>role</th><th>figure</th><th>value</th></tr>");
    for r in input.roles {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>scrapes that succeeded / failed</td><td class=\"n\">{} / {}</td></tr>",
            e(&r.role),
            r.ok,
            r.failed
        );
        for (what, v) in crate::scrape::figures(&r.role, &r.last) {
            let v = v.map_or_else(|| "-".to_owned(), |v| format!("{v}"));
            let _ = write!(out, "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>", e(&r.role), e(what), e(&v));
        }
    }
    out.push_str("</table></section><section id=\"errors\"><h2>Errors</h2><table><tr><th>what</th><th>count</th></tr>");
    let sum = |f: fn(&pwn_client::ClientCounters) -> u64| input.results.iter().map(|r| f(&r.counters)).sum::<u64>();
    let mut rows: Vec<(String, u64)> = failure_table(input.results);
    rows.push(("snapshots dropped by bots (late, duplicated, unknown baseline)".into(), sum(|c| c.snapshots_dropped)));
    rows.push(("inputs that missed their tick (seen by bots)".into(), sum(|c| c.inputs_missed)));
    rows.push(("inputs skipped after a stall of the bot".into(), sum(|c| c.inputs_skipped)));
    for (key, what) in
        [("zone_inputs_missed", "inputs missing at the zone's tick"), ("tick_overruns", "zone ticks over budget")]
    {
        if let Some(n) = input.summary.get(key).and_then(serde_json::Value::as_u64) {
            rows.push((what.into(), n));
        }
    }
    for (what, n) in rows {
        let _ = write!(out, "<tr><td>{}</td><td class=\"n\">{n}</td></tr>", e(&what));
    }
    out.push_str("</table></section><section id=\"map\"><h2>Where the bots went</h2>");
    let trails: Vec<&[[f32; 2]]> = input.results.iter().map(|r| r.trail.as_slice()).collect();
    out.push_str(&trail_map("chart-map", "Bot trails and zone cells (top-down)", &trails, input.cells));
    out.push_str("</section></body></html>\n");
    out
}
