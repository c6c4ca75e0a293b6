//! The report's charts, drawn with plotters into inline SVG: percentiles over time with axes,
//! units and a legend, and a top-down map at the scale of where the bots went, with the zone
//! cells drawn and coloured by owner.
//!
//! Why plotters: a maintained Rust charting crate whose SVG backend needs neither fonts nor a
//! bitmap library (with default features off, text is left to the browser), so the report
//! stays one self-contained file with no script and nothing fetched; a JavaScript library
//! would have to be vendored into the repository and embedded in every report.

use plotters::prelude::*;

/// A series of one value per second.
#[derive(Clone, Debug)]
pub struct Series {
    /// Its name in the legend.
    pub name: String,
    /// One value per second (`None`: nothing measured that second, not drawn).
    pub values: Vec<Option<f64>>,
}

/// A zone cell on the map.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MapCell {
    /// Minimum corner (x, z), metres.
    pub min: [f32; 2],
    /// Maximum corner (x, z), metres.
    pub max: [f32; 2],
    /// The zone node holding its lease (0: none).
    pub owner: u64,
}

/// Colours of series and owners, in order.
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// The charts' error as text: a chart that cannot be drawn says why in its place.
fn failed(e: impl std::fmt::Display) -> String {
    format!("<p class=\"chart-error\">chart not drawn: {}</p>", html_escape(&e.to_string()))
}

/// Escapes text for HTML.
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A line chart over time (x: seconds of the run) of `series` in `unit`, as an inline SVG
/// element with `id`.
pub fn time_chart(id: &str, title: &str, unit: &str, series: &[Series]) -> String {
    let seconds = series.iter().map(|s| s.values.len()).max().unwrap_or(0).max(2);
    let top =
        series.iter().flat_map(|s| s.values.iter().flatten().copied()).filter(|v| v.is_finite()).fold(0.0, f64::max);
    // A margin above the top, unless that would overflow (an infinite axis never finishes
    // placing its ticks).
    let top = if top > 0.0 { Some(top * 1.1).filter(|t| t.is_finite()).unwrap_or(top) } else { 1.0 };
    let mut svg = String::new();
    let drawn = (|| -> Result<(), Box<dyn std::error::Error + '_>> {
        let root = SVGBackend::with_string(&mut svg, (760, 280)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..(seconds - 1) as f64, 0f64..top)?;
        chart.configure_mesh().x_desc("time (s)").y_desc(unit).light_line_style(WHITE.mix(0.0)).draw()?;
        for (i, s) in series.iter().enumerate() {
            let c = colour(i);
            // Gaps (seconds with nothing measured) split the line.
            let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
            for (x, v) in s.values.iter().enumerate() {
                match v {
                    Some(v) if v.is_finite() => runs.last_mut().map_or((), |r| r.push((x as f64, *v))),
                    _ if runs.last().is_some_and(|r| !r.is_empty()) => runs.push(Vec::new()),
                    _ => {}
                }
            }
            for (k, run) in runs.into_iter().filter(|r| !r.is_empty()).enumerate() {
                let drawn = chart.draw_series(LineSeries::new(run, c.stroke_width(2)))?;
                if k == 0 {
                    drawn
                        .label(s.name.clone())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
                }
            }
        }
        chart.configure_series_labels().background_style(WHITE.mix(0.85)).border_style(BLACK).draw()?;
        root.present()?;
        Ok(())
    })();
    match drawn {
        Ok(()) => with_id(&svg, id),
        Err(e) => failed(e),
    }
}

/// Gives the chart's root `<svg>` element an id (so a test, or a reader's link, finds it).
fn with_id(svg: &str, id: &str) -> String {
    match svg.find("<svg") {
        Some(at) => format!("{}<svg id=\"{}\"{}", &svg[..at], html_escape(id), &svg[at + 4..]),
        None => svg.to_owned(),
    }
}

