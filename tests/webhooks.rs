//! `riskwatch receive` and `riskwatch redeliver` as processes: events built from real
//! outputs with `entries_for`, staged in a real state directory, refused by a receiver
//! with another secret (401: dead-lettered at once), listed and redelivered by the CLI,
//! then delivered through a chaotic receiver into its NDJSON file.

use riskwatch_connectors::webhook::{entries_for, Dispatcher, Endpoint, OutputRef, Signer};
use riskwatch_model::config::{EventPattern, WebhookConfig};
use riskwatch_model::output::{Alert, Case, CaseEvent, CaseStage, Reason};
use riskwatch_model::time::Millis;
use riskwatch_state::outbox::{stage, Outbox};
use riskwatch_state::{Checkpoint, Fingerprint, OpenMode, StateDir};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

fn riskwatch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_riskwatch"))
}

/// `riskwatch receive` on a free port; killed when dropped.
struct Receive {
    child: Child,
    url: String,
}

impl Drop for Receive {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn receive(secret: &str, out: &Path, chaos: &[&str]) -> Receive {
    let mut child = riskwatch()
        .args([
            "receive",
            "--listen",
            "127.0.0.1:0",
            "--secret-env",
            "TEST_SECRET",
        ])
        .arg("--out")
        .arg(out)
        .args(chaos)
        .env("TEST_SECRET", secret)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts riskwatch receive");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("prints its address");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    Receive { child, url }
}

fn alert() -> Alert {
    Alert {
        alert_id: "a-77".into(),
        customer_id: "C9".into(),
        ts: 1_000,
        emitted_at: 2_000,
        rule_id: "dpd".into(),
        rule_version: None,
        severity: riskwatch_model::config::Severity::High,
        level: 3,
        score: None,
        reasons: vec![Reason::code("dpd")],
        features: Default::default(),
        strategy: "baseline".into(),
        shadow: false,
        strategy_version: "v1".into(),
        ring_id: None,
    }
}

fn case(seq: u32, event: CaseEvent) -> Case {
    Case {
        case_id: "c-77".into(),
        seq,
        customer_id: "C9".into(),
        ts: 1_000 + u64::from(seq),
        emitted_at: 2_000,
        event,
        stage: CaseStage::M1,
        queue: "sms".into(),
        priority: 1,
        overdue_amount: 500,
        dpd: 2,
        level: 2,
        score: None,
        reasons: vec![],
        loans: vec![],
        strategy: "baseline".into(),
        strategy_version: "v1".into(),
        shadow: false,
        opened_at: 1_001,
    }
}

fn open(path: &Path) -> Outbox {
    let store = StateDir::open(path, OpenMode::CreateIfMissing, &Fingerprint::new())
        .expect("opens the state directory");
    Outbox::new(Arc::new(store))
}

async fn drain(outbox: &Outbox, config: &WebhookConfig) {
    let endpoint = Endpoint::with_signer(config, Signer::new(SECRET).unwrap()).unwrap();
    Dispatcher::new(outbox.clone(), vec![endpoint])
        .run_until_drained()
        .await
        .expect("drains");
}

fn cli(state: &Path, args: &[&str]) -> String {
    let out = riskwatch()
        .args(["redeliver", "--state"])
        .arg(state)
        .args(args)
        .output()
        .expect("runs riskwatch redeliver");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_events_are_redelivered_by_the_cli_and_received_once_in_order() {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("riskwatch-webhooks-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state");
    let out = dir.join("received.ndjson");

    // A receiver with another secret refuses everything with 401: dead at once.
    let wrong = receive(OTHER, &out, &[]);
    let mut config = WebhookConfig::new(
        "collections",
        &wrong.url,
        vec![
            EventPattern::AnyCase,
            EventPattern::try_from("alert.raised".to_string()).unwrap(),
        ],
    );
    config.secret_env = Some("UNUSED".into());
    config.backoff_initial = Millis(5);
    config.backoff_max = Millis(50);
    config.max_attempts = 30;
    let cases = [
        case(1, CaseEvent::Opened),
        case(2, CaseEvent::Updated),
        case(3, CaseEvent::Closed),
    ];
    {
        let outbox = open(&state);
        let mut batch = Checkpoint::new();
        let a = alert();
        let mut entries = entries_for(OutputRef::Alert(&a), std::slice::from_ref(&config));
        for c in &cases {
            entries.extend(entries_for(
                OutputRef::Case(c),
                std::slice::from_ref(&config),
            ));
        }
        assert_eq!(entries.len(), 4);
        for e in &entries {
            assert!(stage(outbox.store(), &mut batch, e).unwrap());
        }
        outbox.store().write(batch).unwrap();
        drain(&outbox, &config).await;
        assert_eq!(outbox.dead_letters().unwrap().len(), 4);
    }
    drop(wrong);
    let listed = cli(&state, &["--list"]);
    assert_eq!(listed.lines().count(), 4, "{listed}");
    assert!(
        listed.contains("collections\tc-77:2\tcase.updated\thttp_4xx:401"),
        "{listed}"
    );
    assert_eq!(
        cli(&state, &["--id", "c-77:2"])
            .lines()
            .next()
            .unwrap()
            .split(' ')
            .nth(1),
        Some("1")
    );
    assert!(cli(&state, &["--all"]).starts_with("moved 3 dead letters"));

    // The right secret, a flaky receiver: everything arrives once, the case in order.
    let right = receive(
        SECRET,
        &out,
        &[
            "--chaos-fail-ratio",
            "0.3",
            "--chaos-429-ratio",
            "0.1",
            "--chaos-seed",
            "3",
        ],
    );
    config.url = right.url.clone();
    let outbox = open(&state);
    drain(&outbox, &config).await;
    assert!(outbox.dead_letters().unwrap().is_empty());
    assert_eq!(outbox.depth().unwrap(), 0);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<&str> = lines.iter().map(|l| l["id"].as_str().unwrap()).collect();
    let cases: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|i| i.starts_with("c-"))
        .collect();
    assert_eq!(cases, ["c-77:1", "c-77:2", "c-77:3"]);
    assert_eq!(ids.len(), 4, "{ids:?}");
    let first = lines.iter().find(|l| l["id"] == "c-77:1").unwrap();
    assert_eq!(first["type"], "case.opened");
    assert_eq!(
        first["data"],
        serde_json::to_value(case(1, CaseEvent::Opened)).unwrap()
    );
    drop(right);
    drop(outbox);
    let _ = std::fs::remove_dir_all(&dir);
}
