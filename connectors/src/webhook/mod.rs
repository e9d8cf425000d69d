//! Webhooks: outputs POSTed to HTTP(S) endpoints through the RocksDB outbox, signed per
//! the Standard Webhooks spec, retried with backoff and jitter, dead-lettered after a
//! bound, and a receiver kit that verifies, de-duplicates and orders them
//! (docs/webhooks.md).
//!
//! ```text
//!  output ─entries_for─▶ OutboxEntry ─outbox::stage (checkpoint batch)─▶ Outbox
//!  Outbox ─Dispatcher (per endpoint: lanes by case, permits, retry)─▶ HTTP(S) ─▶ receiver
//! ```
//!
//! - [`event`]: output → event type, `webhook-id`, order key and JSON envelope.
//! - [`sign`]: Standard Webhooks signing and verification.
//! - [`config`]: `[[webhook]]` config → ready [`Endpoint`] (secrets, client).
//! - [`client`]: the pooled HTTP(S) client (rustls, `ring`).
//! - [`retry`]: outcome classification, backoff with full jitter, `Retry-After`.
//! - [`dispatch`]: the [`Dispatcher`].
//! - [`metrics`]: delivery counters for the runtime's Prometheus registry.
//! - [`receiver`]: the receiver kit (`riskwatch receive`).

pub mod client;
pub mod config;
pub mod dispatch;
pub mod event;
pub mod metrics;
pub mod receiver;
pub mod retry;
pub mod sign;

pub use config::Endpoint;
pub use dispatch::{Dispatcher, DispatcherHandle};
pub use event::{entries_for, OutputRef};
pub use metrics::{DeliveryCounters, EndpointSnapshot};
pub use receiver::{Chaos, Receiver};
pub use sign::{Signer, Verifier};

#[cfg(test)]
mod tests;
