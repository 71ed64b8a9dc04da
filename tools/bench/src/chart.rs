//! `roomcast-bench chart`: the figures of `--json` runs drawn as SVG line charts, one chart per
//! figure, C (the connections) across, one line per server, for `docs/performance.md` to embed
//! beside its tables. Hand-drawn SVG: no chart library, nothing to fetch.
//!
//! ```sh
//! for c in 1000 5000 10000; do
//!   roomcast-bench fanout-nchan -c $c --json; roomcast-bench fanout-socketio -c $c --json
//! done > runs.jsonl
//! roomcast-bench chart runs.jsonl --out docs/charts
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;
use serde_json::Value;

#[derive(Args, Debug)]
pub(crate) struct ChartArgs {
    /// Files of the JSON lines `--json` prints (one report per line; other lines are skipped).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Where the SVG files go, one per figure (created if missing).
    #[arg(long, default_value = "charts")]
    out: PathBuf,
}

/// The figures charted: (the chart's file name, the JSON keys summed, title, unit).
const FIGURES: &[(&str, &[&str], &str, &str)] = &[
    (
        "paced_last_p99_ms",
        &["paced_last_p99_ms"],
        "Paced fan-out: publish to last receipt, p99",
        "ms",
    ),
    (
        "paced_cpu_us_per_delivery",
        &["paced_user_us", "paced_system_us"],
        "Paced fan-out: server CPU (user and system) per delivery",
        "µs",
    ),
    (
        "burst_deliveries_per_s",
        &["burst_deliveries_per_s"],
        "Burst fan-out: deliveries per second",
        "/s",
    ),
    (
        "idle_rss_per_conn_kib",
        &["idle_rss_per_conn_kib"],
        "Memory per idle connection",
        "KiB",
    ),
];

/// Points of one line: C, and every value measured at it (averaged when drawn).
type Line = BTreeMap<u64, Vec<f64>>;

