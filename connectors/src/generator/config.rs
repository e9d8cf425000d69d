//! Configuration of the synthetic loan-book generator: book size, period, seed and the
//! archetype mix.

use std::io;

use serde::{Deserialize, Serialize};

/// One day in milliseconds.
pub const DAY_MS: u64 = 86_400_000;

/// Default start of the generated period: 2026-01-01T00:00:00Z.
pub const DEFAULT_START_MS: u64 = 1_767_225_600_000;

/// Largest supported book: identifiers of devices and IPs are derived bijectively from the
/// customer number in 26 bits.
pub const MAX_CUSTOMERS: u64 = 1 << 26;

/// What a generated book looks like.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenConfig {
    /// Number of customers (`C0000000` …); at most [`MAX_CUSTOMERS`].
    pub customers: u64,
    /// Length of the period in days; every event lies in
    /// `[start_ms, start_ms + days * 86_400_000)`.
    pub days: u64,
    /// Seed of every random choice: the same config gives byte-identical files.
    pub seed: u64,
    /// Start of the period, epoch ms (UTC). Best at a UTC midnight: days and due dates
    /// are UTC days.
    pub start_ms: u64,
    /// Shares of the archetypes.
    pub mix: ArchetypeMix,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            customers: 10_000,
            days: 90,
            seed: 42,
            start_ms: DEFAULT_START_MS,
            mix: ArchetypeMix::default(),
        }
    }
}

impl GenConfig {
    /// End of the period (exclusive), epoch ms.
    pub fn end_ms(&self) -> u64 {
        self.start_ms
            .saturating_add(self.days.saturating_mul(DAY_MS))
    }

    /// Checks the config; an error is `InvalidInput` with a message naming the field.
    pub fn validate(&self) -> io::Result<()> {
        let bad = |msg: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, msg.to_string()));
        if self.days == 0 || self.days > 3660 {
            return bad("generator: 'days' must be within 1..=3660");
        }
        if self.customers > MAX_CUSTOMERS {
            return bad("generator: 'customers' is above the supported maximum (2^26)");
        }
        if self.end_ms() >= 32_503_680_000_000 {
            return bad("generator: the period ends after the year 3000");
        }
        let shares = self.mix.shares();
        if shares.iter().any(|s| !s.is_finite() || *s < 0.0) || shares.iter().sum::<f64>() <= 0.0 {
            return bad("generator: 'mix' shares must be finite, non-negative, not all zero");
        }
        Ok(())
    }
}

/// Shares of the customer archetypes; they are normalised by their sum, so they need not
/// add up to 1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArchetypeMix {
    /// Customers who pay on time (default 0.86).
    pub healthy: f64,
    /// Customers who decline over weeks, then default (default 0.06).
    pub deteriorating: f64,
    /// Customers who behave, max out within days, then default (default 0.03).
    pub bust_out: f64,
    /// Customers in rings sharing devices, IPs or phones, busting out together
    /// (default 0.03).
    pub fraud_ring: f64,
    /// Customers who miss one installment, pay it 5–20 days late, then recover
    /// (default 0.02).
    pub cured: f64,
}

impl Default for ArchetypeMix {
    fn default() -> Self {
        ArchetypeMix {
            healthy: 0.86,
            deteriorating: 0.06,
            bust_out: 0.03,
            fraud_ring: 0.03,
            cured: 0.02,
        }
    }
}

impl ArchetypeMix {
    /// The shares in the order of [`Archetype::ALL`].
    pub fn shares(&self) -> [f64; 5] {
        [
            self.healthy,
            self.deteriorating,
            self.bust_out,
            self.fraud_ring,
            self.cured,
        ]
    }
}

/// The behaviour pattern a generated customer follows; see the module docs for numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Archetype {
    /// Pays on time, moderate utilisation, a little realistic noise.
    Healthy,
    /// Slow decline over 40–60 days, then misses and never pays again.
    Deteriorating,
    /// Normal, then maxes out within three days and never pays again.
    BustOut,
    /// Member of a ring of 4–12 customers sharing identifiers; busts out with the ring.
    FraudRing,
    /// Misses one installment, pays it 5–20 days late in full, then pays normally.
    Cured,
}

impl Archetype {
    /// All archetypes, in the order used by [`ArchetypeMix::shares`] and summaries.
    pub const ALL: [Archetype; 5] = [
        Archetype::Healthy,
        Archetype::Deteriorating,
        Archetype::BustOut,
        Archetype::FraudRing,
        Archetype::Cured,
    ];

    /// The name written to `truth.ndjson`.
    pub fn name(self) -> &'static str {
        match self {
            Archetype::Healthy => "healthy",
            Archetype::Deteriorating => "deteriorating",
            Archetype::BustOut => "bust_out",
            Archetype::FraudRing => "fraud_ring",
            Archetype::Cured => "cured",
        }
    }

    /// Whether customers of this archetype stop paying for good.
    pub fn defaults(self) -> bool {
        matches!(
            self,
            Archetype::Deteriorating | Archetype::BustOut | Archetype::FraudRing
        )
    }
}
