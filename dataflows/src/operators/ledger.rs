//! The `Ledger` operator: per-customer state in event-time order.
//!
//! ```text
//!   events (Event, time, +1) ──exchange(customer key)──▶ Ledger ──▶ (LedgerOut, time, diff)
//! ```
//!
//! Buffers events by time; once the input frontier has passed a time, processes that time's
//! events sorted by `(ts, seq)` — an order that does not depend on the number of workers —
//! dropping duplicates, applying them to each customer's [`Ledger`], and emitting window
//! contributions (now and their retractions later), account changes and DPD wake-ups.
//! Updates at future times travel under the capability of the time being processed, as
//! differential's collections allow; downstream operators buffer them by their own time.

use crate::layout::Layout;
use crate::ledger::{Account, Ledger, LedgerSink};
use crate::slots::Slots;
use crate::stats::Stats;
use riskwatch_model::event::{Event, Stream};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;

/// What the ledger emits, keyed by the customer key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LedgerOut {
    /// Summed window contributions (already signed: retractions are negated).
    Sum(u64, Slots),
    /// One occurrence of an identifier in a distinct-count slot.
    Distinct(u64, u8, u64),
    /// The account state (retract old, insert new).
    Account(u64, Account),
    /// A wake-up at a DPD boundary.
    Wake(u64),
}

impl LedgerOut {
    /// The customer key.
    pub fn key(&self) -> u64 {
        match self {
            LedgerOut::Sum(k, _)
            | LedgerOut::Distinct(k, _, _)
            | LedgerOut::Account(k, _)
            | LedgerOut::Wake(k) => *k,
        }
    }
}

/// Settings of the ledger operator.
#[derive(Clone, Debug)]
pub struct LedgerParams {
    /// The feature layout.
    pub layout: Rc<Layout>,
    /// Tick in ms.
    pub tick: u64,
    /// How long event ids are remembered for duplicate detection, in ms.
    pub dedupe_horizon: u64,
}

struct Emit<'a> {
    key: u64,
    out: &'a mut Vec<(LedgerOut, u64, isize)>,
    expired: u64,
}

impl LedgerSink for Emit<'_> {
    fn sum(&mut self, time: u64, slots: Slots) {
        self.out.push((LedgerOut::Sum(self.key, slots), time, 1));
    }
    fn distinct(&mut self, time: u64, slot: u8, value: u64, diff: isize) {
        self.out
            .push((LedgerOut::Distinct(self.key, slot, value), time, diff));
    }
    fn wake(&mut self, time: u64, diff: isize) {
        self.out.push((LedgerOut::Wake(self.key), time, diff));
    }
    fn expired_on_arrival(&mut self) {
        self.expired += 1;
    }
}

/// Builds the ledger operator over a stream of `(Event, time, diff)` updates.
pub fn ledger<'scope>(
    events: StreamVec<'scope, u64, (Event, u64, isize)>,
    params: LedgerParams,
    stats: Rc<RefCell<Stats>>,
) -> StreamVec<'scope, u64, (LedgerOut, u64, isize)> {
    let exchange = Exchange::new(|update: &(Event, u64, isize)| update.0.key);
    events.unary_frontier::<CapacityContainerBuilder<Vec<(LedgerOut, u64, isize)>>, _, _, _>(
        exchange,
        "Ledger",
        move |_cap, _info| {
            let mut pending: BTreeMap<u64, Vec<Event>> = BTreeMap::new();
            let mut held: Option<Capability<u64>> = None;
            let mut customers: HashMap<u64, (Ledger, Account)> = HashMap::new();
            let mut seen: HashMap<(Stream, u64), ()> = HashMap::new();
            let mut expiry: VecDeque<(u64, Stream, u64)> = VecDeque::new();
            let mut touched: Vec<u64> = Vec::new();
            let mut buffer: Vec<(LedgerOut, u64, isize)> = Vec::new();
            move |(input, frontier), output| {
                input.for_each_stamp(|cap, data| {
                    if let Some(t) = cap.least() {
                        if held.as_ref().is_none_or(|h| t < h.time()) {
                            held = cap.retain_least(output.output_index());
                        }
                    }
                    for container in data {
                        for (event, time, diff) in container.drain(..) {
                            debug_assert!(diff > 0, "input events are insertions");
                            pending.entry(time).or_default().push(event);
                        }
                    }
                });
                let mut local = Stats::default();
                while let Some((&time, _)) = pending.first_key_value() {
                    if frontier.less_equal(&time) {
                        break;
                    }
                    let mut batch = pending.pop_first().map(|(_, b)| b).unwrap_or_default();
                    batch.sort_unstable_by(|a, b| (a.ts, a.seq).cmp(&(b.ts, b.seq)));
                    // Forget event ids beyond the horizon.
                    while let Some(&(at, stream, id)) = expiry.front() {
                        if at > time {
                            break;
                        }
                        seen.remove(&(stream, id));
                        expiry.pop_front();
                    }
                    for event in batch.iter() {
                        let stream = event.stream();
                        if event.event_id != 0 {
                            if seen.insert((stream, event.event_id), ()).is_some() {
                                local.duplicates[stream as usize] += 1;
                                continue;
                            }
                            expiry.push_back((
                                time.saturating_add(params.dedupe_horizon),
                                stream,
                                event.event_id,
                            ));
                        }
                        local.events[stream as usize] += 1;
                        if time > riskwatch_model::time::ceil_to(event.ts, params.tick) {
                            local.late += 1;
                        }
                        let (ledger, _) = customers.entry(event.key).or_insert_with(|| {
                            (Ledger::new(event.customer_id.clone()), Account::default())
                        });
                        let mut emit = Emit {
                            key: event.key,
                            out: &mut buffer,
                            expired: 0,
                        };
                        ledger.apply(event, time, &params.layout, &mut emit);
                        local.expired_on_arrival += emit.expired;
                        touched.push(event.key);
                    }
                    touched.sort_unstable();
                    touched.dedup();
                    for key in touched.drain(..) {
                        let (ledger, last) =
                            customers.get_mut(&key).expect("touched customers exist");
                        let mut emit = Emit {
                            key,
                            out: &mut buffer,
                            expired: 0,
                        };
                        ledger.settle(time, params.tick, &mut emit);
                        if ledger.account() != last {
                            if !last.customer_id.is_empty() {
                                buffer.push((LedgerOut::Account(key, last.clone()), time, -1));
                            }
                            *last = ledger.account().clone();
                            buffer.push((LedgerOut::Account(key, last.clone()), time, 1));
                        }
                    }
                    if let Some(cap) = held.as_ref() {
                        let mut session = output.session(cap);
                        session.give_iterator(buffer.drain(..));
                    }
                }
                match (pending.first_key_value(), held.as_mut()) {
                    (Some((&t, _)), Some(cap)) => cap.downgrade(&t),
                    (None, _) => held = None,
                    _ => {}
                }
                let mut s = stats.borrow_mut();
                s.merge(&local);
            }
        },
    )
}
