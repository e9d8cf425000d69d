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
        skip_serializing_if = "Option::is_none",
        serialize_with = "number_opt",
        default
    )]
    pub value: Option<f64>,
    /// A threshold the value crossed, if known.
    #[serde(
        skip_serializing_if = "Option::is_none",
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
        skip_serializing_if = "Option::is_none",
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

/// Serializes a finite integral value as an integer, other finite values as floats, and
/// non-finite values as null (JSON has no NaN).
fn write_number<S: Serializer>(v: f64, s: S) -> Result<S::Ok, S::Error> {
    if !v.is_finite() {
        s.serialize_none()
    } else if v.fract() == 0.0 && v.abs() < 9.0e15 {
        s.serialize_i64(v as i64)
    } else {
        s.serialize_f64(v)
    }
}

fn number_opt<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => write_number(*v, s),
        None => s.serialize_none(),
    }
}

fn feature_map<S: Serializer>(m: &BTreeMap<String, Option<f64>>, s: S) -> Result<S::Ok, S::Error> {
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
