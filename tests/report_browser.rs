//! `pwn demo`'s HTML report in a real headless browser (Debian's `chromium`): a short demo of
//! two zones writes it, the browser renders it, and the rendered page holds every chart
//! (tick time per zone, players, input acknowledgement, prediction error, bandwidth, handoffs
//! as the zones count them, the map with its cells), every role's own figures (scraped from its
//! Prometheus endpoint during the run), the verdicts of the thresholds and the audit, and a screenshot that is not
//! blank.

use std::process::Command;

const CHROMIUM: &str = "chromium";

fn chromium(args: &[&str]) -> std::process::Output {
    Command::new(CHROMIUM)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {CHROMIUM} (install Debian's chromium): {e}"))
}

#[test]
fn the_report_renders_every_chart_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.html");
    let demo = Command::new(env!("CARGO_BIN_EXE_pwn"))
        .args(["demo", "--bots", "6", "--predicting", "2", "--duration", "4", "--zones", "2"])
        .args(["--scenario", "border", "--threshold", "disconnects==0", "--json", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&demo.stdout);
    assert!(demo.status.success(), "pwn demo failed: {stdout}\n{}", String::from_utf8_lossy(&demo.stderr));
    let url = format!("file://{}", report.display());
    // Every role was scraped: the zones' and the gateway's own figures are in the summary.
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    for role in ["zone-1", "zone-2", "world", "gateway"] {
        assert!(summary["roles"][role].is_object(), "{role} was not scraped: {}", summary["roles"]);
    }
    assert!(summary["roles"]["gateway"]["authentications"].as_f64().unwrap() >= 6.0, "{}", summary["roles"]);
    assert!(summary["roles"]["zone-1"]["tick ms p99 (histogram bucket)"].is_number(), "{}", summary["roles"]);

    let dom = chromium(&["--dump-dom", &url]);
    assert!(dom.status.success(), "{}", String::from_utf8_lossy(&dom.stderr));
    let dom = String::from_utf8_lossy(&dom.stdout);
    for id in [
        "chart-tick-0",
        "chart-tick-1",
        "chart-players",
        "chart-input-ack",
        "chart-prediction-error",
        "chart-bandwidth",
        "chart-handoffs",
        "chart-map",
    ] {
        assert!(dom.contains(&format!("<svg id=\"{id}\"")), "{id} is not on the rendered page");
    }
    assert!(!dom.contains("chart not drawn"), "a chart failed");
    for text in [
        "PASS",
        "disconnects==0",
        "store audit",
        "time (s)",
        "tick duration (ms)",
        "zone node",
        "Figures from every role",
    ] {
        assert!(dom.contains(text), "{text:?} is not on the rendered page");
    }

    let png = dir.path().join("report.png");
    let shot = chromium(&["--window-size=1100,3000", &format!("--screenshot={}", png.display()), &url]);
    assert!(shot.status.success(), "{}", String::from_utf8_lossy(&shot.stderr));
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let bytes = &pixels[..info.buffer_size()];
    let channels = info.color_type.samples();
    let inked = bytes.chunks(channels).filter(|p| p.iter().take(3).any(|c| *c < 200)).count();
    let total = bytes.len() / channels;
    // Text, axes and lines: a blank or failed page has next to none.
    assert!(inked * 100 > total, "only {inked} of {total} pixels are drawn on");
}
