//! Detection quality of one side against outcome labels, for the report's ROC, KS, decile
//! and lead-time charts.
//!
//! The ranking: each labelled customer's peak level over the replay, then its lowest score
//! (a higher level is riskier; within a level a lower score is). A customer without any
//! output is at level 0 with no score, below every scored customer of level 0. AUC, KS and
//! the deciles are [`crate::evaluation::measures`]' functions; this module adds the curves.
//!
//! Lead time: for a bad customer with a default date, the days from its first alert (any
//! rule, any level) to that date, when the alert came strictly before it.

use crate::evaluation::labels::Label;
use crate::evaluation::measures::{auc, deciles, ks, Decile};
use crate::report::series::Peak;
use riskwatch_model::time::MS_PER_DAY;
use std::collections::HashMap;

/// The risk of a peak as one number (larger is riskier) that orders like (level, −score).
pub fn risk(p: &Peak) -> f64 {
    // Scores are far inside ±1e6; no score ranks as the least risky within the level.
    let score = p.score.map_or(1e6, |s| s.clamp(-1e6 + 1.0, 1e6 - 1.0));
    p.level as f64 * 1e7 + (1e6 - score)
}

/// One side's quality against the labels.
#[derive(Clone, Debug, Default)]
pub struct Detection {
    /// Labelled customers ranked.
    pub customers: u64,
    /// Bads among them.
    pub bads: u64,
    /// AUC of the ranking (`None` without both classes).
    pub auc: Option<f64>,
    /// KS of the ranking.
    pub ks: Option<f64>,
    /// ROC curve: (false positive rate, true positive rate), from (0,0) to (1,1).
    pub roc: Vec<(f64, f64)>,
    /// KS curves, riskiest first: (share of customers, cumulative share of bads, of goods).
    pub ks_curve: Vec<(f64, f64, f64)>,
    /// Bad rate and capture by decile, riskiest first.
    pub deciles: Vec<Decile>,
    /// Lead time in days of each bad alerted before its default date.
    pub leads: Vec<f64>,
    /// Bads with a default date whose first alert came at or after it.
    pub alerted_late: u64,
    /// Bads never alerted.
    pub never_alerted: u64,
}

/// Ranks `peaks` over `labels` and measures the ranking.
pub fn detection(peaks: &HashMap<String, Peak>, labels: &HashMap<String, Label>) -> Detection {
    let none = Peak::default();
    let mut ids: Vec<&String> = labels.keys().collect();
    // Sorted ids: the same input always gives the same deciles (ties keep input order).
    ids.sort();
    let scored: Vec<(f64, bool)> = ids
        .iter()
        .map(|id| (risk(peaks.get(*id).unwrap_or(&none)), labels[*id].bad))
        .collect();
    let mut d = Detection {
        customers: scored.len() as u64,
        bads: scored.iter().filter(|s| s.1).count() as u64,
        auc: auc(&scored),
        ks: ks(&scored),
        deciles: if scored.is_empty() {
            vec![]
        } else {
            deciles(&scored)
        },
        ..Detection::default()
    };
    (d.roc, d.ks_curve) = curves(&scored);
    for id in ids {
        let label = labels[id];
        if !label.bad {
            continue;
        }
        match (peaks.get(id).and_then(|p| p.first_alert), label.at) {
            (None, _) => d.never_alerted += 1,
            (Some(first), Some(at)) if first < at => {
                d.leads.push((at - first) as f64 / MS_PER_DAY as f64)
            }
            (Some(_), Some(_)) => d.alerted_late += 1,
            (Some(_), None) => {}
        }
    }
    d
}

/// A ROC curve and KS curves, as in [`Detection`].
pub type Curves = (Vec<(f64, f64)>, Vec<(f64, f64, f64)>);

