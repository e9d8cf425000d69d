#!/usr/bin/env python3
"""Generates riskwatch's Grafana dashboards and Prometheus rules from one description.

Writes (standard library only):
  dashboards/risk-operations.json     alerts, level mix and transitions, decisions, cases (events,
                                      open, overdue), rings, champion vs challenger, rejects
  dashboards/pipeline-health.json     throughput, rejects, lag, watermark, latency, Kafka and
                                      webhook delivery, outbox, checkpoints, CPU, memory, fds
  dashboards/rules/riskwatch.rules.yml  recording and alerting rules (runbooks in docs/operations.md)
  dashboards/rules/tests.yml          promtool unit tests: every alert fires (and not at t=0)

  python3 dashboards/generate.py           write the files
  python3 dashboards/generate.py --check   fail if a committed file differs from what this
                                           writes, a panel id repeats or lacks a unit or a
                                           description, a query names a metric missing from
                                           model/src/metrics.rs, KAFKA_ONLY disagrees with the
                                           catalogue's fed_in, an alert has no test, or a
                                           runbook anchor is not a heading of docs/operations.md
  python3 dashboards/generate.py --queries print every panel query and rule expression as
                                           JSON (scripts/observability-test.sh evaluates them)

Every metric a query names must be in the catalogue (model/src/metrics.rs, also printed by
`riskwatch metrics-catalogue`); recording rules are named `riskwatch:<what>:<window>`.
"""

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CATALOGUE_RS = ROOT / "model" / "src" / "metrics.rs"
RUNBOOK = "https://github.com/riskwatch/riskwatch/blob/main/docs/operations.md"
RATE = "$__rate_interval"

# Metrics Prometheus itself provides for every target.
BUILTIN = {"up"}


def catalogue():
    """Metric names and kinds parsed from model/src/metrics.rs."""
    return {name: kind for name, (kind, _) in catalogue_entries().items()}


def catalogue_entries():
    """Metric name -> (kind, fed_in) parsed from model/src/metrics.rs."""
    text = CATALOGUE_RS.read_text()
    found = re.findall(r'm\(\s*"([a-z_:]+)",\s*(Counter|Gauge|Histogram),\s*'
                       r'"(?:[^"\\]|\\[\s\S])*",\s*&\[[^\]]*\],\s*"([a-z]+)",?\s*\)', text)
    names = re.findall(r'm\(\s*"([a-z_:]+)",\s*(?:Counter|Gauge|Histogram)', text)
    if not found or len(found) != len(names):
        sys.exit(f"cannot parse the metrics (name, kind, help, labels, fed_in) in {CATALOGUE_RS}")
    return {name: (kind, fed) for name, kind, fed in found}


# ---------------------------------------------------------------- rules
RECORDING = [
    ("riskwatch:input_records:rate5m",
     "sum by (instance, stream) (rate(riskwatch_input_records_total[5m]))"),
    ("riskwatch:input_rejected_ratio:rate5m",
     "(sum by (instance) (rate(riskwatch_input_rejected_records_total[5m]))"
     " or sum by (instance) (rate(riskwatch_input_records_total[5m])) * 0)"
     " / clamp_min(sum by (instance) (rate(riskwatch_input_records_total[5m])), 1e-9)"),
    ("riskwatch:output_alerts:rate5m",
     "sum by (rule, severity, strategy) (rate(riskwatch_output_alerts_total[5m]))"),
    ("riskwatch:output_latency_seconds:p50_5m",
     "histogram_quantile(0.5, sum by (instance, le) "
     "(rate(riskwatch_output_latency_seconds_bucket[5m])))"),
    ("riskwatch:output_latency_seconds:p99_5m",
     "histogram_quantile(0.99, sum by (instance, le) "
     "(rate(riskwatch_output_latency_seconds_bucket[5m])))"),
    # Webhook attempts that did not deliver (retried or dead-lettered) over all attempts,
    # per endpoint; 0 while an endpoint has no attempts (the denominator is clamped).
    ("riskwatch:delivery_failure_ratio:rate5m",
     "sum by (instance, sink, endpoint) "
     "(rate(riskwatch_delivery_attempts_total{outcome=~\"retried|dead\"}[5m]))"
     " / clamp_min(sum by (instance, sink, endpoint) "
     "(rate(riskwatch_delivery_attempts_total[5m])), 1e-9)"),
    ("riskwatch:checkpoint_duration_seconds:p50_5m",
     "histogram_quantile(0.5, sum by (instance, le) "
     "(rate(riskwatch_checkpoint_duration_seconds_bucket[5m])))"),
    ("riskwatch:checkpoint_duration_seconds:p99_5m",
     "histogram_quantile(0.99, sum by (instance, le) "
     "(rate(riskwatch_checkpoint_duration_seconds_bucket[5m])))"),
]

