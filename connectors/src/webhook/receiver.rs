//! The receiver kit: a small axum webhook receiver that a collection system can copy. It
//! shows what every receiver of riskwatch's webhooks must do, in order:
//!
//! 1. **Verify** the Standard Webhooks signature over the raw body, before parsing it
//!    (`standardwebhooks` also refuses timestamps more than 5 minutes off): 401 if bad.
//! 2. **De-duplicate** by `webhook-id`: riskwatch delivers at least once, so a repeat is
//!    answered 200 and not processed again.
//! 3. **Order** each case's events by `seq`: an event ahead of a gap (its predecessor was
//!    dead-lettered and not yet redelivered) is held, answered 202 with the seq it waits
//!    for, and processed when the gap is filled. An event behind is stale: 200, dropped.
//!    This assumes the endpoint subscribes to every case event type (`case.*`).
//! 4. **Process** (here: append one NDJSON line `{"id", "type", "data"}` to a file) and
//!    answer 2xx quickly.
//!
//! De-duplication and held events live in memory here; a production receiver keeps the
//! ids it has processed, and the next seq per case, in its own database, in the same
//! transaction as the processing.
//!
//! For tests it can misbehave on purpose ([`Chaos`]): answer 500, 429 with
//! `Retry-After: 1`, or answer late, chosen by a seeded hash of (`webhook-id`, arrival
//! number), so a run is reproducible whatever the arrival order.

use super::sign::Verifier;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Deliberate misbehaviour, for tests. Ratios are probabilities in `[0, 1]`.
#[derive(Clone, Debug, Default)]
pub struct Chaos {
    /// Answer 500 to this share of requests.
    pub fail_ratio: f64,
    /// Answer 429 with `Retry-After: 1` to this share of requests.
    pub too_many_ratio: f64,
    /// Wait [`Chaos::delay_ms`] before answering this share of requests.
    pub delay_ratio: f64,
    /// How long a delayed answer waits.
    pub delay_ms: u64,
    /// Seeds the choices.
    pub seed: u64,
}

/// One accepted event, as written to the output file.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Accepted {
    /// The `webhook-id`.
    pub id: String,
    /// The envelope's `type`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The envelope's `data`: the output record.
    pub data: serde_json::Value,
}

/// What the receiver has seen, for logs and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReceiverStats {
    /// Requests received.
    pub requests: u64,
    /// Requests refused with 401 (bad or missing signature, stale timestamp).
    pub unauthorized: u64,
    /// Requests failed on purpose (chaos 500 or 429).
    pub chaos: u64,
    /// Repeats of an id already accepted or held.
    pub duplicates: u64,
    /// Events accepted and written.
    pub accepted: u64,
    /// Events held now, waiting for an earlier seq.
    pub held: u64,
}

#[derive(Default)]
struct Ledger {
    seen: HashSet<String>,
    /// Requests per id that passed verification, counted as they arrive (a request whose
    /// client gave up during a chaos delay is dropped before it answers).
    tries: HashMap<String, usize>,
    arrivals: HashMap<String, Vec<(Instant, u16)>>,
    next_seq: HashMap<String, u64>,
    held: HashMap<String, BTreeMap<u64, Accepted>>,
    recorded: Vec<Accepted>,
    stats: ReceiverStats,
}

struct Inner {
    verifier: Verifier,
    chaos: Chaos,
    out: Option<Mutex<std::io::BufWriter<std::fs::File>>>,
    ledger: Mutex<Ledger>,
}

/// The receiver. Cloning shares its state.
#[derive(Clone)]
pub struct Receiver {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Receiver")
    }
}

impl Receiver {
    /// A receiver verifying with `verifier`, appending accepted events to `out` if given.
    pub fn new(verifier: Verifier, out: Option<&Path>, chaos: Chaos) -> std::io::Result<Receiver> {
        let out = match out {
            Some(path) => Some(Mutex::new(std::io::BufWriter::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ))),
            None => None,
        };
        Ok(Receiver {
            inner: Arc::new(Inner {
                verifier,
                chaos,
                out,
                ledger: Mutex::default(),
            }),
        })
    }

    /// The axum app: `POST` on any path.
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .fallback(receive)
            .with_state(self.clone())
    }

    /// Every accepted event, in the order written.
    pub fn recorded(&self) -> Vec<Accepted> {
        self.ledger().recorded.clone()
    }

    /// Arrival times and answers (status codes) of every request with `webhook-id` `id`
    /// that passed verification.
    pub fn arrivals(&self, id: &str) -> Vec<(Instant, u16)> {
        self.ledger().arrivals.get(id).cloned().unwrap_or_default()
    }

    /// The counters so far.
    pub fn stats(&self) -> ReceiverStats {
        self.ledger().stats
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        // A panic while holding the lock leaves plain data; keep serving it.
        self.inner
            .ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Chaos for the `n`-th arrival of `id`: a status to answer instead, and a delay.
    pub(crate) fn chaos_choice(&self, id: &str, n: usize) -> (Option<StatusCode>, Duration) {
        let c = &self.inner.chaos;
        let unit = |salt: u64| {
            let mut h = xxhash_rust::xxh3::Xxh3::with_seed(c.seed ^ salt);
            h.update(id.as_bytes());
            h.update(&(n as u64).to_le_bytes());
            (h.digest() >> 11) as f64 / (1u64 << 53) as f64
        };
        let u = unit(1);
        let status = if u < c.fail_ratio {
            Some(StatusCode::INTERNAL_SERVER_ERROR)
        } else if u < c.fail_ratio + c.too_many_ratio {
            Some(StatusCode::TOO_MANY_REQUESTS)
        } else {
            None
        };
        let delay = if unit(2) < c.delay_ratio {
            Duration::from_millis(c.delay_ms)
        } else {
            Duration::ZERO
        };
        (status, delay)
    }

    /// Writes `event` to the output file and the in-memory record.
    fn record(&self, ledger: &mut Ledger, event: Accepted) {
        if let Some(out) = &self.inner.out {
            let mut out = out
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let line = serde_json::to_string(&event).expect("JSON values serialize");
            if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
                tracing::error!(error = %e, "receiver: cannot write the output file");
            }
        }
        ledger.stats.accepted += 1;
        ledger.recorded.push(event);
    }
}

