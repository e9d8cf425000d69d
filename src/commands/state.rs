//! `riskwatch state`: look into a state directory (its last checkpoint, its size, its
//! records as text).

use riskwatch::replay::load_config;
use riskwatch_state::{OpenMode, StateDir};
use std::path::PathBuf;

/// Flags of `state`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// Print the last checkpoint (seq, frontier, sources, config version) and the size.
    Inspect(Target),
    /// Print every stored record as one text line per item, independent of how the
    /// checkpoints were spaced (two runs with the same state print the same lines).
    Dump(Target),
}

#[derive(clap::Args)]
struct Target {
    /// The state directory.
    #[arg(long)]
    state: PathBuf,
    /// The config the state was written under (built-in defaults when absent).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Worker threads per process the state was written with.
    #[arg(long, default_value_t = 2, value_parser = super::workers)]
    workers: usize,
    /// Processes of the cluster the state was written by.
    #[arg(long, default_value_t = 1, value_parser = super::workers)]
    processes: usize,
}

impl Target {
    fn open(&self) -> anyhow::Result<StateDir> {
        let (_, compiled) = load_config(self.config.as_deref())?;
        let expected = riskwatch::state::fingerprint(&compiled, self.workers, self.processes);
        Ok(StateDir::open(&self.state, OpenMode::Existing, &expected)?)
    }
}

/// Runs `state`.
pub fn run(a: Args) -> anyhow::Result<i32> {
    match a.what {
        What::Inspect(t) => {
            let dir = t.open()?;
            let report = serde_json::json!({
                "state": t.state.display().to_string(),
                "last": dir.last(),
                "bytes_on_disk": dir.size_on_disk(),
            });
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        What::Dump(t) => {
            let dir = t.open()?;
            let Some(last) = dir.last() else {
                println!("no checkpoint yet");
                return Ok(riskwatch::exit::OK);
            };
            let all = t.workers * t.processes;
            let stored = riskwatch::state::load(&dir, 0, all)?;
            for (w, s) in stored.iter().enumerate() {
                let lines = riskwatch_dataflows::checkpoint::canonical(w as u32, last.frontier, s)?;
                for l in lines {
                    println!("{l}");
                }
            }
        }
    }
    Ok(riskwatch::exit::OK)
}