# Kafka producer failures per topic, 0 for every topic the producer writes to, so that a
# healthy Kafka run has series too.
KAFKA_SINK_FAILURES = (
    "(sum by (instance, topic) (increase(riskwatch_kafka_sink_delivery_failures_total[{w}]))"
    " or sum by (instance, topic) (increase(riskwatch_kafka_sink_records_total[{w}])) * 0)")

# (name, expr, for, severity, summary, runbook anchor)
ALERTING = [
    ("RiskwatchDown",
     'up{job="riskwatch"} == 0',
     "1m", "critical",
     "riskwatch process {{ $labels.instance }} is down or not serving /metrics",
     "riskwatchdown"),
    ("RiskwatchConsumerLagGrowing",
     "sum by (instance, stream, partition) (riskwatch_input_consumer_lag_records) > 10000"
     " and sum by (instance, stream, partition)"
     " (deriv(riskwatch_input_consumer_lag_records[10m])) > 0",
     "10m", "warning",
     "consumer lag of {{ $labels.stream }}/{{ $labels.partition }} is over 10000 records and growing",
     "riskwatchconsumerlaggrowing"),
    ("RiskwatchWatermarkStalled",
     "max by (instance) (riskwatch_input_watermark_delay_seconds) > 600",
     "5m", "warning",
     "the input watermark of {{ $labels.instance }} is more than 10 minutes behind the wall clock",
     "riskwatchwatermarkstalled"),
    # The live target is 25 ms event-to-decision in process; the alert is at 10x that, on a
    # bucket boundary of the histogram (docs/operations.md says why).
    ("RiskwatchOutputLatencyHigh",
     "riskwatch:output_latency_seconds:p99_5m > 0.25",
     "10m", "warning",
     "event-to-output p99 latency of {{ $labels.instance }} is over 250 ms",
     "riskwatchoutputlatencyhigh"),
    ("RiskwatchRejectedRatioSpike",
     "riskwatch:input_rejected_ratio:rate5m > 0.05",
     "10m", "warning",
     "more than 5% of the input records of {{ $labels.instance }} are rejected",
     "riskwatchrejectedratiospike"),
    ("RiskwatchKafkaDeliveryFailures",
     KAFKA_SINK_FAILURES.format(w="5m") + " > 0",
     "0m", "critical",
     "the producer of {{ $labels.instance }} failed to deliver records to {{ $labels.topic }}",
     "riskwatchkafkadeliveryfailures"),
    ("RiskwatchDeliveryFailureRatio",
     "riskwatch:delivery_failure_ratio:rate5m > 0.1",
     "10m", "warning",
     "more than 10% of the webhook attempts of {{ $labels.instance }} to "
     "{{ $labels.endpoint }} fail",
     "riskwatchdeliveryfailureratio"),
    ("RiskwatchDeadLettersRising",
     "sum by (instance, endpoint) "
     "(increase(riskwatch_delivery_attempts_total{outcome=\"dead\"}[10m])) > 0",
     "0m", "warning",
     "webhook events to {{ $labels.endpoint }} are being dead-lettered on {{ $labels.instance }}",
     "riskwatchdeadlettersrising"),
    ("RiskwatchCheckpointFailing",
     "sum by (instance) (increase(riskwatch_checkpoint_failures_total[10m])) > 0",
     "0m", "critical",
     "a checkpoint commit of {{ $labels.instance }} failed",
     "riskwatchcheckpointfailing"),
    # Commits happened in this process (the counter is above 0) but none in 15 minutes; a
    # live run commits every --checkpoint-every of wall time (default 5 s).
    ("RiskwatchCheckpointStalled",
     "sum by (instance) (increase(riskwatch_checkpoint_commits_total[15m])) == 0"
     " and sum by (instance) (riskwatch_checkpoint_commits_total) > 0",
     "5m", "warning",
     "{{ $labels.instance }} has not committed a checkpoint for 15 minutes",
     "riskwatchcheckpointstalled"),
]


