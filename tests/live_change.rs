//! Live strategy changes: a threshold changed mid-stream takes effect at one event time,
//! and from then on firing rules and levels equal those of a replay that used the new
//! config from the start; state (windows, ledger) carries over untouched.

use riskwatch::pipeline::{run, RunOptions, RunOutput};
use riskwatch::replay::load_strategy_change;
use riskwatch_connectors::file::{merge, MergeOptions};
use riskwatch_connectors::generator::{generate, GenConfig};
use riskwatch_dataflows::plan::{compile, Compiled};
use riskwatch_model::config::Config;
use riskwatch_model::event::Stream;
use riskwatch_model::time::ceil_to;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn book(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("riskwatch-live-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    generate(
        &GenConfig {
            customers: 400,
            days: 60,
            seed: 11,
            ..GenConfig::default()
        },
        &dir,
    )
    .unwrap();
    dir
}

fn compiled(path: &Path) -> Compiled {
    let config = Config::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap();
    compile(&config, |_| Err("no imports".into())).unwrap()
}

/// A copy of `path` whose (single) strategy decides in dry-run mode: decisions then never
/// change limits, so features do not depend on the decision history and two runs with
/// different strategies before the change can be compared feature for feature after it.
fn dry_run_copy(path: &Path, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(path).unwrap() + "\n[strategy.policy]\ndry_run = true\n";
    let out = dir.join(path.file_name().unwrap());
    std::fs::write(&out, text).unwrap();
    out
}

fn replay(dir: &Path, c: &Compiled, changes: Vec<(u64, String)>) -> RunOutput {
    let texts: Vec<Vec<u8>> = Stream::ALL
        .iter()
        .map(|s| std::fs::read(dir.join(format!("{}.ndjson", s.name()))).unwrap())
        .collect();
    let refs: Vec<&[u8]> = texts.iter().map(|t| t.as_slice()).collect();
    let merged = merge(
        &refs,
        MergeOptions {
            tick: c.tick,
            max_future_skew: 86_400_000,
            until: None,
            threads: 2,
        },
    );
    let end = ceil_to(merged.max_ts, c.tick);
    let mut opts = RunOptions::new(2, end);
    opts.trace = true;
    opts.config_changes = changes;
    run(c, merged.events, opts)
}

type State = (Vec<String>, u8);

/// Each customer's (firing rules, level) of strategy `baseline` as of every snapshot time.
fn timelines(out: &RunOutput) -> BTreeMap<String, Vec<(u64, State)>> {
    let mut m: BTreeMap<String, Vec<(u64, State)>> = BTreeMap::new();
    for s in &out.trace {
        let (_, firing, level) = s
            .verdicts
            .iter()
            .find(|(name, _, _)| name == "baseline")
            .expect("baseline evaluated")
            .clone();
        m.entry(s.customer_id.clone())
            .or_default()
            .push((s.time, (firing, level)));
    }
    m
}

fn state_at(line: &[(u64, State)], t: u64) -> Option<&State> {
    line.iter()
        .rev()
        .find(|(time, _)| *time <= t)
        .map(|(_, s)| s)
}

