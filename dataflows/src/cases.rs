//! Collection cases: one episode per customer and strategy, opened on delinquency or as
//! pre-collection, escalated as the stage worsens, updated, and closed when repaid
//! (DESIGN.md, Collection cases; DOMAIN.md, Collections). Pure per-customer logic, no
//! dataflow and no I/O: the Evaluate operator calls [`step`] once per customer, strategy
//! and evaluation, and turns the [`CaseDraft`]s into [`Case`] records.
//!
//! ```text
//!               DPD ≥ 1                          DPD 31 / 61, ring member
//!   (none) ──────────────▶ opened M1 ──────────▶ escalated M2, M3+, fraud
//!     │                       ▲   │                 │  partial repayment, new queue
//!     │ level ≥ min and       │   │                 │  or priority, better stage
//!     │ due within horizon    │   │                 ▼
//!     └──▶ opened ────────────┘   └─ overdue 0 ──▶ closed ◀── paid on time
//!          pre_collection  DPD 1: escalated M1              (pre_collection)
//! ```
//!
//! Rules, in order, at each evaluation:
//! - **Close.** A case that has been delinquent closes when nothing is overdue (DPD 0 and
//!   overdue amount 0: fully repaid or settled). A pre-collection case that never reached
//!   DPD 1 closes when every installment due up to the one it watched is paid. A write-off
//!   does not close a case: the written-off debt keeps ageing, and the case moves to the
//!   `written_off_queue`. After a close, a new episode may open at the same evaluation.
//! - **Open** (no case): at DPD ≥ 1 with the stage of the DPD (M1 1–30, M2 31–60, M3+ 61
//!   and more), else as `pre_collection` when the level is at least
//!   `pre_collection_min_level` and an unpaid installment falls due within
//!   `pre_collection_horizon`. A fraud-ring member's case has stage `fraud` instead.
//! - **Escalate** when the stage moves to a worse one (pre_collection < M1 < M2 < M3+ <
//!   fraud); **update** when it moves to a better one, when the queue or priority changes,
//!   or when the overdue amount falls but stays above 0 (a partial repayment). A rising
//!   overdue amount alone (another installment falling due) is carried by the next event.
//!   At most one event per evaluation besides a close-and-reopen.
//!
//! `case_id` is derived from (strategy, customer, episode start), so it is stable within an
//! episode and new for the next; `seq` is 1 for `opened` and grows by exactly 1 per event.
//! Keep one [`CaseState`] per customer *and strategy*: a shadow challenger's cases come from
//! its own state and never touch the live cases of the acting strategy.
//!
//! Costs: [`step`] is O(queue rules of one stage) and allocates nothing (queue names are
//! inline `CompactString`s of at most 24 bytes); [`CaseState`] is under 100 bytes.

use crate::ledger::{bucket_of, Schedule};
use compact_str::CompactString;
use riskwatch_model::config::{ConfigError, StrategyConfig};
use riskwatch_model::output::{Case, CaseEvent, CaseLoan, CaseStage, Reason};
use serde::{Deserialize, Serialize};

/// A strategy's case rules, compiled from its `CasesConfig`.
#[derive(Clone, Debug, PartialEq)]
pub struct CasesPolicy {
    /// New cases open at all.
    pub enabled: bool,
    /// Pre-collection cases open.
    pub pre_collection: bool,
    /// Pre-collection needs at least this level.
    pub pre_collection_min_level: u8,
    /// Pre-collection opens when an installment falls due within this (ms).
    pub pre_collection_horizon: u64,
    /// Queue of a case with a written-off loan (unless the stage is fraud).
    pub written_off_queue: CompactString,
    /// Per stage (`CaseStage as usize`): `(min_score, queue)` in config order; a rule
    /// without `min_score` has `-inf`.
    queues: [Vec<(f64, CompactString)>; 5],
}

