//! Output records: alerts, decisions and collection cases (alert.schema.json,
//! decision.schema.json, case.schema.json), and the summary of a run.
//!
//! Ids are deterministic (xxh3-128 of the fields the contracts name), so the same output
//! re-sent after a restart carries the same id.

use serde::{Deserialize, Serialize, Serializer};
use std::collections::BTreeMap;

/// A reason code with optional detail (common.schema.json `reason`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// Fixed code: a rule id, or `score:<feature>` for a scorecard component.
    pub code: String,
    /// The feature behind the reason, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
    /// The feature's value.
    #[serde(
        skip_serializing_if = "no_number",
        serialize_with = "number_opt",
        default
    )]
    pub value: Option<f64>,
    /// A threshold the value crossed, if known.
    #[serde(
        skip_serializing_if = "no_number",
        serialize_with = "number_opt",
        default
    )]
    pub threshold: Option<f64>,
    /// Human-readable explanation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl Reason {
    /// A reason with only a code.
    pub fn code(code: impl Into<String>) -> Reason {
        Reason {
            code: code.into(),
            feature: None,
            value: None,
            threshold: None,
            text: None,
        }
    }
}

/// An early-warning alert (alert.schema.json).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Deterministic from (strategy, customer, rule, episode start).
    pub alert_id: String,
    /// The customer.
    pub customer_id: String,
    /// Event time (tick) at which the condition became true.
    pub ts: u64,
    /// Wall-clock time of emission.
    pub emitted_at: u64,
    /// The rule that newly fired, or `level`.
    pub rule_id: String,
    /// The rule's version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_version: Option<u32>,
    /// Severity.
    pub severity: crate::config::Severity,
    /// Risk level 0–4 after this change.
    pub level: u8,
    /// Behaviour score.
    #[serde(
        serialize_with = "number_opt",
        skip_serializing_if = "no_number",
        default
    )]
    pub score: Option<f64>,
    /// Why: the rule, then the weakest score components.
    pub reasons: Vec<Reason>,
    /// Feature values at `ts`; null where undefined.
    #[serde(serialize_with = "feature_map")]
    pub features: BTreeMap<String, Option<f64>>,
    /// Strategy name.
    pub strategy: String,
    /// True for a shadow challenger.
    pub shadow: bool,
    /// Strategy version in force.
    pub strategy_version: String,
    /// The fraud ring, on ring alerts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ring_id: Option<String>,
}

/// The kind of a limit or pricing decision (decision.schema.json `kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// The credit limit is cut.
    LimitDecrease,
    /// The credit limit is raised beyond the customer record's.
    LimitIncrease,
    /// A limit riskwatch cut is set back to the customer record's.
    LimitRestore,
    /// New draws are blocked; repayments are still taken.
    Freeze,
    /// A freeze riskwatch set is lifted.
    Unfreeze,
    /// The APR is raised.
    PriceIncrease,
    /// An APR riskwatch raised is set back to the customer record's.
    PriceRestore,
}

impl DecisionKind {
    /// Every kind, in declaration order (`kind as usize` indexes this array).
    pub const ALL: [DecisionKind; 7] = [
        DecisionKind::LimitDecrease,
        DecisionKind::LimitIncrease,
        DecisionKind::LimitRestore,
        DecisionKind::Freeze,
        DecisionKind::Unfreeze,
        DecisionKind::PriceIncrease,
        DecisionKind::PriceRestore,
    ];

    /// The contract name, e.g. `limit_decrease`.
    pub fn name(self) -> &'static str {
        match self {
            DecisionKind::LimitDecrease => "limit_decrease",
            DecisionKind::LimitIncrease => "limit_increase",
            DecisionKind::LimitRestore => "limit_restore",
            DecisionKind::Freeze => "freeze",
            DecisionKind::Unfreeze => "unfreeze",
            DecisionKind::PriceIncrease => "price_increase",
            DecisionKind::PriceRestore => "price_restore",
        }
    }
}

/// A limit or pricing decision (decision.schema.json).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Deterministic from (strategy, customer, kind, ts): see [`Decision::id`].
    pub decision_id: String,
    /// The customer.
    pub customer_id: String,
    /// Event time (tick) at which the decision was taken.
    pub ts: u64,
    /// Wall-clock time of emission.
    pub emitted_at: u64,
    /// What is decided.
    pub kind: DecisionKind,
    /// Credit limit before (limit kinds).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub old_limit: Option<u64>,
    /// Credit limit after (limit kinds).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub new_limit: Option<u64>,
    /// APR before, in bps (price kinds).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub old_apr_bps: Option<u32>,
    /// APR after, in bps (price kinds); never above the policy's cap.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub new_apr_bps: Option<u32>,
    /// Risk level 0–4 when decided.
    pub level: u8,
    /// Behaviour score when decided.
    #[serde(
        serialize_with = "number_opt",
        skip_serializing_if = "no_number",
        default
    )]
    pub score: Option<f64>,
    /// Why: at least one reason.
    pub reasons: Vec<Reason>,
    /// Strategy name.
    pub strategy: String,
    /// True for a shadow challenger: recorded, never acted on.
    pub shadow: bool,
    /// Strategy version in force.
    pub strategy_version: String,
    /// When the change takes effect: the tick after `ts`.
    pub effective_at: u64,
}

