//! Limit and pricing decisions: the action policy with its guardrails, kill switch and
//! circuit breaker, as pure per-customer logic (DESIGN.md, Signals, levels, actions). No
//! dataflow and no I/O: the Evaluate operator calls [`decide`] once per customer, strategy
//! and evaluation, and turns the [`DecisionDraft`]s into [`Decision`] records.
//!
//! ```text
//!  ActionInput (level, firing rules, balance, latest customers record)
//!    │
//!    ▼  adopt a newer customers record (it wins a tie against a decision)
//!  ActionState ── adverse actions: armed per [[action]], applied once per episode
//!    │            restores: level ≤ restore_max_level for restore_after
//!    │            limit increase: level 0 for stable_for (off by default)
//!    ▼  guardrails: cooldown per kind, decreases per period, floor, APR cap
//!  Breaker (per worker and strategy) ──▶ DecisionDraft ──▶ Policy::decision ──▶ Decision
//! ```
//!
//! **Current terms.** A customer's current limit, APR and freeze are the latest of the
//! customers record and riskwatch's own decisions by event time, the record winning a tie; a
//! decision taken at `t` counts from `effective_at = t + tick` (DESIGN.md, Semantics).
//! [`ActionState::current`] resolves this without changing the state; [`decide`] adopts a
//! new record as both the current terms (when not older than the last decision) and the
//! baseline that restores return to.
//!
//! **Strategies.** Keep one [`ActionState`] per customer *and strategy*. Only the state of
//! the strategy that acts for the customer (the champion in shadow mode, the assigned
//! strategy in split mode) may feed the customer's current limit and APR; a shadow
//! challenger's state only shapes its own (shadow) decisions and is never read for the
//! customer's terms. Its decisions are still emitted, marked `shadow` by the caller.
//!
//! **Kill switch.** With `dry_run`, decisions are decided and emitted as if applied (the
//! policy tracks what they would have done, so cooldowns, restores and the breaker behave
//! as live), but [`ActionState::effective`] never moves from the customers record.
//!
//! **Circuit breaker.** At most `max_decisions_per_interval` decisions per aligned
//! `breaker_interval` of event time, counted per [`Breaker`], which the caller keeps per
//! worker and strategy: a cluster of W workers admits up to W × the cap. Which customers
//! are suppressed once the cap is reached depends on the order the worker evaluates them
//! in, so a tripped breaker makes the output depend on the worker count. A suppressed
//! adverse decision is dropped (its action counts as served, it is not retried while its
//! condition holds); a suppressed restore or increase is considered again at the next
//! evaluation.
//!
//! Costs: [`decide`] is O(actions) with no allocation except the first limit decrease of a
//! customer (a small vector of decrease times, at most `max_decreases_per_period` long).
//! [`ActionState`] is about 200 bytes.

use riskwatch_model::config::{ConfigError, StrategyConfig};
use riskwatch_model::output::{Decision, DecisionKind, Reason};
use serde::{Deserialize, Serialize};

/// The most actions a policy may have (one bit each in [`ActionState`]).
pub const MAX_ACTIONS: usize = 64;

const NEVER: u64 = u64::MAX;

/// How much an action changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Amount {
    /// Cut the limit by this percentage.
    Percent(u32),
    /// Cut the limit to the drawn balance.
    ToBalance,
    /// Raise the APR by this many basis points.
    Bps(u32),
    /// A freeze: no amount.
    Freeze,
}

/// One compiled adverse action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    /// `LimitDecrease`, `Freeze` or `PriceIncrease`.
    pub kind: DecisionKind,
    /// Applies at this level and above.
    pub min_level: u8,
    /// Also needs one of these rules firing (bit i = rule i of the strategy); 0 = no rule
    /// condition.
    pub rules: u64,
    /// The change.
    pub amount: Amount,
}

/// Compiled limit increases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Increase {
    /// Raise by this percentage.
    pub percent: u32,
    /// Level 0 for this long (ms), also since the last increase.
    pub stable_for: u64,
    /// Never above this limit.
    pub max_limit: u64,
}