impl CasesPolicy {
    /// Compiles the cases config of strategy `config` (at `index`, for error keys).
    pub fn compile(config: &StrategyConfig, index: usize) -> Result<CasesPolicy, ConfigError> {
        let c = &config.cases;
        c.validate(index)?;
        let mut queues: [Vec<(f64, CompactString)>; 5] = Default::default();
        for q in &c.queues {
            queues[q.stage as usize].push((
                q.min_score.unwrap_or(f64::NEG_INFINITY),
                CompactString::from(q.queue.as_str()),
            ));
        }
        Ok(CasesPolicy {
            enabled: c.enabled,
            pre_collection: c.pre_collection,
            pre_collection_min_level: c.pre_collection_min_level,
            pre_collection_horizon: c.pre_collection_horizon.ms(),
            written_off_queue: CompactString::from(c.written_off_queue.as_str()),
            queues,
        })
    }

    /// The queue of a case at `stage` with `score`: the written-off queue if a loan is
    /// written off (fraud keeps its own), else the first rule of the stage whose
    /// `min_score` the score reaches (a NaN score reaches only rules without one).
    pub fn queue(&self, stage: CaseStage, score: f64, written_off: bool) -> &CompactString {
        if written_off && stage != CaseStage::Fraud {
            return &self.written_off_queue;
        }
        let rules = &self.queues[stage as usize];
        rules
            .iter()
            .find(|(min, _)| *min == f64::NEG_INFINITY || score >= *min)
            .map(|(_, q)| q)
            .expect("validated: every stage has a rule without min_score")
    }

    /// A case's priority: `10 × (stage rank 1–5) + level`, so a worse stage always ranks
    /// first and a higher level (a lower score) breaks ties.
    pub fn priority(stage: CaseStage, level: u8) -> i64 {
        10 * (stage as i64 + 1) + level as i64
    }

    /// Builds the output record of `draft` (allocates; call only for emitted events).
    pub fn case(&self, draft: &CaseDraft, ctx: &CaseContext<'_>) -> Case {
        let input = ctx.input;
        Case {
            case_id: Case::id(ctx.strategy, ctx.customer_id, draft.episode_start),
            seq: draft.seq,
            customer_id: ctx.customer_id.to_string(),
            ts: draft.ts,
            emitted_at: ctx.emitted_at,
            event: draft.event,
            stage: draft.stage,
            queue: draft.queue.to_string(),
            priority: draft.priority,
            overdue_amount: input.overdue_amount,
            dpd: input.dpd,
            level: input.level,
            score: input.score.is_finite().then_some(input.score),
            reasons: ctx.reasons.to_vec(),
            loans: ctx
                .loans
                .iter()
                .map(|l| CaseLoan {
                    loan_id: l.loan_id.to_string(),
                    overdue_amount: l.overdue_amount,
                    dpd: l.dpd,
                    written_off: l.written_off,
                })
                .collect(),
            strategy: ctx.strategy.to_string(),
            strategy_version: ctx.strategy_version.to_string(),
            shadow: ctx.shadow,
            opened_at: draft.episode_start,
        }
    }
}

/// One customer's delinquency as of an evaluation, for one strategy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CaseInput {
    /// Evaluation time (a tick); non-decreasing across calls for one state.
    pub t: u64,
    /// Days past due of the oldest unpaid installment (0 when nothing is past due), from
    /// the ledger's one DPD computation ([`crate::ledger::dpd`]), as for the features.
    pub dpd: u64,
    /// Sum of unpaid installment amounts past their due date, saturating at `u64::MAX`.
    pub overdue_amount: u64,
    /// The earliest unpaid installment's `due_ts` at or after `t`, if any.
    pub next_due_ts: Option<u64>,
    /// Risk level 0–4.
    pub level: u8,
    /// Behaviour score.
    pub score: f64,
    /// The customer belongs to a fraud ring.
    pub ring_member: bool,
    /// A loan of the customer is written off.
    pub written_off: bool,
}

