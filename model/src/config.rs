//! The configuration tree: time model, windows and their features, strategies (rules,
//! scorecard, level table) and champion/challenger assignment.
//!
//! Layers, lowest first: built-in defaults (`Default` impls, equal to
//! `deploy/config/riskwatch.toml`), then the TOML file, then environment variables
//! `RISKWATCH__SECTION__KEY=value`. Every struct denies unknown fields, so a typo fails at
//! startup with the key's path. [`Config::validate`] checks what serde cannot (units that
//! must divide each other, feature names that must exist, unique ids) and names the key.

use crate::output::{CaseStage, DecisionKind};
use crate::time::{Millis, MS_PER_DAY, MS_PER_HOUR};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A configuration problem: the dotted key and the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("config key \"{key}\": {reason}")]
pub struct ConfigError {
    /// Dotted path of the offending key, e.g. `window[1].granularity`.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    /// A new error for `key`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// The whole configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Event-time handling.
    pub time: TimeConfig,
    /// Sliding windows and the features computed over each.
    #[serde(rename = "window")]
    pub windows: Vec<WindowConfig>,
    /// Strategies; the one with `role = "champion"` acts, the others are challengers.
    #[serde(rename = "strategy")]
    pub strategies: Vec<StrategyConfig>,
    /// How challengers are run beside the champion.
    pub experiment: ExperimentConfig,
    /// Delinquency evaluation.
    pub delinquency: DelinquencyConfig,
    /// `riskwatch run`: which connectors the live pipeline uses and how it is paced.
    #[serde(default)]
    pub run: RunConfig,
    /// Kafka brokers, topics and client settings: used when `run.mode = "kafka"`, by
    /// `riskwatch produce` and by `riskwatch bench --kafka`.
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// Fraud-ring detection over identifiers shared between customers.
    #[serde(default)]
    pub rings: RingsConfig,
}

/// Fraud-ring detection: customers linked by a shared device, IP or phone within the link
/// window form a graph whose connected components are rings (DESIGN.md, Fraud rings).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RingsConfig {
    /// An identifier linked to more than this many distinct customers within the window is
    /// a hub (a carrier-NAT IP, public Wi-Fi) and links nobody. At least 2.
    pub max_customers_per_identifier: u32,
    /// Components with at least this many customers are rings. At least 2.
    pub min_ring_size: u32,
    /// How long a shared identifier links customers after it was last seen (and how long
    /// a customer counts as new).
    pub link_window: Millis,
    /// Expiry granularity of links; must divide 1d.
    pub link_granularity: Millis,
}

impl Default for RingsConfig {
    fn default() -> Self {
        RingsConfig {
            max_customers_per_identifier: 50,
            min_ring_size: 3,
            link_window: Millis(30 * MS_PER_DAY),
            link_granularity: Millis(90 * 60_000),
        }
    }
}

impl RingsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_customers_per_identifier < 2 {
            return Err(ConfigError::new(
                "rings.max_customers_per_identifier",
                format!("{} must be at least 2", self.max_customers_per_identifier),
            ));
        }
        if self.min_ring_size < 2 {
            return Err(ConfigError::new(
                "rings.min_ring_size",
                format!("{} must be at least 2", self.min_ring_size),
            ));
        }
        Ok(())
    }
}

/// Delinquency evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelinquencyConfig {
    /// Days past due at which a customer is re-evaluated even without an event, besides
    /// the bucket boundaries 1, 31, 61 and 91 (which always are): lets rules such as
    /// `dpd >= 4` (a grace period) fire exactly when DPD reaches the threshold.
    pub wake_at_dpd: Vec<u32>,
}

/// Event-time handling (DESIGN.md, Time).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeConfig {
    /// Timely timestamps are event time rounded up to this tick. Must divide 1 day.
    pub tick: Millis,
    /// A record more than this ahead of the frontier (replay) or wall clock (live) is
    /// rejected with `future_ts`.
    pub max_future_skew: Millis,
    /// Live: a partition's watermark is its largest event time minus this.
    pub allowed_lateness: Millis,
    /// Live: a partition with no record for this long stops holding the frontier back.
    pub idle_timeout: Millis,
    /// Live: when every partition is idle, the frontier follows the wall clock.
    pub wall_clock_advance: bool,
    /// How long an `event_id` is remembered for duplicate detection; defaults to the
    /// longest window.
    pub dedupe_horizon: Option<Millis>,
}

impl Default for TimeConfig {
    fn default() -> Self {
        TimeConfig {
            tick: Millis(10),
            max_future_skew: Millis(MS_PER_DAY),
            allowed_lateness: Millis(5_000),
            idle_timeout: Millis(30_000),
            wall_clock_advance: true,
            dedupe_horizon: None,
        }
    }
}

/// One sliding window and the features computed over it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// Suffix of its feature names: measure `spend` over window `30d` is `spend_30d`.
    pub name: String,
    /// Window length.
    pub length: Millis,
    /// Expiry granularity: an event is retracted at the next multiple of this at or after
    /// `ts + length`. Must divide 1 day and be a multiple of the tick.
    pub granularity: Millis,
    /// Measures computed over this window (see [`Measure`]).
    pub features: Vec<Measure>,
}

/// A measure that can be computed over a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Sum of approved purchase and cash_withdrawal amounts (minor units).
    Spend,
    /// Sum of approved cash_withdrawal amounts.
    Cash,
    /// `cash / spend`; null when spend is 0. Needs `spend` and `cash` in the same window.
    CashRatio,
    /// Count of approved transactions of any type.
    ApprovedCount,
    /// Count of declined transactions of any type.
    DeclinedCount,
    /// Count of `login_failed` events.
    FailedLogins,
    /// Count of `phone_changed` events.
    PhoneChanges,
    /// Count of `contact_changed` events.
    ContactChanges,
    /// Count of `device_bound` events.
    DeviceChanges,
    /// `phone_changes + contact_changes + device_changes`; needs all three.
    IdentityChanges,
    /// Count of `credit_inquiry` events.
    Inquiries,
    /// Count of approved repayments.
    Repayments,
    /// Sum of approved repayment amounts.
    RepaymentAmount,
    /// Count of approved salary credits.
    SalaryCredits,
    /// Sum of approved salary credit amounts.
    SalaryAmount,
    /// Count of approved drawdowns.
    Drawdowns,
    /// Distinct `merchant_id`s among transactions.
    DistinctMerchants,
    /// Distinct `device_id`s among transactions and behaviour events.
    DistinctDevices,
    /// Distinct `lender_id`s among credit inquiries (multi-lending).
    DistinctLenders,
}

