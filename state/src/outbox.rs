//! The webhook outbox: events staged in the same checkpoint batch as the state that
//! produced them, then delivered, dead-lettered or redelivered one atomic write at a time.
//!
//! ```text
//!   output ─stage()─▶ Checkpoint batch ─StateDir::write─▶ Outbox ─delivered()─▶ Delivered
//!                                                            │  ▲
//!                                           dead_letter() ───┘  └── redeliver()
//!                                                            ▼  │
//!                                                         DeadLetters
//! ```
//!
//! An event is in exactly one of the three tables. [`stage`] never overwrites: an event
//! already pending, delivered or dead keeps its first body, so a restart that recomputes
//! an output (with a new `emitted_at`) re-sends the bytes first staged, and a receiver
//! de-duplicating by `webhook-id` sees identical bodies.
//!
//! Keys (`\0` ends a string; integers big-endian, so RocksDB's byte order is the delivery
//! order):
//!
//! | table | key | value |
//! |---|---|---|
//! | `Outbox` | `Q` endpoint `\0` time order_key `\0` seq id | [`OutboxEntry`] (bincode) |
//! | `Outbox` | `I` endpoint `\0` id | the `Q` key (an index for look-ups by id) |
//! | `Delivered` | endpoint `\0` id | [`DeliveredRecord`] (bincode) |
//! | `DeadLetters` | endpoint `\0` id | [`DeadLetter`] (bincode) |
//!
//! Endpoint names and order keys never contain `\0` (endpoint names are `[A-Za-z0-9_-]`,
//! order keys are output ids).

use crate::{Checkpoint, StateDir, StateError, Table};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One event for one endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// The endpoint's configured name.
    pub endpoint: String,
    /// The `webhook-id`: the output's deterministic id (`{case_id}:{seq}` for a case event).
    pub id: String,
    /// The event type, e.g. `case.opened`.
    pub event_type: String,
    /// Events with the same order key are delivered one at a time in `seq` order: the
    /// `case_id` for case events, else the id.
    pub order_key: String,
    /// The case event's `seq`; 0 for alerts and decisions.
    pub seq: u64,
    /// The output's event time (epoch ms).
    pub time: u64,
    /// The signed body: the JSON envelope, exactly as sent.
    pub body: Vec<u8>,
}

/// The ledger entry of a delivered event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveredRecord {
    /// Wall-clock time of the acknowledgement (epoch ms).
    pub at: u64,
    /// The event type.
    pub event_type: String,
    /// The output's event time.
    pub time: u64,
}

/// An event given up on, with why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The event, body included, as it was pending.
    pub entry: OutboxEntry,
    /// A fixed reason code: `http_4xx:404`, `http_5xx:503`, `timeout`, `connect`,
    /// `tls:unknown_issuer` …
    pub reason: String,
    /// Wall-clock time it was dead-lettered (epoch ms).
    pub at: u64,
}

/// Which dead letters [`Outbox::redeliver`] moves back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redeliver<'a> {
    /// The dead letters with this `webhook-id` (one per endpoint that gave up on it).
    Id(&'a str),
    /// Every dead letter.
    All,
}

const QUEUE: u8 = b'Q';
const INDEX: u8 = b'I';

fn push_str(key: &mut Vec<u8>, s: &str) {
    debug_assert!(!s.as_bytes().contains(&0), "outbox key strings have no NUL");
    key.extend_from_slice(s.as_bytes());
    key.push(0);
}

/// `Q` endpoint `\0` time order_key `\0` seq id.
fn queue_key(e: &OutboxEntry) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 + e.endpoint.len() + e.order_key.len() + e.id.len() + 18);
    key.push(QUEUE);
    push_str(&mut key, &e.endpoint);
    key.extend_from_slice(&e.time.to_be_bytes());
    push_str(&mut key, &e.order_key);
    key.extend_from_slice(&e.seq.to_be_bytes());
    key.extend_from_slice(e.id.as_bytes());
    key
}

