//! Tests of the action policy: golden sequences written by hand, and property tests over
//! random level sequences (a seeded xorshift, so failures reproduce).

use super::*;
use riskwatch_model::config::{ActionConfig, Config, PolicyConfig, StrategyConfig};
use riskwatch_model::time::{Millis, MS_PER_DAY, MS_PER_HOUR};
use std::collections::BTreeMap;

const DAY: u64 = MS_PER_DAY;
const TICK: u64 = 10;

fn strategy(policy: PolicyConfig) -> StrategyConfig {
    let mut s = Config::default().strategies[0].clone();
    s.policy = policy;
    s
}

fn compile(policy: PolicyConfig) -> Policy {
    Policy::compile(&strategy(policy), 0, TICK).unwrap()
}

fn terms(limit: u64, apr_bps: u32) -> Terms {
    Terms {
        limit,
        apr_bps,
        frozen: false,
    }
}

/// One customer driven by hand: its record, balance and state.
struct Customer {
    state: ActionState,
    record: Terms,
    record_ts: u64,
    balance: u64,
    firing: u64,
}

impl Customer {
    fn new(limit: u64, apr: u32, balance: u64) -> Customer {
        Customer {
            state: ActionState::new(),
            record: terms(limit, apr),
            record_ts: 0,
            balance,
            firing: 0,
        }
    }

    fn step(
        &mut self,
        policy: &Policy,
        breaker: &mut Breaker,
        t: u64,
        level: u8,
    ) -> (Vec<DecisionDraft>, Option<u64>) {
        let mut out = Vec::new();
        let input = ActionInput {
            t,
            level,
            firing: self.firing,
            balance: self.balance,
            record: self.record,
            record_ts: self.record_ts,
        };
        let wake = decide(policy, &mut self.state, &input, breaker, &mut out);
        (out, wake)
    }
}

/// A compact rendering of drafts for golden comparisons.
fn show(drafts: &[DecisionDraft]) -> Vec<String> {
    drafts
        .iter()
        .map(|d| {
            let mut s = d.kind.name().to_string();
            if let (Some(o), Some(n)) = (d.old_limit, d.new_limit) {
                s.push_str(&format!(" limit {o}->{n}"));
            }
            if let (Some(o), Some(n)) = (d.old_apr_bps, d.new_apr_bps) {
                s.push_str(&format!(" apr {o}->{n}"));
            }
            assert_eq!(d.effective_at, d.ts + TICK);
            s
        })
        .collect()
}

#[test]
fn golden_cut_reprice_freeze_then_restore_after_the_stable_period() {
    let p = compile(PolicyConfig::default());
    let mut b = Breaker::new();
    let mut c = Customer::new(100_000, 1800, 20_000);
    assert_eq!(c.step(&p, &mut b, 0, 0), (vec![], None));
    let (d, _) = c.step(&p, &mut b, DAY, 3);
    assert_eq!(
        show(&d),
        [
            "limit_decrease limit 100000->70000",
            "price_increase apr 1800->2100"
        ]
    );
    assert_eq!(d[0].cause, Cause::Actions(0b001));
    assert_eq!(d[1].cause, Cause::Actions(0b100));
    assert_eq!(c.state.effective(), terms(70_000, 2100));
    // Level 4: the freeze; the level-3 actions are still served.
    let (d, _) = c.step(&p, &mut b, 2 * DAY, 4);
    assert_eq!(show(&d), ["freeze"]);
    assert!(c.state.effective().frozen);
    // Level 1 from day 10: restores become due at day 40.
    assert_eq!(c.step(&p, &mut b, 10 * DAY, 1), (vec![], Some(40 * DAY)));
    assert_eq!(c.step(&p, &mut b, 39 * DAY, 0), (vec![], Some(40 * DAY)));
    let (d, wake) = c.step(&p, &mut b, 40 * DAY, 1);
    assert_eq!(
        show(&d),
        [
            "unfreeze",
            "limit_restore limit 70000->100000",
            "price_restore apr 2100->1800"
        ]
    );
    assert!(d.iter().all(|x| x.cause == Cause::Restore));
    assert_eq!(wake, None);
    assert_eq!(c.state.effective(), terms(100_000, 1800));
    // The actions re-armed when the level fell: a new rise acts again.
    let (d, _) = c.step(&p, &mut b, 41 * DAY, 3);
    assert_eq!(
        show(&d),
        [
            "limit_decrease limit 100000->70000",
            "price_increase apr 1800->2100"
        ]
    );
}

