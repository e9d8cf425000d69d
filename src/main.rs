//! The `riskwatch` command line. Each command lives in its own file under `commands/`;
//! exit codes are in `riskwatch::exit`.

mod commands;

use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};

/// mimalloc: timely and differential allocate and free many mid-sized buffers per step;
/// glibc's malloc hands large ones back to the kernel and faults them in again.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

extern "C" {
    /// mimalloc's option setter, in the library the `mimalloc` crate links.
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// `mi_option_purge_delay` in mimalloc.h (15 in both its v2 and v3).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

/// mimalloc returns freed memory to the OS 10 ms after it is freed, and the dataflow frees
/// and allocates batches all the time: a replay spent a quarter of its CPU in the kernel
/// zeroing the pages it got back (perf). Never purging makes replay about 15% faster and
/// keeps resident memory at its peak, which follows the state. mimalloc reads its options
/// from the environment when the process loads, so this sets the option itself, unless
/// `MIMALLOC_PURGE_DELAY` is set (then that value stands).
///
/// The workspace denies unsafe code; this is its one exception, an FFI call of a setter.
#[allow(unsafe_code)]
fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a global option; mimalloc allows it at any time, on any thread.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}

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
    keep_freed_memory();
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
