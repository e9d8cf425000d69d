//! Whole-config loading tests: layers, key paths in errors, and the shipped defaults.

use super::*;

#[test]
fn default_config_is_valid() {
    let c = Config::default();
    c.validate().unwrap();
    assert!(!c.windows.is_empty());
    assert_eq!(c.dedupe_horizon(), 30 * MS_PER_DAY);
}

#[test]
fn unknown_keys_fail_with_the_key() {
    let err = Config::from_toml("[time]\ntick = \"10ms\"\ntikc = 1\n").unwrap_err();
    assert!(err.to_string().contains("tikc"), "{err}");
}

#[test]
fn type_errors_name_the_full_path_of_the_key() {
    let err = Config::from_toml("[time]\ntick = \"banana\"\n").unwrap_err();
    assert_eq!(err.key, "time.tick");
    assert!(err.reason.contains("banana"), "{err}");
    let text = DEFAULT_CONFIG.replacen("severity = \"high\"", "severity = \"dire\"", 1);
    let err = Config::from_toml(&text).unwrap_err();
    assert_eq!(err.key, "strategy[0].rule[0].severity");
    let err = Config::from_toml("[time]\ntikc = 1\n").unwrap_err();
    assert!(err.key.contains("tikc"), "{err}");
}

#[test]
fn bad_granularity_names_the_window() {
    let text = DEFAULT_CONFIG.replacen("granularity = \"10s\"", "granularity = \"7s\"", 1);
    let err = Config::from_toml(&text).unwrap_err();
    assert_eq!(err.key, "window[0].granularity");
}

#[test]
fn env_overrides_apply_after_the_file() {
    let env = vec![
        ("RISKWATCH__TIME__TICK".to_string(), "\"20ms\"".to_string()),
        (
            "RISKWATCH__TIME__WALL_CLOCK_ADVANCE".to_string(),
            "false".to_string(),
        ),
        ("OTHER".to_string(), "x".to_string()),
    ];
    let c = Config::from_toml_with_env(DEFAULT_CONFIG, env).unwrap();
    assert_eq!(c.time.tick, Millis(20));
    assert!(!c.time.wall_clock_advance);
}

#[test]
fn rings_validation_names_the_key() {
    assert_eq!(Config::default().rings, RingsConfig::default());
    let err = Config::from_toml("[rings]\nmin_ring_size = 1\n").unwrap_err();
    assert_eq!(err.key, "rings.min_ring_size");
    let err = Config::from_toml("[rings]\nmax_customers_per_identifier = 0\n").unwrap_err();
    assert_eq!(err.key, "rings.max_customers_per_identifier");
}