# promtool unit tests (dashboards/rules/tests.yml): per alerting rule, input series (1m
# apart), the evaluation time at which it must fire, and the labels it fires with.
I = 'instance="rw-0:9187", job="riskwatch"'
HOOK = 'sink="webhook", endpoint="collections"'
ALERT_TESTS = {
    "RiskwatchDown": (
        [(f"up{{{I}}}", "0x15")], "5m", {"instance": "rw-0:9187", "job": "riskwatch"}),
    "RiskwatchConsumerLagGrowing": (
        [(f'riskwatch_input_consumer_lag_records{{{I}, stream="transactions", partition="0"}}',
          "20000+1000x40")],
        "25m", {"instance": "rw-0:9187", "stream": "transactions", "partition": "0"}),
    "RiskwatchWatermarkStalled": (
        [(f'riskwatch_input_watermark_delay_seconds{{{I}, worker="0"}}', "700+60x20")],
        "10m", {"instance": "rw-0:9187"}),
    # Every batch between 250 ms and 500 ms: the p99 is in that bucket.
    "RiskwatchOutputLatencyHigh": (
        [(f'riskwatch_output_latency_seconds_bucket{{{I}, le="{le}"}}',
          "0+100x40" if le in ("0.5", "1", "+Inf") else "0x40")
         for le in ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "+Inf")],
        "25m", {"instance": "rw-0:9187"}),
    "RiskwatchRejectedRatioSpike": (
        [(f'riskwatch_input_records_total{{{I}, stream="transactions"}}', "0+1000x40"),
         (f'riskwatch_input_rejected_records_total{{{I}, reason="json"}}', "0+100x40")],
        "25m", {"instance": "rw-0:9187"}),
    "RiskwatchKafkaDeliveryFailures": (
        [(f'riskwatch_kafka_sink_records_total{{{I}, topic="riskwatch.alerts"}}', "0+100x10"),
         (f'riskwatch_kafka_sink_delivery_failures_total{{{I}, topic="riskwatch.alerts"}}',
          "0 0 0 5 5 5 5 5 5 5")],
        "5m", {"instance": "rw-0:9187", "topic": "riskwatch.alerts"}),
    # 20% of the attempts are retried.
    "RiskwatchDeliveryFailureRatio": (
        [(f'riskwatch_delivery_attempts_total{{{I}, {HOOK}, outcome="delivered"}}', "0+80x40"),
         (f'riskwatch_delivery_attempts_total{{{I}, {HOOK}, outcome="retried"}}', "0+20x40"),
         (f'riskwatch_delivery_attempts_total{{{I}, {HOOK}, outcome="dead"}}', "0x40")],
        "25m", {"instance": "rw-0:9187", "sink": "webhook", "endpoint": "collections"}),
    "RiskwatchDeadLettersRising": (
        [(f'riskwatch_delivery_attempts_total{{{I}, {HOOK}, outcome="delivered"}}', "0+50x10"),
         (f'riskwatch_delivery_attempts_total{{{I}, {HOOK}, outcome="dead"}}',
          "0 0 0 2 2 2 2 2 2 2")],
        "5m", {"instance": "rw-0:9187", "endpoint": "collections"}),
    "RiskwatchCheckpointFailing": (
        [(f"riskwatch_checkpoint_commits_total{{{I}}}", "0+12x3 36x6"),
         (f"riskwatch_checkpoint_failures_total{{{I}}}", "0 0 0 1 1 1 1 1 1 1")],
        "5m", {"instance": "rw-0:9187"}),
    # 12 commits a minute for 30 minutes, then none.
    "RiskwatchCheckpointStalled": (
        [(f"riskwatch_checkpoint_commits_total{{{I}}}", "0+12x30 360x40")],
        "55m", {"instance": "rw-0:9187"}),
}

# Healthy inputs under which an alert must not fire: (why, input series, evaluation time).
QUIET_TESTS = {
    "RiskwatchOutputLatencyHigh": (
        "every batch within 25 ms",
        [(f'riskwatch_output_latency_seconds_bucket{{{I}, le="{le}"}}',
          "0x40" if le in ("0.005", "0.01") else "0+100x40")
         for le in ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "+Inf")],
        "25m"),
    "RiskwatchKafkaDeliveryFailures": (
        "records produced, none failed",
        [(f'riskwatch_kafka_sink_records_total{{{I}, topic="riskwatch.alerts"}}', "0+100x10"),
         (f'riskwatch_kafka_sink_delivery_failures_total{{{I}, topic="riskwatch.alerts"}}',
          "0x10")],
        "5m"),
    "RiskwatchDeliveryFailureRatio": (
        "5% of the attempts retried",
        [(f'riskwatch_delivery_attempts_total{{{I}, {HOOK}, outcome="delivered"}}', "0+95x40"),
         (f'riskwatch_delivery_attempts_total{{{I}, {HOOK}, outcome="retried"}}', "0+5x40"),
         (f'riskwatch_delivery_attempts_total{{{I}, {HOOK}, outcome="dead"}}', "0x40")],
        "25m"),
    "RiskwatchDeadLettersRising": (
        "retries but no dead letter",
        [(f'riskwatch_delivery_attempts_total{{{I}, {HOOK}, outcome="retried"}}', "0+5x20"),
         (f'riskwatch_delivery_attempts_total{{{I}, {HOOK}, outcome="dead"}}', "0x20")],
        "15m"),
    "RiskwatchCheckpointStalled": (
        "a commit every 5 s",
        [(f"riskwatch_checkpoint_commits_total{{{I}}}", "0+12x60")],
        "55m"),
}


