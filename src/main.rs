//! The `riskwatch` command line. Each command lives in its own file under `commands/`;
//! exit codes are in `riskwatch::exit`.

mod commands;

use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};

/// mimalloc: timely and differential allocate and free many mid-sized buffers per step;
/// glibc's malloc hands large ones back to the kernel and faults them in again.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How log lines are written to stderr.
#[derive(Clone, Copy, Debug, Default, ValueEnum)]
enum LogFormat {
    /// Human-readable lines (colours on a terminal only).
    #[default]
    Text,
    /// One JSON object per line, with the event's fields.
    Json,
}

#[derive(Parser)]
#[command(
    name = "riskwatch",
    version,
    about = "In-loan risk monitoring on timely + differential dataflow",
    after_help = "Logs go to stderr; RISKWATCH_LOG sets the filter (default \"info\"; e.g. \
                  \"warn\", \"riskwatch=debug\", \"info,riskwatch_connectors=debug\")."
)]
struct Cli {
    /// Log line format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: commands::Command,
}

/// `--version`: the crate version, the git commit and the librdkafka version.
fn long_version() -> String {
    let (_, rdkafka) = riskwatch_connectors::kafka::rdkafka::util::get_rdkafka_version();
    format!(
        "{} (commit {}, librdkafka {rdkafka})",
        env!("CARGO_PKG_VERSION"),
        env!("RISKWATCH_GIT_COMMIT")
    )
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RISKWATCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => logs.json().with_current_span(false).init(),
        // Colours only on a terminal: log files and collectors get plain text.
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}

fn main() {
    // Leaked once: clap keeps a &'static str for the long version.
    let version = long_version();
    let matches = Cli::command()
        .long_version(&*Box::leak(version.into_boxed_str()))
        .get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    init_logs(cli.log_format);
    let code = match cli.command.run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("riskwatch: error: {e:#}");
            riskwatch::exit::code_for(&e)
        }
    };
    std::process::exit(code);
}
