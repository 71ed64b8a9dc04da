//! A scenario's report: a table for people and one JSON line for machines.

use serde_json::{Map, Value, json};

/// A list of figures for both servers, in order (one per message, say): shown, not compared.
pub(crate) struct Series {
    pub(crate) label: String,
    pub(crate) key: String,
    pub(crate) values: [Option<Vec<Option<f64>>>; 2],
}

/// One figure for both servers.
pub(crate) struct Row {
    pub(crate) label: String,
    /// The JSON key: `snake_case`, stable across versions.
    pub(crate) key: String,
    pub(crate) roomcast: Option<f64>,
    pub(crate) baseline: Option<f64>,
    /// In a summary of rounds: each round's ratio, in order.
    pub(crate) ratios: Vec<Option<f64>>,
}

#[derive(Default)]
pub(crate) struct Report {
    pub(crate) scenario: &'static str,
    pub(crate) params: Map<String, Value>,
    pub(crate) rows: Vec<Row>,
    pub(crate) series: Vec<Series>,
    /// Things worth knowing that are not failures (a server's warnings, closes).
    pub(crate) notes: Vec<String>,
    /// Failures: the run is not OK.
    pub(crate) errors: Vec<String>,
    pub(crate) lost: u64,
    /// Wall time of the whole scenario, both servers.
    pub(crate) seconds: f64,
    /// The table's names of the two columns (roomcast and the baseline, unless a scenario
    /// compares something else); the JSON keeps `roomcast` and `baseline`.
    pub(crate) columns: (&'static str, &'static str),
}

impl Report {
    pub(crate) fn new(scenario: &'static str) -> Self {
        Self {
            scenario,
            columns: ("roomcast", "baseline"),
            ..Self::default()
        }
    }

    pub(crate) fn param(&mut self, key: &str, value: impl Into<Value>) {
        self.params.insert(key.into(), value.into());
    }

    pub(crate) fn row(
        &mut self,
        label: impl Into<String>,
        key: impl Into<String>,
        values: [Option<f64>; 2],
    ) {
        self.rows.push(Row {
            label: label.into(),
            key: key.into(),
            roomcast: values[0],
            baseline: values[1],
            ratios: Vec::new(),
        });
    }

    pub(crate) fn series(
        &mut self,
        label: impl Into<String>,
        key: impl Into<String>,
        values: [Option<Vec<Option<f64>>>; 2],
    ) {
        self.series.push(Series {
            label: label.into(),
            key: key.into(),
            values,
        });
    }

    /// How many failures so far: compare two marks to see whether a run failed.
    pub(crate) fn mark(&self) -> (usize, u64) {
        (self.errors.len(), self.lost)
    }

    pub(crate) fn ok(&self) -> bool {
        self.errors.is_empty() && self.lost == 0
    }

    /// roomcast's figure over the baseline's, for the row keyed `key`.
    pub(crate) fn ratio(&self, key: &str) -> Option<f64> {
        let row = self.rows.iter().find(|row| row.key == key)?;
        ratio(row.roomcast, row.baseline)
    }

