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
/// add up to 1. The defaults are the `default` profile's mix; [`ArchetypeMix::hard`] is the
/// `hard` profile's.
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
    /// Customers who behave like healthy ones, then stop paying at one installment and
    /// never pay again, without any warning in their behaviour (default 0).
    pub silent_defaulter: f64,
    /// Customers who run a high utilisation, withdraw cash and shop around for credit, but
    /// always pay on time and never default (default 0).
    pub stretched: f64,
    /// Customers who miss two consecutive installments of a loan, pay both 3–15 days after
    /// the second was due, then recover (default 0).
    pub cured_twice: f64,
}

impl Default for ArchetypeMix {
    fn default() -> Self {
        ArchetypeMix {
            healthy: 0.86,
            deteriorating: 0.06,
            bust_out: 0.03,
            fraud_ring: 0.03,
            cured: 0.02,
            silent_defaulter: 0.0,
            stretched: 0.0,
            cured_twice: 0.0,
        }
    }
}

impl ArchetypeMix {
    /// The `hard` profile's mix: 58 % healthy, 12 % stretched, 12 % cured, 5 % cured twice
    /// (17 % miss and cure), and 13 % defaulters: 4 % silent (31 % of defaulters), 4 %
    /// deteriorating, 2.5 % bust-out, 2.5 % fraud rings.
    pub fn hard() -> Self {
        ArchetypeMix {
            healthy: 0.58,
            deteriorating: 0.04,
            bust_out: 0.025,
            fraud_ring: 0.025,
            cured: 0.12,
            silent_defaulter: 0.04,
            stretched: 0.12,
            cured_twice: 0.05,
        }
    }

    /// The shares in the order of [`Archetype::ALL`].
    pub fn shares(&self) -> [f64; Archetype::ALL.len()] {
        [
            self.healthy,
            self.deteriorating,
            self.bust_out,
            self.fraud_ring,
            self.cured,
            self.silent_defaulter,
            self.stretched,
            self.cured_twice,
        ]
    }
}

/// A named archetype mix, as `riskwatch gen --profile` takes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Profile {
    /// Today's book (86 / 6 / 3 / 3 / 2 % healthy, deteriorating, bust-out, fraud ring,
    /// cured): every defaulter gives behavioural warnings, so it is easy to detect.
    #[default]
    Default,
    /// A harder book with silent defaulters, stressed-but-healthy customers and many cures;
    /// see [`ArchetypeMix::hard`].
    Hard,
}

impl Profile {
    /// Every profile, in the order they are documented.
    pub const ALL: [Profile; 2] = [Profile::Default, Profile::Hard];

    /// The profile's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Default => "default",
            Profile::Hard => "hard",
        }
    }

    /// The profile's archetype mix.
    pub fn mix(self) -> ArchetypeMix {
        match self {
            Profile::Default => ArchetypeMix::default(),
            Profile::Hard => ArchetypeMix::hard(),
        }
    }
}

impl std::str::FromStr for Profile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown profile '{s}' (expected 'default' or 'hard')"))
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
    /// Behaves like a healthy customer, then stops paying for good without warning.
    SilentDefaulter,
    /// High utilisation, cash withdrawals and bureau inquiries, but always pays on time.
    Stretched,
    /// Misses two consecutive installments, pays both late in full, then pays normally.
    CuredTwice,
}

impl Archetype {
    /// All archetypes, in the order used by [`ArchetypeMix::shares`] and summaries.
    pub const ALL: [Archetype; 8] = [
        Archetype::Healthy,
        Archetype::Deteriorating,
        Archetype::BustOut,
        Archetype::FraudRing,
        Archetype::Cured,
        Archetype::SilentDefaulter,
        Archetype::Stretched,
        Archetype::CuredTwice,
    ];

    /// The name written to `truth.ndjson`.
    pub fn name(self) -> &'static str {
        match self {
            Archetype::Healthy => "healthy",
            Archetype::Deteriorating => "deteriorating",
            Archetype::BustOut => "bust_out",
            Archetype::FraudRing => "fraud_ring",
            Archetype::Cured => "cured",
            Archetype::SilentDefaulter => "silent_defaulter",
            Archetype::Stretched => "stretched",
            Archetype::CuredTwice => "cured_twice",
        }
    }

    /// The archetype written as `name` to `truth.ndjson`, if any.
    pub fn from_name(name: &str) -> Option<Archetype> {
        Archetype::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Whether customers of this archetype stop paying for good.
    pub fn defaults(self) -> bool {
        matches!(
            self,
            Archetype::Deteriorating
                | Archetype::BustOut
                | Archetype::FraudRing
                | Archetype::SilentDefaulter
        )
    }

    /// Whether customers of this archetype miss installments and later pay them in full.
    pub fn cures(self) -> bool {
        matches!(self, Archetype::Cured | Archetype::CuredTwice)
    }
}
