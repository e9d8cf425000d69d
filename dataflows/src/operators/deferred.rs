//! Window retractions held back until the input frontier reaches their time, and how they
//! are checkpointed.
//!
//! Emitting a retraction at `ceil_g(ts + W)` the moment the event arrives would park it in
//! the downstream arrangement's batcher for up to W, where every later batch merges past it
//! again. Held here instead — one small queue entry per (customer, window, granule), with
//! retractions of the same granule summed in place — each retraction is moved once, and
//! released, still at its own time, when the frontier gets there. The outputs are the same;
//! the ledger holds a capability for the earliest held time.
//!
//! Retraction times are granule-aligned, so they are kept in buckets by time (a
//! `BTreeMap`), each a list of fixed-size chunks; entries live in [`Slab`]s. Nothing grows
//! by reallocating one large buffer (see [`Slab`]). Within a time, the release order is the
//! insertion order; the outputs are collections, consolidated downstream.
//!
//! # Checkpoints
//! The held retractions *are* the window state: every contribution still inside its window
//! has exactly one pending retraction, so a window's current sum is the negated sum of its
//! customer's pending retractions, and a distinct set is the multiset of pending distinct
//! retractions ([`Deferred::current`]). A checkpoint writes only the chunks that changed
//! since the previous one ([`Deferred::take_dirty`]), keyed by `(time, chunk)`; chunks of
//! released times are deleted as a range. Restoring pushes the chunks back in key order,
//! which preserves the release order within a time.

use super::ledger::{Buffers, KeyHasher};
use crate::slots::Slots;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[allow(clippy::large_enum_variant)] // Sum is the common case; boxing it would allocate.
enum Retraction {
    /// A window's summed slots, stored apart in [`Deferred::sums`] (at this index): they are
    /// 256 bytes, every other retraction a few.
    Sum(u8, u32),
    Distinct(u8, u64),
    /// A link whose latest sighting may have expired; checked against `links` on release.
    Link(u64),
}

/// A held retraction as checkpointed: a window's non-zero slots, a distinct occurrence, or
/// a link check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HeldRecord {
    /// `(window, [(slot, value)])`, values as retracted (negative of the contributions).
    Sum(u8, Vec<(u8, i64)>),
    /// `(slot, identifier hash)`.
    Distinct(u8, u64),
    /// The identifier hash of a link.
    Link(u64),
}

/// A changed chunk: `(time, chunk index, its entries as (customer key, record))`.
pub type DirtyChunk = (u64, u32, Vec<(u64, HeldRecord)>);

/// A distinct-count occurrence: `(customer key, slot, identifier hash)`.
pub type DistinctOccurrence = (u64, u8, u64);

/// Entries per chunk of a [`Slab`] and of a bucket's list.
pub(super) const CHUNK: usize = 1 << 12;