/// `I` endpoint `\0` id.
fn index_key(endpoint: &str, id: &str) -> Vec<u8> {
    let mut key = vec![INDEX];
    key.extend_from_slice(&ledger_key(endpoint, id));
    key
}

/// endpoint `\0` id: the key of the Delivered and DeadLetters tables.
fn ledger_key(endpoint: &str, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(endpoint.len() + id.len() + 1);
    push_str(&mut key, endpoint);
    key.extend_from_slice(id.as_bytes());
    key
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    bincode::serialize(v).expect("bincode encodes plain structs into a Vec")
}

fn decode<T: for<'de> Deserialize<'de>>(store: &StateDir, bytes: &[u8]) -> Result<T, StateError> {
    bincode::deserialize(bytes)
        .map_err(|e| StateError::corrupt(store.path(), None, format!("outbox record: {e}")))
}

/// Adds `entry` to `batch` unless it is already pending, delivered or dead-lettered for its
/// endpoint; true if staged. Three point look-ups; nothing is written until `batch` is.
///
/// The caller stages every output's entries into the checkpoint batch that commits the
/// state which produced them, so an output is in the outbox exactly when its state is.
pub fn stage(
    store: &StateDir,
    batch: &mut Checkpoint,
    entry: &OutboxEntry,
) -> Result<bool, StateError> {
    let ledger = ledger_key(&entry.endpoint, &entry.id);
    let index = index_key(&entry.endpoint, &entry.id);
    if store.get(Table::Outbox, &index)?.is_some()
        || store.get(Table::Delivered, &ledger)?.is_some()
        || store.get(Table::DeadLetters, &ledger)?.is_some()
    {
        return Ok(false);
    }
    put_pending(batch, entry);
    Ok(true)
}

fn put_pending(batch: &mut Checkpoint, entry: &OutboxEntry) {
    let queue = queue_key(entry);
    batch.put(Table::Outbox, &queue, &encode(entry));
    batch.put(
        Table::Outbox,
        &index_key(&entry.endpoint, &entry.id),
        &queue,
    );
}

fn delete_pending(batch: &mut Checkpoint, entry: &OutboxEntry) {
    batch.delete(Table::Outbox, &queue_key(entry));
    batch.delete(Table::Outbox, &index_key(&entry.endpoint, &entry.id));
}

/// The outbox of a state directory: what is pending, and the moves between its tables.
/// Cloning shares the store.
#[derive(Clone)]
pub struct Outbox {
    store: Arc<StateDir>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outbox")
    }
}

impl Outbox {
    /// The outbox of `store`.
    pub fn new(store: Arc<StateDir>) -> Outbox {
        Outbox { store }
    }

    /// The state directory.
    pub fn store(&self) -> &Arc<StateDir> {
        &self.store
    }

    /// Every pending entry in (endpoint, time, order_key, seq) order: one scan.
    pub fn pending(&self) -> Result<Vec<OutboxEntry>, StateError> {
        self.scan_queue(&[QUEUE], usize::MAX)
    }

    /// At most `limit` pending entries of `endpoint`, in (time, order_key, seq) order.
    ///
    /// A prefix of that order is closed under "earlier event of the same case": an
    /// event's predecessors have an earlier or equal time and, at equal time and order
    /// key, a smaller seq.
    pub fn pending_for(
        &self,
        endpoint: &str,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StateError> {
        let mut prefix = vec![QUEUE];
        push_str(&mut prefix, endpoint);
        self.scan_queue(&prefix, limit)
    }

    fn scan_queue(&self, prefix: &[u8], limit: usize) -> Result<Vec<OutboxEntry>, StateError> {
        let mut out = Vec::new();
        for item in self.store.scan(Table::Outbox, prefix).take(limit) {
            let (_, value) = item?;
            out.push(decode(&self.store, &value)?);
        }
        Ok(out)
    }

    /// Marks `entry` delivered: one atomic synced write deletes it from the outbox and
    /// puts its ledger entry.
    pub fn delivered(&self, entry: &OutboxEntry) -> Result<(), StateError> {
        self.delivered_all([entry])
    }

    /// Marks every entry of `entries` delivered in one atomic synced write (the
    /// dispatcher's batch of acknowledgements).
    pub fn delivered_all<'e>(
        &self,
        entries: impl IntoIterator<Item = &'e OutboxEntry>,
    ) -> Result<(), StateError> {
        let mut batch = Checkpoint::new();
        let at = now_ms();
        for entry in entries {
            delete_pending(&mut batch, entry);
            let record = DeliveredRecord {
                at,
                event_type: entry.event_type.clone(),
                time: entry.time,
            };
            batch.put(
                Table::Delivered,
                &ledger_key(&entry.endpoint, &entry.id),
                &encode(&record),
            );
        }
        self.store.write(batch)
    }

