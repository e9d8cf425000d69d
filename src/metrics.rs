//! The process's Prometheus registry and its HTTP endpoint: every metric of
//! [`riskwatch_model::metrics::CATALOGUE`] registered once, and `/metrics` (text format),
//! `/health` and `/ready` served with axum on `--metrics-addr`.
//!
//! ```text
//!  worker loop (Kafka, per second) ─┐
//!  writer + summary (files) ────────┼─▶ Metrics (handles bound once) ─▶ Registry ─▶ GET /metrics
//!  KafkaSource / KafkaSink (batch) ─┘                                   process collector
//! ```
//!
//! Nothing here runs per record: Kafka runs add the difference of the dataflow's [`Stats`]
//! and the sinks' output counts about once a second; files runs add their outputs as the
//! writer writes them, and the run's summary once it ends.

use crate::output_counts::OutputCounts;
use crate::pipeline::RunOutput;
use crate::replay::Summary;
use anyhow::Context;
use prometheus::core::Collector;
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec,
    Opts, Registry, TextEncoder,
};
use riskwatch_connectors::kafka::KafkaMetrics;
use riskwatch_connectors::webhook::EndpointSnapshot;
use riskwatch_dataflows::plan::Compiled;
use riskwatch_dataflows::stats::{Stats, StrategyGauges};
use riskwatch_model::event::Stream;
use riskwatch_model::metrics::{find, MetricKind, CATALOGUE, LATENCY_BUCKETS};
use riskwatch_model::output::CaseStage;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Every riskwatch metric, registered in one registry. Cloning shares the same series.
#[derive(Clone)]
pub struct Metrics {
    /// The registry `/metrics` gathers.
    pub registry: Registry,
    /// `riskwatch_input_records_total{stream}`.
    pub records: IntCounterVec,
    /// `riskwatch_input_events_total{stream, outcome}`.
    pub events: IntCounterVec,
    /// `riskwatch_input_rejected_records_total{reason}`.
    pub rejected: IntCounterVec,
    /// `riskwatch_input_consumer_lag_records{stream, partition}`.
    pub lag: IntGaugeVec,
    /// `riskwatch_input_watermark_delay_seconds{worker}`.
    pub watermark_delay: GaugeVec,
    /// `riskwatch_input_frontier_seconds`.
    pub frontier: Gauge,
    /// `riskwatch_output_latency_seconds`.
    pub latency: Histogram,
    /// `riskwatch_output_alerts_total{rule, severity, strategy}`.
    pub alerts: IntCounterVec,
    /// `riskwatch_output_decisions_total{kind, strategy}`.
    pub decisions: IntCounterVec,
    /// `riskwatch_output_cases_total{event, stage, strategy}`.
    pub cases: IntCounterVec,
    /// `riskwatch_output_records_total{output}`.
    pub outputs: IntCounterVec,
    /// `riskwatch_strategy_customers{level, strategy}`.
    pub customers: IntGaugeVec,
    /// `riskwatch_strategy_evaluations_total`.
    pub evaluations: IntCounter,
    /// `riskwatch_strategy_level_transitions_total{strategy, from, to}`.
    pub transitions: IntCounterVec,
    /// `riskwatch_cases_open{strategy, stage}`.
    pub cases_open: IntGaugeVec,
    /// `riskwatch_cases_overdue_amount{strategy, stage}`.
    pub overdue: IntGaugeVec,
    /// `riskwatch_rings_active`.
    pub rings: prometheus::IntGauge,
    /// `riskwatch_rings_members`.
    pub ring_members: prometheus::IntGauge,
    /// `riskwatch_delivery_attempts_total{sink, endpoint, outcome}`.
    pub delivery_attempts: IntCounterVec,
    /// `riskwatch_delivery_outbox_events{sink, endpoint}`.
    pub outbox_events: IntGaugeVec,
    /// `riskwatch_checkpoint_commits_total`.
    pub checkpoint_commits: IntCounter,
    /// `riskwatch_checkpoint_failures_total`.
    pub checkpoint_failures: IntCounter,
    /// `riskwatch_checkpoint_duration_seconds`.
    pub checkpoint_duration: Histogram,
    /// `riskwatch_checkpoint_written_bytes_total`.
    pub checkpoint_bytes: IntCounter,
    /// `riskwatch_checkpoint_state_bytes`.
    pub state_bytes: prometheus::IntGauge,
    /// The Kafka connectors' metrics, in the same registry.
    pub kafka: KafkaMetrics,
    /// Set once the pipeline runs (restored, consuming): `/ready` answers 200 from then on
    /// while no worker is behind.
    pub ready: Arc<AtomicBool>,
    /// Kafka mode: bit `w % 64` set while worker `w`'s consumer lag on some partition is
    /// over [`READY_MAX_LAG`] records (it is catching up); `/ready` answers 503 then.
    pub behind: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// The catalogue entry `name`, checked against the kind the code registers it as.
fn spec(name: &str, kind: MetricKind) -> (&'static str, &'static [&'static str]) {
    let m = find(name).expect("every registered metric is in the catalogue (tested)");
    assert_eq!(m.kind, kind, "{name}: kind differs from the catalogue");
    (m.help, m.labels)
}

fn counter_vec(name: &str) -> prometheus::Result<IntCounterVec> {
    let (help, labels) = spec(name, MetricKind::Counter);
    IntCounterVec::new(Opts::new(name, help), labels)
}

fn int_gauge_vec(name: &str) -> prometheus::Result<IntGaugeVec> {
    let (help, labels) = spec(name, MetricKind::Gauge);
    IntGaugeVec::new(Opts::new(name, help), labels)
}

impl Metrics {
    /// Creates and registers every metric (and the process collector) in a new registry;
    /// `build_info` carries the crate version and the strategies' `name@version`.
    pub fn new(compiled: &Compiled) -> anyhow::Result<Metrics> {
        let registry = Registry::new();
        let (help, labels) = spec("riskwatch_build_info", MetricKind::Gauge);
        let build_info = IntGaugeVec::new(Opts::new("riskwatch_build_info", help), labels)?;
        let versions: Vec<String> = compiled
            .strategies
            .list
            .iter()
            .map(|s| format!("{}@{}", s.name, s.version))
            .collect();
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), versions.join(",").as_str()])
            .set(1);
        let (help, labels) = spec("riskwatch_input_watermark_delay_seconds", MetricKind::Gauge);
        let watermark_delay = GaugeVec::new(
            Opts::new("riskwatch_input_watermark_delay_seconds", help),
            labels,
        )?;
        let (help, _) = spec("riskwatch_input_frontier_seconds", MetricKind::Gauge);
        let frontier = Gauge::new("riskwatch_input_frontier_seconds", help)?;
        let (help, _) = spec("riskwatch_output_latency_seconds", MetricKind::Histogram);
        let latency = Histogram::with_opts(
            HistogramOpts::new("riskwatch_output_latency_seconds", help)
                .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        let (help, _) = spec("riskwatch_strategy_evaluations_total", MetricKind::Counter);
        let evaluations = IntCounter::new("riskwatch_strategy_evaluations_total", help)?;
        let counter = |name: &str| IntCounter::new(name, spec(name, MetricKind::Counter).0);
        let gauge = |name: &str| prometheus::IntGauge::new(name, spec(name, MetricKind::Gauge).0);
        let (help, _) = spec(
            "riskwatch_checkpoint_duration_seconds",
            MetricKind::Histogram,
        );
        let checkpoint_duration = Histogram::with_opts(
            HistogramOpts::new("riskwatch_checkpoint_duration_seconds", help).buckets(vec![
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )?;
        let (help, _) = spec("riskwatch_checkpoint_state_bytes", MetricKind::Gauge);
        let state_bytes = prometheus::IntGauge::new("riskwatch_checkpoint_state_bytes", help)?;
        let m = Metrics {
            records: counter_vec("riskwatch_input_records_total")?,
            events: counter_vec("riskwatch_input_events_total")?,
            rejected: counter_vec("riskwatch_input_rejected_records_total")?,
            lag: int_gauge_vec("riskwatch_input_consumer_lag_records")?,
            watermark_delay,
            frontier,
            latency,
            alerts: counter_vec("riskwatch_output_alerts_total")?,
            decisions: counter_vec("riskwatch_output_decisions_total")?,
            cases: counter_vec("riskwatch_output_cases_total")?,
            outputs: counter_vec("riskwatch_output_records_total")?,
            customers: int_gauge_vec("riskwatch_strategy_customers")?,
            evaluations,
            transitions: counter_vec("riskwatch_strategy_level_transitions_total")?,
            cases_open: int_gauge_vec("riskwatch_cases_open")?,
            overdue: int_gauge_vec("riskwatch_cases_overdue_amount")?,
            rings: gauge("riskwatch_rings_active")?,
            ring_members: gauge("riskwatch_rings_members")?,
            delivery_attempts: counter_vec("riskwatch_delivery_attempts_total")?,
            outbox_events: int_gauge_vec("riskwatch_delivery_outbox_events")?,
            checkpoint_commits: counter("riskwatch_checkpoint_commits_total")?,
            checkpoint_failures: counter("riskwatch_checkpoint_failures_total")?,
            checkpoint_duration,
            checkpoint_bytes: counter("riskwatch_checkpoint_written_bytes_total")?,
            state_bytes,
            kafka: KafkaMetrics::register(&registry)?,
            ready: Arc::new(AtomicBool::new(false)),
            behind: Arc::default(),
            registry,
        };
        let own: [Box<dyn Collector>; 26] = [
            Box::new(build_info),
            Box::new(m.records.clone()),
            Box::new(m.events.clone()),
            Box::new(m.rejected.clone()),
            Box::new(m.lag.clone()),
            Box::new(m.watermark_delay.clone()),
            Box::new(m.frontier.clone()),
            Box::new(m.latency.clone()),
            Box::new(m.alerts.clone()),
            Box::new(m.decisions.clone()),
            Box::new(m.cases.clone()),
            Box::new(m.outputs.clone()),
            Box::new(m.customers.clone()),
            Box::new(m.evaluations.clone()),
            Box::new(m.transitions.clone()),
            Box::new(m.cases_open.clone()),
            Box::new(m.overdue.clone()),
            Box::new(m.rings.clone()),
            Box::new(m.ring_members.clone()),
            Box::new(m.delivery_attempts.clone()),
            Box::new(m.outbox_events.clone()),
            Box::new(m.checkpoint_commits.clone()),
            Box::new(m.checkpoint_failures.clone()),
            Box::new(m.checkpoint_duration.clone()),
            Box::new(m.checkpoint_bytes.clone()),
            Box::new(m.state_bytes.clone()),
        ];
        for c in own {
            m.registry.register(c)?;
        }
        m.registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        // Every stream and outcome exists from the start, so rates are 0 rather than absent.
        for s in Stream::ALL {
            m.records.with_label_values(&[s.name()]);
            m.events.with_label_values(&[s.name(), "accepted"]);
            m.events.with_label_values(&[s.name(), "duplicate"]);
        }
        m.events.with_label_values(&["all", "late"]);
        m.events.with_label_values(&["all", "expired_on_arrival"]);
        for o in ["alerts", "decisions", "cases"] {
            m.outputs.with_label_values(&[o]);
        }
        for s in &compiled.strategies.list {
            for level in LEVELS {
                m.customers.with_label_values(&[level, s.name.as_str()]);
            }
            for stage in CaseStage::ALL {
                m.cases_open
                    .with_label_values(&[s.name.as_str(), stage.name()]);
                m.overdue
                    .with_label_values(&[s.name.as_str(), stage.name()]);
            }
        }
        Ok(m)
    }

    /// What `/ready` answers: running, and no Kafka worker catching up.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed) && self.behind.load(Ordering::Relaxed) == 0
    }

    /// The registry in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding into a Vec cannot fail");
        String::from_utf8(buf).expect("the text format is UTF-8")
    }

