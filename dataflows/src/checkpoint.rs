//! Checkpoints of the dataflow's operator state, and restoring from them.
//!
//! A checkpoint is taken while the dataflow is quiescent at a frontier `c`: every worker
//! has fed everything before `c` and nothing at or after it, and its probe has passed `c`
//! (the runtime arranges this). Then each operator's plain state type holds exactly the
//! effect of the input before `c`, nothing is in flight, and [`WorkerState::snapshot`]
//! reads the changes since the previous checkpoint as key-value operations ([`Op`]) for the
//! runtime to commit atomically. What is stored, per worker:
//!
//! | part | key | value |
//! |---|---|---|
//! | [`Part::Ledger`] | customer key | the customer's ledger, last emitted account and schedule, first sighting, links |
//! | [`Part::Windows`] | (time, chunk) | held window retractions and link checks of that granule |
//! | [`Part::Dedupe`] | (latest expiry, seq) | a run of remembered event ids with their expiry |
//! | [`Part::Evaluate`] | customer key | per-strategy level, firing rules, action and case state, wake-ups |
//! | [`Part::Evaluate`] | worker record | circuit breakers and the strategy change in force |
//!
//! The window state needs no separate record: the held retractions are it
//! ([`crate::operators::deferred`]). The differential arrangements downstream of the
//! ledger (window totals, distinct sets, rings) are not stored: on restore the ledger
//! re-emits its state as updates at `c − 1` and they rebuild from it, while the evaluator,
//! restored directly, drops every update before `c`. Collections are functions of their
//! accumulated input, so every output at a time from `c` on is the one an uninterrupted run
//! gives. Restoring costs one pass over the state, not over the history.
//!
//! Keys start with the global worker index (4 bytes, big-endian) and a tag byte, then
//! big-endian numbers, so that a process scans its own workers' state in order. Values are a
//! format byte ([`RECORD_FORMAT`]) followed by bincode with variable-length integers.

use crate::evaluate::{Breakers, CustomerState, Strategies};
use crate::layout::Layout;
use crate::operators::dedupe::DedupeState;
use crate::operators::deferred::HeldRecord;
use crate::operators::evaluate::EvaluateState;
use crate::operators::ledger::{CustomerEntry, LedgerState};
use bincode::Options as _;
use riskwatch_model::event::Stream;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::HashMap;
use std::rc::Rc;

/// The format of every stored value; bumped on any change of a record's layout.
pub const RECORD_FORMAT: u8 = 2;

/// Which part of the state a key belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// Customers of the ledger.
    Ledger,
    /// Held window retractions.
    Windows,
    /// The duplicate set.
    Dedupe,
    /// Evaluator state.
    Evaluate,
    /// The sources' positions and what they fed ahead of the frontier; written by the
    /// runtime, opaque here.
    Sources,
}

impl Part {
    /// Every part.
    pub const ALL: [Part; 5] = [
        Part::Ledger,
        Part::Windows,
        Part::Dedupe,
        Part::Evaluate,
        Part::Sources,
    ];
}

/// One change of a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Set a key.
    Put(Part, Vec<u8>, Vec<u8>),
    /// Delete every key in `[from, to)`.
    DeleteRange(Part, Vec<u8>, Vec<u8>),
}

/// A stored record that does not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("checkpoint record {part:?} key {key} does not decode: {detail}")]
pub struct RecordError {
    /// The part.
    pub part: Part,
    /// The key, hex.
    pub key: String,
    /// What is wrong.
    pub detail: String,
}

const TAG_ITEM: u8 = 0;
const TAG_WORKER: u8 = 1;

/// The key prefix of a worker's records of one kind.
fn prefix(worker: u32, tag: u8) -> Vec<u8> {
    let mut k = Vec::with_capacity(21);
    k.extend_from_slice(&worker.to_be_bytes());
    k.push(tag);
    k
}

/// A key: worker, tag, then numbers, all big-endian.
pub fn key(worker: u32, numbers: &[u64]) -> Vec<u8> {
    let mut k = prefix(worker, TAG_ITEM);
    for n in numbers {
        k.extend_from_slice(&n.to_be_bytes());
    }
    k
}

/// The prefix of every key of `worker`, in any part.
pub fn worker_prefix(worker: u32) -> [u8; 4] {
    worker.to_be_bytes()
}

fn worker_key(worker: u32) -> Vec<u8> {
    prefix(worker, TAG_WORKER)
}