impl Decision {
    /// The deterministic `decision_id` of (strategy, customer, kind, ts).
    pub fn id(strategy: &str, customer_id: &str, kind: DecisionKind, ts: u64) -> String {
        deterministic_id("d-", &[strategy, customer_id, kind.name(), &ts.to_string()])
    }
}

/// What happened to a collection case (case.schema.json `event`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseEvent {
    /// A new episode: `seq` 1.
    Opened,
    /// Same stage or better, with a new queue, priority or a lower overdue amount.
    Updated,
    /// The stage worsened.
    Escalated,
    /// Repaid, settled, or (pre-collection) paid on time: the episode's last event.
    Closed,
}

impl CaseEvent {
    /// The contract name, e.g. `opened`.
    pub fn name(self) -> &'static str {
        match self {
            CaseEvent::Opened => "opened",
            CaseEvent::Updated => "updated",
            CaseEvent::Escalated => "escalated",
            CaseEvent::Closed => "closed",
        }
    }
}

/// A collection case's stage (case.schema.json `stage`), ordered from mildest to worst:
/// a move to a later stage is an escalation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CaseStage {
    /// High risk before a due date, nothing past due yet.
    #[serde(rename = "pre_collection")]
    PreCollection,
    /// 1–30 days past due.
    M1,
    /// 31–60 days past due.
    M2,
    /// 61 or more days past due.
    #[serde(rename = "M3+")]
    M3Plus,
    /// A fraud-ring member: takes precedence over every other stage.
    #[serde(rename = "fraud")]
    Fraud,
}

impl CaseStage {
    /// Every stage, mildest first (`stage as usize` indexes this array).
    pub const ALL: [CaseStage; 5] = [
        CaseStage::PreCollection,
        CaseStage::M1,
        CaseStage::M2,
        CaseStage::M3Plus,
        CaseStage::Fraud,
    ];

    /// The contract name, e.g. `M3+`.
    pub fn name(self) -> &'static str {
        match self {
            CaseStage::PreCollection => "pre_collection",
            CaseStage::M1 => "M1",
            CaseStage::M2 => "M2",
            CaseStage::M3Plus => "M3+",
            CaseStage::Fraud => "fraud",
        }
    }
}

/// One loan's delinquency inside a case (case.schema.json `loans[]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseLoan {
    /// The loan.
    pub loan_id: String,
    /// Its unpaid installment amounts past due.
    pub overdue_amount: u64,
    /// Days past due of its oldest unpaid installment.
    pub dpd: u64,
    /// The loan is written off (its debt keeps ageing).
    pub written_off: bool,
}

/// A collection case event (case.schema.json).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// Deterministic from (strategy, customer, episode start): see [`Case::id`].
    pub case_id: String,
    /// 1 for `opened`, then +1 per event of the same case.
    pub seq: u32,
    /// The customer.
    pub customer_id: String,
    /// Event time (tick) of this event.
    pub ts: u64,
    /// Wall-clock time of emission.
    pub emitted_at: u64,
    /// What happened.
    pub event: CaseEvent,
    /// Stage after this event.
    pub stage: CaseStage,
    /// Assigned queue, e.g. `sms`, `robocall`, `agent`, `senior_agent`, `legal`.
    pub queue: String,
    /// Work priority: higher for a worse stage or a higher level.
    pub priority: i64,
    /// Sum of unpaid installment amounts past their due date.
    pub overdue_amount: u64,
    /// Days past due of the oldest unpaid installment.
    pub dpd: u64,
    /// Risk level 0–4.
    pub level: u8,
    /// Behaviour score.
    #[serde(
        serialize_with = "number_opt",
        skip_serializing_if = "no_number",
        default
    )]
    pub score: Option<f64>,
    /// Why the customer is at this level.
    #[serde(default)]
    pub reasons: Vec<Reason>,
    /// Per-loan detail: loans with an overdue amount or written off.
    #[serde(default)]
    pub loans: Vec<CaseLoan>,
    /// Strategy name.
    pub strategy: String,
    /// Strategy version in force.
    pub strategy_version: String,
    /// True for a shadow challenger: never sent to a collection system as a live case.
    pub shadow: bool,
    /// When the episode began (the `ts` of its `opened` event).
    pub opened_at: u64,
}

impl Case {
    /// The deterministic `case_id` of (strategy, customer, episode start).
    pub fn id(strategy: &str, customer_id: &str, episode_start: u64) -> String {
        deterministic_id("c-", &[strategy, customer_id, &episode_start.to_string()])
    }
}

/// `prefix` then the hex of xxh3-128 over the length-prefixed parts: deterministic ids
/// for outputs (no two different part lists hash the same input).
pub fn deterministic_id(prefix: &str, parts: &[&str]) -> String {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for p in parts {
        hasher.update(&(p.len() as u64).to_le_bytes());
        hasher.update(p.as_bytes());
    }
    format!("{prefix}{:032x}", hasher.digest128())
}