def render(template, labels):
    return re.sub(r"\{\{ \$labels\.([a-z_]+) \}\}", lambda m: labels[m.group(1)], template)


def tests_yaml():
    out = [
        "# Generated by dashboards/generate.py; run with `promtool test rules tests.yml`.",
        "rule_files:",
        "  - riskwatch.rules.yml",
        "evaluation_interval: 1m",
        "tests:",
    ]
    for name, _, _, sev, summary, anchor in ALERTING:
        series, at, labels = ALERT_TESTS[name]
        out += [f"  # {name} fires.", "  - interval: 1m", "    input_series:"]
        for s, values in series:
            out += [f"      - series: {yaml_str(s)}", f"        values: {yaml_str(values)}"]
        out += ["    alert_rule_test:", f"      - eval_time: {at}", f"        alertname: {name}",
                "        exp_alerts:", "          - exp_labels:",
                f"              severity: {sev}"]
        out += [f"              {k}: {yaml_str(v)}" for k, v in sorted(labels.items())]
        out += ["            exp_annotations:",
                f"              summary: {yaml_str(render(summary, labels))}",
                f"              runbook_url: {yaml_str(RUNBOOK + '#' + anchor)}"]
        # And not at the start: its `for` holds it back.
        out += ["      - eval_time: 0m", f"        alertname: {name}", "        exp_alerts: []"]
    for name, (why, series, at) in QUIET_TESTS.items():
        out += [f"  # {name} stays quiet: {why}.", "  - interval: 1m", "    input_series:"]
        for s, values in series:
            out += [f"      - series: {yaml_str(s)}", f"        values: {yaml_str(values)}"]
        out += ["    alert_rule_test:", f"      - eval_time: {at}", f"        alertname: {name}",
                "        exp_alerts: []"]
    return "\n".join(out) + "\n"


def yaml_str(s):
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(s)


def rules_yaml():
    out = [
        "# Generated by dashboards/generate.py; edit that file, then run it.",
        "groups:",
        "  - name: riskwatch.recording",
        "    rules:",
    ]
    for name, expr in RECORDING:
        out += [f"      - record: {name}", f"        expr: {yaml_str(expr)}"]
    out += ["  - name: riskwatch.alerting", "    rules:"]
    for name, expr, for_, sev, summary, anchor in ALERTING:
        out += [
            f"      - alert: {name}",
            f"        expr: {yaml_str(expr)}",
            f"        for: {for_}",
            "        labels:",
            f"          severity: {sev}",
            "        annotations:",
            f"          summary: {yaml_str(summary)}",
            f"          runbook_url: {yaml_str(RUNBOOK + '#' + anchor)}",
        ]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- dashboards
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


class Board:
    def __init__(self, uid, title, description):
        self.uid, self.title, self.description = uid, title, description
        self.panels, self.next_id, self.y = [], 1, 0

    def row(self, title):
        if getattr(self, "x", 0):  # the last row of panels is not full: start below it
            self.y += 8
        self.panels.append({"type": "row", "id": self.next_id, "title": title,
                            "collapsed": False,
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
                            "panels": []})
        self.next_id += 1
        self.y += 1
        self.x = 0

    def panel(self, title, description, unit, targets, kind="timeseries", width=12,
              stack=False):
        if self.x + width > 24:
            self.x, self.y = 0, self.y + 8
        p = {
            "type": kind,
            "id": self.next_id,
            "title": title,
            "description": description,
            "datasource": DATASOURCE,
            "gridPos": {"h": 8, "w": width, "x": self.x, "y": self.y},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom",
                                   "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "desc"}},
            "targets": [
                {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr,
                 "legendFormat": legend, "range": True}
                for i, (expr, legend) in enumerate(targets)
            ],
        }
        if stack:
            p["fieldConfig"]["defaults"]["custom"] = {"stacking": {"mode": "normal"},
                                                      "fillOpacity": 30}
        self.panels.append(p)
        self.next_id += 1
        self.x += width
        if self.x >= 24:
            self.x, self.y = 0, self.y + 8

    def json(self):
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["riskwatch"],
            "timezone": "utc",
            "schemaVersion": 39,
            "version": 1,
            "editable": False,
            "refresh": "30s",
            "time": {"from": "now-6h", "to": "now"},
            "templating": {"list": [{
                "name": "datasource", "label": "Data source", "type": "datasource",
                "query": "prometheus", "current": {}, "hide": 0,
            }]},
            "annotations": {"list": []},
            "links": [],
            "panels": self.panels,
        }


