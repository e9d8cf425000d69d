//! Per-customer evaluation: features from window slots and account state, then each
//! strategy's rules, score and level, and the alerts the change causes.
//!
//! Alert semantics (DESIGN.md, Semantics): each rule that newly fires gives one alert with
//! its `rule_id`; a level rise with no newly firing rule gives one alert with `rule_id`
//! "level"; falls give none. A rule that clears and fires again starts a new episode, with
//! a new `alert_id` derived from (strategy, customer, rule, episode start).

use crate::layout::{FeatureSource, Layout};
use crate::ledger::{bucket, Account, Schedule};
use crate::slots::Slots;
use crate::strategy::Strategy;
use riskwatch_model::config::{ExperimentMode, Role, Severity};
use riskwatch_model::event::CustomerStatus;
use riskwatch_model::output::{deterministic_id, Alert, Reason};
use riskwatch_model::time::{days_past_due, MS_PER_DAY};
use std::collections::BTreeMap;

/// The strategies of a run, compiled, with the experiment mode.
#[derive(Clone, Debug)]
pub struct Strategies {
    /// In config order.
    pub list: Vec<Strategy>,
    /// Shadow or split.
    pub mode: ExperimentMode,
    /// Index of the champion.
    pub champion: usize,
    /// Action policy of each strategy (same order as `list`).
    pub policies: Vec<crate::actions::Policy>,
    /// Case policy of each strategy.
    pub cases: Vec<crate::cases::CasesPolicy>,
}

impl Strategies {
    /// Each strategy's name and whether its outputs are shadow (a challenger in shadow
    /// mode), in config order.
    pub fn names_with_shadow(&self) -> Vec<(String, bool)> {
        self.list
            .iter()
            .map(|s| {
                let shadow = self.mode == ExperimentMode::Shadow && s.role == Role::Challenger;
                (s.name.clone(), shadow)
            })
            .collect()
    }

    /// Which strategies evaluate `customer_id`, each with its shadow flag, into `out`.
    ///
    /// Shadow mode: all of them, challengers marked shadow. Split mode: exactly one, chosen
    /// by `xxh3(customer_id) % 100` against the challengers' cumulative shares in config
    /// order; the champion takes the rest.
    pub fn assigned(&self, customer_id: &str, out: &mut Vec<(usize, bool)>) {
        out.clear();
        match self.mode {
            ExperimentMode::Shadow => {
                for (i, s) in self.list.iter().enumerate() {
                    out.push((i, s.role == Role::Challenger));
                }
            }
            ExperimentMode::Split => {
                let bucket = (xxhash_rust::xxh3::xxh3_64(customer_id.as_bytes()) % 100) as u32;
                let mut upto = 0;
                for (i, s) in self.list.iter().enumerate() {
                    if s.role == Role::Challenger {
                        upto += s.share_percent;
                        if bucket < upto {
                            out.push((i, false));
                            return;
                        }
                    }
                }
                out.push((self.champion, false));
            }
        }
    }
}

/// One strategy's view of one customer.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct StrategyState {
    /// Firing rules (bit per rule).
    pub firing: u64,
    /// Episode start (tick) of each firing rule.
    pub since: Vec<u64>,
    /// Current level.
    pub level: u8,
    /// Current score; `None` for a strategy without a scorecard.
    pub score: Option<f64>,
    /// Limit and pricing state of this strategy for the customer.
    pub actions: crate::actions::ActionState,
    /// Collection case state of this strategy for the customer.
    pub cases: crate::cases::CaseState,
}

/// Everything the evaluator keeps per customer.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct CustomerState {
    /// Current window slots.
    pub slots: Slots,
    /// Current account state.
    pub account: Account,
    /// Current unpaid installments per loan.
    pub schedule: Schedule,
    /// The fraud ring the customer belongs to, if any.
    pub ring: Option<crate::rings::RingInfo>,
    /// Per strategy, in config order.
    pub strategies: Vec<StrategyState>,
    /// Self-scheduled wake-ups still ahead (decisions taking effect, restores,
    /// pre-collection), kept with the customer so that a checkpoint carries them.
    #[serde(default)]
    pub wakes: Vec<u64>,
}

