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

/// Drops every event whose (stream, `event_id`) was seen within `horizon` ms before, counting
/// it in `stats.duplicates`; passes the rest on at their times.
pub fn dedupe<'scope>(
    events: StreamVec<'scope, u64, (Event, u64, isize)>,
    horizon: u64,
    stats: Rc<RefCell<Stats>>,
) -> StreamVec<'scope, u64, (Event, u64, isize)> {
    events.unary_frontier::<CapacityContainerBuilder<Vec<(Event, u64, isize)>>, _, _, _>(
        Exchange::new(|update: &(Event, u64, isize)| route(&update.0)),
        "Dedupe",
        move |_initial, _info| {
            // Events not yet ready, as (time, event).
            let mut pending: Vec<(u64, Event)> = Vec::new();
            // A capability at the least pending time.
            let mut held: Option<Capability<u64>> = None;
            let mut seen: HashMap<(Stream, u64), (), KeyHasher> = HashMap::default();
            let mut expiry: VecDeque<(u64, Stream, u64)> = VecDeque::new();
            let mut order: Vec<(u64, u64, u64, u32)> = Vec::new();
            let mut ready: Vec<Option<(u64, Event)>> = Vec::new();
            let mut out_buf: Vec<(Event, u64, isize)> = Vec::new();
            move |(input, frontier), output| {
                input.for_each_stamp(|cap, data| {
                    if let Some(t) = cap.least() {
                        if held.as_ref().is_none_or(|h| t < h.time()) {
                            held = Some(cap.delayed(t, output.output_index()));
                        }
                    }
                    for container in data {
                        pending.extend(container.drain(..).map(|(event, time, diff)| {
                            debug_assert!(diff > 0, "input events are insertions");
                            (time, event)
                        }));
                    }
                });
                let Some(cap) = held.as_ref() else {
                    return;
                };
                order.clear();
                for (i, (t, e)) in pending.iter().enumerate() {
                    if !frontier.less_equal(t) {
                        order.push((*t, e.ts, e.seq, i as u32));
                    }
                }
                if !order.is_empty() {
                    order.sort_unstable();
                    ready.clear();
                    ready.extend(std::mem::take(&mut pending).into_iter().map(Some));
                    let mut duplicates = [0u64; 4];
                    let mut i = 0;
                    while i < order.len() {
                        let time = order[i].0;
                        // Forget ids beyond the horizon.
                        while let Some(&(at, stream, id)) = expiry.front() {
                            if at > time {
                                break;
                            }
                            seen.remove(&(stream, id));
                            expiry.pop_front();
                        }
                        while i < order.len() && order[i].0 == time {
                            let (_, event) =
                                ready[order[i].3 as usize].take().expect("each index once");
                            i += 1;
                            let stream = event.stream();
                            if event.event_id != 0 {
                                if seen.insert((stream, event.event_id), ()).is_some() {
                                    duplicates[stream as usize] += 1;
                                    continue;
                                }
                                expiry.push_back((
                                    time.saturating_add(horizon),
                                    stream,
                                    event.event_id,
                                ));
                            }
                            out_buf.push((event, time, 1));
                        }
                        if !out_buf.is_empty() {
                            let at = cap.delayed(&time);
                            output.session(&at).give_iterator(out_buf.drain(..));
                        }
                    }
                    pending.extend(ready.drain(..).flatten());
                    let mut s = stats.borrow_mut();
                    for (total, n) in s.duplicates.iter_mut().zip(duplicates) {
                        *total += n;
                    }
                }
                match pending.iter().map(|(t, _)| *t).min() {
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