def rate(metric, by, extra=""):
    return f"sum by ({by}) (rate({metric}{extra}[{RATE}]))"


def increase(metric, by, extra=""):
    return f"sum by ({by}) (increase({metric}{extra}[{RATE}]))"


def risk_operations():
    b = Board("riskwatch-risk-operations", "riskwatch / Risk operations",
              "What the strategies decide: alerts, the level mix and its transitions, limit and "
              "pricing actions, collection cases, fraud rings and rejected input, with champion "
              "and challengers side by side.")
    b.row("Alerts")
    b.panel("Alerts by rule", "Alerts produced per second, by rule (all strategies).", "cps",
            [(rate("riskwatch_output_alerts_total", "rule"), "{{rule}}")], stack=True)
    b.panel("Alerts by severity", "Alerts produced per second, by severity.", "cps",
            [(rate("riskwatch_output_alerts_total", "severity"), "{{severity}}")], stack=True)
    b.row("Level mix")
    b.panel("Customers per level", "Customers at each risk level 0-4, per strategy "
            "(the current level mix).", "short",
            [("sum by (strategy, level) (riskwatch_strategy_customers)",
              "{{strategy}} level {{level}}")], stack=True)
    b.panel("Level transitions", "Customers changing risk level per second, by strategy and "
            "the levels before and after (from -> to).", "cps",
            [(rate("riskwatch_strategy_level_transitions_total", "strategy, from, to"),
              "{{strategy}} {{from}}->{{to}}")])
    b.row("Decisions")
    b.panel("Decisions by kind", "Limit and pricing decisions per second, by kind and strategy.",
            "cps", [(rate("riskwatch_output_decisions_total", "kind, strategy"),
                     "{{strategy}} {{kind}}")], width=24, stack=True)
    b.row("Cases")
    b.panel("Case events by event and stage", "Collection case events per second, by event "
            "(opened, updated, escalated, closed) and stage (pre_collection, M1, M2, M3+, "
            "fraud).", "cps",
            [(rate("riskwatch_output_cases_total", "event, stage"), "{{event}} {{stage}}")],
            width=24, stack=True)
    b.panel("Open cases by stage", "Collection cases open now, by strategy and stage.",
            "short", [("sum by (strategy, stage) (riskwatch_cases_open)",
                       "{{strategy}} {{stage}}")], stack=True)
    b.panel("Overdue amount by stage", "Overdue amount of the open cases, by strategy and "
            "stage, in the book's minor currency units (cents, not a currency: the unit is "
            "a plain number).", "short",
            [("sum by (strategy, stage) (riskwatch_cases_overdue_amount)",
              "{{strategy}} {{stage}}")], stack=True)
    b.row("Fraud rings")
    b.panel("Active rings", "Rings now: groups of customers linked by shared devices, IPs or "
            "phones, of at least rings.min_ring_size customers.", "short",
            [("sum by (instance) (riskwatch_rings_active)", "{{instance}}")])
    b.panel("Ring members", "Customers that belong to a ring now.", "short",
            [("sum by (instance) (riskwatch_rings_members)", "{{instance}}")])
    b.row("Champion vs challenger")
    b.panel("Alert rate per strategy", "Alerts per second of each strategy: a challenger in "
            "shadow is judged on the same customers as the champion.", "cps",
            [(rate("riskwatch_output_alerts_total", "strategy"), "{{strategy}}")])
    b.panel("Decision rate per strategy", "Limit and pricing decisions per second of each "
            "strategy, by kind (a shadow strategy's decisions are recorded, not acted on).",
            "cps", [(rate("riskwatch_output_decisions_total", "strategy, kind"),
                     "{{strategy}} {{kind}}")])
    b.panel("Level share per strategy", "Share of each strategy's customers at each risk "
            "level 0-4.", "percentunit",
            [("sum by (strategy, level) (riskwatch_strategy_customers)"
              " / on (strategy) group_left"
              " clamp_min(sum by (strategy) (riskwatch_strategy_customers), 1)",
              "{{strategy}} level {{level}}")])
    b.panel("High-risk share per strategy", "Share of customers at levels 3-4, per strategy.",
            "percentunit",
            [('sum by (strategy) (riskwatch_strategy_customers{level=~"3|4"})'
              " / clamp_min(sum by (strategy) (riskwatch_strategy_customers), 1)",
              "{{strategy}}")])
    b.row("Rejected input")
    b.panel("Rejected by reason", "Input records rejected by the contract checks per second, "
            "by reason code (the records are on the dead-letter topic or in rejected.ndjson).",
            "cps",
            [(rate("riskwatch_input_rejected_records_total", "reason"), "{{reason}}")],
            stack=True)
    b.panel("Rejected ratio", "Rejected records over records read (5 minute rate, recording "
            "rule); RiskwatchRejectedRatioSpike fires above 5%.", "percentunit",
            [("riskwatch:input_rejected_ratio:rate5m", "{{instance}}")])
    return b.json()


