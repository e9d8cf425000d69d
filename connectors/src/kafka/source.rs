//! Kafka source of one timely worker: its statically assigned partitions of the four input
//! topics, decoded into events with their timely time, per-partition watermarks, the
//! worker's frontier, backpressure and dead-lettering.
//!
//! ```text
//!  partitions ─▶ BaseConsumer (assign, no group) ─▶ decode ─┬─▶ (time, Event) ─▶ InputSession
//!                                                          └─▶ dead-letter topic
//!  watermark(p) = max ts seen in p − allowed lateness
//!  frontier     = min watermark over partitions that are not idle (monotone, tick-aligned)
//! ```
//!
//! # Assignment
//! The partitions of the four input topics are listed in stream order (customers, loans,
//! transactions, behaviors), then partition number; the `i`-th goes to global worker
//! `i % peers` ([`assign_partitions`]). Every process computes the same list from the
//! topics' metadata, so no consumer group and no rebalancing are involved.
//!
//! # Time
//! An event at `ts` enters at `ceil_tick(ts)`, or at the frontier if that is later (a late
//! event, counted). A partition with no record for `idle_timeout` stops holding the
//! frontier back; a partition that has never had a record holds it until the idle timeout
//! has passed since the source started. When every partition is idle the frontier follows
//! the wall clock minus the lateness if `wall_clock_advance` is on, else it moves to the
//! largest watermark of any partition. A record more than `max_future_skew` ahead of the
//! wall clock is rejected with `future_ts`. The frontier never moves back.
//!
//! # Order
//! `Event::seq = (stream << 56) | (partition << 40) | offset`: deterministic, independent of
//! the worker count, and for one customer's records of one stream (one partition, written
//! in file order) the same order as the file's line numbers.
//!
//! # Cost
//! Per record: one decode (no allocation for typical ids), a few comparisons and counter
//! adds. Rejected records allocate (their JSON and headers); metrics are added per poll.

use crate::error::ConnectorError;
use crate::kafka::metrics::KafkaMetrics;
use crate::kafka::probe::topic_partitions;
use crate::kafka::sink::TopicWriter;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use riskwatch_model::config::{StartOffset, TimeConfig};
use riskwatch_model::decode::{decode, rejected_json, Reject, RejectCode};
use riskwatch_model::event::{Event, Stream};
use riskwatch_model::time::ceil_to;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

/// Largest partition number `seq` can carry (16 bits).
pub const MAX_PARTITIONS: i32 = 1 << 16;
/// Largest offset `seq` can carry (40 bits).
pub const MAX_OFFSET: i64 = 1 << 40;

/// `seq` of a Kafka record: stream, partition, offset, so that sorting by it orders by
/// stream, then partition, then offset.
#[inline]
pub fn kafka_seq(stream: Stream, partition: i32, offset: i64) -> u64 {
    ((stream as u64) << 56)
        | ((partition as u64 & 0xFFFF) << 40)
        | (offset as u64 & (MAX_OFFSET as u64 - 1))
}

/// One partition of an input topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionId {
    /// The stream (which input topic).
    pub stream: Stream,
    /// The partition number.
    pub partition: i32,
}

/// The static assignment: the partitions of global worker `worker` of `peers`.
///
/// `counts[stream as usize]` is the partition count of the stream's topic. The list of all
/// partitions in (stream order, partition) order is dealt round-robin: the `i`-th partition
/// goes to worker `i % peers`. Deterministic and the same on every process.
pub fn assign_partitions(counts: &[i32; 4], worker: usize, peers: usize) -> Vec<PartitionId> {
    let peers = peers.max(1);
    Stream::ALL
        .iter()
        .flat_map(|&stream| {
            (0..counts[stream as usize]).map(move |partition| PartitionId { stream, partition })
        })
        .enumerate()
        .filter(|(i, _)| i % peers == worker)
        .map(|(_, p)| p)
        .collect()
}

