//! The catalogue of every Prometheus metric riskwatch exposes: name, type, help and label
//! names, in one const table that the registry (`src/metrics.rs`), the Kafka connector
//! (`connectors/src/kafka/metrics.rs`), docs/metrics.md and the dashboards are checked
//! against.
//!
//! Names follow `riskwatch_<subsystem>_<name>_<unit>[_total]`: counters end in `_total`,
//! units are base units (seconds, bytes). Labels come from small bounded sets (streams,
//! partitions, reject reason codes, rule ids, severities, strategies, levels, kinds, stages,
//! workers, sinks, configured endpoint names, delivery outcomes); never a customer, an id,
//! a URL or raw error text.

/// A metric's Prometheus type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// A monotonically increasing count (`_total`).
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// A distribution in fixed buckets ([`LATENCY_BUCKETS`]).
    Histogram,
}

impl MetricKind {
    /// The type as Prometheus's text format spells it.
    pub const fn name(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// One catalogue entry.
#[derive(Clone, Copy, Debug)]
pub struct Metric {
    /// Full metric name.
    pub name: &'static str,
    /// Prometheus type.
    pub kind: MetricKind,
    /// The `# HELP` text: what one unit of it means.
    pub help: &'static str,
    /// Label names, each from a small bounded set.
    pub labels: &'static [&'static str],
    /// Where it is fed: `all` (every run), `files` (files-mode run and replay, from the
    /// run's summary), `kafka` (Kafka mode only), `webhook` (when webhooks are
    /// configured) or `state` (a run with a state directory).
    pub fed_in: &'static str,
}

/// Buckets (seconds) of the event-to-output latency histogram.
pub const LATENCY_BUCKETS: [f64; 8] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// The outcomes of `riskwatch_input_events_total`.
pub const EVENT_OUTCOMES: [&str; 4] = ["accepted", "duplicate", "late", "expired_on_arrival"];

const fn m(
    name: &'static str,
    kind: MetricKind,
    help: &'static str,
    labels: &'static [&'static str],
    fed_in: &'static str,
) -> Metric {
    Metric {
        name,
        kind,
        help,
        labels,
        fed_in,
    }
}

use MetricKind::{Counter, Gauge, Histogram};

