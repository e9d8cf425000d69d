//! The `Ledger` operator: per-customer state in event-time order.
//!
//! ```text
//!                                                   ┌─▶ sums     (key, time, Slots)
//!   events (Event, time, +1) ──exchange(key)──▶ Ledger ─▶ distinct ((key, slot, id), time, ±1)
//!                                                   └─▶ accounts ((key, Account|wake), time, ±1)
//! ```
//!
//! Buffers events by time; once the input frontier has passed a time, processes that time's
//! events sorted by `(ts, seq)` — an order that does not depend on the number of workers —
//! dropping duplicates, applying them to each customer's [`Ledger`], and emitting window
//! contributions (now and their retractions later), account changes and DPD wake-ups.
//! Updates at future times travel under the capability of the time being processed, as
//! differential's collections allow; downstream operators buffer them by their own time.

use crate::layout::Layout;
use crate::ledger::{Account, Ledger, LedgerSink, Schedule};
use crate::operators::deferred::Deferred;
use crate::operators::ready::Ready;
use crate::slots::Slots;
use crate::stats::Stats;
use riskwatch_model::event::Event;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;

/// What changed of a customer besides its windows.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Change {
    /// The account state (balance, limit, APR, status, oldest unpaid due date).
    Account(Account),
    /// The unpaid installments per loan.
    Schedule(Schedule),
    /// A wake-up at a DPD boundary: re-evaluate at this time.
    Wake,
    /// The customer's fraud ring (retract old, insert new).
    Ring(crate::rings::RingInfo),
    /// A new strategy configuration (the JSON of a validated `Config` with imports
    /// resolved), taking effect at this time on every worker. Sent once per worker, keyed
    /// by the worker index, so the exchange delivers one copy to each.
    Config(String),
}

/// A change for a customer key.
pub type AccountUpdate = (u64, Change);

/// An identifier occurrence in a distinct-count slot: `(customer key, slot, id hash)`.
pub type DistinctItem = (u64, u8, u64);

/// The ledger's output streams, as differential updates.
pub struct LedgerStreams<'scope> {
    /// Summed window contributions per customer key, the difference being the slots.
    pub sums: StreamVec<'scope, u64, (u64, u64, Slots)>,
    /// Occurrences of identifiers in distinct-count slots: `(key, slot, id)`.
    pub distinct: StreamVec<'scope, u64, (DistinctItem, u64, isize)>,
    /// Account changes (retract old, insert new) and wake-ups.
    pub accounts: StreamVec<'scope, u64, (AccountUpdate, u64, isize)>,
    /// Links of a customer to a shared identifier (device, IP, phone; kind-tagged hash),
    /// present while seen within the link window.
    pub links: StreamVec<'scope, u64, ((u64, u64), u64, isize)>,
    /// Customer flags for ring features: delinquent (DPD ≥ 1) and new (first seen within
    /// the link window).
    pub flags: StreamVec<'scope, u64, ((u64, Flag), u64, isize)>,
}

/// A customer flag the fraud-ring features count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Flag {
    /// DPD ≥ 1.
    Delinquent,
    /// First seen within the link window.
    New,
}

/// Updates produced by one activation, sent at its end.
#[derive(Default)]
pub(super) struct Buffers {
    pub(super) sums: Vec<(u64, u64, Slots)>,
    pub(super) distinct: Vec<((u64, u8, u64), u64, isize)>,
    pub(super) accounts: Vec<(AccountUpdate, u64, isize)>,
    pub(super) links: Vec<((u64, u64), u64, isize)>,
    pub(super) flags: Vec<((u64, Flag), u64, isize)>,
}

/// One customer as the ledger operator keeps it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CustomerEntry {
    /// The customer's ledger.
    pub ledger: Ledger,
    /// The account and schedule last emitted (retracted on the next change).
    pub last: (Account, Schedule),
    /// The time the customer was first seen (its `new` flag lasts a link window).
    pub first_seen: u64,
}

/// Everything the ledger operator of one worker keeps, shared with the worker so that a
/// checkpoint can read it while the dataflow is quiescent (`crate::checkpoint`).
#[derive(Default)]
pub struct LedgerState {
    /// Customers by key.
    pub customers: HashMap<u64, CustomerEntry, KeyHasher>,
    /// (customer, identifier) → expiry of its latest sighting.
    pub links: HashMap<(u64, u64), u64, KeyHasher>,
    /// Held window retractions and link checks.
    pub deferred: Deferred,
    /// Customers changed since the last checkpoint; kept only when `tracking`.
    pub dirty: std::collections::HashSet<u64, KeyHasher>,
    /// Whether changes are tracked for checkpoints (a run with a state directory).
    pub tracking: bool,
    /// Set by a restore: on its first activation the operator re-emits the restored state
    /// as updates at this time (the restored frontier − 1), rebuilding the downstream
    /// arrangements (window sums, distinct sets, rings).
    pub rebuild_at: Option<u64>,
}