/// The numbers of an item key (after worker and tag).
fn numbers(part: Part, key: &[u8]) -> Result<Vec<u64>, RecordError> {
    let rest = key
        .get(5..)
        .filter(|r| r.len() % 8 == 0)
        .ok_or_else(|| record_error(part, key, "malformed key".into()))?;
    Ok(rest
        .chunks_exact(8)
        .map(|c| u64::from_be_bytes(c.try_into().expect("8 bytes")))
        .collect())
}

fn record_error(part: Part, key: &[u8], detail: String) -> RecordError {
    RecordError {
        part,
        key: key.iter().map(|b| format!("{b:02x}")).collect(),
        detail,
    }
}

/// The bincode options of every record: variable-length integers (most counters, amounts
/// and slot values are small; format 1 used fixed 8-byte integers and was about twice the
/// size), trailing bytes allowed.
fn options() -> impl bincode::Options {
    bincode::DefaultOptions::new()
        .with_varint_encoding()
        .allow_trailing_bytes()
}

/// Encodes a record: the format byte, then bincode.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![RECORD_FORMAT];
    options()
        .serialize_into(&mut out, value)
        .expect("state records serialize");
    out
}

/// Decodes a record written by [`encode`].
pub fn decode<T: DeserializeOwned>(part: Part, key: &[u8], bytes: &[u8]) -> Result<T, RecordError> {
    match bytes.split_first() {
        Some((&RECORD_FORMAT, rest)) => {
            bincode::Options::deserialize(options().with_limit(1 << 30), rest)
                .map_err(|e| record_error(part, key, e.to_string()))
        }
        Some((v, _)) => Err(record_error(
            part,
            key,
            format!("record format {v}, this build reads {RECORD_FORMAT}"),
        )),
        None => Err(record_error(part, key, "empty record".into())),
    }
}

/// A ledger customer as stored.
#[derive(Serialize, Deserialize)]
struct LedgerRecord {
    entry: CustomerEntry,
    /// `(identifier, expiry)` of the customer's current links.
    links: Vec<(u64, u64)>,
}

/// The evaluator's per-worker record.
#[derive(Serialize, Deserialize)]
struct WorkerRecord {
    breakers: Breakers,
    config_json: Option<String>,
}

/// The operator states of one worker, shared between the dataflow's operators and the
/// worker loop (which reads them only while the dataflow is quiescent).
#[derive(Clone)]
pub struct WorkerState {
    /// The duplicate set.
    pub dedupe: Rc<RefCell<DedupeState>>,
    /// The ledger.
    pub ledger: Rc<RefCell<LedgerState>>,
    /// The evaluator.
    pub evaluate: Rc<RefCell<EvaluateState>>,
}

/// A stored key and value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// The stored records of one worker, per part, in key order.
#[derive(Clone, Debug, Default)]
pub struct Stored {
    /// `(key, value)` by part.
    pub parts: HashMap<Part, Vec<Entry>>,
}

impl WorkerState {
    /// Empty state under `strategies`.
    pub fn new(strategies: Rc<Strategies>) -> WorkerState {
        WorkerState {
            dedupe: Rc::default(),
            ledger: Rc::default(),
            evaluate: Rc::new(RefCell::new(EvaluateState::new(strategies))),
        }
    }

    /// Turns on change tracking, which [`Self::snapshot`] needs; a run without checkpoints
    /// leaves it off and pays nothing per update. Call before the dataflow runs.
    pub fn track_changes(&self) {
        self.ledger.borrow_mut().tracking = true;
        self.ledger.borrow_mut().deferred.tracking = true;
        self.evaluate.borrow_mut().tracking = true;
    }

