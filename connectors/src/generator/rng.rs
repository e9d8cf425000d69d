//! The generator's own deterministic randomness: SplitMix64 and a few distributions built
//! only from integer arithmetic and IEEE `+ - * /`, so output never depends on a crate's
//! algorithm or on a platform's `exp`/`ln`.

/// SplitMix64's output function: a bijection on `u64` with good avalanche. Also used to
/// turn unique counters into unique, hash-looking identifiers.
#[inline]
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64 generator. Cheap to seed, so every (customer, day) gets its own stream and
/// the output does not depend on the order customers are visited in.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

/// Lognormal(σ = 0.75) quantiles at 32 equal-probability midpoints, in thousandths of the
/// mean: amounts are right-skewed without calling `exp`.
const SKEW: [u16; 32] = [
    152, 218, 265, 305, 342, 377, 411, 445, 479, 514, 549, 585, 622, 661, 702, 744, 789, 837, 889,
    944, 1004, 1070, 1144, 1226, 1320, 1429, 1559, 1720, 1928, 2220, 2694, 3856,
];

/// Relative activity per hour of the (lender-local, here UTC) day.
const HOURS: [u32; 24] = [
    2, 1, 1, 1, 1, 2, 4, 7, 9, 9, 9, 10, 12, 10, 9, 9, 9, 10, 12, 14, 14, 12, 8, 5,
];
const HOURS_TOTAL: u32 = 200;

impl Rng {
    /// A generator for one purpose, keyed by up to three numbers.
    pub(crate) fn keyed(seed: u64, a: u64, b: u64, c: u64) -> Rng {
        Rng(mix(seed
            ^ mix(
                a.wrapping_add(GOLDEN) ^ mix(b ^ mix(c.wrapping_add(1)))
            )))
    }

    /// Next 64 random bits.
    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix(self.0)
    }

    /// Uniform in `0..n` (0 when `n` is 0), by multiply-shift.
    #[inline]
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `lo..=hi` (`lo` when `hi < lo`).
    #[inline]
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            lo
        } else {
            lo + self.below(hi - lo + 1)
        }
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[lo, hi)`.
    #[inline]
    pub(crate) fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// True with probability `p`.
    #[inline]
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Poisson-distributed count with mean `lambda` (inversion; capped at 200).
    pub(crate) fn poisson(&mut self, lambda: f64) -> u32 {
        if lambda <= 0.0 {
            return 0;
        }
        let u = self.unit();
        let mut p = exp_neg(lambda);
        let mut cdf = p;
        let mut k = 0u32;
        while u >= cdf && k < 200 {
            k += 1;
            p *= lambda / k as f64;
            cdf += p;
            if p < 1e-300 {
                break;
            }
        }
        k
    }

    /// A right-skewed amount (lognormal-like) with the given mean, at least 1.
    pub(crate) fn skewed(&mut self, mean: u64) -> u64 {
        let r = self.next_u64();
        let q = SKEW[(r & 31) as usize] as u64;
        // ±10 % jitter within the quantile bucket.
        let jitter = 900 + ((r >> 8) % 201);
        (mean.saturating_mul(q) / 1000 * jitter / 1000).max(1)
    }

    /// Milliseconds into a day, following the hourly activity profile.
    pub(crate) fn time_of_day(&mut self) -> u64 {
        let mut x = self.below(HOURS_TOTAL as u64) as u32;
        let mut hour = 0u64;
        for (h, w) in HOURS.iter().enumerate() {
            if x < *w {
                hour = h as u64;
                break;
            }
            x -= w;
        }
        hour * 3_600_000 + self.below(3_600_000)
    }

    /// Milliseconds into a day, uniform within `[from_h, to_h)` hours.
    pub(crate) fn hours(&mut self, from_h: u64, to_h: u64) -> u64 {
        from_h * 3_600_000 + self.below((to_h - from_h) * 3_600_000)
    }
}

/// `e^(-x)` for `x >= 0` by halving, a Taylor series and squaring: only `+ * /`, hence
/// bit-identical on every IEEE platform.
pub(crate) fn exp_neg(x: f64) -> f64 {
    let mut y = x;
    let mut halvings = 0;
    while y > 0.125 && halvings < 64 {
        y *= 0.5;
        halvings += 1;
    }
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 1..=10 {
        term *= -y / k as f64;
        sum += term;
    }
    for _ in 0..halvings {
        sum *= sum;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_neg_is_accurate() {
        for x in [0.0, 0.01, 0.5, 1.0, 3.0, 10.0, 25.0] {
            let rel = (exp_neg(x) - (-x).exp()).abs() / (-x).exp();
            assert!(rel < 1e-9, "x={x} rel={rel}");
        }
    }

    #[test]
    fn poisson_mean_is_close() {
        let mut r = Rng::keyed(1, 2, 3, 4);
        let n = 200_000;
        let total: u64 = (0..n).map(|_| r.poisson(0.7) as u64).sum();
        let mean = total as f64 / n as f64;
        assert!((mean - 0.7).abs() < 0.01, "{mean}");
    }

    #[test]
    fn skewed_mean_is_close() {
        let mut r = Rng::keyed(9, 0, 0, 0);
        let n = 200_000u64;
        let total: u64 = (0..n).map(|_| r.skewed(10_000)).sum();
        let mean = total / n;
        assert!((9_800..10_200).contains(&mean), "{mean}");
    }
}
