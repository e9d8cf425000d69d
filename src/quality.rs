//! Detection quality of a run against a generated book's `truth.ndjson`.
//!
//! Definitions (issue "riskwatch core", Done means): a defaulter is flagged when the first
//! alert at level ≥ 2 has `ts` strictly before `defaults_at` (for the acting strategy:
//! non-shadow alerts); lead = `defaults_at` − that `ts`; a healthy customer is flagged by
//! any level ≥ 2 alert; a ring member is flagged by any level ≥ 2 alert.

use riskwatch_model::output::Alert;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// One line of truth.ndjson.
#[derive(Clone, Debug, Deserialize)]
pub struct Truth {
    /// The customer.
    pub customer_id: String,
    /// Archetype name.
    pub archetype: String,
    /// `due_ts` of the first never-paid installment.
    pub defaults_at: Option<u64>,
    /// Fraud ring id.
    pub ring_id: Option<String>,
}

/// Reads truth.ndjson.
pub fn read_truth(path: &Path) -> std::io::Result<Vec<Truth>> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(std::io::Error::other))
        .collect()
}

/// Quality of one strategy.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Quality {
    /// Strategy name.
    pub strategy: String,
    /// True when its outputs are shadow.
    pub shadow: bool,
    /// Customers that default.
    pub defaulters: u64,
    /// Defaulters flagged at level ≥ 2 before `defaults_at`.
    pub flagged_before_default: u64,
    /// `flagged_before_default / defaulters`.
    pub detection_rate: f64,
    /// Median lead time in days over flagged defaulters.
    pub median_lead_days: f64,
    /// Healthy customers.
    pub healthy: u64,
    /// Healthy customers with any level ≥ 2 alert.
    pub healthy_flagged: u64,
    /// `healthy_flagged / healthy`.
    pub false_positive_rate: f64,
    /// Ring members.
    pub ring_members: u64,
    /// Ring members with any level ≥ 2 alert.
    pub ring_flagged: u64,
    /// `ring_flagged / ring_members`.
    pub ring_rate: f64,
    /// Alerts of this strategy.
    pub alerts: u64,
}

/// Computes quality per strategy (in order of first appearance in `strategies`).
pub fn quality(truth: &[Truth], alerts: &[Alert], strategies: &[(String, bool)]) -> Vec<Quality> {
    strategies
        .iter()
        .map(|(name, shadow)| {
            let mut first_l2: HashMap<&str, u64> = HashMap::new();
            let mut n_alerts = 0;
            for a in alerts.iter().filter(|a| &a.strategy == name) {
                n_alerts += 1;
                if a.level >= 2 {
                    let e = first_l2.entry(a.customer_id.as_str()).or_insert(a.ts);
                    *e = (*e).min(a.ts);
                }
            }
            let mut q = Quality {
                strategy: name.clone(),
                shadow: *shadow,
                alerts: n_alerts,
                ..Quality::default()
            };
            let mut leads = Vec::new();
            for t in truth {
                let flagged = first_l2.get(t.customer_id.as_str()).copied();
                if let Some(d) = t.defaults_at {
                    q.defaulters += 1;
                    if let Some(ts) = flagged.filter(|ts| *ts < d) {
                        q.flagged_before_default += 1;
                        leads.push((d - ts) as f64 / 86_400_000.0);
                    }
                }
                if t.archetype == "healthy" {
                    q.healthy += 1;
                    q.healthy_flagged += flagged.is_some() as u64;
                }
                if t.ring_id.is_some() {
                    q.ring_members += 1;
                    q.ring_flagged += flagged.is_some() as u64;
                }
            }
            let rate = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
            q.detection_rate = rate(q.flagged_before_default, q.defaulters);
            q.false_positive_rate = rate(q.healthy_flagged, q.healthy);
            q.ring_rate = rate(q.ring_flagged, q.ring_members);
            leads.sort_by(f64::total_cmp);
            q.median_lead_days = median(&leads);
            q
        })
        .collect()
}

/// Detection of one archetype by one strategy.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ArchetypeQuality {
    /// Archetype name, as in truth.ndjson.
    pub archetype: String,
    /// Customers of the archetype.
    pub customers: u64,
    /// Those who default.
    pub defaulters: u64,
    /// Defaulters flagged at level ≥ 2 before `defaults_at`.
    pub flagged_before_default: u64,
    /// Median lead time in days over those flagged before their default (0 when none).
    pub median_lead_days: f64,
    /// Customers who never default but have a level ≥ 2 alert (false positives).
    pub flagged_non_defaulters: u64,
    /// `flagged_before_default / defaulters` for an archetype that defaults, else
    /// `flagged_non_defaulters / customers`.
    pub flagged_share: f64,
}

