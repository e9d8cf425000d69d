//! A strategy's collection cases (`[strategy.cases]`): when cases open, and the queue
//! assignment by stage and score.

use super::ConfigError;
use crate::output::CaseStage;
use crate::time::{Millis, MS_PER_DAY};
use serde::{Deserialize, Serialize};

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
