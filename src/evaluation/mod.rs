//! `riskwatch evaluate`: book snapshots joined to outcomes, judged as a strategist would
//! (DOMAIN.md "How a scorecard is judged").
//!
//! Per strategy and observation time, over the labelled customers not already bad at it:
//! AUC, KS and Gini of the strategy's ranking (level, then score: a higher level is riskier,
//! and within a level a lower score is), the same AUC for current DPD alone (the baseline a
//! behaviour signal must beat), bad rate and capture by decile, and bad rate by level. Per
//! strategy: the lead time from the first observation at which a bad was flagged (level at
//! or above `--flag-level`) to its outcome date, and the PSI of the score (or, without a
//! scorecard, of the level) between consecutive observation times.
//!
//! A customer is bad at observation time T when its outcome is 1 and its outcome date is
//! after T (within `--window` of T, when given); one whose outcome date is at or before T
//! is already bad and left out at T. An outcome without a date counts as after every T.

pub mod labels;
pub mod measures;
mod report;

pub use report::table;

use anyhow::Context;
use labels::{read_labels, Label};
use measures::{auc, decile_edges, deciles, ks, psi, quantile, shares, Decile};
use riskwatch_model::time::MS_PER_DAY;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// Options of `evaluate`.
#[derive(Clone, Debug)]
pub struct EvaluateArgs {
    /// snapshots.ndjson, or the directory holding it.
    pub snapshots: PathBuf,
    /// The labels file.
    pub labels: PathBuf,
    /// The level from which a customer counts as flagged (lead time).
    pub flag_level: u8,
    /// Outcome window after each observation time (ms); unbounded when `None`.
    pub window: Option<u64>,
}

/// The fields of a snapshot record the evaluation reads (the rest are skipped).
#[derive(Deserialize)]
struct Row {
    as_of: u64,
    customer_id: String,
    strategy: String,
    level: u8,
    #[serde(default)]
    score: Option<f64>,
    dpd: u64,
}

/// One strategy at one observation time.
#[derive(Clone, Debug, Serialize)]
pub struct Judged {
    /// Strategy.
    pub strategy: String,
    /// Observation time (epoch ms).
    pub as_of: u64,
    /// Labelled customers judged (not already bad).
    pub customers: u64,
    /// Bads among them.
    pub bads: u64,
    /// Labelled customers already bad at `as_of`, left out.
    pub already_bad: u64,
    /// AUC of level-then-score.
    pub auc: Option<f64>,
    /// KS of level-then-score.
    pub ks: Option<f64>,
    /// 2·AUC − 1.
    pub gini: Option<f64>,
    /// AUC of current DPD alone.
    pub auc_dpd: Option<f64>,
    /// Bad rate and capture by decile of level-then-score.
    pub deciles: Vec<Decile>,
    /// Customers, bads and bad rate at each level 0–4.
    pub by_level: Vec<LevelRow>,
}

/// One level's row.
#[derive(Clone, Debug, Serialize)]
pub struct LevelRow {
    /// Level 0–4.
    pub level: u8,
    /// Customers at it.
    pub customers: u64,
    /// Bads among them.
    pub bads: u64,
    /// Bads over customers (0 when empty).
    pub bad_rate: f64,
}

/// How early a strategy flags the bads.
#[derive(Clone, Debug, Serialize)]
pub struct LeadTime {
    /// Strategy.
    pub strategy: String,
    /// Flagged means at this level or above.
    pub flag_level: u8,
    /// Bads with an outcome date after the first observation time.
    pub bads: u64,
    /// Of those, flagged at an observation before their outcome date.
    pub flagged: u64,
    /// Lead time quantiles (days) of the flagged: p25, median, p75.
    pub p25_days: Option<f64>,
    /// See `p25_days`.
    pub median_days: Option<f64>,
    /// See `p25_days`.
    pub p75_days: Option<f64>,
    /// Histogram of lead times: flagged bads per 7-day bucket (index 0 is 0–7 days).
    pub weekly: Vec<u64>,
}

/// The PSI of a strategy's score between two observation times.
#[derive(Clone, Debug, Serialize)]
pub struct Stability {
    /// Strategy.
    pub strategy: String,
    /// Earlier observation time.
    pub from: u64,
    /// Later observation time.
    pub to: u64,
    /// `score`, or `level` for a strategy without a scorecard.
    pub of: &'static str,
    /// The index: < 0.1 stable, 0.1–0.25 investigate, > 0.25 shifted.
    pub psi: f64,
}

