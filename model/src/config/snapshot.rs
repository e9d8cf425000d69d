//! `[snapshot]`: book snapshots taken by `riskwatch run` at observation times.

use super::ConfigError;
use crate::time::{parse_instant, Millis};
use serde::{Deserialize, Serialize};

/// Book snapshots of `riskwatch run`: one record per customer and strategy at each
/// observation time (the record of `riskwatch replay --snapshot-at`, docs/STRATEGY.md).
/// Off unless `at` or `every` is given.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnapshotConfig {
    /// Observation times: epoch milliseconds, UTC dates (`"2026-03-01"`, its midnight) or
    /// RFC 3339 UTC times (`"2026-03-01T12:00:00Z"`).
    pub at: Vec<String>,
    /// Also every this much event time from `from` (`"1d"`: every UTC midnight from it).
    pub every: Option<Millis>,
    /// The first periodic observation time; required with `every`.
    pub from: String,
    /// Where the files go: `snapshots.ndjson` and `snapshots.parquet` in files mode (all
    /// times in one pair, as replay writes them), one `as_of=…` directory per time in
    /// Kafka mode. Empty: `snapshots` inside `run.output_dir`.
    pub dir: String,
}

/// The observation times of a [`SnapshotConfig`], parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotTimes {
    /// The listed times, ascending, without duplicates.
    pub at: Vec<u64>,
    /// `(first, period)` of the periodic times `first + k × period`, if any.
    pub every: Option<(u64, u64)>,
}

impl SnapshotTimes {
    /// Whether any time is configured.
    pub fn is_empty(&self) -> bool {
        self.at.is_empty() && self.every.is_none()
    }

    /// The first observation time at or after `t`, if any.
    pub fn next_at_or_after(&self, t: u64) -> Option<u64> {
        let listed = self.at.iter().copied().find(|a| *a >= t);
        let periodic = self.every.map(|(first, period)| {
            if t <= first {
                first
            } else {
                first + (t - first).div_ceil(period) * period
            }
        });
        listed.into_iter().chain(periodic).min()
    }
}

impl SnapshotConfig {
    /// The observation times, or the key that does not parse.
    pub fn times(&self) -> Result<SnapshotTimes, ConfigError> {
        let mut at = Vec::with_capacity(self.at.len());
        for (i, t) in self.at.iter().enumerate() {
            at.push(
                parse_instant(t).map_err(|e| ConfigError::new(format!("snapshot.at[{i}]"), e))?,
            );
        }
        at.sort_unstable();
        at.dedup();
        let every =
            match (self.every, self.from.trim()) {
                (None, "") => None,
                (None, _) => {
                    return Err(ConfigError::new(
                        "snapshot.from",
                        "applies only with snapshot.every (the period of the observation times)",
                    ))
                }
                (Some(_), "") => return Err(ConfigError::new(
                    "snapshot.from",
                    "required with snapshot.every: the first observation time, e.g. \"2026-01-01\"",
                )),
                (Some(p), from) => {
                    if p.ms() == 0 {
                        return Err(ConfigError::new("snapshot.every", "must be positive"));
                    }
                    let first =
                        parse_instant(from).map_err(|e| ConfigError::new("snapshot.from", e))?;
                    Some((first, p.ms()))
                }
            };
        Ok(SnapshotTimes { at, every })
    }

    pub(super) fn validate(&self, tick: Millis) -> Result<(), ConfigError> {
        self.times()?;
        if let Some(p) = self.every {
            if !p.ms().is_multiple_of(tick.ms()) {
                return Err(ConfigError::new(
                    "snapshot.every",
                    format!("{p} must be a multiple of the tick ({tick})"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(at: &[&str], every: Option<u64>, from: &str) -> SnapshotConfig {
        SnapshotConfig {
            at: at.iter().map(|s| s.to_string()).collect(),
            every: every.map(Millis),
            from: from.into(),
            dir: String::new(),
        }
    }

    #[test]
    fn times_parse_sort_and_schedule() {
        let t = config(
            &["2026-01-03", "1000", "2026-01-03T00:00:00Z"],
            Some(10),
            "500",
        )
        .times()
        .expect("valid");
        assert_eq!(t.at, vec![1000, 1_767_398_400_000]);
        assert_eq!(t.every, Some((500, 10)));
        assert_eq!(t.next_at_or_after(0), Some(500));
        assert_eq!(t.next_at_or_after(501), Some(510));
        assert_eq!(t.next_at_or_after(510), Some(510));
        let listed = config(&["1000"], None, "").times().expect("valid");
        assert_eq!(listed.next_at_or_after(999), Some(1000));
        assert_eq!(listed.next_at_or_after(1001), None);
        assert!(config(&[], None, "").times().expect("valid").is_empty());
    }

    #[test]
    fn bad_times_name_their_key() {
        let e = config(&["1000", "yesterday"], None, "")
            .times()
            .unwrap_err();
        assert_eq!(e.key, "snapshot.at[1]");
        assert_eq!(
            config(&[], Some(10), "").times().unwrap_err().key,
            "snapshot.from"
        );
        assert_eq!(
            config(&[], None, "2026-01-01").times().unwrap_err().key,
            "snapshot.from"
        );
        assert_eq!(
            config(&[], Some(0), "1").times().unwrap_err().key,
            "snapshot.every"
        );
        let e = config(&[], Some(1500), "1")
            .validate(Millis(1000))
            .unwrap_err();
        assert_eq!(e.key, "snapshot.every");
    }
}
