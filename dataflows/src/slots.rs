//! The fixed-size vector difference that carries every summed window feature of one
//! customer in one update.
//!
//! An event adds its contributions to all windows' slots at once and each window retracts
//! only its own slots later, so `count_total` on `(customer, Slots)` yields the whole
//! feature vector per change without a `reduce` (DESIGN.md, Windows and aggregates). A fixed
//! array rather than a `Vec` keeps updates free of heap allocation.
//!
//! # Overflow
//! The group operations wrap: each slot is an element of the integers modulo 2^64, read as
//! two's-complement `i64`. That is an abelian group, and reducing an integer modulo 2^64 is
//! a group homomorphism, so however differential groups and orders its consolidations (a
//! batch merge may add a thousand insertions before the retractions that cancel them), the
//! result is the true sum modulo 2^64 — equal to the true sum whenever that lies in `i64`.
//! An overflow in a partial sum is therefore harmless, which neither alternative gets
//! right: checked addition would panic on such a partial sum, and saturating addition is
//! not associative (`(MAX + 1) - 1` is `MAX - 1`, `MAX + (1 - 1)` is `MAX`), so the answer
//! would depend on the merge order and a retraction would not undo its insertion.
//!
//! What must fit is the true sum of one slot: one customer's contributions to one measure
//! over one window, at one time. Decode bounds every money field by
//! [`MAX_MINOR`](riskwatch_model::decode::MAX_MINOR) = 10^15 minor units and every count
//! contribution is 1, so a slot holds at most `n × 10^15` for `n` events in its window and
//! stays exact for up to [`MAX_EXACT_EVENTS`] maximal amounts per customer, measure and
//! window: 9.2 × 10^18 minor units, some 92 quadrillion in major units, more than a century
//! of world GDP moved by one customer inside one window. riskwatch documents that volume as
//! its bound and does not enforce it further; within it a slot's value cannot overflow, so
//! wrapping only ever acts on partial sums, never on a value a feature reads.

use differential_dataflow::difference::{Abelian, IsZero, Monoid, Multiply, Semigroup};
use serde::{Deserialize, Serialize};

/// Compile-time maximum of summed and distinct-count slots over all windows.
pub const MAX_SLOTS: usize = 32;

/// How many contributions of the largest amount one slot holds exactly: `i64::MAX` divided
/// by [`MAX_MINOR`](riskwatch_model::decode::MAX_MINOR), 9,223 (see the module
/// documentation, Overflow).
pub const MAX_EXACT_EVENTS: u64 = i64::MAX as u64 / riskwatch_model::decode::MAX_MINOR;

/// One value per slot; an abelian group under element-wise wrapping addition (see the
/// module documentation, Overflow).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Slots(pub [i64; MAX_SLOTS]);

impl Default for Slots {
    fn default() -> Self {
        Slots([0; MAX_SLOTS])
    }
}

impl Slots {
    /// All zero.
    pub const ZERO: Slots = Slots([0; MAX_SLOTS]);

    /// A vector with `value` in `slot` and zero elsewhere.
    #[inline]
    pub fn unit(slot: usize, value: i64) -> Slots {
        let mut s = Slots::ZERO;
        s.0[slot] = value;
        s
    }

    /// The slots selected by `mask` (bit i = slot i), others zeroed.
    #[inline]
    pub fn masked(&self, mask: u64) -> Slots {
        let mut out = Slots::ZERO;
        for (i, v) in self.0.iter().enumerate() {
            if mask & (1 << i) != 0 {
                out.0[i] = *v;
            }
        }
        out
    }

    /// True if any slot selected by `mask` is non-zero.
    #[inline]
    pub fn any_in(&self, mask: u64) -> bool {
        self.0
            .iter()
            .enumerate()
            .any(|(i, v)| *v != 0 && mask & (1 << i) != 0)
    }
}

impl IsZero for Slots {
    #[inline]
    fn is_zero(&self) -> bool {
        self.0.iter().all(|v| *v == 0)
    }
}