    /// Adds what the dataflow counted since `prev` (one worker's [`Stats`]), and moves
    /// `prev` to `now`. Levels are gauges: each worker adds its own change.
    pub fn add_stats(&self, prev: &mut Stats, now: &Stats) {
        for (i, s) in Stream::ALL.iter().enumerate() {
            let name = s.name();
            self.events
                .with_label_values(&[name, "accepted"])
                .inc_by(now.events[i].saturating_sub(prev.events[i]));
            self.events
                .with_label_values(&[name, "duplicate"])
                .inc_by(now.duplicates[i].saturating_sub(prev.duplicates[i]));
        }
        self.events
            .with_label_values(&["all", "late"])
            .inc_by(now.late.saturating_sub(prev.late));
        self.events
            .with_label_values(&["all", "expired_on_arrival"])
            .inc_by(
                now.expired_on_arrival
                    .saturating_sub(prev.expired_on_arrival),
            );
        self.evaluations
            .inc_by(now.evaluations.saturating_sub(prev.evaluations));
        for (strategy, levels) in &now.levels {
            let before = prev.levels.get(strategy).copied().unwrap_or_default();
            for (level, (&n, b)) in levels.iter().zip(before).enumerate() {
                let delta = n.wrapping_sub(b) as i64;
                if delta != 0 {
                    self.customers
                        .with_label_values(&[LEVELS[level], strategy.as_str()])
                        .add(delta);
                }
            }
        }
        for (strategy, g) in &now.strategies {
            let before = prev.strategies.get(strategy).cloned().unwrap_or_default();
            self.add_strategy_gauges(strategy, &before, g);
        }
        self.rings.add(now.rings.wrapping_sub(prev.rings) as i64);
        self.ring_members
            .add(now.ring_members.wrapping_sub(prev.ring_members) as i64);
        prev.clone_from(now);
    }