/// A strategy's action policy, compiled from its `PolicyConfig`. All durations in ms.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// Adverse actions in config order (bit i of the served mask is action i).
    pub actions: Vec<Action>,
    /// The tick: a decision at `t` takes effect at `t + tick`.
    pub tick: u64,
    /// Minimum time between two decisions of one kind for one customer.
    pub cooldown: u64,
    /// Limit decreases allowed within any `decrease_period`.
    pub max_decreases: u32,
    /// The rolling period of `max_decreases`.
    pub decrease_period: u64,
    /// Never cut below the drawn balance.
    pub floor_at_balance: bool,
    /// No decision sets an APR above this.
    pub apr_cap_bps: u32,
    /// Restores are on.
    pub restore: bool,
    /// The highest level that counts as stable for restores.
    pub restore_max_level: u8,
    /// How long the level must stay at or below `restore_max_level` before a restore.
    pub restore_after: u64,
    /// Limit increases, if enabled.
    pub increase: Option<Increase>,
    /// Decide and emit, change nothing.
    pub dry_run: bool,
    /// Breaker cap per interval.
    pub breaker_max: u32,
    /// Breaker interval.
    pub breaker_interval: u64,
}

impl Policy {
    /// Compiles the policy of strategy `config` (at `index` in the config, for error keys)
    /// for a pipeline with tick `tick` (ms). Rule ids in `when_rules` become bits of the
    /// strategy's firing mask (rule i of `config.rules` is bit i).
    pub fn compile(
        config: &StrategyConfig,
        index: usize,
        tick: u64,
    ) -> Result<Policy, ConfigError> {
        let p = &config.policy;
        p.validate(index, &config.rules)?;
        if p.actions.len() > MAX_ACTIONS {
            return Err(ConfigError::new(
                format!("strategy[{index}].policy.action"),
                format!("at most {MAX_ACTIONS} actions"),
            ));
        }
        let mut actions = Vec::with_capacity(p.actions.len());
        for a in &p.actions {
            let mut rules = 0u64;
            for r in &a.when_rules {
                let bit = config
                    .rules
                    .iter()
                    .position(|x| &x.id == r)
                    .expect("validated: the rule exists");
                rules |= 1 << bit;
            }
            let amount = match (a.kind, a.percent, a.to_balance, a.bps) {
                (DecisionKind::LimitDecrease, Some(pct), _, _) => Amount::Percent(pct),
                (DecisionKind::LimitDecrease, None, _, _) => Amount::ToBalance,
                (DecisionKind::PriceIncrease, _, _, Some(b)) => Amount::Bps(b),
                _ => Amount::Freeze,
            };
            actions.push(Action {
                kind: a.kind,
                min_level: a.when_level_at_least,
                rules,
                amount,
            });
        }
        let inc = &p.limit_increase;
        Ok(Policy {
            actions,
            tick,
            cooldown: p.cooldown.ms(),
            max_decreases: p.max_decreases_per_period,
            decrease_period: p.decrease_period.ms(),
            floor_at_balance: p.floor_at_balance,
            apr_cap_bps: p.apr_cap_bps,
            restore: p.restore,
            restore_max_level: p.restore_max_level,
            restore_after: p.restore_after.ms(),
            increase: inc.enabled.then(|| Increase {
                percent: inc.percent,
                stable_for: inc.stable_for.ms(),
                max_limit: inc.max_limit.unwrap_or(u64::MAX),
            }),
            dry_run: p.dry_run,
            breaker_max: p.max_decisions_per_interval,
            breaker_interval: p.breaker_interval.ms(),
        })
    }