/// Values addressed by a `u32`, stored in fixed-size chunks, with freed places reused.
///
/// Growing never moves what is stored. A `Vec` of millions of entries that doubles copies
/// hundreds of megabytes into freshly faulted pages at once: measured through Kafka at 50k
/// events/s, that stalled both workers for ~450 ms every time the held retractions crossed
/// a power of two, and was most of the p99 latency.
pub(super) struct Slab<T> {
    chunks: Vec<Vec<Option<T>>>,
    free: Vec<u32>,
    len: u32,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            chunks: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    pub(super) fn insert(&mut self, value: T) -> u32 {
        if let Some(i) = self.free.pop() {
            self.chunks[i as usize / CHUNK][i as usize % CHUNK] = Some(value);
            return i;
        }
        let i = self.len;
        if (i as usize).is_multiple_of(CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        self.chunks
            .last_mut()
            .expect("a chunk was just pushed")
            .push(Some(value));
        self.len += 1;
        i
    }

    pub(super) fn get(&self, i: u32) -> Option<&T> {
        self.chunks[i as usize / CHUNK][i as usize % CHUNK].as_ref()
    }

    pub(super) fn get_mut(&mut self, i: u32) -> Option<&mut T> {
        self.chunks[i as usize / CHUNK][i as usize % CHUNK].as_mut()
    }

    /// Takes the value out; its place stays reserved until [`Slab::release`].
    pub(super) fn take(&mut self, i: u32) -> Option<T> {
        self.chunks[i as usize / CHUNK][i as usize % CHUNK].take()
    }

    /// Puts a value back into a place taken but not released.
    pub(super) fn restore(&mut self, i: u32, value: T) {
        self.chunks[i as usize / CHUNK][i as usize % CHUNK] = Some(value);
    }

    /// Makes a taken place reusable.
    pub(super) fn release(&mut self, i: u32) {
        self.free.push(i);
    }
}

/// The held retractions of one ledger operator (see the module documentation).
#[derive(Default)]
pub struct Deferred {
    buckets: BTreeMap<u64, Vec<Vec<(u64, u32)>>>,
    entries: Slab<Retraction>,
    sums: Slab<Slots>,
    /// The latest held sum retraction per (customer, window): `(time, entry, chunk)`.
    last: HashMap<(u64, u8), (u64, u32, u32), KeyHasher>,
    /// Chunks changed since the last checkpoint, as `(time, chunk index)`; kept only when
    /// `tracking` (a run with checkpoints), so that other runs pay nothing per retraction.
    dirty: BTreeSet<(u64, u32)>,
    /// Whether changes are tracked for checkpoints.
    pub tracking: bool,
}

impl Deferred {
    /// Appends an entry to the bucket of `time`; returns its chunk index.
    fn push(&mut self, time: u64, key: u64, idx: u32) -> u32 {
        let bucket = self.buckets.entry(time).or_default();
        let chunk = match bucket.last_mut() {
            Some(chunk) if chunk.len() < CHUNK => {
                chunk.push((key, idx));
                bucket.len() - 1
            }
            _ => {
                let mut chunk = Vec::with_capacity(if bucket.is_empty() { 16 } else { CHUNK });
                chunk.push((key, idx));
                bucket.push(chunk);
                bucket.len() - 1
            }
        } as u32;
        if self.tracking {
            self.dirty.insert((time, chunk));
        }
        chunk
    }

    /// Holds the retraction of a window's sums of `key` at `time`, summed into the held one
    /// of the same customer, window and time if that is the latest.
    pub fn retract_sum(&mut self, key: u64, window: u8, time: u64, slots: Slots) {
        if let Some(&(t, idx, chunk)) = self.last.get(&(key, window)) {
            if t == time {
                if let Some(&mut Retraction::Sum(_, s)) = self.entries.get_mut(idx) {
                    if let Some(held) = self.sums.get_mut(s) {
                        differential_dataflow::difference::Semigroup::plus_equals(held, &slots);
                        if self.tracking {
                            self.dirty.insert((time, chunk));
                        }
                        return;
                    }
                }
            }
        }
        let s = self.sums.insert(slots);
        let idx = self.entries.insert(Retraction::Sum(window, s));
        let chunk = self.push(time, key, idx);
        self.last.insert((key, window), (time, idx, chunk));
    }

    /// Holds a check, at `time`, whether the link of `key` to `ident` has expired.
    pub fn check_link(&mut self, key: u64, time: u64, ident: u64) {
        let idx = self.entries.insert(Retraction::Link(ident));
        self.push(time, key, idx);
    }

    /// Holds the retraction of one distinct occurrence.
    pub fn retract_distinct(&mut self, key: u64, time: u64, slot: u8, value: u64) {
        let idx = self.entries.insert(Retraction::Distinct(slot, value));
        self.push(time, key, idx);
    }

    /// The earliest held time.
    pub fn least(&self) -> Option<u64> {
        self.buckets.keys().next().copied()
    }

