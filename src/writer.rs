//! Writes a replay's outputs as the dataflow produces them, on a thread of its own.
//!
//! Each worker sends what its capture collected whenever its probe moves, with the time
//! below which it has nothing more to send (its watermark). The writer writes every output
//! at a time below the smallest watermark, in the order the files have always had: by
//! `(ts, customer, strategy, id)`, ties in worker then arrival order. So the files are
//! byte-identical to sorting the whole run's outputs at the end, while memory holds only
//! the outputs of the times still in flight.

pub use crate::output_counts::OutputCounts;
use riskwatch_connectors::error::ConnectorError;
use riskwatch_connectors::file::OutputSet;
use riskwatch_model::output::{Alert, Case, Decision};
use std::cmp::Ordering;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

/// The files' order of alerts.
pub fn alert_order(a: &Alert, b: &Alert) -> Ordering {
    (a.ts, &a.customer_id, &a.strategy, &a.rule_id).cmp(&(
        b.ts,
        &b.customer_id,
        &b.strategy,
        &b.rule_id,
    ))
}

/// The files' order of decisions.
pub fn decision_order(a: &Decision, b: &Decision) -> Ordering {
    (a.ts, &a.customer_id, &a.strategy, &a.decision_id).cmp(&(
        b.ts,
        &b.customer_id,
        &b.strategy,
        &b.decision_id,
    ))
}

/// The files' order of case events.
pub fn case_order(a: &Case, b: &Case) -> Ordering {
    (a.ts, &a.customer_id, &a.strategy, &a.case_id, a.seq).cmp(&(
        b.ts,
        &b.customer_id,
        &b.strategy,
        &b.case_id,
        b.seq,
    ))
}

/// What one worker sends the writer.
#[derive(Debug, Default)]
pub struct OutputBatch {
    /// Local worker index.
    pub worker: usize,
    /// This worker will send nothing more at a time before this.
    pub watermark: u64,
    /// On the worker's last batch: the run's end (outputs after it are dropped).
    pub end: Option<u64>,
    /// `(time, alert)`.
    pub alerts: Vec<(u64, Alert)>,
    /// `(time, decision)`.
    pub decisions: Vec<(u64, Decision)>,
    /// `(time, case event)`.
    pub cases: Vec<(u64, Case)>,
}

/// What the writer did, once every worker sent its last batch.
pub struct Written {
    /// The files, still to be committed (the rejected records go in after).
    pub files: OutputSet,
    /// What was written.
    pub counts: OutputCounts,
    /// Copies of every output written, when asked for.
    pub kept: Option<(Vec<Alert>, Vec<Decision>, Vec<Case>)>,
}

/// The writer thread.
pub struct OutputWriter {
    handle: JoinHandle<Result<Written, ConnectorError>>,
}

impl OutputWriter {
    /// Starts writing alerts, decisions and cases into files 0, 1 and 2 of `files` from
    /// `workers` local workers; `keep` also keeps a copy of each in memory, and `metrics`
    /// counts them as they are written.
    pub fn start(
        files: OutputSet,
        workers: usize,
        keep: bool,
        metrics: Option<crate::metrics::Metrics>,
    ) -> std::io::Result<(OutputWriter, Sender<OutputBatch>)> {
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("output-writer".into())
            .spawn(move || write(files, workers, keep, metrics, rx))?;
        Ok((OutputWriter { handle }, tx))
    }

    /// Waits for the last batches (the senders must all be gone).
    pub fn finish(self) -> Result<Written, ConnectorError> {
        self.handle
            .join()
            .expect("the output writer does not panic")
    }
}

/// Outputs received and not yet written: `(time, worker, arrival, record)`.
type Held<T> = Vec<(u64, usize, u64, T)>;

struct Pending {
    alerts: Held<Alert>,
    decisions: Held<Decision>,
    cases: Held<Case>,
    arrival: u64,
}

/// Takes the held records at a time below `below` (and not after `end`), in file order.
fn ready<T>(held: &mut Held<T>, below: u64, end: u64, order: fn(&T, &T) -> Ordering) -> Vec<T> {
    let mut out: Held<T> = Vec::new();
    let mut i = 0;
    while i < held.len() {
        if held[i].0 < below {
            out.push(held.swap_remove(i));
        } else {
            i += 1;
        }
    }
    out.retain(|(t, ..)| *t <= end);
    out.sort_by(|a, b| order(&a.3, &b.3).then((a.1, a.2).cmp(&(b.1, b.2))));
    out.into_iter().map(|(.., r)| r).collect()
}