#[test]
fn threshold_change_equals_new_config_from_the_start() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = book("threshold");
    let old_path = dry_run_copy(&root.join("deploy/config/riskwatch.toml"), &dir);
    let new_path = dry_run_copy(&root.join("tests/fixtures/challenger.toml"), &dir);
    let old = compiled(&old_path);
    let new = compiled(&new_path);
    // Change at day 35 of the book (2026-01-01 + 35 d), between ticks on purpose.
    let change = 1_767_225_600_000 + 35 * 86_400_000 + 12_345;
    let change_tick = ceil_to(change, old.tick);
    let json = load_strategy_change(&new_path, &old).unwrap();
    let switched = replay(&dir, &old, vec![(change_tick, json)]);
    let fresh = replay(&dir, &new, Vec::new());
    let baseline = replay(&dir, &old, Vec::new());
    assert!(
        switched.stats.config_rejected.is_empty(),
        "{:?}",
        switched.stats.config_rejected
    );

    let a = timelines(&switched);
    let b = timelines(&fresh);
    let base = timelines(&baseline);
    let mut compared = 0;
    let mut differs_from_old = 0;
    for (customer, line) in &a {
        let other = b.get(customer).expect("same customers");
        let times: Vec<u64> = line
            .iter()
            .chain(other.iter())
            .map(|(t, _)| *t)
            .filter(|t| *t >= change_tick)
            .collect();
        for t in times {
            assert_eq!(
                state_at(line, t),
                state_at(other, t),
                "customer {customer} at {t}: switched run differs from new-config run"
            );
            compared += 1;
            if state_at(line, t) != base.get(customer).and_then(|l| state_at(l, t)) {
                differs_from_old += 1;
            }
        }
        // Before the change, the switched run is the old config's run.
        for (t, s) in line.iter().filter(|(t, _)| *t < change_tick) {
            assert_eq!(Some(s), base.get(customer).and_then(|l| state_at(l, *t)));
        }
    }
    assert!(compared > 1000, "only {compared} comparisons");
    assert!(
        differs_from_old > 0,
        "the change must matter for the test to mean anything"
    );
    // Every customer is re-evaluated exactly at the change time.
    let at_change = switched
        .trace
        .iter()
        .filter(|s| s.time == change_tick)
        .count();
    assert!(
        at_change >= a.len() - 5,
        "{at_change} of {} re-evaluated at the change",
        a.len()
    );
    // Alerts before the change are identical to the old config's.
    let before = |o: &RunOutput| -> Vec<String> {
        o.alerts
            .iter()
            .filter(|x| x.ts < change_tick)
            .map(|x| format!("{}|{}|{}|{}", x.ts, x.customer_id, x.rule_id, x.level))
            .collect()
    };
    assert_eq!(before(&switched), before(&baseline));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_change_of_windows_is_rejected_with_the_key() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let old = compiled(&root.join("deploy/config/riskwatch.toml"));
    let dir = std::env::temp_dir().join(format!("riskwatch-live-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(root.join("deploy/config/riskwatch.toml"))
        .unwrap()
        .replacen("length = \"1h\"", "length = \"2h\"", 1);
    let path = dir.join("bad.toml");
    std::fs::write(&path, text).unwrap();
    let err = load_strategy_change(&path, &old).unwrap_err().to_string();
    assert!(err.contains("window"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn actions_continue_from_the_state_held_at_the_change() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = book("actions");
    let old = compiled(&root.join("deploy/config/riskwatch.toml"));
    let change = ceil_to(1_767_225_600_000 + 30 * 86_400_000, old.tick);
    let json = load_strategy_change(&root.join("tests/fixtures/challenger.toml"), &old).unwrap();
    let switched = replay(&dir, &old, vec![(change, json)]);
    let baseline = replay(&dir, &old, Vec::new());
    // Before the change: the same decisions.
    let ids = |o: &RunOutput, before: bool| -> Vec<String> {
        o.decisions
            .iter()
            .filter(|d| (d.ts < change) == before)
            .map(|d| d.decision_id.clone())
            .collect()
    };
    assert_eq!(ids(&switched, true), ids(&baseline, true));
    // Across the change, each customer's limit chain continues: a limit decision starts
    // from the limit the previous one set (the action state held at the change carried
    // over instead of starting from the customers record again).
    let mut last_limit: BTreeMap<&str, u64> = BTreeMap::new();
    let mut across = 0;
    for d in &switched.decisions {
        if let (Some(old), Some(new)) = (d.old_limit, d.new_limit) {
            if let Some(prev) = last_limit.get(d.customer_id.as_str()) {
                assert_eq!(
                    old, *prev,
                    "{}: limit chain broken at {}",
                    d.customer_id, d.ts
                );
                across += (d.ts >= change) as usize;
            }
            last_limit.insert(d.customer_id.as_str(), new);
        }
    }
    assert!(
        across > 0,
        "no limit decision continued a chain after the change"
    );
    let mut seen = std::collections::BTreeSet::new();
    for d in &switched.decisions {
        assert!(
            seen.insert(d.decision_id.clone()),
            "duplicate decision {}",
            d.decision_id
        );
    }
    assert!(!switched.decisions.is_empty());
    std::fs::remove_dir_all(&dir).ok();
}
