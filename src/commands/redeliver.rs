//! `riskwatch redeliver`: moves webhook dead letters back into the outbox of a state
//! directory, with their original ids and bodies; the next `riskwatch run` on that state
//! sends them. Run it while riskwatch is stopped: RocksDB locks the directory.

use riskwatch_state::outbox::{Outbox, Redeliver};
use riskwatch_state::{Fingerprint, OpenMode, StateDir, StateError};
use std::path::PathBuf;
use std::sync::Arc;

/// Flags of `redeliver`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["id", "all", "list"])))]
pub struct Args {
    /// The state directory.
    #[arg(long)]
    state: PathBuf,
    /// Redeliver the dead letters with this webhook-id (one per endpoint that gave up).
    #[arg(long)]
    id: Option<String>,
    /// Redeliver every dead letter.
    #[arg(long)]
    all: bool,
    /// List the dead letters (endpoint, id, type, reason) and change nothing.
    #[arg(long)]
    list: bool,
}

/// Opens an existing state directory whatever configuration built it: this command reads
/// and writes only the outbox tables, which do not depend on the fingerprint.
fn open(path: &std::path::Path) -> Result<StateDir, StateError> {
    match StateDir::open(path, OpenMode::Existing, &Fingerprint::new()) {
        Err(StateError::ConfigChanged { changes, .. }) => {
            let stored: Fingerprint = changes
                .into_iter()
                .filter_map(|(key, stored, _)| stored.map(|v| (key, v)))
                .collect();
            StateDir::open(path, OpenMode::Existing, &stored)
        }
        other => other,
    }
}

/// Moves (or lists) dead letters.
pub fn run(a: Args) -> anyhow::Result<i32> {
    let outbox = Outbox::new(Arc::new(open(&a.state)?));
    if a.list {
        for d in outbox.dead_letters()? {
            println!(
                "{}\t{}\t{}\t{}",
                d.entry.endpoint, d.entry.id, d.entry.event_type, d.reason
            );
        }
        return Ok(riskwatch::exit::OK);
    }
    let filter = match &a.id {
        Some(id) => Redeliver::Id(id),
        None => Redeliver::All,
    };
    let n = outbox.redeliver(filter)?;
    println!(
        "moved {n} dead letter{} back to the outbox of {}; the next run sends {}",
        if n == 1 { "" } else { "s" },
        a.state.display(),
        if n == 1 { "it" } else { "them" }
    );
    Ok(riskwatch::exit::OK)
}
