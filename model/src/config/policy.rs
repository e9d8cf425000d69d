//! A strategy's action policy (`[strategy.policy]`): adverse actions, guardrails,
//! restores, limit increases, the kill switch and the circuit breaker.

use super::{ConfigError, RuleConfig};
use crate::output::DecisionKind;
use crate::time::{Millis, MS_PER_DAY, MS_PER_HOUR};
use serde::{Deserialize, Serialize};

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