    /// Moves every retraction with a time before `limit` into `out`; a link is retracted
    /// only if it was not seen again since (else its check moves to the new expiry). The
    /// customers whose links were retracted are appended to `unlinked`.
    pub(super) fn release(
        &mut self,
        limit: u64,
        out: &mut Buffers,
        links: &mut HashMap<(u64, u64), u64, KeyHasher>,
        unlinked: &mut Vec<u64>,
    ) {
        while let Some(entry) = self.buckets.first_entry() {
            if *entry.key() >= limit {
                break;
            }
            let (time, bucket) = entry.remove_entry();
            for (key, idx) in bucket.into_iter().flatten() {
                match self.entries.take(idx) {
                    Some(Retraction::Sum(window, s)) => {
                        if self.last.get(&(key, window)).map(|l| (l.0, l.1)) == Some((time, idx)) {
                            self.last.remove(&(key, window));
                        }
                        if let Some(slots) = self.sums.take(s) {
                            out.sums.push((key, time, slots));
                        }
                        self.sums.release(s);
                    }
                    Some(Retraction::Distinct(slot, value)) => {
                        out.distinct.push(((key, slot, value), time, -1));
                    }
                    Some(Retraction::Link(ident)) => match links.get(&(key, ident)).copied() {
                        // Seen again: check at the new expiry (a later bucket, reached in
                        // this loop if it is before `limit`).
                        Some(expiry) if expiry > time => {
                            self.entries.restore(idx, Retraction::Link(ident));
                            self.push(expiry, key, idx);
                            continue;
                        }
                        _ => {
                            links.remove(&(key, ident));
                            out.links.push(((key, ident), time, -1));
                            unlinked.push(key);
                        }
                    },
                    None => {}
                }
                self.entries.release(idx);
            }
        }
    }

    /// The record of a held entry.
    fn record(&self, idx: u32) -> Option<HeldRecord> {
        Some(match self.entries.get(idx)? {
            Retraction::Sum(window, s) => {
                let slots = self.sums.get(*s)?;
                let nonzero = slots
                    .0
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| **v != 0)
                    .map(|(i, v)| (i as u8, *v))
                    .collect();
                HeldRecord::Sum(*window, nonzero)
            }
            Retraction::Distinct(slot, value) => HeldRecord::Distinct(*slot, *value),
            Retraction::Link(ident) => HeldRecord::Link(*ident),
        })
    }

    /// The chunks changed since the last call, at times from `from` on, as
    /// `(time, chunk index, entries)`; forgets the changes.
    pub fn take_dirty(&mut self, from: u64) -> Vec<DirtyChunk> {
        let dirty = std::mem::take(&mut self.dirty);
        let mut out = Vec::new();
        for (time, chunk) in dirty.into_iter().filter(|(t, _)| *t >= from) {
            let Some(list) = self.buckets.get(&time).and_then(|b| b.get(chunk as usize)) else {
                continue;
            };
            let entries = list
                .iter()
                .filter_map(|&(key, idx)| self.record(idx).map(|r| (key, r)))
                .collect();
            out.push((time, chunk, entries));
        }
        out
    }

    /// Marks every chunk changed: the next checkpoint writes them all.
    pub fn mark_all_dirty(&mut self) {
        for (time, bucket) in &self.buckets {
            for chunk in 0..bucket.len() as u32 {
                self.dirty.insert((*time, chunk));
            }
        }
    }

    /// Puts back a checkpointed chunk of `time`. Chunks must come in `(time, chunk)` order.
    pub fn restore_chunk(&mut self, time: u64, entries: Vec<(u64, HeldRecord)>) {
        let bucket = self.buckets.entry(time).or_default();
        let chunk = bucket.len() as u32;
        let mut list = Vec::with_capacity(entries.len());
        for (key, record) in entries {
            let idx = match record {
                HeldRecord::Sum(window, values) => {
                    let mut slots = Slots::ZERO;
                    for (slot, v) in values {
                        if let Some(x) = slots.0.get_mut(slot as usize) {
                            *x = v;
                        }
                    }
                    let s = self.sums.insert(slots);
                    let idx = self.entries.insert(Retraction::Sum(window, s));
                    let newer = self
                        .last
                        .get(&(key, window))
                        .is_none_or(|&(t, _, _)| t <= time);
                    if newer {
                        self.last.insert((key, window), (time, idx, chunk));
                    }
                    idx
                }
                HeldRecord::Distinct(slot, value) => {
                    self.entries.insert(Retraction::Distinct(slot, value))
                }
                HeldRecord::Link(ident) => self.entries.insert(Retraction::Link(ident)),
            };
            list.push((key, idx));
        }
        self.buckets
            .get_mut(&time)
            .expect("inserted above")
            .push(list);
    }