impl Measure {
    /// Every measure, in declaration order.
    pub const ALL: [Measure; 19] = [
        Measure::Spend,
        Measure::Cash,
        Measure::CashRatio,
        Measure::ApprovedCount,
        Measure::DeclinedCount,
        Measure::FailedLogins,
        Measure::PhoneChanges,
        Measure::ContactChanges,
        Measure::DeviceChanges,
        Measure::IdentityChanges,
        Measure::Inquiries,
        Measure::Repayments,
        Measure::RepaymentAmount,
        Measure::SalaryCredits,
        Measure::SalaryAmount,
        Measure::Drawdowns,
        Measure::DistinctMerchants,
        Measure::DistinctDevices,
        Measure::DistinctLenders,
    ];

    /// The snake_case name used in feature names.
    pub fn name(self) -> &'static str {
        match self {
            Measure::Spend => "spend",
            Measure::Cash => "cash",
            Measure::CashRatio => "cash_ratio",
            Measure::ApprovedCount => "approved_count",
            Measure::DeclinedCount => "declined_count",
            Measure::FailedLogins => "failed_logins",
            Measure::PhoneChanges => "phone_changes",
            Measure::ContactChanges => "contact_changes",
            Measure::DeviceChanges => "device_changes",
            Measure::IdentityChanges => "identity_changes",
            Measure::Inquiries => "inquiries",
            Measure::Repayments => "repayments",
            Measure::RepaymentAmount => "repayment_amount",
            Measure::SalaryCredits => "salary_credits",
            Measure::SalaryAmount => "salary_amount",
            Measure::Drawdowns => "drawdowns",
            Measure::DistinctMerchants => "distinct_merchants",
            Measure::DistinctDevices => "distinct_devices",
            Measure::DistinctLenders => "distinct_lenders",
        }
    }

    /// How the measure is computed.
    pub fn kind(self) -> MeasureKind {
        match self {
            Measure::CashRatio | Measure::IdentityChanges => MeasureKind::Derived,
            Measure::DistinctMerchants | Measure::DistinctDevices | Measure::DistinctLenders => {
                MeasureKind::Distinct
            }
            _ => MeasureKind::Sum,
        }
    }

    /// The measures a derived measure is computed from.
    pub fn inputs(self) -> &'static [Measure] {
        match self {
            Measure::CashRatio => &[Measure::Spend, Measure::Cash],
            Measure::IdentityChanges => &[
                Measure::PhoneChanges,
                Measure::ContactChanges,
                Measure::DeviceChanges,
            ],
            _ => &[],
        }
    }
}

/// How a measure is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeasureKind {
    /// A sum of per-event contributions (a slot of the window vector).
    Sum,
    /// A distinct count of identifiers (`distinct` then count).
    Distinct,
    /// Computed from other measures of the same window when rules are evaluated.
    Derived,
}

/// Features that do not belong to a window, always available to rules.
pub const ACCOUNT_FEATURES: [&str; 10] = [
    "balance",
    "credit_limit",
    "utilisation",
    "apr_bps",
    "dpd",
    "bucket",
    "dpd_90_plus",
    "ring_size",
    "ring_delinquent",
    "ring_new_members",
];

/// Alert severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Informational.
    Info,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// The contract name.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// A strategy's role in the experiment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Acts for every customer not assigned to a challenger.
    Champion,
    /// Acts for its share (split mode) or only records (shadow mode).
    Challenger,
}

/// One strategy: rules, scorecard and level table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyConfig {
    /// Name carried by every output of this strategy.
    pub name: String,
    /// Champion or challenger.
    #[serde(default = "default_role")]
    pub role: Role,
    /// Version string carried by outputs; defaults to a content hash of the strategy.
    #[serde(default)]
    pub version: Option<String>,
    /// Split mode: share of customers (0–100 %) this challenger acts for.
    #[serde(default)]
    pub share_percent: u32,
    /// Rules over features.
    #[serde(default, rename = "rule")]
    pub rules: Vec<RuleConfig>,
    /// The behaviour scorecard.
    #[serde(default)]
    pub scorecard: ScorecardConfig,
    /// Score bands → risk level.
    #[serde(default)]
    pub levels: LevelsConfig,
    /// Limit and pricing actions and their guardrails.
    #[serde(default, skip_serializing_if = "PolicyConfig::is_default")]
    pub policy: PolicyConfig,
    /// Collection cases: when they open, escalate and close, and their queues.
    #[serde(default, skip_serializing_if = "CasesConfig::is_default")]
    pub cases: CasesConfig,
}

fn default_role() -> Role {
    Role::Champion
}

/// One rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Stable id, used as `rule_id` in alerts and as a reason code.
    pub id: String,
    /// Version, carried in alerts.
    #[serde(default = "one")]
    pub version: u32,
    /// Severity of its alerts.
    pub severity: Severity,
    /// A CEL expression over feature names that yields a boolean. A feature that is null
    /// (e.g. a ratio with a zero denominator) makes comparisons false.
    pub expr: String,
    /// While the rule fires, the level is at least this (a rule override).
    #[serde(default)]
    pub min_level: Option<u8>,
    /// Free text for operators; copied into the alert's reason `text`.
    #[serde(default)]
    pub description: Option<String>,
}

fn one() -> u32 {
    1
}

/// A points scorecard: `score = base + Σ points(bin of feature)`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScorecardConfig {
    /// Base points.
    #[serde(default)]
    pub base: f64,
    /// Path of a toad-format JSON scorecard (`{"feature": {"[-inf ~ 3)": 100, "nan": 50,
    /// "else": 0}}`) whose features are appended to `feature`.
    #[serde(default)]
    pub import_toad: Option<String>,
    /// Per-feature bins.
    #[serde(default, rename = "feature")]
    pub features: Vec<ScoreFeature>,
}

/// The bins of one scorecard feature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreFeature {
    /// Feature name.
    pub feature: String,
    /// Points when the feature is null.
    #[serde(default)]
    pub missing: f64,
    /// Left-closed bins in increasing order; a bin without `below` is the last.
    pub bins: Vec<ScoreBin>,
}

/// One bin: values in `[previous below, below)` score `points`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreBin {
    /// Exclusive upper bound; absent for the last (open-ended) bin.
    #[serde(default)]
    pub below: Option<f64>,
    /// Points for values in the bin.
    pub points: f64,
}

/// The level table: score bands, checked from level 0 upwards.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelsConfig {
    /// `min_score[i]` is the lowest score still at level `i`, for levels 0–3; scores below
    /// `min_score[3]` are level 4. Must be decreasing.
    pub min_score: [f64; 4],
}

impl Default for LevelsConfig {
    fn default() -> Self {
        LevelsConfig {
            min_score: [650.0, 600.0, 550.0, 500.0],
        }
    }
}

