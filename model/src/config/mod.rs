//! The configuration tree: time model, windows and their features, strategies (rules,
//! scorecard, level table) and champion/challenger assignment.
//!
//! Layers, lowest first: built-in defaults (`Default` impls, equal to
//! `deploy/config/riskwatch.toml`), then the TOML file, then environment variables
//! `RISKWATCH__SECTION__KEY=value`. Every struct denies unknown fields, so a typo fails at
//! startup with the key's path. [`Config::validate`] checks what serde cannot (units that
//! must divide each other, feature names that must exist, unique ids) and names the key.
//!
//! One file per section: `time.rs` (`[time]`, `[delinquency]`), `window.rs` (windows and
//! measures), `strategy.rs` (rules, scorecard, levels, experiment), `policy.rs`,
//! `cases.rs`, `run.rs`, `snapshot.rs`, `kafka.rs`, `rings.rs` and `webhooks.rs`. Every type is re-exported here, so its
//! path stays `riskwatch_model::config::X`.

mod cases;
mod kafka;
mod layers;
mod policy;
mod rings;
mod run;
mod snapshot;
mod strategy;
mod time;
mod webhooks;
mod window;

pub use cases::{CasesConfig, QueueRuleConfig};
pub use kafka::{Compression, KafkaConfig, KafkaTopics, SecurityProtocol, StartOffset};
pub use policy::{ActionConfig, LimitIncreaseConfig, PolicyConfig};
pub use rings::RingsConfig;
pub use run::{RunConfig, RunMode};
pub use snapshot::{SnapshotConfig, SnapshotTimes};
pub use strategy::{
    ExperimentConfig, ExperimentMode, LevelsConfig, Role, RuleConfig, ScoreBin, ScoreFeature,
    ScorecardConfig, Severity, StrategyConfig,
};
pub use time::{DelinquencyConfig, TimeConfig};
pub use webhooks::{EventPattern, EventType, ShadowFilter, WebhookConfig};
pub use window::{Measure, MeasureKind, WindowConfig, ACCOUNT_FEATURES};

use crate::time::{Millis, MS_PER_DAY};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A configuration problem: the dotted key and the reason.
///
/// Displays as `config key "window[1].granularity": 7s must divide 1d …`. A TOML syntax
/// error has no key yet: its `key` is empty, its reason starts with the line and column,
/// and it displays as `config: line 3, column 7: invalid table header …`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", display_key_reason("config", key, reason))]
pub struct ConfigError {
    /// Dotted path of the offending key, e.g. `window[1].granularity`; empty for a syntax
    /// error.
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

/// A configuration that loads and runs but probably does not do what was meant, such as a
/// level table no customer can reach level 0 of. `check-config` prints these; nothing
/// refuses them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigWarning {
    /// Dotted path of the key, e.g. `strategy[0].levels.min_score`.
    pub key: String,
    /// Why it looks wrong.
    pub reason: String,
}

impl ConfigWarning {
    /// A new warning for `key`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> ConfigWarning {
        ConfigWarning {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&display_key_reason(
            "config warning",
            &self.key,
            &self.reason,
        ))
    }
}

fn display_key_reason(prefix: &str, key: &str, reason: &str) -> String {
    if key.is_empty() {
        format!("{prefix}: {reason}")
    } else {
        format!("{prefix} key \"{key}\": {reason}")
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
    /// Book snapshots `riskwatch run` writes at observation times; off by default.
    #[serde(default)]
    pub snapshot: SnapshotConfig,
    /// Fraud-ring detection over identifiers shared between customers.
    #[serde(default)]
    pub rings: RingsConfig,
    /// Webhook endpoints the outputs are POSTed to, signed (docs/webhooks.md); none by
    /// default.
    #[serde(default, rename = "webhook", skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<WebhookConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config::from_toml("").expect("the built-in default config is valid")
    }
}

