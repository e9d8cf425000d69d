//! The `Evaluate` operator: rules, score, level and alerts per changed customer per tick.
//!
//! ```text
//!   features ((key, Slots), time, ±1) ──exchange(key)──┐
//!                                                       ├─▶ Evaluate ──▶ (Alert, time, +1)
//!   ledger   (Account / Wake, time, ±1) ─exchange(key)──┘
//! ```
//!
//! Buffers both inputs by time; once both frontiers have passed a time, applies that
//! time's changes per customer (a `count_total` change retracts the old vector and inserts
//! the new one; an account change likewise) and evaluates each changed customer exactly
//! once, in key order.

use crate::evaluate::{evaluate, features as feature_values, CustomerState, Scratch, Strategies};
use crate::graph::FeatureSnapshot;
use crate::layout::Layout;
use crate::ledger::Account;
use crate::operators::ledger::LedgerOut;
use crate::slots::Slots;
use crate::stats::Stats;
use riskwatch_model::output::Alert;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;

/// Changes of one time, per input.
#[derive(Default)]
struct Pending {
    features: Vec<(u64, Slots, isize)>,
    ledger: Vec<(u64, Option<Account>, isize)>,
}

/// Milliseconds since the Unix epoch, by the wall clock.
pub fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Builds the evaluate operator.
pub fn evaluate_alerts<'scope>(
    features: StreamVec<'scope, u64, ((u64, Slots), u64, isize)>,
    ledger: StreamVec<'scope, u64, (LedgerOut, u64, isize)>,
    layout: Rc<Layout>,
    strategies: Rc<Strategies>,
    stats: Rc<RefCell<Stats>>,
    trace: Option<Rc<RefCell<Vec<FeatureSnapshot>>>>,
) -> StreamVec<'scope, u64, (Alert, u64, isize)> {
    let ex1 = Exchange::new(|u: &((u64, Slots), u64, isize)| (u.0).0);
    let ex2 = Exchange::new(|u: &(LedgerOut, u64, isize)| u.0.key());
    features.binary_frontier::<_, CapacityContainerBuilder<Vec<(Alert, u64, isize)>>, _, _, _, _>(
        ledger,
        ex1,
        ex2,
        "Evaluate",
        move |_cap, _info| {
            let mut pending: BTreeMap<u64, Pending> = BTreeMap::new();
            let mut held: Option<Capability<u64>> = None;
            let mut customers: HashMap<u64, CustomerState> = HashMap::new();
            let mut scratch = Scratch::default();
            let mut alerts: Vec<Alert> = Vec::new();
            let mut keys: Vec<u64> = Vec::new();
            move |(input1, frontier1), (input2, frontier2), output| {
                input1.for_each_stamp(|cap, data| {
                    if let Some(t) = cap.least() {
                        if held.as_ref().is_none_or(|h| t < h.time()) {
                            held = cap.retain_least(output.output_index());
                        }
                    }
                    for container in data {
                        for ((key, slots), time, diff) in container.drain(..) {
                            pending
                                .entry(time)
                                .or_default()
                                .features
                                .push((key, slots, diff));
                        }
                    }
                });
                input2.for_each_stamp(|cap, data| {
                    if let Some(t) = cap.least() {
                        if held.as_ref().is_none_or(|h| t < h.time()) {
                            held = cap.retain_least(output.output_index());
                        }
                    }
                    for container in data {
                        for (out, time, diff) in container.drain(..) {
                            let entry = pending.entry(time).or_default();
                            match out {
                                LedgerOut::Account(key, account) => {
                                    entry.ledger.push((key, Some(account), diff))
                                }
                                LedgerOut::Wake(key) => entry.ledger.push((key, None, diff)),
                                LedgerOut::Sum(..) | LedgerOut::Distinct(..) => {}
                            }
                        }
                    }
                });
                let mut local = Stats::default();
                let emitted_at = wall_clock_ms();
                while let Some((&time, _)) = pending.first_key_value() {
                    if frontier1.less_equal(&time) || frontier2.less_equal(&time) {
                        break;
                    }
                    let Pending {
                        mut features,
                        mut ledger,
                    } = pending.pop_first().map(|(_, p)| p).unwrap_or_default();
                    keys.clear();
                    // count_total emits at most one insertion per key and time: the new total.
                    features.sort_unstable_by_key(|(k, _, d)| (*k, *d));
                    for (key, slots, diff) in features.drain(..) {
                        keys.push(key);
                        let state = customers.entry(key).or_default();
                        if diff > 0 {
                            state.slots = slots;
                        } else if state.slots == slots {
                            state.slots = Slots::ZERO;
                        }
                    }
                    ledger.sort_unstable_by_key(|(k, _, d)| (*k, *d));
                    for (key, account, diff) in ledger.drain(..) {
                        keys.push(key);
                        if let (Some(account), true) = (account, diff > 0) {
                            customers.entry(key).or_default().account = account;
                        }
                    }
                    keys.sort_unstable();
                    keys.dedup();
                    for key in keys.iter() {
                        let state = customers.entry(*key).or_default();
                        if state.account.customer_id.is_empty() {
                            // Window changes of a customer whose ledger state has not
                            // arrived cannot happen: both come from the same ledger time.
                            continue;
                        }
                        let before: Vec<u8> = state.strategies.iter().map(|s| s.level).collect();
                        let new = state.strategies.is_empty();
                        evaluate(
                            &layout,
                            &strategies,
                            state,
                            time,
                            &mut scratch,
                            emitted_at,
                            &mut alerts,
                        );
                        local.evaluations += 1;
                        if let Some(trace) = trace.as_ref() {
                            let mut values = Vec::new();
                            feature_values(
                                &layout,
                                &state.slots,
                                &state.account,
                                time,
                                &mut values,
                            );
                            trace.borrow_mut().push(FeatureSnapshot {
                                customer_id: state.account.customer_id.to_string(),
                                time,
                                values,
                            });
                        }
                        for (i, s) in strategies.list.iter().enumerate() {
                            let mix = local.levels.entry(s.name.clone()).or_insert([0; 5]);
                            let now = state.strategies[i].level as usize;
                            let was = if new { None } else { Some(before[i] as usize) };
                            if was != Some(now) {
                                mix[now] += 1;
                                if let Some(w) = was {
                                    // Stored as wrapping counts; merged totals are exact.
                                    mix[w] = mix[w].wrapping_sub(1);
                                }
                            }
                        }
                    }
                    if let Some(cap) = held.as_ref() {
                        if !alerts.is_empty() {
                            let mut session = output.session(cap);
                            session.give_iterator(alerts.drain(..).map(|a| (a, time, 1)));
                        }
                    }
                }
                match (pending.first_key_value(), held.as_mut()) {
                    (Some((&t, _)), Some(cap)) => cap.downgrade(&t),
                    (None, _) => held = None,
                    _ => {}
                }
                let mut s = stats.borrow_mut();
                s.evaluations += local.evaluations;
                for (k, v) in local.levels {
                    let e = s.levels.entry(k).or_insert([0; 5]);
                    for i in 0..5 {
                        e[i] = e[i].wrapping_add(v[i]);
                    }
                }
            }
        },
    )
}
