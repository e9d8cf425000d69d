//! Strategies (`[[strategy]]`): rules, the points scorecard and the level table, and how
//! challengers run beside the champion (`[experiment]`).

use super::{CasesConfig, PolicyConfig};
use serde::{Deserialize, Serialize};

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