impl CaseInput {
    /// The delinquency part of an input from a ledger schedule at `t`: DPD of the oldest
    /// unpaid installment ([`Schedule::dpd_at`], the same computation and due date as the
    /// `dpd` feature), overdue amount, next due date and the written-off flag. Level,
    /// score and ring membership are left at 0, 0.0 and false for the caller to set.
    pub fn from_schedule(schedule: &Schedule, t: u64) -> CaseInput {
        CaseInput {
            t,
            dpd: schedule.dpd_at(t),
            overdue_amount: schedule.overdue_at(t),
            next_due_ts: schedule.next_due_from(t),
            level: 0,
            score: 0.0,
            ring_member: false,
            written_off: schedule.written_off(),
        }
    }
}

/// One loan's delinquency, for a case's `loans`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoanDelinquency {
    /// The loan.
    pub loan_id: CompactString,
    /// Its unpaid amounts past due.
    pub overdue_amount: u64,
    /// Days past due of its oldest unpaid installment.
    pub dpd: u64,
    /// Written off.
    pub written_off: bool,
}

/// Fills `out` (cleared first) with the loans of `schedule` that have an overdue amount at
/// `t` or are written off, in loan id order. Reuse `out` across calls.
pub fn loan_delinquency(schedule: &Schedule, t: u64, out: &mut Vec<LoanDelinquency>) {
    out.clear();
    for l in &schedule.loans {
        let overdue = l.overdue_at(t);
        if overdue > 0 || l.written_off {
            out.push(LoanDelinquency {
                loan_id: l.loan_id.clone(),
                overdue_amount: overdue,
                dpd: l.dpd_at(t),
                written_off: l.written_off,
            });
        }
    }
}

/// What the caller knows when it turns a draft into a [`Case`].
#[derive(Clone, Copy, Debug)]
pub struct CaseContext<'a> {
    /// Strategy name.
    pub strategy: &'a str,
    /// Strategy version in force.
    pub strategy_version: &'a str,
    /// The customer.
    pub customer_id: &'a str,
    /// A shadow challenger's case.
    pub shadow: bool,
    /// Wall-clock time of emission.
    pub emitted_at: u64,
    /// The input the draft came from (amounts, DPD, level, score).
    pub input: &'a CaseInput,
    /// The rule and score reasons behind the level.
    pub reasons: &'a [Reason],
    /// Per-loan detail (see [`loan_delinquency`]).
    pub loans: &'a [LoanDelinquency],
}

/// A case event before it becomes a [`Case`] record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseDraft {
    /// What happened.
    pub event: CaseEvent,
    /// Evaluation time.
    pub ts: u64,
    /// 1 for `opened`, then +1 per event of the episode.
    pub seq: u32,
    /// Stage after the event.
    pub stage: CaseStage,
    /// Queue after the event.
    pub queue: CompactString,
    /// Priority after the event.
    pub priority: i64,
    /// When the episode began: with strategy and customer, the `case_id`.
    pub episode_start: u64,
}

/// An open case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenCase {
    /// When the episode began (its `opened` event's time).
    pub episode_start: u64,
    /// `seq` of the last event.
    pub seq: u32,
    /// Current stage.
    pub stage: CaseStage,
    /// Current queue.
    pub queue: CompactString,
    /// Current priority.
    pub priority: i64,
    /// Overdue amount at the last evaluation.
    pub overdue_amount: u64,
    /// The episode has reached DPD 1 (it closes only when nothing is overdue).
    pub delinquent: bool,
    /// Pre-collection: the due date it was opened for.
    pub watched_due: u64,
}

/// What the case rules keep per customer and strategy (serializable for snapshots).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CaseState {
    open: Option<OpenCase>,
}

impl CaseState {
    /// No case.
    pub fn new() -> CaseState {
        CaseState::default()
    }

    /// The open case, if any.
    pub fn open(&self) -> Option<&OpenCase> {
        self.open.as_ref()
    }
}

/// The stage of a delinquency of `dpd` days: M1 1–30, M2 31–60, M3+ from 61 — the
/// `bucket` feature's ranges ([`bucket_of`]), so a case's stage is always its bucket.
pub fn dpd_stage(dpd: u64) -> Option<CaseStage> {
    match bucket_of(dpd) {
        0 => None,
        1 => Some(CaseStage::M1),
        2 => Some(CaseStage::M2),
        _ => Some(CaseStage::M3Plus),
    }
}