impl LedgerState {
    /// The updates that rebuild, at time `at`, every downstream collection from the held
    /// state: window sums and distinct occurrences, links, the `new` and `delinquent`
    /// flags, and the DPD wake-ups still ahead.
    fn rebuild(&self, at: u64, params: &LedgerParams, out: &mut Buffers) {
        let (sums, distinct) = self.deferred.current();
        out.sums.extend(sums.into_iter().map(|(k, s)| (k, at, s)));
        out.distinct
            .extend(distinct.into_iter().map(|item| (item, at, 1)));
        let mut links: Vec<(u64, u64)> = self.links.keys().copied().collect();
        links.sort_unstable();
        out.links.extend(links.into_iter().map(|l| (l, at, 1)));
        let mut keys: Vec<u64> = self.customers.keys().copied().collect();
        keys.sort_unstable();
        for key in keys {
            let c = &self.customers[&key];
            let new_until = c.first_seen.saturating_add(params.link_window);
            if new_until > at {
                out.flags.push(((key, Flag::New), at, 1));
                out.flags.push(((key, Flag::New), new_until, -1));
            }
            let due = c.ledger.account().oldest_due;
            if due != 0 {
                let from = riskwatch_model::time::ceil_to(
                    crate::ledger::dpd_reached_at(due, 1),
                    params.tick,
                );
                out.flags.push(((key, Flag::Delinquent), at.max(from), 1));
            }
            for w in c.ledger.pending_wakes().iter().filter(|w| **w > at) {
                out.accounts.push(((key, Change::Wake), *w, 1));
            }
        }
    }
}

/// Kind-tagged identifier hashes, so a device and an IP with equal text never link.
fn tagged(hash: u64, kind: u64) -> u64 {
    (hash ^ kind.wrapping_mul(0x9E37_79B9_7F4A_7C15)).rotate_left(kind as u32 * 7)
}

/// The identifiers an event links its customer to.
fn identifiers(event: &Event, out: &mut Vec<u64>) {
    out.clear();
    let mut push = |h: u64, kind: u64| {
        if h != 0 {
            out.push(tagged(h, kind));
        }
    };
    match &event.body {
        riskwatch_model::event::Body::Transaction(t) => {
            push(t.device, 1);
            push(t.ip, 2);
        }
        riskwatch_model::event::Body::Behavior(b) => {
            push(b.device, 1);
            push(b.ip, 2);
            push(b.phone, 3);
        }
        riskwatch_model::event::Body::Customer(c) => push(c.phone, 3),
        riskwatch_model::event::Body::Loan(_) => {}
    }
}

/// Settings of the ledger operator.
#[derive(Clone, Debug)]
pub struct LedgerParams {
    /// The feature layout.
    pub layout: Rc<Layout>,
    /// Tick in ms.
    pub tick: u64,
    /// Extra DPD wake-ups (days past due).
    pub wake_at_dpd: Vec<u32>,
    /// How long a shared identifier links customers after it was last seen, in ms.
    pub link_window: u64,
    /// Expiry granularity of links, in ms.
    pub link_granularity: u64,
}

struct Emit<'a> {
    key: u64,
    out: &'a mut Buffers,
    deferred: &'a mut Deferred,
    expired: u64,
}

