//! The dispatcher: reads the outbox, sends each pending event to its endpoint, and records
//! the outcome (delivered, dead-lettered) back in the outbox.
//!
//! ```text
//!            ┌──────────── one worker per endpoint ─────────────────────────────┐
//!  Outbox ──▶│ refill: pending_for(endpoint) ─▶ lanes by order key (seq order)  │
//!   ▲   ▲    │   lane head ─▶ attempt: [backoff sleep] ─▶ permit ─▶ sign ─▶ POST │
//!   │   │    │   2xx ─▶ acks ──────────────── delivered_all (one batch write) ──┼──▶ Delivered
//!   │   │    │   retry ─▶ same lane head, later   · permanent / spent ─▶ dead ───┼──▶ DeadLetters
//!   │   └────┴──────────────────────────────────────────────────────────────────┘
//!  stage (runtime, in the checkpoint batch) ── notify() ──▶ wake
//! ```
//!
//! Ordering: events with the same order key (a case) form a lane; only a lane's head is
//! ever in flight, so a case's events reach the endpoint in `seq` order, while other lanes
//! proceed. A lane whose head waits for its backoff holds no connection permit, so a
//! slow or failing case never holds the others back. A dead-lettered event leaves a gap:
//! the lane goes on with the next seq (the receiver kit holds later events until
//! `riskwatch redeliver` fills it).
//!
//! Delivery is at least once: a 2xx is recorded after it arrives, so a crash in between
//! sends the event again after a restart, with the same `webhook-id` and body.
//! Attempt counts live in memory: a restart gives pending events a fresh schedule.

use super::config::Endpoint;
use super::metrics::DeliveryCounters;
use super::retry::{Backoff, Outcome};
use crate::error::ConnectorError;
use bytes::Bytes;
use riskwatch_state::outbox::{Outbox, OutboxEntry};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;

/// At most this many events of one endpoint are held in memory (scheduled) at once; the
/// outbox is read again as they are done.
pub const MAX_SCHEDULED: usize = 4096;

/// A long-running dispatcher looks at the outbox at least this often without a wake-up.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Sends the outbox's pending events to their endpoints.
pub struct Dispatcher {
    outbox: Outbox,
    endpoints: Vec<Arc<Endpoint>>,
    counters: Arc<DeliveryCounters>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("endpoints", &self.endpoints.len())
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// A dispatcher of `outbox` to `endpoints`. Pending events of endpoints not listed
    /// (removed from the config) stay in the outbox untouched.
    pub fn new(outbox: Outbox, endpoints: Vec<Endpoint>) -> Dispatcher {
        let counters = Arc::new(DeliveryCounters::new(
            endpoints.iter().map(|e| e.config.name.as_str()),
        ));
        Dispatcher {
            outbox,
            endpoints: endpoints.into_iter().map(Arc::new).collect(),
            counters,
        }
    }

    /// The delivery counters, shared with the workers.
    pub fn counters(&self) -> Arc<DeliveryCounters> {
        self.counters.clone()
    }

    fn workers(&self) -> Vec<Worker> {
        self.endpoints
            .iter()
            .enumerate()
            .map(|(index, endpoint)| Worker::new(index, endpoint.clone(), self))
            .collect()
    }

    /// Delivers until no endpoint has a pending event left (each delivered or dead):
    /// tests, tools and batch runs. Runs on the caller's tokio runtime.
    pub async fn run_until_drained(&self) -> Result<(), ConnectorError> {
        let mut set = JoinSet::new();
        for worker in self.workers() {
            set.spawn(worker.run(None));
        }
        join_all(set).await
    }

    /// Starts the dispatcher on a thread of its own (a current-thread tokio runtime named
    /// `webhooks`), delivering until [`DispatcherHandle::shutdown`]. Call
    /// [`DispatcherHandle::notify`] after each checkpoint that staged events.
    pub fn spawn(self) -> Result<DispatcherHandle, ConnectorError> {
        let (stop, stopped) = watch::channel(false);
        let workers = self.workers();
        let wakes: Vec<Arc<Notify>> = workers.iter().map(|w| w.wake.clone()).collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| io_error("webhook runtime", e))?;
        let thread = std::thread::Builder::new()
            .name("webhooks".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let mut set = JoinSet::new();
                    for worker in workers {
                        set.spawn(worker.run(Some(stopped.clone())));
                    }
                    join_all(set).await
                })
            })
            .map_err(|e| io_error("webhook thread", e))?;
        Ok(DispatcherHandle {
            wakes,
            stop,
            thread: Some(thread),
            counters: self.counters,
        })
    }
}

fn io_error(what: &str, source: std::io::Error) -> ConnectorError {
    ConnectorError::Io {
        path: what.to_string(),
        source,
    }
}

async fn join_all(mut set: JoinSet<Result<(), ConnectorError>>) -> Result<(), ConnectorError> {
    let mut first = Ok(());
    while let Some(done) = set.join_next().await {
        let result = match done {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Ok(()),
        };
        if let (Err(e), Ok(())) = (result, &first) {
            set.abort_all();
            first = Err(e);
        }
    }
    first
}