    /// Rounds of one scenario as one report: each figure the median of its rounds (the ratio
    /// is that of the two medians), each round's ratio beside it, the series run together, and
    /// for each series its p50 and p99 over all rounds' values. Failures of any round are the
    /// summary's, so its status is that of the whole.
    pub(crate) fn summary(rounds: &[Report]) -> Report {
        let Some(first) = rounds.first() else {
            return Report::default();
        };
        let mut summary = Report::new(first.scenario);
        summary.columns = first.columns;
        summary.params = first.params.clone();
        summary.params.remove("round");
        summary.param("rounds", rounds.len());
        for row in &first.rows {
            let same: Vec<&Row> = rounds
                .iter()
                .filter_map(|r| r.rows.iter().find(|other| other.key == row.key))
                .collect();
            summary.rows.push(Row {
                label: row.label.clone(),
                key: row.key.clone(),
                roomcast: median(same.iter().filter_map(|r| r.roomcast)),
                baseline: median(same.iter().filter_map(|r| r.baseline)),
                ratios: same.iter().map(|r| ratio(r.roomcast, r.baseline)).collect(),
            });
        }
        for series in &first.series {
            let values = [0, 1].map(|i| {
                let joined: Vec<Option<f64>> = rounds
                    .iter()
                    .filter_map(|r| r.series.iter().find(|other| other.key == series.key))
                    .filter_map(|s| s.values[i].as_ref())
                    .flatten()
                    .copied()
                    .collect();
                (!joined.is_empty()).then_some(joined)
            });
            let count = values.iter().flatten().map(Vec::len).max().unwrap_or(0);
            let stem = series.key.strip_suffix("_ms").unwrap_or(&series.key);
            let unit = if stem.len() < series.key.len() {
                "_ms"
            } else {
                ""
            };
            for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
                let at = |i: usize| {
                    let mut all: Vec<f64> = values[i].iter().flatten().flatten().copied().collect();
                    quantile(&mut all, q)
                };
                summary.row(
                    format!("{}: {name} of all {count} of the rounds", series.label),
                    format!("{stem}_all_{name}{unit}"),
                    [at(0), at(1)],
                );
            }
            summary.series.push(Series {
                label: format!("{} (every round, in order)", series.label),
                key: series.key.clone(),
                values,
            });
        }
        for (i, round) in rounds.iter().enumerate() {
            summary.lost += round.lost;
            summary.seconds += round.seconds;
            summary.errors.extend(
                round
                    .errors
                    .iter()
                    .map(|error| format!("round {}: {error}", i + 1)),
            );
        }
        summary.notes.push(format!(
            "summary of {} rounds: medians of each figure, each round's ratio after it",
            rounds.len()
        ));
        summary
    }

    pub(crate) fn table(&self) -> String {
        let (commands, params): (Vec<_>, Vec<_>) = self
            .params
            .iter()
            .partition(|(k, _)| k.ends_with("_command"));
        let params: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut out = format!("\n{}  ({})\n", self.scenario, params.join(" "));
        for (key, command) in commands {
            let command = command.as_str().unwrap_or_default();
            out += &format!("  {}: {command}\n", key.trim_end_matches("_command"));
        }
        let width = self
            .rows
            .iter()
            .map(|r| r.label.chars().count())
            .max()
            .unwrap_or(6)
            .max(6);
        out += &format!(
            "  {:<width$}  {:>12}  {:>12}  {:>9}\n",
            "figure", self.columns.0, self.columns.1, "ratio"
        );
        for row in &self.rows {
            let ratio =
                ratio(row.roomcast, row.baseline).map_or("-".into(), |r| format!("{r:.2}x"));
            out += &format!(
                "  {:<width$}  {:>12}  {:>12}  {:>9}",
                row.label,
                number(row.roomcast),
                number(row.baseline),
                ratio
            );
            if !row.ratios.is_empty() {
                let each: Vec<String> = row
                    .ratios
                    .iter()
                    .map(|r| r.map_or("-".into(), |r| format!("{r:.2}")))
                    .collect();
                out += &format!("  rounds: {}", each.join(" "));
            }
            out.push('\n');
        }
        for series in &self.series {
            out += &format!("  {}:\n", series.label);
            for (name, values) in ["roomcast", "baseline"].iter().zip(&series.values) {
                let Some(values) = values else { continue };
                let values: Vec<String> = values
                    .iter()
                    .map(|v| v.map_or("-".into(), |v| format!("{v:.0}")))
                    .collect();
                out += &format!("    {name:<9} {}\n", values.join(" "));
            }
        }
        for note in &self.notes {
            out += &format!("  note: {note}\n");
        }
        if self.lost > 0 {
            out += &format!("  FAILED: {} messages lost\n", self.lost);
        }
        for error in &self.errors {
            out += &format!("  FAILED: {error}\n");
        }
        out += &format!("  ({:.1} s)\n", self.seconds);
        out
    }

    pub(crate) fn json(&self) -> String {
        let figures: Map<String, Value> = self
            .rows
            .iter()
            .map(|row| {
                let mut value = json!({
                    "roomcast": row.roomcast,
                    "baseline": row.baseline,
                    "ratio": ratio(row.roomcast, row.baseline),
                });
                if !row.ratios.is_empty() {
                    value["ratios"] = json!(row.ratios);
                }
                (row.key.clone(), value)
            })
            .collect();
        let series: Map<String, Value> = self
            .series
            .iter()
            .map(|series| {
                let [roomcast, baseline] = &series.values;
                let value = json!({ "roomcast": roomcast, "baseline": baseline });
                (series.key.clone(), value)
            })
            .collect();
        json!({
            "scenario": self.scenario,
            // The table's names of `roomcast` and `baseline`, for `chart`.
            "columns": [self.columns.0, self.columns.1],
            "params": self.params,
            "figures": figures,
            "series": series,
            "lost": self.lost,
            "notes": self.notes,
            "errors": self.errors,
            "seconds": self.seconds,
            "ok": self.ok(),
        })
        .to_string()
    }
}

fn ratio(roomcast: Option<f64>, baseline: Option<f64>) -> Option<f64> {
    match (roomcast, baseline) {
        (Some(r), Some(b)) if b > 0.0 => Some(r / b),
        _ => None,
    }
}