impl LedgerSink for Emit<'_> {
    fn sum(&mut self, time: u64, slots: Slots) {
        self.out.sums.push((self.key, time, slots));
    }
    fn retract_sum(&mut self, window: u8, time: u64, slots: Slots) {
        self.deferred.retract_sum(self.key, window, time, slots);
    }
    fn distinct(&mut self, time: u64, slot: u8, value: u64) {
        self.out.distinct.push(((self.key, slot, value), time, 1));
    }
    fn retract_distinct(&mut self, time: u64, slot: u8, value: u64) {
        self.deferred.retract_distinct(self.key, time, slot, value);
    }
    fn wake(&mut self, time: u64, diff: isize) {
        self.out
            .accounts
            .push(((self.key, Change::Wake), time, diff));
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
    state: Rc<RefCell<LedgerState>>,
) -> LedgerStreams<'scope> {
    let mut builder = OperatorBuilder::new("Ledger".to_owned(), events.scope());
    let mut input = builder.new_input(
        events,
        Exchange::new(|update: &(Event, u64, isize)| update.0.key),
    );
    let (sums_out, sums) = builder.new_output();
    let (distinct_out, distinct) = builder.new_output();
    let (accounts_out, accounts) = builder.new_output();
    let (links_out, links) = builder.new_output();
    let (flags_out, flags) = builder.new_output();
    let mut sums_out = OutputBuilder::<_, CapacityContainerBuilder<Vec<_>>>::from(sums_out);
    let mut distinct_out = OutputBuilder::<_, CapacityContainerBuilder<Vec<_>>>::from(distinct_out);
    let mut accounts_out = OutputBuilder::<_, CapacityContainerBuilder<Vec<_>>>::from(accounts_out);
    let mut links_out = OutputBuilder::<_, CapacityContainerBuilder<Vec<_>>>::from(links_out);
    let mut flags_out = OutputBuilder::<_, CapacityContainerBuilder<Vec<_>>>::from(flags_out);
    builder.build(move |initial| {
        // Events not yet ready; taken in (time, ts, seq) order when their time is.
        let mut pending = Ready::default();
        // One capability per output, at the least pending time; after a restore, the
        // initial ones, for the rebuild.
        let rebuild_at = state.borrow().rebuild_at;
        let mut held: Vec<Capability<u64>> = match rebuild_at {
            Some(at) => initial
                .into_iter()
                .map(|mut c| {
                    c.downgrade(&at);
                    c
                })
                .collect(),
            None => Vec::new(),
        };
        let mut touched: Vec<u64> = Vec::new();
        let mut unlinked: Vec<u64> = Vec::new();
        let mut buffers = Buffers::default();
        let mut idents: Vec<u64> = Vec::new();
        let link_window = params.link_window;
        let mut batch: Vec<(u64, Event)> = Vec::new();
        move |frontiers| {
            let frontier = &frontiers[0];
            let mut guard = state.borrow_mut();
            if let Some(at) = guard.rebuild_at.take() {
                guard.rebuild(at, &params, &mut buffers);
            }
            let LedgerState {
                customers,
                links,
                deferred,
                dirty,
                tracking,
                ..
            } = &mut *guard;
            input.for_each_stamp(|cap, data| {
                if let Some(t) = cap.least() {
                    if held.first().is_none_or(|h| t < h.time()) {
                        held = (0..5).map(|port| cap.delayed(t, port)).collect();
                    }
                }
                for container in data {
                    for (event, time, diff) in container.drain(..) {
                        debug_assert!(diff > 0, "input events are insertions");
                        pending.push(time, event);
                    }
                }
            });
            let mut local = Stats::default();
            // The ready events — times the frontier has passed — in (time, ts, seq) order.
            batch.clear();
            pending.take(frontier, &mut batch);
            let ready = batch.len();
            let mut i = 0;
            while i < ready {
                let time = batch[i].0;
                let mut j = i;
                while j < ready && batch[j].0 == time {
                    j += 1;
                }
                // Release held retractions before this time first: a link's expiry check
                // must not see sightings from later times of the same activation.
                deferred.release(time, &mut buffers, links, &mut unlinked);
                // Duplicates were dropped upstream (`operators::dedupe`).
                for (_, event) in batch[i..j].iter() {
                    let stream = event.stream();
                    local.events[stream as usize] += 1;
                    if time > riskwatch_model::time::ceil_to(event.ts, params.tick) {
                        local.late += 1;
                    }
                    let entry = customers.entry(event.key).or_insert_with(|| {
                        // First sighting: new for the link window.
                        buffers.flags.push(((event.key, Flag::New), time, 1));
                        buffers.flags.push((
                            (event.key, Flag::New),
                            time.saturating_add(link_window),
                            -1,
                        ));
                        CustomerEntry {
                            ledger: Ledger::new(event.customer_id.clone()),
                            last: Default::default(),
                            first_seen: time,
                        }
                    });
                    let ledger = &mut entry.ledger;
                    identifiers(event, &mut idents);
                    let expiry = riskwatch_model::time::ceil_to(
                        event.ts.saturating_add(link_window),
                        params.link_granularity,
                    );
                    for ident in idents.iter() {
                        if expiry <= time {
                            continue;
                        }
                        match links.get_mut(&(event.key, *ident)) {
                            Some(e) => *e = (*e).max(expiry),
                            None => {
                                links.insert((event.key, *ident), expiry);
                                buffers.links.push(((event.key, *ident), time, 1));
                                deferred.check_link(event.key, expiry, *ident);
                            }
                        }
                    }
                    let mut emit = Emit {
                        key: event.key,
                        out: &mut buffers,
                        deferred: &mut *deferred,
                        expired: 0,
                    };
                    ledger.apply(event, time, &params.layout, &mut emit);
                    local.expired_on_arrival += emit.expired;
                    touched.push(event.key);
                }
                touched.sort_unstable();
                touched.dedup();
                for key in touched.drain(..) {
                    if *tracking {
                        dirty.insert(key);
                    }
                    let entry = customers.get_mut(&key).expect("touched customers exist");
                    let (ledger, last) = (&mut entry.ledger, &mut entry.last);
                    let mut emit = Emit {
                        key,
                        out: &mut buffers,
                        deferred: &mut *deferred,
                        expired: 0,
                    };
                    let due_before = ledger.account().oldest_due;
                    ledger.settle(time, params.tick, &params.wake_at_dpd, &mut emit);
                    let due_after = ledger.account().oldest_due;
                    if due_before != due_after {
                        // Delinquent from DPD 1 of the oldest unpaid installment: linear in
                        // the due date, so a repayment before it cancels the flag.
                        let at = |due: u64| {
                            time.max(riskwatch_model::time::ceil_to(
                                crate::ledger::dpd_reached_at(due, 1),
                                params.tick,
                            ))
                        };
                        if due_before != 0 {
                            buffers
                                .flags
                                .push(((key, Flag::Delinquent), at(due_before), -1));
                        }
                        if due_after != 0 {
                            buffers
                                .flags
                                .push(((key, Flag::Delinquent), at(due_after), 1));
                        }
                    }
                    if ledger.account() != &last.0 {
                        if !last.0.customer_id.is_empty() {
                            buffers.accounts.push((
                                (key, Change::Account(last.0.clone())),
                                time,
                                -1,
                            ));
                        }
                        last.0 = ledger.account().clone();
                        buffers
                            .accounts
                            .push(((key, Change::Account(last.0.clone())), time, 1));
                    }
                    if let Some(schedule) = ledger.take_schedule_change() {
                        if schedule != last.1 {
                            let old = std::mem::replace(&mut last.1, schedule);
                            buffers
                                .accounts
                                .push(((key, Change::Schedule(old)), time, -1));
                            buffers.accounts.push((
                                (key, Change::Schedule(last.1.clone())),
                                time,
                                1,
                            ));
                        }
                    }
                }
                i = j;
            }
            // Release held retractions the frontier has reached.
            let limit = frontier
                .frontier()
                .iter()
                .min()
                .copied()
                .unwrap_or(u64::MAX);
            deferred.release(limit, &mut buffers, links, &mut unlinked);
            if *tracking {
                dirty.extend(unlinked.iter().copied());
            }
            unlinked.clear();
            if let [sums_cap, distinct_cap, accounts_cap, links_cap, flags_cap] = held.as_slice() {
                if !buffers.links.is_empty() {
                    links_out
                        .activate()
                        .session(links_cap)
                        .give_iterator(buffers.links.drain(..));
                }
                if !buffers.flags.is_empty() {
                    flags_out
                        .activate()
                        .session(flags_cap)
                        .give_iterator(buffers.flags.drain(..));
                }
                if !buffers.sums.is_empty() {
                    sums_out
                        .activate()
                        .session(sums_cap)
                        .give_iterator(buffers.sums.drain(..));
                }
                if !buffers.distinct.is_empty() {
                    distinct_out
                        .activate()
                        .session(distinct_cap)
                        .give_iterator(buffers.distinct.drain(..));
                }
                if !buffers.accounts.is_empty() {
                    accounts_out
                        .activate()
                        .session(accounts_cap)
                        .give_iterator(buffers.accounts.drain(..));
                }
            }
            let least = pending.least().into_iter().chain(deferred.least()).min();
            match least {
                Some(t) => {
                    for cap in held.iter_mut() {
                        cap.downgrade(&t);
                    }
                }
                None => held.clear(),
            }
            stats.borrow_mut().merge(&local);
        }
    });
    LedgerStreams {
        sums,
        distinct,
        accounts,
        links,
        flags,
    }
}

/// A hasher for keys that already are well-mixed 64-bit hashes (customer keys, event ids):
/// folds the written words with a multiply, far cheaper than SipHash.
#[derive(Clone, Copy, Default)]
pub struct KeyHasher;

impl std::hash::BuildHasher for KeyHasher {
    type Hasher = FoldHasher;
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher(0)
    }
}

/// The hasher of [`KeyHasher`].
#[derive(Clone, Copy, Default)]
pub struct FoldHasher(u64);

impl std::hash::Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(*b as u64);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(i as u64);
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
}