/// A strategy's action policy (DESIGN.md, Signals, levels, actions): which limit and
/// pricing decisions level changes cause, the guardrails that bound them, and the kill
/// switch and circuit breaker.
///
/// An `[[action]]` applies once each time its condition becomes true and stays armed
/// until the condition clears; a guardrail that blocks it leaves it pending, retried at
/// the customer's next evaluation while the condition holds. Restores undo only what
/// riskwatch itself changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Adverse actions (`limit_decrease`, `freeze`, `price_increase`) and their conditions.
    /// Given in a file, the list replaces the default one whole.
    #[serde(rename = "action")]
    pub actions: Vec<ActionConfig>,
    /// Minimum time between two decisions of the same kind for one customer.
    pub cooldown: Millis,
    /// At most this many `limit_decrease` decisions per customer within any
    /// `decrease_period` (0 disables decreases). At most 16.
    pub max_decreases_per_period: u32,
    /// The rolling period of `max_decreases_per_period`.
    pub decrease_period: Millis,
    /// Never cut a limit below the customer's drawn balance.
    pub floor_at_balance: bool,
    /// No decision sets an APR above this (bps): a `price_increase` is clipped to it, and
    /// none is made when the APR is already at or above it.
    pub apr_cap_bps: u32,
    /// Restore (`unfreeze`, `limit_restore`, `price_restore`) what riskwatch changed once
    /// the level has stayed at or below `restore_max_level` for `restore_after`.
    pub restore: bool,
    /// The highest level at which the customer counts as stable again for restores.
    /// Must be below every action's `when_level_at_least`.
    pub restore_max_level: u8,
    /// How long the level must stay at or below `restore_max_level` before a restore.
    pub restore_after: Millis,
    /// Limit increases for long-stable level-0 customers (off by default).
    pub limit_increase: LimitIncreaseConfig,
    /// Kill switch: decide and emit decisions, but change no limit, price or freeze.
    pub dry_run: bool,
    /// Circuit breaker: at most this many decisions per `breaker_interval`, counted per
    /// worker and strategy; further decisions are suppressed (counted, not emitted).
    pub max_decisions_per_interval: u32,
    /// The breaker's interval; intervals are aligned to multiples of it in event time.
    pub breaker_interval: Millis,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            actions: vec![
                ActionConfig {
                    percent: Some(30),
                    ..ActionConfig::new(DecisionKind::LimitDecrease, 3)
                },
                ActionConfig::new(DecisionKind::Freeze, 4),
                ActionConfig {
                    bps: Some(300),
                    ..ActionConfig::new(DecisionKind::PriceIncrease, 3)
                },
            ],
            cooldown: Millis(7 * MS_PER_DAY),
            max_decreases_per_period: 1,
            decrease_period: Millis(30 * MS_PER_DAY),
            floor_at_balance: true,
            apr_cap_bps: 2400,
            restore: true,
            restore_max_level: 1,
            restore_after: Millis(30 * MS_PER_DAY),
            limit_increase: LimitIncreaseConfig::default(),
            dry_run: false,
            max_decisions_per_interval: 1000,
            breaker_interval: Millis(MS_PER_HOUR),
        }
    }
}

impl PolicyConfig {
    /// True when equal to the built-in defaults (then left out of the serialized strategy,
    /// so the default strategy version hash does not depend on it).
    pub fn is_default(&self) -> bool {
        *self == PolicyConfig::default()
    }

    /// Checks the policy of strategy `index`, whose rules are `rules`; the error names the key.
    pub fn validate(&self, index: usize, rules: &[RuleConfig]) -> Result<(), ConfigError> {
        let key = |k: &str| format!("strategy[{index}].policy.{k}");
        for (j, a) in self.actions.iter().enumerate() {
            let akey = |k: &str| key(&format!("action[{j}].{k}"));
            if !(1..=4).contains(&a.when_level_at_least) {
                return Err(ConfigError::new(akey("when_level_at_least"), "must be 1–4"));
            }
            if self.restore && a.when_level_at_least <= self.restore_max_level {
                return Err(ConfigError::new(
                    akey("when_level_at_least"),
                    format!(
                        "must be above restore_max_level ({})",
                        self.restore_max_level
                    ),
                ));
            }
            for r in &a.when_rules {
                if !rules.iter().any(|x| &x.id == r) {
                    return Err(ConfigError::new(
                        akey("when_rules"),
                        format!("unknown rule \"{r}\""),
                    ));
                }
            }
            let (percent, to_balance, bps) = (a.percent, a.to_balance, a.bps);
            match a.kind {
                DecisionKind::LimitDecrease => {
                    if bps.is_some() {
                        return Err(ConfigError::new(akey("bps"), "only for price_increase"));
                    }
                    match (percent, to_balance) {
                        (Some(p), false) if (1..=100).contains(&p) => {}
                        (Some(_), false) => {
                            return Err(ConfigError::new(akey("percent"), "must be 1–100"));
                        }
                        (None, true) => {}
                        _ => {
                            return Err(ConfigError::new(
                                akey("percent"),
                                "a limit_decrease needs exactly one of percent or \
                                 to_balance = true",
                            ));
                        }
                    }
                }
                DecisionKind::PriceIncrease => {
                    if percent.is_some() || to_balance {
                        return Err(ConfigError::new(akey("percent"), "only for limit_decrease"));
                    }
                    if !bps.is_some_and(|b| (1..=100_000).contains(&b)) {
                        return Err(ConfigError::new(
                            akey("bps"),
                            "a price_increase needs bps between 1 and 100000",
                        ));
                    }
                }
                DecisionKind::Freeze => {
                    if percent.is_some() || to_balance || bps.is_some() {
                        return Err(ConfigError::new(
                            akey("kind"),
                            "a freeze takes no percent, to_balance or bps",
                        ));
                    }
                }
                other => {
                    return Err(ConfigError::new(
                        akey("kind"),
                        format!(
                            "\"{}\" is not an action: use limit_decrease, freeze or \
                             price_increase (restores and increases have their own keys)",
                            other.name()
                        ),
                    ));
                }
            }
        }
        if self.max_decreases_per_period > 16 {
            return Err(ConfigError::new(
                key("max_decreases_per_period"),
                "at most 16",
            ));
        }
        if self.max_decreases_per_period > 0 && self.decrease_period.ms() == 0 {
            return Err(ConfigError::new(key("decrease_period"), "must be positive"));
        }
        if self.apr_cap_bps > 100_000 {
            return Err(ConfigError::new(
                key("apr_cap_bps"),
                "must be at most 100000 (1000%)",
            ));
        }
        if self.restore_max_level > 3 {
            return Err(ConfigError::new(key("restore_max_level"), "must be 0–3"));
        }
        if self.breaker_interval.ms() == 0 {
            return Err(ConfigError::new(
                key("breaker_interval"),
                "must be positive",
            ));
        }
        let inc = &self.limit_increase;
        if inc.enabled {
            if !(1..=100).contains(&inc.percent) {
                return Err(ConfigError::new(
                    key("limit_increase.percent"),
                    "must be 1–100",
                ));
            }
            if inc.stable_for.ms() == 0 {
                return Err(ConfigError::new(
                    key("limit_increase.stable_for"),
                    "must be positive",
                ));
            }
        }
        Ok(())
    }
}

