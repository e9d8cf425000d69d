//! What the workers of a run are fed: pieces of their share of the merged events, in time
//! order, from an in-memory list or from a reader thread that merges the input files as the
//! dataflow runs (bounded look-ahead, bounded channels: memory follows the state, not the
//! length of the input).
//!
//! Every local worker gets the same sequence of cut points (`upto`): a piece holds the
//! worker's events before `upto` that the previous piece did not, so after it the worker may
//! advance its input to `upto`. A piece marked `checkpoint` ends at a checkpoint time: the
//! worker takes its checkpoint part there once the dataflow is quiescent. The last message is
//! [`Fed::End`] with the run's end time.

use riskwatch_connectors::error::ConnectorError;
use riskwatch_connectors::file::merge::{MergeStats, Merger};
use riskwatch_model::event::Event;
use riskwatch_model::time::ceil_to;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

/// One message to a worker.
#[derive(Debug)]
pub enum Fed {
    /// The worker's events before `upto` not yet fed.
    Piece(Piece),
    /// No more events: outputs up to `end` are the run's.
    End {
        /// The last time whose outputs are emitted.
        end: u64,
    },
}

/// A worker's events before `upto`, in time order.
#[derive(Debug, Default)]
pub struct Piece {
    /// `(time, event)`, non-decreasing in time, every time `< upto`.
    pub events: Vec<(u64, Event)>,
    /// The worker may advance its input here after feeding `events`.
    pub upto: u64,
    /// `upto` is a checkpoint time.
    pub checkpoint: bool,
    /// `upto` is a snapshot time: once the dataflow is quiescent there, the worker writes
    /// its customers' snapshot as of `upto - 1`.
    pub snapshot: bool,
}

/// Deals `events` (time order) to the local workers as the reader would, in pieces of about
/// `chunk` events each, and ends at `end`; events after `end` are left out.
pub fn from_memory(
    events: Vec<(u64, Event)>,
    end: u64,
    chunk: usize,
    (first, workers, peers): (usize, usize, usize),
) -> Vec<Receiver<Fed>> {
    let mut shares: Vec<Vec<(u64, Event)>> = (0..workers).map(|_| Vec::new()).collect();
    for (i, e) in events.into_iter().enumerate() {
        let w = i % peers;
        if w >= first && w < first + workers && e.0 <= end {
            shares[w - first].push(e);
        }
    }
    let chunk = chunk.max(1);
    shares
        .into_iter()
        .map(|share| {
            let (tx, rx) = mpsc::channel();
            let mut piece = Vec::new();
            let mut iter = share.into_iter().peekable();
            while let Some(e) = iter.next() {
                piece.push(e);
                let last = piece.last().map_or(0, |(t, _)| *t);
                match iter.peek() {
                    Some((t, _)) if piece.len() >= chunk && *t > last => {
                        let upto = *t;
                        let events = std::mem::take(&mut piece);
                        let _ = tx.send(Fed::Piece(Piece {
                            events,
                            upto,
                            checkpoint: false,
                            snapshot: false,
                        }));
                    }
                    _ => {}
                }
            }
            if !piece.is_empty() {
                let _ = tx.send(Fed::Piece(Piece {
                    events: piece,
                    upto: end + 1,
                    checkpoint: false,
                    snapshot: false,
                }));
            }
            let _ = tx.send(Fed::End { end });
            rx
        })
        .collect()
}

/// How the reader deals the files' events.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    /// Events (over all workers of the cluster) per cut.
    pub chunk: usize,
    /// Pieces a worker's channel holds before the reader waits.
    pub depth: usize,
    /// Checkpoint every this much event time (cut at multiples of it), if at all.
    pub every: Option<u64>,
    /// Leave out events before this time (they are in the restored state).
    pub from: u64,
    /// Snapshot cuts, ascending: each is an observation time (rounded up to a tick) + 1.
    pub snapshots: Vec<u64>,
    /// Periodic snapshot cuts `(first, period)`: at `first + k × period` from the first
    /// that falls inside the book (`[snapshot] every` of `riskwatch run`).
    pub periodic: Option<(u64, u64)>,
    /// `--until`: the run ends there instead of at the last event.
    pub until: Option<u64>,
    /// The tick: the end is rounded up to it.
    pub tick: u64,
    /// This process's first global worker, its local workers, all workers.
    pub workers: (usize, usize, usize),
    /// Rejected records an earlier run of this state directory already wrote: the first
    /// this many found are not reported again.
    pub reported: u64,
    /// Where to count the input bytes read (for a progress line).
    pub bytes_read: Option<Arc<AtomicU64>>,
}

