//! The event-time merge of the four input streams, in bounded memory.
//!
//! ```text
//!  file ─► LineChunks ─► look-ahead (future_ts) ─► reorder heap ─┐
//!  file ─► …                                                     ├─► k-way merge ─► (time, event)
//!  file ─► …                                                     │    (late, frontier)
//!  file ─► …                                                    ─┘
//! ```
//!
//! Each stream is read in chunks ([`LineChunks`]) and passes two bounded stages before the
//! merge; every rule looks only at records within [`LOOK_AHEAD`] lines of the one judged, so
//! one bad record can change how at most itself is judged:
//!
//! 1. **`future_ts`**: a record is rejected when most of the next [`LOOK_AHEAD`] records
//!    of its own file (at least [`MIN_FOLLOWERS`] of them) are more than
//!    `max_future_skew` older than it: its file says that the clock has not got there.
//!    Near the end of a file, where fewer than [`MIN_FOLLOWERS`] records follow and one of
//!    them is that much older, or for the last record, the record is instead compared with
//!    the frontier when it is merged. A stray old record (`ts: 0`) among the followers is
//!    one vote out of many, so it never gets its neighbours rejected.
//! 2. **Reordering**: each stream keeps a heap of [`REORDER`] records and gives the
//!    earliest to the merge, so records up to that many lines out of order in their file
//!    are put back in time order. A record that jumped ahead waits in the heap without
//!    holding back the records behind it.
//! 3. **The merge** takes the earliest head by `(ts, seq)` (ties: customers, loans,
//!    transactions, behaviors, then line). The frontier is the largest `ts` merged; a
//!    record older than it (further out of order than the heap absorbs) is late and enters
//!    at the frontier's tick.
//!
//! The result depends only on the input bytes, never on the number of threads or the
//! chunk size.

use super::lines::{Chunk, LineChunks};
use riskwatch_model::decode::{rejected_json, Reject, RejectCode};
use riskwatch_model::event::{Event, Stream};
use riskwatch_model::time::ceil_to;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

/// How many of the following records of its file judge whether a record is `future_ts`.
pub const LOOK_AHEAD: usize = 64;
/// Fewer followers than this, one of them far older: judged against the frontier instead.
pub const MIN_FOLLOWERS: usize = 8;
/// Records per stream held to put small disorder back in time order.
pub const REORDER: usize = 64;
/// Lines a chunk (read and decoded at once).
pub const CHUNK_LINES: usize = 16_384;

/// Options of the merge.
#[derive(Clone, Copy, Debug)]
pub struct MergeOptions {
    /// Tick in ms.
    pub tick: u64,
    /// Max skew ahead of the frontier, in ms.
    pub max_future_skew: u64,
    /// Ignore events with `ts` after this (`--until`).
    pub until: Option<u64>,
    /// Decode threads.
    pub threads: usize,
}

/// Counters of a merge.
#[derive(Clone, Debug, Default)]
pub struct MergeStats {
    /// Records read per stream (valid or not), indexed by `Stream as usize`.
    pub read: [u64; 4],
    /// Events that entered late (after the frontier passed their tick).
    pub late: u64,
    /// The largest event `ts` merged (0 when none).
    pub max_ts: u64,
    /// Rejected counts by reason (`json`, `missing:amount`, …, `future_ts`).
    pub rejected_by_reason: BTreeMap<String, u64>,
}

/// A record on its way to the merge; `raw` is kept only when the frontier must judge it.
struct Held {
    event: Event,
    raw: Option<Box<[u8]>>,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.event.ts, self.event.seq).cmp(&(other.event.ts, other.event.seq))
    }
}

/// What the look-ahead decided about a record.
enum Verdict {
    Keep(Held),
    Reject(Reject, Box<[u8]>, u64),
}

/// One stream: its chunks, the look-ahead window over them, and the reorder heap.
struct StreamState {
    stream: Stream,
    chunks: Option<LineChunks>,
    /// The reader has reached the end of the stream.
    done: bool,
    /// Loaded chunks; the window starts at line `cursor` of the first.
    loaded: VecDeque<Chunk>,
    cursor: usize,
    /// Index (over all lines loaded) of the window's first line.
    front: u64,
    /// Lines loaded so far.
    loaded_lines: u64,
    /// `(index, ts)` of decoded lines after the front, `ts` increasing: the front is the
    /// smallest `ts` among them.
    mins: VecDeque<(u64, u64)>,
    heap: BinaryHeap<Reverse<Held>>,
}

