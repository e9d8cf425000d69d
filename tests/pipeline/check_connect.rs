//! `riskwatch check-config --connect` as a user runs it, against librdkafka's mock cluster:
//! topics present with the exact partition assignment, a missing topic, an unreachable
//! broker within the timeout, webhook endpoints (resolvable or not, secrets present or
//! not, no query string printed), and the files-mode directory checks.

use super::support::temp_dir;
use riskwatch_connectors::kafka::rdkafka::mocking::MockCluster;
use riskwatch_connectors::kafka::rdkafka::producer::DefaultProducerContext;
use riskwatch_model::config::KafkaTopics;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn check(config: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_riskwatch"));
    c.env("RISKWATCH_LOG", "warn")
        .stdin(Stdio::null())
        .args([
            "check-config",
            "--config",
            config.to_str().unwrap(),
            "--connect",
        ])
        .args(extra);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run riskwatch")
}

/// What `--connect` printed after the config summary (the `environment:` block).
fn environment(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout);
    match out.split_once("environment:\n") {
        Some((_, env)) => env.to_string(),
        None => panic!(
            "no environment block in:\n{out}\nstderr:\n{}",
            String::from_utf8_lossy(&o.stderr)
        ),
    }
}

/// A mock cluster with each input topic at its partition count (`inputs` in stream order:
/// customers, loans, transactions, behaviors) and the output and dead-letter topics of one
/// partition, except those named in `missing`.
fn cluster(inputs: [i32; 4], missing: &[&str]) -> MockCluster<'static, DefaultProducerContext> {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let t = KafkaTopics::default();
    for (topic, n) in t.inputs().into_iter().zip(inputs) {
        cluster.create_topic(topic, n, 1).expect("create topic");
    }
    for topic in [&t.alerts, &t.decisions, &t.cases, &t.dead_letter] {
        if !missing.contains(&topic.as_str()) {
            cluster.create_topic(topic, 1, 1).expect("create topic");
        }
    }
    cluster
}

fn kafka_config(dir: &Path, brokers: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.join("riskwatch.toml");
    std::fs::write(
        &path,
        format!("[run]\nmode = \"kafka\"\n\n[kafka]\nbrokers = \"{brokers}\"\n{extra}"),
    )
    .unwrap();
    path
}

fn topic_lines(inputs: [i32; 4]) -> String {
    let t = KafkaTopics::default();
    let names = ["customers", "loans", "transactions", "behaviors"];
    let mut s = String::new();
    for ((topic, n), name) in t.inputs().into_iter().zip(inputs).zip(names) {
        s += &format!("ok: input topic \"{topic}\" ({name}): {n} partitions\n");
    }
    s
}