/// What the reader found, once it has stopped.
#[derive(Debug)]
pub struct ReadResult {
    /// The merge's counters.
    pub stats: MergeStats,
    /// Rejected records to report (as rejected.schema.json lines, in the order found).
    pub rejected: Vec<String>,
    /// Bytes read.
    pub bytes: u64,
    /// The first I/O error, naming its file.
    pub error: Option<ConnectorError>,
    /// Seconds from the first read to the last event dealt.
    pub read_s: f64,
    /// The end time the workers were given (`None` when they stopped before the end).
    pub end: Option<u64>,
    /// Snapshot cuts outside the book: before its first event (or a resumed run's start)
    /// or after its end; no snapshot is taken at them.
    pub snapshots_outside: Vec<u64>,
}

/// A reader thread merging the input files and dealing pieces to the local workers.
pub struct FileFeed {
    receivers: Vec<Receiver<Fed>>,
    handle: JoinHandle<ReadResult>,
}

impl FileFeed {
    /// Starts reading `merger` on its own thread; `found` counts the rejected records it
    /// finds (those an earlier run reported included), `paths` name each stream's file for
    /// errors.
    pub fn start(
        merger: Merger,
        found: Arc<AtomicU64>,
        paths: [String; 4],
        opts: ReadOptions,
    ) -> anyhow::Result<FileFeed> {
        let (_, workers, _) = opts.workers;
        let mut senders = Vec::new();
        let mut receivers = Vec::new();
        for _ in 0..workers {
            let (tx, rx) = mpsc::sync_channel(opts.depth.max(1));
            senders.push(tx);
            receivers.push(rx);
        }
        let handle = std::thread::Builder::new()
            .name("file-reader".into())
            .spawn(move || read(merger, paths, opts, senders, found))?;
        Ok(FileFeed { receivers, handle })
    }

    /// The workers' channels, in local worker order.
    pub fn take_receivers(&mut self) -> Vec<Receiver<Fed>> {
        std::mem::take(&mut self.receivers)
    }

    /// Waits for the reader (it stops once every worker has dropped its channel).
    pub fn finish(self) -> ReadResult {
        drop(self.receivers);
        self.handle.join().expect("the file reader does not panic")
    }
}

/// Buffers one cut's events per local worker and sends them.
struct Dealer {
    senders: Vec<SyncSender<Fed>>,
    pieces: Vec<Vec<(u64, Event)>>,
    first: usize,
    peers: usize,
    /// Events dealt (after `from`), over the cluster: event `i` goes to worker `i % peers`.
    index: usize,
    /// Events since the last cut, over the cluster.
    since_cut: usize,
}

impl Dealer {
    fn push(&mut self, e: (u64, Event)) {
        let w = self.index % self.peers;
        self.index += 1;
        self.since_cut += 1;
        if w >= self.first && w < self.first + self.pieces.len() {
            self.pieces[w - self.first].push(e);
        }
    }

    /// Sends every worker its piece up to `upto`; false once the workers are gone.
    fn cut(&mut self, upto: u64, checkpoint: bool, snapshot: bool) -> bool {
        self.since_cut = 0;
        let mut alive = true;
        for (tx, events) in self.senders.iter().zip(self.pieces.iter_mut()) {
            // The next piece starts at this one's size: no regrowth per cut.
            let next = Vec::with_capacity(events.len());
            let piece = Piece {
                events: std::mem::replace(events, next),
                upto,
                checkpoint,
                snapshot,
            };
            alive &= tx.send(Fed::Piece(piece)).is_ok();
        }
        alive
    }

