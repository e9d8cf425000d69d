//! Outputs → outbox entries: event types, ids, order keys, filters, the envelope.

use super::super::event::{entries_for, OutputRef};
use super::endpoint_config;
use riskwatch_model::config::{EventPattern, Severity, ShadowFilter};
use riskwatch_model::output::{Alert, Case, CaseEvent, CaseStage, Decision, DecisionKind, Reason};

pub fn alert(shadow: bool) -> Alert {
    Alert {
        alert_id: "a-1".into(),
        customer_id: "C1".into(),
        ts: 1_709_281_800_250,
        emitted_at: 1_709_281_800_300,
        rule_id: "r".into(),
        rule_version: None,
        severity: Severity::High,
        level: 3,
        score: Some(480.0),
        reasons: vec![Reason::code("r")],
        features: Default::default(),
        strategy: "baseline".into(),
        shadow,
        strategy_version: "v1".into(),
        ring_id: None,
    }
}

fn decision() -> Decision {
    Decision {
        decision_id: "d-1".into(),
        customer_id: "C1".into(),
        ts: 10,
        emitted_at: 11,
        kind: DecisionKind::Freeze,
        old_limit: None,
        new_limit: None,
        old_apr_bps: None,
        new_apr_bps: None,
        level: 4,
        score: None,
        reasons: vec![Reason::code("r")],
        strategy: "challenger".into(),
        shadow: false,
        strategy_version: "v2".into(),
        effective_at: 20,
    }
}

fn case(seq: u32, event: CaseEvent) -> Case {
    Case {
        case_id: "c-1".into(),
        seq,
        customer_id: "C1".into(),
        ts: 86_400_000,
        emitted_at: 86_400_001,
        event,
        stage: CaseStage::M1,
        queue: "sms".into(),
        priority: 1,
        overdue_amount: 100,
        dpd: 3,
        level: 2,
        score: None,
        reasons: vec![],
        loans: vec![],
        strategy: "baseline".into(),
        strategy_version: "v1".into(),
        shadow: false,
        opened_at: 0,
    }
}

#[test]
fn ids_order_keys_and_types_follow_the_output() {
    let a = alert(false);
    let d = decision();
    let c = case(3, CaseEvent::Escalated);
    let all = [endpoint_config("all", "http://127.0.0.1:1/")];
    let [ea] = entries_for(OutputRef::Alert(&a), &all).try_into().unwrap();
    assert_eq!(
        (ea.id.as_str(), ea.order_key.as_str(), ea.seq),
        ("a-1", "a-1", 0)
    );
    assert_eq!(ea.event_type, "alert.raised");
    assert_eq!(ea.time, a.ts);
    let [ed] = entries_for(OutputRef::Decision(&d), &all)
        .try_into()
        .unwrap();
    assert_eq!(
        (ed.id.as_str(), ed.event_type.as_str()),
        ("d-1", "decision.freeze")
    );
    let [ec] = entries_for(OutputRef::Case(&c), &all).try_into().unwrap();
    assert_eq!(
        (ec.id.as_str(), ec.order_key.as_str(), ec.seq),
        ("c-1:3", "c-1", 3)
    );
    assert_eq!(ec.event_type, "case.escalated");
}

#[test]
fn the_envelope_is_the_record_under_type_and_event_time() {
    let a = alert(false);
    let body = OutputRef::Alert(&a).envelope();
    let text = String::from_utf8(body.clone()).unwrap();
    let record = serde_json::to_string(&a).unwrap();
    assert_eq!(
        text,
        format!(
            r#"{{"type":"alert.raised","timestamp":"2024-03-01T08:30:00.250Z","data":{record}}}"#
        )
    );
    // Deterministic: the same record gives the same bytes.
    assert_eq!(OutputRef::Alert(&a).envelope(), body);
}

#[test]
fn endpoint_filters_select_by_type_strategy_and_shadow() {
    let mut cases_only = endpoint_config("cases", "http://127.0.0.1:1/");
    cases_only.events = vec![EventPattern::AnyCase];
    let mut freeze = endpoint_config("freeze", "http://127.0.0.1:1/");
    freeze.events = vec![EventPattern::try_from("decision.freeze".to_string()).unwrap()];
    freeze.strategies = Some(vec!["baseline".into()]);
    let mut shadow_only = endpoint_config("shadow", "http://127.0.0.1:1/");
    shadow_only.shadow = ShadowFilter::Only;
    let mut everything = endpoint_config("everything", "http://127.0.0.1:1/");
    everything.shadow = ShadowFilter::Include;
    let endpoints = [cases_only, freeze, shadow_only, everything];
    let names = |out: OutputRef<'_>| -> Vec<String> {
        entries_for(out, &endpoints)
            .into_iter()
            .map(|e| e.endpoint)
            .collect()
    };
    assert_eq!(names(OutputRef::Alert(&alert(false))), ["everything"]);
    assert_eq!(
        names(OutputRef::Alert(&alert(true))),
        ["shadow", "everything"]
    );
    // The decision is the challenger's: the freeze endpoint takes baseline's only.
    assert_eq!(names(OutputRef::Decision(&decision())), ["everything"]);
    assert_eq!(
        names(OutputRef::Case(&case(1, CaseEvent::Opened))),
        ["cases", "everything"]
    );
    let none: [riskwatch_model::config::WebhookConfig; 0] = [];
    assert!(entries_for(OutputRef::Alert(&alert(false)), &none).is_empty());
}
