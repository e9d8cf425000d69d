//! Counts of outputs by the labels the run summary and the metrics use: alerts by strategy,
//! rule and severity, decisions by strategy and kind, case events by strategy, event and
//! stage.
//!
//! Counting a record allocates only the first time its labels are seen (the label sets are
//! small and bounded), so the Kafka sink can count on the worker thread.

use riskwatch_model::output::{Alert, Case, Decision};
use std::collections::BTreeMap;

/// Output counts by label.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OutputCounts {
    /// Alerts by strategy, then rule, then severity.
    pub alerts: BTreeMap<String, BTreeMap<String, BTreeMap<&'static str, u64>>>,
    /// Decisions by strategy, then kind.
    pub decisions: BTreeMap<String, BTreeMap<&'static str, u64>>,
    /// Case events by strategy, then `(event, stage)`.
    pub cases: BTreeMap<String, BTreeMap<(&'static str, &'static str), u64>>,
    /// Records counted: alerts, decisions, cases.
    pub written: [u64; 3],
}

/// `map[key]`, inserted empty when absent, without allocating when present.
fn slot<'a, V: Default>(map: &'a mut BTreeMap<String, V>, key: &str) -> &'a mut V {
    if !map.contains_key(key) {
        map.insert(key.to_string(), V::default());
    }
    map.get_mut(key).expect("inserted above")
}

impl OutputCounts {
    /// Counts an alert.
    pub fn alert(&mut self, a: &Alert) {
        let rules = slot(&mut self.alerts, &a.strategy);
        *slot(rules, &a.rule_id)
            .entry(a.severity.name())
            .or_default() += 1;
        self.written[0] += 1;
    }

    /// Counts a decision.
    pub fn decision(&mut self, d: &Decision) {
        *slot(&mut self.decisions, &d.strategy)
            .entry(d.kind.name())
            .or_default() += 1;
        self.written[1] += 1;
    }

    /// Counts a case event.
    pub fn case(&mut self, c: &Case) {
        *slot(&mut self.cases, &c.strategy)
            .entry((c.event.name(), c.stage.name()))
            .or_default() += 1;
        self.written[2] += 1;
    }

    /// Every alert count as `(rule, severity, strategy, n)`.
    pub fn alerts(&self) -> impl Iterator<Item = (&str, &'static str, &str, u64)> {
        self.alerts.iter().flat_map(|(strategy, rules)| {
            rules.iter().flat_map(move |(rule, severities)| {
                severities
                    .iter()
                    .map(move |(sev, n)| (rule.as_str(), *sev, strategy.as_str(), *n))
            })
        })
    }

    /// Every decision count as `(kind, strategy, n)`.
    pub fn decisions(&self) -> impl Iterator<Item = (&'static str, &str, u64)> {
        self.decisions.iter().flat_map(|(strategy, kinds)| {
            kinds
                .iter()
                .map(move |(kind, n)| (*kind, strategy.as_str(), *n))
        })
    }

    /// Every case-event count as `(event, stage, strategy, n)`.
    pub fn cases(&self) -> impl Iterator<Item = (&'static str, &'static str, &str, u64)> {
        self.cases.iter().flat_map(|(strategy, events)| {
            events
                .iter()
                .map(move |((event, stage), n)| (*event, *stage, strategy.as_str(), *n))
        })
    }

    /// Adds the counts to a replay summary's tables.
    pub fn add_to(&self, summary: &mut crate::replay::Summary) {
        for (rule, severity, strategy, n) in self.alerts() {
            *summary
                .alerts_by_rule
                .entry(strategy.to_string())
                .or_default()
                .entry(rule.to_string())
                .or_default() += n;
            *summary
                .alerts_by_severity
                .entry(strategy.to_string())
                .or_default()
                .entry(severity.to_string())
                .or_default() += n;
        }
        for (kind, strategy, n) in self.decisions() {
            *summary
                .decisions_by_kind
                .entry(strategy.to_string())
                .or_default()
                .entry(kind.to_string())
                .or_default() += n;
        }
        for (event, stage, strategy, n) in self.cases() {
            *summary
                .cases_by_stage
                .entry(strategy.to_string())
                .or_default()
                .entry(format!("{stage} {event}"))
                .or_default() += n;
        }
    }
}

/// An output record that [`OutputCounts`] counts.
pub trait Counted {
    /// Counts `self` in `counts`.
    fn count_in(&self, counts: &mut OutputCounts);
}

impl Counted for Alert {
    fn count_in(&self, counts: &mut OutputCounts) {
        counts.alert(self)
    }
}

impl Counted for Decision {
    fn count_in(&self, counts: &mut OutputCounts) {
        counts.decision(self)
    }
}

impl Counted for Case {
    fn count_in(&self, counts: &mut OutputCounts) {
        counts.case(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use riskwatch_model::config::Severity;
    use riskwatch_model::output::{CaseEvent, CaseStage};

    /// The first record of a golden output file.
    fn first<T: serde::de::DeserializeOwned>(file: &str) -> T {
        let path = format!("{}/tests/golden/book-a/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("the golden outputs are in the repo");
        let mut v: serde_json::Value =
            serde_json::from_str(text.lines().next().expect("not empty")).expect("JSON");
        // The golden files leave out the wall-clock `emitted_at`.
        v["emitted_at"] = serde_json::json!(0);
        serde_json::from_value(v).expect("a record")
    }

    #[test]
    fn counts_by_label_and_iterates_them_back() {
        let mut c = OutputCounts::default();
        let mut a: Alert = first("alerts.ndjson");
        a.rule_id = "dpd".into();
        a.severity = Severity::High;
        a.strategy = "default".into();
        c.alert(&a);
        c.alert(&a);
        a.severity = Severity::Low;
        a.strategy = "challenger".into();
        c.alert(&a);
        let got: Vec<_> = c.alerts().collect();
        assert_eq!(
            got,
            vec![
                ("dpd", "low", "challenger", 1),
                ("dpd", "high", "default", 2)
            ]
        );
        assert_eq!(c.written, [3, 0, 0]);
        let mut case: Case = first("cases.ndjson");
        case.strategy = "default".into();
        case.event = CaseEvent::Opened;
        case.stage = CaseStage::M1;
        c.case(&case);
        case.event = CaseEvent::Escalated;
        case.stage = CaseStage::M2;
        c.case(&case);
        let got: Vec<_> = c.cases().collect();
        assert_eq!(
            got,
            vec![
                ("escalated", "M2", "default", 1),
                ("opened", "M1", "default", 1)
            ]
        );
        assert_eq!(c.written, [3, 0, 2]);
    }
}
