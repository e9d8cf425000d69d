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

use crate::evaluate::{
    evaluate, features as feature_values, Breakers, CustomerState, Emitted, Output, Scratch,
    Strategies,
};
use crate::graph::FeatureSnapshot;
use crate::layout::Layout;
use crate::operators::ledger::{AccountUpdate, Change, KeyHasher};
use crate::slots::Slots;
use crate::stats::{Standing, Stats};
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;

/// Milliseconds since the Unix epoch, by the wall clock.
pub fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Everything the evaluate operator of one worker keeps, shared with the worker so that a
/// checkpoint can read it while the dataflow is quiescent (`crate::checkpoint`).
pub struct EvaluateState {
    /// Customers by key.
    pub customers: HashMap<u64, CustomerState, KeyHasher>,
    /// The decision circuit breakers, per strategy.
    pub breakers: Breakers,
    /// Self-scheduled wake-ups `(time, key)` (also kept per customer).
    pub wakes: BinaryHeap<Reverse<(u64, u64)>>,
    /// The strategies in force.
    pub strategies: Rc<Strategies>,
    /// The JSON of the last live strategy change applied, if any.
    pub config_json: Option<String>,
    /// Customers changed since the last checkpoint; kept only when `tracking`.
    pub dirty: HashSet<u64, KeyHasher>,
    /// Whether changes are tracked for checkpoints (a run with a state directory).
    pub tracking: bool,
    /// Updates at earlier times are dropped: after a restore, the restored state already
    /// holds them (the ledger's rebuild arrives at the restored frontier − 1).
    pub ignore_before: u64,
}

impl EvaluateState {
    /// The gauges (level mix, open cases, rings) of this state, each customer counted once:
    /// what a worker restored from a checkpoint starts its [`Stats`] with, since its
    /// operators only count changes.
    pub fn gauges(&self) -> Stats {
        let mut stats = Stats::default();
        for (key, c) in &self.customers {
            for (s, state) in self.strategies.list.iter().zip(&c.strategies) {
                stats.moved(&s.name, None, Standing::of(state));
            }
            stats.ring_moved(*key, None, c.ring.as_ref());
        }
        stats
    }

    /// An empty state under `strategies`.
    pub fn new(strategies: Rc<Strategies>) -> EvaluateState {
        EvaluateState {
            customers: HashMap::default(),
            breakers: Vec::new(),
            wakes: BinaryHeap::new(),
            strategies,
            config_json: None,
            dirty: HashSet::default(),
            tracking: false,
            ignore_before: 0,
        }
    }

    /// Applies a strategy change (the JSON of a validated config): every customer's state is
    /// carried over by strategy name and rule id. Returns the keys to re-evaluate.
    pub fn switch(&mut self, json: &str, layout: &Layout) -> Result<Vec<u64>, String> {
        let next = compile_change(json, layout)?;
        for state in self.customers.values_mut() {
            remap_states(&self.strategies, &next, state);
        }
        self.strategies = Rc::new(next);
        self.config_json = Some(json.to_string());
        if self.tracking {
            self.dirty.extend(self.customers.keys().copied());
        }
        Ok(self.customers.keys().copied().collect())
    }
}

