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

/// The shipped config with its first occurrence of `from` replaced by `to`.
fn shipped_with(from: &str, to: &str) -> String {
    assert!(DEFAULT_CONFIG.contains(from), "{from}");
    DEFAULT_CONFIG.replacen(from, to, 1)
}

/// Issue 8: `base = nan` or `points = nan` put every customer at level 4 and gave alerts
/// `"score": null`. Every float of the config must be finite, wherever it comes from.
#[test]
fn nan_and_inf_in_the_config_are_rejected_with_the_full_key() {
    let cases = [
        (
            shipped_with("base = 560", "base = nan"),
            "strategy[0].scorecard.base",
            "nan is not a finite number",
        ),
        (
            shipped_with(
                "{ below = 0.8, points = 20 }",
                "{ below = 0.8, points = nan }",
            ),
            "strategy[0].scorecard.feature[0].bins[1].points",
            "nan is not a finite number",
        ),
        (
            shipped_with(
                "{ below = 0.8, points = 20 }",
                "{ below = inf, points = 20 }",
            ),
            "strategy[0].scorecard.feature[0].bins[1].below",
            "inf is not a finite number",
        ),
        (
            shipped_with("missing = 10", "missing = -inf"),
            "strategy[0].scorecard.feature[2].missing",
            "-inf is not a finite number",
        ),
        (
            shipped_with("[650.0, 600.0, 560.0, 520.0]", "[650.0, 600.0, nan, 520.0]"),
            "strategy[0].levels.min_score[2]",
            "nan is not a finite number",
        ),
        (
            format!(
                "{DEFAULT_CONFIG}\n[[strategy.cases.queue]]\nstage = \"M1\"\nmin_score = nan\n\
                 queue = \"sms\"\n"
            ),
            "strategy[0].cases.queue[0].min_score",
            "nan is not a finite number",
        ),
    ];
    for (text, key, reason) in cases {
        let err = Config::from_toml(&text).unwrap_err();
        assert_eq!(
            (err.key.as_str(), err.reason.as_str()),
            (key, reason),
            "{err}"
        );
    }
    // From the environment too.
    let env = vec![(
        "RISKWATCH__RINGS__MIN_RING_SIZE".to_string(),
        "inf".to_string(),
    )];
    let err = Config::from_toml_with_env("", env).unwrap_err();
    assert_eq!(
        err.to_string(),
        "config key \"rings.min_ring_size\": inf is not a finite number"
    );
}

/// The same rule holds for a config built in code (a live strategy change arrives as
/// JSON, never through TOML).
#[test]
fn validate_refuses_floats_that_are_not_finite_in_a_config_built_in_code() {
    let mut c = Config::default();
    c.strategies[0].scorecard.base = f64::NAN;
    assert_eq!(c.validate().unwrap_err().key, "strategy[0].scorecard.base");
    let mut c = Config::default();
    c.strategies[0].scorecard.features[1].bins[0].points = f64::INFINITY;
    assert_eq!(
        c.validate().unwrap_err().key,
        "strategy[0].scorecard.feature[1].bins[0].points"
    );
    let mut c = Config::default();
    c.strategies[0].levels.min_score[0] = f64::NAN;
    let err = c.validate().unwrap_err();
    assert_eq!(
        (err.key.as_str(), err.reason.as_str()),
        (
            "strategy[0].levels.min_score[0]",
            "nan is not a finite number"
        )
    );
}

/// Issue 8: a TOML syntax error named the key "]". It gives the line and column.
#[test]
fn toml_syntax_errors_give_the_line_and_column() {
    let err = Config::from_toml("[time]\ntick = \"10ms\"\n[window\nname = \"x\"\n").unwrap_err();
    assert_eq!(err.key, "");
    assert!(err.reason.starts_with("line 3, column 8: "), "{err}");
    assert!(
        err.to_string().starts_with("config: line 3, column 8: "),
        "{err}"
    );
    let err = Config::from_toml("[time]\ntick = \"10ms\"\ntick = \"20ms\"\n").unwrap_err();
    assert_eq!(err.reason, "line 3, column 1: duplicate key tick");
    // A key error still names its key.
    let err = Config::from_toml("[time]\ntick = \"7s\"\n").unwrap_err();
    assert_eq!(err.key, "time.tick");
}

/// Issue 8: `rings.link_granularity = "0ms"` reached a modulo by zero.
#[test]
fn link_granularity_must_divide_a_day_and_be_a_multiple_of_the_tick() {
    for (g, ok) in [
        ("0ms", false),
        ("7s", false),
        ("15ms", false),
        ("90m", true),
        ("10ms", true),
    ] {
        let result = Config::from_toml(&format!("[rings]\nlink_granularity = \"{g}\"\n"));
        match (result, ok) {
            (Ok(_), true) => {}
            (Err(err), false) => {
                assert_eq!(err.key, "rings.link_granularity");
                assert_eq!(
                    err.reason,
                    format!("{g} must divide 1d and be a multiple of the tick (10ms)")
                );
            }
            (result, _) => panic!("{g}: {result:?}"),
        }
    }
}

/// Issue 8: producer overrides that undo the idempotent producer passed check-config.
#[test]
fn producer_overrides_that_break_idempotence_are_refused_with_the_key() {
    let refused = [
        ("enable.idempotence", "false"),
        ("acks", "1"),
        ("request.required.acks", "0"),
        ("max.in.flight.requests.per.connection", "6"),
        ("max.in.flight", "many"),
        ("retries", "0"),
        ("message.send.max.retries", "0"),
        ("queuing.strategy", "lifo"),
        ("transactional.id", "riskwatch"),
    ];
    for (k, v) in refused {
        let err = Config::from_toml(&format!("[kafka.producer]\n\"{k}\" = \"{v}\"\n")).unwrap_err();
        assert_eq!(err.key, format!("kafka.producer.{k}"), "{err}");
    }
    let accepted = [
        ("enable.idempotence", "true"),
        ("acks", "all"),
        ("acks", "-1"),
        ("max.in.flight.requests.per.connection", "5"),
        ("retries", "10"),
        ("queue.buffering.max.kbytes", "1048576"),
    ];
    for (k, v) in accepted {
        Config::from_toml(&format!("[kafka.producer]\n\"{k}\" = \"{v}\"\n"))
            .unwrap_or_else(|e| panic!("{k} = {v}: {e}"));
    }
    // The consumer table is not the producer's.
    Config::from_toml("[kafka.consumer]\n\"enable.idempotence\" = \"false\"\n").unwrap();
}
