//! Webhook deliveries of a run with a state directory: outputs are staged into the outbox
//! in the same RocksDB batch as the checkpoint that produced them, and the dispatcher
//! sends them once that batch is committed.
//!
//! ```text
//!  workers ─ part(c, ops, outputs) ─▶ Committer ─ WebhookExtras: stage(outputs) ─▶ WriteBatch(state + outbox + meta)
//!                                                                    │ committed
//!                                                                    ▼
//!                                         dispatcher.notify() ─▶ POST (signed) ─▶ delivered ledger
//! ```
//!
//! A crash before the commit loses nothing a receiver saw (nothing was sent); the outputs
//! after the last checkpoint are recomputed with the same ids on restart. A crash after it
//! leaves the entries in the outbox, and the restarted dispatcher sends what the delivered
//! ledger does not hold. An entry is never overwritten, so a body sent twice is the same.

use crate::state::CheckpointExtras;
use riskwatch_connectors::webhook::{
    entries_for, Dispatcher, DispatcherHandle, Endpoint, OutputRef,
};
use riskwatch_dataflows::evaluate::Output;
use riskwatch_model::config::WebhookConfig;
use riskwatch_state::outbox::{stage, Outbox};
use riskwatch_state::{Checkpoint, SourcePosition, StateDir, StateError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The dispatcher of a run and what its checkpoints stage.
pub struct Deliveries {
    handle: Arc<DispatcherHandle>,
    outbox: Outbox,
    configs: Vec<WebhookConfig>,
    reporter: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
}

impl Deliveries {
    /// Starts the dispatcher over the outbox of `dir`, when webhooks are configured. Reads
    /// the endpoints' secrets (from env or files); a missing one fails here, naming it.
    ///
    /// With `metrics`, a thread adds the dispatcher's counts to them every second
    /// (`riskwatch_delivery_attempts_total`, `riskwatch_delivery_outbox_events`).
    pub fn start(
        dir: &Arc<StateDir>,
        configs: &[WebhookConfig],
        metrics: Option<crate::metrics::Metrics>,
    ) -> anyhow::Result<Option<Deliveries>> {
        if configs.is_empty() {
            return Ok(None);
        }
        let endpoints = Endpoint::all_from_env(configs)?;
        let handle = Arc::new(Dispatcher::new(Outbox::new(dir.clone()), endpoints).spawn()?);
        let reporter = match metrics {
            Some(m) => {
                let stop = Arc::new(AtomicBool::new(false));
                let (done, counters) = (stop.clone(), handle.counters().clone());
                let thread = std::thread::Builder::new()
                    .name("webhook-metrics".into())
                    .spawn(move || {
                        let mut prev = Vec::new();
                        loop {
                            m.add_deliveries(&mut prev, &counters.snapshot());
                            if done.load(Ordering::Relaxed) {
                                break;
                            }
                            std::thread::sleep(Duration::from_secs(1));
                        }
                    })?;
                Some((stop, thread))
            }
            None => None,
        };
        Ok(Some(Deliveries {
            handle,
            outbox: Outbox::new(dir.clone()),
            configs: configs.to_vec(),
            reporter,
        }))
    }

    /// The checkpoint extras that stage outputs, around `inner`.
    pub fn extras(&self, inner: Box<dyn CheckpointExtras>) -> Box<dyn CheckpointExtras> {
        Box::new(WebhookExtras {
            inner,
            configs: self.configs.clone(),
            handle: self.handle.clone(),
        })
    }

    /// Entries still to deliver.
    pub fn depth(&self) -> u64 {
        self.outbox.depth().unwrap_or(0)
    }

    /// Waits until the outbox is empty (every entry delivered or dead-lettered), `stop` is
    /// set, or `timeout` passes; then stops the dispatcher. What is left stays in the outbox
    /// for the next run. Returns the entries left.
    pub fn drain(self, stop: &AtomicBool, timeout: Duration) -> anyhow::Result<u64> {
        let started = Instant::now();
        self.handle.notify();
        let mut left = self.depth();
        while left > 0 && !stop.load(Ordering::Relaxed) && started.elapsed() < timeout {
            std::thread::sleep(Duration::from_millis(20));
            left = self.depth();
        }
        let counters = self.handle.counters().clone();
        if let Some((stop, thread)) = self.reporter {
            stop.store(true, Ordering::Relaxed);
            let _ = thread.join();
        }
        drop(self.outbox);
        match Arc::try_unwrap(self.handle) {
            Ok(h) => h.shutdown()?,
            Err(_) => tracing::warn!("the webhook dispatcher is still shared; not joined"),
        }
        for e in counters.snapshot() {
            tracing::info!(
                endpoint = %e.endpoint,
                delivered = e.delivered,
                retried = e.retried,
                dead = e.dead,
                "webhook deliveries"
            );
        }
        Ok(left)
    }
}

struct WebhookExtras {
    inner: Box<dyn CheckpointExtras>,
    configs: Vec<WebhookConfig>,
    handle: Arc<DispatcherHandle>,
}

impl CheckpointExtras for WebhookExtras {
    fn extend(
        &mut self,
        dir: &StateDir,
        frontier: u64,
        outputs: &[(u64, Output)],
        batch: &mut Checkpoint,
    ) -> Result<Vec<SourcePosition>, StateError> {
        for (_, output) in outputs {
            let r = match output {
                Output::Alert(a) => OutputRef::Alert(a),
                Output::Decision(d) => OutputRef::Decision(d),
                Output::Case(c) => OutputRef::Case(c),
            };
            for entry in entries_for(r, &self.configs) {
                stage(dir, batch, &entry)?;
            }
        }
        self.inner.extend(dir, frontier, outputs, batch)
    }

    fn committed(&mut self) {
        self.handle.notify();
    }
}