/// Builds the evaluate operator.
pub fn evaluate_alerts<'scope>(
    features: StreamVec<'scope, u64, ((u64, Slots), u64, isize)>,
    ledger: StreamVec<'scope, u64, (AccountUpdate, u64, isize)>,
    layout: Rc<Layout>,
    state: Rc<RefCell<EvaluateState>>,
    stats: Rc<RefCell<Stats>>,
    trace: Option<Rc<RefCell<Vec<FeatureSnapshot>>>>,
) -> StreamVec<'scope, u64, (Output, u64, isize)> {
    let ex1 = Exchange::new(|u: &((u64, Slots), u64, isize)| (u.0).0);
    let ex2 = Exchange::new(|u: &(AccountUpdate, u64, isize)| (u.0).0);
    features.binary_frontier::<_, CapacityContainerBuilder<Vec<(Output, u64, isize)>>, _, _, _, _>(
        ledger,
        ex1,
        ex2,
        "Evaluate",
        move |_cap, _info| {
            // Updates not yet ready, as (time, key, change, diff).
            let mut features_in: Vec<(u64, u64, Slots, isize)> = Vec::new();
            let mut accounts_in: Vec<(u64, u64, Change, isize)> = Vec::new();
            let mut held: Option<Capability<u64>> = None;
            let mut scratch = Scratch::default();
            let mut alerts: Vec<(Output, u64, isize)> = Vec::new();
            let mut emitted = Emitted::default();
            let mut keys: Vec<u64> = Vec::new();
            let mut before: Vec<Standing> = Vec::new();
            let mut reconfigure: Option<String> = None;
            let mut wake_net: Vec<(u64, isize)> = Vec::new();
            let mut ring_net: Vec<(u64, crate::rings::RingInfo, isize)> = Vec::new();
            move |(input1, frontier1), (input2, frontier2), output| {
                let mut guard = state.borrow_mut();
                let st = &mut *guard;
                let ignore_before = st.ignore_before;
                input1.for_each_stamp(|cap, data| {
                    if let Some(t) = cap.least() {
                        if held.as_ref().is_none_or(|h| t < h.time()) {
                            held = cap.retain_least(output.output_index());
                        }
                    }
                    for container in data {
                        features_in.extend(
                            container
                                .drain(..)
                                .filter(|(_, time, _)| *time >= ignore_before)
                                .map(|((key, slots), time, diff)| (time, key, slots, diff)),
                        );
                    }
                });
                input2.for_each_stamp(|cap, data| {
                    if let Some(t) = cap.least() {
                        if held.as_ref().is_none_or(|h| t < h.time()) {
                            held = cap.retain_least(output.output_index());
                        }
                    }
                    for container in data {
                        accounts_in.extend(
                            container
                                .drain(..)
                                .filter(|(_, time, _)| *time >= ignore_before)
                                .map(|((key, account), time, diff)| (time, key, account, diff)),
                        );
                    }
                });
                let ready = |t: &u64| !frontier1.less_equal(t) && !frontier2.less_equal(t);
                features_in.sort_unstable_by_key(|(t, k, _, d)| (*t, *k, *d));
                accounts_in.sort_unstable_by_key(|(t, k, _, d)| (*t, *k, *d));
                let f_ready = features_in.partition_point(|(t, ..)| ready(t));
                let a_ready = accounts_in.partition_point(|(t, ..)| ready(t));
                let mut local = Stats::default();
                let emitted_at = wall_clock_ms();
                let (mut fi, mut ai) = (0, 0);
                loop {
                    let next_wake = st
                        .wakes
                        .peek()
                        .map(|Reverse((t, _))| *t)
                        .filter(|t| ready(t));
                    let time = [
                        features_in.get(fi).filter(|_| fi < f_ready).map(|f| f.0),
                        accounts_in.get(ai).filter(|_| ai < a_ready).map(|a| a.0),
                        next_wake,
                    ]
                    .into_iter()
                    .flatten()
                    .min();
                    let Some(time) = time else { break };
                    keys.clear();
                    while let Some(&Reverse((t, key))) = st.wakes.peek() {
                        if t != time {
                            break;
                        }
                        st.wakes.pop();
                        if let Some(c) = st.customers.get_mut(&key) {
                            c.wakes.retain(|w| *w > time);
                        }
                        keys.push(key);
                    }
                    // count_total emits at most one insertion per key and time: the new total.
                    while fi < f_ready && features_in[fi].0 == time {
                        let (_, key, slots, diff) = features_in[fi];
                        keys.push(key);
                        let state = st.customers.entry(key).or_default();
                        if diff > 0 {
                            state.slots = slots;
                        } else if state.slots == slots {
                            state.slots = Slots::ZERO;
                        }
                        fi += 1;
                    }
                    wake_net.clear();
                    while ai < a_ready && accounts_in[ai].0 == time {
                        let (_, key, account, diff) = &mut accounts_in[ai];
                        if let Change::Wake = account {
                            // A wake-up counts only if not cancelled at the same time.
                            match wake_net.last_mut() {
                                Some((k, n)) if k == key => *n += *diff,
                                _ => wake_net.push((*key, *diff)),
                            }
                            ai += 1;
                            continue;
                        }
                        keys.push(*key);
                        if let Change::Ring(info) = account {
                            // Ring updates are consolidated per customer before applying:
                            // their arrival order within a time is not deterministic.
                            ring_net.push((*key, info.clone(), *diff));
                            keys.push(*key);
                            ai += 1;
                            continue;
                        }
                        if *diff > 0 {
                            match std::mem::replace(account, Change::Wake) {
                                Change::Account(a) => {
                                    st.customers.entry(*key).or_default().account = a
                                }
                                Change::Schedule(s) => {
                                    st.customers.entry(*key).or_default().schedule = s
                                }
                                Change::Wake => {}
                                Change::Ring(_) => unreachable!("handled above"),
                                Change::Config(json) => {
                                    keys.pop();
                                    reconfigure = Some(json);
                                }
                            }
                        }
                        ai += 1;
                    }
                    keys.extend(wake_net.iter().filter(|(_, n)| *n > 0).map(|(k, _)| *k));
                    if !ring_net.is_empty() {
                        ring_net.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
                        let mut i = 0;
                        while i < ring_net.len() {
                            let key = ring_net[i].0;
                            let mut current: Option<crate::rings::RingInfo> = None;
                            let mut j = i;
                            while j < ring_net.len() && ring_net[j].0 == key {
                                let mut k = j;
                                let mut net = 0;
                                while k < ring_net.len()
                                    && ring_net[k].0 == key
                                    && ring_net[k].1 == ring_net[j].1
                                {
                                    net += ring_net[k].2;
                                    k += 1;
                                }
                                if net > 0 {
                                    current = Some(ring_net[j].1.clone());
                                }
                                j = k;
                            }
                            let state = st.customers.entry(key).or_default();
                            let was = state.ring.clone();
                            match current {
                                Some(info) => state.ring = Some(info),
                                // Only retractions: the customer left its ring, unless the
                                // retracted info is not the one held (then nothing changed).
                                None => {
                                    if ring_net[i..j].iter().any(|(_, info, d)| {
                                        *d < 0 && state.ring.as_ref() == Some(info)
                                    }) && ring_net[i..j]
                                        .iter()
                                        .map(|(_, _, d)| *d)
                                        .sum::<isize>()
                                        < 0
                                    {
                                        state.ring = None;
                                    }
                                }
                            }
                            local.ring_moved(key, was.as_ref(), state.ring.as_ref());
                            i = j;
                        }
                        ring_net.clear();
                    }
                    if let Some(json) = reconfigure.take() {
                        match st.switch(&json, &layout) {
                            Ok(all) => {
                                // Re-evaluate every customer under the new strategies now.
                                keys.clear();
                                keys.extend(all);
                            }
                            Err(reason) => local.config_rejected.push(reason),
                        }
                    }
                    keys.sort_unstable();
                    keys.dedup();
                    if st.tracking {
                        st.dirty.extend(keys.iter().copied());
                    }
                    let strategies = st.strategies.clone();
                    for key in keys.iter() {
                        let state = st.customers.entry(*key).or_default();
                        if state.account.customer_id.is_empty() {
                            // Window changes of a customer whose ledger state has not
                            // arrived cannot happen: both come from the same ledger time.
                            continue;
                        }
                        before.clear();
                        before.extend(state.strategies.iter().map(Standing::of));
                        let new = state.strategies.is_empty();
                        evaluate(
                            &layout,
                            &strategies,
                            state,
                            time,
                            &mut scratch,
                            emitted_at,
                            &mut emitted,
                            &mut st.breakers,
                        );
                        alerts.extend(
                            emitted
                                .alerts
                                .drain(..)
                                .map(|a| (Output::Alert(a), time, 1)),
                        );
                        alerts.extend(
                            emitted
                                .decisions
                                .drain(..)
                                .map(|d| (Output::Decision(d), time, 1)),
                        );
                        alerts.extend(emitted.cases.drain(..).map(|c| (Output::Case(c), time, 1)));
                        if let Some(w) = scratch.wake {
                            st.wakes.push(Reverse((w, *key)));
                            state.wakes.push(w);
                        }
                        local.evaluations += 1;
                        if let Some(trace) = trace.as_ref() {
                            let mut values = Vec::new();
                            feature_values(
                                &layout,
                                &state.slots,
                                &state.account,
                                state.ring.as_ref(),
                                time,
                                &mut values,
                            );
                            let verdicts = strategies
                                .list
                                .iter()
                                .zip(state.strategies.iter())
                                .map(|(s, st)| {
                                    let firing = s
                                        .rules
                                        .iter()
                                        .enumerate()
                                        .filter(|(i, _)| st.firing & (1 << i) != 0)
                                        .map(|(_, r)| r.id.clone())
                                        .collect();
                                    (s.name.clone(), firing, st.level)
                                })
                                .collect();
                            trace.borrow_mut().push(FeatureSnapshot {
                                customer_id: state.account.customer_id.to_string(),
                                time,
                                values,
                                verdicts,
                            });
                        }
                        for (i, s) in strategies.list.iter().enumerate() {
                            let was = if new { None } else { before.get(i).copied() };
                            local.moved(&s.name, was, Standing::of(&state.strategies[i]));
                        }
                    }
                }
                features_in.drain(..f_ready);
                accounts_in.drain(..a_ready);
                if let Some(cap) = held.as_ref() {
                    if !alerts.is_empty() {
                        output.session(cap).give_iterator(alerts.drain(..));
                    }
                }
                let least = st
                    .wakes
                    .peek()
                    .map(|Reverse((t, _))| *t)
                    .into_iter()
                    .chain(features_in.first().map(|x| x.0))
                    .chain(accounts_in.first().map(|x| x.0))
                    .min();
                match (least, held.as_mut()) {
                    (Some(t), Some(cap)) => cap.downgrade(&t),
                    (None, _) => held = None,
                    _ => {}
                }
                stats.borrow_mut().merge(&local);
            }
        },
    )
}

