//! From an output to outbox entries: the event type, the `webhook-id`, the order key and
//! the JSON envelope, for every endpoint whose filters take it.
//!
//! The envelope is deterministic from the record (no wall clock is added):
//!
//! ```json
//! {"type":"case.opened","timestamp":"2024-03-01T08:30:00.000Z","data":{…the record…}}
//! ```
//!
//! `timestamp` is the record's event time `ts` in RFC 3339; `data` is the record exactly
//! as the contract (alert, decision or case schema) has it.

use riskwatch_model::config::{EventType, WebhookConfig};
use riskwatch_model::output::{Alert, Case, Decision};
use riskwatch_model::time::rfc3339_ms;
use riskwatch_state::outbox::OutboxEntry;
use serde::Serialize;

/// One output record, borrowed.
#[derive(Clone, Copy, Debug)]
pub enum OutputRef<'a> {
    /// An alert: `alert.raised`.
    Alert(&'a Alert),
    /// A decision: `decision.<kind>`.
    Decision(&'a Decision),
    /// A case event: `case.<event>`.
    Case(&'a Case),
}

impl OutputRef<'_> {
    /// The event type.
    pub fn event_type(self) -> EventType {
        match self {
            OutputRef::Alert(_) => EventType::AlertRaised,
            OutputRef::Decision(d) => EventType::Decision(d.kind),
            OutputRef::Case(c) => EventType::Case(c.event),
        }
    }

    /// The `webhook-id`: `alert_id`, `decision_id`, or `{case_id}:{seq}` (a case's id is
    /// shared by its events; the seq makes each event's id unique and stable).
    pub fn webhook_id(self) -> String {
        match self {
            OutputRef::Alert(a) => a.alert_id.clone(),
            OutputRef::Decision(d) => d.decision_id.clone(),
            OutputRef::Case(c) => format!("{}:{}", c.case_id, c.seq),
        }
    }

    /// The order key (`case_id` for case events, else the id) and the seq (0 unless a case
    /// event).
    pub fn order(self) -> (String, u64) {
        match self {
            OutputRef::Case(c) => (c.case_id.clone(), u64::from(c.seq)),
            other => (other.webhook_id(), 0),
        }
    }

    /// Event time (epoch ms).
    pub fn ts(self) -> u64 {
        match self {
            OutputRef::Alert(a) => a.ts,
            OutputRef::Decision(d) => d.ts,
            OutputRef::Case(c) => c.ts,
        }
    }

    /// The strategy that produced it, and its shadow flag.
    pub fn strategy(&self) -> (&str, bool) {
        match self {
            OutputRef::Alert(a) => (&a.strategy, a.shadow),
            OutputRef::Decision(d) => (&d.strategy, d.shadow),
            OutputRef::Case(c) => (&c.strategy, c.shadow),
        }
    }

    /// The JSON envelope (the body that is signed and sent).
    pub fn envelope(self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Envelope<'a, T: Serialize> {
            #[serde(rename = "type")]
            kind: &'static str,
            timestamp: String,
            data: &'a T,
        }
        let t = self.event_type().name();
        let timestamp = rfc3339_ms(self.ts());
        let body = match self {
            OutputRef::Alert(data) => serde_json::to_vec(&Envelope {
                kind: t,
                timestamp,
                data,
            }),
            OutputRef::Decision(data) => serde_json::to_vec(&Envelope {
                kind: t,
                timestamp,
                data,
            }),
            OutputRef::Case(data) => serde_json::to_vec(&Envelope {
                kind: t,
                timestamp,
                data,
            }),
        };
        body.expect("output records serialize to JSON (tested in model::output)")
    }
}

/// The outbox entries of `output`: one per endpoint of `endpoints` whose `events`,
/// `strategies` and `shadow` filters take it, in endpoint order, sharing one body. Pure:
/// the runtime stages them into the checkpoint batch of the state that produced `output`.
pub fn entries_for(output: OutputRef<'_>, endpoints: &[WebhookConfig]) -> Vec<OutboxEntry> {
    let t = output.event_type();
    let (strategy, shadow) = output.strategy();
    let mut wanted = endpoints
        .iter()
        .filter(|e| e.wants(t, strategy, shadow))
        .peekable();
    if wanted.peek().is_none() {
        return Vec::new();
    }
    let id = output.webhook_id();
    let (order_key, seq) = output.order();
    let body = output.envelope();
    wanted
        .map(|e| OutboxEntry {
            endpoint: e.name.clone(),
            id: id.clone(),
            event_type: t.name().to_string(),
            order_key: order_key.clone(),
            seq,
            time: output.ts(),
            body: body.clone(),
        })
        .collect()
}