/// Asks the brokers for the partition count of each of `topics`. A missing topic, or one
/// with more than [`MAX_PARTITIONS`] partitions, is a permanent error: topics are never
/// auto-created. Used for the input topics (`topics` indexed by `Stream as usize`) and,
/// at startup, to fail fast on a missing output topic.
pub fn partition_counts<const N: usize>(
    config: &ClientConfig,
    topics: [&str; N],
    timeout: Duration,
) -> Result<[i32; N], ConnectorError> {
    let consumer: BaseConsumer = config
        .create()
        .map_err(|e| ConnectorError::kafka("create consumer", e))?;
    let mut counts = [0; N];
    for (i, topic) in topics.iter().enumerate() {
        counts[i] = topic_partitions(&consumer, topic, timeout)?;
    }
    Ok(counts)
}

/// Consumer callbacks that keep the partitions' offset range as librdkafka learns it from
/// fetch responses (through its statistics, when `statistics.interval.ms` is set).
///
/// These stay right where a broker answers ListOffsets wrongly (tansu 0.6 reports a high
/// watermark of 1 for partitions holding thousands of records), so they are what decides
/// whether a partition has been consumed to its end.
#[derive(Debug, Default)]
pub struct EndOffsets {
    ranges: Mutex<HashMap<(String, i32), (i64, i64)>>,
}

impl EndOffsets {
    /// `(low, high)` watermarks of a partition as last fetched, if known.
    pub fn get(&self, topic: &str, partition: i32) -> Option<(i64, i64)> {
        self.ranges
            .lock()
            .expect("no panic holding the offsets")
            .get(&(topic.to_string(), partition))
            .copied()
    }
}

impl ClientContext for EndOffsets {
    fn stats(&self, statistics: Statistics) {
        let mut ranges = self.ranges.lock().expect("no panic holding the offsets");
        for (topic, t) in &statistics.topics {
            for (&partition, p) in &t.partitions {
                if partition >= 0 && p.hi_offset >= 0 {
                    ranges.insert(
                        (topic.clone(), partition),
                        (p.lo_offset.max(0), p.hi_offset),
                    );
                }
            }
        }
    }
}

impl ConsumerContext for EndOffsets {}

/// Statistics interval with which consumers report the offset ranges [`EndOffsets`] keeps.
pub const END_OFFSETS_INTERVAL_MS: u64 = 250;

/// Time settings of a source, in ms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceSettings {
    /// Tick.
    pub tick: u64,
    /// A partition's watermark is its largest event time minus this.
    pub allowed_lateness: u64,
    /// A partition with no record for this long is idle.
    pub idle_timeout: u64,
    /// When every partition is idle, follow the wall clock.
    pub wall_clock_advance: bool,
    /// Reject records more than this ahead of the wall clock.
    pub max_future_skew: u64,
    /// Events after this time are consumed (and move watermarks) but not fed.
    pub until: Option<u64>,
    /// Where partitions start.
    pub start: StartOffset,
}

impl SourceSettings {
    /// The settings of `[time]`, with `until` and `start`.
    pub fn new(time: &TimeConfig, until: Option<u64>, start: StartOffset) -> SourceSettings {
        SourceSettings {
            tick: time.tick.ms().max(1),
            allowed_lateness: time.allowed_lateness.ms(),
            idle_timeout: time.idle_timeout.ms(),
            wall_clock_advance: time.wall_clock_advance,
            max_future_skew: time.max_future_skew.ms(),
            until,
            start,
        }
    }
}

/// Exact counters of one source (summed over workers for the run summary).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Records consumed per stream, valid or not.
    pub records: [u64; 4],
    /// Events fed per stream.
    pub fed: [u64; 4],
    /// Rejected records by reason (`json`, `missing:amount`, `future_ts` …).
    pub rejected: BTreeMap<String, u64>,
    /// Events older than the frontier, fed at the frontier.
    pub late: u64,
    /// Events after `until`, consumed but not fed.
    pub beyond_until: u64,
    /// Transient consumer errors (librdkafka retries them).
    pub consumer_errors: u64,
    /// Records received again at an offset already consumed, and skipped.
    pub redelivered: u64,
    /// Times backpressure paused the partitions.
    pub pauses: u64,
}