impl Semigroup for Slots {
    #[inline]
    fn plus_equals(&mut self, rhs: &Self) {
        for (a, b) in self.0.iter_mut().zip(rhs.0.iter()) {
            *a = a.wrapping_add(*b);
        }
    }
}

impl Monoid for Slots {
    #[inline]
    fn zero() -> Self {
        Slots::ZERO
    }
}

impl Abelian for Slots {
    #[inline]
    fn negate(&mut self) {
        for a in self.0.iter_mut() {
            *a = a.wrapping_neg();
        }
    }
}

impl Multiply<isize> for Slots {
    type Output = Slots;
    #[inline]
    fn multiply(mut self, rhs: &isize) -> Slots {
        let r = *rhs as i64;
        for a in self.0.iter_mut() {
            *a = a.wrapping_mul(r);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_laws_hold_elementwise() {
        let mut a = Slots::unit(3, 7);
        let b = Slots::unit(5, 2);
        a.plus_equals(&b);
        assert_eq!(a.0[3], 7);
        assert_eq!(a.0[5], 2);
        let mut n = a;
        n.negate();
        n.plus_equals(&a);
        assert!(n.is_zero());
        assert_eq!(a.multiply(&-2).0[3], -14);
        assert_eq!(a.masked(1 << 5), Slots::unit(5, 2));
        assert!(a.any_in(1 << 3));
        assert!(!a.any_in(1 << 4));
    }

    /// Regression: `+=` on the slots overflowed in a partial sum. A merge that adds the
    /// insertions of many large amounts before the retractions that cancel them must still
    /// give the exact window sum, in every grouping and order.
    #[test]
    fn partial_sums_past_i64_max_still_consolidate_to_the_exact_sum() {
        let max = riskwatch_model::decode::MAX_MINOR as i64;
        // 20,000 events of the largest amount, each inserted and retracted, and 3 more that
        // stay: the partial sum of the insertions alone is 2 × 10^19, past i64::MAX.
        let mut updates: Vec<Slots> = Vec::new();
        for _ in 0..20_000 {
            updates.push(Slots::unit(0, max));
        }
        for _ in 0..20_000 {
            updates.push(Slots::unit(0, -max));
        }
        for _ in 0..3 {
            updates.push(Slots::unit(0, max));
        }
        let fold = |order: &mut dyn Iterator<Item = &Slots>| {
            let mut acc = Slots::ZERO;
            for u in order {
                acc.plus_equals(u);
            }
            acc
        };
        let expect = Slots::unit(0, 3 * max);
        assert_eq!(fold(&mut updates.iter()), expect);
        assert_eq!(fold(&mut updates.iter().rev()), expect);
        // Interleaved and pre-summed in chunks, as batch merges do.
        let mut chunks = Vec::new();
        for chunk in updates.chunks(777) {
            chunks.push(fold(&mut chunk.iter()));
        }
        assert_eq!(fold(&mut chunks.iter().rev()), expect);
        // A retraction is the exact inverse of its insertion, even at the extremes.
        let mut x = Slots::unit(1, i64::MAX);
        x.plus_equals(&Slots::unit(1, 1));
        x.plus_equals(&Slots::unit(1, -1));
        assert_eq!(x, Slots::unit(1, i64::MAX));
        let mut m = Slots::unit(2, i64::MIN);
        m.negate();
        assert_eq!(m, Slots::unit(2, i64::MIN));
        assert_eq!(Slots::unit(3, i64::MAX).multiply(&2).0[3], -2);
    }

    #[test]
    fn the_documented_bound_is_exact_at_its_limit() {
        let max = riskwatch_model::decode::MAX_MINOR as i64;
        assert_eq!(MAX_EXACT_EVENTS, 9_223);
        let mut acc = Slots::ZERO;
        for _ in 0..MAX_EXACT_EVENTS {
            acc.plus_equals(&Slots::unit(0, max));
        }
        assert_eq!(acc.0[0], 9_223_000_000_000_000_000);
        // One more would pass i64::MAX: the bound is tight.
        assert!((MAX_EXACT_EVENTS as i64 * max).checked_add(max).is_none());
    }
}