async fn receive(
    State(r): State<Receiver>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, "POST only\n").into_response();
    }
    r.ledger().stats.requests += 1;
    // 1. Verify the raw bytes, before anything else looks at them.
    if let Err(e) = r.inner.verifier.verify(&body, &headers) {
        r.ledger().stats.unauthorized += 1;
        return (StatusCode::UNAUTHORIZED, format!("signature: {e}\n")).into_response();
    }
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let n = {
        let mut ledger = r.ledger();
        let tries = ledger.tries.entry(id.clone()).or_default();
        *tries += 1;
        *tries - 1
    };
    let (status, delay) = r.chaos_choice(&id, n);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let (code, response) = match status {
        Some(code) => {
            r.ledger().stats.chaos += 1;
            let mut response = (code, "chaos\n").into_response();
            if code == StatusCode::TOO_MANY_REQUESTS {
                response
                    .headers_mut()
                    .insert("retry-after", axum::http::HeaderValue::from_static("1"));
            }
            (code, response)
        }
        None => accept(&r, &id, &body),
    };
    r.ledger()
        .arrivals
        .entry(id)
        .or_default()
        .push((Instant::now(), code.as_u16()));
    response
}

/// Steps 2–4 for a verified request.
fn accept(r: &Receiver, id: &str, body: &[u8]) -> (StatusCode, Response) {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(rename = "type")]
        event_type: String,
        data: serde_json::Value,
    }
    let answer = |code: StatusCode, text: String| (code, (code, text).into_response());
    let Ok(envelope) = serde_json::from_slice::<Envelope>(body) else {
        return answer(StatusCode::BAD_REQUEST, "not a webhook envelope\n".into());
    };
    let mut ledger = r.ledger();
    // 2. De-duplicate.
    if !ledger.seen.insert(id.to_string()) {
        ledger.stats.duplicates += 1;
        return answer(StatusCode::OK, "duplicate\n".into());
    }
    let event = Accepted {
        id: id.to_string(),
        event_type: envelope.event_type,
        data: envelope.data,
    };
    // 3. Order case events by seq.
    let case = event.event_type.starts_with("case.").then(|| {
        let case_id = event.data["case_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        (case_id, event.data["seq"].as_u64().unwrap_or(0))
    });
    let Some((case_id, seq)) = case else {
        r.record(&mut ledger, event);
        return answer(StatusCode::OK, "ok\n".into());
    };
    let next = *ledger.next_seq.get(&case_id).unwrap_or(&1);
    if seq < next {
        return answer(StatusCode::OK, format!("stale: case is at seq {next}\n"));
    }
    if seq > next {
        tracing::info!(case_id = %case_id, seq, waiting_for = next, "receiver: holding a case event until the gap is filled");
        ledger.held.entry(case_id).or_default().insert(seq, event);
        ledger.stats.held += 1;
        return answer(
            StatusCode::ACCEPTED,
            format!("held: waiting for seq {next}\n"),
        );
    }
    // 4. Process it, then every held successor it unblocks.
    r.record(&mut ledger, event);
    let mut next = seq + 1;
    while let Some(e) = ledger.held.get_mut(&case_id).and_then(|h| h.remove(&next)) {
        ledger.stats.held -= 1;
        r.record(&mut ledger, e);
        next += 1;
    }
    if ledger.held.get(&case_id).is_some_and(BTreeMap::is_empty) {
        ledger.held.remove(&case_id);
    }
    ledger.next_seq.insert(case_id, next);
    answer(StatusCode::OK, "ok\n".into())
}

/// Serves `receiver` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    receiver: Receiver,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, receiver.router())
        .with_graceful_shutdown(shutdown)
        .await
}