impl SourceStats {
    /// Adds another source's counters.
    pub fn merge(&mut self, other: &SourceStats) {
        for i in 0..4 {
            self.records[i] += other.records[i];
            self.fed[i] += other.fed[i];
        }
        for (k, v) in &other.rejected {
            *self.rejected.entry(k.clone()).or_default() += v;
        }
        self.late += other.late;
        self.beyond_until += other.beyond_until;
        self.consumer_errors += other.consumer_errors;
        self.redelivered += other.redelivered;
        self.pauses += other.pauses;
    }
}

/// A source's position and watermarks as a checkpoint keeps them
/// ([`KafkaSource::checkpoint`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceCheckpoint {
    /// The frontier: every event fed after the checkpoint has a time at or after it.
    pub frontier: u64,
    /// Each assigned partition.
    pub parts: Vec<PartitionCheckpoint>,
}

/// One partition of a [`SourceCheckpoint`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartitionCheckpoint {
    /// The stream (topic).
    pub stream: Stream,
    /// The partition.
    pub partition: i32,
    /// The next offset to read; `None` before the first record.
    pub next_offset: Option<i64>,
    /// The largest valid event time received.
    pub max_ts: Option<u64>,
}

/// How many records before a checkpoint's position a resumed partition is read from (see
/// [`KafkaSource::new`]).
const RESUME_MARGIN: i64 = 50_000;

struct PartitionState {
    id: PartitionId,
    /// Offset after the last record received; `None` before the first.
    next_offset: Option<i64>,
    /// Resumed from a checkpoint and not yet read up to its position.
    resuming: bool,
    /// Largest valid event time received.
    max_ts: Option<u64>,
    /// Wall-clock ms of the last record (or of the start).
    last_seen: u64,
    batch_records: u64,
    batch_bytes: u64,
    records: prometheus::IntCounter,
    bytes: prometheus::IntCounter,
    watermark: prometheus::Gauge,
    next_offset_gauge: prometheus::IntGauge,
}

/// The source of one worker. See the module documentation for its semantics.
pub struct KafkaSource {
    consumer: BaseConsumer<EndOffsets>,
    topics: [String; 4],
    parts: Vec<PartitionState>,
    /// `lookup[stream][partition]` = index into `parts`, or `usize::MAX`.
    lookup: [Vec<usize>; 4],
    settings: SourceSettings,
    frontier: u64,
    paused_since: Option<u64>,
    started: u64,
    stats: SourceStats,
    batch_late: [u64; 4],
    dead_letter: Option<TopicWriter>,
    metrics: Option<WorkerMetrics>,
    last_warning: u64,
}

struct WorkerMetrics {
    all: KafkaMetrics,
    late: Vec<prometheus::IntCounter>,
    frontier: prometheus::Gauge,
    idle: prometheus::IntGauge,
    paused: prometheus::IntGauge,
    pauses: prometheus::IntCounter,
}