/// Every metric riskwatch registers, in one place (the process collector's standard
/// `process_*` metrics are in [`PROCESS`]).
pub const CATALOGUE: &[Metric] = &[
    m(
        "riskwatch_build_info",
        Gauge,
        "Always 1; the labels carry the build version and the running config's strategy versions.",
        &["version", "config_version"],
        "all",
    ),
    m(
        "riskwatch_input_records_total",
        Counter,
        "Input records read, valid or not, by stream.",
        &["stream"],
        "all",
    ),
    m(
        "riskwatch_input_events_total",
        Counter,
        "Input events by stream and outcome (accepted, duplicate, late, expired_on_arrival); \
       late and expired_on_arrival are counted over all streams (stream=\"all\").",
        &["stream", "outcome"],
        "all",
    ),
    m(
        "riskwatch_input_rejected_records_total",
        Counter,
        "Input records rejected by the contract checks, by fixed reason code.",
        &["reason"],
        "all",
    ),
    m(
        "riskwatch_input_consumer_lag_records",
        Gauge,
        "Records between the next offset to consume and the partition's high watermark.",
        &["stream", "partition"],
        "kafka",
    ),
    m(
        "riskwatch_input_watermark_delay_seconds",
        Gauge,
        "Wall-clock time minus the worker's input frontier (event time).",
        &["worker"],
        "kafka",
    ),
    m(
        "riskwatch_input_frontier_seconds",
        Gauge,
        "Event time (Unix seconds) up to which this process's input is complete.",
        &[],
        "all",
    ),
    m(
        "riskwatch_output_latency_seconds",
        Histogram,
        "Event-to-output latency: from an input batch entering the dataflow to every output \
       at its times being handed to the sinks.",
        &[],
        "kafka",
    ),
    m(
        "riskwatch_output_alerts_total",
        Counter,
        "Alerts produced, by rule, severity and strategy.",
        &["rule", "severity", "strategy"],
        "all",
    ),
    m(
        "riskwatch_output_decisions_total",
        Counter,
        "Decisions produced, by kind and strategy.",
        &["kind", "strategy"],
        "all",
    ),
    m(
        "riskwatch_output_cases_total",
        Counter,
        "Case events produced, by event (opened, escalated, …), stage and strategy.",
        &["event", "stage", "strategy"],
        "all",
    ),
    m(
        "riskwatch_output_records_total",
        Counter,
        "Output records handed to the sinks, by output (alerts, decisions, cases).",
        &["output"],
        "all",
    ),
    m(
        "riskwatch_strategy_customers",
        Gauge,
        "Customers at each risk level (0-4), per strategy: the current level mix.",
        &["level", "strategy"],
        "all",
    ),
    m(
        "riskwatch_strategy_evaluations_total",
        Counter,
        "Customer evaluations (a customer whose state changed at a tick, per tick).",
        &[],
        "all",
    ),
    m(
        "riskwatch_strategy_level_transitions_total",
        Counter,
        "Customers whose risk level changed, by strategy and the levels before and after.",
        &["strategy", "from", "to"],
        "all",
    ),
    m(
        "riskwatch_cases_open",
        Gauge,
        "Open collection cases, by strategy and stage (pre_collection, M1, M2, M3+, fraud).",
        &["strategy", "stage"],
        "all",
    ),
    m(
        "riskwatch_cases_overdue_amount",
        Gauge,
        "Overdue amount of the open cases, in the book's minor currency units, by strategy \
         and stage.",
        &["strategy", "stage"],
        "all",
    ),
    m(
        "riskwatch_rings_active",
        Gauge,
        "Rings: groups of customers linked by shared identifiers, of at least `rings.min_ring_size`.",
        &[],
        "all",
    ),
    m(
        "riskwatch_rings_members",
        Gauge,
        "Customers that belong to a ring.",
        &[],
        "all",
    ),
    m(
        "riskwatch_kafka_source_records_total",
        Counter,
        "Records consumed from the input topics, valid or not.",
        &["source", "partition"],
        "kafka",
    ),
    m(
        "riskwatch_kafka_source_bytes_total",
        Counter,
        "Record payload bytes consumed.",
        &["source"],
        "kafka",
    ),
    m(
        "riskwatch_kafka_source_rejected_records_total",
        Counter,
        "Input records sent to the dead-letter topic, by reason.",
        &["source", "reason"],
        "kafka",
    ),
    m(
        "riskwatch_kafka_source_late_records_total",
        Counter,
        "Events older than the frontier, fed at the frontier.",
        &["source"],
        "kafka",
    ),
    m(
        "riskwatch_kafka_source_watermark_seconds",
        Gauge,
        "Largest event time seen in the partition minus the allowed lateness.",
        &["source", "partition"],
        "kafka",
    ),
    m(
        "riskwatch_kafka_source_next_offset",
        Gauge,
        "Next offset to consume from the partition.",
        &["source", "partition"],
        "kafka",
    ),
    m(
        "riskwatch_kafka_source_frontier_seconds",
        Gauge,
        "Event time up to which the worker's input is complete.",
        &["worker"],
        "kafka",
    ),
    m(
        "riskwatch_kafka_source_idle_partitions",
        Gauge,
        "Partitions not holding the frontier back because they are idle.",
        &["worker"],
        "kafka",
    ),
    m(
        "riskwatch_kafka_source_paused",
        Gauge,
        "1 while backpressure pauses the worker's partitions.",
        &["worker"],
        "kafka",
    ),
    m(
        "riskwatch_kafka_source_pauses_total",
        Counter,
        "Times backpressure paused the worker's partitions.",
        &["worker"],
        "kafka",
    ),
    m(
        "riskwatch_kafka_sink_records_total",
        Counter,
        "Records handed to the producer.",
        &["topic"],
        "kafka",
    ),
    m(
        "riskwatch_kafka_sink_bytes_total",
        Counter,
        "Payload bytes handed to the producer.",
        &["topic"],
        "kafka",
    ),
    m(
        "riskwatch_kafka_sink_delivery_failures_total",
        Counter,
        "Records the producer could not deliver after its retries.",
        &["topic"],
        "kafka",
    ),
    m(
        "riskwatch_delivery_attempts_total",
        Counter,
        "Webhook delivery attempts by endpoint and outcome: delivered (2xx), retried (a \
       transient failure, tried again later) or dead (dead-lettered).",
        &["sink", "endpoint", "outcome"],
        "webhook",
    ),
    m(
        "riskwatch_delivery_outbox_events",
        Gauge,
        "Events waiting in the outbox for an endpoint, not yet delivered or dead-lettered.",
        &["sink", "endpoint"],
        "webhook",
    ),
    m(
        "riskwatch_checkpoint_commits_total",
        Counter,
        "Checkpoints committed to the state directory.",
        &[],
        "state",
    ),
    m(
        "riskwatch_checkpoint_failures_total",
        Counter,
        "Checkpoint commits that failed (the run stops on the first; the previous checkpoint \
       stays intact).",
        &[],
        "state",
    ),
    m(
        "riskwatch_checkpoint_duration_seconds",
        Histogram,
        "Time to write and sync one checkpoint's batch (on the committer thread).",
        &[],
        "state",
    ),
    m(
        "riskwatch_checkpoint_written_bytes_total",
        Counter,
        "Bytes of the checkpoint batches written.",
        &[],
        "state",
    ),
    m(
        "riskwatch_checkpoint_state_bytes",
        Gauge,
        "Size of the state directory on disk after the last checkpoint.",
        &[],
        "state",
    ),
];