/// Fills `values` (indexed by feature id) for a customer at time `t`.
pub fn features(
    layout: &Layout,
    slots: &Slots,
    account: &Account,
    ring: Option<&crate::rings::RingInfo>,
    t: u64,
    values: &mut Vec<Option<f64>>,
) {
    values.clear();
    for src in &layout.sources {
        values.push(match *src {
            FeatureSource::Account(i) => match i {
                0 => Some(account.balance as f64),
                1 => Some(account.limit as f64),
                2 => (account.limit > 0).then(|| account.balance as f64 / account.limit as f64),
                3 => Some(account.apr_bps as f64),
                4 => Some(if account.oldest_due == 0 {
                    0.0
                } else {
                    days_past_due(account.oldest_due, t) as f64
                }),
                5 => Some(bucket(account.oldest_due, t) as f64),
                6 => Some(
                    (account.oldest_due != 0 && t > account.oldest_due + 90 * MS_PER_DAY) as u8
                        as f64,
                ),
                7 => Some(ring.map_or(0.0, |r| r.size as f64)),
                8 => Some(ring.map_or(0.0, |r| r.delinquent as f64)),
                _ => Some(ring.map_or(0.0, |r| r.new_members as f64)),
            },
            FeatureSource::Slot(s) => Some(slots.0[s] as f64),
            FeatureSource::Ratio { num, den } => {
                (slots.0[den] != 0).then(|| slots.0[num] as f64 / slots.0[den] as f64)
            }
            FeatureSource::Sum3([a, b, c]) => Some((slots.0[a] + slots.0[b] + slots.0[c]) as f64),
        });
    }
}

/// Reusable buffers for [`evaluate`], and what an evaluation asks of its caller.
#[derive(Default)]
pub struct Scratch {
    values: Vec<Option<f64>>,
    assigned: Vec<(usize, bool)>,
    drafts: Vec<crate::actions::DecisionDraft>,
    case_drafts: Vec<crate::cases::CaseDraft>,
    loans: Vec<crate::cases::LoanDelinquency>,
    /// After [`evaluate`]: the earliest later time at which the customer must be
    /// re-evaluated without an event (a decision taking effect, a restore falling due, a
    /// pre-collection window opening).
    pub wake: Option<u64>,
}

/// Everything one evaluation emits.
#[derive(Default)]
pub struct Emitted {
    /// Alerts.
    pub alerts: Vec<Alert>,
    /// Limit and pricing decisions.
    pub decisions: Vec<riskwatch_model::output::Decision>,
    /// Collection case events.
    pub cases: Vec<riskwatch_model::output::Case>,
}

/// One output record of the evaluator.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Output {
    /// An alert.
    Alert(Alert),
    /// A limit or pricing decision.
    Decision(riskwatch_model::output::Decision),
    /// A collection case event.
    Case(riskwatch_model::output::Case),
}

impl From<Alert> for Output {
    fn from(a: Alert) -> Output {
        Output::Alert(a)
    }
}

impl From<riskwatch_model::output::Decision> for Output {
    fn from(d: riskwatch_model::output::Decision) -> Output {
        Output::Decision(d)
    }
}

impl From<riskwatch_model::output::Case> for Output {
    fn from(c: riskwatch_model::output::Case) -> Output {
        Output::Case(c)
    }
}

/// Per worker and strategy: the decision circuit breakers.
pub type Breakers = Vec<crate::actions::Breaker>;

