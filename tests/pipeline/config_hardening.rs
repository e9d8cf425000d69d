//! Issue 8, the config and rules part ("one bad record must never cost good data"): a
//! config that loads must run as written, and one that cannot must fail at load with its
//! key, never crash, and never put a value the contracts refuse into an output.
//!
//! - a strategy without a scorecard ranks by its rules alone (it put everyone at level 4);
//! - rules over null features follow SQL's three-valued logic end to end;
//! - a scorecard whose points overflow still gives every alert a numeric score;
//! - a rule too long or too deep is refused by `compile` with its key and the limit (a
//!   20,000-term rule overflowed the stack);
//! - `compile` returns warnings for level tables that cannot mean what they say.

use super::support::*;
use riskwatch_dataflows::plan::compile;
use riskwatch_model::config::Config;
use riskwatch_model::output::DecisionKind;

/// Customers `C1` (quiet), `C2` (5 failed logins) and `C3` (10 failed logins) on day 1.
fn login_book() -> Book {
    let mut b = Book::new();
    for c in ["C1", "C2", "C3"] {
        b.customer(c, day(0), 100_000, 1000);
    }
    for k in 0..10 {
        let ts = day(1) + k * 60_000;
        if k < 5 {
            b.beh(&format!("B2{k}"), "C2", ts, "login_failed");
        }
        b.beh(&format!("B3{k}"), "C3", ts, "login_failed");
    }
    b.beh("B10", "C1", day(1) + HOUR, "app_open");
    b.sort_by_ts();
    b
}

const RULES_ONLY: &str = r#"
[[strategy]]
name = "rules_only"
role = "champion"

[[strategy.rule]]
id = "login_attack"
severity = "medium"
expr = "failed_logins_1h >= 5"

[[strategy.rule]]
id = "login_storm"
severity = "critical"
expr = "failed_logins_1h >= 10"
min_level = 4
"#;

/// Issue 8: a strategy without a scorecard scored 0, below every band of the level table,
/// so every customer sat at level 4: `level` alerts and freeze, limit and price decisions
/// for customers no rule named.
#[test]
fn rules_only_strategy_alerts_and_decides_only_for_its_firing_rules() {
    let cfg = compiled(RULES_ONLY);
    let run = run_book(&cfg, &login_book(), None);
    let alerts: Vec<(String, String, u8)> = run
        .out
        .alerts
        .iter()
        .map(|a| (a.customer_id.clone(), a.rule_id.clone(), a.level))
        .collect();
    let expect = |c: &str, r: &str, l: u8| (c.to_string(), r.to_string(), l);
    assert_eq!(
        alerts,
        vec![
            expect("C2", "login_attack", 0),
            expect("C3", "login_attack", 0),
            expect("C3", "login_storm", 4),
        ]
    );
    // Only C3, whose login_storm rule asks for level 4, gets the default level-3 and
    // level-4 actions.
    let mut kinds: Vec<(String, DecisionKind)> = run
        .out
        .decisions
        .iter()
        .map(|d| (d.customer_id.clone(), d.kind))
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            ("C3".to_string(), DecisionKind::LimitDecrease),
            ("C3".to_string(), DecisionKind::Freeze),
            ("C3".to_string(), DecisionKind::PriceIncrease),
        ]
    );
    assert!(run.out.cases.is_empty(), "{:?}", run.out.cases);
    // Without a scorecard there is no score: the field is left out (the contracts make it
    // optional), never 0 and never null.
    for a in &run.out.alerts {
        assert_eq!(a.score, None);
        let json = serde_json::to_string(a).unwrap();
        assert!(!json.contains("\"score\""), "{json}");
    }
    for d in &run.out.decisions {
        assert!(!serde_json::to_string(d).unwrap().contains("\"score\""));
    }
}

/// Issue 8: `x != 0` and `!(x > 0.5)` fired for customers whose `x` was null (no spend,
/// so no cash ratio): SQL's three-valued logic makes both unknown, and a rule fires only
/// when it is true.
#[test]
fn rules_over_a_null_feature_fire_only_when_true() {
    let cfg = compiled(
        r#"
[[strategy]]
name = "nulls"
role = "champion"

[[strategy.rule]]
id = "low_cash_share"
severity = "low"
expr = "!(cash_ratio_30d > 0.5)"

[[strategy.rule]]
id = "some_cash"
severity = "low"
expr = "cash_ratio_30d != 0"

[[strategy.rule]]
id = "no_spend"
severity = "info"
expr = "cash_ratio_30d == null && credit_limit > 0"
"#,
    );
    let mut b = Book::new();
    for c in ["N1", "N2", "N3"] {
        b.customer(c, day(0), 100_000, 1000);
    }
    b.txn("T2", "N2", day(1), "purchase", 5_000);
    b.txn("T3", "N3", day(1), "cash_withdrawal", 5_000);
    let run = run_sorted(&cfg, &b, None);
    let fired: Vec<(String, String)> = run
        .out
        .alerts
        .iter()
        .map(|a| (a.customer_id.clone(), a.rule_id.clone()))
        .collect();
    let pair = |c: &str, r: &str| (c.to_string(), r.to_string());
    assert_eq!(
        fired,
        vec![
            pair("N1", "no_spend"),
            pair("N2", "no_spend"),
            pair("N3", "no_spend"),
            pair("N2", "low_cash_share"),
            pair("N3", "some_cash"),
        ]
    );
}