    /// Adds strategy `name`'s transitions and open-case gauges from `before` to `now`.
    fn add_strategy_gauges(&self, name: &str, before: &StrategyGauges, now: &StrategyGauges) {
        for (from, (row, was)) in now.transitions.iter().zip(&before.transitions).enumerate() {
            for (to, (&n, &b)) in row.iter().zip(was).enumerate() {
                if n != b {
                    self.transitions
                        .with_label_values(&[name, LEVELS[from], LEVELS[to]])
                        .inc_by(n.saturating_sub(b));
                }
            }
        }
        for (i, stage) in CaseStage::ALL.iter().enumerate() {
            let open = now.cases_open[i].wrapping_sub(before.cases_open[i]) as i64;
            if open != 0 {
                self.cases_open
                    .with_label_values(&[name, stage.name()])
                    .add(open);
            }
            let overdue = now.overdue[i].wrapping_sub(before.overdue[i]) as i64;
            if overdue != 0 {
                self.overdue
                    .with_label_values(&[name, stage.name()])
                    .add(overdue);
            }
        }
    }

    /// Adds what the webhook dispatcher counted since `prev` (its
    /// [`DeliveryCounters::snapshot`](riskwatch_connectors::webhook::DeliveryCounters)) and
    /// sets the outbox depth gauges; `prev` becomes `now`. Call about once a second.
    pub fn add_deliveries(&self, prev: &mut Vec<EndpointSnapshot>, now: &[EndpointSnapshot]) {
        use riskwatch_connectors::webhook::metrics::SINK;
        for n in now {
            let before = prev
                .iter()
                .find(|p| p.endpoint == n.endpoint)
                .cloned()
                .unwrap_or_default();
            let e = n.endpoint.as_str();
            for (outcome, now, before) in [
                ("delivered", n.delivered, before.delivered),
                ("retried", n.retried, before.retried),
                ("dead", n.dead, before.dead),
            ] {
                self.delivery_attempts
                    .with_label_values(&[SINK, e, outcome])
                    .inc_by(now.saturating_sub(before));
            }
            self.outbox_events
                .with_label_values(&[SINK, e])
                .set(n.outbox_depth as i64);
        }
        prev.clear();
        prev.extend_from_slice(now);
    }

