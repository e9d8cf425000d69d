//! Events buffered by time until the frontier passes it, then taken in `(time, ts, seq)`
//! order: the order `Dedupe` and `Ledger` process events in, which does not depend on how
//! events were spread over workers.

use riskwatch_model::event::Event;
use timely::progress::frontier::MutableAntichain;

/// Pending `(time, event)` pairs and the reused buffers that sort them.
#[derive(Default)]
pub struct Ready {
    pending: Vec<(u64, Event)>,
    /// Ready events, in arrival order, while being sorted.
    scratch: Vec<Option<(u64, Event)>>,
    /// `(time, ts, seq, index into scratch)`: sorting small keys, not whole events.
    order: Vec<(u64, u64, u64, u32)>,
}

impl Ready {
    /// Buffers an event at `time`.
    pub fn push(&mut self, time: u64, event: Event) {
        self.pending.push((time, event));
    }

    /// The least pending time.
    pub fn least(&self) -> Option<u64> {
        self.pending.iter().map(|(t, _)| *t).min()
    }

    /// Appends to `out` every pending event at a time the frontier has passed, in
    /// `(time, ts, seq)` order; the others stay pending.
    pub fn take(&mut self, frontier: &MutableAntichain<u64>, out: &mut Vec<(u64, Event)>) {
        let mut i = 0;
        while i < self.pending.len() {
            if frontier.less_equal(&self.pending[i].0) {
                i += 1;
            } else {
                self.scratch.push(Some(self.pending.swap_remove(i)));
            }
        }
        if self.scratch.is_empty() {
            return;
        }
        self.order.clear();
        self.order
            .extend(self.scratch.iter().enumerate().map(|(i, x)| {
                let (t, e) = x.as_ref().expect("filled above");
                (*t, e.ts, e.seq, i as u32)
            }));
        self.order.sort_unstable();
        out.extend(
            self.order
                .iter()
                .map(|k| self.scratch[k.3 as usize].take().expect("each index once")),
        );
        self.scratch.clear();
    }
}
