//! What the backtest report shows of one side of `riskwatch compare`: its acting strategy's
//! outputs reduced to counts per UTC day of event time, each customer's peak level and
//! lowest score, and its first alert.
//!
//! The level mix over time is the mix of **peak levels to date**: on each day, the share of
//! the strategy's customers whose highest level so far (the running maximum of their
//! alerts' `level`) is 0, 1, 2, 3 or 4. It is exact, because every rise of a level emits an
//! alert carrying the new level (a newly firing rule's alert, or a `level` alert), and it
//! is what the outputs can show: a fall emits no alert, so the current level of every
//! customer on every day is not in them. The current mix at the end of the replay, from the
//! dataflow's level gauges, is in the summary table.

use riskwatch_model::output::{Alert, Case, Decision};
use riskwatch_model::time::MS_PER_DAY;
use std::collections::{BTreeMap, HashMap};

/// The UTC day (days since 1970-01-01) of an event time in ms.
pub fn day(ts: u64) -> i64 {
    (ts / MS_PER_DAY) as i64
}

/// Counts per name, then per day.
pub type Daily = BTreeMap<String, BTreeMap<i64, u64>>;

/// One customer's standing under a strategy over the whole replay.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Peak {
    /// The highest level any of its outputs carried (0 without one).
    pub level: u8,
    /// The lowest score any of its outputs carried, if any carried one.
    pub score: Option<f64>,
    /// The event time of its first alert, if any.
    pub first_alert: Option<u64>,
}

/// One side's series and figures.
#[derive(Clone, Debug, Default)]
pub struct SideReport {
    /// The config file, as given.
    pub config: String,
    /// The strategy shown: the config's champion.
    pub strategy: String,
    /// Alerts per rule per day.
    pub alerts: Daily,
    /// Decisions per kind per day.
    pub decisions: Daily,
    /// Case events per event (opened, updated, escalated, closed) per day.
    pub case_events: Daily,
    /// Case events per stage, over the whole replay.
    pub cases_by_stage: BTreeMap<String, u64>,
    /// Level rises: `(day, customer index, new peak level)`, in time order.
    rises: Vec<(i64, usize, u8)>,
    /// Customers the strategy evaluated (the end-of-run level gauges' total).
    pub customers: u64,
    /// The current level mix at the end of the replay (the dataflow's gauges).
    pub end_levels: [u64; 5],
    /// Per customer with an output: its peak level, lowest score and first alert.
    pub peaks: HashMap<String, Peak>,
}

fn bump(map: &mut Daily, name: &str, ts: u64) {
    *map.entry(name.to_string())
        .or_default()
        .entry(day(ts))
        .or_default() += 1;
}

impl SideReport {
    /// Reduces `strategy`'s outputs (the others' are skipped). `end_levels` is the
    /// dataflow's level mix of `strategy` at the end of the run.
    pub fn new(
        config: &str,
        strategy: &str,
        alerts: &[Alert],
        decisions: &[Decision],
        cases: &[Case],
        end_levels: [u64; 5],
    ) -> SideReport {
        let mut r = SideReport {
            config: config.to_string(),
            strategy: strategy.to_string(),
            end_levels,
            ..SideReport::default()
        };
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut peak_level: Vec<u8> = Vec::new();
        let mut sorted: Vec<&Alert> = alerts.iter().filter(|a| a.strategy == strategy).collect();
        sorted.sort_by_key(|a| a.ts);
        for a in sorted {
            bump(&mut r.alerts, &a.rule_id, a.ts);
            let n = index.len();
            let i = *index.entry(a.customer_id.clone()).or_insert(n);
            if i == peak_level.len() {
                peak_level.push(0);
            }
            if a.level > peak_level[i] {
                peak_level[i] = a.level;
                r.rises.push((day(a.ts), i, a.level));
            }
            r.note(&a.customer_id, a.level, a.score, Some(a.ts));
        }
        for d in decisions.iter().filter(|d| d.strategy == strategy) {
            bump(&mut r.decisions, d.kind.name(), d.ts);
            r.note(&d.customer_id, d.level, d.score, None);
        }
        for c in cases.iter().filter(|c| c.strategy == strategy) {
            bump(&mut r.case_events, c.event.name(), c.ts);
            *r.cases_by_stage
                .entry(c.stage.name().to_string())
                .or_default() += 1;
            r.note(&c.customer_id, c.level, c.score, None);
        }
        r.customers = end_levels.iter().sum::<u64>().max(index.len() as u64);
        r
    }

    fn note(&mut self, customer: &str, level: u8, score: Option<f64>, alert: Option<u64>) {
        let p = self.peaks.entry(customer.to_string()).or_default();
        p.level = p.level.max(level);
        if let Some(s) = score.filter(|s| s.is_finite()) {
            p.score = Some(p.score.map_or(s, |m| m.min(s)));
        }
        if let Some(ts) = alert {
            p.first_alert = Some(p.first_alert.map_or(ts, |f| f.min(ts)));
        }
    }

