//! A compiled strategy: rules, points scorecard and level table, ready to evaluate a
//! customer's feature vector without allocation.
//!
//! Score = base + Σ points of the bin each scorecard feature falls in (null → `missing`),
//! a saturating sum, so always finite. Level = the score band (`min_score[i]` is the lowest
//! score at level i; below `min_score[3]` is level 4), raised to the `min_level` of every
//! firing rule. A strategy without scorecard features has no score and no band: its level
//! is the highest `min_level` of its firing rules, 0 when none fires. Reason codes for the
//! score name the features whose points fall furthest below that feature's best bin, most
//! first.

use crate::layout::Layout;
use crate::rules::Expression;
use riskwatch_model::config::{
    ConfigError, ConfigWarning, LevelsConfig, Role, ScoreBin, ScoreFeature, Severity,
    StrategyConfig,
};
use riskwatch_model::output::Reason;

/// One compiled rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Rule id.
    pub id: String,
    /// Rule version.
    pub version: u32,
    /// Alert severity.
    pub severity: Severity,
    /// Level floor while firing.
    pub min_level: u8,
    /// Operator text.
    pub description: Option<String>,
    /// The compiled expression.
    pub expr: Expression,
}

/// One compiled scorecard feature.
#[derive(Clone, Debug)]
pub struct ScoreTerm {
    /// Feature id.
    pub feature: usize,
    /// Feature name.
    pub name: String,
    /// Points for null.
    pub missing: f64,
    /// Upper bounds (exclusive) and points; the last bound is +inf.
    pub bins: Vec<(f64, f64)>,
    /// The best points of any bin (the reference for reason codes).
    pub best: f64,
}

impl ScoreTerm {
    /// Points for a value.
    pub fn points(&self, value: Option<f64>) -> f64 {
        match value {
            Some(v) if v.is_finite() => self
                .bins
                .iter()
                .find(|(below, _)| v < *below)
                .map(|(_, p)| *p)
                .unwrap_or(self.missing),
            _ => self.missing,
        }
    }
}

/// A compiled strategy.
#[derive(Clone, Debug)]
pub struct Strategy {
    /// Name carried by outputs.
    pub name: String,
    /// Version carried by outputs (configured, or a content hash).
    pub version: String,
    /// Champion or challenger.
    pub role: Role,
    /// Split mode share in percent.
    pub share_percent: u32,
    /// Rules in config order (bit i of a firing mask is rule i).
    pub rules: Vec<Rule>,
    /// Base points.
    pub base: f64,
    /// Scorecard terms; empty for a strategy without a scorecard, which ranks by its
    /// rules alone.
    pub terms: Vec<ScoreTerm>,
    /// Level bands (unused without a scorecard).
    pub min_score: [f64; 4],
}

/// The result of evaluating a strategy on one feature vector.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Verdict {
    /// Bit i set when rule i fires.
    pub firing: u64,
    /// Behaviour score, always finite; `None` without a scorecard.
    pub score: Option<f64>,
    /// Risk level 0–4.
    pub level: u8,
}

