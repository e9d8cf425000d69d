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
//! `cases.rs`, `run.rs`, `kafka.rs` and `rings.rs`. Every type is re-exported here, so its
//! path stays `riskwatch_model::config::X`.

mod cases;
mod kafka;
mod policy;
mod rings;
mod run;
mod strategy;
mod time;
mod window;

pub use cases::{CasesConfig, QueueRuleConfig};
pub use kafka::{Compression, KafkaConfig, KafkaTopics, SecurityProtocol, StartOffset};
pub use policy::{ActionConfig, LimitIncreaseConfig, PolicyConfig};
pub use rings::RingsConfig;
pub use run::{RunConfig, RunMode};
pub use strategy::{
    ExperimentConfig, ExperimentMode, LevelsConfig, Role, RuleConfig, ScoreBin, ScoreFeature,
    ScorecardConfig, Severity, StrategyConfig,
};
pub use time::{DelinquencyConfig, TimeConfig};
pub use window::{Measure, MeasureKind, WindowConfig, ACCOUNT_FEATURES};

use crate::time::{Millis, MS_PER_DAY};
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
mod tests;