/// One adverse action: `kind` when the level is at least `when_level_at_least` (and, if
/// `when_rules` is not empty, one of those rules fires).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionConfig {
    /// `limit_decrease`, `freeze` or `price_increase`.
    pub kind: DecisionKind,
    /// The action applies when the level rises to at least this (1–4).
    pub when_level_at_least: u8,
    /// If not empty, the action also needs one of these rule ids to be firing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when_rules: Vec<String>,
    /// `limit_decrease`: cut the limit by this percentage (1–100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<u32>,
    /// `limit_decrease`: cut the limit to the drawn balance.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub to_balance: bool,
    /// `price_increase`: raise the APR by this many basis points (clipped to the cap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bps: Option<u32>,
}

impl ActionConfig {
    /// An action of `kind` at `level` with no rule condition and no amounts.
    pub fn new(kind: DecisionKind, level: u8) -> ActionConfig {
        ActionConfig {
            kind,
            when_level_at_least: level,
            when_rules: Vec::new(),
            percent: None,
            to_balance: false,
            bps: None,
        }
    }
}

/// Limit increases for customers who have stayed at level 0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitIncreaseConfig {
    /// Off by default.
    pub enabled: bool,
    /// Raise the limit by this percentage (1–100).
    pub percent: u32,
    /// The level must have stayed 0 this long, since the last increase too; nothing
    /// riskwatch changed may be outstanding (no freeze, cut or repricing to restore).
    pub stable_for: Millis,
    /// Never raise the limit above this (minor units); no cap when absent.
    pub max_limit: Option<u64>,
}

impl Default for LimitIncreaseConfig {
    fn default() -> Self {
        LimitIncreaseConfig {
            enabled: false,
            percent: 10,
            stable_for: Millis(180 * MS_PER_DAY),
            max_limit: None,
        }
    }
}

/// A strategy's collection cases (DESIGN.md, Collection cases).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CasesConfig {
    /// Open cases at all for this strategy.
    pub enabled: bool,
    /// Open `pre_collection` cases before a due date for high-risk customers.
    pub pre_collection: bool,
    /// Pre-collection needs the level to be at least this (1–4).
    pub pre_collection_min_level: u8,
    /// Pre-collection opens when an unpaid installment falls due within this.
    pub pre_collection_horizon: Millis,
    /// Queue of a case with a written-off loan (unless the stage is `fraud`).
    pub written_off_queue: String,
    /// Queue assignment: the first rule whose stage matches and whose `min_score` the
    /// score reaches. Every stage needs a rule without `min_score`. Given in a file, the
    /// list replaces the default one whole.
    #[serde(rename = "queue")]
    pub queues: Vec<QueueRuleConfig>,
}

impl Default for CasesConfig {
    fn default() -> Self {
        let rule = |stage, min_score, queue: &str| QueueRuleConfig {
            stage,
            min_score,
            queue: queue.to_string(),
        };
        CasesConfig {
            enabled: true,
            pre_collection: true,
            pre_collection_min_level: 3,
            pre_collection_horizon: Millis(3 * MS_PER_DAY),
            written_off_queue: "legal".into(),
            queues: vec![
                rule(CaseStage::PreCollection, None, "sms"),
                rule(CaseStage::M1, Some(600.0), "sms"),
                rule(CaseStage::M1, None, "robocall"),
                rule(CaseStage::M2, None, "agent"),
                rule(CaseStage::M3Plus, None, "senior_agent"),
                rule(CaseStage::Fraud, None, "fraud_investigation"),
            ],
        }
    }
}

impl CasesConfig {
    /// True when equal to the built-in defaults (then left out of the serialized strategy,
    /// so the default strategy version hash does not depend on it).
    pub fn is_default(&self) -> bool {
        *self == CasesConfig::default()
    }

    /// Checks the cases config of strategy `index`; the error names the key.
    pub fn validate(&self, index: usize) -> Result<(), ConfigError> {
        let key = |k: &str| format!("strategy[{index}].cases.{k}");
        if !(1..=4).contains(&self.pre_collection_min_level) {
            return Err(ConfigError::new(
                key("pre_collection_min_level"),
                "must be 1–4",
            ));
        }
        let valid_queue = |q: &str| !q.is_empty() && !q.chars().any(char::is_whitespace);
        if !valid_queue(&self.written_off_queue) {
            return Err(ConfigError::new(
                key("written_off_queue"),
                "must be non-empty without whitespace",
            ));
        }
        for (j, q) in self.queues.iter().enumerate() {
            if !valid_queue(&q.queue) {
                return Err(ConfigError::new(
                    key(&format!("queue[{j}].queue")),
                    "must be non-empty without whitespace",
                ));
            }
            if q.min_score.is_some_and(|m| !m.is_finite()) {
                return Err(ConfigError::new(
                    key(&format!("queue[{j}].min_score")),
                    "must be a finite number",
                ));
            }
        }
        for stage in CaseStage::ALL {
            if !self
                .queues
                .iter()
                .any(|q| q.stage == stage && q.min_score.is_none())
            {
                return Err(ConfigError::new(
                    key("queue"),
                    format!("stage \"{}\" needs a rule without min_score", stage.name()),
                ));
            }
        }
        Ok(())
    }
}

/// One queue-assignment rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueRuleConfig {
    /// The case stage: `pre_collection`, `M1`, `M2`, `M3+` or `fraud`.
    pub stage: CaseStage,
    /// The rule applies only when the behaviour score is at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_score: Option<f64>,
    /// The queue, e.g. `sms`, `robocall`, `agent`, `senior_agent`, `fraud_investigation`.
    pub queue: String,
}

/// How challengers run beside the champion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExperimentConfig {
    /// `shadow`: challengers evaluate everyone and are recorded only; `split`: each
    /// customer is assigned to one strategy by a stable hash of its id.
    pub mode: ExperimentMode,
}