impl Strategy {
    /// Compiles a strategy against a feature layout. `index` is its position in the config
    /// (for error keys); `toad` loads an imported scorecard file's text.
    pub fn compile(
        config: &StrategyConfig,
        index: usize,
        layout: &Layout,
        toad: impl Fn(&str) -> Result<String, String>,
    ) -> Result<Strategy, ConfigError> {
        let key = |k: String| format!("strategy[{index}].{k}");
        let mut rules = Vec::new();
        for (j, r) in config.rules.iter().enumerate() {
            let expr = Expression::compile(&r.expr, |n| layout.feature(n))
                .map_err(|e| ConfigError::new(key(format!("rule[{j}].expr")), e))?;
            rules.push(Rule {
                id: r.id.clone(),
                version: r.version,
                severity: r.severity,
                min_level: r.min_level.unwrap_or(0),
                description: r.description.clone(),
                expr,
            });
        }
        let mut features = config.scorecard.features.clone();
        if let Some(path) = &config.scorecard.import_toad {
            let import_key = || key("scorecard.import_toad".into());
            let text = toad(path).map_err(|e| ConfigError::new(import_key(), e))?;
            let imported = import_toad(&text).map_err(|e| ConfigError::new(import_key(), e))?;
            features.extend(imported);
        }
        let inline = config.scorecard.features.len();
        let mut terms = Vec::new();
        for (j, f) in features.iter().enumerate() {
            // Imported features are named by the import key and their toad feature name.
            let error = |k: &str, reason: String| {
                if j < inline {
                    ConfigError::new(key(format!("scorecard.feature[{j}].{k}")), reason)
                } else {
                    ConfigError::new(
                        key("scorecard.import_toad".into()),
                        format!("toad feature \"{}\": {k}: {reason}", f.feature),
                    )
                }
            };
            let id = layout
                .feature(&f.feature)
                .ok_or_else(|| error("feature", format!("unknown feature \"{}\"", f.feature)))?;
            f.validate().map_err(|(k, reason)| error(&k, reason))?;
            let bins: Vec<(f64, f64)> = f
                .bins
                .iter()
                .map(|b| (b.below.unwrap_or(f64::INFINITY), b.points))
                .collect();
            let best = f.best();
            terms.push(ScoreTerm {
                feature: id,
                name: f.feature.clone(),
                missing: f.missing,
                bins,
                best,
            });
        }
        let version = config.version.clone().unwrap_or_else(|| {
            let text = serde_json::to_string(config).expect("config serializes");
            format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
        });
        Ok(Strategy {
            name: config.name.clone(),
            version,
            role: config.role,
            share_percent: config.share_percent,
            rules,
            base: config.scorecard.base,
            terms,
            min_score: config.levels.min_score,
        })
    }

    /// True when the strategy has a scorecard (at least one term): only then is there a
    /// score, and a score band under the level.
    pub fn has_scorecard(&self) -> bool {
        !self.terms.is_empty()
    }

    /// Evaluates rules, score and level.
    pub fn evaluate(&self, values: &[Option<f64>]) -> Verdict {
        let mut firing = 0u64;
        let mut floor = 0u8;
        for (i, r) in self.rules.iter().enumerate() {
            if r.expr.fires(values) {
                firing |= 1 << i;
                floor = floor.max(r.min_level);
            }
        }
        if !self.has_scorecard() {
            return Verdict {
                firing,
                score: None,
                level: floor,
            };
        }
        let score = self.score(values);
        Verdict {
            firing,
            score: Some(score),
            level: self.band(score).max(floor),
        }
    }

    /// The level band of `score`: the first level whose `min_score` it reaches, else 4.
    pub fn band(&self, score: f64) -> u8 {
        self.min_score.iter().position(|m| score >= *m).unwrap_or(4) as u8
    }

    /// The behaviour score (`base` alone without a scorecard). The sum saturates at the
    /// largest finite numbers, so it is finite however large the configured points are.
    pub fn score(&self, values: &[Option<f64>]) -> f64 {
        self.terms
            .iter()
            .map(|t| t.points(values[t.feature]))
            .fold(self.base, saturating_add)
    }

    /// The highest score any customer can reach: base plus every term's best points.
    pub fn max_score(&self) -> f64 {
        self.terms
            .iter()
            .map(|t| t.best)
            .fold(self.base, saturating_add)
    }

    /// What in this strategy's config (at `index`) loads but probably is not meant: a
    /// level table whose level 0 no score reaches, or a level table without a scorecard,
    /// which is ignored.
    pub fn warnings(&self, config: &StrategyConfig, index: usize) -> Vec<ConfigWarning> {
        let key = format!("strategy[{index}].levels.min_score");
        let mut out = Vec::new();
        if !self.has_scorecard() {
            if config.levels != LevelsConfig::default() {
                out.push(ConfigWarning::new(
                    key,
                    "ignored: the strategy has no scorecard, so its level comes from its \
                     rules alone",
                ));
            }
        } else if self.max_score() < self.min_score[0] {
            out.push(ConfigWarning::new(
                key,
                format!(
                    "no customer can reach level 0: the highest score the scorecard gives \
                     is {}, below min_score[0] = {}",
                    self.max_score(),
                    self.min_score[0]
                ),
            ));
        }
        out
    }