/// True when an optional number field is left out: absent, or not finite. The contracts'
/// `score`, `value` and `threshold` are numbers where present and never null, and JSON has
/// no NaN or infinity, so a value that is not finite is left out rather than written.
pub(crate) fn no_number(v: &Option<f64>) -> bool {
    !v.is_some_and(f64::is_finite)
}

/// Serializes a finite integral value as an integer, other finite values as floats, and
/// non-finite values as null (JSON has no NaN): only feature maps, where the contract
/// allows null, write null; other fields skip such values with `no_number`.
fn write_number<S: Serializer>(v: f64, s: S) -> Result<S::Ok, S::Error> {
    if !v.is_finite() {
        s.serialize_none()
    } else if v.fract() == 0.0 && v.abs() < 9.0e15 {
        s.serialize_i64(v as i64)
    } else {
        s.serialize_f64(v)
    }
}

pub(crate) fn number_opt<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => write_number(*v, s),
        None => s.serialize_none(),
    }
}

pub(crate) fn feature_map<S: Serializer>(
    m: &BTreeMap<String, Option<f64>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    struct Num(Option<f64>);
    impl Serialize for Num {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            number_opt(&self.0, s)
        }
    }
    let mut map = s.serialize_map(Some(m.len()))?;
    for (k, v) in m {
        map.serialize_entry(k, &Num(*v))?;
    }
    map.end()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_render_as_integers_when_integral() {
        let mut features = BTreeMap::new();
        features.insert("a".to_string(), Some(3.0));
        features.insert("b".to_string(), Some(0.25));
        features.insert("c".to_string(), None);
        features.insert("d".to_string(), Some(f64::NAN));
        let alert = Alert {
            alert_id: "x".into(),
            customer_id: "C1".into(),
            ts: 10,
            emitted_at: 11,
            rule_id: "r".into(),
            rule_version: Some(1),
            severity: crate::config::Severity::High,
            level: 2,
            score: Some(512.0),
            reasons: vec![Reason::code("r")],
            features,
            strategy: "s".into(),
            shadow: false,
            strategy_version: "v".into(),
            ring_id: None,
        };
        let text = serde_json::to_string(&alert).unwrap();
        assert!(
            text.contains(r#""features":{"a":3,"b":0.25,"c":null,"d":null}"#),
            "{text}"
        );
        assert!(text.contains(r#""score":512"#), "{text}");
        assert!(!text.contains("ring_id"));
    }

    /// Issue 8: `base = nan` in a scorecard gave alerts `"score": null`, which
    /// alert.schema.json (a number where present) refuses. A score, reason value or
    /// threshold that is not finite is left out; features write null, which it allows.
    #[test]
    fn numbers_that_are_not_finite_are_left_out_where_the_contract_forbids_null() {
        let mut features = BTreeMap::new();
        features.insert("a".to_string(), Some(f64::INFINITY));
        let reason = Reason {
            value: Some(f64::NAN),
            threshold: Some(f64::NEG_INFINITY),
            ..Reason::code("r")
        };
        let alert = Alert {
            alert_id: "x".into(),
            customer_id: "C1".into(),
            ts: 10,
            emitted_at: 11,
            rule_id: "r".into(),
            rule_version: None,
            severity: crate::config::Severity::High,
            level: 4,
            score: Some(f64::NAN),
            reasons: vec![reason],
            features,
            strategy: "s".into(),
            shadow: false,
            strategy_version: "v".into(),
            ring_id: None,
        };
        let text = serde_json::to_string(&alert).unwrap();
        assert_eq!(
            text,
            r#"{"alert_id":"x","customer_id":"C1","ts":10,"emitted_at":11,"rule_id":"r","severity":"high","level":4,"reasons":[{"code":"r"}],"features":{"a":null},"strategy":"s","shadow":false,"strategy_version":"v"}"#
        );
        let decision = Decision {
            decision_id: "d".into(),
            customer_id: "C1".into(),
            ts: 10,
            emitted_at: 11,
            kind: DecisionKind::Freeze,
            old_limit: None,
            new_limit: None,
            old_apr_bps: None,
            new_apr_bps: None,
            level: 4,
            score: Some(f64::INFINITY),
            reasons: vec![Reason::code("r")],
            strategy: "s".into(),
            shadow: false,
            strategy_version: "v".into(),
            effective_at: 20,
        };
        let text = serde_json::to_string(&decision).unwrap();
        assert!(!text.contains("score"), "{text}");
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = deterministic_id("a-", &["s", "C1", "r", "10"]);
        assert_eq!(a, deterministic_id("a-", &["s", "C1", "r", "10"]));
        assert_ne!(a, deterministic_id("a-", &["s", "C1", "r", "11"]));
        assert_ne!(
            deterministic_id("a-", &["s|C1", "r"]),
            deterministic_id("a-", &["s", "C1|r"])
        );
        assert_eq!(a.len(), 2 + 32);
    }
}
