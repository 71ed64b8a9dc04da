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
}

impl Report {
    pub(crate) fn new(scenario: &'static str) -> Self {
        Self {
            scenario,
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
            "figure", "roomcast", "baseline", "ratio"
        );
        for row in &self.rows {
            let ratio =
                ratio(row.roomcast, row.baseline).map_or("-".into(), |r| format!("{r:.2}x"));
            out += &format!(
                "  {:<width$}  {:>12}  {:>12}  {:>9}\n",
                row.label,
                number(row.roomcast),
                number(row.baseline),
                ratio
            );
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
                let value = json!({
                    "roomcast": row.roomcast,
                    "baseline": row.baseline,
                    "ratio": ratio(row.roomcast, row.baseline),
                });
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
}
