#!/usr/bin/env python3
"""Generates riskwatch's Grafana dashboards and Prometheus rules from one description.

Writes (standard library only):
  dashboards/risk-operations.json     alerts, level mix, decisions, cases, champion vs challenger
  dashboards/pipeline-health.json     throughput, rejects, lag, watermark, latency, CPU, memory
  dashboards/rules/riskwatch.rules.yml  recording and alerting rules (runbooks in docs/operations.md)

  python3 dashboards/generate.py           write the files
  python3 dashboards/generate.py --check   fail if a committed file differs from what this
                                           writes, a panel id repeats, or a query names a
                                           metric missing from model/src/metrics.rs
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
    text = CATALOGUE_RS.read_text()
    found = re.findall(r'm\(\s*"([a-z_:]+)",\s*(Counter|Gauge|Histogram)', text)
    if not found:
        sys.exit(f"no metrics found in {CATALOGUE_RS}")
    return {name: kind for name, kind in found}


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
]

# (name, expr, for, severity, summary, runbook anchor, fed only in Kafka mode)
ALERTING = [
    ("RiskwatchDown",
     'up{job="riskwatch"} == 0',
     "1m", "critical",
     "riskwatch process {{ $labels.instance }} is down or not serving /metrics",
     "riskwatchdown", False),
    ("RiskwatchConsumerLagGrowing",
     "sum by (instance, stream, partition) (riskwatch_input_consumer_lag_records) > 10000"
     " and sum by (instance, stream, partition)"
     " (deriv(riskwatch_input_consumer_lag_records[10m])) > 0",
     "10m", "warning",
     "consumer lag of {{ $labels.stream }}/{{ $labels.partition }} is over 10000 records and growing",
     "riskwatchconsumerlaggrowing", True),
    ("RiskwatchWatermarkStalled",
     "max by (instance) (riskwatch_input_watermark_delay_seconds) > 600",
     "5m", "warning",
     "the input watermark of {{ $labels.instance }} is more than 10 minutes behind the wall clock",
     "riskwatchwatermarkstalled", True),
    ("RiskwatchOutputLatencyHigh",
     "riskwatch:output_latency_seconds:p99_5m > 0.5",
     "10m", "warning",
     "event-to-output p99 latency of {{ $labels.instance }} is over 500 ms",
     "riskwatchoutputlatencyhigh", True),
    ("RiskwatchRejectedRatioSpike",
     "riskwatch:input_rejected_ratio:rate5m > 0.05",
     "10m", "warning",
     "more than 5% of the input records of {{ $labels.instance }} are rejected",
     "riskwatchrejectedratiospike", False),
    ("RiskwatchDeliveryFailures",
     "sum by (instance, topic) (increase(riskwatch_kafka_sink_delivery_failures_total[5m])) > 0",
     "0m", "critical",
     "the producer of {{ $labels.instance }} failed to deliver records to {{ $labels.topic }}",
     "riskwatchdeliveryfailures", True),
]


# promtool unit tests (dashboards/rules/tests.yml): per alerting rule, input series (1m
# apart), the evaluation time at which it must fire, and the labels it fires with.
I = 'instance="rw-0:9187", job="riskwatch"'
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
    "RiskwatchOutputLatencyHigh": (
        [(f'riskwatch_output_latency_seconds_bucket{{{I}, le="{le}"}}',
          "0+100x40" if le in ("1", "+Inf") else "0x40")
         for le in ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "+Inf")],
        "25m", {"instance": "rw-0:9187"}),
    "RiskwatchRejectedRatioSpike": (
        [(f'riskwatch_input_records_total{{{I}, stream="transactions"}}', "0+1000x40"),
         (f'riskwatch_input_rejected_records_total{{{I}, reason="json"}}', "0+100x40")],
        "25m", {"instance": "rw-0:9187"}),
    "RiskwatchDeliveryFailures": (
        [(f'riskwatch_kafka_sink_delivery_failures_total{{{I}, topic="riskwatch.alerts"}}',
          "0 0 0 5 5 5 5 5 5 5")],
        "5m", {"instance": "rw-0:9187", "topic": "riskwatch.alerts"}),
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
    for name, _, _, sev, summary, anchor, _ in ALERTING:
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
    for name, expr, for_, sev, summary, anchor, _ in ALERTING:
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


def risk_operations():
    b = Board("riskwatch-risk-operations", "riskwatch / Risk operations",
              "What the strategies decide: alerts, the level mix, limit and pricing actions and "
              "collection cases, with champion and challengers side by side.")
    b.row("Alerts")
    b.panel("Alerts by rule", "Alerts produced per second, by rule (all strategies).", "cps",
            [(rate("riskwatch_output_alerts_total", "rule"), "{{rule}}")], stack=True)
    b.panel("Alerts by severity", "Alerts produced per second, by severity.", "cps",
            [(rate("riskwatch_output_alerts_total", "severity"), "{{severity}}")], stack=True)
    b.row("Level mix")
    b.panel("Customers per level", "Customers at each risk level 0-4, per strategy "
            "(the current level mix).", "short",
            [("sum by (strategy, level) (riskwatch_strategy_customers)",
              "{{strategy}} level {{level}}")], width=24, stack=True)
    b.row("Decisions")
    b.panel("Decisions by kind", "Limit and pricing decisions per second, by kind and strategy.",
            "cps", [(rate("riskwatch_output_decisions_total", "kind, strategy"),
                     "{{strategy}} {{kind}}")], width=24, stack=True)
    b.row("Cases")
    b.panel("Case events by stage", "Collection case events per second, by stage.", "cps",
            [(rate("riskwatch_output_cases_total", "stage"), "{{stage}}")], stack=True)
    b.panel("Case events by event", "Collection case events per second, by event "
            "(opened, escalated, closed …).", "cps",
            [(rate("riskwatch_output_cases_total", "event"), "{{event}}")], stack=True)
    b.row("Champion vs challenger")
    b.panel("Alert rate per strategy", "Alerts per second of each strategy: a challenger in "
            "shadow is judged on the same customers as the champion.", "cps",
            [(rate("riskwatch_output_alerts_total", "strategy"), "{{strategy}}")])
    b.panel("High-risk share per strategy", "Share of customers at levels 3-4, per strategy.",
            "percentunit",
            [('sum by (strategy) (riskwatch_strategy_customers{level=~"3|4"})'
              " / clamp_min(sum by (strategy) (riskwatch_strategy_customers), 1)",
              "{{strategy}}")])
    return b.json()


def pipeline_health():
    b = Board("riskwatch-pipeline-health", "riskwatch / Pipeline health",
              "Whether riskwatch keeps up: input throughput and rejects, consumer lag, watermark "
              "delay, event-to-output latency, CPU and memory.")
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
              "{{stream}}/{{partition}}")])
    b.panel("Watermark delay", "Wall clock minus each worker's input frontier (Kafka mode).",
            "s", [("max by (instance, worker) (riskwatch_input_watermark_delay_seconds)",
                   "{{instance}} w{{worker}}")])
    b.row("Latency")
    b.panel("Event-to-output latency", "p50 and p99 from an input batch entering the dataflow "
            "to its outputs being handed to the sinks (Kafka mode).", "s",
            [("histogram_quantile(0.5, sum by (le) (rate("
              f"riskwatch_output_latency_seconds_bucket[{RATE}])))", "p50"),
             ("histogram_quantile(0.99, sum by (le) (rate("
              f"riskwatch_output_latency_seconds_bucket[{RATE}])))", "p99")])
    b.panel("Outputs", "Output records handed to the sinks per second.", "cps",
            [(rate("riskwatch_output_records_total", "output"), "{{output}}")])
    b.row("Kafka")
    b.panel("Backpressure", "Workers whose partitions are paused by backpressure (Kafka mode).",
            "short", [("sum by (instance) (riskwatch_kafka_source_paused)", "{{instance}}")])
    b.panel("Delivery failures", "Records the producer gave up on (each stops riskwatch).",
            "short", [("sum by (topic) (increase(riskwatch_kafka_sink_delivery_failures_total"
                       f"[{RATE}]))", "{{topic}}")])
    b.row("Process")
    b.panel("CPU", "CPU seconds per second of each process.", "percentunit",
            [(f'rate(process_cpu_seconds_total{{job="riskwatch"}}[{RATE}])', "{{instance}}")],
            width=8)
    b.panel("Memory", "Resident memory of each process.", "bytes",
            [('process_resident_memory_bytes{job="riskwatch"}', "{{instance}}")], width=8)
    b.panel("Up", "1 while Prometheus scrapes the process.", "short",
            [('up{job="riskwatch"}', "{{instance}}")], width=8)
    return b.json()


def outputs():
    return {
        HERE / "risk-operations.json": json.dumps(risk_operations(), indent=2) + "\n",
        HERE / "pipeline-health.json": json.dumps(pipeline_health(), indent=2) + "\n",
        HERE / "rules" / "riskwatch.rules.yml": rules_yaml(),
        HERE / "rules" / "tests.yml": tests_yaml(),
    }


# Queries expected to return no series outside Kafka mode (scripts/observability-test.sh).
KAFKA_ONLY = {"riskwatch_input_consumer_lag_records", "riskwatch_input_watermark_delay_seconds",
              "riskwatch_kafka_source_paused", "riskwatch_kafka_sink_delivery_failures_total"}


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


def check():
    errors = []
    for path, text in outputs().items():
        if not path.exists() or path.read_text() != text:
            errors.append(f"{path.relative_to(ROOT)} differs from what generate.py writes "
                          "(run python3 dashboards/generate.py)")
    known = catalogue()
    recorded = {n for n, _ in RECORDING}
    for board in (risk_operations(), pipeline_health()):
        ids = [p["id"] for p in board["panels"]]
        if len(ids) != len(set(ids)):
            errors.append(f"{board['uid']}: panel ids repeat")
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