/// Evaluates the case rules for one customer and strategy at `input.t`, pushing at most two
/// events onto `out` (not cleared): one for the open case, or a close then an open.
///
/// Returns the earliest time after `t` at which calling again with unchanged input could
/// open a case: the start of the pre-collection horizon before the next due date, for a
/// customer at a level that qualifies. (DPD boundaries are the ledger's wake-ups.)
pub fn step(
    policy: &CasesPolicy,
    state: &mut CaseState,
    input: &CaseInput,
    out: &mut Vec<CaseDraft>,
) -> Option<u64> {
    let t = input.t;
    let qualifies = policy.pre_collection && input.level >= policy.pre_collection_min_level;
    let pre_due = input
        .next_due_ts
        .filter(|d| qualifies && *d >= t && *d - t <= policy.pre_collection_horizon);
    let mut closed_at_start = None;
    if let Some(c) = &mut state.open {
        let close = if c.delinquent || input.dpd > 0 {
            input.dpd == 0 && input.overdue_amount == 0
        } else {
            input.next_due_ts.is_none_or(|d| d > c.watched_due)
        };
        if close {
            c.seq += 1;
            out.push(CaseDraft {
                event: CaseEvent::Closed,
                ts: t,
                seq: c.seq,
                stage: c.stage,
                queue: c.queue.clone(),
                priority: c.priority,
                episode_start: c.episode_start,
            });
            closed_at_start = Some(c.episode_start);
            state.open = None;
        } else {
            let base = match dpd_stage(input.dpd) {
                Some(s) => s,
                None if c.delinquent => CaseStage::M1,
                None => CaseStage::PreCollection,
            };
            let stage = if input.ring_member {
                CaseStage::Fraud
            } else {
                base
            };
            let queue = policy.queue(stage, input.score, input.written_off);
            let priority = CasesPolicy::priority(stage, input.level);
            let repaid_some = input.overdue_amount < c.overdue_amount && input.overdue_amount > 0;
            let event = if stage > c.stage {
                Some(CaseEvent::Escalated)
            } else if stage != c.stage || *queue != c.queue || priority != c.priority || repaid_some
            {
                Some(CaseEvent::Updated)
            } else {
                None
            };
            c.overdue_amount = input.overdue_amount;
            c.delinquent |= input.dpd > 0;
            if let Some(event) = event {
                c.seq += 1;
                c.stage = stage;
                if *queue != c.queue {
                    c.queue = queue.clone();
                }
                c.priority = priority;
                out.push(CaseDraft {
                    event,
                    ts: t,
                    seq: c.seq,
                    stage,
                    queue: c.queue.clone(),
                    priority,
                    episode_start: c.episode_start,
                });
            }
        }
    }
    if state.open.is_none() && policy.enabled && closed_at_start != Some(t) {
        let base = match (dpd_stage(input.dpd), pre_due) {
            (Some(s), _) => Some(s),
            (None, Some(_)) => Some(CaseStage::PreCollection),
            (None, None) => None,
        };
        if let Some(base) = base {
            let stage = if input.ring_member {
                CaseStage::Fraud
            } else {
                base
            };
            let queue = policy.queue(stage, input.score, input.written_off).clone();
            let priority = CasesPolicy::priority(stage, input.level);
            out.push(CaseDraft {
                event: CaseEvent::Opened,
                ts: t,
                seq: 1,
                stage,
                queue: queue.clone(),
                priority,
                episode_start: t,
            });
            state.open = Some(OpenCase {
                episode_start: t,
                seq: 1,
                stage,
                queue,
                priority,
                overdue_amount: input.overdue_amount,
                delinquent: input.dpd > 0,
                watched_due: pre_due.unwrap_or(0),
            });
        }
    }
    match input.next_due_ts {
        Some(d) if state.open.is_none() && policy.enabled && qualifies => {
            let from = d.saturating_sub(policy.pre_collection_horizon);
            (from > t).then_some(from)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