def pipeline_health():
    b = Board("riskwatch-pipeline-health", "riskwatch / Pipeline health",
              "Whether riskwatch keeps up and delivers: input throughput and rejects, consumer "
              "lag, watermark delay, event-to-output latency, Kafka and webhook delivery, "
              "checkpoints, CPU, memory and file descriptors.")
    b.row("Input")
    b.panel("Throughput per stream", "Input records read per second, by stream.", "cps",
            [(rate("riskwatch_input_records_total", "stream"), "{{stream}}")], width=8)
    b.panel("Events by outcome", "Input events per second: accepted, duplicate, late, "
            "expired on arrival.", "cps",
            [(rate("riskwatch_input_events_total", "outcome"), "{{outcome}}")], width=8)
    b.panel("Rejected by reason", "Records rejected by the contract checks per second, "
            "by reason code.", "cps",
            [(rate("riskwatch_input_rejected_records_total", "reason"), "{{reason}}")],
            width=8)
    b.panel("Rejected ratio", "Rejected records over records read (5 minute rate, "
            "recording rule).", "percentunit",
            [("riskwatch:input_rejected_ratio:rate5m", "{{instance}}")])
    b.panel("Frontier age", "Wall clock minus the event time up to which input is complete.",
            "s", [("time() - riskwatch_input_frontier_seconds", "{{instance}}")])
    b.row("Lag and watermark")
    b.panel("Consumer lag per partition", "Records between the next offset to consume and the "
            "high watermark (Kafka mode).", "short",
            [("sum by (stream, partition) (riskwatch_input_consumer_lag_records)",
              "{{stream}}/{{partition}}")], width=8)
    b.panel("Watermark delay", "Wall clock minus each worker's input frontier (Kafka mode).",
            "s", [("max by (instance, worker) (riskwatch_input_watermark_delay_seconds)",
                   "{{instance}} w{{worker}}")], width=8)
    b.panel("Backpressure", "Workers whose partitions are paused by backpressure (Kafka mode).",
            "short", [("sum by (instance) (riskwatch_kafka_source_paused)", "{{instance}}")],
            width=8)
    b.row("Latency")
    b.panel("Event-to-output latency", "p50 and p99 from an input batch entering the dataflow "
            "to its outputs being handed to the sinks (Kafka mode). The live target is 25 ms; "
            "RiskwatchOutputLatencyHigh fires at a p99 over 250 ms.", "s",
            [("histogram_quantile(0.5, sum by (le) (rate("
              f"riskwatch_output_latency_seconds_bucket[{RATE}])))", "p50"),
             ("histogram_quantile(0.99, sum by (le) (rate("
              f"riskwatch_output_latency_seconds_bucket[{RATE}])))", "p99")])
    b.panel("Outputs", "Output records handed to the sinks per second.", "cps",
            [(rate("riskwatch_output_records_total", "output"), "{{output}}")])
    b.row("Delivery")
    b.panel("Kafka producer failures", "Records the Kafka producer gave up on, per topic and "
            "interval (each stops riskwatch; Kafka mode).", "short",
            [(KAFKA_SINK_FAILURES.format(w=RATE), "{{instance}} {{topic}}")], width=8)
    b.panel("Webhook attempts by outcome", "Webhook delivery attempts per second, by endpoint "
            "and outcome: delivered (2xx), retried (transient failure), dead (dead-lettered).",
            "cps", [(rate("riskwatch_delivery_attempts_total", "endpoint, outcome"),
                     "{{endpoint}} {{outcome}}")], width=8, stack=True)
    b.panel("Webhook retries and dead letters", "Webhook attempts retried or dead-lettered, "
            "per endpoint and interval.", "short",
            [(increase("riskwatch_delivery_attempts_total", "endpoint, outcome",
                       '{outcome=~"retried|dead"}'), "{{endpoint}} {{outcome}}")], width=8)
    b.panel("Webhook failure ratio", "Retried and dead-lettered attempts over all attempts, "
            "per endpoint (5 minute rate, recording rule); RiskwatchDeliveryFailureRatio fires "
            "above 10%.", "percentunit",
            [("riskwatch:delivery_failure_ratio:rate5m", "{{instance}} {{endpoint}}")])
    b.panel("Outbox depth", "Webhook events waiting in the outbox per endpoint, not yet "
            "delivered or dead-lettered.", "short",
            [("sum by (instance, endpoint) (riskwatch_delivery_outbox_events)",
              "{{instance}} {{endpoint}}")])
    b.row("Checkpoints")
    b.panel("Checkpoint duration", "p50 and p99 time to write and sync one checkpoint's batch "
            "(5 minute window, recording rules).", "s",
            [("riskwatch:checkpoint_duration_seconds:p50_5m", "{{instance}} p50"),
             ("riskwatch:checkpoint_duration_seconds:p99_5m", "{{instance}} p99")], width=6)
    b.panel("Checkpoint commits and failures", "Checkpoints committed and commits failed per "
            "interval (a failure stops the run; the previous checkpoint stays intact).",
            "short",
            [(increase("riskwatch_checkpoint_commits_total", "instance"),
              "{{instance}} commits"),
             (increase("riskwatch_checkpoint_failures_total", "instance"),
              "{{instance}} failures")], width=6)
    b.panel("Checkpoint bytes written", "Bytes of checkpoint batches written per second.",
            "Bps", [(rate("riskwatch_checkpoint_written_bytes_total", "instance"),
                     "{{instance}}")], width=6)
    b.panel("State size", "Size of the state directory on disk after the last checkpoint.",
            "bytes", [("sum by (instance) (riskwatch_checkpoint_state_bytes)", "{{instance}}")],
            width=6)
    b.row("Process")
    b.panel("CPU", "CPU seconds per second of each process.", "percentunit",
            [(f'rate(process_cpu_seconds_total{{job="riskwatch"}}[{RATE}])', "{{instance}}")],
            width=6)
    b.panel("Memory", "Resident memory of each process.", "bytes",
            [('process_resident_memory_bytes{job="riskwatch"}', "{{instance}}")], width=6)
    b.panel("Open file descriptors", "Open file descriptors of each process (RocksDB files, "
            "sockets, input files); the limit is process_max_fds.", "short",
            [('process_open_fds{job="riskwatch"}', "{{instance}}")], width=6)
    b.panel("Up", "1 while Prometheus scrapes the process.", "short",
            [('up{job="riskwatch"}', "{{instance}}")], width=6)
    return b.json()