    fn end(&mut self, end: u64) {
        for tx in &self.senders {
            let _ = tx.send(Fed::End { end });
        }
    }
}

/// Where the reader cuts besides its chunks: checkpoint boundaries (multiples of `every`
/// after the last event fed) and snapshot times.
struct Cuts {
    every: Option<u64>,
    next_checkpoint: Option<u64>,
    snapshots: std::collections::VecDeque<u64>,
    /// The next periodic snapshot cut and the period; those before the first event or
    /// after the end are skipped, not outside.
    periodic: Option<(u64, u64)>,
    /// Snapshot cuts outside the run: at or before its start, before its first event, after
    /// its end.
    outside: Vec<u64>,
}

impl Cuts {
    /// Cuts for checkpoints every `every` and at `snapshots` (ascending), of a run that
    /// starts at `from`.
    fn new(every: Option<u64>, snapshots: &[u64], from: u64) -> Cuts {
        let (inside, outside): (Vec<u64>, Vec<u64>) = snapshots.iter().partition(|s| **s > from);
        Cuts {
            every,
            next_checkpoint: None,
            snapshots: inside.into(),
            periodic: None,
            outside,
        }
    }

    /// Adds periodic snapshot cuts at `first + k × period`, the first after `after`.
    fn periodic(mut self, periodic: Option<(u64, u64)>, after: u64) -> Cuts {
        self.periodic = periodic.map(|(first, period)| {
            let period = period.max(1);
            let k = if after < first {
                0
            } else {
                (after - first) / period + 1
            };
            (first.saturating_add(k.saturating_mul(period)), period)
        });
        self
    }

    /// An event at `t` was fed: the next checkpoint is the first boundary after it.
    fn fed(&mut self, t: u64) {
        self.next_checkpoint = self
            .every
            .map(|e| (t / e.max(1) + 1).saturating_mul(e.max(1)));
    }

    /// The run ends at `end`: no checkpoint after it, no snapshot after `end + 1`.
    fn end(&mut self, end: u64) {
        self.next_checkpoint = self.next_checkpoint.filter(|b| *b <= end);
        let after = self.snapshots.partition_point(|s| *s <= end + 1);
        self.outside.extend(self.snapshots.drain(after..));
        self.periodic = self.periodic.filter(|(p, _)| *p <= end + 1);
    }

    /// Moves the snapshot cuts before the first event at `first` outside.
    fn first(&mut self, first: u64) {
        while self.snapshots.front().is_some_and(|s| *s <= first) {
            let s = self.snapshots.pop_front().expect("checked");
            self.outside.push(s);
        }
        if let Some((p, period)) = self.periodic.as_mut() {
            if *p <= first {
                *p += (first - *p) / *period * *period + *period;
            }
        }
    }

    /// The earliest cut at or before `t` not made yet, as `(upto, checkpoint, snapshot)`.
    fn due(&mut self, t: u64) -> Option<(u64, bool, bool)> {
        let ck = self.next_checkpoint.filter(|b| t >= *b);
        let listed = self.snapshots.front().copied().filter(|s| t >= *s);
        let periodic = self.periodic.map(|p| p.0).filter(|p| t >= *p);
        let sn = listed.into_iter().chain(periodic).min();
        let upto = ck.into_iter().chain(sn).min()?;
        if ck == Some(upto) {
            self.next_checkpoint = None;
        }
        if listed == Some(upto) {
            self.snapshots.pop_front();
        }
        if let (Some(p), true) = (self.periodic.as_mut(), periodic == Some(upto)) {
            p.0 += p.1;
        }
        Some((upto, ck == Some(upto), sn == Some(upto)))
    }
}