impl StreamState {
    fn new(stream: Stream, chunks: Option<LineChunks>) -> StreamState {
        StreamState {
            stream,
            done: chunks.is_none(),
            chunks,
            loaded: VecDeque::new(),
            cursor: 0,
            front: 0,
            loaded_lines: 0,
            mins: VecDeque::new(),
            heap: BinaryHeap::new(),
        }
    }

    fn window_len(&self) -> usize {
        let total: usize = self.loaded.iter().map(|c| c.lines.len()).sum();
        total - self.cursor
    }

    /// Loads chunks until the window holds the front and [`LOOK_AHEAD`] more lines, or the
    /// stream ends.
    fn fill_window(&mut self) -> std::io::Result<()> {
        while self.window_len() <= LOOK_AHEAD {
            let Some(reader) = self.chunks.as_mut().filter(|_| !self.done) else {
                return Ok(());
            };
            match reader.next_chunk()? {
                Some(chunk) => {
                    for line in &chunk.lines {
                        let index = self.loaded_lines;
                        self.loaded_lines += 1;
                        if let Ok(e) = &line.decoded {
                            while self.mins.back().is_some_and(|&(_, ts)| ts >= e.ts) {
                                self.mins.pop_back();
                            }
                            self.mins.push_back((index, e.ts));
                        }
                    }
                    self.loaded.push_back(chunk);
                }
                None => self.done = true,
            }
        }
        Ok(())
    }

    /// Takes the window's first line and judges it.
    fn judge_front(&mut self, skew: u64) -> Option<Verdict> {
        while self
            .loaded
            .front()
            .is_some_and(|c| self.cursor >= c.lines.len())
        {
            self.loaded.pop_front();
            self.cursor = 0;
        }
        let index = self.front;
        let chunk = self.loaded.front()?;
        let line = &chunk.lines[self.cursor];
        if self.mins.front().is_some_and(|&(i, _)| i == index) {
            self.mins.pop_front();
        }
        let raw = || chunk.raw(line).to_vec().into_boxed_slice();
        let verdict = match &line.decoded {
            Err(reason) => Verdict::Reject(*reason, raw(), line.line_no),
            Ok(event) => {
                let ts = event.ts;
                if self
                    .mins
                    .front()
                    .is_some_and(|&(_, min)| ts <= min.saturating_add(skew))
                {
                    // Every follower is at most `skew` older: the common case.
                    Verdict::Keep(Held {
                        event: event.clone(),
                        raw: None,
                    })
                } else {
                    let (followers, older) = self.count_followers(ts, skew);
                    if followers >= MIN_FOLLOWERS && 2 * older > followers {
                        Verdict::Reject(Reject::new(RejectCode::FutureTs), raw(), line.line_no)
                    } else {
                        let judge_at_merge = followers < MIN_FOLLOWERS;
                        Verdict::Keep(Held {
                            event: event.clone(),
                            raw: judge_at_merge.then(raw),
                        })
                    }
                }
            }
        };
        self.cursor += 1;
        self.front += 1;
        Some(verdict)
    }

    /// Of the next [`LOOK_AHEAD`] lines after the front, how many decoded, and how many of
    /// those are more than `skew` older than `ts`.
    fn count_followers(&self, ts: u64, skew: u64) -> (usize, usize) {
        let (mut followers, mut older) = (0, 0);
        let lines = self
            .loaded
            .iter()
            .enumerate()
            .flat_map(|(i, c)| c.lines[if i == 0 { self.cursor } else { 0 }..].iter())
            .skip(1)
            .take(LOOK_AHEAD);
        for line in lines {
            if let Ok(e) = &line.decoded {
                followers += 1;
                if e.ts.saturating_add(skew) < ts {
                    older += 1;
                }
            }
        }
        (followers, older)
    }
}