#[test]
fn golden_a_rise_before_the_stable_period_resets_it() {
    let p = compile(PolicyConfig::default());
    let mut b = Breaker::new();
    let mut c = Customer::new(100_000, 1800, 0);
    c.step(&p, &mut b, DAY, 3);
    assert_eq!(c.step(&p, &mut b, 2 * DAY, 1).1, Some(32 * DAY));
    assert_eq!(c.step(&p, &mut b, 20 * DAY, 2).1, None);
    assert_eq!(c.step(&p, &mut b, 25 * DAY, 0).1, Some(55 * DAY));
    assert!(c.step(&p, &mut b, 54 * DAY, 1).0.is_empty());
    assert_eq!(c.step(&p, &mut b, 55 * DAY, 1).0.len(), 2);
}

#[test]
fn golden_floor_at_balance_and_apr_cap() {
    let p = compile(PolicyConfig::default());
    let mut b = Breaker::new();
    let mut c = Customer::new(100_000, 2300, 90_000);
    let (d, _) = c.step(&p, &mut b, DAY, 3);
    assert_eq!(
        show(&d),
        [
            "limit_decrease limit 100000->90000",
            "price_increase apr 2300->2400"
        ]
    );
    // Drawn over the limit and at the cap: nothing to do, and nothing pending.
    let mut c = Customer::new(100_000, 2400, 120_000);
    assert_eq!(c.step(&p, &mut b, DAY, 3), (vec![], None));
    assert_eq!(c.step(&p, &mut b, 20 * DAY, 3), (vec![], None));
    // Above the cap already (the lender's own APR): no price decision either.
    let mut c = Customer::new(100_000, 3000, 0);
    assert_eq!(
        show(&c.step(&p, &mut b, DAY, 3).0),
        ["limit_decrease limit 100000->70000"]
    );
    // Without the floor, a cut may go below the balance.
    let p = compile(PolicyConfig {
        floor_at_balance: false,
        ..PolicyConfig::default()
    });
    let mut c = Customer::new(100_000, 1000, 90_000);
    assert_eq!(
        show(&c.step(&p, &mut b, DAY, 3).0)[0],
        "limit_decrease limit 100000->70000"
    );
    // Cut to the balance: the strongest of two decreases triggered together wins.
    let mut cfg = PolicyConfig::default();
    cfg.actions.push(ActionConfig {
        to_balance: true,
        ..ActionConfig::new(DecisionKind::LimitDecrease, 4)
    });
    let p = compile(cfg);
    let mut c = Customer::new(100_000, 1000, 40_000);
    let (d, _) = c.step(&p, &mut b, DAY, 4);
    assert_eq!(
        show(&d),
        [
            "freeze",
            "limit_decrease limit 100000->40000",
            "price_increase apr 1000->1300"
        ]
    );
    assert_eq!(d[1].cause, Cause::Actions(0b1001));
}