/// The ROC and KS curves of `scored`, walking from the riskiest down with tied risks as
/// one step. Both are empty without both classes.
pub fn curves(scored: &[(f64, bool)]) -> Curves {
    let mut v = scored.to_vec();
    v.sort_by(|a, b| b.0.total_cmp(&a.0));
    let bads = v.iter().filter(|x| x.1).count() as f64;
    let goods = v.len() as f64 - bads;
    if bads == 0.0 || goods == 0.0 {
        return (vec![], vec![]);
    }
    let (mut roc, mut ks) = (vec![(0.0, 0.0)], vec![(0.0, 0.0, 0.0)]);
    let (mut b, mut g, mut i) = (0.0, 0.0, 0);
    while i < v.len() {
        let mut j = i;
        while j < v.len() && v[j].0 == v[i].0 {
            if v[j].1 {
                b += 1.0;
            } else {
                g += 1.0;
            }
            j += 1;
        }
        roc.push((g / goods, b / bads));
        ks.push((j as f64 / v.len() as f64, b / bads, g / goods));
        i = j;
    }
    (roc, ks)
}

/// A histogram of `values` in bins of `width` from 0: `(bin start, count)` up to the last
/// non-empty bin.
pub fn histogram(values: &[f64], width: f64) -> Vec<(f64, u64)> {
    let bins = values
        .iter()
        .map(|v| (v / width).floor().max(0.0) as usize)
        .max()
        .map_or(0, |m| m + 1);
    let mut counts = vec![0u64; bins];
    for v in values {
        counts[(v / width).floor().max(0.0) as usize] += 1;
    }
    counts
        .into_iter()
        .enumerate()
        .map(|(i, c)| (i as f64 * width, c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peak(level: u8, score: Option<f64>, first_day: Option<u64>) -> Peak {
        Peak {
            level,
            score,
            first_alert: first_day.map(|d| d * MS_PER_DAY),
        }
    }

    #[test]
    fn the_ranking_is_level_then_lowest_score() {
        assert!(risk(&peak(2, Some(700.0), None)) > risk(&peak(1, Some(100.0), None)));
        assert!(risk(&peak(1, Some(500.0), None)) > risk(&peak(1, Some(600.0), None)));
        assert!(risk(&peak(0, Some(900.0), None)) > risk(&peak(0, None, None)));
    }

    #[test]
    fn a_perfect_ranking_has_auc_and_ks_one_and_leads_in_days() {
        let bad = |at: u64| Label {
            bad: true,
            at: Some(at * MS_PER_DAY),
        };
        let good = Label {
            bad: false,
            at: None,
        };
        let labels: HashMap<String, Label> = [
            ("b1".to_string(), bad(20)),
            ("b2".to_string(), bad(15)),
            ("b3".to_string(), bad(30)),
            ("g1".to_string(), good),
            ("g2".to_string(), good),
        ]
        .into();
        let peaks: HashMap<String, Peak> = [
            ("b1".to_string(), peak(3, Some(500.0), Some(10))),
            ("b2".to_string(), peak(3, Some(510.0), Some(16))),
            ("b3".to_string(), peak(2, Some(530.0), None)),
            ("g1".to_string(), peak(1, Some(600.0), Some(5))),
        ]
        .into();
        let d = detection(&peaks, &labels);
        assert_eq!((d.customers, d.bads), (5, 3));
        assert_eq!((d.auc, d.ks), (Some(1.0), Some(1.0)));
        assert_eq!(d.leads, vec![10.0], "b2 was alerted after its default");
        assert_eq!((d.alerted_late, d.never_alerted), (1, 1));
        assert_eq!(d.roc.first(), Some(&(0.0, 0.0)));
        assert_eq!(d.roc.last(), Some(&(1.0, 1.0)));
        // 5 distinct risks: 5 steps after the origin.
        assert_eq!(d.roc.len(), 6);
        let (x, b, g) = d.ks_curve[3];
        assert_eq!((x, b, g), (0.6, 1.0, 0.0));
        assert_eq!(d.deciles.len(), 5, "5 customers fill 5 of the 10 deciles");
    }

    #[test]
    fn a_histogram_covers_every_value() {
        let h = histogram(&[0.5, 6.0, 7.5, 20.0], 7.0);
        assert_eq!(h, vec![(0.0, 2), (7.0, 1), (14.0, 1)]);
        assert!(histogram(&[], 7.0).is_empty());
    }
}