    /// Up to `n` score reasons: the terms furthest below their best bin.
    pub fn score_reasons(&self, values: &[Option<f64>], n: usize) -> Vec<Reason> {
        let mut gaps: Vec<(f64, usize)> = self
            .terms
            .iter()
            .enumerate()
            .map(|(i, t)| (t.best - t.points(values[t.feature]), i))
            .filter(|(gap, _)| *gap > 0.0)
            .collect();
        gaps.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        gaps.into_iter()
            .take(n)
            .map(|(gap, i)| {
                let t = &self.terms[i];
                Reason {
                    code: format!("score:{}", t.name),
                    feature: Some(t.name.clone()),
                    value: values[t.feature].filter(|v| v.is_finite()),
                    threshold: None,
                    text: Some(format!("{gap} points below the best bin")),
                }
            })
            .collect()
    }
}

/// `a + b`, held at the largest finite numbers instead of reaching infinity (both finite).
fn saturating_add(a: f64, b: f64) -> f64 {
    (a + b).clamp(f64::MIN, f64::MAX)
}

/// Parses a toad-format scorecard: `{"feature": {"[-inf ~ 3)": 100, "[3 ~ inf)": 20,
/// "nan": 50, "else": 0}}` with left-closed numeric bins.
pub fn import_toad(text: &str) -> Result<Vec<ScoreFeature>, String> {
    let doc: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
        .map_err(|e| format!("toad scorecard is not a JSON object: {e}"))?;
    let mut out = Vec::new();
    for (feature, bins) in doc {
        let bins = bins
            .as_object()
            .ok_or_else(|| format!("toad feature \"{feature}\" is not an object of bins"))?;
        let mut missing = 0.0;
        let mut otherwise = None;
        let mut ranges: Vec<(f64, f64, f64)> = Vec::new();
        for (label, points) in bins {
            let points = points.as_f64().ok_or_else(|| {
                format!("toad bin \"{feature}\".\"{label}\" has no numeric points")
            })?;
            let l = label.trim();
            if l == "nan" {
                missing = points;
            } else if l == "else" {
                otherwise = Some(points);
            } else {
                let inner = l
                    .strip_prefix('[')
                    .and_then(|s| s.strip_suffix(')'))
                    .ok_or_else(|| format!("toad bin \"{feature}\".\"{l}\" is not \"[a ~ b)\""))?;
                let (lo, hi) = inner
                    .split_once('~')
                    .ok_or_else(|| format!("toad bin \"{feature}\".\"{l}\" is not \"[a ~ b)\""))?;
                // Only the spelt-out "-inf" and "inf" are infinite bounds: Rust's parser
                // also takes "nan", "infinity" and "1e999", which are not bounds.
                let num = |s: &str| -> Result<f64, String> {
                    match s.trim() {
                        "-inf" => Ok(f64::NEG_INFINITY),
                        "inf" => Ok(f64::INFINITY),
                        x => x
                            .parse()
                            .ok()
                            .filter(|v: &f64| v.is_finite())
                            .ok_or_else(|| {
                                format!("toad bin \"{feature}\".\"{l}\": bad bound \"{x}\"")
                            }),
                    }
                };
                let (lo, hi) = (num(lo)?, num(hi)?);
                if lo >= hi {
                    return Err(format!(
                        "toad bin \"{feature}\".\"{l}\" is empty: its lower bound must be \
                         below its upper bound"
                    ));
                }
                ranges.push((lo, hi, points));
            }
        }
        ranges.sort_by(|a, b| a.0.total_cmp(&b.0));
        for w in ranges.windows(2) {
            if w[0].1 != w[1].0 {
                return Err(format!(
                    "toad feature \"{feature}\": bins leave a gap or overlap"
                ));
            }
        }
        let mut bins: Vec<ScoreBin> = Vec::new();
        if let Some(first) = ranges.first() {
            if first.0 != f64::NEG_INFINITY {
                bins.push(ScoreBin {
                    below: Some(first.0),
                    points: otherwise.unwrap_or(0.0),
                });
            }
        }
        for (_, hi, points) in &ranges {
            bins.push(ScoreBin {
                below: hi.is_finite().then_some(*hi),
                points: *points,
            });
        }
        if ranges.last().is_some_and(|r| r.1.is_finite()) || ranges.is_empty() {
            bins.push(ScoreBin {
                below: None,
                points: otherwise.unwrap_or(0.0),
            });
        }
        out.push(ScoreFeature {
            feature,
            missing,
            bins,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use riskwatch_model::config::Config;

    #[test]
    fn toad_import_builds_left_closed_bins() {
        let f = import_toad(
            r#"{"x": {"[-inf ~ 3)": 100, "[3 ~ 5)": 50, "[5 ~ inf)": 0, "nan": 25, "else": -1}}"#,
        )
        .unwrap();
        assert_eq!(f.len(), 1);
        let layout = Layout::new(&Config::default()).unwrap();
        let term = ScoreTerm {
            feature: 0,
            name: "x".into(),
            missing: f[0].missing,
            bins: f[0]
                .bins
                .iter()
                .map(|b| (b.below.unwrap_or(f64::INFINITY), b.points))
                .collect(),
            best: 100.0,
        };
        let _ = layout;
        assert_eq!(term.points(Some(2.9)), 100.0);
        assert_eq!(term.points(Some(3.0)), 50.0);
        assert_eq!(term.points(Some(5.0)), 0.0);
        assert_eq!(term.points(None), 25.0);
        assert!(import_toad(r#"{"x": {"[0 ~ 3)": 1, "[4 ~ 5)": 2}}"#).is_err());
        assert!(import_toad(r#"{"x": {"3-5": 1}}"#).is_err());
    }

    fn rules_only(levels: &str) -> (Strategy, Layout, StrategyConfig) {
        let text = format!(
            "[[strategy]]\nname = \"rules_only\"\n{levels}\n[[strategy.rule]]\nid = \"late\"\n\
             severity = \"high\"\nexpr = \"dpd >= 4\"\nmin_level = 2\n[[strategy.rule]]\n\
             id = \"busy\"\nseverity = \"low\"\nexpr = \"failed_logins_1h >= 5\"\n"
        );
        let config = Config::from_toml(&text).unwrap();
        let layout = Layout::new(&config).unwrap();
        let s = Strategy::compile(&config.strategies[0], 0, &layout, |_| Err("no".into())).unwrap();
        (s, layout, config.strategies[0].clone())
    }

    /// Issue 8: a strategy without a scorecard scored 0, below every band, so every
    /// customer sat at level 4 and drew `level` alerts and freeze/price decisions.
    #[test]
    fn strategy_without_a_scorecard_ranks_by_its_rules_alone() {
        let (s, layout, _) = rules_only("");
        assert!(!s.has_scorecard());
        let mut values = vec![Some(0.0); layout.names.len()];
        assert_eq!(
            s.evaluate(&values),
            Verdict {
                firing: 0,
                score: None,
                level: 0
            }
        );
        // A firing rule without min_level alerts but leaves the level at 0.
        values[layout.feature("failed_logins_1h").unwrap()] = Some(6.0);
        assert_eq!(s.evaluate(&values).level, 0);
        assert_eq!(s.evaluate(&values).firing, 0b10);
        // A firing rule with min_level 2 gives level 2.
        values[layout.feature("dpd").unwrap()] = Some(5.0);
        let v = s.evaluate(&values);
        assert_eq!((v.firing, v.level, v.score), (0b11, 2, None));
        assert!(s.score_reasons(&values, 3).is_empty());
    }

    #[test]
    fn level_tables_that_cannot_give_level_0_or_are_ignored_warn() {
        let config = Config::default();
        let layout = Layout::new(&config).unwrap();
        let compile =
            |c: &StrategyConfig| Strategy::compile(c, 0, &layout, |_| Err("no".into())).unwrap();
        let shipped = &config.strategies[0];
        assert_eq!(compile(shipped).warnings(shipped, 0), vec![]);
        // The shipped card's best is 560 + 40 + 30 + 20 + 15 + 10 + 10 + 20 = 705.
        let mut high = shipped.clone();
        high.levels.min_score = [710.0, 600.0, 560.0, 520.0];
        assert_eq!(
            compile(&high).warnings(&high, 3),
            vec![ConfigWarning::new(
                "strategy[3].levels.min_score",
                "no customer can reach level 0: the highest score the scorecard gives is 705, \
                 below min_score[0] = 710"
            )]
        );
        let (s, _, c) = rules_only("levels = { min_score = [0, -1, -2, -3] }");
        assert_eq!(
            s.warnings(&c, 0)[0].reason,
            "ignored: the strategy has no scorecard, so its level comes from its rules alone"
        );
        let (s, _, c) = rules_only("");
        assert_eq!(s.warnings(&c, 0), vec![]);
    }

    #[test]
    fn scores_saturate_instead_of_reaching_infinity() {
        let config = Config::default();
        let layout = Layout::new(&config).unwrap();
        let mut c = config.strategies[0].clone();
        c.scorecard.base = f64::MAX;
        for f in &mut c.scorecard.features {
            for b in &mut f.bins {
                b.points = f64::MAX;
            }
        }
        let s = Strategy::compile(&c, 0, &layout, |_| Err("no".into())).unwrap();
        let v = s.evaluate(&vec![Some(0.0); layout.names.len()]);
        assert_eq!(v.score, Some(f64::MAX));
        assert_eq!(s.max_score(), f64::MAX);
        let reasons = s.score_reasons(&vec![None; layout.names.len()], 3);
        assert!(reasons.iter().all(|r| r.value.is_none()));
    }

    /// Issue 8: toad imports must be finite too: Rust's float parser takes "nan" and
    /// "1e999" as bounds.
    #[test]
    fn toad_imports_with_bounds_that_are_not_finite_are_refused() {
        for (card, why) in [
            (r#"{"x": {"[nan ~ 3)": 1}}"#, "bad bound \"nan\""),
            (r#"{"x": {"[1e999 ~ inf)": 1}}"#, "bad bound \"1e999\""),
            (
                r#"{"x": {"[-inf ~ infinity)": 1}}"#,
                "bad bound \"infinity\"",
            ),
            (r#"{"x": {"[3 ~ 3)": 1}}"#, "is empty"),
            (r#"{"x": {"[inf ~ inf)": 1}}"#, "is empty"),
        ] {
            let err = import_toad(card).unwrap_err();
            assert!(err.contains(why), "{card}: {err}");
        }
        // An imported feature that does not exist is named by the import key.
        let config = Config::default();
        let layout = Layout::new(&config).unwrap();
        let mut c = config.strategies[0].clone();
        c.scorecard.import_toad = Some("card.json".into());
        let err = Strategy::compile(&c, 0, &layout, |_| {
            Ok(r#"{"nope": {"[-inf ~ inf)": 1}}"#.to_string())
        })
        .unwrap_err();
        assert_eq!(err.key, "strategy[0].scorecard.import_toad");
        assert_eq!(
            err.reason,
            "toad feature \"nope\": feature: unknown feature \"nope\""
        );
    }

    #[test]
    fn levels_follow_bands_and_rule_floors() {
        let config = Config::default();
        let layout = Layout::new(&config).unwrap();
        let s = Strategy::compile(&config.strategies[0], 0, &layout, |_| Err("no".into())).unwrap();
        let mut values = vec![Some(0.0); layout.names.len()];
        let healthy = s.evaluate(&values);
        assert_eq!(healthy.firing, 0);
        // 35 DPD (bucket M2) fires delinquent_m1 and delinquent_m2: level floor 4.
        values[layout.feature("bucket").unwrap()] = Some(2.0);
        values[layout.feature("dpd").unwrap()] = Some(35.0);
        let v = s.evaluate(&values);
        assert_eq!(v.level, 4);
        let m1 = s
            .rules
            .iter()
            .position(|r| r.id == "delinquent_m1")
            .unwrap();
        let m2 = s
            .rules
            .iter()
            .position(|r| r.id == "delinquent_m2")
            .unwrap();
        assert_eq!(v.firing, (1 << m1) | (1 << m2));
        assert!(s.score_reasons(&values, 3)[0].code == "score:bucket");
    }
}