#[test]
fn topics_present_exit_0_with_the_assignment_of_2_processes_of_2_workers() {
    let cluster = cluster([4, 4, 4, 4], &[]);
    let brokers = cluster.bootstrap_servers();
    let dir = temp_dir("connect-present");
    let cfg = kafka_config(&dir, &brokers, "");
    let o = check(&cfg, &["--workers", "2", "--processes", "2"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", environment(&o));
    let want = format!(
        "ok: brokers \"{brokers}\" reachable: the cluster metadata lists 1 broker(s)\n\
         ok: credentials accepted (security_protocol plaintext: none sent)\n\
         {}\
         ok: output topic \"riskwatch.alerts\" (alerts): 1 partition\n\
         ok: output topic \"riskwatch.decisions\" (decisions): 1 partition\n\
         ok: output topic \"riskwatch.cases\" (cases): 1 partition\n\
         ok: dead-letter topic \"riskwatch.rejected\": 1 partition\n\
         ok: partition assignment: 16 input partitions over 2 process(es) x 2 worker(s)\n  \
         process 0 worker 0: riskwatch.customers[0] riskwatch.loans[0] riskwatch.transactions[0] riskwatch.behaviors[0]\n  \
         process 0 worker 1: riskwatch.customers[1] riskwatch.loans[1] riskwatch.transactions[1] riskwatch.behaviors[1]\n  \
         process 1 worker 0: riskwatch.customers[2] riskwatch.loans[2] riskwatch.transactions[2] riskwatch.behaviors[2]\n  \
         process 1 worker 1: riskwatch.customers[3] riskwatch.loans[3] riskwatch.transactions[3] riskwatch.behaviors[3]\n\
         skip: webhooks: none configured\n",
        topic_lines([4, 4, 4, 4])
    );
    assert_eq!(environment(&o), want);
}

#[test]
fn a_missing_topic_exits_69_naming_it_and_uneven_partitions_are_dealt_round_robin() {
    let cluster = cluster([4, 2, 4, 2], &["riskwatch.rejected"]);
    let brokers = cluster.bootstrap_servers();
    let dir = temp_dir("connect-missing");
    let cfg = kafka_config(&dir, &brokers, "");
    let o = check(&cfg, &["--workers", "2", "--processes", "2"], &[]);
    assert_eq!(o.status.code(), Some(69), "{}", environment(&o));
    let env = environment(&o);
    let fail: Vec<&str> = env.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert_eq!(
        fail,
        [
            "FAIL: dead-letter topic \"riskwatch.rejected\": missing or unusable: \
          RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART (create it first; topics are not auto-created)"
        ]
    );
    // c0 c1 c2 c3 l0 l1 t0 t1 t2 t3 b0 b1, the i-th to global worker i % 4.
    let assignment: Vec<&str> = env
        .lines()
        .skip_while(|l| !l.starts_with("ok: partition assignment"))
        .take(5)
        .collect();
    assert_eq!(
        assignment,
        [
            "ok: partition assignment: 12 input partitions over 2 process(es) x 2 worker(s)",
            "  process 0 worker 0: riskwatch.customers[0] riskwatch.loans[0] riskwatch.transactions[2]",
            "  process 0 worker 1: riskwatch.customers[1] riskwatch.loans[1] riskwatch.transactions[3]",
            "  process 1 worker 0: riskwatch.customers[2] riskwatch.transactions[0] riskwatch.behaviors[0]",
            "  process 1 worker 1: riskwatch.customers[3] riskwatch.transactions[1] riskwatch.behaviors[1]",
        ]
    );
}

#[test]
fn a_missing_input_topic_fails_and_skips_the_assignment() {
    let cluster = MockCluster::<DefaultProducerContext>::new(1).expect("mock cluster");
    let t = KafkaTopics::default();
    for topic in [&t.customers, &t.transactions, &t.behaviors] {
        cluster.create_topic(topic, 2, 1).unwrap();
    }
    for topic in [&t.alerts, &t.decisions, &t.cases, &t.dead_letter] {
        cluster.create_topic(topic, 1, 1).unwrap();
    }
    let dir = temp_dir("connect-missing-input");
    let cfg = kafka_config(&dir, &cluster.bootstrap_servers(), "");
    let o = check(&cfg, &[], &[]);
    assert_eq!(o.status.code(), Some(69));
    let env = environment(&o);
    let lines: Vec<&str> = env
        .lines()
        .filter(|l| l.contains("riskwatch.loans") || l.contains("assignment"))
        .collect();
    assert_eq!(
        lines,
        [
            "FAIL: input topic \"riskwatch.loans\" (loans): missing or unusable: \
             RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART (create it first; topics are not auto-created)",
            "skip: partition assignment not computed: an input topic is missing",
        ]
    );
}

#[test]
fn an_unreachable_broker_exits_69_within_the_timeout_naming_the_brokers() {
    // A loopback port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let brokers = format!("127.0.0.1:{port}");
    let dir = temp_dir("connect-unreachable");
    let cfg = kafka_config(&dir, &brokers, "");
    let start = Instant::now();
    let o = check(&cfg, &["--timeout-ms", "1500"], &[]);
    let took = start.elapsed();
    assert_eq!(o.status.code(), Some(69), "{}", environment(&o));
    // The metadata request waits its 1.5 s; start-up and the client's teardown are quick.
    assert!(took < Duration::from_millis(4_500), "took {took:?}");
    let env = environment(&o);
    let lines: Vec<&str> = env.lines().collect();
    assert_eq!(lines.len(), 3, "{env}");
    let prefix = format!("FAIL: brokers \"{brokers}\" unreachable within 1500 ms: ");
    assert!(lines[0].starts_with(&prefix), "{env}");
    assert!(lines[0].contains("Connection refused"), "{env}");
    assert_eq!(
        &lines[1..],
        [
            "skip: credentials, topics and the partition assignment not checked: no broker \
             answered",
            "skip: webhooks: none configured",
        ]
    );
}

#[test]
fn webhook_endpoints_are_named_resolved_connected_and_their_secrets_checked() {
    let cluster = cluster([1, 1, 1, 1], &[]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = temp_dir("connect-webhooks");
    let hooks = format!(
        "\n[[webhook]]\nname = \"collections\"\nurl = \"http://127.0.0.1:{port}/hooks?token=t0ps3cret\"\n\
         events = [\"case.*\"]\nsecret_env = \"RW_TEST_COLLECT_SECRET\"\n\
         \n[[webhook]]\nname = \"nowhere\"\nurl = \"https://nonexistent.invalid/hooks\"\n\
         events = [\"alert.raised\"]\nsecret_env = \"RW_TEST_NO_SUCH_SECRET\"\n"
    );
    let cfg = kafka_config(&dir, &cluster.bootstrap_servers(), &hooks);
    let o = check(
        &cfg,
        &["--timeout-ms", "3000"],
        &[("RW_TEST_COLLECT_SECRET", SECRET)],
    );
    assert_eq!(o.status.code(), Some(69));
    let env = environment(&o);
    let lines: Vec<&str> = env.lines().filter(|l| l.contains("webhook")).collect();
    assert_eq!(lines.len(), 6, "{env}");
    assert_eq!(
        &lines[..3],
        [
            format!("ok: webhook \"collections\": host 127.0.0.1:{port} resolves (1 address(es))"),
            format!(
                "ok: webhook \"collections\": 127.0.0.1:{port} accepts a TCP connection \
                 (127.0.0.1:{port})"
            ),
            "ok: webhook \"collections\": signing secret present (environment variable \
             RW_TEST_COLLECT_SECRET)"
                .to_string(),
        ]
    );
    assert!(
        lines[3].starts_with(
            "FAIL: webhook \"nowhere\": host nonexistent.invalid:443 does not resolve: "
        ),
        "{env}"
    );
    assert_eq!(
        &lines[4..],
        [
            "skip: webhook \"nowhere\": connection not tried: the host does not resolve",
            "FAIL: webhook \"nowhere\": signing secret or client settings: environment \
             variable RW_TEST_NO_SUCH_SECRET is not set",
        ]
    );
    // Only the webhook checks fail; the query string (a token) is never printed.
    assert_eq!(
        env.lines().filter(|l| l.starts_with("FAIL")).count(),
        2,
        "{env}"
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!all.contains("t0ps3cret"), "{all}");
    drop(listener);
}

#[test]
fn files_mode_checks_the_directories_and_says_kafka_does_not_apply() {
    let dir = temp_dir("connect-files");
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    let output = dir.join("new/out");
    let cfg = dir.join("riskwatch.toml");
    let write = |input: &Path| {
        std::fs::write(
            &cfg,
            format!(
                "[run]\nmode = \"files\"\ninput_dir = \"{}\"\noutput_dir = \"{}\"\n",
                input.display(),
                output.display()
            ),
        )
        .unwrap();
    };
    write(&input);
    let o = check(&cfg, &[], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", environment(&o));
    assert_eq!(
        environment(&o),
        format!(
            "skip: kafka checks do not apply in files mode (run.mode = \"files\")\n\
             ok: run.input_dir \"{}\" exists and is readable\n\
             ok: run.output_dir \"{}\" does not exist and can be created in \"{}\"\n\
             skip: webhooks: none configured\n",
            input.display(),
            output.display(),
            dir.display()
        )
    );
    assert!(!dir.join("new").exists(), "the check creates nothing");
    let gone = dir.join("gone");
    write(&gone);
    let o = check(&cfg, &[], &[]);
    assert_eq!(o.status.code(), Some(69));
    assert!(
        environment(&o).contains(&format!(
            "FAIL: run.input_dir \"{}\": No such file or directory (os error 2)\n",
            gone.display()
        )),
        "{}",
        environment(&o)
    );
}

#[test]
fn connect_flags_need_connect() {
    let dir = temp_dir("connect-flags");
    let cfg = dir.join("riskwatch.toml");
    std::fs::write(&cfg, "").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_riskwatch"))
        .args([
            "check-config",
            "--config",
            cfg.to_str().unwrap(),
            "--timeout-ms",
            "5",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = Command::new(env!("CARGO_BIN_EXE_riskwatch"))
        .args(["check-config", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("environment:"));
}