    /// The changes since the previous snapshot (or everything, after [`Self::mark_all`]),
    /// with the dataflow quiescent at `frontier`.
    pub fn snapshot(&self, worker: u32, frontier: u64) -> Vec<Op> {
        let mut ops = Vec::new();
        {
            let mut ledger = self.ledger.borrow_mut();
            let ledger = &mut *ledger;
            let mut dirty: Vec<u64> = ledger.dirty.drain().collect();
            dirty.sort_unstable();
            let mut links: HashMap<u64, Vec<(u64, u64)>> = HashMap::new();
            if !dirty.is_empty() {
                let wanted: std::collections::HashSet<u64> = dirty.iter().copied().collect();
                for (&(k, ident), &expiry) in ledger.links.iter() {
                    if wanted.contains(&k) {
                        links.entry(k).or_default().push((ident, expiry));
                    }
                }
            }
            for k in dirty {
                let Some(entry) = ledger.customers.get(&k) else {
                    continue;
                };
                let mut l = links.remove(&k).unwrap_or_default();
                l.sort_unstable();
                let record = LedgerRecord {
                    entry: entry.clone(),
                    links: l,
                };
                ops.push(Op::Put(Part::Ledger, key(worker, &[k]), encode(&record)));
            }
            ops.push(Op::DeleteRange(
                Part::Windows,
                key(worker, &[]),
                key(worker, &[frontier]),
            ));
            for (time, chunk, entries) in ledger.deferred.take_dirty(frontier) {
                ops.push(Op::Put(
                    Part::Windows,
                    key(worker, &[time, u64::from(chunk)]),
                    encode(&entries),
                ));
            }
        }
        {
            let mut dedupe = self.dedupe.borrow_mut();
            ops.push(Op::DeleteRange(
                Part::Dedupe,
                key(worker, &[]),
                key(worker, &[frontier]),
            ));
            let fresh = dedupe.take_unsaved();
            if let Some(&(last, _, _)) = fresh.last() {
                let seq = dedupe.chunk_seq;
                dedupe.chunk_seq += 1;
                ops.push(Op::Put(
                    Part::Dedupe,
                    key(worker, &[last, seq]),
                    encode(&fresh),
                ));
            }
        }
        {
            let mut eval = self.evaluate.borrow_mut();
            let eval = &mut *eval;
            let mut dirty: Vec<u64> = eval.dirty.drain().collect();
            dirty.sort_unstable();
            for k in dirty {
                if let Some(c) = eval.customers.get(&k) {
                    ops.push(Op::Put(Part::Evaluate, key(worker, &[k]), encode(c)));
                }
            }
            let record = WorkerRecord {
                breakers: eval.breakers.clone(),
                config_json: eval.config_json.clone(),
            };
            ops.push(Op::Put(Part::Evaluate, worker_key(worker), encode(&record)));
        }
        ops
    }

    /// Marks everything changed, so that the next snapshot writes the whole state (the first
    /// checkpoint into an empty state directory after a restore from another one).
    pub fn mark_all(&self) {
        let mut ledger = self.ledger.borrow_mut();
        let keys: Vec<u64> = ledger.customers.keys().copied().collect();
        ledger.dirty.extend(keys);
        ledger.deferred.mark_all_dirty();
        let mut dedupe = self.dedupe.borrow_mut();
        dedupe.unsaved = dedupe.expiry.len();
        let mut eval = self.evaluate.borrow_mut();
        let keys: Vec<u64> = eval.customers.keys().copied().collect();
        eval.dirty.extend(keys);
    }

    /// Restores a worker's stored records, checkpointed at `frontier`; must be called
    /// before the dataflow is built. The ledger then re-emits its state at `frontier − 1`
    /// and the evaluator drops every update before `frontier`.
    pub fn restore(
        &self,
        frontier: u64,
        stored: &Stored,
        layout: &Layout,
    ) -> Result<(), RecordError> {
        let empty = Vec::new();
        let part = |p: Part| stored.parts.get(&p).unwrap_or(&empty);
        {
            let mut ledger = self.ledger.borrow_mut();
            for (k, v) in part(Part::Ledger) {
                let key = numbers(Part::Ledger, k)?;
                let &[customer] = key.as_slice() else {
                    return Err(record_error(Part::Ledger, k, "malformed key".into()));
                };
                let record: LedgerRecord = decode(Part::Ledger, k, v)?;
                for (ident, expiry) in record.links {
                    ledger.links.insert((customer, ident), expiry);
                }
                ledger.customers.insert(customer, record.entry);
            }
            for (k, v) in part(Part::Windows) {
                let key = numbers(Part::Windows, k)?;
                let &[time, _chunk] = key.as_slice() else {
                    return Err(record_error(Part::Windows, k, "malformed key".into()));
                };
                let entries: Vec<(u64, HeldRecord)> = decode(Part::Windows, k, v)?;
                ledger.deferred.restore_chunk(time, entries);
            }
            ledger.dirty.clear();
            ledger.rebuild_at = Some(frontier.saturating_sub(1));
        }
        {
            let mut dedupe = self.dedupe.borrow_mut();
            for (k, v) in part(Part::Dedupe) {
                let key = numbers(Part::Dedupe, k)?;
                let &[_, seq] = key.as_slice() else {
                    return Err(record_error(Part::Dedupe, k, "malformed key".into()));
                };
                let entries: Vec<(u64, Stream, u64)> = decode(Part::Dedupe, k, v)?;
                for (at, stream, id) in entries.into_iter().filter(|e| e.0 >= frontier) {
                    dedupe.remember(at, stream, id);
                }
                dedupe.chunk_seq = dedupe.chunk_seq.max(seq + 1);
            }
            dedupe.unsaved = 0;
        }
        {
            let mut eval = self.evaluate.borrow_mut();
            for (k, v) in part(Part::Evaluate) {
                if k.get(4) == Some(&TAG_WORKER) {
                    let record: WorkerRecord = decode(Part::Evaluate, k, v)?;
                    eval.breakers = record.breakers;
                    if let Some(json) = record.config_json {
                        let compiled = crate::operators::evaluate::compile_change(&json, layout)
                            .map_err(|e| record_error(Part::Evaluate, k, e))?;
                        eval.strategies = Rc::new(compiled);
                        eval.config_json = Some(json);
                    }
                    continue;
                }
                let key = numbers(Part::Evaluate, k)?;
                let &[customer] = key.as_slice() else {
                    return Err(record_error(Part::Evaluate, k, "malformed key".into()));
                };
                let state: CustomerState = decode(Part::Evaluate, k, v)?;
                for w in &state.wakes {
                    eval.wakes.push(Reverse((*w, customer)));
                }
                eval.customers.insert(customer, state);
            }
            eval.dirty.clear();
            eval.ignore_before = frontier;
        }
        Ok(())
    }
}