def outputs():
    return {
        HERE / "risk-operations.json": json.dumps(risk_operations(), indent=2) + "\n",
        HERE / "pipeline-health.json": json.dumps(pipeline_health(), indent=2) + "\n",
        HERE / "rules" / "riskwatch.rules.yml": rules_yaml(),
        HERE / "rules" / "tests.yml": tests_yaml(),
    }


# The metrics the dashboards and rules use that only have data in Kafka mode (fed_in "kafka"
# in model/src/metrics.rs; --check fails when this set and the catalogue disagree). A query
# naming one, directly or through a recording rule, is Kafka-only: scripts/lib/prom-queries.py
# lets it return no series in files mode and requires series in Kafka mode. The delivery
# (webhook) and checkpoint (state) metrics are not here: a files-mode run with a state
# directory and a [[webhook]] endpoint feeds them too.
KAFKA_ONLY = {
    "riskwatch_input_consumer_lag_records",
    "riskwatch_input_watermark_delay_seconds",
    "riskwatch_output_latency_seconds",
    "riskwatch_kafka_source_paused",
    "riskwatch_kafka_sink_records_total",
    "riskwatch_kafka_sink_delivery_failures_total",
}


def metric_names(expr):
    names = set(re.findall(r"\b((?:riskwatch|process)_[a-z_]+|up)\b(?!\s*\()", expr))
    return {re.sub(r"_(bucket|sum|count)$", "", n) if n.endswith(("_bucket", "_sum", "_count"))
            and not n.endswith("_total") else n for n in names}