/// The built-in default configuration: the shipped `deploy/config/riskwatch.toml`.
pub const DEFAULT_CONFIG: &str = include_str!("../../../deploy/config/riskwatch.toml");

impl Config {
    /// Parses a TOML document, applies `RISKWATCH__…` overrides from `env`, and validates.
    ///
    /// The file is laid over the built-in defaults: tables merge key by key, and an array
    /// of tables given in the file (`[[window]]`, `[[strategy]]`) replaces the default one.
    /// A syntax error gives the line and column; every other error names its key.
    pub fn from_toml_with_env(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut value = layers::parse_document(DEFAULT_CONFIG)?;
        layers::merge_tables(&mut value, layers::parse_document(text)?);
        for (name, raw) in env {
            let Some(path) = name.strip_prefix("RISKWATCH__") else {
                continue;
            };
            let parts: Vec<String> = path.split("__").map(|p| p.to_ascii_lowercase()).collect();
            layers::set_path(&mut value, &parts, layers::parse_env_value(&raw))
                .map_err(|reason| ConfigError::new(parts.join("."), reason))?;
        }
        // Every float of the merged tree, from the file or the environment, is finite.
        layers::check_finite(&value)?;
        // serde_path_to_error keeps the path of the failing key (`time.tick`,
        // `strategy[0].rule[2].severity`): toml's own errors from a `Value` carry none.
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(value)).map_err(|e| {
                let key = e.path().to_string();
                let inner = e.into_inner();
                let key = if key.is_empty() || key == "." {
                    layers::toml_key(&inner)
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

    /// Checks what serde cannot; the error names the key. A config built in code is held
    /// to the same rules as a loaded one (every float finite, for instance).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let tick = self.time.tick;
        if tick.ms() == 0 || !MS_PER_DAY.is_multiple_of(tick.ms()) {
            return Err(ConfigError::new(
                "time.tick",
                format!("{tick} must be positive and divide 1d"),
            ));
        }
        let mut names = BTreeSet::new();
        for (i, w) in self.windows.iter().enumerate() {
            w.validate(i, tick, &mut names)?;
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
            s.validate(i, &mut strategy_names)?;
            if s.role == Role::Challenger {
                share += s.share_percent;
            }
        }
        if share > 100 {
            return Err(ConfigError::new(
                "strategy.share_percent",
                format!("challenger shares add up to {share}%, more than 100%"),
            ));
        }
        self.run.validate()?;
        self.snapshot.validate(tick)?;
        self.rings.validate(tick)?;
        self.kafka.validate(self.run.mode == RunMode::Kafka)?;
        let strategy_names: BTreeSet<&str> =
            self.strategies.iter().map(|s| s.name.as_str()).collect();
        let mut endpoint_names = BTreeSet::new();
        for (i, w) in self.webhooks.iter().enumerate() {
            w.validate(i, &strategy_names, &mut endpoint_names)?;
        }
        Ok(())
    }
}

/// Checks that a granularity `g` at `key` is positive, divides 1 day (so expiries stay
/// aligned to UTC days) and is a multiple of the tick (so they fall on timely times).
pub(crate) fn check_granularity(key: String, g: Millis, tick: Millis) -> Result<(), ConfigError> {
    if g.ms() == 0 || !MS_PER_DAY.is_multiple_of(g.ms()) || !g.ms().is_multiple_of(tick.ms()) {
        return Err(ConfigError::new(
            key,
            format!("{g} must divide 1d and be a multiple of the tick ({tick})"),
        ));
    }
    Ok(())
}

/// Checks that `x` at `key` is a finite number (TOML allows `nan` and `inf`).
pub(crate) fn check_finite(key: impl FnOnce() -> String, x: f64) -> Result<(), ConfigError> {
    if x.is_finite() {
        Ok(())
    } else {
        Err(ConfigError::new(key(), layers::not_finite(x)))
    }
}

#[cfg(test)]
mod tests;