fn write(
    mut files: OutputSet,
    workers: usize,
    keep: bool,
    metrics: Option<crate::metrics::Metrics>,
    rx: Receiver<OutputBatch>,
) -> Result<Written, ConnectorError> {
    let mut marks = vec![0u64; workers.max(1)];
    let mut ends: Vec<Option<u64>> = vec![None; workers.max(1)];
    let mut pending = Pending {
        alerts: Vec::new(),
        decisions: Vec::new(),
        cases: Vec::new(),
        arrival: 0,
    };
    let mut counts = OutputCounts::default();
    let mut kept = keep.then(|| (Vec::new(), Vec::new(), Vec::new()));
    let mut error: Option<ConnectorError> = None;
    // A worker that stopped without a last batch (it failed) leaves the end at its mark.
    let mut end = u64::MAX;
    loop {
        let batch = rx.recv().ok();
        let done = batch.is_none();
        if let Some(b) = batch {
            let w = b.worker;
            marks[w] = marks[w].max(b.watermark);
            if b.end.is_some() {
                ends[w] = b.end;
                marks[w] = u64::MAX;
            }
            let a = &mut pending.arrival;
            let mut hold = |t: u64| {
                *a += 1;
                (t, w, *a)
            };
            for (t, r) in b.alerts {
                let (t, w, n) = hold(t);
                pending.alerts.push((t, w, n, r));
            }
            for (t, r) in b.decisions {
                let (t, w, n) = hold(t);
                pending.decisions.push((t, w, n, r));
            }
            for (t, r) in b.cases {
                let (t, w, n) = hold(t);
                pending.cases.push((t, w, n, r));
            }
        }
        let below = if done || ends.iter().all(Option::is_some) {
            end = ends.iter().flatten().copied().min().unwrap_or(end);
            u64::MAX
        } else {
            marks.iter().copied().min().unwrap_or(0)
        };
        let alerts = ready(&mut pending.alerts, below, end, alert_order);
        let decisions = ready(&mut pending.decisions, below, end, decision_order);
        let cases = ready(&mut pending.cases, below, end, case_order);
        for a in &alerts {
            counts.alert(a);
            if error.is_none() {
                error = files.file(0).write(a).err();
            }
        }
        for d in &decisions {
            counts.decision(d);
            if error.is_none() {
                error = files.file(1).write(d).err();
            }
        }
        for c in &cases {
            counts.case(c);
            if error.is_none() {
                error = files.file(2).write(c).err();
            }
        }
        if let Some(m) = &metrics {
            // The metrics follow the files as they are written (a files run serving
            // /metrics shows its outputs live).
            if !(alerts.is_empty() && decisions.is_empty() && cases.is_empty()) {
                let mut delta = OutputCounts::default();
                alerts.iter().for_each(|a| delta.alert(a));
                decisions.iter().for_each(|d| delta.decision(d));
                cases.iter().for_each(|c| delta.case(c));
                m.add_counts(&delta);
            }
        }
        if let Some((ka, kd, kc)) = kept.as_mut() {
            ka.extend(alerts);
            kd.extend(decisions);
            kc.extend(cases);
        }
        if done {
            break;
        }
    }
    match error {
        Some(e) => Err(e),
        None => Ok(Written {
            files,
            counts,
            kept,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_records_come_out_below_the_mark_in_file_order_then_worker_then_arrival() {
        let mut held: Held<(u64, &str)> = vec![
            (5, 1, 1, (5, "b")),
            (3, 0, 2, (3, "z")),
            (9, 0, 3, (9, "a")),
            (3, 1, 4, (3, "a")),
            (5, 0, 5, (5, "b")),
        ];
        let order: fn(&(u64, &str), &(u64, &str)) -> Ordering = |a, b| a.cmp(b);
        let got = ready(&mut held, 9, u64::MAX, order);
        assert_eq!(got, vec![(3, "a"), (3, "z"), (5, "b"), (5, "b")]);
        assert_eq!(held.len(), 1);
        // Records after the end are dropped, not written.
        assert!(ready(&mut held, u64::MAX, 8, order).is_empty());
        assert!(held.is_empty());
    }
}