#[test]
fn golden_cooldown_and_period_leave_actions_pending() {
    let p = compile(PolicyConfig::default());
    let mut b = Breaker::new();
    let mut c = Customer::new(100_000, 1800, 0);
    assert_eq!(c.step(&p, &mut b, 0, 3).0.len(), 2);
    assert_eq!(c.step(&p, &mut b, DAY, 0).0.len(), 0);
    // Risen again on day 3: price waits for the cooldown (day 7), the cut for the period.
    assert_eq!(c.step(&p, &mut b, 3 * DAY, 3), (vec![], Some(7 * DAY)));
    let (d, wake) = c.step(&p, &mut b, 8 * DAY, 3);
    assert_eq!(show(&d), ["price_increase apr 2100->2400"]);
    assert_eq!(wake, Some(30 * DAY));
    assert_eq!(
        c.step(&p, &mut b, 30 * DAY - 1, 3),
        (vec![], Some(30 * DAY))
    );
    let (d, wake) = c.step(&p, &mut b, 30 * DAY, 3);
    assert_eq!(show(&d), ["limit_decrease limit 70000->49000"]);
    assert_eq!(wake, None);
    // Served: no further cut while the level stays.
    assert_eq!(c.step(&p, &mut b, 90 * DAY, 3), (vec![], None));
}

#[test]
fn golden_newer_customers_record_wins_a_tie() {
    let p = compile(PolicyConfig::default());
    let mut b = Breaker::new();
    let mut c = Customer::new(100_000, 1800, 0);
    let (d, _) = c.step(&p, &mut b, 1000, 3);
    assert_eq!(d[0].effective_at, 1010);
    assert_eq!(c.state.current(c.record, c.record_ts), terms(70_000, 2100));
    // A record at exactly the decision's effective time wins.
    let newer = terms(80_000, 1500);
    assert_eq!(c.state.current(newer, 1010), newer);
    // An older one (late, or inside the decision's tick) does not...
    assert_eq!(c.state.current(newer, 1005), terms(70_000, 2100));
    let mut late = Customer {
        state: c.state.clone(),
        record: newer,
        record_ts: 1005,
        balance: 0,
        firing: 0,
    };
    assert!(late.step(&p, &mut b, 2000, 3).0.is_empty());
    assert_eq!(late.state.effective(), terms(70_000, 2100));
    // ...but becomes the baseline that restores return to.
    assert_eq!(late.state.baseline(), newer);
    assert_eq!(
        late.step(&p, &mut b, 2000 + 40 * DAY, 0),
        (vec![], Some(2000 + 70 * DAY))
    );
    let (d, _) = late.step(&p, &mut b, 2000 + 70 * DAY, 0);
    assert_eq!(
        show(&d),
        [
            "limit_restore limit 70000->80000",
            "price_restore apr 2100->1500"
        ]
    );
    assert_eq!(late.state.effective(), newer);
    // The winning record becomes current and baseline; nothing is cut again (served).
    c.record = newer;
    c.record_ts = 1010;
    assert!(c.step(&p, &mut b, 2000, 3).0.is_empty());
    assert_eq!(c.state.effective(), newer);
    assert_eq!(c.state.baseline(), newer);
    // A lender freeze is not riskwatch's to lift.
    let mut f = Customer::new(100_000, 1800, 0);
    f.record.frozen = true;
    let (d, _) = f.step(&p, &mut b, DAY, 4);
    assert_eq!(
        show(&d),
        [
            "limit_decrease limit 100000->70000",
            "price_increase apr 1800->2100"
        ]
    );
    assert!(f.step(&p, &mut b, 40 * DAY, 0).0.is_empty());
    let (d, _) = f.step(&p, &mut b, 80 * DAY, 0);
    assert_eq!(
        show(&d),
        [
            "limit_restore limit 70000->100000",
            "price_restore apr 2100->1800"
        ]
    );
    assert!(f.state.effective().frozen);
}