/// Re-evaluates one customer at time `t` and pushes the alerts the change causes.
///
/// Closed customers (status `closed`) have left monitoring: nothing is evaluated and their
/// strategy state is reset, so a reopened customer starts fresh.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    layout: &Layout,
    strategies: &Strategies,
    state: &mut CustomerState,
    t: u64,
    scratch: &mut Scratch,
    emitted_at: u64,
    out: &mut Emitted,
    breakers: &mut Breakers,
) {
    scratch.wake = None;
    if breakers.len() != strategies.list.len() {
        breakers.resize_with(strategies.list.len(), crate::actions::Breaker::new);
    }
    if state.strategies.len() != strategies.list.len() {
        state
            .strategies
            .resize_with(strategies.list.len(), StrategyState::default);
    }
    if state.account.status == CustomerStatus::Closed {
        for s in state.strategies.iter_mut() {
            *s = StrategyState::default();
        }
        return;
    }
    strategies.assigned(&state.account.customer_id, &mut scratch.assigned);
    let account = acting_account(strategies, state, &scratch.assigned);
    let record = record_terms(&state.account);
    features(
        layout,
        &state.slots,
        &account,
        state.ring.as_ref(),
        t,
        &mut scratch.values,
    );
    for &(si, shadow) in &scratch.assigned {
        let strategy = &strategies.list[si];
        let st = &mut state.strategies[si];
        if st.since.len() != strategy.rules.len() {
            st.since.resize(strategy.rules.len(), 0);
        }
        let verdict = strategy.evaluate(&scratch.values);
        // Decisions and cases take the score as a number and leave a NaN out of their
        // records (the contracts make `score` optional, never null): no scorecard, no score.
        let score = verdict.score.unwrap_or(f64::NAN);
        let newly = verdict.firing & !st.firing;
        let rose = verdict.level > st.level;
        let alerts = &mut out.alerts;
        if newly != 0 || rose {
            let make = |rule_id: &str,
                        version: Option<u32>,
                        severity: Severity,
                        reasons: Vec<Reason>,
                        episode: u64| {
                let customer = state.account.customer_id.as_str();
                let episode_text = episode.to_string();
                Alert {
                    alert_id: deterministic_id(
                        "a-",
                        &[&strategy.name, customer, rule_id, &episode_text],
                    ),
                    customer_id: customer.to_string(),
                    ts: t,
                    emitted_at,
                    rule_id: rule_id.to_string(),
                    rule_version: version,
                    severity,
                    level: verdict.level,
                    score: verdict.score,
                    reasons,
                    features: feature_map(layout, &scratch.values),
                    strategy: strategy.name.clone(),
                    shadow,
                    strategy_version: strategy.version.clone(),
                    ring_id: state.ring.as_ref().map(|r| crate::rings::ring_id(r.ring)),
                }
            };
            let score_reasons = strategy.score_reasons(&scratch.values, 3);
            if newly != 0 {
                for (ri, rule) in strategy.rules.iter().enumerate() {
                    if newly & (1 << ri) == 0 {
                        continue;
                    }
                    let mut reasons = vec![Reason {
                        code: rule.id.clone(),
                        feature: None,
                        value: None,
                        threshold: None,
                        text: rule.description.clone(),
                    }];
                    reasons.extend(score_reasons.iter().cloned());
                    alerts.push(make(
                        &rule.id,
                        Some(rule.version),
                        rule.severity,
                        reasons,
                        t,
                    ));
                }
            } else {
                let mut reasons = score_reasons;
                if reasons.is_empty() {
                    reasons.push(Reason::code("level"));
                }
                alerts.push(make(
                    "level",
                    None,
                    level_severity(verdict.level),
                    reasons,
                    t,
                ));
            }
        }
        for ri in 0..strategy.rules.len() {
            if newly & (1 << ri) != 0 {
                st.since[ri] = t;
            }
        }
        st.firing = verdict.firing;
        st.level = verdict.level;
        st.score = verdict.score;

        // Limit and pricing decisions.
        scratch.drafts.clear();
        let wake_actions = crate::actions::decide(
            &strategies.policies[si],
            &mut st.actions,
            &crate::actions::ActionInput {
                t,
                level: verdict.level,
                firing: verdict.firing,
                balance: state.account.balance,
                record,
                record_ts: state.account.record_ts,
            },
            &mut breakers[si],
            &mut scratch.drafts,
        );
        let mut wake = wake_actions;
        if !scratch.drafts.is_empty() {
            let reasons = decision_reasons(strategy, verdict.firing, &scratch.values);
            for draft in &scratch.drafts {
                wake = min_some(wake, Some(draft.effective_at));
                out.decisions.push(strategies.policies[si].decision(
                    draft,
                    &crate::actions::DecisionContext {
                        strategy: &strategy.name,
                        strategy_version: &strategy.version,
                        customer_id: &state.account.customer_id,
                        shadow,
                        emitted_at,
                        level: verdict.level,
                        score,
                        reasons: &reasons,
                    },
                ));
            }
        }

        // Collection cases.
        let mut input = crate::cases::CaseInput::from_schedule(&state.schedule, t);
        input.level = verdict.level;
        input.score = score;
        input.ring_member = state.ring.is_some();
        scratch.case_drafts.clear();
        let wake_cases = crate::cases::step(
            &strategies.cases[si],
            &mut st.cases,
            &input,
            &mut scratch.case_drafts,
        );
        wake = min_some(wake, wake_cases);
        if !scratch.case_drafts.is_empty() {
            crate::cases::loan_delinquency(&state.schedule, t, &mut scratch.loans);
            let reasons = decision_reasons(strategy, verdict.firing, &scratch.values);
            for draft in &scratch.case_drafts {
                out.cases.push(strategies.cases[si].case(
                    draft,
                    &crate::cases::CaseContext {
                        strategy: &strategy.name,
                        strategy_version: &strategy.version,
                        customer_id: &state.account.customer_id,
                        shadow,
                        emitted_at,
                        input: &input,
                        reasons: &reasons,
                        loans: &scratch.loans,
                    },
                ));
            }
        }
        scratch.wake = min_some(scratch.wake, wake.filter(|w| *w > t));
    }
}