/// The shipped file's commented `[strategy.policy]` and `[strategy.cases]` sections,
/// uncommented.
fn uncommented_policy_and_cases() -> String {
    let start = DEFAULT_CONFIG
        .find("# [strategy.policy]")
        .expect("the shipped config documents [strategy.policy]");
    DEFAULT_CONFIG[start..]
        .lines()
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| {
            l.starts_with('[')
                || l.split_once(" = ").is_some_and(|(k, _)| {
                    !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                })
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn commented_policy_and_cases_are_the_defaults() {
    let extra = uncommented_policy_and_cases();
    assert!(extra.contains("[[strategy.cases.queue]]"), "{extra}");
    let text = format!("{DEFAULT_CONFIG}\n{extra}");
    let c = Config::from_toml(&text).unwrap();
    assert_eq!(c.strategies[0].policy, PolicyConfig::default());
    assert_eq!(c.strategies[0].cases, CasesConfig::default());
    assert_eq!(
        Config::default().strategies[0].policy,
        PolicyConfig::default()
    );
    // Defaults are left out of the serialized strategy (its version hash).
    let json = serde_json::to_string(&c.strategies[0]).unwrap();
    assert!(
        !json.contains("policy") && !json.contains("cases"),
        "{json}"
    );
}

#[test]
fn policy_and_cases_errors_name_the_key() {
    let base = format!("{DEFAULT_CONFIG}\n");
    let cases = [
        (
            "[[strategy.policy.action]]\nkind = \"freeze\"\nwhen_level_at_least = 4\nwhen_rules = [\"nope\"]\n",
            "strategy[0].policy.action[0].when_rules",
        ),
        (
            "[[strategy.policy.action]]\nkind = \"limit_decrease\"\nwhen_level_at_least = 1\npercent = 10\n",
            "strategy[0].policy.action[0].when_level_at_least",
        ),
        (
            "[[strategy.policy.action]]\nkind = \"limit_decrease\"\nwhen_level_at_least = 3\n",
            "strategy[0].policy.action[0].percent",
        ),
        (
            "[[strategy.policy.action]]\nkind = \"price_increase\"\nwhen_level_at_least = 3\n",
            "strategy[0].policy.action[0].bps",
        ),
        (
            "[[strategy.policy.action]]\nkind = \"unfreeze\"\nwhen_level_at_least = 3\n",
            "strategy[0].policy.action[0].kind",
        ),
        (
            "[strategy.policy]\nbreaker_interval = \"0s\"\n",
            "strategy[0].policy.breaker_interval",
        ),
        (
            "[strategy.policy]\napr_cap_bps = 200000\n",
            "strategy[0].policy.apr_cap_bps",
        ),
        (
            "[[strategy.cases.queue]]\nstage = \"M1\"\nqueue = \"sms\"\n",
            "strategy[0].cases.queue",
        ),
        (
            "[strategy.cases]\npre_collection_min_level = 0\n",
            "strategy[0].cases.pre_collection_min_level",
        ),
    ];
    for (extra, key) in cases {
        let err = Config::from_toml(&format!("{base}{extra}")).unwrap_err();
        assert_eq!(err.key, key, "{extra}: {err}");
    }
    let err =
        Config::from_toml(&format!("{base}[strategy.policy]\ncooldwn = \"1d\"\n")).unwrap_err();
    assert!(err.to_string().contains("cooldwn"), "{err}");
    let ok = "[[strategy.policy.action]]\nkind = \"limit_decrease\"\nwhen_level_at_least = 4\nwhen_rules = [\"bust_out_spend\"]\nto_balance = true\n";
    let c = Config::from_toml(&format!("{base}{ok}")).unwrap();
    assert_eq!(c.strategies[0].policy.actions.len(), 1);
    assert!(c.strategies[0].policy.actions[0].to_balance);
}

#[test]
fn derived_measures_need_their_inputs() {
    let text = "[[window]]\nname = \"1h\"\nlength = \"1h\"\ngranularity = \"10s\"\nfeatures = [\"cash_ratio\", \"spend\"]\n[[strategy]]\nname = \"c\"\n";
    let err = Config::from_toml(text).unwrap_err();
    assert_eq!(err.key, "window[0].features");
    assert!(err.reason.contains("cash"), "{err}");
}

#[test]
fn kafka_defaults_select_files_and_name_distinct_topics() {
    let c = Config::default();
    assert_eq!(c.run.mode, RunMode::Files);
    assert_eq!(
        c.kafka,
        KafkaConfig::default(),
        "the shipped file lists the defaults"
    );
    assert_eq!(c.run, RunConfig::default());
    assert_eq!(
        c.kafka.topics.inputs()[crate::event::Stream::Transactions as usize],
        "riskwatch.transactions"
    );
}

#[test]
fn kafka_secrets_in_the_config_file_are_refused() {
    let err = Config::from_toml("[kafka.consumer]\n\"sasl.password\" = \"hunter2\"\n").unwrap_err();
    assert_eq!(err.key, "kafka.consumer.sasl.password");
    let err = Config::from_toml("[kafka]\nsasl_password = \"hunter2\"\n").unwrap_err();
    assert!(err.to_string().contains("sasl_password"), "{err}");
}

#[test]
fn kafka_topics_must_be_valid_and_distinct() {
    let err = Config::from_toml("[kafka.topics]\nalerts = \"riskwatch.loans\"\n").unwrap_err();
    assert_eq!(err.key, "kafka.topics.alerts");
    let err = Config::from_toml("[kafka.topics]\ncases = \"a b\"\n").unwrap_err();
    assert_eq!(err.key, "kafka.topics.cases");
    let err = Config::from_toml("[run]\nmode = \"kafka\"\n[kafka]\nbrokers = \"\"\n").unwrap_err();
    assert_eq!(err.key, "kafka.brokers");
}