#[test]
fn golden_dry_run_decides_the_same_and_changes_nothing() {
    let live = compile(PolicyConfig::default());
    let dry = compile(PolicyConfig {
        dry_run: true,
        ..PolicyConfig::default()
    });
    let mut b = Breaker::new();
    let mut l = Customer::new(100_000, 1800, 20_000);
    let mut d = Customer::new(100_000, 1800, 20_000);
    for (t, level) in [
        (0, 0),
        (DAY, 3),
        (2 * DAY, 4),
        (10 * DAY, 1),
        (40 * DAY, 1),
        (41 * DAY, 3),
    ] {
        let (a, wa) = l.step(&live, &mut b, t, level);
        let (z, wz) = d.step(&dry, &mut b, t, level);
        assert_eq!(a, z, "at {t}");
        assert_eq!(wa, wz);
        assert_eq!(d.state.effective(), d.record);
        assert_eq!(d.state.current(d.record, d.record_ts), d.record);
        assert_eq!(d.state.policy_view(), l.state.effective());
    }
}

#[test]
fn golden_breaker_suppresses_and_counts_beyond_the_cap() {
    let p = compile(PolicyConfig {
        actions: vec![ActionConfig {
            percent: Some(50),
            ..ActionConfig::new(DecisionKind::LimitDecrease, 3)
        }],
        max_decisions_per_interval: 2,
        ..PolicyConfig::default()
    });
    let mut b = Breaker::new();
    let mut cs: Vec<Customer> = (0..6).map(|_| Customer::new(1000, 1000, 0)).collect();
    let hour = MS_PER_HOUR;
    let mut emitted = 0;
    for (i, c) in cs.iter_mut().take(5).enumerate() {
        emitted += c.step(&p, &mut b, 10 * hour + i as u64 * 60_000, 3).0.len();
    }
    assert_eq!(emitted, 2);
    assert_eq!(b.suppressed_total(), 3);
    assert_eq!(b.take_suppressed(), 3);
    assert_eq!(b.take_suppressed(), 0);
    assert_eq!(b.admitted_in_interval(), 2);
    // Next hour: the suppressed ones are not retried; a new crossing is admitted.
    for c in cs.iter_mut().take(5) {
        assert!(c.step(&p, &mut b, 11 * hour, 3).0.is_empty());
    }
    assert_eq!(cs[5].step(&p, &mut b, 11 * hour, 3).0.len(), 1);
    assert_eq!(cs[2].state.effective().limit, 1000);
}

#[test]
fn golden_rule_conditions() {
    let s = strategy(PolicyConfig {
        actions: vec![ActionConfig {
            when_rules: vec!["bust_out_spend".into(), "login_attack".into()],
            ..ActionConfig::new(DecisionKind::Freeze, 3)
        }],
        ..PolicyConfig::default()
    });
    let bust = s
        .rules
        .iter()
        .position(|r| r.id == "bust_out_spend")
        .unwrap();
    let login = s.rules.iter().position(|r| r.id == "login_attack").unwrap();
    let p = Policy::compile(&s, 0, TICK).unwrap();
    assert_eq!(p.actions[0].rules, (1 << bust) | (1 << login));
    let mut b = Breaker::new();
    let mut c = Customer::new(1000, 1000, 0);
    c.firing = 1 << 0;
    assert!(c.step(&p, &mut b, DAY, 4).0.is_empty());
    c.firing = 1 << bust;
    assert_eq!(show(&c.step(&p, &mut b, 2 * DAY, 3).0), ["freeze"]);
}