    /// The first and last day with any output, if any.
    pub fn days(&self) -> Option<(i64, i64)> {
        let all = [&self.alerts, &self.decisions, &self.case_events];
        let days = all
            .iter()
            .flat_map(|m| m.values())
            .flat_map(|d| d.keys().copied());
        days.fold(None, |acc, d| match acc {
            None => Some((d, d)),
            Some((lo, hi)) => Some((lo.min(d), hi.max(d))),
        })
    }

    /// Alerts per rule over the whole replay.
    pub fn alert_totals(&self) -> BTreeMap<String, u64> {
        totals(&self.alerts)
    }

    /// Decisions per kind over the whole replay.
    pub fn decision_totals(&self) -> BTreeMap<String, u64> {
        totals(&self.decisions)
    }

    /// The mix of peak levels to date at the end of each day of `days` (inclusive): five
    /// shares per day, of [`SideReport::customers`], summing to 1.
    pub fn peak_mix(&self, days: (i64, i64)) -> Vec<(i64, [f64; 5])> {
        let n = self.customers.max(1) as f64;
        let mut counts = [self.customers, 0, 0, 0, 0];
        let mut level_of: HashMap<usize, u8> = HashMap::new();
        let mut rises = self.rises.iter().peekable();
        let mut out = Vec::new();
        for d in days.0..=days.1 {
            while let Some((_, i, l)) = rises.next_if(|r| r.0 <= d) {
                let was = level_of.insert(*i, *l).unwrap_or(0);
                counts[was as usize] = counts[was as usize].saturating_sub(1);
                counts[*l as usize] += 1;
            }
            out.push((d, counts.map(|c| c as f64 / n)));
        }
        out
    }
}

/// Sums of a [`Daily`] per name.
pub fn totals(daily: &Daily) -> BTreeMap<String, u64> {
    daily
        .iter()
        .map(|(k, v)| (k.clone(), v.values().sum()))
        .collect()
}

/// `daily` as one series of `(day, count)` per name over `days`, zeros filled in.
pub fn filled(daily: &Daily, days: (i64, i64)) -> Vec<crate::report::svg::Series> {
    daily
        .iter()
        .map(|(name, by_day)| crate::report::svg::Series {
            name: name.clone(),
            points: (days.0..=days.1)
                .map(|d| (d as f64, by_day.get(&d).copied().unwrap_or(0) as f64))
                .collect(),
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use riskwatch_model::config::Severity;

    pub(crate) fn alert(customer: &str, rule: &str, day: u64, level: u8, score: f64) -> Alert {
        Alert {
            alert_id: format!("a-{customer}-{rule}-{day}"),
            customer_id: customer.into(),
            ts: day * MS_PER_DAY + 1000,
            emitted_at: 0,
            rule_id: rule.into(),
            rule_version: None,
            severity: Severity::High,
            level,
            score: Some(score),
            reasons: vec![],
            features: BTreeMap::new(),
            strategy: "baseline".into(),
            shadow: false,
            strategy_version: "1".into(),
            ring_id: None,
        }
    }

    #[test]
    fn peak_levels_to_date_are_a_running_maximum_of_alert_levels() {
        let alerts = vec![
            alert("c1", "multi_lending", 10, 2, 580.0),
            alert("c2", "level", 10, 1, 640.0),
            alert("c1", "delinquent_m1", 12, 3, 540.0),
            // A later alert at a lower level does not lower the peak.
            alert("c2", "bust_out_spend", 13, 1, 600.0),
        ];
        let mut other = alert("c3", "x", 11, 4, 1.0);
        other.strategy = "tight".into();
        let all: Vec<Alert> = alerts.into_iter().chain([other]).collect();
        let r = SideReport::new("a.toml", "baseline", &all, &[], &[], [8, 1, 0, 1, 0]);
        assert_eq!(r.customers, 10);
        assert_eq!(
            r.alert_totals().values().sum::<u64>(),
            4,
            "only the strategy's alerts"
        );
        let mix = r.peak_mix((9, 13));
        assert_eq!(mix.len(), 5);
        assert_eq!(mix[0].1, [1.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(mix[1].1, [0.8, 0.1, 0.1, 0.0, 0.0]);
        assert_eq!(mix[3].1, [0.8, 0.1, 0.0, 0.1, 0.0]);
        assert_eq!(mix[4].1, mix[3].1);
        let c1 = r.peaks["c1"];
        assert_eq!((c1.level, c1.score), (3, Some(540.0)));
        assert_eq!(c1.first_alert, Some(10 * MS_PER_DAY + 1000));
        assert_eq!(r.days(), Some((10, 13)));
        let s = filled(&r.alerts, (9, 13));
        assert!(s.iter().all(|s| s.points.len() == 5));
    }
}
