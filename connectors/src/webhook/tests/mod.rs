//! Webhook tests: real HTTP(S) on loopback, real RocksDB in temporary directories, the
//! receiver kit as the far end. No mocks.
//!
//! - `event.rs`: outputs → entries (filters, ids, envelope).
//! - `delivery.rs`: the dispatcher against the receiver with chaos, 4xx, retries spent,
//!   Retry-After, redelivery, the spawned handle, throughput.
//! - `tls.rs`: HTTPS with a private CA, and an untrusted certificate.
//! - `receiver.rs`: the receiver kit's answers.

mod delivery;
mod event;
mod receiver;
mod tls;

use super::config::Endpoint;
use super::receiver::{Chaos, Receiver};
use super::sign::{Signer, Verifier};
use riskwatch_model::config::{EventPattern, EventType, WebhookConfig};
use riskwatch_model::time::Millis;
use riskwatch_state::outbox::{stage, Outbox, OutboxEntry};
use riskwatch_state::{Checkpoint, Fingerprint, OpenMode, StateDir};
use std::net::SocketAddr;
use std::sync::Arc;

/// The spec libraries' test secret.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A state directory in the temp dir, removed when dropped.
pub struct TempState {
    pub path: std::path::PathBuf,
    pub outbox: Outbox,
}

impl Drop for TempState {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

pub fn temp_state(name: &str) -> TempState {
    let path =
        std::env::temp_dir().join(format!("riskwatch-webhook-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    let store = StateDir::open(&path, OpenMode::CreateIfMissing, &Fingerprint::new())
        .expect("opens a new state directory");
    TempState {
        path,
        outbox: Outbox::new(Arc::new(store)),
    }
}

/// Stages `entries` in one checkpoint batch, as the runtime does.
pub fn stage_all(outbox: &Outbox, entries: &[OutboxEntry]) {
    let mut batch = Checkpoint::new();
    for e in entries {
        stage(outbox.store(), &mut batch, e).expect("stages");
    }
    outbox.store().write(batch).expect("commits");
}

/// An endpoint config for `url` taking every event type, with fast retries.
pub fn endpoint_config(name: &str, url: &str) -> WebhookConfig {
    let mut c = WebhookConfig::new(
        name,
        url,
        EventType::all().map(EventPattern::Exact).collect(),
    );
    c.secret_env = Some("UNUSED".into());
    c.backoff_initial = Millis(5);
    c.backoff_max = Millis(50);
    c.timeout = Millis(2_000);
    c
}

pub fn endpoint(config: &WebhookConfig) -> Endpoint {
    Endpoint::with_signer(config, Signer::new(SECRET).expect("test secret")).expect("endpoint")
}

/// A case event's entry (`order_key` = case, `seq` ≥ 1) or, with `seq` 0, an alert's.
pub fn entry(endpoint: &str, order_key: &str, seq: u64, time: u64) -> OutboxEntry {
    let (id, event_type, data) = if seq == 0 {
        (
            order_key.to_string(),
            "alert.raised",
            serde_json::json!({"alert_id": order_key, "ts": time}),
        )
    } else {
        (
            format!("{order_key}:{seq}"),
            "case.updated",
            serde_json::json!({"case_id": order_key, "seq": seq, "ts": time}),
        )
    };
    let body = serde_json::json!({
        "type": event_type,
        "timestamp": riskwatch_model::time::rfc3339_ms(time),
        "data": data,
    });
    OutboxEntry {
        endpoint: endpoint.into(),
        id,
        event_type: event_type.into(),
        order_key: order_key.into(),
        seq,
        time,
        body: serde_json::to_vec(&body).expect("json"),
    }
}

/// The receiver kit on 127.0.0.1:0, served on the current runtime until the test ends.
pub async fn start_receiver(chaos: Chaos) -> (Receiver, SocketAddr) {
    let receiver =
        Receiver::new(Verifier::new(SECRET).expect("secret"), None, chaos).expect("receiver");
    let addr = serve_router(receiver.router()).await;
    (receiver, addr)
}

/// Serves `router` over plain HTTP on 127.0.0.1:0.
pub async fn serve_router(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds loopback");
    let addr = listener.local_addr().expect("bound");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}