#[test]
fn golden_limit_increase_for_stable_customers() {
    let mut cfg = PolicyConfig::default();
    cfg.limit_increase.enabled = true;
    cfg.limit_increase.max_limit = Some(115_000);
    let p = compile(cfg);
    let mut b = Breaker::new();
    let mut c = Customer::new(100_000, 1800, 0);
    assert_eq!(c.step(&p, &mut b, 0, 0), (vec![], Some(180 * DAY)));
    let (d, wake) = c.step(&p, &mut b, 180 * DAY, 0);
    assert_eq!(show(&d), ["limit_increase limit 100000->110000"]);
    assert_eq!(d[0].cause, Cause::Stable);
    assert_eq!(wake, None);
    assert_eq!(c.step(&p, &mut b, 200 * DAY, 0).1, Some(360 * DAY));
    assert_eq!(
        show(&c.step(&p, &mut b, 360 * DAY, 0).0),
        ["limit_increase limit 110000->115000"]
    );
    assert_eq!(c.step(&p, &mut b, 600 * DAY, 0), (vec![], None));
    // A level above 0 restarts the clock; an outstanding cut blocks increases.
    let mut c = Customer::new(100_000, 1800, 0);
    c.step(&p, &mut b, 0, 3);
    assert!(c.step(&p, &mut b, DAY, 0).0.is_empty());
    let (d, _) = c.step(&p, &mut b, 31 * DAY, 0);
    assert_eq!(
        show(&d),
        [
            "limit_restore limit 70000->100000",
            "price_restore apr 2100->1800"
        ]
    );
    assert!(c.step(&p, &mut b, 180 * DAY, 0).0.is_empty());
    assert_eq!(
        show(&c.step(&p, &mut b, 181 * DAY, 0).0),
        ["limit_increase limit 100000->110000"]
    );
}

#[test]
fn decision_records_carry_ids_values_and_reasons() {
    let p = compile(PolicyConfig::default());
    let mut b = Breaker::new();
    let mut c = Customer::new(100_000, 1800, 0);
    let (d, _) = c.step(&p, &mut b, DAY, 3);
    let reasons = [Reason::code("bust_out_spend")];
    let ctx = DecisionContext {
        strategy: "baseline",
        strategy_version: "v1",
        customer_id: "C1",
        shadow: true,
        emitted_at: 7,
        level: 3,
        score: 512.0,
        reasons: &reasons,
    };
    let rec = p.decision(&d[0], &ctx);
    assert_eq!(
        rec.decision_id,
        Decision::id("baseline", "C1", DecisionKind::LimitDecrease, DAY)
    );
    assert_ne!(rec.decision_id, p.decision(&d[1], &ctx).decision_id);
    assert_eq!(rec.reasons.len(), 2);
    assert_eq!(rec.reasons[0].code, "bust_out_spend");
    assert_eq!(rec.reasons[1].code, "policy:limit_decrease");
    assert_eq!(rec.reasons[1].threshold, Some(3.0));
    let json = serde_json::to_value(&rec).unwrap();
    assert_eq!(json["kind"], "limit_decrease");
    assert_eq!(json["old_limit"], 100_000);
    assert_eq!(json["new_limit"], 70_000);
    assert_eq!(json["effective_at"], DAY + TICK);
    assert_eq!(json["score"], 512);
    assert_eq!(json["shadow"], true);
    assert!(json.get("old_apr_bps").is_none());
    let back: Decision = serde_json::from_value(json).unwrap();
    assert_eq!(back, rec);
    // Restores carry only the policy's reason.
    c.step(&p, &mut b, 2 * DAY, 0);
    let (d, _) = c.step(&p, &mut b, 40 * DAY, 0);
    let rec = p.decision(&d[0], &DecisionContext { level: 0, ..ctx });
    assert_eq!(rec.kind, DecisionKind::LimitRestore);
    assert_eq!(rec.reasons.len(), 1);
    assert_eq!(rec.reasons[0].code, "policy:restore");
}

#[test]
fn compile_rejects_what_validation_rejects() {
    let mut cfg = PolicyConfig::default();
    cfg.actions[0].when_rules = vec!["missing".into()];
    let err = Policy::compile(&strategy(cfg), 2, TICK).unwrap_err();
    assert_eq!(err.key, "strategy[2].policy.action[0].when_rules");
}

/// xorshift64*: a small seeded generator so property failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What the oracle remembers of one random customer.
struct Tracked {
    c: Customer,
    level: u8,
    last: BTreeMap<DecisionKind, u64>,
    decreases: Vec<u64>,
    low_since: Option<u64>,
}

