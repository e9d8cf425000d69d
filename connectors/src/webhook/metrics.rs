//! Delivery counters: plain atomics per endpoint, bumped by the dispatcher, read by the
//! runtime, which adds them to `riskwatch_delivery_attempts_total{sink, endpoint, outcome}`
//! and sets `riskwatch_delivery_outbox_events{sink, endpoint}` (model/src/metrics.rs).

use std::sync::atomic::{AtomicU64, Ordering};

/// The `sink` label value of webhook deliveries.
pub const SINK: &str = "webhook";

/// One endpoint's counters.
#[derive(Debug, Default)]
pub struct EndpointCounters {
    /// Attempts answered 2xx.
    pub delivered: AtomicU64,
    /// Attempts that failed transiently and were scheduled again.
    pub retried: AtomicU64,
    /// Events dead-lettered (a permanent failure, or the last attempt spent).
    pub dead: AtomicU64,
    /// Events pending in the outbox, as of the dispatcher's last look.
    pub outbox_depth: AtomicU64,
}

/// A copy of one endpoint's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointSnapshot {
    /// The endpoint's name (the `endpoint` label).
    pub endpoint: String,
    /// Attempts answered 2xx (`outcome="delivered"`).
    pub delivered: u64,
    /// Attempts retried (`outcome="retried"`).
    pub retried: u64,
    /// Events dead-lettered (`outcome="dead"`).
    pub dead: u64,
    /// Events pending in the outbox.
    pub outbox_depth: u64,
}

/// Every endpoint's counters, in configuration order.
#[derive(Debug, Default)]
pub struct DeliveryCounters {
    endpoints: Vec<(String, EndpointCounters)>,
}

impl DeliveryCounters {
    /// Zeroed counters for these endpoint names.
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> DeliveryCounters {
        DeliveryCounters {
            endpoints: names
                .into_iter()
                .map(|n| (n.to_string(), EndpointCounters::default()))
                .collect(),
        }
    }

    /// The counters of the endpoint at `index` (configuration order).
    pub fn at(&self, index: usize) -> &EndpointCounters {
        &self.endpoints[index].1
    }

    /// The counters of endpoint `name`.
    pub fn get(&self, name: &str) -> Option<&EndpointCounters> {
        self.endpoints
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c)
    }

    /// A copy of every endpoint's counters.
    pub fn snapshot(&self) -> Vec<EndpointSnapshot> {
        self.endpoints
            .iter()
            .map(|(name, c)| EndpointSnapshot {
                endpoint: name.clone(),
                delivered: c.delivered.load(Ordering::Relaxed),
                retried: c.retried.load(Ordering::Relaxed),
                dead: c.dead.load(Ordering::Relaxed),
                outbox_depth: c.outbox_depth.load(Ordering::Relaxed),
            })
            .collect()
    }
}