    /// The window state the held retractions stand for: per customer, the current sums (the
    /// negated sum of its held sum retractions, zero slots left out), and every distinct
    /// occurrence `(key, slot, value)` once per held retraction.
    pub fn current(&self) -> (Vec<(u64, Slots)>, Vec<DistinctOccurrence>) {
        let mut sums: HashMap<u64, Slots, KeyHasher> = HashMap::default();
        let mut distinct = Vec::new();
        for bucket in self.buckets.values() {
            for &(key, idx) in bucket.iter().flatten() {
                match self.entries.get(idx) {
                    Some(Retraction::Sum(_, s)) => {
                        if let Some(slots) = self.sums.get(*s) {
                            let total = sums.entry(key).or_default();
                            let mut neg = *slots;
                            differential_dataflow::difference::Abelian::negate(&mut neg);
                            differential_dataflow::difference::Semigroup::plus_equals(total, &neg);
                        }
                    }
                    Some(Retraction::Distinct(slot, value)) => distinct.push((key, *slot, *value)),
                    _ => {}
                }
            }
        }
        let mut sums: Vec<(u64, Slots)> = sums
            .into_iter()
            .filter(|(_, s)| *s != Slots::ZERO)
            .collect();
        sums.sort_unstable_by_key(|(k, _)| *k);
        distinct.sort_unstable();
        (sums, distinct)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slab_keeps_values_in_place_across_chunks_and_reuses_freed_places() {
        let mut slab = Slab::default();
        let n = 3 * CHUNK as u32 + 5;
        let ids: Vec<u32> = (0..n).map(|i| slab.insert(u64::from(i) * 7)).collect();
        assert_eq!(ids, (0..n).collect::<Vec<_>>());
        assert_eq!(slab.chunks.len(), 4);
        for i in (0..n).step_by(3) {
            assert_eq!(slab.take(i), Some(u64::from(i) * 7));
            assert_eq!(slab.take(i), None, "taken once");
            slab.release(i);
        }
        // Taken and restored without release: the place stays this value's.
        assert_eq!(slab.take(1), Some(7));
        slab.restore(1, 70);
        assert_eq!(slab.get_mut(1).copied(), Some(70));
        // Freed places are reused before the slab grows.
        let again = slab.insert(1);
        assert_eq!(again % 3, 0);
        assert!(again < n);
        assert_eq!(slab.len, n);
        for i in (1..n).filter(|i| i % 3 != 0 && *i != 1) {
            assert_eq!(slab.get_mut(i).copied(), Some(u64::from(i) * 7));
        }
    }

    fn filled() -> Deferred {
        filled_with(false)
    }

    fn filled_tracked() -> Deferred {
        filled_with(true)
    }

    fn filled_with(tracking: bool) -> Deferred {
        let mut d = Deferred {
            tracking,
            ..Deferred::default()
        };
        d.retract_sum(1, 0, 100, Slots::unit(0, -5));
        d.retract_sum(1, 0, 100, Slots::unit(1, -2)); // summed in place
        d.retract_sum(2, 1, 200, Slots::unit(3, -7));
        d.retract_distinct(1, 100, 4, 99);
        d.retract_distinct(1, 200, 4, 99);
        d.check_link(2, 300, 42);
        d
    }

    #[test]
    fn current_is_the_negated_held_sums_and_the_held_distinct_occurrences() {
        let (sums, distinct) = filled().current();
        let mut one = Slots::unit(0, 5);
        one.0[1] = 2;
        assert_eq!(sums, vec![(1, one), (2, Slots::unit(3, 7))]);
        assert_eq!(distinct, vec![(1, 4, 99), (1, 4, 99)]);
    }

    #[test]
    fn dirty_chunks_round_trip_into_an_equal_deferred() {
        let mut d = filled_tracked();
        let chunks = d.take_dirty(0);
        assert_eq!(chunks.len(), 3, "one chunk per time");
        assert!(d.take_dirty(0).is_empty(), "taking forgets the changes");
        let mut back = Deferred::default();
        for (time, _, entries) in chunks.clone() {
            back.restore_chunk(time, entries);
        }
        assert_eq!(back.current(), d.current());
        back.mark_all_dirty();
        assert_eq!(back.take_dirty(0), chunks);
        // An in-place sum marks its chunk changed again; released times are not written.
        d.retract_sum(1, 0, 100, Slots::unit(0, -1));
        let mut out = Buffers::default();
        let mut links = HashMap::default();
        let mut unlinked = Vec::new();
        d.release(150, &mut out, &mut links, &mut unlinked);
        assert_eq!(out.sums.len(), 1);
        assert_eq!(out.sums[0].2 .0[0], -6);
        assert!(d.take_dirty(150).is_empty());
    }
}
