//! Counters a worker's operators update as they run, read by the harness for metrics and
//! the run summary. One instance per worker (`Rc<RefCell<_>>`), summed across workers.

use std::collections::BTreeMap;

/// Per-worker counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events accepted by the ledger, by stream (customers, loans, transactions, behaviors).
    pub events: [u64; 4],
    /// Later copies of an already seen `(stream, event_id)`, by stream.
    pub duplicates: [u64; 4],
    /// Events that entered after the frontier had passed their time.
    pub late: u64,
    /// Window contributions of late events whose window had already closed.
    pub expired_on_arrival: u64,
    /// Customers at each level, per strategy (by name): the current mix.
    pub levels: BTreeMap<String, [u64; 5]>,
    /// Customer evaluations (customer × tick).
    pub evaluations: u64,
    /// Live strategy changes that were rejected, with the reason.
    pub config_rejected: Vec<String>,
}

impl Stats {
    /// Adds another worker's counters.
    pub fn merge(&mut self, other: &Stats) {
        for i in 0..4 {
            self.events[i] += other.events[i];
            self.duplicates[i] += other.duplicates[i];
        }
        self.late += other.late;
        self.expired_on_arrival += other.expired_on_arrival;
        self.evaluations += other.evaluations;
        self.config_rejected
            .extend(other.config_rejected.iter().cloned());
        for (k, v) in &other.levels {
            let e = self.levels.entry(k.clone()).or_default();
            for i in 0..5 {
                e[i] = e[i].wrapping_add(v[i]);
            }
        }
    }
}