/// Everything `evaluate` reports.
#[derive(Clone, Debug, Serialize)]
pub struct Evaluation {
    /// Snapshot records read.
    pub snapshot_records: u64,
    /// Labels used.
    pub labels: u64,
    /// Label rows left out, by reason (`unknown_customer`: in no snapshot).
    pub labels_rejected: BTreeMap<String, u64>,
    /// Snapshot customers without a label (left out).
    pub unlabelled_customers: u64,
    /// Per strategy and observation time.
    pub judged: Vec<Judged>,
    /// Per strategy.
    pub lead_times: Vec<LeadTime>,
    /// Per strategy, between consecutive observation times.
    pub stability: Vec<Stability>,
}

/// The risk of a snapshot row under its strategy: level first, then the score reversed.
fn risk(level: u8, score: Option<f64>) -> f64 {
    level as f64 * 1e9 - score.filter(|s| s.is_finite()).unwrap_or(0.0)
}

/// Whether `label` is bad at `t` within `window`; `None` when already bad at `t`.
fn bad_at(label: Label, t: u64, window: Option<u64>) -> Option<bool> {
    match (label.bad, label.at) {
        (false, _) => Some(false),
        (true, None) => Some(true),
        (true, Some(at)) if at <= t => None,
        (true, Some(at)) => Some(window.is_none_or(|w| at <= t.saturating_add(w))),
    }
}

/// Reads the snapshot rows of `path` (a file, or a directory with snapshots.ndjson).
fn read_rows(path: &Path) -> anyhow::Result<Vec<Row>> {
    let file = if path.is_dir() {
        path.join(riskwatch_connectors::file::snapshots::SNAPSHOTS_NDJSON)
    } else {
        path.to_path_buf()
    };
    let f = std::fs::File::open(&file)
        .with_context(|| format!("opening the snapshots {}", file.display()))?;
    let mut rows = Vec::new();
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", file.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        rows.push(serde_json::from_str(&line).with_context(|| {
            format!("{} line {}: not a snapshot record", file.display(), i + 1)
        })?);
    }
    if rows.is_empty() {
        anyhow::bail!("{}: no snapshot records", file.display());
    }
    Ok(rows)
}

/// Runs the evaluation.
pub fn evaluate(args: &EvaluateArgs) -> anyhow::Result<Evaluation> {
    let rows = read_rows(&args.snapshots)?;
    let mut labels = read_labels(&args.labels)?;
    let known: BTreeSet<&str> = rows.iter().map(|r| r.customer_id.as_str()).collect();
    let unknown: Vec<String> = labels
        .by_customer
        .keys()
        .filter(|c| !known.contains(c.as_str()))
        .cloned()
        .collect();
    for c in &unknown {
        labels.by_customer.remove(c);
    }
    let mut rejected: BTreeMap<String, u64> = labels
        .rejected
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    if !unknown.is_empty() {
        rejected.insert("unknown_customer".into(), unknown.len() as u64);
    }
    let unlabelled = known
        .iter()
        .filter(|c| !labels.by_customer.contains_key(**c))
        .count() as u64;
    // (strategy, as_of) → rows.
    let mut groups: BTreeMap<(&str, u64), Vec<&Row>> = BTreeMap::new();
    for r in &rows {
        groups
            .entry((r.strategy.as_str(), r.as_of))
            .or_default()
            .push(r);
    }
    let mut judged = Vec::new();
    for ((strategy, as_of), rs) in &groups {
        let (mut scored, mut by_dpd, mut already) = (Vec::new(), Vec::new(), 0u64);
        let mut by_level: Vec<LevelRow> = (0..5)
            .map(|level| LevelRow {
                level,
                customers: 0,
                bads: 0,
                bad_rate: 0.0,
            })
            .collect();
        for r in rs {
            let Some(label) = labels.by_customer.get(&r.customer_id) else {
                continue;
            };
            let Some(bad) = bad_at(*label, *as_of, args.window) else {
                already += 1;
                continue;
            };
            scored.push((risk(r.level, r.score), bad));
            by_dpd.push((r.dpd as f64, bad));
            let row = &mut by_level[r.level.min(4) as usize];
            row.customers += 1;
            row.bads += bad as u64;
        }
        for row in &mut by_level {
            row.bad_rate = row.bads as f64 / row.customers.max(1) as f64;
        }
        let a = auc(&scored);
        judged.push(Judged {
            strategy: strategy.to_string(),
            as_of: *as_of,
            customers: scored.len() as u64,
            bads: scored.iter().filter(|x| x.1).count() as u64,
            already_bad: already,
            auc: a,
            ks: ks(&scored),
            gini: a.map(|a| 2.0 * a - 1.0),
            auc_dpd: auc(&by_dpd),
            deciles: deciles(&scored),
            by_level,
        });
    }
    let strategies: BTreeSet<&str> = rows.iter().map(|r| r.strategy.as_str()).collect();
    let mut lead_times = Vec::new();
    let mut stability = Vec::new();
    for s in strategies {
        let times: Vec<u64> = groups
            .keys()
            .filter(|(st, _)| *st == s)
            .map(|(_, t)| *t)
            .collect();
        lead_times.push(lead_time(
            s,
            &groups,
            &labels.by_customer,
            &times,
            args.flag_level,
        ));
        for pair in times.windows(2) {
            let values = |t: u64| -> (Vec<f64>, bool) {
                let rs = &groups[&(s, t)];
                let with_score = rs.iter().any(|r| r.score.is_some_and(f64::is_finite));
                let v = rs
                    .iter()
                    .map(|r| match with_score {
                        true => r.score.unwrap_or(f64::NAN),
                        false => r.level as f64,
                    })
                    .collect();
                (v, with_score)
            };
            let ((before, scored), (after, _)) = (values(pair[0]), values(pair[1]));
            let edges = if scored {
                decile_edges(&before)
            } else {
                vec![1.0, 2.0, 3.0, 4.0]
            };
            stability.push(Stability {
                strategy: s.to_string(),
                from: pair[0],
                to: pair[1],
                of: if scored { "score" } else { "level" },
                psi: psi(&shares(&before, &edges), &shares(&after, &edges)),
            });
        }
    }
    Ok(Evaluation {
        snapshot_records: rows.len() as u64,
        labels: labels.by_customer.len() as u64,
        labels_rejected: rejected,
        unlabelled_customers: unlabelled,
        judged,
        lead_times,
        stability,
    })
}