/// The stored state of a worker as text lines, one per logical item, independent of how
/// the checkpoints that wrote it were spaced: window retractions and remembered ids are
/// listed by item (not by the chunk or run they were written in) and only from `frontier`
/// on. Two runs that hold the same state at `frontier` give the same lines. Used by
/// `riskwatch state dump` and the restart-equivalence tests.
pub fn canonical(worker: u32, frontier: u64, stored: &Stored) -> Result<Vec<String>, RecordError> {
    let empty = Vec::new();
    let part = |p: Part| stored.parts.get(&p).unwrap_or(&empty);
    let mut out = Vec::new();
    for (k, v) in part(Part::Ledger) {
        let record: LedgerRecord = decode(Part::Ledger, k, v)?;
        out.push(format!(
            "w{worker} ledger {:?} {:?} links={:?}",
            numbers(Part::Ledger, k)?,
            record.entry,
            record.links
        ));
    }
    let mut held = Vec::new();
    for (k, v) in part(Part::Windows) {
        let key = numbers(Part::Windows, k)?;
        let entries: Vec<(u64, HeldRecord)> = decode(Part::Windows, k, v)?;
        let time = key.first().copied().unwrap_or(0);
        if time >= frontier {
            held.extend(
                entries
                    .into_iter()
                    .map(|(c, r)| format!("w{worker} held {time} {c} {r:?}")),
            );
        }
    }
    held.sort();
    out.extend(held);
    let mut ids = Vec::new();
    for (k, v) in part(Part::Dedupe) {
        let entries: Vec<(u64, Stream, u64)> = decode(Part::Dedupe, k, v)?;
        ids.extend(
            entries
                .into_iter()
                .filter(|e| e.0 >= frontier)
                .map(|(at, s, id)| format!("w{worker} id {at} {s:?} {id}")),
        );
    }
    ids.sort();
    out.extend(ids);
    for (k, v) in part(Part::Evaluate) {
        if k.get(4) == Some(&TAG_WORKER) {
            let r: WorkerRecord = decode(Part::Evaluate, k, v)?;
            out.push(format!(
                "w{worker} evaluator {:?} {:?}",
                r.breakers, r.config_json
            ));
        } else {
            let c: CustomerState = decode(Part::Evaluate, k, v)?;
            out.push(format!(
                "w{worker} customer {:?} {c:?}",
                numbers(Part::Evaluate, k)?
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift), so the harness needs no crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// One stored record of every kind, as a checkpoint writes them.
    fn corpus() -> Stored {
        let ledger = LedgerRecord {
            entry: CustomerEntry {
                first_seen: 17,
                ..CustomerEntry::default()
            },
            links: vec![(9, 99)],
        };
        let held = vec![
            (5u64, HeldRecord::Sum(1, vec![(3, -70)])),
            (5, HeldRecord::Distinct(4, 77)),
            (6, HeldRecord::Link(88)),
        ];
        let ids = vec![(1000u64, Stream::Behaviors, 42u64)];
        let customer = CustomerState {
            wakes: vec![2000],
            ..CustomerState::default()
        };
        let worker = WorkerRecord {
            breakers: Vec::new(),
            config_json: None,
        };
        let mut stored = Stored::default();
        stored
            .parts
            .insert(Part::Ledger, vec![(key(0, &[5]), encode(&ledger))]);
        stored
            .parts
            .insert(Part::Windows, vec![(key(0, &[1500, 0]), encode(&held))]);
        stored
            .parts
            .insert(Part::Dedupe, vec![(key(0, &[1000, 0]), encode(&ids))]);
        stored.parts.insert(
            Part::Evaluate,
            vec![
                (key(0, &[5]), encode(&customer)),
                (worker_key(0), encode(&worker)),
            ],
        );
        stored
    }

    /// The checkpoint-record target of the fuzz harness (docs/fuzzing.md): every record
    /// kind, mutated (bit flips, truncation, splices, extreme bytes), must decode or be
    /// refused with an error; never a panic, never an unbounded allocation. Bounded by
    /// `RISKWATCH_FUZZ_ITERS` (default 20,000).
    #[test]
    fn mutated_checkpoint_records_are_refused_or_restored_never_a_panic() {
        let iters: u64 = std::env::var("RISKWATCH_FUZZ_ITERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000);
        let base = corpus();
        let layout = crate::layout::Layout::new(&riskwatch_model::config::Config::default())
            .expect("default layout");
        let strategies = Rc::new(
            crate::plan::compile(&riskwatch_model::config::Config::default(), |_| {
                Err("no imports".into())
            })
            .expect("default config compiles")
            .strategies,
        );
        // The unmutated corpus restores and prints.
        assert!(canonical(0, 1000, &base).unwrap().len() >= 5);
        WorkerState::new(strategies.clone())
            .restore(1000, &base, &layout)
            .expect("the corpus restores");
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let (mut refused, mut accepted) = (0u64, 0u64);
        for _ in 0..iters {
            let mut stored = base.clone();
            let parts: Vec<Part> = stored.parts.keys().copied().collect();
            let part = parts[(rng.next() % parts.len() as u64) as usize];
            let entries = stored.parts.get_mut(&part).expect("present");
            let i = (rng.next() % entries.len() as u64) as usize;
            let (k, v) = &mut entries[i];
            let target = if rng.next().is_multiple_of(8) { k } else { v };
            match rng.next() % 4 {
                0 if !target.is_empty() => {
                    let at = (rng.next() % target.len() as u64) as usize;
                    target[at] ^= 1 << (rng.next() % 8);
                }
                1 => {
                    let keep = (rng.next() % (target.len() as u64 + 1)) as usize;
                    target.truncate(keep);
                }
                2 => {
                    let at = (rng.next() % (target.len() as u64 + 1)) as usize;
                    let fill = [0xff, 0x00, 0x7f, 0x80][(rng.next() % 4) as usize];
                    let n = 1 + (rng.next() % 9) as usize;
                    target.splice(at..at, std::iter::repeat_n(fill, n));
                }
                _ if !target.is_empty() => {
                    let at = (rng.next() % target.len() as u64) as usize;
                    target[at] = [0x00, 0xff, 0x01, 0x7f][(rng.next() % 4) as usize];
                }
                _ => {}
            }
            let printed = canonical(0, 1000, &stored).is_ok();
            let restored = WorkerState::new(strategies.clone())
                .restore(1000, &stored, &layout)
                .is_ok();
            if printed && restored {
                accepted += 1;
            } else {
                refused += 1;
            }
        }
        assert!(refused > 0, "mutations were refused");
        assert_eq!(accepted + refused, iters);
    }

    #[test]
    fn keys_sort_by_worker_then_numbers() {
        let a = key(1, &[5, 9]);
        let b = key(1, &[6, 0]);
        let c = key(2, &[0, 0]);
        assert!(a < b && b < c);
        assert!(key(1, &[]) <= a && a < key(1, &[6]));
        assert_eq!(numbers(Part::Windows, &a).unwrap(), vec![5, 9]);
        assert!(worker_key(1) > key(1, &[u64::MAX, u64::MAX]));
    }

    #[test]
    fn records_round_trip_and_bad_bytes_are_errors_not_panics() {
        let v: Vec<(u64, Stream, u64)> = vec![(7, Stream::Transactions, 9)];
        let bytes = encode(&v);
        assert_eq!(
            decode::<Vec<(u64, Stream, u64)>>(Part::Dedupe, b"k", &bytes).unwrap(),
            v
        );
        for cut in 0..bytes.len() {
            let _ = decode::<Vec<(u64, Stream, u64)>>(Part::Dedupe, b"k", &bytes[..cut]);
        }
        let mut other = bytes.clone();
        other[0] = 9;
        let e = decode::<Vec<(u64, Stream, u64)>>(Part::Dedupe, b"k", &other).unwrap_err();
        assert!(e.detail.contains("record format 9"), "{e}");
        // A huge length prefix is refused, not allocated.
        let huge = [
            RECORD_FORMAT,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0x7f,
        ];
        assert!(decode::<Vec<u64>>(Part::Dedupe, b"k", &huge).is_err());
    }
}