def queries():
    """Every panel query and rule expression: (where, expr, kafka_only)."""
    out = []
    for board in (risk_operations(), pipeline_health()):
        for p in board["panels"]:
            for t in p.get("targets", []):
                out.append((f"{board['uid']} / {p['title']} / {t['refId']}", t["expr"]))
    for name, expr in RECORDING:
        out.append((f"record {name}", expr))
    for name, expr, *_ in ALERTING:
        out.append((f"alert {name}", expr))
    recorded = {n: e for n, e in RECORDING}

    def kafka_only(expr):
        names = metric_names(expr)
        for r, e in recorded.items():
            if r in expr:
                names |= metric_names(e)
        return bool(names & KAFKA_ONLY)
    return [(w, e, kafka_only(e)) for w, e in out]


def runbook_anchors():
    """GitHub's anchors of the headings of docs/operations.md."""
    text = (ROOT / "docs" / "operations.md").read_text()
    return {re.sub(r"[^a-z0-9 _-]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", text, re.M)}


def check():
    errors = []
    for path, text in outputs().items():
        if not path.exists() or path.read_text() != text:
            errors.append(f"{path.relative_to(ROOT)} differs from what generate.py writes "
                          "(run python3 dashboards/generate.py)")
    entries = catalogue_entries()
    known = {n: k for n, (k, _) in entries.items()}
    recorded = {n for n, _ in RECORDING}
    used = set().union(*(metric_names(e) for _, e, _ in queries()))
    kafka_fed = {n for n in used if entries.get(n, ("", ""))[1] == "kafka"}
    for n in sorted(kafka_fed - KAFKA_ONLY):
        errors.append(f"{n} is fed in Kafka mode only (model/src/metrics.rs): add it to "
                      "KAFKA_ONLY")
    for n in sorted(KAFKA_ONLY - kafka_fed):
        errors.append(f"KAFKA_ONLY names {n}, which no query uses or which is not fed in "
                      "Kafka mode only")
    names = [a[0] for a in ALERTING]
    if set(names) != set(ALERT_TESTS) or len(names) != len(set(names)):
        errors.append("every alerting rule needs exactly one test in ALERT_TESTS")
    for n in sorted(set(QUIET_TESTS) - set(names)):
        errors.append(f"QUIET_TESTS names {n}, which is not an alerting rule")
    anchors = runbook_anchors()
    for name, *_, anchor in ALERTING:
        if anchor not in anchors:
            errors.append(f"alert {name}: no section #{anchor} in docs/operations.md")
    for board in (risk_operations(), pipeline_health()):
        ids = [p["id"] for p in board["panels"]]
        if len(ids) != len(set(ids)):
            errors.append(f"{board['uid']}: panel ids repeat")
        cells = {}
        for p in board["panels"]:
            g = p["gridPos"]
            for cell in ((x, y) for x in range(g["x"], g["x"] + g["w"])
                         for y in range(g["y"], g["y"] + g["h"])):
                if cell in cells:
                    errors.append(f"{board['uid']} / {p['title']}: overlaps {cells[cell]}")
                    break
                cells[cell] = p["title"]
        for p in board["panels"]:
            if p["type"] != "row" and not p.get("description"):
                errors.append(f"{board['uid']} / {p['title']}: no description")
            if p["type"] != "row" and not p["fieldConfig"]["defaults"].get("unit"):
                errors.append(f"{board['uid']} / {p['title']}: no unit")
    for where, expr, _ in queries():
        for n in metric_names(expr):
            if n not in known and n not in BUILTIN:
                errors.append(f"{where}: metric {n} is not in model/src/metrics.rs")
        if "rate(" in expr and where.startswith("riskwatch-") and RATE not in expr:
            errors.append(f"{where}: rates use {RATE}")
        for r in re.findall(r"riskwatch:[a-z0-9_:]+", expr):
            if r not in recorded:
                errors.append(f"{where}: recording rule {r} is not defined")
    for e in errors:
        print(f"generate.py --check: {e}", file=sys.stderr)
    return 1 if errors else 0


def main(argv):
    if "--check" in argv:
        return check()
    if "--queries" in argv:
        print(json.dumps([{"where": w, "expr": e, "kafka_only": k} for w, e, k in queries()],
                         indent=1))
        return 0
    for path, text in outputs().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
