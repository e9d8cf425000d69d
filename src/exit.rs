//! Exit codes of the `riskwatch` binary, one table for every command.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success; also `run` stopped by a signal after a graceful stop |
//! | 1 | a runtime failure (a broker, the dataflow, anything not below) |
//! | 2 | usage: an unknown flag, a bad value, or a flag that does not apply |
//! | 66 | an input is missing or unusable: no input directory, an absent stream, a dangling symlink, an unreadable input file; a state directory that is missing (without `--init-state`), not a state directory, or corrupted |
//! | 69 | `check-config --connect`: a check of the environment failed (a broker, a topic, a webhook endpoint, a directory) |
//! | 74 | an I/O error writing outputs or checkpoints (disk full, read-only, permission denied) |
//! | 78 | an invalid config: the message names the key, or the config file's path; a state directory written under another window or time config, or format version |
//! | 130 | a batch command (`replay`, `demo`, `compare`) stopped by SIGINT; outputs up to `stopped_at` are complete |
//! | 143 | the same, stopped by SIGTERM |
//!
//! The codes 66, 69, 74 and 78 are sysexits.h's `EX_NOINPUT`, `EX_UNAVAILABLE`, `EX_IOERR`
//! and `EX_CONFIG` (Vector's `validate` uses 78 for a bad config too).

use riskwatch_connectors::error::ConnectorError;
use riskwatch_model::config::ConfigError;

/// Success.
pub const OK: i32 = 0;
/// A runtime failure.
pub const FAILURE: i32 = 1;
/// A usage error.
pub const USAGE: i32 = 2;
/// A missing or unusable input.
pub const NO_INPUT: i32 = 66;
/// A service the environment check needs is unavailable (sysexits.h `EX_UNAVAILABLE`).
pub const UNAVAILABLE: i32 = 69;
/// An I/O error writing outputs.
pub const IO_ERROR: i32 = 74;
/// An invalid config.
pub const CONFIG: i32 = 78;

/// A usage error found after parsing: a flag that does not apply here, with the reason.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// A config file that cannot be read: an invalid config (78), naming the path.
#[derive(Debug, thiserror::Error)]
#[error("config file {path}: {source}")]
pub struct ConfigFile {
    /// The path.
    pub path: String,
    /// The I/O error.
    #[source]
    pub source: std::io::Error,
}

/// The exit code for an error: the first error in its chain that has one of its own.
pub fn code_for(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if cause.is::<Usage>() {
            return USAGE;
        }
        if cause.is::<ConfigError>() || cause.is::<ConfigFile>() {
            return CONFIG;
        }
        if let Some(s) = cause.downcast_ref::<riskwatch_state::StateError>() {
            return state_code(s);
        }
        if let Some(c) = cause.downcast_ref::<ConnectorError>() {
            return match c {
                ConnectorError::Input { .. } => NO_INPUT,
                ConnectorError::Io { .. } => IO_ERROR,
                ConnectorError::Config(_) | ConnectorError::Webhook { .. } => CONFIG,
                // Transparent: the state error is not in the chain of sources.
                ConnectorError::State(s) => state_code(s),
                _ => FAILURE,
            };
        }
    }
    FAILURE
}

/// The exit code of a state directory error.
fn state_code(s: &riskwatch_state::StateError) -> i32 {
    use riskwatch_state::StateError as E;
    match s {
        E::Missing { .. } | E::NotStateDir { .. } | E::Corrupt { .. } => NO_INPUT,
        E::Version { .. } | E::ConfigChanged { .. } => CONFIG,
        E::Io { .. } => IO_ERROR,
    }
}

/// The exit code of a batch command stopped by the signal numbered `signal` (0: none).
pub fn stopped(signal: i32) -> i32 {
    if signal > 0 {
        128 + signal
    } else {
        OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_kind_has_its_code() {
        let config: anyhow::Error = ConfigError::new("time.tick", "bad").into();
        assert_eq!(code_for(&config.context("loading")), CONFIG);
        let input: anyhow::Error = ConnectorError::Input {
            path: "in".into(),
            reason: "absent".into(),
        }
        .into();
        assert_eq!(code_for(&input), NO_INPUT);
        let io: anyhow::Error = ConnectorError::Io {
            path: "out/alerts.ndjson".into(),
            source: std::io::Error::other("full"),
        }
        .into();
        assert_eq!(code_for(&io), IO_ERROR);
        assert_eq!(code_for(&Usage("no".into()).into()), USAGE);
        assert_eq!(code_for(&anyhow::anyhow!("other")), FAILURE);
        assert_eq!(stopped(15), 143);
        assert_eq!(stopped(2), 130);
        assert_eq!(stopped(0), 0);
    }
}