/// The outcomes of `riskwatch_delivery_attempts_total`.
pub const DELIVERY_OUTCOMES: [&str; 3] = ["delivered", "retried", "dead"];

/// The standard process metrics (Linux), exported by the `prometheus` crate's process
/// collector under their conventional names.
pub const PROCESS: &[Metric] = &[
    m(
        "process_cpu_seconds_total",
        Counter,
        "Total user and system CPU time spent in seconds.",
        &[],
        "all",
    ),
    m(
        "process_resident_memory_bytes",
        Gauge,
        "Resident memory size in bytes.",
        &[],
        "all",
    ),
    m(
        "process_virtual_memory_bytes",
        Gauge,
        "Virtual memory size in bytes.",
        &[],
        "all",
    ),
    m(
        "process_open_fds",
        Gauge,
        "Number of open file descriptors.",
        &[],
        "all",
    ),
    m(
        "process_max_fds",
        Gauge,
        "Maximum number of open file descriptors.",
        &[],
        "all",
    ),
    m(
        "process_start_time_seconds",
        Gauge,
        "Start time of the process since unix epoch in seconds.",
        &[],
        "all",
    ),
    m(
        "process_threads",
        Gauge,
        "Number of OS threads in the process.",
        &[],
        "all",
    ),
];

/// The catalogue entry named `name` (riskwatch's or the process collector's).
pub fn find(name: &str) -> Option<&'static Metric> {
    CATALOGUE.iter().chain(PROCESS).find(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_convention_and_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for m in CATALOGUE {
            assert!(seen.insert(m.name), "{} twice", m.name);
            assert!(m.name.starts_with("riskwatch_"), "{}", m.name);
            assert_eq!(m.kind == Counter, m.name.ends_with("_total"), "{}", m.name);
            for l in m.labels {
                assert!(
                    ![
                        "customer",
                        "customer_id",
                        "id",
                        "url",
                        "event_id",
                        "loan_id"
                    ]
                    .contains(l),
                    "{} has an unbounded label {l}",
                    m.name
                );
            }
            assert!(["all", "files", "kafka", "webhook", "state"].contains(&m.fed_in));
        }
    }
}
