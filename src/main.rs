//! The `riskwatch` command line: `gen`, `replay`, `run`, `produce`, `consume`, `demo`, `bench`,
//! `compare`, `check-config`.

use anyhow::Context;
use clap::{Parser, Subcommand};
use riskwatch::bench::{bench, table, BenchArgs};
use riskwatch::demo::{default_dir, demo, DemoArgs};
use riskwatch::pipeline::ClusterSpec;
use riskwatch::replay::{load_config, load_strategy_change, replay, ReplayArgs};
use riskwatch_connectors::generator::{generate, GenConfig};
use std::path::PathBuf;

/// mimalloc: timely and differential allocate and free many mid-sized buffers per step;
/// glibc's malloc hands large ones back to the kernel and faults them in again.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "riskwatch",
    version,
    about = "In-loan risk monitoring on timely + differential dataflow"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a deterministic synthetic loan book (four input files and truth.ndjson).
    Gen {
        /// Customers.
        #[arg(long, default_value_t = 10_000)]
        customers: u64,
        /// Days of activity.
        #[arg(long, default_value_t = 90)]
        days: u64,
        /// Seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Run the pipeline over input files and write the outputs.
    Replay {
        /// Directory with transactions/behaviors/loans/customers.ndjson.
        #[arg(long)]
        input: PathBuf,
        /// Directory for alerts, decisions, cases, rejected and summary.json.
        #[arg(long)]
        output: PathBuf,
        /// Config file (TOML); built-in defaults when absent.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Worker threads.
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// End at this event time (epoch ms) instead of the last input event.
        #[arg(long)]
        until: Option<u64>,
        /// Cluster mode: this process's index into --hosts.
        #[arg(long, requires = "hosts")]
        process: Option<usize>,
        /// Cluster mode: host:port of every process, comma separated, in process order.
        #[arg(long, value_delimiter = ',')]
        hosts: Vec<String>,
        /// A live strategy change: `TS=FILE` switches to the strategies of FILE at event
        /// time TS (epoch ms), without losing state. Repeatable.
        #[arg(long = "config-change")]
        config_changes: Vec<String>,
    },
    /// Generate a book, replay it, and print throughput and detection quality.
    Demo {
        /// Customers.
        #[arg(long, default_value_t = 20_000)]
        customers: u64,
        /// Days.
        #[arg(long, default_value_t = 120)]
        days: u64,
        /// Seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Worker threads.
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Working directory.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Config file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Measure replay throughput and open-loop latency.
    Bench {
        /// Customers in the replay book.
        #[arg(long, default_value_t = 20_000)]
        customers: u64,
        /// Days in the replay book.
        #[arg(long, default_value_t = 120)]
        days: u64,
        /// Runs per figure (median reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Worker counts for replay (comma separated).
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        workers: Vec<usize>,
        /// Latency rates in events/s (comma separated).
        #[arg(long, value_delimiter = ',', default_value = "50000,100000")]
        rates: Vec<u64>,
        /// Seconds per latency run.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Customers in the latency stream.
        #[arg(long, default_value_t = 100_000)]
        latency_customers: u64,
        /// Working directory (book cache).
        #[arg(long, default_value = "out/bench")]
        dir: PathBuf,
        /// Only the replay part.
        #[arg(long)]
        replay_only: bool,
        /// Only the latency part.
        #[arg(long)]
        latency_only: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Measure end to end through a Kafka broker instead (needs --brokers).
        #[arg(long, requires = "brokers")]
        kafka: bool,
        /// Kafka bench: the broker (host:port).
        #[arg(long)]
        brokers: Option<String>,
        /// Kafka bench: input rates in events/s; 0 = as fast as possible (comma separated).
        #[arg(long, value_delimiter = ',', default_value = "20000,50000,0")]
        kafka_rates: Vec<u64>,
        /// Kafka bench: partitions per input topic.
        #[arg(long, default_value_t = 4)]
        partitions: i32,
    },
    /// Backtest two configs on the same recorded inputs and print them side by side.
    Compare {
        /// Directory with the four input files (and truth.ndjson for quality figures).
        #[arg(long)]
        input: PathBuf,
        /// Config A (e.g. the champion as deployed).
        #[arg(long = "config", num_args = 2, required = true)]
        configs: Vec<PathBuf>,
        /// Where the two replays write their outputs (`a/`, `b/`).
        #[arg(long, default_value = "out/compare")]
        output: PathBuf,
        /// Worker threads.
        #[arg(long, default_value_t = 2)]
        workers: usize,
    },
    /// Run the live pipeline: files or Kafka, as `[run] mode` in the config selects.
    Run {
        /// Config file (TOML); built-in defaults when absent.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Worker threads of this process.
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Cluster mode: this process's index into --hosts.
        #[arg(long, requires = "hosts")]
        process: Option<usize>,
        /// Cluster mode: host:port of every process, comma separated, in process order.
        #[arg(long, value_delimiter = ',')]
        hosts: Vec<String>,
        /// Bounded run: stop once the frontier passed this event time (epoch ms); later
        /// events and outputs are dropped.
        #[arg(long)]
        until: Option<u64>,
        /// Bounded run: stop once every partition is consumed to its end offset.
        #[arg(long)]
        until_idle: bool,
        /// With --until-idle: ms without records before end offsets are checked.
        #[arg(long, default_value_t = 1000)]
        idle_ms: u64,
        /// Directory for the offsets file (default: run.state_dir of the config).
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Load a book (four NDJSON files) into the input topics in event-time order.
    Produce {
        /// Directory with transactions/behaviors/loans/customers.ndjson.
        #[arg(long)]
        input: PathBuf,
        /// Brokers (host:port,...); default: kafka.brokers of the config.
        #[arg(long)]
        brokers: Option<String>,
        /// Records per second; as fast as possible when absent.
        #[arg(long)]
        rate: Option<u64>,
        /// Config file for topic names and producer settings.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Copy a topic into an NDJSON file, until it is idle and at its end offsets.
    Consume {
        /// The topic.
        #[arg(long)]
        topic: String,
        /// Brokers (host:port,...); default: kafka.brokers of the config.
        #[arg(long)]
        brokers: Option<String>,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// Stop after this many ms without a record (once at the end offsets).
        #[arg(long, default_value_t = 2000)]
        idle_ms: u64,
        /// Write partition, offset, timestamp, key and headers around each value.
        #[arg(long)]
        meta: bool,
        /// Config file for client settings.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Load and compile a config; print the error with its key, or the feature list.
    CheckConfig {
        /// Config file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RISKWATCH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: log files and collectors get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Cli::parse().command {
        Command::Gen {
            customers,
            days,
            seed,
            out,
        } => {
            let cfg = GenConfig {
                customers,
                days,
                seed,
                ..GenConfig::default()
            };
            let s = generate(&cfg, &out)
                .with_context(|| format!("generating into {}", out.display()))?;
            println!(
                "generated {} customers: {} transactions, {} behaviors, {} loans, {} customers records",
                s.customers, s.events_per_stream[0], s.events_per_stream[1], s.events_per_stream[2], s.events_per_stream[3]
            );
        }
        Command::Replay {
            input,
            output,
            config,
            workers,
            until,
            process,
            hosts,
            config_changes,
        } => {
            let (cfg, compiled) = load_config(config.as_deref())?;
            let mut changes = Vec::new();
            for spec in &config_changes {
                let (ts, file) = spec
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--config-change {spec:?}: expected TS=FILE"))?;
                let ts: u64 = ts
                    .parse()
                    .with_context(|| format!("--config-change {spec:?}: TS is epoch ms"))?;
                changes.push((
                    ts,
                    load_strategy_change(std::path::Path::new(file), &compiled)?,
                ));
            }
            let cluster = match process {
                Some(process) if process < hosts.len() => Some(ClusterSpec { process, hosts }),
                Some(process) => anyhow::bail!(
                    "--process {process} is not an index into --hosts ({} hosts)",
                    hosts.len()
                ),
                None => None,
            };
            let (_, summary) = replay(
                &compiled,
                &cfg,
                &input,
                &output,
                &ReplayArgs {
                    workers,
                    until,
                    progress: true,
                    cluster,
                    config_changes: changes,
                },
            )?;
            let alerts: u64 = summary
                .alerts_by_rule
                .values()
                .flat_map(|m| m.values())
                .sum();
            println!(
                "replayed {} records at {:.0} events/s: {} alerts, {} rejected; outputs in {}",
                summary.read.values().sum::<u64>(),
                summary.timing.events_per_s,
                alerts,
                summary.rejected.values().sum::<u64>(),
                output.display()
            );
        }
        Command::Demo {
            customers,
            days,
            seed,
            workers,
            dir,
            config,
        } => {
            demo(&DemoArgs {
                customers,
                days,
                seed,
                workers,
                dir: dir.unwrap_or_else(default_dir),
                config,
            })?;
        }
        Command::Bench {
            customers,
            days,
            runs,
            workers,
            rates,
            seconds,
            latency_customers,
            dir,
            replay_only,
            latency_only,
            json,
            kafka,
            brokers,
            kafka_rates,
            partitions,
        } => {
            if kafka {
                let report =
                    riskwatch::bench_kafka::bench_kafka(&riskwatch::bench_kafka::KafkaBenchArgs {
                        brokers: brokers.unwrap_or_default(),
                        rates: kafka_rates,
                        seconds,
                        customers: latency_customers.min(20_000),
                        workers: workers.iter().copied().max().unwrap_or(2),
                        partitions,
                        dir: dir.clone(),
                        runs,
                    })?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    print!("{}", riskwatch::bench_kafka::table(&report));
                }
                return Ok(());
            }
            let report = bench(&BenchArgs {
                customers,
                days,
                runs,
                workers,
                rates,
                seconds,
                latency_customers,
                dir,
                skip_replay: latency_only,
                skip_latency: replay_only,
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", table(&report));
            }
        }
        Command::Compare {
            input,
            configs,
            output,
            workers,
        } => {
            let sides =
                riskwatch::compare::compare(&input, [&configs[0], &configs[1]], &output, workers)?;
            print!("{}", riskwatch::compare::table(&sides));
        }
        Command::Run {
            config,
            workers,
            process,
            hosts,
            until,
            until_idle,
            idle_ms,
            state_dir,
        } => {
            let (cfg, compiled) = load_config(config.as_deref())?;
            let cluster = match process {
                Some(process) if process < hosts.len() => Some(ClusterSpec { process, hosts }),
                Some(process) => anyhow::bail!(
                    "--process {process} is not an index into --hosts ({} hosts)",
                    hosts.len()
                ),
                None => None,
            };
            // Live strategy changes: process 0 reads the file (on change and on SIGHUP) and
            // carries accepted changes through the dataflow to every process.
            let kafka = cfg.run.mode == riskwatch_model::config::RunMode::Kafka;
            let first = cluster.as_ref().is_none_or(|c| c.process == 0);
            let reload = match &config {
                Some(path) if kafka && first => Some(riskwatch::reload::spawn(
                    riskwatch::reload::Reloader::new(path, &cfg, &compiled)?,
                )?),
                Some(_) if kafka => {
                    tracing::info!("live strategy changes are read by process 0");
                    None
                }
                _ => None,
            };
            riskwatch::live::run(
                &cfg,
                &compiled,
                &riskwatch::live::LiveArgs {
                    workers,
                    cluster,
                    until,
                    until_idle,
                    idle_check: std::time::Duration::from_millis(idle_ms),
                    stop: riskwatch::live::shutdown_flag(reload.clone())?,
                    state_dir,
                    print_summary: true,
                    reload: reload.map(|r| r.reloads),
                },
            )?;
        }
        Command::Produce {
            input,
            brokers,
            rate,
            config,
        } => {
            let (mut cfg, _) = load_config(config.as_deref())?;
            if let Some(b) = brokers {
                cfg.kafka.brokers = b;
            }
            let s = riskwatch::produce::produce(&cfg.kafka, &input, rate)?;
            println!(
                "produced {} records ({} undecodable) in {:.2}s: {:.0} records/s",
                s.records.iter().sum::<u64>(),
                s.undecodable,
                s.seconds,
                s.records_per_s
            );
        }
        Command::Consume {
            topic,
            brokers,
            out,
            idle_ms,
            meta,
            config,
        } => {
            let (mut cfg, _) = load_config(config.as_deref())?;
            if let Some(b) = brokers {
                cfg.kafka.brokers = b;
            }
            let n = riskwatch::produce::consume(
                &cfg.kafka,
                &topic,
                &out,
                std::time::Duration::from_millis(idle_ms),
                meta,
            )?;
            println!("consumed {n} records from {topic} into {}", out.display());
        }
        Command::CheckConfig { config } => {
            let (_, compiled) = load_config(config.as_deref())?;
            println!(
                "config ok: {} features, {} slots, strategies:",
                compiled.layout.names.len(),
                compiled.layout.slots
            );
            for s in &compiled.strategies.list {
                println!(
                    "  {} ({:?}, version {}): {} rules, {} scorecard terms",
                    s.name,
                    s.role,
                    s.version,
                    s.rules.len(),
                    s.terms.len()
                );
            }
            println!("features: {}", compiled.layout.names.join(", "));
        }
    }
    Ok(())
}