    /// Adds output counts: the alerts, decisions and case events by label, and the records
    /// by output.
    pub fn add_counts(&self, counts: &OutputCounts) {
        for (rule, severity, strategy, n) in counts.alerts() {
            self.alerts
                .with_label_values(&[rule, severity, strategy])
                .inc_by(n);
        }
        for (kind, strategy, n) in counts.decisions() {
            self.decisions
                .with_label_values(&[kind, strategy])
                .inc_by(n);
        }
        for (event, stage, strategy, n) in counts.cases() {
            self.cases
                .with_label_values(&[event, stage, strategy])
                .inc_by(n);
        }
        for (o, n) in ["alerts", "decisions", "cases"].iter().zip(counts.written) {
            self.outputs.with_label_values(&[o]).inc_by(n);
        }
    }

    /// Adds a finished files-mode run or replay: its summary, levels and gauges (once, at
    /// the end). Its outputs were counted as they were written ([`ReplayArgs::metrics`]).
    ///
    /// [`ReplayArgs::metrics`]: crate::replay::ReplayArgs::metrics
    pub fn add_run(&self, out: &RunOutput, summary: &Summary) {
        let get = |m: &BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
        for s in Stream::ALL {
            let n = s.name();
            self.records
                .with_label_values(&[n])
                .inc_by(get(&summary.read, n));
            self.events
                .with_label_values(&[n, "accepted"])
                .inc_by(get(&summary.events, n));
            self.events
                .with_label_values(&[n, "duplicate"])
                .inc_by(get(&summary.duplicates, n));
        }
        self.events
            .with_label_values(&["all", "late"])
            .inc_by(summary.late);
        self.events
            .with_label_values(&["all", "expired_on_arrival"])
            .inc_by(summary.expired_on_arrival);
        for (reason, n) in &summary.rejected {
            self.rejected.with_label_values(&[reason]).inc_by(*n);
        }
        self.evaluations.inc_by(summary.evaluations);
        for (strategy, levels) in &summary.levels {
            for (level, n) in levels.iter().enumerate() {
                self.customers
                    .with_label_values(&[LEVELS[level], strategy.as_str()])
                    .set(*n as i64);
            }
        }
        let stats = &out.stats;
        let none = StrategyGauges::default();
        for (strategy, g) in &stats.strategies {
            // Gauges are set, not added: a files run adds its summary once.
            for stage in CaseStage::ALL {
                self.cases_open
                    .with_label_values(&[strategy.as_str(), stage.name()])
                    .set(0);
                self.overdue
                    .with_label_values(&[strategy.as_str(), stage.name()])
                    .set(0);
            }
            self.add_strategy_gauges(strategy, &none, g);
        }
        self.rings.set(stats.rings as i64);
        self.ring_members.set(stats.ring_members as i64);
        self.frontier.set(summary.end_ts as f64 / 1000.0);
    }
}