    /// Builds the output record of `draft` (allocates; call only for emitted decisions).
    ///
    /// Reasons: for an adverse action, `ctx.reasons` (the rules and score components behind
    /// the level) then a `policy:<kind>` reason naming the level threshold; for a restore
    /// or increase, a `policy:restore` or `policy:stable` reason alone.
    pub fn decision(&self, draft: &DecisionDraft, ctx: &DecisionContext<'_>) -> Decision {
        let level = Some(ctx.level as f64);
        let mut reasons = Vec::new();
        let policy_reason = match draft.cause {
            Cause::Actions(mask) => {
                reasons.extend(ctx.reasons.iter().cloned());
                let threshold = self
                    .actions
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, a)| a.min_level)
                    .min()
                    .unwrap_or(0);
                Reason {
                    code: format!("policy:{}", draft.kind.name()),
                    feature: Some("level".into()),
                    value: level,
                    threshold: Some(threshold as f64),
                    text: Some(format!("level {} is at least {threshold}", ctx.level)),
                }
            }
            Cause::Restore => Reason {
                code: "policy:restore".into(),
                feature: Some("level".into()),
                value: level,
                threshold: Some(self.restore_max_level as f64),
                text: Some(format!(
                    "level at most {} for {}",
                    self.restore_max_level,
                    riskwatch_model::time::Millis(self.restore_after)
                )),
            },
            Cause::Stable => Reason {
                code: "policy:stable".into(),
                feature: Some("level".into()),
                value: level,
                threshold: Some(0.0),
                text: Some(format!(
                    "level 0 for {}",
                    riskwatch_model::time::Millis(self.increase.map_or(0, |i| i.stable_for))
                )),
            },
        };
        reasons.push(policy_reason);
        Decision {
            decision_id: Decision::id(ctx.strategy, ctx.customer_id, draft.kind, draft.ts),
            customer_id: ctx.customer_id.to_string(),
            ts: draft.ts,
            emitted_at: ctx.emitted_at,
            kind: draft.kind,
            old_limit: draft.old_limit,
            new_limit: draft.new_limit,
            old_apr_bps: draft.old_apr_bps,
            new_apr_bps: draft.new_apr_bps,
            level: ctx.level,
            score: ctx.score.is_finite().then_some(ctx.score),
            reasons,
            strategy: ctx.strategy.to_string(),
            shadow: ctx.shadow,
            strategy_version: ctx.strategy_version.to_string(),
            effective_at: draft.effective_at,
        }
    }
}

/// What the caller knows when it turns a draft into a [`Decision`].
#[derive(Clone, Copy, Debug)]
pub struct DecisionContext<'a> {
    /// Strategy name.
    pub strategy: &'a str,
    /// Strategy version in force.
    pub strategy_version: &'a str,
    /// The customer.
    pub customer_id: &'a str,
    /// A shadow challenger's decision.
    pub shadow: bool,
    /// Wall-clock time of emission.
    pub emitted_at: u64,
    /// Level at the evaluation.
    pub level: u8,
    /// Score at the evaluation.
    pub score: f64,
    /// The rule and score reasons behind the level.
    pub reasons: &'a [Reason],
}

/// A customer's limit, APR and freeze.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    /// Credit limit in minor units.
    pub limit: u64,
    /// APR in basis points.
    pub apr_bps: u32,
    /// New draws are blocked.
    pub frozen: bool,
}

/// One evaluation of one customer by one strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActionInput {
    /// Evaluation time (a tick); non-decreasing across calls for one state.
    pub t: u64,
    /// Risk level 0–4.
    pub level: u8,
    /// Firing rules (bit i = rule i of the strategy).
    pub firing: u64,
    /// Drawn balance (the floor of limit cuts).
    pub balance: u64,
    /// The latest customers record's terms (`frozen` = its status is `frozen`).
    pub record: Terms,
    /// The latest customers record's `ts`.
    pub record_ts: u64,
}

/// Why a decision was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The actions whose bits are set (indices into [`Policy::actions`]).
    Actions(u64),
    /// The level stayed low for `restore_after`.
    Restore,
    /// The level stayed 0 for the increase's `stable_for`.
    Stable,
}

/// A decision before it becomes a [`Decision`] record: kind, old and new values, timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecisionDraft {
    /// What is decided.
    pub kind: DecisionKind,
    /// Decision time (the evaluation's `t`).
    pub ts: u64,
    /// When it takes effect: `ts + tick`.
    pub effective_at: u64,
    /// Limit before (limit kinds).
    pub old_limit: Option<u64>,
    /// Limit after (limit kinds).
    pub new_limit: Option<u64>,
    /// APR before (price kinds).
    pub old_apr_bps: Option<u32>,
    /// APR after (price kinds), never above the cap.
    pub new_apr_bps: Option<u32>,
    /// Why.
    pub cause: Cause,
}

/// The circuit breaker of one worker and strategy: counts decisions per aligned interval
/// of event time. Times must be non-decreasing; an earlier time counts in the current
/// interval.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breaker {
    interval_start: u64,
    count: u32,
    suppressed: u64,
    suppressed_unreported: u64,
}

impl Breaker {
    /// A closed breaker.
    pub fn new() -> Breaker {
        Breaker::default()
    }