/// Random level sequences over many customers sharing one breaker; checks every guardrail
/// on every draft and the state after every call.
fn random_run(seed: u64, cfg: PolicyConfig, steps: usize) -> (usize, u64) {
    let p = compile(cfg.clone());
    let mut rng = Rng(seed);
    let mut breaker = Breaker::new();
    let mut customers: Vec<Tracked> = (0..16)
        .map(|_| Tracked {
            c: Customer::new(100_000, 1800, 10_000),
            level: 0,
            last: BTreeMap::new(),
            decreases: Vec::new(),
            low_since: None,
        })
        .collect();
    let mut per_interval: BTreeMap<u64, u32> = BTreeMap::new();
    let mut t = 0u64;
    let mut total = 0;
    let gaps = [0, TICK, 60_000, MS_PER_HOUR, 6 * MS_PER_HOUR, DAY, 3 * DAY];
    for _ in 0..steps {
        t += gaps[rng.below(gaps.len() as u64) as usize];
        let k = rng.below(customers.len() as u64) as usize;
        let tr = &mut customers[k];
        tr.level = match rng.below(10) {
            0..=3 => tr.level,
            4..=5 => tr.level.saturating_sub(1),
            6..=7 => (tr.level + 1).min(4),
            _ => rng.below(5) as u8,
        };
        tr.c.firing = rng.next() & 0xff;
        if rng.chance(30) {
            tr.c.balance = rng.below(150_000);
        }
        if rng.chance(5) {
            tr.c.record = Terms {
                limit: rng.below(200_000),
                apr_bps: 1000 + rng.below(2000) as u32,
                frozen: rng.chance(10),
            };
            tr.c.record_ts = t.saturating_sub(rng.below(2) * rng.below(2 * DAY));
        }
        if tr.level <= cfg.restore_max_level {
            tr.low_since.get_or_insert(t);
        } else {
            tr.low_since = None;
        }
        let before = tr.c.state.clone();
        let current = before.current(tr.c.record, tr.c.record_ts);
        let (drafts, wake) = tr.c.step(&p, &mut breaker, t, tr.level);
        let st = &tr.c.state;
        assert!(
            wake.is_none_or(|w| w > t),
            "seed {seed}: wake {wake:?} not after {t}"
        );
        if cfg.dry_run {
            assert_eq!(
                st.effective(),
                tr.c.record,
                "seed {seed}: dry run changed terms"
            );
            assert_eq!(st.current(tr.c.record, tr.c.record_ts), tr.c.record);
        } else {
            assert_eq!(st.effective(), st.policy_view());
            if drafts.is_empty() {
                assert_eq!(st.effective(), current, "seed {seed}: current() disagrees");
            }
        }
        let mut limit_drafts = 0;
        for d in &drafts {
            total += 1;
            assert_eq!(d.ts, t);
            assert_eq!(d.effective_at, t + TICK);
            if let Some(a) = d.new_apr_bps {
                assert!(a <= cfg.apr_cap_bps, "seed {seed}: {d:?} above the cap");
            }
            if let (Some(o), Some(n)) = (d.old_limit, d.new_limit) {
                limit_drafts += 1;
                assert_eq!(st.policy_view().limit, n);
                match d.kind {
                    DecisionKind::LimitDecrease => {
                        assert!(n < o);
                        if cfg.floor_at_balance {
                            assert!(n >= tr.c.balance, "seed {seed}: {d:?} below the floor");
                        }
                    }
                    _ => assert!(n > o),
                }
            }
            if let (Some(o), Some(n)) = (d.old_apr_bps, d.new_apr_bps) {
                assert_eq!(st.policy_view().apr_bps, n);
                match d.kind {
                    DecisionKind::PriceIncrease => assert!(n > o),
                    _ => assert!(n < o),
                }
            }
            if let Some(prev) = tr.last.insert(d.kind, t) {
                assert!(
                    t > prev && t - prev >= cfg.cooldown.ms(),
                    "seed {seed}: {:?} at {prev} and {t} within the cooldown",
                    d.kind
                );
            }
            if d.kind == DecisionKind::LimitDecrease {
                tr.decreases.push(t);
                let window = tr
                    .decreases
                    .iter()
                    .filter(|x| **x + cfg.decrease_period.ms() > t)
                    .count();
                assert!(
                    window <= cfg.max_decreases_per_period as usize,
                    "seed {seed}"
                );
            }
            if matches!(
                d.kind,
                DecisionKind::Unfreeze | DecisionKind::LimitRestore | DecisionKind::PriceRestore
            ) {
                let since = tr.low_since.expect("restores only at a low level");
                assert!(
                    t >= since + cfg.restore_after.ms(),
                    "seed {seed}: restore at {t}, low only since {since}"
                );
            }
            if matches!(
                d.kind,
                DecisionKind::LimitDecrease | DecisionKind::Freeze | DecisionKind::PriceIncrease
            ) {
                assert!(tr.level >= 1);
            }
            let interval = t / cfg.breaker_interval.ms();
            let n = per_interval.entry(interval).or_default();
            *n += 1;
            assert!(*n <= cfg.max_decisions_per_interval, "seed {seed}: breaker");
        }
        assert!(limit_drafts <= 1);
    }
    (total, breaker.suppressed_total())
}

