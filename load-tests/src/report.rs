//! What a swarm run measured: one [`Summary`] (the table `pwn bots` prints, the JSON keys of
//! `pwn demo --json`) and an HTML report with inline SVG plots (no scripts, no network).

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
        let rows: [(&str, String); 20] = [
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

/// A line plot of series over x = 0.. (one point per second), as inline SVG.
fn line_plot(title: &str, unit: &str, series: &[(&str, &str, Vec<f64>)]) -> String {
    let (w, h, pad) = (640.0, 220.0, 40.0);
    let n = series.iter().map(|(_, _, v)| v.len()).max().unwrap_or(0).max(2);
    let top = series.iter().flat_map(|(_, _, v)| v.iter().copied()).fold(0.0f64, f64::max).max(1e-9) * 1.1;
    let mut svg = format!(
        "<h2>{title}</h2><svg width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\"><rect width=\"{w}\" height=\"{h}\" fill=\"#fafafa\"/>"
    );
    let _ = write!(
        svg,
        "<text x=\"4\" y=\"14\" font-size=\"11\">{top:.2} {unit}</text><text x=\"4\" y=\"{}\" font-size=\"11\">0</text><text x=\"{}\" y=\"{}\" font-size=\"11\">{} s</text>",
        h - pad + 4.0,
        w - 60.0,
        h - 8.0,
        n - 1
    );
    for (i, (name, colour, v)) in series.iter().enumerate() {
        let points: Vec<String> = v
            .iter()
            .enumerate()
            .map(|(x, y)| {
                let px = pad + (w - 2.0 * pad) * x as f64 / (n - 1) as f64;
                let py = h - pad - (h - 2.0 * pad) * (y / top);
                format!("{px:.1},{py:.1}")
            })
            .collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/><text x=\"{}\" y=\"14\" font-size=\"11\" fill=\"{colour}\">{name}</text>",
            points.join(" "),
            120.0 + 140.0 * i as f64
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A top-down map of every bot's trail.
fn trail_map(results: &[BotResult], bounds: [f32; 4]) -> String {
    let size = 560.0f32;
    let [x0, z0, x1, z1] = bounds;
    let sx = size / (x1 - x0).max(1e-3);
    let sz = size / (z1 - z0).max(1e-3);
    let mut svg = format!(
        "<h2>Bot trails (top-down)</h2><svg width=\"{size}\" height=\"{size}\" viewBox=\"0 0 {size} {size}\"><rect width=\"{size}\" height=\"{size}\" fill=\"#f4f4f0\"/>"
    );
    for r in results {
        if r.trail.len() < 2 {
            continue;
        }
        let hue = (r.index * 47) % 360;
        let points: Vec<String> =
            r.trail.iter().map(|[x, z]| format!("{:.1},{:.1}", (x - x0) * sx, size - (z - z0) * sz)).collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"hsl({hue},60%,45%)\" stroke-opacity=\"0.6\" stroke-width=\"1\" points=\"{}\"/>",
            points.join(" ")
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Per-second means over bots of a per-bot series.
fn per_second_mean(results: &[BotResult], pick: impl Fn(&BotResult) -> Vec<f64>) -> Vec<f64> {
    let series: Vec<Vec<f64>> = results.iter().map(pick).collect();
    let n = series.iter().map(Vec::len).max().unwrap_or(0);
    (0..n)
        .map(|i| {
            let v: Vec<f64> = series.iter().filter_map(|s| s.get(i).copied()).collect();
            mean(&v)
        })
        .collect()
}

/// Zone-side figures the demo adds to the report.
#[derive(Clone, Debug, Default)]
pub struct ZoneSeries {
    /// Tick duration p99 per second, milliseconds.
    pub tick_ms_p99: Vec<f64>,
    /// Tick duration maximum per second, milliseconds.
    pub tick_ms_max: Vec<f64>,
    /// Players per second.
    pub players: Vec<f64>,
}

/// The HTML report: summary, tick time over time, bandwidth per client, prediction error,
/// and the map of trails.
pub fn html(
    title: &str,
    summary_json: &serde_json::Value,
    zone: &ZoneSeries,
    results: &[BotResult],
    bounds: [f32; 4],
) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title><style>body{{font-family:sans-serif;margin:2em;max-width:60em}}td{{padding:2px 12px}}</style></head><body><h1>{title}</h1><table>"
    );
    if let Some(map) = summary_json.as_object() {
        for (k, v) in map {
            let _ = write!(out, "<tr><td>{k}</td><td>{v}</td></tr>");
        }
    }
    out.push_str("</table>");
    out.push_str(&line_plot(
        "Zone tick time",
        "ms",
        &[
            ("p99 per second", "#c0392b", zone.tick_ms_p99.clone()),
            ("max per second", "#7f8c8d", zone.tick_ms_max.clone()),
        ],
    ));
    let kbps = per_second_mean(results, |r| r.down_bytes_per_s.iter().map(|b| *b as f64 * 8.0 / 1e3).collect());
    out.push_str(&line_plot("Bandwidth per client (down, mean over bots)", "kbps", &[("kbps", "#2980b9", kbps)]));
    let err = per_second_mean(results, |r| r.error_m_per_s.iter().map(|e| f64::from(*e)).collect());
    out.push_str(&line_plot(
        "Prediction error (largest correction per bot and second, mean over bots)",
        "m",
        &[("error", "#8e44ad", err)],
    ));
    out.push_str(&trail_map(results, bounds));
    out.push_str("</body></html>\n");
    out
}