    /// Counts one decision at `t`; false (and counted as suppressed) when the interval's
    /// cap is reached.
    fn admit(&mut self, policy: &Policy, t: u64) -> bool {
        let start = t - t % policy.breaker_interval;
        if start > self.interval_start {
            self.interval_start = start;
            self.count = 0;
        }
        if self.count >= policy.breaker_max {
            self.suppressed += 1;
            self.suppressed_unreported += 1;
            false
        } else {
            self.count += 1;
            true
        }
    }

    /// Decisions suppressed since the breaker was made.
    pub fn suppressed_total(&self) -> u64 {
        self.suppressed
    }

    /// Decisions suppressed since the last call (for a metrics counter's `inc_by`).
    pub fn take_suppressed(&mut self) -> u64 {
        std::mem::take(&mut self.suppressed_unreported)
    }

    /// Start of the interval after the current one: when a tripped breaker admits again.
    pub fn next_interval(&self, policy: &Policy) -> u64 {
        self.interval_start.saturating_add(policy.breaker_interval)
    }

    /// Decisions admitted in the current interval.
    pub fn admitted_in_interval(&self) -> u32 {
        self.count
    }
}

/// What the policy keeps per customer and strategy (serializable for snapshots).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionState {
    /// `ts` of the customers record last adopted; `None` before the first evaluation.
    record_ts: Option<u64>,
    /// The record's terms: what restores return to.
    baseline: Terms,
    /// The terms as the policy's decisions leave them (equal to `effective` unless dry run).
    view: Terms,
    /// `effective_at` of the latest decision reflected in `view` (0: none).
    view_at: u64,
    /// The terms riskwatch has set: what feeds the customer's current limit and APR.
    effective: Terms,
    /// `effective_at` of the latest decision reflected in `effective` (0: none).
    effective_at: u64,
    /// Time of the last decision per kind (`DecisionKind as usize`), `NEVER` if none.
    last: [u64; 7],
    /// Times of the limit decreases within the last `decrease_period`, oldest first.
    decreases: Vec<u64>,
    /// Bit i: action i has been applied (or found unnecessary, or suppressed) in the
    /// current episode of its condition.
    served: u64,
    /// Since when the level is at or below `restore_max_level`.
    low_since: Option<u64>,
    /// Since when the level is 0 (or since the last increase).
    stable_since: Option<u64>,
}

impl Default for ActionState {
    fn default() -> Self {
        ActionState {
            record_ts: None,
            baseline: Terms::default(),
            view: Terms::default(),
            view_at: 0,
            effective: Terms::default(),
            effective_at: 0,
            last: [NEVER; 7],
            decreases: Vec::new(),
            served: 0,
            low_since: None,
            stable_since: None,
        }
    }
}

impl ActionState {
    /// A state that has seen nothing.
    pub fn new() -> ActionState {
        ActionState::default()
    }

    /// The customer's current terms given the latest customers record (`record` with its
    /// `record_ts`): the record's when it is new to this state and not older than the last
    /// applied decision's `effective_at` (a tie goes to the record), else what riskwatch
    /// set. Read it before [`decide`] at an evaluation (every applied decision then counts:
    /// it was taken at an earlier tick). Only the acting strategy's state may be read.
    pub fn current(&self, record: Terms, record_ts: u64) -> Terms {
        if self.is_new(record, record_ts) && record_ts >= self.effective_at {
            record
        } else {
            self.effective
        }
    }

    /// The terms riskwatch has set as of the last [`decide`] (the record's until a
    /// decision applies; never changed by decisions under `dry_run`).
    pub fn effective(&self) -> Terms {
        self.effective
    }

    /// The terms as the policy's own decisions leave them (differs from
    /// [`ActionState::effective`] only under `dry_run`).
    pub fn policy_view(&self) -> Terms {
        self.view
    }

    /// The customers record's terms last adopted: what restores return to.
    pub fn baseline(&self) -> Terms {
        self.baseline
    }

    fn is_new(&self, record: Terms, record_ts: u64) -> bool {
        self.record_ts != Some(record_ts) || self.baseline != record
    }

    fn adopt(&mut self, record: Terms, record_ts: u64) {
        if !self.is_new(record, record_ts) {
            return;
        }
        self.record_ts = Some(record_ts);
        self.baseline = record;
        if record_ts >= self.view_at {
            self.view = record;
        }
        if record_ts >= self.effective_at {
            self.effective = record;
        }
    }