impl Default for ExperimentConfig {
    fn default() -> Self {
        ExperimentConfig {
            mode: ExperimentMode::Shadow,
        }
    }
}

/// Champion/challenger mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExperimentMode {
    /// Challengers evaluate everyone; outputs carry `shadow: true`.
    Shadow,
    /// Each customer belongs to exactly one strategy.
    Split,
}

/// `riskwatch run`: the live pipeline's connectors and pacing (docs/KAFKA.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// `files` (the embedded default): read the four NDJSON files of `input_dir` and write
    /// the outputs to `output_dir`, like `riskwatch replay`; `kafka`: consume the input
    /// topics of `[kafka]` and produce to its output topics until stopped.
    pub mode: RunMode,
    /// Files mode: directory with `transactions`, `behaviors`, `loans`, `customers.ndjson`.
    pub input_dir: String,
    /// Files mode: directory for `alerts.ndjson`, `rejected.ndjson` and `summary.json`.
    pub output_dir: String,
    /// Kafka mode: directory where each process records its consumed offsets on shutdown
    /// (`offsets-process-<i>.json`).
    pub state_dir: String,
    /// Kafka mode: at most this many records a worker takes from its consumer before it
    /// advances its input and steps the dataflow.
    pub poll_batch: usize,
    /// Backpressure: a worker pauses its partitions while its dataflow output lags its
    /// input time by more than this, and resumes at half of it.
    pub max_lag: Millis,
    /// Backpressure: a worker also pauses while more than this many of the events it fed
    /// are not yet through the dataflow, and resumes at half of it.
    pub max_pending_events: u64,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            mode: RunMode::Files,
            input_dir: "data/input".into(),
            output_dir: "data/output".into(),
            state_dir: "data/state".into(),
            poll_batch: 20_000,
            max_lag: Millis(10_000),
            max_pending_events: 500_000,
        }
    }
}

impl RunConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.poll_batch == 0 {
            return Err(ConfigError::new("run.poll_batch", "must be positive"));
        }
        if self.max_lag.ms() == 0 {
            return Err(ConfigError::new("run.max_lag", "must be positive"));
        }
        if self.max_pending_events == 0 {
            return Err(ConfigError::new(
                "run.max_pending_events",
                "must be positive",
            ));
        }
        Ok(())
    }
}

/// Which connectors `riskwatch run` uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunMode {
    /// NDJSON files in, NDJSON files out.
    #[default]
    Files,
    /// Kafka topics in, Kafka topics out.
    Kafka,
}

/// Kafka brokers, topics and client settings.
///
/// Secrets never come from this file: the SASL password is read from the environment
/// variable named by `sasl_password_env` or from the file `sasl_password_file`, and the
/// librdkafka pass-through tables refuse keys that hold secrets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// `bootstrap.servers`: comma-separated `host:port` list.
    pub brokers: String,
    /// `client.id` prefix; a worker's consumer appends `-w<global worker index>`.
    pub client_id: String,
    /// Topic names.
    pub topics: KafkaTopics,
    /// Where a partition is read from at startup: `earliest` or `latest`.
    pub start_offset: StartOffset,
    /// If set, each worker also commits its consumed offsets to this consumer group on
    /// shutdown (for lag monitoring). Partitions are never assigned by the group: the
    /// assignment is static (docs/KAFKA.md).
    pub group_id: Option<String>,
    /// `security.protocol`: `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`.
    pub security_protocol: SecurityProtocol,
    /// `sasl.mechanism` (`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`) when SASL is used.
    pub sasl_mechanism: Option<String>,
    /// `sasl.username` when SASL is used (not a secret).
    pub sasl_username: Option<String>,
    /// Name of the environment variable holding the SASL password.
    pub sasl_password_env: String,
    /// A file holding the SASL password (first line); used when the variable is unset.
    pub sasl_password_file: Option<String>,
    /// `ssl.ca.location`: CA certificate file for `ssl` and `sasl_ssl`.
    pub ssl_ca_location: Option<String>,
    /// Producer `compression.type`: `none`, `gzip`, `lz4` or `snappy` (the codecs the
    /// bundled librdkafka has without extra system libraries).
    pub compression: Compression,
    /// Producer `linger.ms`: how long a batch waits to fill.
    pub linger: Millis,
    /// Producer `batch.size` in bytes.
    pub batch_size_bytes: u64,
    /// Producer `message.timeout.ms`: how long librdkafka retries a record before it
    /// reports it failed (a failure stops riskwatch).
    pub message_timeout: Millis,
    /// Consumer `fetch.wait.max.ms`: how long the broker may hold a fetch for data.
    pub fetch_wait_max: Millis,
    /// Extra librdkafka properties for consumers (e.g. `"fetch.max.bytes" = "52428800"`).
    pub consumer: std::collections::BTreeMap<String, String>,
    /// Extra librdkafka properties for producers.
    pub producer: std::collections::BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            client_id: "riskwatch".into(),
            topics: KafkaTopics::default(),
            start_offset: StartOffset::Earliest,
            group_id: None,
            security_protocol: SecurityProtocol::Plaintext,
            sasl_mechanism: None,
            sasl_username: None,
            sasl_password_env: "RISKWATCH_KAFKA_PASSWORD".into(),
            sasl_password_file: None,
            ssl_ca_location: None,
            compression: Compression::Lz4,
            linger: Millis(5),
            batch_size_bytes: 1 << 20,
            message_timeout: Millis(120_000),
            fetch_wait_max: Millis(10),
            consumer: Default::default(),
            producer: Default::default(),
        }
    }
}

impl KafkaConfig {
    /// Checks topic names and pass-through keys; `used` also requires brokers.
    fn validate(&self, used: bool) -> Result<(), ConfigError> {
        if used && self.brokers.trim().is_empty() {
            return Err(ConfigError::new(
                "kafka.brokers",
                "must name at least one broker",
            ));
        }
        let t = &self.topics;
        let all = [
            ("transactions", &t.transactions),
            ("behaviors", &t.behaviors),
            ("loans", &t.loans),
            ("customers", &t.customers),
            ("alerts", &t.alerts),
            ("decisions", &t.decisions),
            ("cases", &t.cases),
            ("dead_letter", &t.dead_letter),
        ];
        let mut seen = BTreeSet::new();
        for (key, name) in all {
            let valid = !name.is_empty()
                && name.len() <= 249
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !valid {
                return Err(ConfigError::new(
                    format!("kafka.topics.{key}"),
                    format!("\"{name}\" is not a valid topic name ([a-zA-Z0-9._-], 1–249)"),
                ));
            }
            if !seen.insert(name.as_str()) {
                return Err(ConfigError::new(
                    format!("kafka.topics.{key}"),
                    format!("\"{name}\" is used for two streams"),
                ));
            }
        }
        for (table, props) in [("consumer", &self.consumer), ("producer", &self.producer)] {
            for k in props.keys() {
                let lower = k.to_ascii_lowercase();
                if lower.contains("password")
                    || lower.contains("secret")
                    || lower.contains("sasl.oauthbearer.config")
                    || lower == "ssl.key.pem"
                {
                    return Err(ConfigError::new(
                        format!("kafka.{table}.{k}"),
                        "secrets are read from the environment or a file, never the config \
                         (see kafka.sasl_password_env)",
                    ));
                }
            }
        }
        if self.batch_size_bytes == 0 {
            return Err(ConfigError::new(
                "kafka.batch_size_bytes",
                "must be positive",
            ));
        }
        Ok(())
    }
}