/// Issue 8: a score that reached infinity was written as `"score": null`, which
/// alert.schema.json refuses. The score saturates at the largest finite number instead.
#[test]
fn alert_scores_stay_numbers_when_scorecard_points_overflow() {
    let cfg = compiled(&format!(
        "{RULES_ONLY}\n[strategy.scorecard]\nbase = 1.0e308\n[[strategy.scorecard.feature]]\n\
         feature = \"failed_logins_1h\"\nbins = [{{ points = 1.0e308 }}]\n"
    ));
    let run = run_book(&cfg, &login_book(), None);
    assert!(!run.out.alerts.is_empty());
    for a in &run.out.alerts {
        assert_eq!(a.score, Some(f64::MAX));
        let json = serde_json::to_string(a).unwrap();
        assert!(json.contains("\"score\":1.7976931348623157e+308"), "{json}");
    }
}

/// The shipped champion with rule 3's expression replaced by `expr`.
fn with_rule_3(expr: &str) -> Config {
    let mut config = Config::default();
    config.strategies[0].rules[3].expr = expr.to_string();
    config
}

/// Issue 8: a rule of 20,000 `+` terms (about 200 KB) aborted `check-config` and `replay`
/// with a stack overflow (exit 134). `compile` refuses it, and any rule too deep, with the
/// key and the limit, on the test thread's stack.
#[test]
fn a_20000_term_rule_is_refused_with_its_key_instead_of_overflowing_the_stack() {
    let long = format!("{} > 0", vec!["spend_30d"; 20_000].join(" + "));
    let err = compile(&with_rule_3(&long), |_| Err("no files".into())).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "config key \"strategy[0].rule[3].expr\": expression is {} bytes, the limit is \
             16384",
            long.len()
        )
    );
    let cases = [
        (
            format!("{}dpd > 1{}", "(".repeat(10_000), ")".repeat(10_000)),
            "expression is 20007 bytes, the limit is 16384",
        ),
        (
            format!("{}dpd > 1{}", "(".repeat(5_000), ")".repeat(5_000)),
            "expression nests 5002 deep, the limit is 32",
        ),
        (
            format!("{}(dpd > 1)", "!".repeat(10_000)),
            "expression nests 10003 deep, the limit is 32",
        ),
        (
            format!("{} > 0", vec!["dpd"; 4_000].join("+")),
            "expression nests 4001 deep, the limit is 32",
        ),
    ];
    for (expr, reason) in cases {
        let err = compile(&with_rule_3(&expr), |_| Err("no files".into())).unwrap_err();
        assert_eq!(err.key, "strategy[0].rule[3].expr");
        assert_eq!(err.reason, reason);
    }
}

/// A level table no score can reach level 0 of, or one a rules-only strategy ignores,
/// loads (it runs) but comes back from `compile` as a warning for `check-config`.
#[test]
fn compile_warns_about_level_tables_that_cannot_mean_what_they_say() {
    assert!(default_config().1.warnings.is_empty());
    let (_, c) = compiled(&RULES_ONLY.replacen(
        "role = \"champion\"\n",
        "role = \"champion\"\nlevels = { min_score = [0, -1, -2, -3] }\n",
        1,
    ));
    let text: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        vec![
            "config warning key \"strategy[0].levels.min_score\": ignored: the strategy has no \
             scorecard, so its level comes from its rules alone"
        ]
    );
    let (_, c) = compiled(
        "[[strategy]]\nname = \"strict\"\nlevels = { min_score = [700, 600, 500, 400] }\n\
         [strategy.scorecard]\nbase = 600\n[[strategy.scorecard.feature]]\nfeature = \"dpd\"\n\
         bins = [{ below = 1, points = 50 }, { points = -100 }]\n",
    );
    assert_eq!(c.warnings.len(), 1);
    assert_eq!(
        c.warnings[0].reason,
        "no customer can reach level 0: the highest score the scorecard gives is 650, below \
         min_score[0] = 700"
    );
}
