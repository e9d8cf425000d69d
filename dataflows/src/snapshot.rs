//! Book snapshots: every customer's state under every strategy that evaluates it, read from
//! a worker's evaluator while the dataflow is quiescent at an observation time.
//!
//! The level, score and firing rules are the ones the strategy last computed (at the
//! customer's last change at or before the observation time); the features, DPD and bucket
//! are evaluated at the observation time itself, with the limit and APR the acting
//! strategy's decisions left in force. Closed accounts and customers never evaluated are
//! left out.

use crate::evaluate::{acting_account, decision_reasons, feature_map, features};
use crate::layout::Layout;
use crate::operators::evaluate::EvaluateState;
use riskwatch_model::event::CustomerStatus;
use riskwatch_model::output::Case;
use riskwatch_model::snapshot::{CustomerSnapshot, SnapshotCase};

/// Appends to `out` the snapshot at `at` (epoch ms) of every customer of `state`, one record
/// per customer and strategy, in no particular order.
pub fn snapshot_customers(
    state: &EvaluateState,
    layout: &Layout,
    at: u64,
    out: &mut Vec<CustomerSnapshot>,
) {
    let strategies = &*state.strategies;
    let mut assigned = Vec::new();
    let mut values = Vec::new();
    for c in state.customers.values() {
        let id = c.account.customer_id.as_str();
        if id.is_empty()
            || c.strategies.len() != strategies.list.len()
            || c.account.status == CustomerStatus::Closed
        {
            continue;
        }
        strategies.assigned(id, &mut assigned);
        let account = acting_account(strategies, c, &assigned);
        features(layout, &c.slots, &account, c.ring.as_ref(), at, &mut values);
        let feature_values = feature_map(layout, &values);
        for &(si, shadow) in &assigned {
            let strategy = &strategies.list[si];
            let st = &c.strategies[si];
            out.push(CustomerSnapshot {
                as_of: at,
                customer_id: id.to_string(),
                strategy: strategy.name.clone(),
                strategy_version: strategy.version.clone(),
                shadow,
                level: st.level,
                score: st.score.filter(|s| s.is_finite()),
                firing: strategy
                    .rules
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| st.firing & (1 << i) != 0)
                    .map(|(_, r)| r.id.clone())
                    .collect(),
                reasons: decision_reasons(strategy, st.firing, &values),
                features: feature_values.clone(),
                dpd: account.dpd_at(at),
                bucket: account.bucket_at(at),
                credit_limit: account.limit,
                apr_bps: account.apr_bps,
                case: st.cases.open().map(|o| SnapshotCase {
                    case_id: Case::id(&strategy.name, id, o.episode_start),
                    stage: o.stage,
                    seq: o.seq,
                    queue: o.queue.to_string(),
                    overdue_amount: o.overdue_amount,
                    opened_at: o.episode_start,
                }),
                ring_id: c.ring.as_ref().map(|r| crate::rings::ring_id(r.ring)),
            });
        }
    }
}
