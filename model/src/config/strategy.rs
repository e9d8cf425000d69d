//! Strategies (`[[strategy]]`): rules, the points scorecard and the level table, and how
//! challengers run beside the champion (`[experiment]`).

use super::{check_finite, CasesConfig, ConfigError, PolicyConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

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
    /// The behaviour scorecard. A strategy whose scorecard has no features (none given and
    /// none imported) has no scorecard: it ranks by its rules alone, at level 0 unless a
    /// firing rule's `min_level` raises it; its `levels` are ignored and its outputs carry
    /// no score.
    #[serde(default)]
    pub scorecard: ScorecardConfig,
    /// Score bands → risk level (ignored without a scorecard).
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
    /// A CEL expression over feature names that yields a boolean; the rule fires only when
    /// it is `true`. Null follows SQL's three-valued logic, stated once in docs/CONFIG.md
    /// ("Null in rules"): a comparison with a null feature (a ratio with a zero
    /// denominator) is unknown, so the rule does not fire. At most 16384 bytes and 32
    /// levels of nesting.
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

impl StrategyConfig {
    /// Checks strategy `index`; `names` collects the strategy names seen so far (they must
    /// be unique). The error names the key.
    pub(super) fn validate(
        &self,
        index: usize,
        names: &mut BTreeSet<String>,
    ) -> Result<(), ConfigError> {
        let i = index;
        if self.name.is_empty() || self.name.chars().any(char::is_whitespace) {
            return Err(ConfigError::new(
                format!("strategy[{i}].name"),
                "must be non-empty without whitespace",
            ));
        }
        if !names.insert(self.name.clone()) {
            return Err(ConfigError::new(
                format!("strategy[{i}].name"),
                format!("\"{}\" is used twice", self.name),
            ));
        }
        let mut ids = BTreeSet::new();
        for (j, r) in self.rules.iter().enumerate() {
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
        if self.rules.len() > 64 {
            return Err(ConfigError::new(
                format!("strategy[{i}].rule"),
                "at most 64 rules per strategy",
            ));
        }
        self.policy.validate(i, &self.rules)?;
        self.cases.validate(i)?;
        let m = self.levels.min_score;
        for (k, x) in m.iter().enumerate() {
            check_finite(|| format!("strategy[{i}].levels.min_score[{k}]"), *x)?;
        }
        if !(m[0] > m[1] && m[1] > m[2] && m[2] > m[3]) {
            return Err(ConfigError::new(
                format!("strategy[{i}].levels.min_score"),
                "must be strictly decreasing",
            ));
        }
        check_finite(
            || format!("strategy[{i}].scorecard.base"),
            self.scorecard.base,
        )?;
        for (j, f) in self.scorecard.features.iter().enumerate() {
            f.validate().map_err(|(k, reason)| {
                ConfigError::new(format!("strategy[{i}].scorecard.feature[{j}].{k}"), reason)
            })?;
        }
        Ok(())
    }
}

impl ScorecardConfig {
    /// True without features, given or imported: the strategy then has no scorecard.
    pub fn is_empty(&self) -> bool {
        self.features.is_empty() && self.import_toad.is_none()
    }
}

impl ScoreFeature {
    /// Checks the bins: at least one, bounds increasing, only the last without `below`,
    /// and every number finite. The error is the key below the feature (`bins`,
    /// `bins[2].points`, `missing`) and the reason; config files and toad imports share it.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let not_finite = |k: String, x: f64| (k, super::layers::not_finite(x));
        if !self.missing.is_finite() {
            return Err(not_finite("missing".into(), self.missing));
        }
        if self.bins.is_empty() {
            return Err(("bins".into(), "needs at least one bin".into()));
        }
        let mut last = f64::NEG_INFINITY;
        for (k, b) in self.bins.iter().enumerate() {
            if !b.points.is_finite() {
                return Err(not_finite(format!("bins[{k}].points"), b.points));
            }
            match b.below {
                Some(x) if !x.is_finite() => {
                    return Err(not_finite(format!("bins[{k}].below"), x));
                }
                Some(x) if x > last => last = x,
                Some(_) => return Err(("bins".into(), "bin bounds must increase".into())),
                None if k + 1 == self.bins.len() => {}
                None => {
                    return Err(("bins".into(), "only the last bin may omit \"below\"".into()));
                }
            }
        }
        Ok(())
    }

    /// The most points any value (or null) can score.
    pub fn best(&self) -> f64 {
        self.bins
            .iter()
            .map(|b| b.points)
            .fold(self.missing, f64::max)
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
