//! The `Dedupe` operator: drops repeated input events before anything else sees them.
//!
//! The duplicate key is (stream, `event_id`) and the first copy wins (DESIGN.md, Semantics).
//! Events are exchanged by that key, so every copy of one event meets on one worker
//! whatever its `customer_id` says, and the answer does not depend on the worker count.
//! Each time the frontier passes is processed in `(time, ts, seq)` order, the same order
//! the ledger applies events in, so "first" is the same on 1 worker or many. An id is
//! remembered for the dedupe horizon after the time it was first seen. Records without an
//! `event_id` (customers records) pass through, exchanged by customer so that they do not
//! all meet on one worker.
//!
//! ```text
//!  events ──exchange by (stream, event_id)──▶ Dedupe ──▶ Ledger (exchange by customer)
//! ```

use crate::operators::ledger::KeyHasher;
use crate::operators::ready::Ready;
use crate::stats::Stats;
use riskwatch_model::event::{Event, Stream};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;

/// The exchange key of an event: its duplicate key, or its customer without an id.
fn route(event: &Event) -> u64 {
    if event.event_id == 0 {
        event.key
    } else {
        // Ids are well-mixed hashes; the stream separates equal ids of two streams.
        event.event_id ^ ((event.stream() as u64) << 59)
    }
}

/// The duplicate set of one worker, shared with the worker for checkpoints.
#[derive(Default)]
pub struct DedupeState {
    /// Ids seen within the horizon.
    pub seen: HashMap<(Stream, u64), (), KeyHasher>,
    /// `(forget at, stream, id)` in time order.
    pub expiry: VecDeque<(u64, Stream, u64)>,
    /// How many entries at the back of `expiry` were added since the last checkpoint.
    pub unsaved: usize,
    /// The sequence number of the next checkpointed run of entries.
    pub chunk_seq: u64,
}

impl DedupeState {
    /// Remembers an id until `until`.
    pub fn remember(&mut self, until: u64, stream: Stream, id: u64) -> bool {
        if self.seen.insert((stream, id), ()).is_some() {
            return false;
        }
        self.expiry.push_back((until, stream, id));
        self.unsaved += 1;
        true
    }

    /// Forgets the ids whose time has come by `time`.
    pub fn forget(&mut self, time: u64) {
        while let Some(&(at, stream, id)) = self.expiry.front() {
            if at > time {
                break;
            }
            self.seen.remove(&(stream, id));
            self.expiry.pop_front();
            self.unsaved = self.unsaved.min(self.expiry.len());
        }
    }

    /// The entries added since the last call, in time order; forgets that they were new.
    pub fn take_unsaved(&mut self) -> Vec<(u64, Stream, u64)> {
        let n = std::mem::take(&mut self.unsaved);
        self.expiry
            .range(self.expiry.len() - n..)
            .copied()
            .collect()
    }
}

/// Drops every event whose (stream, `event_id`) was seen within `horizon` ms before, counting
/// it in `stats.duplicates`; passes the rest on at their times.
pub fn dedupe<'scope>(
    events: StreamVec<'scope, u64, (Event, u64, isize)>,
    horizon: u64,
    stats: Rc<RefCell<Stats>>,
    state: Rc<RefCell<DedupeState>>,
) -> StreamVec<'scope, u64, (Event, u64, isize)> {
    events.unary_frontier::<CapacityContainerBuilder<Vec<(Event, u64, isize)>>, _, _, _>(
        Exchange::new(|update: &(Event, u64, isize)| route(&update.0)),
        "Dedupe",
        move |_initial, _info| {
            // Events not yet ready; taken in (time, ts, seq) order when their time is.
            let mut pending = Ready::default();
            // A capability at the least pending time.
            let mut held: Option<Capability<u64>> = None;
            let mut batch: Vec<(u64, Event)> = Vec::new();
            let mut out_buf: Vec<(Event, u64, isize)> = Vec::new();
            move |(input, frontier), output| {
                input.for_each_stamp(|cap, data| {
                    if let Some(t) = cap.least() {
                        if held.as_ref().is_none_or(|h| t < h.time()) {
                            held = Some(cap.delayed(t, output.output_index()));
                        }
                    }
                    for container in data {
                        for (event, time, diff) in container.drain(..) {
                            debug_assert!(diff > 0, "input events are insertions");
                            pending.push(time, event);
                        }
                    }
                });
                let Some(cap) = held.as_ref() else {
                    return;
                };
                batch.clear();
                pending.take(frontier, &mut batch);
                if !batch.is_empty() {
                    let mut state = state.borrow_mut();
                    let mut duplicates = [0u64; 4];
                    let mut events = batch.drain(..).peekable();
                    while let Some(&(time, _)) = events.peek() {
                        // Forget ids beyond the horizon.
                        state.forget(time);
                        while let Some((_, event)) = events.next_if(|(t, _)| *t == time) {
                            let stream = event.stream();
                            if event.event_id != 0
                                && !state.remember(
                                    time.saturating_add(horizon),
                                    stream,
                                    event.event_id,
                                )
                            {
                                duplicates[stream as usize] += 1;
                                continue;
                            }
                            out_buf.push((event, time, 1));
                        }
                        if !out_buf.is_empty() {
                            let at = cap.delayed(&time);
                            output.session(&at).give_iterator(out_buf.drain(..));
                        }
                    }
                    let mut s = stats.borrow_mut();
                    for (total, n) in s.duplicates.iter_mut().zip(duplicates) {
                        *total += n;
                    }
                }
                match pending.least() {
                    Some(t) => {
                        if let Some(h) = held.as_mut() {
                            h.downgrade(&t);
                        }
                    }
                    None => held = None,
                }
            }
        },
    )
}