pub(crate) fn run(args: ChartArgs) -> Result<(), String> {
    // figure -> server -> line
    let mut charts: BTreeMap<&str, BTreeMap<String, Line>> = BTreeMap::new();
    for file in &args.files {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        for line in text.lines().filter(|l| l.starts_with('{')) {
            let Ok(report) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let Some(c) = report["params"]["connections"].as_u64() else {
                continue;
            };
            let names = columns(&report);
            for &(chart, keys, _, _) in FIGURES {
                for (side, name) in ["roomcast", "baseline"].into_iter().zip(&names) {
                    let parts: Option<Vec<f64>> = keys
                        .iter()
                        .map(|key| report["figures"][key][side].as_f64())
                        .collect();
                    if let Some(value) = parts.map(|p| p.iter().sum::<f64>()) {
                        let lines = charts.entry(chart).or_default();
                        let line = lines.entry(name.clone()).or_default();
                        line.entry(c).or_default().push(value);
                    }
                }
            }
        }
    }
    if charts.is_empty() {
        return Err("no figure to chart in those files (run scenarios with --json)".into());
    }
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    for &(chart, _, title, unit) in FIGURES {
        let Some(lines) = charts.get(chart) else {
            continue;
        };
        let path = args.out.join(format!("{chart}.svg"));
        std::fs::write(&path, svg(title, unit, lines))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The report's names of its two columns (`columns`), else roomcast and the scenario's
/// baseline.
fn columns(report: &Value) -> [String; 2] {
    let named = |i: usize| report["columns"][i].as_str().map(str::to_owned);
    let scenario = report["scenario"].as_str().unwrap_or("?");
    [
        named(0).unwrap_or_else(|| "roomcast".into()),
        named(1).unwrap_or_else(|| format!("{scenario} baseline")),
    ]
}

const WIDTH: f64 = 590.0;
const HEIGHT: f64 = 320.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 44.0;
const COLOURS: &[&str] = &[
    "#d94f2b", "#2b6cd9", "#2ba84a", "#8a4fd9", "#d9a52b", "#555555",
];

/// One chart: C across (log scale), the figure up (from 0), a line and its points per server.
fn svg(title: &str, unit: &str, lines: &BTreeMap<String, Line>) -> String {
    let points: BTreeMap<&String, Vec<(u64, f64)>> = lines
        .iter()
        .map(|(name, line)| {
            let averaged = line
                .iter()
                .map(|(&c, values)| (c, values.iter().sum::<f64>() / values.len() as f64))
                .collect();
            (name, averaged)
        })
        .collect();
    let all = points.values().flatten();
    let (c_min, c_max) = all
        .clone()
        .fold((u64::MAX, 0), |(lo, hi), &(c, _)| (lo.min(c), hi.max(c)));
    let y_max = nice(all.map(|&(_, v)| v).fold(0.0, f64::max));
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let span = (c_max as f64).ln() - (c_min as f64).ln();
    let x = |c: u64| match span {
        s if s > 0.0 => LEFT + ((c as f64).ln() - (c_min as f64).ln()) / s * plot_w,
        _ => LEFT + plot_w / 2.0,
    };
    let y = |v: f64| TOP + plot_h - v / y_max * plot_h;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(
        out,
        r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/><text x="{LEFT}" y="20" font-size="14" font-weight="bold">{}</text>"#,
        escape(title)
    );
    // The value axis: five steps from 0, with grid lines.
    for step in 0..=4 {
        let v = y_max * f64::from(step) / 4.0;
        let (gy, label) = (y(v), number(v));
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{gy:.1}" y2="{gy:.1}" stroke="#e5e5e5"/><text x="{}" y="{:.1}" text-anchor="end">{label}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            gy + 4.0
        );
    }
    let _ = write!(
        out,
        r#"<text x="14" y="{:.1}" transform="rotate(-90 14 {:.1})" text-anchor="middle">{}</text>"#,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0,
        escape(unit)
    );
    // C across: a tick at each C measured.
    let mut cs: Vec<u64> = points.values().flatten().map(|&(c, _)| c).collect();
    cs.sort_unstable();
    cs.dedup();
    for c in cs {
        let _ = write!(
            out,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{1}" y2="{2}" stroke="#999"/><text x="{0:.1}" y="{3}" text-anchor="middle">{4}</text>"##,
            x(c),
            TOP + plot_h,
            TOP + plot_h + 4.0,
            TOP + plot_h + 18.0,
            number(c as f64)
        );
    }
    let _ = write!(
        out,
        r#"<text x="{:.1}" y="{}" text-anchor="middle">connections (C)</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 6.0
    );
    for (i, (name, line)) in points.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = line
            .iter()
            .map(|&(c, v)| format!("{:.1},{:.1}", x(c), y(v)))
            .collect();
        let _ = write!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
            path.join(" ")
        );
        for &(c, v) in line {
            let _ = write!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"><title>{}: {} at C={}</title></circle>"#,
                x(c),
                y(v),
                escape(name),
                number(v),
                c
            );
        }
        let ly = TOP + 14.0 + 18.0 * i as f64;
        let lx = LEFT + plot_w + 14.0;
        let _ = write!(
            out,
            r#"<line x1="{lx}" x2="{}" y1="{ly}" y2="{ly}" stroke="{colour}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
            lx + 18.0,
            lx + 24.0,
            ly + 4.0,
            escape(name)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// The axis top: the largest value rounded up to 1, 2, 2.5 or 5 times a power of ten.
fn nice(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|top| *top >= max)
        .unwrap_or(10.0 * power)
}

/// A value as a person reads it: thousands grouped, at most three significant decimals.
fn number(v: f64) -> String {
    if v >= 1000.0 {
        let whole = v.round() as u64;
        let digits = whole.to_string();
        let mut grouped = String::new();
        for (i, d) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(d);
        }
        grouped
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_has_a_line_and_a_legend_per_server_and_a_tick_per_c() {
        let mut lines: BTreeMap<String, Line> = BTreeMap::new();
        for (name, values) in [
            ("roomcast", [10.0, 20.0, 40.0]),
            ("nchan", [12.0, 30.0, 80.0]),
        ] {
            let line = lines.entry(name.into()).or_default();
            for (c, v) in [1000, 5000, 10_000].into_iter().zip(values) {
                line.entry(c).or_default().push(v);
            }
        }
        let drawn = svg("p99", "ms", &lines);
        assert!(drawn.starts_with("<svg") && drawn.trim_end().ends_with("</svg>"));
        assert_eq!(drawn.matches("<polyline").count(), 2);
        assert_eq!(drawn.matches("<circle").count(), 6);
        for label in [
            ">roomcast<",
            ">nchan<",
            ">1,000<",
            ">5,000<",
            ">10,000<",
            ">100<",
        ] {
            assert!(drawn.contains(label), "{label} in {drawn}");
        }
    }

    #[test]
    fn the_axis_top_is_a_round_number_above_the_largest_value() {
        assert_eq!(nice(80.0), 100.0);
        assert_eq!(nice(0.42), 0.5);
        assert_eq!(nice(1500.0), 2000.0);
        assert_eq!(nice(200.4), 250.0);
        assert_eq!(nice(0.0), 1.0);
        assert_eq!(number(1_234_567.0), "1,234,567");
    }
}