#[test]
fn property_guardrails_hold_with_the_default_policy() {
    for seed in 1..=8 {
        let (decisions, _) = random_run(seed, PolicyConfig::default(), 20_000);
        assert!(decisions > 100, "seed {seed}: only {decisions} decisions");
    }
}

fn aggressive() -> PolicyConfig {
    let mut cfg = PolicyConfig {
        actions: vec![
            ActionConfig {
                percent: Some(10),
                ..ActionConfig::new(DecisionKind::LimitDecrease, 2)
            },
            ActionConfig {
                to_balance: true,
                ..ActionConfig::new(DecisionKind::LimitDecrease, 4)
            },
            ActionConfig {
                when_rules: vec!["cash_out".into()],
                ..ActionConfig::new(DecisionKind::Freeze, 3)
            },
            ActionConfig {
                bps: Some(700),
                ..ActionConfig::new(DecisionKind::PriceIncrease, 2)
            },
        ],
        cooldown: Millis(0),
        max_decreases_per_period: 3,
        decrease_period: Millis(5 * DAY),
        restore_max_level: 1,
        restore_after: Millis(2 * DAY),
        max_decisions_per_interval: 3,
        breaker_interval: Millis(6 * MS_PER_HOUR),
        ..PolicyConfig::default()
    };
    cfg.limit_increase.enabled = true;
    cfg.limit_increase.stable_for = Millis(4 * DAY);
    cfg.limit_increase.max_limit = Some(300_000);
    cfg
}

#[test]
fn property_guardrails_hold_with_an_aggressive_policy_and_a_tight_breaker() {
    for seed in 11..=18 {
        let (decisions, suppressed) = random_run(seed, aggressive(), 20_000);
        assert!(decisions > 100, "seed {seed}");
        assert!(suppressed > 0, "seed {seed}: the breaker never tripped");
    }
    let loose = PolicyConfig {
        floor_at_balance: false,
        cooldown: Millis(DAY),
        max_decisions_per_interval: 1_000_000,
        ..aggressive()
    };
    for seed in 21..=24 {
        assert_eq!(random_run(seed, loose.clone(), 20_000).1, 0);
    }
}

#[test]
fn property_dry_run_never_changes_terms_and_decides_like_live() {
    for seed in 31..=36 {
        for base in [PolicyConfig::default(), aggressive()] {
            let dry = PolicyConfig {
                dry_run: true,
                ..base.clone()
            };
            let a = random_run(seed, base, 10_000);
            let b = random_run(seed, dry, 10_000);
            assert_eq!(a, b, "seed {seed}: dry run decided differently");
        }
    }
}

#[test]
fn action_state_stays_small() {
    assert!(std::mem::size_of::<ActionState>() <= 200);
}