    /// Moves `entry` from the outbox to the dead letters with `reason`, atomically.
    pub fn dead_letter(&self, entry: &OutboxEntry, reason: &str) -> Result<(), StateError> {
        let mut batch = Checkpoint::new();
        delete_pending(&mut batch, entry);
        let dead = DeadLetter {
            entry: entry.clone(),
            reason: reason.to_string(),
            at: now_ms(),
        };
        batch.put(
            Table::DeadLetters,
            &ledger_key(&entry.endpoint, &entry.id),
            &encode(&dead),
        );
        self.store.write(batch)
    }

    /// Every dead letter, by endpoint then id.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, StateError> {
        let mut out = Vec::new();
        for item in self.store.scan(Table::DeadLetters, &[]) {
            let (_, value) = item?;
            out.push(decode(&self.store, &value)?);
        }
        Ok(out)
    }

    /// Moves the dead letters `filter` selects back into the outbox, with their original
    /// bodies, in one atomic write; returns how many moved.
    pub fn redeliver(&self, filter: Redeliver<'_>) -> Result<usize, StateError> {
        let mut batch = Checkpoint::new();
        let mut n = 0;
        for dead in self.dead_letters()? {
            if let Redeliver::Id(id) = filter {
                if dead.entry.id != id {
                    continue;
                }
            }
            batch.delete(
                Table::DeadLetters,
                &ledger_key(&dead.entry.endpoint, &dead.entry.id),
            );
            put_pending(&mut batch, &dead.entry);
            n += 1;
        }
        if n > 0 {
            self.store.write(batch)?;
        }
        Ok(n)
    }

    /// Deletes the delivered-ledger records acknowledged before `before` (epoch ms, wall
    /// clock), in one atomic write; returns how many. The ledger only stops a restart from
    /// staging an event again, and a restart recomputes only outputs after the last
    /// checkpoint, so records older than the longest replay after a restart (the dedupe
    /// horizon is a safe bound) can go. One scan of the ledger.
    pub fn prune_delivered(&self, before: u64) -> Result<usize, StateError> {
        let mut batch = Checkpoint::new();
        let mut n = 0;
        for item in self.store.scan(Table::Delivered, &[]) {
            let (key, value) = item?;
            let record: DeliveredRecord = decode(&self.store, &value)?;
            if record.at < before {
                batch.delete(Table::Delivered, &key);
                n += 1;
            }
        }
        if n > 0 {
            self.store.write(batch)?;
        }
        Ok(n)
    }

    /// True when `endpoint` acknowledged the event `id`.
    pub fn is_delivered(&self, endpoint: &str, id: &str) -> Result<bool, StateError> {
        Ok(self
            .store
            .get(Table::Delivered, &ledger_key(endpoint, id))?
            .is_some())
    }

    /// Pending entries over every endpoint (a scan of the index keys).
    pub fn depth(&self) -> Result<u64, StateError> {
        self.count(vec![INDEX])
    }

    /// Pending entries of `endpoint`.
    pub fn depth_of(&self, endpoint: &str) -> Result<u64, StateError> {
        let mut prefix = vec![INDEX];
        push_str(&mut prefix, endpoint);
        self.count(prefix)
    }

    fn count(&self, prefix: Vec<u8>) -> Result<u64, StateError> {
        let mut n = 0;
        for item in self.store.scan(Table::Outbox, &prefix) {
            item?;
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