/// A running dispatcher.
pub struct DispatcherHandle {
    wakes: Vec<Arc<Notify>>,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<Result<(), ConnectorError>>>,
    counters: Arc<DeliveryCounters>,
}

impl std::fmt::Debug for DispatcherHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DispatcherHandle")
    }
}

impl DispatcherHandle {
    /// New events were committed to the outbox: look now rather than at the next poll.
    /// Cheap; never blocks.
    pub fn notify(&self) {
        for w in &self.wakes {
            w.notify_one();
        }
    }

    /// The delivery counters.
    pub fn counters(&self) -> &Arc<DeliveryCounters> {
        &self.counters
    }

    /// Stops: acknowledgements already received are recorded, attempts in flight are
    /// abandoned (they are sent again next time, with the same id). Waits for the thread.
    pub fn shutdown(mut self) -> Result<(), ConnectorError> {
        let _ = self.stop.send(true);
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(result)) => result,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Ok(()),
        }
    }
}

impl Drop for DispatcherHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// One event in memory: the entry without its body, the body as shared bytes.
struct Job {
    entry: OutboxEntry,
    body: Bytes,
    attempts: u32,
}

impl Job {
    fn new(mut entry: OutboxEntry) -> Job {
        let body = Bytes::from(std::mem::take(&mut entry.body));
        Job {
            entry,
            body,
            attempts: 0,
        }
    }

    /// The entry with its body, as the outbox holds it.
    fn into_entry(self) -> OutboxEntry {
        OutboxEntry {
            body: self.body.to_vec(),
            ..self.entry
        }
    }
}

/// The events of one order key: the head is in flight (or waiting for its retry); the
/// rest wait in seq order.
#[derive(Default)]
struct Lane {
    waiting: VecDeque<Job>,
}

struct Done {
    job: Job,
    outcome: Outcome,
}

/// One endpoint's delivery loop.
struct Worker {
    index: usize,
    endpoint: Arc<Endpoint>,
    outbox: Outbox,
    counters: Arc<DeliveryCounters>,
    permits: Arc<Semaphore>,
    backoff: Backoff,
    wake: Arc<Notify>,
    lanes: HashMap<String, Lane>,
    scheduled: HashSet<String>,
    tasks: JoinSet<Done>,
    acks: Vec<OutboxEntry>,
    more: bool,
}