/// Detection per archetype of strategy `strategy` (archetypes sorted by name), with the same
/// definitions as [`quality`]: a defaulter counts when flagged before `defaults_at`, a
/// customer who never defaults when flagged at all. Adds what [`quality`]'s healthy-only
/// false-positive rate leaves out: cured and stretched customers flagged.
pub fn quality_by_archetype(
    truth: &[Truth],
    alerts: &[Alert],
    strategy: &str,
) -> Vec<ArchetypeQuality> {
    let mut first_l2: HashMap<&str, u64> = HashMap::new();
    for a in alerts
        .iter()
        .filter(|a| a.strategy == strategy && a.level >= 2)
    {
        let e = first_l2.entry(a.customer_id.as_str()).or_insert(a.ts);
        *e = (*e).min(a.ts);
    }
    let mut rows: BTreeMap<&str, (ArchetypeQuality, Vec<f64>)> = BTreeMap::new();
    for t in truth {
        let (q, leads) = rows.entry(t.archetype.as_str()).or_insert_with(|| {
            let q = ArchetypeQuality {
                archetype: t.archetype.clone(),
                ..ArchetypeQuality::default()
            };
            (q, Vec::new())
        });
        q.customers += 1;
        let flagged = first_l2.get(t.customer_id.as_str()).copied();
        match t.defaults_at {
            Some(d) => {
                q.defaulters += 1;
                if let Some(ts) = flagged.filter(|ts| *ts < d) {
                    q.flagged_before_default += 1;
                    leads.push((d - ts) as f64 / 86_400_000.0);
                }
            }
            None => q.flagged_non_defaulters += flagged.is_some() as u64,
        }
    }
    rows.into_values()
        .map(|(mut q, mut leads)| {
            leads.sort_by(f64::total_cmp);
            q.median_lead_days = median(&leads);
            let (a, b) = if q.defaulters > 0 {
                (q.flagged_before_default, q.defaulters)
            } else {
                (q.flagged_non_defaulters, q.customers)
            };
            q.flagged_share = if b == 0 { 0.0 } else { a as f64 / b as f64 };
            q
        })
        .collect()
}

/// Median of sorted values (mean of the middle two for an even count; 0 when empty).
pub fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Level mix as shares per strategy, for printing.
pub fn level_shares(levels: &BTreeMap<String, [u64; 5]>) -> BTreeMap<String, [f64; 5]> {
    levels
        .iter()
        .map(|(k, v)| {
            let total: u64 = v.iter().sum();
            let mut out = [0.0; 5];
            for i in 0..5 {
                out[i] = if total == 0 {
                    0.0
                } else {
                    v[i] as f64 / total as f64
                };
            }
            (k.clone(), out)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(customer: &str, ts: u64, level: u8) -> Alert {
        serde_json::from_value(serde_json::json!({
            "alert_id": "a-1", "customer_id": customer, "ts": ts, "emitted_at": 0,
            "rule_id": "r", "rule_version": 1, "severity": "high", "level": level,
            "score": 500, "reasons": [{"code": "x", "text": "x"}], "features": {}, "strategy": "s",
            "strategy_version": "1", "shadow": false
        }))
        .expect("an alert")
    }

    #[test]
    fn by_archetype_counts_defaulters_before_default_and_others_at_all() {
        let t = |c: &str, a: &str, d: Option<u64>| Truth {
            customer_id: c.into(),
            archetype: a.into(),
            defaults_at: d,
            ring_id: None,
        };
        let truth = [
            t("C1", "silent_defaulter", Some(10 * 86_400_000)),
            t("C2", "silent_defaulter", Some(10 * 86_400_000)),
            t("C3", "stretched", None),
            t("C4", "stretched", None),
        ];
        let alerts = [
            alert("C1", 8 * 86_400_000, 2),
            alert("C2", 11 * 86_400_000, 3),
            alert("C3", 5, 2),
            alert("C4", 5, 1),
        ];
        let rows = quality_by_archetype(&truth, &alerts, "s");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].archetype, "silent_defaulter");
        assert_eq!((rows[0].defaulters, rows[0].flagged_before_default), (2, 1));
        assert_eq!(
            (rows[0].flagged_share, rows[0].median_lead_days),
            (0.5, 2.0)
        );
        assert_eq!(rows[1].archetype, "stretched");
        assert_eq!(
            (rows[1].flagged_non_defaulters, rows[1].flagged_share),
            (1, 0.5)
        );
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[1.0, 3.0, 10.0]), 3.0);
        assert_eq!(median(&[1.0, 3.0]), 2.0);
    }
}