/// Topic names of the four inputs, three outputs and the dead-letter topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaTopics {
    /// Input: transactions.
    pub transactions: String,
    /// Input: behaviour events.
    pub behaviors: String,
    /// Input: loan schedule events.
    pub loans: String,
    /// Input: customer reference records.
    pub customers: String,
    /// Output: alerts (alert.schema.json).
    pub alerts: String,
    /// Output: decisions (decision.schema.json).
    pub decisions: String,
    /// Output: collection cases (case.schema.json).
    pub cases: String,
    /// Undecodable or invalid input records (rejected.schema.json), with headers `reason`,
    /// `source`, `partition`, `offset`.
    pub dead_letter: String,
}

impl Default for KafkaTopics {
    fn default() -> Self {
        KafkaTopics {
            transactions: "riskwatch.transactions".into(),
            behaviors: "riskwatch.behaviors".into(),
            loans: "riskwatch.loans".into(),
            customers: "riskwatch.customers".into(),
            alerts: "riskwatch.alerts".into(),
            decisions: "riskwatch.decisions".into(),
            cases: "riskwatch.cases".into(),
            dead_letter: "riskwatch.rejected".into(),
        }
    }
}

impl KafkaTopics {
    /// The input topic of a stream (indexed like `Stream as usize`).
    pub fn inputs(&self) -> [&str; 4] {
        [
            &self.customers,
            &self.loans,
            &self.transactions,
            &self.behaviors,
        ]
    }
}

/// Where a partition is first read from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartOffset {
    /// The oldest retained record.
    #[default]
    Earliest,
    /// Only records produced after startup.
    Latest,
}

/// `security.protocol`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityProtocol {
    /// No TLS, no SASL.
    #[default]
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// The librdkafka value.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
            SecurityProtocol::SaslSsl => "sasl_ssl",
        }
    }
}

/// Producer compression codec.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// No compression.
    None,
    /// gzip (through libz).
    Gzip,
    /// LZ4 (built into librdkafka): fast, the default.
    #[default]
    Lz4,
    /// Snappy (built into librdkafka).
    Snappy,
}

impl Compression {
    /// The librdkafka value.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Lz4 => "lz4",
            Compression::Snappy => "snappy",
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::from_toml("").expect("the built-in default config is valid")
    }
}

/// The built-in default configuration: the shipped `deploy/config/riskwatch.toml`.
pub const DEFAULT_CONFIG: &str = include_str!("../../deploy/config/riskwatch.toml");