impl KafkaSource {
    /// Creates the consumer from `config` (see [`crate::kafka::config::consumer`]) and
    /// assigns `assignment` (topics named by `topics`, indexed by `Stream as usize`),
    /// starting at `settings.start`. Rejected records go to `dead_letter` if given (always
    /// counted). `now_ms` starts the idle clock.
    ///
    /// With `resume` (a [`KafkaSource::checkpoint`] of an earlier run), every partition the
    /// checkpoint has a position for starts there, with its watermark, and the frontier
    /// starts at the checkpoint's: the source reads on and times every later record as the
    /// uninterrupted source would have (idle clocks restart). A partition the checkpoint
    /// does not know (partitions were added) starts at `settings.start`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: &ClientConfig,
        topics: [&str; 4],
        assignment: Vec<PartitionId>,
        settings: SourceSettings,
        dead_letter: Option<TopicWriter>,
        metrics: Option<(&KafkaMetrics, usize)>,
        now_ms: u64,
        resume: Option<&SourceCheckpoint>,
    ) -> Result<KafkaSource, ConnectorError> {
        let mut config = config.clone();
        config.set(
            "statistics.interval.ms",
            END_OFFSETS_INTERVAL_MS.to_string(),
        );
        let consumer: BaseConsumer<EndOffsets> = config
            .create_with_context(EndOffsets::default())
            .map_err(|e| ConnectorError::kafka("create consumer", e))?;
        let start = match settings.start {
            StartOffset::Earliest => Offset::Beginning,
            StartOffset::Latest => Offset::End,
        };
        let mut tpl = TopicPartitionList::new();
        let mut lookup: [Vec<usize>; 4] = Default::default();
        let mut parts = Vec::with_capacity(assignment.len());
        for (i, id) in assignment.iter().enumerate() {
            let topic = topics[id.stream as usize];
            let saved = resume.and_then(|r| {
                r.parts
                    .iter()
                    .find(|c| c.stream == id.stream && c.partition == id.partition)
            });
            // Resume a margin before the position and drop what comes before it as
            // redelivered: tansu 0.6 answers a fetch from inside a record batch with the
            // batch after it, which would skip records.
            let offset = saved.and_then(|c| c.next_offset).map_or(start, |o| {
                Offset::Offset(o.saturating_sub(RESUME_MARGIN).max(0))
            });
            tpl.add_partition_offset(topic, id.partition, offset)
                .map_err(|e| ConnectorError::kafka("assign", e))?;
            let l = &mut lookup[id.stream as usize];
            if l.len() <= id.partition as usize {
                l.resize(id.partition as usize + 1, usize::MAX);
            }
            l[id.partition as usize] = i;
            let p = partition_label(id.partition);
            let (records, bytes, watermark, next_offset_gauge) = match metrics {
                Some((m, _)) => (
                    m.records.with_label_values(&[id.stream.name(), &p]),
                    m.bytes.with_label_values(&[id.stream.name()]),
                    m.watermark.with_label_values(&[id.stream.name(), &p]),
                    m.next_offset.with_label_values(&[id.stream.name(), &p]),
                ),
                None => detached_partition_metrics(),
            };
            parts.push(PartitionState {
                id: *id,
                next_offset: saved.and_then(|c| c.next_offset),
                max_ts: saved.and_then(|c| c.max_ts),
                resuming: saved.is_some_and(|c| c.next_offset.is_some()),
                last_seen: now_ms,
                batch_records: 0,
                batch_bytes: 0,
                records,
                bytes,
                watermark,
                next_offset_gauge,
            });
        }
        if !assignment.is_empty() {
            consumer
                .assign(&tpl)
                .map_err(|e| ConnectorError::kafka("assign", e))?;
        }
        let metrics = metrics.map(|(m, worker)| {
            let w = worker.to_string();
            WorkerMetrics {
                all: m.clone(),
                late: Stream::ALL
                    .iter()
                    .map(|s| m.late.with_label_values(&[s.name()]))
                    .collect(),
                frontier: m.frontier.with_label_values(&[&w]),
                idle: m.idle.with_label_values(&[&w]),
                paused: m.paused.with_label_values(&[&w]),
                pauses: m.pauses.with_label_values(&[&w]),
            }
        });
        Ok(KafkaSource {
            consumer,
            topics: topics.map(str::to_string),
            parts,
            lookup,
            settings,
            frontier: resume.map_or(0, |r| r.frontier),
            paused_since: None,
            started: now_ms,
            stats: SourceStats::default(),
            batch_late: [0; 4],
            dead_letter,
            metrics,
            last_warning: 0,
        })
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> Vec<PartitionId> {
        self.parts.iter().map(|p| p.id).collect()
    }

    /// Takes up to `max` records (waiting at most `wait` for the first), decodes them and
    /// appends the valid ones to `out` as `(time, event)`, every time at or after
    /// [`KafkaSource::frontier`]. Rejected records go to the dead-letter topic. Returns the
    /// number of records taken (valid or not). Transient consumer errors are counted and
    /// logged at most every 10 s; a fatal one is returned.
    pub fn poll(
        &mut self,
        now_ms: u64,
        wait: Duration,
        max: usize,
        out: &mut Vec<(u64, Event)>,
    ) -> Result<usize, ConnectorError> {
        if self.paused_since.is_some() {
            return Ok(0);
        }
        let mut taken = 0;
        let future_limit = now_ms.saturating_add(self.settings.max_future_skew);
        while taken < max {
            let timeout = if taken == 0 { wait } else { Duration::ZERO };
            let msg = match self.consumer.poll(timeout) {
                None => break,
                Some(Ok(m)) => m,
                Some(Err(KafkaError::PartitionEOF(_))) => continue,
                Some(Err(e @ KafkaError::MessageConsumptionFatal(_))) => {
                    return Err(ConnectorError::kafka("consume", e));
                }
                Some(Err(e)) => {
                    self.stats.consumer_errors += 1;
                    if now_ms >= self.last_warning + 10_000 {
                        self.last_warning = now_ms;
                        tracing::warn!(error = %e, errors = self.stats.consumer_errors,
                            "kafka consumer error (librdkafka retries)");
                    }
                    continue;
                }
            };
            let Some(stream) = self.stream_of(msg.topic()) else {
                continue;
            };
            let partition = msg.partition();
            let index = self.lookup[stream as usize]
                .get(partition as usize)
                .copied()
                .unwrap_or(usize::MAX);
            if index == usize::MAX {
                continue;
            }
            taken += 1;
            let offset = msg.offset();
            let payload = msg.payload().unwrap_or(&[]);
            let part = &mut self.parts[index];
            if part.resuming {
                match part.next_offset {
                    Some(next) if offset > next => {
                        // Even the margin fell after the position: read the partition from
                        // its start (what was received before is dropped below).
                        tracing::warn!(
                            stream = stream.name(),
                            partition,
                            offset,
                            next,
                            "resumed past the checkpoint's position: re-reading the partition"
                        );
                        let topic = self.topics[stream as usize].clone();
                        self.consumer
                            .seek(
                                &topic,
                                partition,
                                Offset::Beginning,
                                Duration::from_secs(10),
                            )
                            .map_err(|e| ConnectorError::kafka("seek", e))?;
                        part.resuming = false;
                        continue;
                    }
                    Some(next) if offset + 1 >= next => part.resuming = false,
                    _ => {}
                }
            }
            if part.next_offset.is_some_and(|next| offset < next) {
                // Received before (a broker or client redelivery): fed once only.
                self.stats.redelivered += 1;
                tracing::debug!(stream = stream.name(), partition, offset, next = ?part.next_offset, "redelivered");
                continue;
            }
            if part.next_offset.is_some_and(|next| offset > next) {
                tracing::debug!(stream = stream.name(), partition, offset, next = ?part.next_offset, "gap");
            }
            part.next_offset = Some(offset + 1);
            part.last_seen = now_ms;
            part.batch_records += 1;
            part.batch_bytes += payload.len() as u64;
            self.stats.records[stream as usize] += 1;
            let seq = kafka_seq(stream, partition, offset);
            let event = match decode(stream, payload, seq) {
                Ok(e) if e.ts > future_limit => Err(Reject::new(RejectCode::FutureTs)),
                other => other,
            };
            match event {
                Ok(event) => {
                    part.max_ts = Some(part.max_ts.map_or(event.ts, |m| m.max(event.ts)));
                    if self.settings.until.is_some_and(|u| event.ts > u) {
                        self.stats.beyond_until += 1;
                        continue;
                    }
                    let natural = ceil_to(event.ts, self.settings.tick);
                    if natural < self.frontier {
                        self.stats.late += 1;
                        self.batch_late[stream as usize] += 1;
                    }
                    self.stats.fed[stream as usize] += 1;
                    out.push((natural.max(self.frontier), event));
                }
                Err(reject) => {
                    let key = msg.key().unwrap_or(&[]).to_vec();
                    let payload = payload.to_vec();
                    drop(msg);
                    self.reject(stream, partition, offset, &key, &payload, reject)?;
                }
            }
        }
        self.sync_metrics();
        Ok(taken)
    }

    fn stream_of(&self, topic: &str) -> Option<Stream> {
        Stream::ALL
            .into_iter()
            .find(|s| self.topics[*s as usize] == topic)
    }

    fn reject(
        &mut self,
        stream: Stream,
        partition: i32,
        offset: i64,
        key: &[u8],
        payload: &[u8],
        reason: Reject,
    ) -> Result<(), ConnectorError> {
        let reason_text = reason.to_string();
        if let Some(m) = &self.metrics {
            m.all
                .rejected
                .with_label_values(&[stream.name(), &reason_text])
                .inc();
        }
        if let Some(dl) = &mut self.dead_letter {
            let json = rejected_json(
                stream,
                &reason,
                payload,
                Some(offset.max(0) as u64),
                Some(partition),
            );
            let p = partition.to_string();
            let o = offset.to_string();
            dl.send(
                key,
                json.as_bytes(),
                &[
                    ("reason", reason_text.as_bytes()),
                    ("source", stream.name().as_bytes()),
                    ("partition", p.as_bytes()),
                    ("offset", o.as_bytes()),
                ],
            )?;
        }
        *self.stats.rejected.entry(reason_text).or_default() += 1;
        Ok(())
    }

    fn sync_metrics(&mut self) {
        let Some(m) = &self.metrics else {
            for p in &mut self.parts {
                p.batch_records = 0;
                p.batch_bytes = 0;
            }
            return;
        };
        for p in &mut self.parts {
            if p.batch_records > 0 {
                p.records.inc_by(std::mem::take(&mut p.batch_records));
                p.bytes.inc_by(std::mem::take(&mut p.batch_bytes));
                if let Some(o) = p.next_offset {
                    p.next_offset_gauge.set(o);
                }
                if let Some(ts) = p.max_ts {
                    let wm = ts.saturating_sub(self.settings.allowed_lateness);
                    p.watermark.set(wm as f64 / 1000.0);
                }
            }
        }
        for (i, n) in self.batch_late.iter_mut().enumerate() {
            if *n > 0 {
                m.late[i].inc_by(std::mem::take(n));
            }
        }
    }

    /// Whether partition `index` is idle at `now_ms`.
    fn idle(&self, p: &PartitionState, now_ms: u64) -> bool {
        // While paused, records cannot arrive, so pausing does not make partitions idle.
        let now = match self.paused_since {
            Some(since) => since.min(now_ms),
            None => now_ms,
        };
        now.saturating_sub(p.last_seen) >= self.settings.idle_timeout
    }

    /// Recomputes the frontier at `now_ms` and returns it: tick-aligned, monotone, the
    /// time every later event is fed at or after. Feed the input up to it.
    pub fn advance(&mut self, now_ms: u64) -> u64 {
        let lateness = self.settings.allowed_lateness;
        let mut active_min: Option<u64> = None;
        let mut any_active = false;
        let mut max_watermark: Option<u64> = None;
        let mut idle = 0;
        for p in &self.parts {
            let wm = p.max_ts.map(|t| t.saturating_sub(lateness));
            if let Some(w) = wm {
                max_watermark = Some(max_watermark.map_or(w, |m| m.max(w)));
            }
            if self.idle(p, now_ms) {
                idle += 1;
                continue;
            }
            any_active = true;
            // A partition without records yet holds the frontier where it is.
            let w = wm.unwrap_or(0);
            active_min = Some(active_min.map_or(w, |m| m.min(w)));
        }
        let candidate = if any_active {
            active_min.unwrap_or(0)
        } else if self.parts.is_empty() {
            0
        } else if self.settings.wall_clock_advance {
            now_ms.saturating_sub(lateness)
        } else {
            max_watermark.unwrap_or(0)
        };
        let candidate = ceil_to(candidate, self.settings.tick);
        if candidate > self.frontier {
            self.frontier = candidate;
        }
        if let Some(m) = &self.metrics {
            m.frontier.set(self.frontier as f64 / 1000.0);
            m.idle.set(idle);
        }
        self.frontier
    }

    /// The current frontier (ms, tick-aligned): every event fed from now on has a time at
    /// or after it.
    pub fn frontier(&self) -> u64 {
        self.frontier
    }

    /// The watermark of a partition (largest event time minus lateness), if it had a valid
    /// record.
    pub fn watermark(&self, id: PartitionId) -> Option<u64> {
        self.part(id)
            .and_then(|p| p.max_ts)
            .map(|t| t.saturating_sub(self.settings.allowed_lateness))
    }

    /// Whether a partition is idle at `now_ms` (no record for the idle timeout).
    pub fn is_idle(&self, id: PartitionId, now_ms: u64) -> bool {
        self.part(id).is_some_and(|p| self.idle(p, now_ms))
    }

    fn part(&self, id: PartitionId) -> Option<&PartitionState> {
        self.lookup[id.stream as usize]
            .get(id.partition as usize)
            .filter(|&&i| i != usize::MAX)
            .map(|&i| &self.parts[i])
    }

    /// The largest valid event time received on any partition.
    pub fn max_ts(&self) -> Option<u64> {
        self.parts.iter().filter_map(|p| p.max_ts).max()
    }

    /// Pauses the source (backpressure): [`KafkaSource::poll`] takes nothing until
    /// [`KafkaSource::resume`]. librdkafka keeps fetching only until its bounded prefetch
    /// queue is full (`queued.max.messages.kbytes`, `queued.min.messages`), so memory stays
    /// bounded and the brokers stop sending. Idle clocks stop while paused.
    ///
    /// The consumer's own `pause` is deliberately not used: it purges the prefetched
    /// records but leaves the fetch position after them, and the rewinding seek then asks
    /// for an offset inside a record batch, which some brokers answer from the next batch
    /// (tansu 0.6 does), losing records. Not taking records avoids any re-fetch.
    pub fn pause(&mut self, now_ms: u64) {
        if self.paused_since.is_some() || self.parts.is_empty() {
            return;
        }
        self.paused_since = Some(now_ms);
        self.stats.pauses += 1;
        if let Some(m) = &self.metrics {
            m.paused.set(1);
            m.pauses.inc();
        }
    }

    /// Resumes after [`KafkaSource::pause`]; the paused time does not count towards
    /// idleness.
    pub fn resume(&mut self, now_ms: u64) {
        let Some(since) = self.paused_since.take() else {
            return;
        };
        let paused = now_ms.saturating_sub(since);
        for p in &mut self.parts {
            p.last_seen = p.last_seen.saturating_add(paused).min(now_ms);
        }
        if let Some(m) = &self.metrics {
            m.paused.set(0);
        }
    }

    /// Whether the partitions are paused.
    pub fn is_paused(&self) -> bool {
        self.paused_since.is_some()
    }

    /// What a checkpoint keeps of this source: the frontier, and each partition's position
    /// and largest event time (its watermark). With [`KafkaSource::restore`], a restarted
    /// source reads on from the positions and times every later record as the uninterrupted
    /// source would have (idle clocks restart).
    pub fn checkpoint(&self) -> SourceCheckpoint {
        SourceCheckpoint {
            frontier: self.frontier,
            parts: self
                .parts
                .iter()
                .map(|p| PartitionCheckpoint {
                    stream: p.id.stream,
                    partition: p.id.partition,
                    next_offset: p.next_offset,
                    max_ts: p.max_ts,
                })
                .collect(),
        }
    }

    /// The consumed positions as a partition list (partitions without one left out).
    fn consumed(&self) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for p in &self.parts {
            if let Some(o) = p.next_offset {
                let topic = &self.topics[p.id.stream as usize];
                let _ = tpl.add_partition_offset(topic, p.id.partition, Offset::Offset(o));
            }
        }
        tpl
    }

    /// The consumed position of every assigned partition: `(topic, partition, next
    /// offset)`, the offset after the last record received (`-1` before the first). This
    /// is what a checkpoint records.
    pub fn positions(&self) -> Vec<(String, i32, i64)> {
        self.parts
            .iter()
            .map(|p| {
                (
                    self.topics[p.id.stream as usize].clone(),
                    p.id.partition,
                    p.next_offset.unwrap_or(-1),
                )
            })
            .collect()
    }

    /// Whether every assigned partition has been consumed to its end: its position is at
    /// or past the high watermark of the latest fetch response (see [`EndOffsets`]). A
    /// partition no fetch response has described yet is not at its end. Brokers'
    /// ListOffsets answers are not used: tansu 0.6 gets them wrong. Call it when nothing
    /// arrived for longer than [`END_OFFSETS_INTERVAL_MS`] and the source is not paused.
    pub fn caught_up(&self) -> bool {
        self.parts.iter().all(|p| {
            let topic = &self.topics[p.id.stream as usize];
            let range = self.consumer.context().get(topic, p.id.partition);
            let at_end = match (range, p.next_offset) {
                (None, _) => false,
                (Some((_, high)), Some(next)) => next >= high,
                (Some((low, high)), None) => {
                    high <= low || self.settings.start == StartOffset::Latest
                }
            };
            tracing::debug!(
                topic = topic.as_str(),
                partition = p.id.partition,
                range = ?range,
                next = ?p.next_offset,
                at_end,
                "end offsets"
            );
            at_end
        })
    }

    /// Commits the consumed positions to the configured consumer group (lag monitoring).
    pub fn commit(&self) -> Result<(), ConnectorError> {
        let tpl = self.consumed();
        if tpl.count() == 0 {
            return Ok(());
        }
        self.consumer
            .commit(&tpl, CommitMode::Sync)
            .map_err(|e| ConnectorError::kafka("commit offsets", e))
    }

    /// `(stream, partition, records behind the high watermark)` of each assigned partition
    /// whose high watermark is known (from the consumer's statistics) and that has a
    /// position. One lock and one `Vec` per call: call it per second, not per record.
    pub fn lags(&self) -> Vec<(Stream, i32, i64)> {
        self.parts
            .iter()
            .filter_map(|p| {
                let topic = &self.topics[p.id.stream as usize];
                let (_, high) = self.consumer.context().get(topic, p.id.partition)?;
                let next = p.next_offset?;
                Some((p.id.stream, p.id.partition, (high - next).max(0)))
            })
            .collect()
    }

    /// The source's counters.
    pub fn stats(&self) -> &SourceStats {
        &self.stats
    }

    /// Milliseconds since the source started (by the clock passed to it).
    pub fn age(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.started)
    }
}

fn partition_label(p: i32) -> String {
    p.to_string()
}

fn detached_partition_metrics() -> (
    prometheus::IntCounter,
    prometheus::IntCounter,
    prometheus::Gauge,
    prometheus::IntGauge,
) {
    (
        prometheus::IntCounter::new("detached", "not registered").expect("valid name"),
        prometheus::IntCounter::new("detached", "not registered").expect("valid name"),
        prometheus::Gauge::new("detached", "not registered").expect("valid name"),
        prometheus::IntGauge::new("detached", "not registered").expect("valid name"),
    )
}