/// The median of some figures (the mean of the middle two for an even count).
fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// The `q` quantile by rank, as `stats::quantile_exact_ms` takes it.
fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    Some(values[rank - 1])
}

/// Large counts with thousands separators; small figures with two decimals.
fn number(value: Option<f64>) -> String {
    let Some(v) = value else {
        return "-".into();
    };
    if v.abs() < 100.0 && v.fract() != 0.0 {
        return format!("{v:.2}");
    }
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    if v < 0.0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_json_carry_the_ratio() {
        let mut report = Report::new("echo");
        report.param("connections", 10);
        report.row("messages/s", "per_s", [Some(150_000.0), Some(100_000.0)]);
        report.row("p99 (ms)", "p99_ms", [Some(1.5), None]);
        report.series("each (ms)", "each_ms", [Some(vec![Some(12.4), None]), None]);
        assert_eq!(report.ratio("per_s"), Some(1.5));
        let table = report.table();
        assert!(
            table.contains("150,000") && table.contains("1.50x"),
            "{table}"
        );
        let line: Value = serde_json::from_str(&report.json()).expect("JSON");
        assert_eq!(line["figures"]["per_s"]["ratio"], 1.5);
        assert_eq!(line["figures"]["p99_ms"]["baseline"], Value::Null);
        assert_eq!(line["ok"], true);
        assert_eq!(line["series"]["each_ms"]["roomcast"][0], 12.4);
        assert_eq!(line["series"]["each_ms"]["roomcast"][1], Value::Null);
        assert_eq!(line["series"]["each_ms"]["baseline"], Value::Null);
        assert!(table.contains("roomcast  12 -"), "{table}");
        assert_eq!(number(Some(1234567.0)), "1,234,567");
        assert_eq!(number(Some(0.123)), "0.12");
        assert_eq!(number(Some(3.0)), "3");
    }

    #[test]
    fn a_summary_takes_medians_keeps_each_ratio_and_pools_the_series() {
        let round = |r: f64, b: f64, each: Vec<f64>, error: Option<&str>| {
            let mut report = Report::new("fanout-ws");
            report.param("connections", 10);
            report.param("round", "of");
            report.row("p99 (ms)", "p99_ms", [Some(r), Some(b)]);
            report.row("cpu (s)", "cpu_s", [Some(1.0), None]);
            let each = each.into_iter().map(Some).collect();
            report.series("each (ms)", "each_ms", [Some(each), None]);
            report.lost = 1;
            report.seconds = 2.0;
            report.errors.extend(error.map(String::from));
            report
        };
        let rounds = [
            round(100.0, 200.0, vec![1.0, 2.0], None),
            round(300.0, 100.0, vec![3.0, 4.0], Some("baseline: refused")),
            round(200.0, 150.0, vec![5.0, 100.0], None),
        ];
        let summary = Report::summary(&rounds);
        // Medians of each server's figure, and the ratio of those medians.
        assert_eq!(summary.ratio("p99_ms"), Some(200.0 / 150.0));
        let row = &summary.rows[0];
        assert_eq!((row.roomcast, row.baseline), (Some(200.0), Some(150.0)));
        assert_eq!(row.ratios, vec![Some(0.5), Some(3.0), Some(200.0 / 150.0)]);
        assert_eq!(summary.rows[1].ratios, vec![None, None, None]);
        // The series run together, and their percentiles are over all six values.
        assert_eq!(summary.series[0].values[0].as_ref().map(Vec::len), Some(6));
        assert!(summary.series[0].values[1].is_none());
        let p99 = summary.rows.iter().find(|r| r.key == "each_all_p99_ms");
        assert_eq!(p99.and_then(|r| r.roomcast), Some(100.0));
        let p50 = summary.rows.iter().find(|r| r.key == "each_all_p50_ms");
        assert_eq!(p50.and_then(|r| r.roomcast), Some(3.0));
        // Any round's failure fails the summary, and says which round.
        assert_eq!(summary.errors, vec!["round 2: baseline: refused"]);
        assert_eq!((summary.lost, summary.seconds), (3, 6.0));
        assert!(!summary.params.contains_key("round"));
        assert_eq!(summary.params["rounds"], 3);
        let line: Value = serde_json::from_str(&summary.json()).expect("JSON");
        assert_eq!(line["figures"]["p99_ms"]["ratios"][0], 0.5);
        assert!(summary.table().contains("rounds: 0.50 3.00 1.33"));
        assert_eq!(median([4.0, 1.0, 3.0, 2.0].into_iter()), Some(2.5));
    }
}