impl Config {
    /// Parses a TOML document, applies `RISKWATCH__…` overrides from `env`, and validates.
    ///
    /// The file is laid over the built-in defaults: tables merge key by key, and an array
    /// of tables given in the file (`[[window]]`, `[[strategy]]`) replaces the default one.
    pub fn from_toml_with_env(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut value: toml::Table = toml::from_str(DEFAULT_CONFIG)
            .map_err(|e| ConfigError::new(toml_key(&e), toml_reason(&e)))?;
        let file: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError::new(toml_key(&e), toml_reason(&e)))?;
        merge_tables(&mut value, file);
        for (name, raw) in env {
            let Some(path) = name.strip_prefix("RISKWATCH__") else {
                continue;
            };
            let parts: Vec<String> = path.split("__").map(|p| p.to_ascii_lowercase()).collect();
            set_path(&mut value, &parts, parse_env_value(&raw))
                .map_err(|reason| ConfigError::new(parts.join("."), reason))?;
        }
        // serde_path_to_error keeps the path of the failing key (`time.tick`,
        // `strategy[0].rule[2].severity`): toml's own errors from a `Value` carry none.
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(value)).map_err(|e| {
                let key = e.path().to_string();
                let inner = e.into_inner();
                let key = if key.is_empty() || key == "." {
                    toml_key(&inner)
                } else {
                    key
                };
                ConfigError::new(key, inner.message().trim())
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Parses and validates a TOML document without environment overrides.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml_with_env(text, std::iter::empty())
    }

    /// The duplicate-detection horizon: configured, or the longest window.
    pub fn dedupe_horizon(&self) -> u64 {
        self.time.dedupe_horizon.map(Millis::ms).unwrap_or_else(|| {
            self.windows
                .iter()
                .map(|w| w.length.ms())
                .max()
                .unwrap_or(0)
        })
    }

    /// Checks what serde cannot; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let tick = self.time.tick.ms();
        if tick == 0 || !MS_PER_DAY.is_multiple_of(tick) {
            return Err(ConfigError::new(
                "time.tick",
                format!("{} must be positive and divide 1d", self.time.tick),
            ));
        }
        let mut names = BTreeSet::new();
        for (i, w) in self.windows.iter().enumerate() {
            let key = |k: &str| format!("window[{i}].{k}");
            if w.name.is_empty() || !w.name.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(ConfigError::new(
                    key("name"),
                    "must be non-empty ASCII alphanumeric",
                ));
            }
            if !names.insert(w.name.clone()) {
                return Err(ConfigError::new(
                    key("name"),
                    format!("\"{}\" is used twice", w.name),
                ));
            }
            if w.length.ms() == 0 {
                return Err(ConfigError::new(key("length"), "must be positive"));
            }
            let g = w.granularity.ms();
            if g == 0 || !MS_PER_DAY.is_multiple_of(g) || !g.is_multiple_of(tick) {
                return Err(ConfigError::new(
                    key("granularity"),
                    format!(
                        "{} must divide 1d and be a multiple of the tick ({})",
                        w.granularity, self.time.tick
                    ),
                ));
            }
            let mut seen = BTreeSet::new();
            for m in &w.features {
                if !seen.insert(*m) {
                    return Err(ConfigError::new(
                        key("features"),
                        format!("\"{}\" is listed twice", m.name()),
                    ));
                }
                for input in m.inputs() {
                    if !w.features.contains(input) {
                        return Err(ConfigError::new(
                            key("features"),
                            format!(
                                "\"{}\" needs \"{}\" in the same window",
                                m.name(),
                                input.name()
                            ),
                        ));
                    }
                }
            }
        }
        for (i, d) in self.delinquency.wake_at_dpd.iter().enumerate() {
            if *d == 0 || *d > 3650 {
                return Err(ConfigError::new(
                    format!("delinquency.wake_at_dpd[{i}]"),
                    format!("{d} must be between 1 and 3650 days"),
                ));
            }
        }
        let champions = self
            .strategies
            .iter()
            .filter(|s| s.role == Role::Champion)
            .count();
        if champions != 1 {
            return Err(ConfigError::new(
                "strategy",
                format!("exactly one strategy must have role = \"champion\", found {champions}"),
            ));
        }
        let mut strategy_names = BTreeSet::new();
        let mut share = 0;
        for (i, s) in self.strategies.iter().enumerate() {
            if s.name.is_empty() || s.name.chars().any(char::is_whitespace) {
                return Err(ConfigError::new(
                    format!("strategy[{i}].name"),
                    "must be non-empty without whitespace",
                ));
            }
            if !strategy_names.insert(s.name.clone()) {
                return Err(ConfigError::new(
                    format!("strategy[{i}].name"),
                    format!("\"{}\" is used twice", s.name),
                ));
            }
            if s.role == Role::Challenger {
                share += s.share_percent;
            }
            let mut ids = BTreeSet::new();
            for (j, r) in s.rules.iter().enumerate() {
                let key = format!("strategy[{i}].rule[{j}]");
                if r.id.is_empty() || r.id == "level" || r.id.chars().any(char::is_whitespace) {
                    return Err(ConfigError::new(
                        format!("{key}.id"),
                        "must be non-empty, without whitespace, and not \"level\"",
                    ));
                }
                if !ids.insert(r.id.clone()) {
                    return Err(ConfigError::new(
                        format!("{key}.id"),
                        format!("\"{}\" is used twice", r.id),
                    ));
                }
                if r.min_level.is_some_and(|l| l > 4) {
                    return Err(ConfigError::new(format!("{key}.min_level"), "must be 0–4"));
                }
            }
            if s.rules.len() > 64 {
                return Err(ConfigError::new(
                    format!("strategy[{i}].rule"),
                    "at most 64 rules per strategy",
                ));
            }
            s.policy.validate(i, &s.rules)?;
            s.cases.validate(i)?;
            let m = s.levels.min_score;
            if !(m[0] > m[1] && m[1] > m[2] && m[2] > m[3]) {
                return Err(ConfigError::new(
                    format!("strategy[{i}].levels.min_score"),
                    "must be strictly decreasing",
                ));
            }
            for (j, f) in s.scorecard.features.iter().enumerate() {
                let key = format!("strategy[{i}].scorecard.feature[{j}].bins");
                if f.bins.is_empty() {
                    return Err(ConfigError::new(key, "needs at least one bin"));
                }
                let mut last = f64::NEG_INFINITY;
                for (k, b) in f.bins.iter().enumerate() {
                    match b.below {
                        Some(x) if x > last => last = x,
                        Some(_) => {
                            return Err(ConfigError::new(key, "bin bounds must increase"));
                        }
                        None if k + 1 == f.bins.len() => {}
                        None => {
                            return Err(ConfigError::new(
                                key,
                                "only the last bin may omit \"below\"",
                            ));
                        }
                    }
                }
            }
        }
        if share > 100 {
            return Err(ConfigError::new(
                "strategy.share_percent",
                format!("challenger shares add up to {share}%, more than 100%"),
            ));
        }
        self.run.validate()?;
        self.rings.validate()?;
        self.kafka.validate(self.run.mode == RunMode::Kafka)?;
        Ok(())
    }
}

