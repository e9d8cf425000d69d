//! The fixed-size vector difference that carries every summed window feature of one
//! customer in one update.
//!
//! An event adds its contributions to all windows' slots at once and each window retracts
//! only its own slots later, so `count_total` on `(customer, Slots)` yields the whole
//! feature vector per change without a `reduce` (DESIGN.md, Windows and aggregates). A fixed
//! array rather than a `Vec` keeps updates free of heap allocation.

use differential_dataflow::difference::{Abelian, IsZero, Monoid, Multiply, Semigroup};
use serde::{Deserialize, Serialize};

/// Compile-time maximum of summed and distinct-count slots over all windows.
pub const MAX_SLOTS: usize = 32;

/// One value per slot; an abelian group under element-wise addition.
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
            *a += *b;
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
            *a = -*a;
        }
    }
}

impl Multiply<isize> for Slots {
    type Output = Slots;
    #[inline]
    fn multiply(mut self, rhs: &isize) -> Slots {
        let r = *rhs as i64;
        for a in self.0.iter_mut() {
            *a *= r;
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
}
