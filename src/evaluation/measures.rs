//! The measures a strategist judges a ranking by (docs/STRATEGY.md, DOMAIN.md): AUC, KS,
//! Gini, capture and bad rate by decile, and the population stability index. Plain
//! functions over `(risk, bad)` pairs, where a larger risk means more likely bad.

use serde::Serialize;

/// AUC of `risk` for telling bads from goods: the probability that a random bad ranks
/// above a random good, ties counting half (Mann–Whitney). `None` without both classes.
pub fn auc(scored: &[(f64, bool)]) -> Option<f64> {
    let mut v: Vec<(f64, bool)> = scored.to_vec();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let bads = v.iter().filter(|x| x.1).count() as f64;
    let goods = v.len() as f64 - bads;
    if bads == 0.0 || goods == 0.0 {
        return None;
    }
    // Sum of the bads' ranks (1-based, ties averaged).
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j < v.len() && v[j].0 == v[i].0 {
            j += 1;
        }
        let avg = (i + 1 + j) as f64 / 2.0;
        rank_sum += avg * v[i..j].iter().filter(|x| x.1).count() as f64;
        i = j;
    }
    Some((rank_sum - bads * (bads + 1.0) / 2.0) / (bads * goods))
}

/// KS: the largest gap between the cumulative shares of bads and of goods, walking from
/// the riskiest down (tied risks step together). `None` without both classes.
pub fn ks(scored: &[(f64, bool)]) -> Option<f64> {
    let mut v: Vec<(f64, bool)> = scored.to_vec();
    v.sort_by(|a, b| b.0.total_cmp(&a.0));
    let bads = v.iter().filter(|x| x.1).count() as f64;
    let goods = v.len() as f64 - bads;
    if bads == 0.0 || goods == 0.0 {
        return None;
    }
    let (mut b, mut g, mut best) = (0.0, 0.0, 0.0f64);
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j < v.len() && v[j].0 == v[i].0 {
            if v[j].1 {
                b += 1.0;
            } else {
                g += 1.0;
            }
            j += 1;
        }
        best = best.max((b / bads - g / goods).abs());
        i = j;
    }
    Some(best)
}

/// One decile of a ranking, riskiest first.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decile {
    /// 1 is the riskiest tenth.
    pub decile: u32,
    /// Customers in it.
    pub count: u64,
    /// Bads in it.
    pub bads: u64,
    /// Bads over customers.
    pub bad_rate: f64,
    /// Share of all bads in this decile and the riskier ones.
    pub capture: f64,
}

/// Bad rate and cumulative capture by decile of `risk`, riskiest first. Customers are split
/// into ten groups of (nearly) equal count in risk order; equal risks may fall in two
/// neighbouring deciles, in input order.
pub fn deciles(scored: &[(f64, bool)]) -> Vec<Decile> {
    let mut v: Vec<(f64, bool)> = scored.to_vec();
    // Stable: equal risks keep their input order.
    v.sort_by(|a, b| b.0.total_cmp(&a.0));
    let n = v.len();
    let all_bads = v.iter().filter(|x| x.1).count() as f64;
    let mut out = Vec::new();
    let mut captured = 0u64;
    for d in 0..10 {
        let (from, to) = (n * d / 10, n * (d + 1) / 10);
        if from == to {
            continue;
        }
        let bads = v[from..to].iter().filter(|x| x.1).count() as u64;
        captured += bads;
        out.push(Decile {
            decile: d as u32 + 1,
            count: (to - from) as u64,
            bads,
            bad_rate: bads as f64 / (to - from) as f64,
            capture: if all_bads > 0.0 {
                captured as f64 / all_bads
            } else {
                0.0
            },
        });
    }
    out
}

/// Population stability index of `actual` against `expected`: both are shares per bin
/// (summing to 1); an empty bin counts as 0.0001 so that the index stays finite.
pub fn psi(expected: &[f64], actual: &[f64]) -> f64 {
    expected
        .iter()
        .zip(actual)
        .map(|(e, a)| {
            let (e, a) = (e.max(1e-4), a.max(1e-4));
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// Bin edges at the deciles of `values` (up to 9 distinct inner edges).
pub fn decile_edges(values: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let mut edges: Vec<f64> = (1..10)
        .filter_map(|d| v.get(v.len() * d / 10).copied())
        .collect();
    edges.dedup();
    edges
}

/// Shares of `values` in the bins that `edges` bound (`edges.len() + 1` bins, each
/// left-closed: bin `i` holds values in `[edges[i-1], edges[i])`).
pub fn shares(values: &[f64], edges: &[f64]) -> Vec<f64> {
    let mut counts = vec![0u64; edges.len() + 1];
    for x in values.iter().filter(|x| x.is_finite()) {
        counts[edges.partition_point(|e| e <= x)] += 1;
    }
    let n = counts.iter().sum::<u64>().max(1) as f64;
    counts.iter().map(|c| *c as f64 / n).collect()
}

/// The value at quantile `q` (0–1) of sorted `v`, by nearest rank; `None` when empty.
pub fn quantile(v: &[f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    Some(v[i.min(v.len() - 1)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn auc_and_ks_of_perfect_random_and_tied_rankings() {
        let perfect = [(3.0, true), (2.0, true), (1.0, false), (0.0, false)];
        assert_eq!(auc(&perfect), Some(1.0));
        assert_eq!(ks(&perfect), Some(1.0));
        let inverted = [(0.0, true), (1.0, true), (2.0, false), (3.0, false)];
        assert_eq!(auc(&inverted), Some(0.0));
        // Everyone tied: no information.
        let tied = [(1.0, true), (1.0, false), (1.0, false), (1.0, true)];
        assert_eq!(auc(&tied), Some(0.5));
        assert_eq!(ks(&tied), Some(0.0));
        // Hand-computed: bads at 3 and 1, goods at 2 and 0 → pairs (3>2, 3>0, 1<2, 1>0) = 3/4.
        let mixed = [(3.0, true), (2.0, false), (1.0, true), (0.0, false)];
        assert!(close(auc(&mixed).unwrap(), 0.75));
        // KS: after 3 → 1/2 bads, 0 goods (0.5); after 2 → 1/2, 1/2 (0); after 1 → 1, 1/2.
        assert!(close(ks(&mixed).unwrap(), 0.5));
        assert_eq!(auc(&[(1.0, true)]), None, "one class only");
    }

    #[test]
    fn deciles_split_by_count_and_capture_adds_up_to_one() {
        // 20 customers, risk 19..0; the 4 riskiest are bad.
        let v: Vec<(f64, bool)> = (0..20).map(|i| (19.0 - i as f64, i < 4)).collect();
        let d = deciles(&v);
        assert_eq!(d.len(), 10);
        assert_eq!((d[0].count, d[0].bads, d[0].capture), (2, 2, 0.5));
        assert_eq!((d[1].bads, d[1].capture), (2, 1.0));
        assert!(d[2..].iter().all(|x| x.bads == 0 && x.capture == 1.0));
    }

    #[test]
    fn psi_is_zero_for_the_same_distribution_and_grows_with_a_shift() {
        let before: Vec<f64> = (0..1000).map(|i| i as f64).collect();
        let edges = decile_edges(&before);
        assert_eq!(edges.len(), 9);
        let same = shares(&before, &edges);
        assert!(same.iter().all(|s| close(*s, 0.1)));
        assert!(close(psi(&same, &same), 0.0));
        let shifted: Vec<f64> = (0..1000).map(|i| i as f64 + 300.0).collect();
        let p = psi(&same, &shares(&shifted, &edges));
        assert!(p > 0.25, "a 30% shift is a shifted population: {p}");
    }
}