    /// `Ok` if a decision of `kind` may be made at `t`, else the earliest time it may.
    fn guard(&mut self, policy: &Policy, kind: DecisionKind, t: u64) -> Result<(), u64> {
        let last = self.last[kind as usize];
        let mut at = 0;
        if last != NEVER {
            at = last.saturating_add(policy.cooldown.max(1));
        }
        if kind == DecisionKind::LimitDecrease {
            let period = policy.decrease_period;
            self.decreases.retain(|d| d.saturating_add(period) > t);
            if policy.max_decreases == 0 {
                return Err(NEVER);
            }
            if self.decreases.len() >= policy.max_decreases as usize {
                let i = self.decreases.len() - policy.max_decreases as usize;
                at = at.max(self.decreases[i].saturating_add(period));
            }
        }
        if t >= at {
            Ok(())
        } else {
            Err(at)
        }
    }

    /// Emits `draft` through the breaker and applies it. False if suppressed.
    fn emit(
        &mut self,
        policy: &Policy,
        breaker: &mut Breaker,
        draft: DecisionDraft,
        out: &mut Vec<DecisionDraft>,
    ) -> bool {
        if !breaker.admit(policy, draft.ts) {
            return false;
        }
        let mut terms = self.view;
        match draft.kind {
            DecisionKind::Freeze => terms.frozen = true,
            DecisionKind::Unfreeze => terms.frozen = false,
            _ => {}
        }
        if let Some(l) = draft.new_limit {
            terms.limit = l;
        }
        if let Some(a) = draft.new_apr_bps {
            terms.apr_bps = a;
        }
        self.view = terms;
        self.view_at = draft.effective_at;
        if !policy.dry_run {
            self.effective = terms;
            self.effective_at = draft.effective_at;
        }
        self.last[draft.kind as usize] = draft.ts;
        if draft.kind == DecisionKind::LimitDecrease {
            self.decreases.push(draft.ts);
        }
        out.push(draft);
        true
    }
}

/// The earliest of the candidate wake-up times after `t`.
struct Wake {
    t: u64,
    at: Option<u64>,
}

impl Wake {
    fn at(&mut self, when: u64) {
        if when > self.t && when != NEVER {
            self.at = Some(self.at.map_or(when, |a| a.min(when)));
        }
    }
}

/// The adverse kinds, in the order their decisions are made within one evaluation.
const ADVERSE: [DecisionKind; 3] = [
    DecisionKind::Freeze,
    DecisionKind::LimitDecrease,
    DecisionKind::PriceIncrease,
];

