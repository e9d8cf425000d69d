//! The book snapshot record (snapshot.schema.json in `schemas/`): one customer under one
//! strategy at an observation time, as `riskwatch replay --snapshot-at` writes it and the
//! query API answers it. Defined once, here.
//!
//! A snapshot is the customer's current state as of the observation time `as_of`: every
//! event at or before it has been applied, and nothing after. It lists every customer the
//! strategy has evaluated, including those whose level fell without an alert, so a
//! strategist can join it to outcomes.

use crate::output::{feature_map, no_number, number_opt, CaseStage, Reason};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One customer under one strategy at an observation time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomerSnapshot {
    /// The observation time (epoch ms): the state includes every event at or before it.
    pub as_of: u64,
    /// The customer.
    pub customer_id: String,
    /// Strategy name.
    pub strategy: String,
    /// Strategy version.
    pub strategy_version: String,
    /// True when the strategy is a challenger in shadow for this customer.
    pub shadow: bool,
    /// Risk level 0–4, as the strategy last computed it.
    pub level: u8,
    /// Scorecard score; absent for a strategy without a scorecard.
    #[serde(
        skip_serializing_if = "no_number",
        serialize_with = "number_opt",
        default
    )]
    pub score: Option<f64>,
    /// The firing rules' ids, in the strategy's rule order.
    pub firing: Vec<String>,
    /// Reason codes: the firing rules, then the scorecard's largest point losses.
    pub reasons: Vec<Reason>,
    /// Every feature of the catalogue at `as_of` (null where undefined).
    #[serde(serialize_with = "feature_map")]
    pub features: BTreeMap<String, Option<f64>>,
    /// Days past due of the oldest unpaid installment at `as_of`.
    pub dpd: u64,
    /// Delinquency bucket 0–4 at `as_of`.
    pub bucket: u8,
    /// Current credit limit (minor units), after the acting strategy's decisions.
    pub credit_limit: u64,
    /// Current APR in basis points, after the acting strategy's decisions.
    pub apr_bps: u32,
    /// The open collection case of this strategy, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub case: Option<SnapshotCase>,
    /// The customer's ring, if in one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ring_id: Option<String>,
}

/// The open case in a snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotCase {
    /// Deterministic case id, as in the case records.
    pub case_id: String,
    /// Current stage.
    pub stage: CaseStage,
    /// Sequence number of the case's last event.
    pub seq: u32,
    /// Work queue.
    pub queue: String,
    /// Overdue amount (minor units) at the case's last event.
    pub overdue_amount: u64,
    /// When the episode started (epoch ms).
    pub opened_at: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_json_and_leaves_out_what_is_absent() {
        let mut features = BTreeMap::new();
        features.insert("dpd".to_string(), Some(12.0));
        features.insert("cash_ratio_30d".to_string(), None);
        let s = CustomerSnapshot {
            as_of: 1_767_225_600_000,
            customer_id: "C0000001".into(),
            strategy: "baseline".into(),
            strategy_version: "3".into(),
            shadow: false,
            level: 2,
            score: None,
            firing: vec!["dpd_1".into()],
            reasons: vec![Reason::code("dpd_1")],
            features,
            dpd: 12,
            bucket: 1,
            credit_limit: 500_000,
            apr_bps: 1800,
            case: Some(SnapshotCase {
                case_id: "c-1".into(),
                stage: CaseStage::M1,
                seq: 2,
                queue: "sms".into(),
                overdue_amount: 25_000,
                opened_at: 1_767_000_000_000,
            }),
            ring_id: None,
        };
        let json = serde_json::to_string(&s).expect("serializes");
        assert!(!json.contains("\"score\""), "{json}");
        assert!(!json.contains("ring_id"), "{json}");
        assert!(json.contains("\"cash_ratio_30d\":null"), "{json}");
        assert!(
            json.contains("\"dpd\":12"),
            "integral features are integers: {json}"
        );
        let back: CustomerSnapshot = serde_json::from_str(&json).expect("parses back");
        assert_eq!(back, s);
    }
}
