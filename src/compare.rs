//! `riskwatch compare`: a backtest of two strategy configs on the same recorded inputs,
//! printed side by side — what a change would have done.
//!
//! Each config is replayed into its own output directory; quality against `truth.ndjson`
//! (when the input is a generated book) and output counts are compared per strategy. With
//! `--report FILE`, [`write_report`] also writes the visual report of [`crate::report`].

use crate::quality::{quality, read_truth, Quality};
use crate::replay::{load_config, replay, ReplayArgs, Summary};
use std::path::{Path, PathBuf};

/// One side of the comparison.
#[derive(Debug)]
pub struct Side {
    /// The config file.
    pub config: PathBuf,
    /// Quality per strategy (empty without a truth file).
    pub quality: Vec<Quality>,
    /// The replay summary.
    pub summary: Summary,
    /// Alerts, decisions and cases written.
    pub outputs: [u64; 3],
    /// The champion's outputs reduced for the visual report.
    pub report: crate::report::SideReport,
}

fn count_lines(path: &Path) -> u64 {
    std::fs::read(path)
        .map(|t| t.iter().filter(|b| **b == b'\n').count() as u64)
        .unwrap_or(0)
}

/// Replays `input` with each config and returns both sides.
pub fn compare(
    input: &Path,
    configs: [&Path; 2],
    out: &Path,
    workers: usize,
) -> anyhow::Result<[Side; 2]> {
    let truth = input.join("truth.ndjson");
    let truth = if truth.exists() {
        Some(read_truth(&truth)?)
    } else {
        None
    };
    let mut sides = Vec::new();
    for (i, path) in configs.iter().enumerate() {
        let (config, compiled) = load_config(Some(path))?;
        let dir = out.join(if i == 0 { "a" } else { "b" });
        let (run, summary) = replay(&compiled, &config, input, &dir, &ReplayArgs::new(workers))?;
        let strategies: Vec<(String, bool)> = compiled.strategies.names_with_shadow();
        let q = truth
            .as_ref()
            .map(|t| quality(t, &run.alerts, &strategies))
            .unwrap_or_default();
        let champion = &compiled.strategies.list[compiled.strategies.champion].name;
        let report = crate::report::SideReport::new(
            &path.display().to_string(),
            champion,
            &run.alerts,
            &run.decisions,
            &run.cases,
            summary.levels.get(champion).copied().unwrap_or_default(),
        );
        sides.push(Side {
            report,
            config: path.to_path_buf(),
            quality: q,
            summary,
            outputs: [
                count_lines(&dir.join("alerts.ndjson")),
                count_lines(&dir.join("decisions.ndjson")),
                count_lines(&dir.join("cases.ndjson")),
            ],
        });
    }
    let b = sides.pop().expect("two sides");
    let a = sides.pop().expect("two sides");
    Ok([a, b])
}

/// Writes the visual report of `sides` to `path`: one self-contained HTML file. With
/// `labels` (a labels file, or the input's truth.ndjson), it includes the ROC, KS, decile
/// and lead-time charts.
pub fn write_report(
    path: &Path,
    input: &Path,
    labels: Option<&Path>,
    sides: &[Side; 2],
) -> anyhow::Result<()> {
    let detection = match labels {
        Some(l) => {
            let labels = crate::evaluation::labels::read_labels(l)?;
            let d = |i: usize| {
                crate::report::detection::detection(&sides[i].report.peaks, &labels.by_customer)
            };
            Some([d(0), d(1)])
        }
        None => None,
    };
    let html = crate::report::render(&crate::report::Page {
        input: input.display().to_string(),
        labels: labels.map(|l| l.display().to_string()),
        sides: [&sides[0].report, &sides[1].report],
        detection,
    });
    // Written beside the target and renamed: a reader never sees half a page.
    let tmp = path.with_extension("html.tmp");
    std::fs::write(&tmp, html)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| riskwatch_connectors::error::ConnectorError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
    Ok(())
}

/// The side-by-side table.
pub fn table(sides: &[Side; 2]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "A = {}\nB = {}\n",
        sides[0].config.display(),
        sides[1].config.display()
    );
    let _ = writeln!(s, "{:<28} {:>14} {:>14}", "", "A", "B");
    let row = |s: &mut String, name: &str, a: String, b: String| {
        let _ = writeln!(s, "{name:<28} {a:>14} {b:>14}");
    };
    row(
        &mut s,
        "alerts",
        sides[0].outputs[0].to_string(),
        sides[1].outputs[0].to_string(),
    );
    row(
        &mut s,
        "decisions",
        sides[0].outputs[1].to_string(),
        sides[1].outputs[1].to_string(),
    );
    row(
        &mut s,
        "cases",
        sides[0].outputs[2].to_string(),
        sides[1].outputs[2].to_string(),
    );
    let names: Vec<String> = sides[0]
        .quality
        .iter()
        .chain(sides[1].quality.iter())
        .map(|q| q.strategy.clone())
        .fold(Vec::new(), |mut v, n| {
            if !v.contains(&n) {
                v.push(n);
            }
            v
        });
    for name in names {
        let get = |i: usize| sides[i].quality.iter().find(|q| q.strategy == name);
        let cell =
            |i: usize, f: &dyn Fn(&Quality) -> String| get(i).map(f).unwrap_or_else(|| "-".into());
        let _ = writeln!(s, "\nstrategy {name}");
        for (label, f) in [
            (
                "  flagged before default",
                &(|q: &Quality| format!("{:.1}%", 100.0 * q.detection_rate))
                    as &dyn Fn(&Quality) -> String,
            ),
            ("  median lead (days)", &|q: &Quality| {
                format!("{:.1}", q.median_lead_days)
            }),
            ("  healthy flagged (FP)", &|q: &Quality| {
                format!("{:.2}%", 100.0 * q.false_positive_rate)
            }),
            ("  ring members flagged", &|q: &Quality| {
                format!("{:.1}%", 100.0 * q.ring_rate)
            }),
            ("  alerts", &|q: &Quality| q.alerts.to_string()),
        ] {
            row(&mut s, label, cell(0, f), cell(1, f));
        }
        for (i, side) in sides.iter().enumerate() {
            if let Some(rules) = side.summary.alerts_by_rule.get(&name) {
                let _ = writeln!(
                    s,
                    "  alerts by rule ({}): {rules:?}",
                    if i == 0 { "A" } else { "B" }
                );
            }
        }
    }
    s
}