/// A Kafka worker whose lag on a partition is above this many records is catching up, and
/// the process is not ready.
pub const READY_MAX_LAG: i64 = 10_000;

/// Level label values, by level index.
const LEVELS: [&str; 5] = ["0", "1", "2", "3", "4"];

/// A running `/metrics` server; it stops with the process.
pub struct MetricsServer {
    /// The address it listens on (the real port when `:0` was asked for).
    pub addr: SocketAddr,
}

/// Binds `addr` (failing fast when it is taken) and serves `/metrics`, `/health` and
/// `/ready` on a thread of its own.
pub fn serve(addr: SocketAddr, metrics: Metrics) -> anyhow::Result<MetricsServer> {
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("--metrics-addr {addr}: cannot listen"))?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("starting the metrics thread")?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            runtime.block_on(async move {
                use axum::http::StatusCode;
                use axum::routing::get;
                let for_metrics = metrics.clone();
                let for_ready = metrics.clone();
                let app =
                    axum::Router::new()
                        .route(
                            "/metrics",
                            get(move || {
                                let m = for_metrics.clone();
                                async move {
                                    ([("content-type", "text/plain; version=0.0.4")], m.encode())
                                }
                            }),
                        )
                        .route("/health", get(|| async { "ok\n" }))
                        .route(
                            "/ready",
                            get(move || {
                                let ready = for_ready.is_ready();
                                async move {
                                    if ready {
                                        (StatusCode::OK, "ready\n")
                                    } else {
                                        (
                                            StatusCode::SERVICE_UNAVAILABLE,
                                            "not ready: starting or catching up\n",
                                        )
                                    }
                                }
                            }),
                        );
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(error = %e, "metrics server: cannot listen");
                        return;
                    }
                };
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!(error = %e, "metrics server stopped");
                }
            })
        })
        .context("starting the metrics thread")?;
    tracing::info!(addr = %bound, "serving /metrics, /health and /ready");
    Ok(MetricsServer { addr: bound })
}