fn merge_tables(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge_tables(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn parse_env_value(raw: &str) -> toml::Value {
    // A scalar TOML literal (number, boolean, quoted string, array) if it parses as one,
    // else the raw text as a string.
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

fn set_path(table: &mut toml::Table, parts: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = parts.split_last().ok_or("empty key")?;
    let mut current = table;
    for p in parents {
        let entry = current
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| format!("\"{p}\" is not a table; env overrides set scalar keys"))?;
    }
    current.insert(last.clone(), value);
    Ok(())
}

fn toml_key(e: &toml::de::Error) -> String {
    // toml's messages name the key in backticks or quotes; keep the message as the reason
    // and give the best key we can.
    let msg = e.message();
    msg.split('`')
        .nth(1)
        .map(str::to_string)
        .unwrap_or_else(|| "(document)".to_string())
}

fn toml_reason(e: &toml::de::Error) -> String {
    let mut reason = e.message().trim().to_string();
    if let Some(span) = e.span() {
        reason.push_str(&format!(" (at bytes {}..{})", span.start, span.end));
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        let c = Config::default();
        c.validate().unwrap();
        assert!(!c.windows.is_empty());
        assert_eq!(c.dedupe_horizon(), 30 * MS_PER_DAY);
    }

    #[test]
    fn unknown_keys_fail_with_the_key() {
        let err = Config::from_toml("[time]\ntick = \"10ms\"\ntikc = 1\n").unwrap_err();
        assert!(err.to_string().contains("tikc"), "{err}");
    }

    #[test]
    fn type_errors_name_the_full_path_of_the_key() {
        let err = Config::from_toml("[time]\ntick = \"banana\"\n").unwrap_err();
        assert_eq!(err.key, "time.tick");
        assert!(err.reason.contains("banana"), "{err}");
        let text = DEFAULT_CONFIG.replacen("severity = \"high\"", "severity = \"dire\"", 1);
        let err = Config::from_toml(&text).unwrap_err();
        assert_eq!(err.key, "strategy[0].rule[0].severity");
        let err = Config::from_toml("[time]\ntikc = 1\n").unwrap_err();
        assert!(err.key.contains("tikc"), "{err}");
    }

    #[test]
    fn bad_granularity_names_the_window() {
        let text = DEFAULT_CONFIG.replacen("granularity = \"10s\"", "granularity = \"7s\"", 1);
        let err = Config::from_toml(&text).unwrap_err();
        assert_eq!(err.key, "window[0].granularity");
    }

    #[test]
    fn env_overrides_apply_after_the_file() {
        let env = vec![
            ("RISKWATCH__TIME__TICK".to_string(), "\"20ms\"".to_string()),
            (
                "RISKWATCH__TIME__WALL_CLOCK_ADVANCE".to_string(),
                "false".to_string(),
            ),
            ("OTHER".to_string(), "x".to_string()),
        ];
        let c = Config::from_toml_with_env(DEFAULT_CONFIG, env).unwrap();
        assert_eq!(c.time.tick, Millis(20));
        assert!(!c.time.wall_clock_advance);
    }

    #[test]
    fn rings_validation_names_the_key() {
        assert_eq!(Config::default().rings, RingsConfig::default());
        let err = Config::from_toml("[rings]\nmin_ring_size = 1\n").unwrap_err();
        assert_eq!(err.key, "rings.min_ring_size");
        let err = Config::from_toml("[rings]\nmax_customers_per_identifier = 0\n").unwrap_err();
        assert_eq!(err.key, "rings.max_customers_per_identifier");
    }

    /// The shipped file's commented `[strategy.policy]` and `[strategy.cases]` sections,
    /// uncommented.
    fn uncommented_policy_and_cases() -> String {
        let start = DEFAULT_CONFIG
            .find("# [strategy.policy]")
            .expect("the shipped config documents [strategy.policy]");
        DEFAULT_CONFIG[start..]
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| {
                l.starts_with('[')
                    || l.split_once(" = ").is_some_and(|(k, _)| {
                        !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    })
            })
            .map(|l| format!("{l}\n"))
            .collect()
    }

    #[test]
    fn commented_policy_and_cases_are_the_defaults() {
        let extra = uncommented_policy_and_cases();
        assert!(extra.contains("[[strategy.cases.queue]]"), "{extra}");
        let text = format!("{DEFAULT_CONFIG}\n{extra}");
        let c = Config::from_toml(&text).unwrap();
        assert_eq!(c.strategies[0].policy, PolicyConfig::default());
        assert_eq!(c.strategies[0].cases, CasesConfig::default());
        assert_eq!(
            Config::default().strategies[0].policy,
            PolicyConfig::default()
        );
        // Defaults are left out of the serialized strategy (its version hash).
        let json = serde_json::to_string(&c.strategies[0]).unwrap();
        assert!(
            !json.contains("policy") && !json.contains("cases"),
            "{json}"
        );
    }

    #[test]
    fn policy_and_cases_errors_name_the_key() {
        let base = format!("{DEFAULT_CONFIG}\n");
        let cases = [
            (
                "[[strategy.policy.action]]\nkind = \"freeze\"\nwhen_level_at_least = 4\nwhen_rules = [\"nope\"]\n",
                "strategy[0].policy.action[0].when_rules",
            ),
            (
                "[[strategy.policy.action]]\nkind = \"limit_decrease\"\nwhen_level_at_least = 1\npercent = 10\n",
                "strategy[0].policy.action[0].when_level_at_least",
            ),
            (
                "[[strategy.policy.action]]\nkind = \"limit_decrease\"\nwhen_level_at_least = 3\n",
                "strategy[0].policy.action[0].percent",
            ),
            (
                "[[strategy.policy.action]]\nkind = \"price_increase\"\nwhen_level_at_least = 3\n",
                "strategy[0].policy.action[0].bps",
            ),
            (
                "[[strategy.policy.action]]\nkind = \"unfreeze\"\nwhen_level_at_least = 3\n",
                "strategy[0].policy.action[0].kind",
            ),
            (
                "[strategy.policy]\nbreaker_interval = \"0s\"\n",
                "strategy[0].policy.breaker_interval",
            ),
            (
                "[strategy.policy]\napr_cap_bps = 200000\n",
                "strategy[0].policy.apr_cap_bps",
            ),
            (
                "[[strategy.cases.queue]]\nstage = \"M1\"\nqueue = \"sms\"\n",
                "strategy[0].cases.queue",
            ),
            (
                "[strategy.cases]\npre_collection_min_level = 0\n",
                "strategy[0].cases.pre_collection_min_level",
            ),
        ];
        for (extra, key) in cases {
            let err = Config::from_toml(&format!("{base}{extra}")).unwrap_err();
            assert_eq!(err.key, key, "{extra}: {err}");
        }
        let err =
            Config::from_toml(&format!("{base}[strategy.policy]\ncooldwn = \"1d\"\n")).unwrap_err();
        assert!(err.to_string().contains("cooldwn"), "{err}");
        let ok = "[[strategy.policy.action]]\nkind = \"limit_decrease\"\nwhen_level_at_least = 4\nwhen_rules = [\"bust_out_spend\"]\nto_balance = true\n";
        let c = Config::from_toml(&format!("{base}{ok}")).unwrap();
        assert_eq!(c.strategies[0].policy.actions.len(), 1);
        assert!(c.strategies[0].policy.actions[0].to_balance);
    }

    #[test]
    fn derived_measures_need_their_inputs() {
        let text = "[[window]]\nname = \"1h\"\nlength = \"1h\"\ngranularity = \"10s\"\nfeatures = [\"cash_ratio\", \"spend\"]\n[[strategy]]\nname = \"c\"\n";
        let err = Config::from_toml(text).unwrap_err();
        assert_eq!(err.key, "window[0].features");
        assert!(err.reason.contains("cash"), "{err}");
    }

    #[test]
    fn kafka_defaults_select_files_and_name_distinct_topics() {
        let c = Config::default();
        assert_eq!(c.run.mode, RunMode::Files);
        assert_eq!(
            c.kafka,
            KafkaConfig::default(),
            "the shipped file lists the defaults"
        );
        assert_eq!(c.run, RunConfig::default());
        assert_eq!(
            c.kafka.topics.inputs()[crate::event::Stream::Transactions as usize],
            "riskwatch.transactions"
        );
    }

    #[test]
    fn kafka_secrets_in_the_config_file_are_refused() {
        let err =
            Config::from_toml("[kafka.consumer]\n\"sasl.password\" = \"hunter2\"\n").unwrap_err();
        assert_eq!(err.key, "kafka.consumer.sasl.password");
        let err = Config::from_toml("[kafka]\nsasl_password = \"hunter2\"\n").unwrap_err();
        assert!(err.to_string().contains("sasl_password"), "{err}");
    }

    #[test]
    fn kafka_topics_must_be_valid_and_distinct() {
        let err = Config::from_toml("[kafka.topics]\nalerts = \"riskwatch.loans\"\n").unwrap_err();
        assert_eq!(err.key, "kafka.topics.alerts");
        let err = Config::from_toml("[kafka.topics]\ncases = \"a b\"\n").unwrap_err();
        assert_eq!(err.key, "kafka.topics.cases");
        let err =
            Config::from_toml("[run]\nmode = \"kafka\"\n[kafka]\nbrokers = \"\"\n").unwrap_err();
        assert_eq!(err.key, "kafka.brokers");
    }
}