/// A top-down map (x right, z up) of the bots' trails at the scale of where they went (a
/// margin around their extent), with `cells` drawn and coloured by owner.
pub fn trail_map(id: &str, title: &str, trails: &[&[[f32; 2]]], cells: &[MapCell]) -> String {
    // Only finite positions are drawn (an infinite extent makes an axis that never finishes
    // placing its ticks); the extent is computed in f64, where no f32 span overflows.
    let finite = |p: &&[f32; 2]| p[0].is_finite() && p[1].is_finite();
    let points = trails.iter().flat_map(|t| t.iter()).filter(finite);
    let (mut x0, mut z0, mut x1, mut z1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for [x, z] in points {
        let (x, z) = (f64::from(*x), f64::from(*z));
        (x0, z0, x1, z1) = (x0.min(x), z0.min(z), x1.max(x), z1.max(z));
    }
    if x0 > x1 {
        (x0, z0, x1, z1) = (-50.0, -50.0, 50.0, 50.0);
    }
    // Square, with a margin of a tenth (at least 10 m) around the extent.
    let span = (x1 - x0).max(z1 - z0).max(20.0) * 1.2;
    let (cx, cz) = ((x0 + x1) / 2.0, (z0 + z1) / 2.0);
    let (x0, x1, z0, z1) = (cx - span / 2.0, cx + span / 2.0, cz - span / 2.0, cz + span / 2.0);
    let mut owners: Vec<u64> = cells.iter().map(|c| c.owner).collect();
    owners.sort_unstable();
    owners.dedup();
    let mut svg = String::new();
    let drawn = (|| -> Result<(), Box<dyn std::error::Error + '_>> {
        let root = SVGBackend::with_string(&mut svg, (640, 640)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(x0..x1, z0..z1)?;
        chart.configure_mesh().x_desc("x (m)").y_desc("z (m)").light_line_style(WHITE.mix(0.0)).draw()?;
        for (i, owner) in owners.iter().enumerate() {
            let c = colour(i);
            let mine: Vec<&MapCell> = cells.iter().filter(|m| m.owner == *owner).collect();
            let rects = mine.iter().map(|m| {
                let (a, b) = ((f64::from(m.min[0]), f64::from(m.min[1])), (f64::from(m.max[0]), f64::from(m.max[1])));
                Rectangle::new([a, b], c.mix(0.12).filled())
            });
            let name = if *owner == 0 { "no lease".to_owned() } else { format!("zone node {owner}") };
            chart
                .draw_series(rects)?
                .label(name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.mix(0.5).filled()));
            chart.draw_series(mine.iter().map(|m| {
                let (a, b) = ((f64::from(m.min[0]), f64::from(m.min[1])), (f64::from(m.max[0]), f64::from(m.max[1])));
                Rectangle::new([a, b], c.stroke_width(1))
            }))?;
        }
        for (i, t) in trails.iter().enumerate().filter(|(_, t)| t.len() >= 2) {
            let c = colour(i + 3).mix(0.6);
            chart.draw_series(LineSeries::new(
                t.iter().filter(finite).map(|[x, z]| (f64::from(*x), f64::from(*z))),
                c.stroke_width(1),
            ))?;
        }
        if !owners.is_empty() {
            chart.configure_series_labels().background_style(WHITE.mix(0.85)).border_style(BLACK).draw()?;
        }
        root.present()?;
        Ok(())
    })();
    match drawn {
        Ok(()) => with_id(&svg, id),
        Err(e) => failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_have_their_id_axes_and_legend() {
        let s = [
            Series { name: "p50".into(), values: vec![Some(1.0), Some(2.0), None, Some(2.5)] },
            Series { name: "p99".into(), values: vec![Some(3.0), Some(4.0), Some(5.0), Some(4.0)] },
        ];
        let svg = time_chart("tick", "Zone tick", "ms", &s);
        assert!(svg.starts_with("<svg id=\"tick\""), "{}", &svg[..80.min(svg.len())]);
        for text in ["time (s)", "ms", "p50", "p99", "Zone tick"] {
            assert!(svg.contains(text), "{text} missing");
        }
        assert!(svg.matches("<polyline").count() >= 3, "p50 split by its gap, p99 whole");
        let map = trail_map(
            "map",
            "Trails",
            &[&[[0.0, 0.0], [10.0, 5.0]], &[[3.0, 3.0], [4.0, 9.0]]],
            &[
                MapCell { min: [-100.0, -100.0], max: [0.0, 0.0], owner: 1 },
                MapCell { min: [0.0, 0.0], max: [100.0, 100.0], owner: 2 },
            ],
        );
        assert!(map.starts_with("<svg id=\"map\""));
        assert!(map.contains("zone node 1") && map.contains("zone node 2"));
        // Nothing to draw still draws a chart (empty axes), never panics.
        assert!(time_chart("e", "Empty", "ms", &[]).starts_with("<svg id=\"e\""));
        assert!(trail_map("m", "Empty", &[], &[]).starts_with("<svg id=\"m\""));
        assert_eq!(html_escape("<a&\">"), "&lt;a&amp;&quot;&gt;");
    }

    /// Runs `draw` on a thread and fails if it has not finished within a few seconds (an axis
    /// over an infinite range never finishes placing its ticks).
    fn drawn_in_time(draw: impl FnOnce() -> String + Send + 'static) -> String {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(draw()));
        rx.recv_timeout(std::time::Duration::from_secs(20)).expect("the chart was not drawn within 20 s")
    }

    #[test]
    fn charts_of_huge_infinite_or_nan_values_are_drawn() {
        // A value near f64::MAX: the margin above it overflowed to an infinite axis.
        let huge = [Series { name: "p99".into(), values: vec![Some(f64::MAX), Some(1.0), Some(f64::NAN)] }];
        let svg = drawn_in_time(move || time_chart("huge", "Huge", "ms", &huge));
        assert!(svg.starts_with("<svg id=\"huge\""), "{}", &svg[..80.min(svg.len())]);
        // Trails at f32::MAX, at infinity, or NaN: the span overflowed f32, or was infinite.
        let far: [&'static [[f32; 2]]; 3] =
            [&[[0.0, 0.0], [f32::MAX, 1.0]], &[[-f32::MAX, 0.0], [f32::INFINITY, 1.0]], &[[f32::NAN, 2.0], [3.0, 4.0]]];
        for t in far {
            let svg = drawn_in_time(move || trail_map("m", "Far", &[t], &[]));
            assert!(svg.starts_with("<svg id=\"m\""), "{}", &svg[..80.min(svg.len())]);
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "no coordinate that is not a number");
        }
        // Bots that never moved: one point each, or none, still a map.
        let still: &[&[[f32; 2]]] = &[&[[5.0, 5.0]], &[[5.0, 5.0], [5.0, 5.0]], &[]];
        assert!(trail_map("s", "Still", still, &[]).starts_with("<svg id=\"s\""));
    }
}
