//! The riskwatch dataflow graph.
//!
//! ```text
//!  events ─▶ Ledger ─┬─ Sum(key, Slots) ─────────────────────────────┐
//!                    ├─ Distinct(key, slot, id) ─▶ distinct_total ─▶ explode
//!                    │                                                 ▼
//!                    │                                    concat ─▶ count_total
//!                    │                                                 │ (key, Slots)
//!                    └─ Account / Wake ──────────────────▶ Evaluate ◀──┘
//!                                                              │
//!                                                              ▼
//!                                                     (Alert, time, +1)
//! ```
//!
//! Window sums are temporal filters: the ledger inserts an event's contributions at its
//! tick and retracts each window's share at `ceil_g(ts + W)`, so `count_total` yields the
//! current feature vector of every customer whose windows changed, once per tick.

use crate::checkpoint::WorkerState;
use crate::evaluate::Output;
use crate::evaluate::Strategies;
use crate::layout::Layout;
use crate::operators::dedupe::dedupe;
use crate::operators::evaluate::evaluate_alerts;
use crate::operators::ledger::{ledger, AccountUpdate, Change, Flag, LedgerParams};
use crate::rings::rings;
use crate::slots::Slots;
use crate::stats::Stats;
use differential_dataflow::collection::AsCollection;
use differential_dataflow::operators::count::CountTotal;
use differential_dataflow::operators::threshold::ThresholdTotal;
use differential_dataflow::VecCollection;
use riskwatch_model::event::Event;
use riskwatch_model::output::{Alert, Case, Decision};
use std::cell::RefCell;
use std::rc::Rc;
use timely::dataflow::operators::vec::Map as _;
use timely::dataflow::operators::Concat;
use timely::dataflow::StreamVec;

/// Everything the graph needs besides its input, built once from the config.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Feature layout.
    pub layout: Rc<Layout>,
    /// Compiled strategies.
    pub strategies: Rc<Strategies>,
    /// Tick in ms.
    pub tick: u64,
    /// Duplicate-detection horizon in ms.
    pub dedupe_horizon: u64,
    /// Extra DPD wake-ups (days past due).
    pub wake_at_dpd: Vec<u32>,
    /// Fraud-ring settings.
    pub rings: riskwatch_model::config::RingsConfig,
    /// When set, every evaluation records the customer's feature values here (tests and
    /// debugging; off in production).
    pub trace: Option<Rc<RefCell<Vec<FeatureSnapshot>>>>,
}

/// One customer's feature values at one evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureSnapshot {
    /// The customer.
    pub customer_id: String,
    /// The tick.
    pub time: u64,
    /// Values by feature id.
    pub values: Vec<Option<f64>>,
    /// Per evaluated strategy after this evaluation: (name, firing rule ids, level).
    pub verdicts: Vec<(String, Vec<String>, u8)>,
}

/// The output streams of the graph, as `(record, time, +1)` updates on the worker that owns
/// the customer.
pub struct Outputs<'scope> {
    /// Early-warning alerts.
    pub alerts: StreamVec<'scope, u64, (Alert, u64, isize)>,
    /// Limit and pricing decisions.
    pub decisions: StreamVec<'scope, u64, (Decision, u64, isize)>,
    /// Collection case events.
    pub cases: StreamVec<'scope, u64, (Case, u64, isize)>,
}

/// Builds the graph over `events` (each at time `ceil_tick(ts)`, or later if late) and
/// returns its outputs.
///
/// `control` carries live strategy changes ([`Change::Config`], one copy per worker keyed
/// by the worker index) into the evaluator; it may be empty.
pub fn build<'scope>(
    events: VecCollection<'scope, u64, Event, isize>,
    control: VecCollection<'scope, u64, AccountUpdate, isize>,
    plan: &Plan,
    stats: Rc<RefCell<Stats>>,
) -> Outputs<'scope> {
    let state = WorkerState::new(plan.strategies.clone());
    build_with_state(events, control, plan, stats, &state)
}

/// [`build`] over operator state the caller holds: restored before the call, or read for a
/// checkpoint while the dataflow is quiescent ([`crate::checkpoint`]).
pub fn build_with_state<'scope>(
    events: VecCollection<'scope, u64, Event, isize>,
    control: VecCollection<'scope, u64, AccountUpdate, isize>,
    plan: &Plan,
    stats: Rc<RefCell<Stats>>,
    state: &WorkerState,
) -> Outputs<'scope> {
    let params = LedgerParams {
        layout: plan.layout.clone(),
        tick: plan.tick,
        wake_at_dpd: plan.wake_at_dpd.clone(),
        link_window: plan.rings.link_window.ms(),
        link_granularity: plan.rings.link_granularity.ms(),
    };
    let events = dedupe(
        events.inner,
        plan.dedupe_horizon,
        stats.clone(),
        state.dedupe.clone(),
    );
    let ledger_out = ledger(events, params, stats.clone(), state.ledger.clone());
    let sums = ledger_out.sums.as_collection();
    let distinct = ledger_out
        .distinct
        .as_collection()
        .distinct_total()
        .explode(|(key, slot, _value)| Some((key, Slots::unit(slot as usize, 1))));
    let features = sums.concat(distinct).count_total();
    let delinquent = ledger_out
        .flags
        .clone()
        .flat_map(|((key, flag), time, diff)| {
            (flag == Flag::Delinquent).then_some((key, time, diff))
        })
        .as_collection();
    let new_customers = ledger_out
        .flags
        .flat_map(|((key, flag), time, diff)| (flag == Flag::New).then_some((key, time, diff)))
        .as_collection();
    let ring_changes = rings(
        ledger_out.links.as_collection(),
        delinquent,
        new_customers,
        &plan.rings,
    )
    .map(|(key, info)| (key, Change::Ring(info)));
    let records = evaluate_alerts(
        features.inner,
        ledger_out
            .accounts
            .concat(control.inner)
            .concat(ring_changes.inner),
        plan.layout.clone(),
        state.evaluate.clone(),
        stats,
        plan.trace.clone(),
    );
    let alerts = records.clone().flat_map(|(r, t, d)| match r {
        Output::Alert(a) => Some((a, t, d)),
        _ => None,
    });
    let decisions = records.clone().flat_map(|(r, t, d)| match r {
        Output::Decision(x) => Some((x, t, d)),
        _ => None,
    });
    let cases = records.flat_map(|(r, t, d)| match r {
        Output::Case(x) => Some((x, t, d)),
        _ => None,
    });
    Outputs {
        alerts,
        decisions,
        cases,
    }
}