/// Merges the four streams into `(time, event)` in non-decreasing time, one at a time.
pub struct Merger {
    streams: Vec<StreamState>,
    opts: MergeOptions,
    frontier: Option<u64>,
    stats: MergeStats,
    rejected: Vec<String>,
}

impl Merger {
    /// A merge over the readers of each stream (indexed by `Stream as usize`; `None` for a
    /// stream that is not read).
    pub fn new(readers: [Option<LineChunks>; 4], opts: MergeOptions) -> Merger {
        let streams = readers
            .into_iter()
            .zip(Stream::ALL)
            .map(|(r, s)| StreamState::new(s, r))
            .collect();
        Merger {
            streams,
            opts,
            frontier: None,
            stats: MergeStats::default(),
            rejected: Vec::new(),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> &MergeStats {
        &self.stats
    }

    /// Bytes read so far, over all streams.
    pub fn bytes(&self) -> u64 {
        self.streams
            .iter()
            .filter_map(|s| s.chunks.as_ref().map(LineChunks::bytes))
            .sum()
    }

    /// Takes the rejected records found so far, as rejected.schema.json lines in the
    /// order they were found.
    pub fn take_rejected(&mut self) -> Vec<String> {
        std::mem::take(&mut self.rejected)
    }

    /// The rejected records found so far, without taking them.
    pub fn rejected(&self) -> &[String] {
        &self.rejected
    }

    /// The next event and its timely time, or `None` when every stream is exhausted. An
    /// I/O error is returned with the stream whose file failed.
    pub fn next_event(&mut self) -> Result<Option<(u64, Event)>, (Stream, std::io::Error)> {
        loop {
            for si in 0..self.streams.len() {
                self.fill_heap(si)?;
            }
            let best = self
                .streams
                .iter()
                .enumerate()
                .filter_map(|(si, s)| s.heap.peek().map(|Reverse(h)| (h, si)))
                .min()
                .map(|(_, si)| si);
            let Some(si) = best else { return Ok(None) };
            let Reverse(held) = self.streams[si].heap.pop().expect("peeked");
            let event = held.event;
            if self.opts.until.is_some_and(|until| event.ts > until) {
                continue;
            }
            if let (Some(raw), Some(f)) = (&held.raw, self.frontier) {
                if event.ts > f.saturating_add(self.opts.max_future_skew) {
                    let line = event.seq & ((1 << 48) - 1);
                    self.reject(
                        Stream::ALL[si],
                        Reject::new(RejectCode::FutureTs),
                        raw,
                        line,
                    );
                    continue;
                }
            }
            let natural = ceil_to(event.ts, self.opts.tick);
            let time = match self.frontier {
                Some(f) => {
                    let ft = ceil_to(f, self.opts.tick);
                    if natural < ft {
                        self.stats.late += 1;
                    }
                    natural.max(ft)
                }
                None => natural,
            };
            self.frontier = Some(self.frontier.map_or(event.ts, |f| f.max(event.ts)));
            self.stats.max_ts = self.stats.max_ts.max(event.ts);
            return Ok(Some((time, event)));
        }
    }

    /// Moves judged records of stream `si` into its heap until it holds [`REORDER`] or the
    /// stream is exhausted.
    fn fill_heap(&mut self, si: usize) -> Result<(), (Stream, std::io::Error)> {
        let skew = self.opts.max_future_skew;
        loop {
            let s = &mut self.streams[si];
            if s.heap.len() >= REORDER.max(1) {
                return Ok(());
            }
            if let Err(e) = s.fill_window() {
                return Err((s.stream, e));
            }
            let Some(verdict) = s.judge_front(skew) else {
                return Ok(());
            };
            self.stats.read[si] += 1;
            match verdict {
                Verdict::Keep(held) => s.heap.push(Reverse(held)),
                Verdict::Reject(reason, raw, line) => {
                    self.reject(Stream::ALL[si], reason, &raw, line)
                }
            }
        }
    }

    fn reject(&mut self, stream: Stream, reason: Reject, raw: &[u8], line: u64) {
        self.rejected
            .push(rejected_json(stream, &reason, raw, Some(line), None));
        *self
            .stats
            .rejected_by_reason
            .entry(reason.to_string())
            .or_default() += 1;
    }
}