/// Evaluates the policy for one customer and strategy at `input.t`, pushing the decisions
/// it makes onto `out` (not cleared) and applying them to `state` (see the module docs for
/// dry run and shadow strategies).
///
/// In order: a new customers record is adopted; adverse actions whose condition holds and
/// that have not been served in this episode of their condition are applied (freeze, then
/// limit decrease, then price increase; actions of one kind triggered together make one
/// decision, the strongest); then restores; then a limit increase (only if nothing else
/// was decided). A guardrail that blocks an action leaves it pending.
///
/// Returns the earliest time after `t` at which calling again with unchanged input could
/// decide something (a restore or increase becoming due, a pending action's cooldown or
/// period ending): the caller may schedule a wake-up then, or rely on the next event.
///
/// Cost: O(number of actions), no allocation (except a customer's first decrease).
pub fn decide(
    policy: &Policy,
    state: &mut ActionState,
    input: &ActionInput,
    breaker: &mut Breaker,
    out: &mut Vec<DecisionDraft>,
) -> Option<u64> {
    let t = input.t;
    let mut wake = Wake { t, at: None };
    let emitted_before = out.len();
    state.adopt(input.record, input.record_ts);
    if input.level <= policy.restore_max_level {
        state.low_since.get_or_insert(t);
    } else {
        state.low_since = None;
    }
    if input.level == 0 {
        state.stable_since.get_or_insert(t);
    } else {
        state.stable_since = None;
    }
    let effective_at = t.saturating_add(policy.tick);
    let draft = |kind, cause| DecisionDraft {
        kind,
        ts: t,
        effective_at,
        old_limit: None,
        new_limit: None,
        old_apr_bps: None,
        new_apr_bps: None,
        cause,
    };

    // Adverse actions: which are armed and unserved, per kind.
    let mut triggered = [0u64; 3];
    for (i, a) in policy.actions.iter().enumerate() {
        let bit = 1u64 << i;
        let holds = input.level >= a.min_level && (a.rules == 0 || input.firing & a.rules != 0);
        if !holds {
            state.served &= !bit;
        } else if state.served & bit == 0 {
            let k = ADVERSE.iter().position(|k| *k == a.kind).unwrap_or(0);
            triggered[k] |= bit;
        }
    }
    for (k, kind) in ADVERSE.into_iter().enumerate() {
        let mask = triggered[k];
        if mask == 0 {
            continue;
        }
        let view = state.view;
        let chosen = policy
            .actions
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, a)| a.amount);
        let mut d = draft(kind, Cause::Actions(mask));
        let needed = match kind {
            DecisionKind::Freeze => !view.frozen,
            DecisionKind::LimitDecrease => {
                let mut new = chosen
                    .map(|a| match a {
                        Amount::Percent(p) => {
                            view.limit - (view.limit as u128 * p as u128 / 100) as u64
                        }
                        _ => input.balance,
                    })
                    .min()
                    .unwrap_or(view.limit);
                if policy.floor_at_balance {
                    new = new.max(input.balance);
                }
                d.old_limit = Some(view.limit);
                d.new_limit = Some(new);
                new < view.limit
            }
            _ => {
                let bps = chosen
                    .map(|a| match a {
                        Amount::Bps(b) => b,
                        _ => 0,
                    })
                    .max()
                    .unwrap_or(0);
                let new = view.apr_bps.saturating_add(bps).min(policy.apr_cap_bps);
                d.old_apr_bps = Some(view.apr_bps);
                d.new_apr_bps = Some(new);
                new > view.apr_bps
            }
        };
        if !needed {
            state.served |= mask;
            continue;
        }
        match state.guard(policy, kind, t) {
            Err(at) => wake.at(at),
            Ok(()) => {
                // Served whether emitted or suppressed by the breaker: never deferred.
                state.served |= mask;
                state.emit(policy, breaker, d, out);
            }
        }
    }

    // Restores of what riskwatch changed.
    if policy.restore {
        if let Some(since) = state.low_since {
            let ready = since.saturating_add(policy.restore_after);
            for kind in [
                DecisionKind::Unfreeze,
                DecisionKind::LimitRestore,
                DecisionKind::PriceRestore,
            ] {
                let (view, base) = (state.view, state.baseline);
                let mut d = draft(kind, Cause::Restore);
                let needed = match kind {
                    DecisionKind::Unfreeze => view.frozen && !base.frozen,
                    DecisionKind::LimitRestore => {
                        d.old_limit = Some(view.limit);
                        d.new_limit = Some(base.limit);
                        view.limit < base.limit
                    }
                    _ => {
                        let new = base.apr_bps.min(policy.apr_cap_bps);
                        d.old_apr_bps = Some(view.apr_bps);
                        d.new_apr_bps = Some(new);
                        new < view.apr_bps
                    }
                };
                if !needed {
                    continue;
                }
                if t < ready {
                    wake.at(ready);
                    continue;
                }
                match state.guard(policy, kind, t) {
                    Err(at) => wake.at(at),
                    Ok(()) => {
                        if !state.emit(policy, breaker, d, out) {
                            wake.at(breaker.next_interval(policy));
                        }
                    }
                }
            }
        }
    }

    // Limit increase for a long-stable customer with nothing outstanding.
    if let (Some(inc), Some(since)) = (policy.increase, state.stable_since) {
        let (view, base) = (state.view, state.baseline);
        let outstanding = view.frozen || view.limit < base.limit || view.apr_bps > base.apr_bps;
        let new = view
            .limit
            .saturating_add((view.limit as u128 * inc.percent as u128 / 100) as u64)
            .min(inc.max_limit);
        if !outstanding && out.len() == emitted_before && new > view.limit {
            let ready = since.saturating_add(inc.stable_for);
            if t < ready {
                wake.at(ready);
            } else {
                match state.guard(policy, DecisionKind::LimitIncrease, t) {
                    Err(at) => wake.at(at),
                    Ok(()) => {
                        let mut d = draft(DecisionKind::LimitIncrease, Cause::Stable);
                        d.old_limit = Some(view.limit);
                        d.new_limit = Some(new);
                        if state.emit(policy, breaker, d, out) {
                            state.stable_since = Some(t);
                        } else {
                            wake.at(breaker.next_interval(policy));
                        }
                    }
                }
            }
        }
    }
    wake.at
}

#[cfg(test)]
mod tests;