fn lead_time(
    strategy: &str,
    groups: &BTreeMap<(&str, u64), Vec<&Row>>,
    labels: &HashMap<String, Label>,
    times: &[u64],
    flag_level: u8,
) -> LeadTime {
    // The first observation at which each customer was flagged.
    let mut first_flag: HashMap<&str, u64> = HashMap::new();
    for t in times {
        for r in &groups[&(strategy, *t)] {
            if r.level >= flag_level {
                first_flag.entry(r.customer_id.as_str()).or_insert(*t);
            }
        }
    }
    let first_time = times.first().copied().unwrap_or(0);
    let mut bads = 0u64;
    let mut leads = Vec::new();
    for (customer, label) in labels {
        let Some(at) = label.at.filter(|at| label.bad && *at > first_time) else {
            continue;
        };
        bads += 1;
        if let Some(flagged) = first_flag.get(customer.as_str()).filter(|f| **f < at) {
            leads.push((at - flagged) as f64 / MS_PER_DAY as f64);
        }
    }
    leads.sort_by(f64::total_cmp);
    let mut weekly = vec![0u64; leads.last().map_or(0, |l| (*l / 7.0) as usize + 1)];
    for l in &leads {
        weekly[(*l / 7.0) as usize] += 1;
    }
    LeadTime {
        strategy: strategy.to_string(),
        flag_level,
        bads,
        flagged: leads.len() as u64,
        p25_days: quantile(&leads, 0.25),
        median_days: quantile(&leads, 0.5),
        p75_days: quantile(&leads, 0.75),
        weekly,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_is_bad_after_its_observation_and_within_the_window_only() {
        let l = |bad, at| Label { bad, at };
        assert_eq!(bad_at(l(false, None), 10, None), Some(false));
        assert_eq!(bad_at(l(true, None), 10, None), Some(true));
        assert_eq!(bad_at(l(true, Some(10)), 10, None), None, "already bad");
        assert_eq!(bad_at(l(true, Some(50)), 10, None), Some(true));
        assert_eq!(bad_at(l(true, Some(50)), 10, Some(30)), Some(false));
        assert_eq!(bad_at(l(true, Some(40)), 10, Some(30)), Some(true));
    }

    #[test]
    fn risk_orders_by_level_then_lower_score() {
        assert!(risk(3, Some(700.0)) > risk(2, Some(100.0)));
        assert!(risk(2, Some(400.0)) > risk(2, Some(600.0)));
        assert_eq!(risk(1, None), risk(1, None));
    }
}