/// The catalogue as a Markdown table (`riskwatch metrics-catalogue`, docs/metrics.md).
pub fn catalogue_markdown() -> String {
    let mut s =
        String::from("| name | type | labels | fed in | meaning |\n|---|---|---|---|---|\n");
    for m in CATALOGUE.iter().chain(riskwatch_model::metrics::PROCESS) {
        s.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            m.name,
            m.kind.name(),
            if m.labels.is_empty() {
                "-".to_string()
            } else {
                m.labels
                    .iter()
                    .map(|l| format!("`{l}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            m.fed_in,
            m.help
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> Metrics {
        let (_, compiled) = crate::replay::load_config(None).expect("the default config");
        Metrics::new(&compiled).expect("metrics register")
    }

    #[test]
    fn every_registered_family_is_in_the_catalogue_and_back() {
        let m = metrics();
        m.kafka.records.with_label_values(&["loans", "0"]).inc();
        let names: Vec<String> = m
            .registry
            .gather()
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        for n in &names {
            assert!(
                find(n).is_some(),
                "{n} is registered but not in the catalogue"
            );
        }
        for c in CATALOGUE {
            assert!(
                m.registry.gather().iter().any(|f| f.name() == c.name) || !c.labels.is_empty(),
                "{} is in the catalogue but not registered",
                c.name
            );
        }
    }

    #[test]
    fn kafka_metric_names_match_the_catalogue() {
        let k = KafkaMetrics::unregistered().expect("kafka metrics");
        let r = Registry::new();
        for c in [
            Box::new(k.records) as Box<dyn Collector>,
            Box::new(k.bytes),
            Box::new(k.rejected),
            Box::new(k.late),
            Box::new(k.watermark),
            Box::new(k.next_offset),
            Box::new(k.frontier),
            Box::new(k.idle),
            Box::new(k.paused),
            Box::new(k.pauses),
            Box::new(k.sink_records),
            Box::new(k.sink_bytes),
            Box::new(k.sink_failures),
        ] {
            for d in c.desc() {
                let entry =
                    find(&d.fq_name).unwrap_or_else(|| panic!("{} not catalogued", d.fq_name));
                let mut labels = d.variable_labels.clone();
                labels.sort();
                let mut want: Vec<String> = entry.labels.iter().map(|l| l.to_string()).collect();
                want.sort();
                assert_eq!(labels, want, "{}", d.fq_name);
            }
            r.register(c).expect("registers");
        }
    }

    #[test]
    fn every_catalogue_entry_is_in_docs_metrics_md() {
        let doc = include_str!("../docs/metrics.md");
        for m in CATALOGUE.iter().chain(riskwatch_model::metrics::PROCESS) {
            assert!(
                doc.contains(&format!("`{}`", m.name)),
                "{} is missing from docs/metrics.md (run `riskwatch metrics-catalogue`)",
                m.name
            );
        }
        assert!(
            doc.contains(&catalogue_markdown()),
            "docs/metrics.md's table differs from `riskwatch metrics-catalogue`"
        );
    }

    #[test]
    fn delivery_counters_add_as_deltas_with_bounded_labels() {
        let m = metrics();
        let mut prev = Vec::new();
        let mut now = vec![EndpointSnapshot {
            endpoint: "collections".into(),
            delivered: 5,
            retried: 2,
            dead: 1,
            outbox_depth: 7,
        }];
        m.add_deliveries(&mut prev, &now);
        now[0].delivered = 9;
        now[0].outbox_depth = 0;
        m.add_deliveries(&mut prev, &now);
        let get = |o: &str| {
            m.delivery_attempts
                .with_label_values(&["webhook", "collections", o])
                .get()
        };
        assert_eq!((get("delivered"), get("retried"), get("dead")), (9, 2, 1));
        assert_eq!(
            m.outbox_events
                .with_label_values(&["webhook", "collections"])
                .get(),
            0
        );
        assert!(m.encode().contains("riskwatch_delivery_attempts_total{"));
    }

    fn ring(ring: u64) -> riskwatch_dataflows::rings::RingInfo {
        riskwatch_dataflows::rings::RingInfo {
            ring,
            size: 3,
            delinquent: 0,
            new_members: 0,
        }
    }

    #[test]
    fn ready_means_running_with_no_worker_behind() {
        let m = metrics();
        assert!(!m.is_ready(), "not before the pipeline runs");
        m.ready.store(true, Ordering::SeqCst);
        assert!(m.is_ready());
        m.behind.fetch_or(1 << 3, Ordering::SeqCst);
        assert!(!m.is_ready(), "worker 3 is catching up");
        m.behind.fetch_and(!(1 << 3), Ordering::SeqCst);
        assert!(m.is_ready());
    }

    #[test]
    fn stats_deltas_add_up_and_levels_move() {
        let m = metrics();
        let mut prev = Stats::default();
        let mut now = Stats {
            events: [1, 2, 3, 4],
            late: 2,
            ..Stats::default()
        };
        now.levels.insert("baseline".into(), [5, 0, 0, 0, 0]);
        m.add_stats(&mut prev, &now);
        now.events[2] = 10;
        now.levels.insert("baseline".into(), [4, 1, 0, 0, 0]);
        m.add_stats(&mut prev, &now);
        assert_eq!(
            m.events
                .with_label_values(&["transactions", "accepted"])
                .get(),
            10
        );
        assert_eq!(m.events.with_label_values(&["all", "late"]).get(), 2);
        assert_eq!(m.customers.with_label_values(&["0", "baseline"]).get(), 4);
        assert_eq!(m.customers.with_label_values(&["1", "baseline"]).get(), 1);
        // Level transitions, open cases and rings, as one worker's changes.
        let mut standing = Stats::default();
        let m1 = |amount| Some((1u8, amount));
        standing.moved(
            "baseline",
            None,
            riskwatch_dataflows::stats::Standing {
                level: 2,
                case: m1(300),
            },
        );
        standing.ring_moved(3, None, Some(&ring(3)));
        m.add_stats(&mut prev, &standing);
        let mut later = standing.clone();
        later.moved(
            "baseline",
            Some(riskwatch_dataflows::stats::Standing {
                level: 2,
                case: m1(300),
            }),
            riskwatch_dataflows::stats::Standing {
                level: 3,
                case: Some((2, 800)),
            },
        );
        m.add_stats(&mut prev, &later);
        let open = |stage| m.cases_open.with_label_values(&["baseline", stage]).get();
        let overdue = |stage| m.overdue.with_label_values(&["baseline", stage]).get();
        assert_eq!((open("M1"), open("M2")), (0, 1));
        assert_eq!((overdue("M1"), overdue("M2")), (0, 800));
        let moved = |from, to| {
            m.transitions
                .with_label_values(&["baseline", from, to])
                .get()
        };
        assert_eq!((moved("2", "3"), moved("0", "2")), (1, 0));
        assert_eq!((m.rings.get(), m.ring_members.get()), (1, 1));
        let text = m.encode();
        assert!(text.contains("riskwatch_build_info{"));
        assert!(text.contains("riskwatch_output_latency_seconds_bucket{le=\"0.005\"}"));
        assert!(text.contains("process_cpu_seconds_total"));
    }
}
