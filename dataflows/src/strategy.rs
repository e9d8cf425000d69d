//! A compiled strategy: rules, points scorecard and level table, ready to evaluate a
//! customer's feature vector without allocation.
//!
//! Score = base + Σ points of the bin each scorecard feature falls in (null → `missing`).
//! Level = the score band (`min_score[i]` is the lowest score at level i; below
//! `min_score[3]` is level 4), raised to the `min_level` of every firing rule. Reason codes
//! for the score name the features whose points fall furthest below that feature's best
//! bin, most first.

use crate::layout::Layout;
use crate::rules::Expression;
use riskwatch_model::config::{
    ConfigError, Role, ScoreBin, ScoreFeature, Severity, StrategyConfig,
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
    /// Scorecard terms.
    pub terms: Vec<ScoreTerm>,
    /// Level bands.
    pub min_score: [f64; 4],
}

/// The result of evaluating a strategy on one feature vector.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Verdict {
    /// Bit i set when rule i fires.
    pub firing: u64,
    /// Behaviour score.
    pub score: f64,
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
            let text =
                toad(path).map_err(|e| ConfigError::new(key("scorecard.import_toad".into()), e))?;
            features.extend(
                import_toad(&text)
                    .map_err(|e| ConfigError::new(key("scorecard.import_toad".into()), e))?,
            );
        }
        let mut terms = Vec::new();
        for (j, f) in features.iter().enumerate() {
            let id = layout.feature(&f.feature).ok_or_else(|| {
                ConfigError::new(
                    key(format!("scorecard.feature[{j}].feature")),
                    format!("unknown feature \"{}\"", f.feature),
                )
            })?;
            let bins: Vec<(f64, f64)> = f
                .bins
                .iter()
                .map(|b| (b.below.unwrap_or(f64::INFINITY), b.points))
                .collect();
            let best = bins.iter().map(|(_, p)| *p).fold(f.missing, f64::max);
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
        let score = self.score(values);
        let band = self.min_score.iter().position(|m| score >= *m).unwrap_or(4) as u8;
        Verdict {
            firing,
            score,
            level: band.max(floor),
        }
    }

    /// The behaviour score.
    pub fn score(&self, values: &[Option<f64>]) -> f64 {
        self.base
            + self
                .terms
                .iter()
                .map(|t| t.points(values[t.feature]))
                .sum::<f64>()
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
                let num = |s: &str| -> Result<f64, String> {
                    match s.trim() {
                        "-inf" => Ok(f64::NEG_INFINITY),
                        "inf" => Ok(f64::INFINITY),
                        x => x.parse().map_err(|_| {
                            format!("toad bin \"{feature}\".\"{l}\": bad bound \"{x}\"")
                        }),
                    }
                };
                ranges.push((num(lo)?, num(hi)?, points));
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