/// Compiles a strategy change carried through the dataflow. The windows (and so the feature
/// layout) cannot change while running: window state is in flight.
pub fn compile_change(json: &str, layout: &Layout) -> Result<Strategies, String> {
    let config: riskwatch_model::config::Config =
        serde_json::from_str(json).map_err(|e| format!("strategy change does not parse: {e}"))?;
    let compiled = crate::plan::compile(&config, |f| {
        Err(format!(
            "\"{f}\": imports must be resolved before a live change"
        ))
    })
    .map_err(|e| e.to_string())?;
    if !compiled.layout.same_shape(layout) {
        return Err("windows and features cannot change while running".to_string());
    }
    Ok(compiled.strategies)
}

/// Carries a customer's per-strategy state over to new strategies by strategy name, and
/// firing rules by rule id; new strategies and rules start clear.
fn remap_states(old: &Strategies, new: &Strategies, state: &mut CustomerState) {
    let mut next = Vec::with_capacity(new.list.len());
    for s in &new.list {
        let mut st = crate::evaluate::StrategyState {
            since: vec![0; s.rules.len()],
            ..Default::default()
        };
        if let Some(i) = old.list.iter().position(|o| o.name == s.name) {
            if let Some(prev) = state.strategies.get(i) {
                st.level = prev.level;
                st.score = prev.score;
                // Actions and cases continue from the state held at the change.
                st.actions = prev.actions.clone();
                st.cases = prev.cases.clone();
                for (k, rule) in s.rules.iter().enumerate() {
                    if let Some(j) = old.list[i].rules.iter().position(|r| r.id == rule.id) {
                        if prev.firing & (1 << j) != 0 {
                            st.firing |= 1 << k;
                            st.since[k] = prev.since.get(j).copied().unwrap_or(0);
                        }
                    }
                }
            }
        }
        next.push(st);
    }
    state.strategies = next;
}