fn min_some(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// The customer's account with its current limit and APR: the latest of the customers
/// record and the acting strategy's own decisions (shadow challengers never act).
/// `assigned` is what [`Strategies::assigned`] gave for the customer.
pub fn acting_account(
    strategies: &Strategies,
    state: &CustomerState,
    assigned: &[(usize, bool)],
) -> Account {
    let record = record_terms(&state.account);
    let acting = assigned
        .iter()
        .find(|(_, shadow)| !shadow)
        .map(|(i, _)| *i)
        .unwrap_or(strategies.champion);
    let terms = state.strategies[acting]
        .actions
        .current(record, state.account.record_ts);
    let mut account = state.account.clone();
    account.limit = terms.limit;
    account.apr_bps = terms.apr_bps;
    account
}

/// The limit, APR and freeze of the customers record alone.
fn record_terms(account: &Account) -> crate::actions::Terms {
    crate::actions::Terms {
        limit: account.limit,
        apr_bps: account.apr_bps,
        frozen: account.status == CustomerStatus::Frozen,
    }
}

/// The reasons carried by decisions and cases: the firing rules, then score components.
pub(crate) fn decision_reasons(
    strategy: &Strategy,
    firing: u64,
    values: &[Option<f64>],
) -> Vec<Reason> {
    let mut reasons: Vec<Reason> = strategy
        .rules
        .iter()
        .enumerate()
        .filter(|(i, _)| firing & (1 << i) != 0)
        .map(|(_, r)| Reason {
            code: r.id.clone(),
            feature: None,
            value: None,
            threshold: None,
            text: r.description.clone(),
        })
        .collect();
    reasons.extend(strategy.score_reasons(values, 3));
    reasons
}

/// Severity of a "level" alert.
pub fn level_severity(level: u8) -> Severity {
    match level {
        0 => Severity::Info,
        1 => Severity::Low,
        2 => Severity::Medium,
        3 => Severity::High,
        _ => Severity::Critical,
    }
}

pub(crate) fn feature_map(
    layout: &Layout,
    values: &[Option<f64>],
) -> BTreeMap<String, Option<f64>> {
    layout
        .names
        .iter()
        .zip(values)
        .map(|(n, v)| (n.clone(), v.filter(|x| x.is_finite())))
        .collect()
}