impl Worker {
    fn new(index: usize, endpoint: Arc<Endpoint>, d: &Dispatcher) -> Worker {
        let c = &endpoint.config;
        let seed = xxhash_rust::xxh3::xxh3_64(c.name.as_bytes())
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |t| t.as_nanos() as u64);
        Worker {
            index,
            permits: Arc::new(Semaphore::new(c.concurrency as usize)),
            backoff: Backoff::new(
                Duration::from_millis(c.backoff_initial.ms()),
                Duration::from_millis(c.backoff_max.ms()),
                seed,
            ),
            endpoint: endpoint.clone(),
            outbox: d.outbox.clone(),
            counters: d.counters.clone(),
            wake: Arc::new(Notify::new()),
            lanes: HashMap::new(),
            scheduled: HashSet::new(),
            tasks: JoinSet::new(),
            acks: Vec::new(),
            more: false,
        }
    }

    /// Delivers until drained (`stop` is `None`) or until `stop` turns true.
    async fn run(mut self, mut stop: Option<watch::Receiver<bool>>) -> Result<(), ConnectorError> {
        self.refill().await?;
        loop {
            if self.tasks.is_empty() {
                self.flush().await?;
                self.refill().await?;
                if self.tasks.is_empty() {
                    let Some(stop) = stop.as_mut() else {
                        return Ok(());
                    };
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(POLL_INTERVAL) => {}
                        _ = stop.changed() => return Ok(()),
                    }
                    if *stop.borrow() {
                        return Ok(());
                    }
                    continue;
                }
            }
            let done = match stop.as_mut() {
                None => self.tasks.join_next().await,
                Some(stop) => tokio::select! {
                    done = self.tasks.join_next() => done,
                    _ = self.wake.notified() => {
                        self.flush().await?;
                        self.refill().await?;
                        continue;
                    }
                    _ = stop.changed() => {
                        self.tasks.abort_all();
                        while let Some(done) = self.tasks.join_next().await {
                            if let Ok(Done { job, outcome: Outcome::Delivered }) = done {
                                self.acks.push(job.entry);
                            }
                        }
                        return self.flush().await;
                    }
                },
            };
            self.handle(done).await?;
            while let Some(done) = self.tasks.try_join_next() {
                self.handle(Some(done)).await?;
            }
            self.flush().await?;
            if self.more && self.scheduled.len() < MAX_SCHEDULED / 2 {
                self.refill().await?;
            }
        }
    }

    /// Reads the endpoint's pending events beyond those scheduled, up to
    /// [`MAX_SCHEDULED`], into their lanes, and starts every idle lane.
    async fn refill(&mut self) -> Result<(), ConnectorError> {
        let room = MAX_SCHEDULED.saturating_sub(self.scheduled.len());
        if room == 0 {
            self.more = true;
            return Ok(());
        }
        let limit = self.scheduled.len() + room;
        let outbox = self.outbox.clone();
        let name = self.endpoint.config.name.clone();
        let (entries, depth) = tokio::task::spawn_blocking(move || {
            Ok::<_, riskwatch_state::StateError>((
                outbox.pending_for(&name, limit)?,
                outbox.depth_of(&name)?,
            ))
        })
        .await
        .expect("outbox reads do not panic")?;
        self.more = entries.len() >= limit;
        self.counters
            .at(self.index)
            .outbox_depth
            .store(depth, Ordering::Relaxed);
        for entry in entries {
            if !self.scheduled.insert(entry.id.clone()) {
                continue;
            }
            let job = Job::new(entry);
            match self.lanes.get_mut(&job.entry.order_key) {
                Some(lane) => {
                    let at = lane
                        .waiting
                        .partition_point(|j| j.entry.seq <= job.entry.seq);
                    lane.waiting.insert(at, job);
                }
                None => {
                    self.lanes
                        .insert(job.entry.order_key.clone(), Lane::default());
                    self.start(job, Duration::ZERO);
                }
            }
        }
        Ok(())
    }

    /// Starts an attempt of `job` after `delay`; it takes a permit only once the delay is
    /// over.
    fn start(&mut self, mut job: Job, delay: Duration) {
        let endpoint = self.endpoint.clone();
        let permits = self.permits.clone();
        self.tasks.spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let _permit = permits
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            job.attempts += 1;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            let outcome = match endpoint.signer.sign(&job.entry.id, now, &job.body) {
                Ok(signature) => {
                    endpoint
                        .client
                        .post(&job.entry.id, now, &signature, job.body.clone())
                        .await
                }
                Err(_) => Outcome::Dead {
                    reason: "body_not_utf8".into(),
                },
            };
            Done { job, outcome }
        });
    }

    /// Acts on one finished attempt.
    async fn handle(
        &mut self,
        done: Option<Result<Done, tokio::task::JoinError>>,
    ) -> Result<(), ConnectorError> {
        let Done { job, outcome } = match done {
            Some(Ok(done)) => done,
            Some(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            _ => return Ok(()),
        };
        let counters = self.counters.at(self.index);
        let order_key = job.entry.order_key.clone();
        match outcome {
            Outcome::Delivered => {
                counters.delivered.fetch_add(1, Ordering::Relaxed);
                self.acks.push(job.entry);
            }
            Outcome::Retry {
                reason,
                retry_after,
            } if job.attempts < self.endpoint.config.max_attempts => {
                counters.retried.fetch_add(1, Ordering::Relaxed);
                let delay = self.backoff.delay(job.attempts, retry_after);
                tracing::debug!(
                    endpoint = %self.endpoint.config.name,
                    id = %job.entry.id,
                    reason = %reason,
                    attempts = job.attempts,
                    delay_ms = delay.as_millis() as u64,
                    "webhook attempt failed; retrying"
                );
                self.start(job, delay);
                return Ok(());
            }
            Outcome::Retry { reason, .. } | Outcome::Dead { reason } => {
                counters.dead.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    endpoint = %self.endpoint.config.name,
                    id = %job.entry.id,
                    event_type = %job.entry.event_type,
                    reason = %reason,
                    attempts = job.attempts,
                    "webhook event dead-lettered"
                );
                let id = job.entry.id.clone();
                let entry = job.into_entry();
                let outbox = self.outbox.clone();
                tokio::task::spawn_blocking(move || outbox.dead_letter(&entry, &reason))
                    .await
                    .expect("outbox writes do not panic")?;
                self.scheduled.remove(&id);
            }
        }
        self.advance(&order_key);
        Ok(())
    }

    /// The lane's head is done: start the next event of the lane, or drop the lane.
    fn advance(&mut self, order_key: &str) {
        let next = self
            .lanes
            .get_mut(order_key)
            .and_then(|lane| lane.waiting.pop_front());
        match next {
            Some(job) => self.start(job, Duration::ZERO),
            None => {
                self.lanes.remove(order_key);
            }
        }
    }

    /// Records the acknowledgements gathered so far in one atomic write.
    async fn flush(&mut self) -> Result<(), ConnectorError> {
        if self.acks.is_empty() {
            return Ok(());
        }
        let acks = std::mem::take(&mut self.acks);
        let outbox = self.outbox.clone();
        let acks = tokio::task::spawn_blocking(move || outbox.delivered_all(&acks).map(|()| acks))
            .await
            .expect("outbox writes do not panic")?;
        for a in &acks {
            self.scheduled.remove(&a.id);
        }
        Ok(())
    }
}