fn read(
    mut merger: Merger,
    paths: [String; 4],
    opts: ReadOptions,
    senders: Vec<SyncSender<Fed>>,
    found: Arc<AtomicU64>,
) -> ReadResult {
    let start = Instant::now();
    let (first, workers, peers) = opts.workers;
    let mut dealer = Dealer {
        senders,
        pieces: (0..workers).map(|_| Vec::new()).collect(),
        first,
        peers: peers.max(1),
        index: 0,
        since_cut: 0,
    };
    let chunk = opts.chunk.max(1);
    let mut cuts =
        Cuts::new(opts.every, &opts.snapshots, opts.from).periodic(opts.periodic, opts.from);
    let mut last: Option<u64> = None;
    let mut error = None;
    let mut alive = true;
    loop {
        let (t, event) = match merger.next_event() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err((s, e)) => {
                error = Some(ConnectorError::Io {
                    path: paths[s as usize].clone(),
                    source: e,
                });
                break;
            }
        };
        if t < opts.from {
            continue;
        }
        if last.is_none() && opts.from == 0 {
            cuts.first(t);
        }
        let mut made = 0;
        while let Some((upto, checkpoint, snapshot)) = cuts.due(t) {
            alive &= dealer.cut(upto, checkpoint, snapshot);
            made += 1;
        }
        if made == 0 && dealer.since_cut >= chunk && last.is_some_and(|l| t > l) {
            alive = dealer.cut(t, false, false);
            made += 1;
        }
        if made > 0 {
            // Counters for the checkpoint's commit and the progress line, once per cut.
            found.store(merger.rejected().len() as u64, Ordering::Relaxed);
            if let Some(n) = &opts.bytes_read {
                n.store(merger.bytes(), Ordering::Relaxed);
            }
        }
        if !alive {
            break;
        }
        dealer.push((t, event));
        last = Some(t);
        cuts.fed(t);
    }
    found.store(merger.rejected().len() as u64, Ordering::Relaxed);
    let read_s = start.elapsed().as_secs_f64();
    let stats = merger.stats().clone();
    let mut end = None;
    if alive && error.is_none() {
        let e = ceil_to(opts.until.unwrap_or(stats.max_ts), opts.tick);
        // The cuts due by the end: checkpoints before it, snapshots up to it.
        cuts.end(e);
        while let Some((upto, checkpoint, snapshot)) = cuts.due(e + 1) {
            alive &= dealer.cut(upto, checkpoint, snapshot);
        }
        if alive && !dealer.pieces.iter().all(Vec::is_empty) {
            alive = dealer.cut(e + 1, false, false);
        }
        if alive {
            dealer.end(e);
            end = Some(e);
        }
    }
    let mut rejected = merger.take_rejected();
    let skip = (opts.reported as usize).min(rejected.len());
    rejected.drain(..skip);
    ReadResult {
        stats,
        rejected,
        bytes: merger.bytes(),
        error,
        read_s,
        end,
        snapshots_outside: cuts.outside,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use riskwatch_model::event::{Body, CustomerRecord, CustomerStatus};

    fn event(ts: u64, seq: u64) -> (u64, Event) {
        let body = Body::Customer(CustomerRecord {
            credit_limit: 1,
            apr_bps: 1,
            status: CustomerStatus::Active,
            balance: None,
            phone: 0,
        });
        let e = Event {
            ts,
            seq,
            key: seq,
            customer_id: "c".into(),
            event_id: 0,
            body,
        };
        (ts, e)
    }

    /// Drains a worker's channel: its pieces, then the end.
    fn drain(rx: &Receiver<Fed>) -> (Vec<Piece>, u64) {
        let mut pieces = Vec::new();
        loop {
            match rx.recv().expect("an end comes last") {
                Fed::Piece(p) => pieces.push(p),
                Fed::End { end } => return (pieces, end),
            }
        }
    }

    #[test]
    fn memory_pieces_deal_round_robin_cut_between_times_and_leave_out_events_after_the_end() {
        // Times 1,1,1,2,2,3,5,9 (9 is after the end); three workers; pieces of 1 event.
        let times = [1, 1, 1, 2, 2, 3, 5, 9];
        let events: Vec<_> = times
            .iter()
            .enumerate()
            .map(|(i, t)| event(*t, i as u64))
            .collect();
        let fed = from_memory(events, 8, 1, (0, 3, 3));
        let mut seen = Vec::new();
        for (w, rx) in fed.iter().enumerate() {
            let (pieces, end) = drain(rx);
            assert_eq!(end, 8);
            let mut last_upto = 0;
            for p in &pieces {
                assert!(p.upto > last_upto, "cuts move forward");
                assert!(p.events.iter().all(|(t, _)| *t < p.upto && *t >= last_upto));
                last_upto = p.upto;
                seen.extend(p.events.iter().map(|(_, e)| (w, e.seq)));
            }
            assert_eq!(last_upto, 9, "the last piece ends after the end");
        }
        seen.sort_unstable();
        let want: Vec<(usize, u64)> = (0..7u64).map(|i| ((i % 3) as usize, i)).collect();
        let mut want = want;
        want.sort_unstable();
        assert_eq!(seen, want);
    }

    #[test]
    fn snapshot_and_checkpoint_cuts_come_in_time_order_each_once() {
        // Checkpoints every 10; snapshots at 15 and 20 (20 is also a checkpoint boundary)
        // and 95, after the end; the run resumed at 12 drops a snapshot at 12.
        let mut c = Cuts::new(Some(10), &[12, 15, 20, 95], 12);
        c.fed(13);
        assert_eq!(c.due(14), None);
        c.fed(14);
        // An event at 31 after a gap: every cut up to it, in order; one checkpoint only.
        assert_eq!(c.due(31), Some((15, false, true)));
        assert_eq!(c.due(31), Some((20, true, true)));
        assert_eq!(c.due(31), None);
        c.fed(31);
        c.end(35);
        assert_eq!(c.due(36), None, "the boundary at 40 is after the end");
        assert_eq!(c.outside, vec![12, 95]);
        // A snapshot at or before the first event's time is outside the book.
        let mut c = Cuts::new(None, &[5, 8, 9], 0);
        c.first(8);
        assert_eq!(c.outside, vec![5, 8]);
        assert_eq!(c.due(8), None);
        assert_eq!(c.due(9), Some((9, false, true)));
    }

    #[test]
    fn periodic_snapshot_cuts_skip_before_the_first_event_and_after_the_end() {
        // Every 10 from 1 (cuts 1, 11, 21, ...), a listed one at 21 too; the first event at
        // 15: cuts 1 and 11 are before the book and skipped, not outside.
        let mut c = Cuts::new(None, &[21], 0).periodic(Some((1, 10)), 0);
        c.first(15);
        assert!(c.outside.is_empty());
        c.fed(15);
        assert_eq!(c.due(20), None);
        assert_eq!(
            c.due(45),
            Some((21, false, true)),
            "listed and periodic at 21: one cut"
        );
        assert_eq!(c.due(45), Some((31, false, true)));
        assert_eq!(c.due(45), Some((41, false, true)));
        assert_eq!(c.due(45), None);
        c.fed(45);
        c.end(55);
        assert_eq!(c.due(56), Some((51, false, true)));
        assert_eq!(c.due(56), None, "61 is after the end");
        assert!(c.outside.is_empty());
        // A run resumed at 25 starts with the cut after it.
        let mut c = Cuts::new(None, &[], 25).periodic(Some((1, 10)), 25);
        assert_eq!(c.due(40), Some((31, false, true)));
    }

    #[test]
    fn a_process_of_a_cluster_gets_only_its_own_workers_share() {
        let events: Vec<_> = (0..8).map(|i| event(10 + i, i)).collect();
        // Process 1 of 2, 2 workers each: global workers 2 and 3.
        let fed = from_memory(events, 100, 100, (2, 2, 4));
        let seqs: Vec<Vec<u64>> = fed
            .iter()
            .map(|rx| {
                drain(rx)
                    .0
                    .iter()
                    .flat_map(|p| p.events.iter().map(|(_, e)| e.seq))
                    .collect()
            })
            .collect();
        assert_eq!(seqs, vec![vec![2, 6], vec![3, 7]]);
    }
}
