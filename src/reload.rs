//! Live strategy changes in `riskwatch run`: the config file is read again when it changes
//! (its modification time or size, checked every second) or on SIGHUP, validated, and
//! handed to the dataflow, which switches every worker of every process at one event time.
//!
//! ```text
//!  file change / SIGHUP ─▶ reload thread (process 0): read, resolve imports, compile,
//!                          │  restart-only sections unchanged? strategies changed?
//!                          ├─ rejected: logged with the key and reason; the old config stays
//!                          └─ accepted: Reloads::pending ─▶ worker 0 ─▶ control input at its
//!                                       input time T, one Change::Config per worker ─▶ every
//!                                       worker's evaluate switches at T, re-evaluates its
//!                                       customers and emits only what changed
//! ```
//!
//! Only the strategy part of the config changes live: `[[strategy]]` (rules, scorecard,
//! levels, policy, cases) and `[experiment]`. The other sections (`time`, `window`,
//! `delinquency`, `rings`, `run`, `kafka`, `webhook`) shape state that is in flight or connections
//! that are open; a change to any of them rejects the whole new file, naming the section,
//! so nothing is half-applied. In a cluster only process 0 reads the file: the change
//! enters the dataflow at its worker 0 and reaches the others through the dataflow, so
//! every process switches at the same event time whatever files the others see.

use crate::replay::read_strategy_change;
use anyhow::Context;
use riskwatch_dataflows::plan::Compiled;
use riskwatch_model::config::Config;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

/// How often the reload thread looks at the config file's modification time and size.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// An accepted strategy change waiting for worker 0.
#[derive(Clone, Debug)]
pub struct Pending {
    /// The whole config as JSON, imports resolved: what the dataflow compiles.
    pub json: String,
    /// `name@version` of each strategy, for logs and the summary.
    pub versions: String,
}

/// What became of one reload attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReloadEvent {
    /// Handed to the dataflow; in force from event time `ts` on every worker.
    Applied {
        /// Event time (ms) from which the new strategies decide.
        ts: u64,
        /// `name@version` of each strategy.
        versions: String,
    },
    /// Not applied; the config in force stays.
    Rejected {
        /// Why, naming the config key where there is one.
        reason: String,
    },
}

/// State shared by the reload thread and the workers.
#[derive(Debug, Default)]
pub struct Reloads {
    /// Whether `pending` holds a change: worker 0 asks on every loop, without the lock.
    offered: AtomicBool,
    pending: Mutex<Option<Pending>>,
    events: Mutex<Vec<ReloadEvent>>,
    changed: Condvar,
}

impl Reloads {
    /// Offers an accepted change to worker 0 (a later one replaces one not yet taken).
    pub fn offer(&self, p: Pending) {
        *self.pending.lock().expect("reload lock") = Some(p);
        self.offered.store(true, Ordering::Release);
    }

    /// Takes the change waiting for worker 0, if any.
    pub fn take(&self) -> Option<Pending> {
        if !self.offered.swap(false, Ordering::Acquire) {
            return None;
        }
        self.pending.lock().expect("reload lock").take()
    }

    /// How many changes were applied and how many rejected.
    pub fn counts(events: &[ReloadEvent]) -> (usize, usize) {
        let applied = events
            .iter()
            .filter(|e| matches!(e, ReloadEvent::Applied { .. }))
            .count();
        (applied, events.len() - applied)
    }

    /// Records what became of an attempt and logs it.
    pub fn record(&self, event: ReloadEvent) {
        match &event {
            ReloadEvent::Applied { ts, versions } => {
                tracing::info!(ts, versions = versions.as_str(), "strategy change applied")
            }
            ReloadEvent::Rejected { reason } => tracing::error!(
                reason = reason.as_str(),
                "config change rejected; the config in force stays"
            ),
        }
        self.events.lock().expect("reload lock").push(event);
        self.changed.notify_all();
    }

    /// Every attempt so far, in order.
    pub fn events(&self) -> Vec<ReloadEvent> {
        self.events.lock().expect("reload lock").clone()
    }

    /// Waits until at least `n` attempts have been recorded, or `timeout` passed; returns
    /// them.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReloadEvent> {
        let events = self.events.lock().expect("reload lock");
        let (events, _) = self
            .changed
            .wait_timeout_while(events, timeout, |e| e.len() < n)
            .expect("reload lock");
        events.clone()
    }
}

/// The result of reading the config file again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// The strategies in the file are those in force.
    Unchanged,
    /// New strategies, valid: hand them to the dataflow.
    Changed(String),
    /// Not usable; the reason names the key.
    Rejected(String),
}

/// Reads the config file again and decides whether it is a valid strategy change.
pub struct Reloader {
    path: PathBuf,
    /// The config the process started with: restart-only sections are compared to it.
    running: Config,
    /// The compiled startup config: the feature layout must not change.
    compiled: Compiled,
    /// The config in force as carried through the dataflow (JSON, imports resolved). Its
    /// restart-only sections equal `running`'s, so two equal JSONs are equal strategies.
    current: String,
    /// `name@version` of each strategy in force.
    versions: String,
    /// `(modified, len)` of the file when last read.
    stamp: Option<(SystemTime, u64)>,
}

impl Reloader {
    /// A reloader for `path`, whose contents `running` and `compiled` were loaded from.
    pub fn new(path: &Path, running: &Config, compiled: &Compiled) -> anyhow::Result<Reloader> {
        let context = || format!("reading {} for live changes", path.display());
        let (config, now) = read_strategy_change(path, compiled).with_context(context)?;
        Ok(Reloader {
            path: path.to_path_buf(),
            running: running.clone(),
            compiled: compiled.clone(),
            current: serde_json::to_string(&config).with_context(context)?,
            versions: versions(&now),
            stamp: stamp(path),
        })
    }

    /// Whether the file's modification time or size changed since it was last read.
    pub fn file_changed(&self) -> bool {
        stamp(&self.path) != self.stamp
    }

    /// `name@version` of each strategy in force (versions default to a content hash).
    pub fn versions(&self) -> &str {
        &self.versions
    }

    /// Reads the file: a valid change of strategies becomes the one in force.
    pub fn check(&mut self) -> Check {
        self.stamp = stamp(&self.path);
        let (new, compiled) = match read_strategy_change(&self.path, &self.compiled) {
            Ok(read) => read,
            Err(e) => return Check::Rejected(format!("{e:#}")),
        };
        let restart_only = [
            ("time", self.running.time != new.time),
            ("window", self.running.windows != new.windows),
            ("delinquency", self.running.delinquency != new.delinquency),
            ("rings", self.running.rings != new.rings),
            ("run", self.running.run != new.run),
            ("kafka", self.running.kafka != new.kafka),
            ("webhook", self.running.webhooks != new.webhooks),
        ];
        let changed: Vec<&str> = restart_only
            .iter()
            .filter(|(_, c)| *c)
            .map(|(k, _)| *k)
            .collect();
        if !changed.is_empty() {
            return Check::Rejected(format!(
                "config key \"{}\" changed: it applies only at startup (restart to change it); \
                 nothing of the new file was applied",
                changed.join("\", \"")
            ));
        }
        let json = match serde_json::to_string(&new) {
            Ok(json) => json,
            Err(e) => return Check::Rejected(format!("serializing the new config: {e}")),
        };
        if json == self.current {
            return Check::Unchanged;
        }
        self.current = json.clone();
        self.versions = versions(&compiled);
        Check::Changed(json)
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

fn versions(compiled: &Compiled) -> String {
    compiled
        .strategies
        .list
        .iter()
        .map(|s| format!("{}@{}", s.name, s.version))
        .collect::<Vec<_>>()
        .join(",")
}

/// Triggers a reload from outside: SIGHUP (see [`crate::live::shutdown_flag`]) and tests.
#[derive(Clone)]
pub struct ReloadHandle {
    /// Where accepted changes and outcomes go.
    pub reloads: Arc<Reloads>,
    notify: Arc<tokio::sync::Notify>,
}

impl ReloadHandle {
    /// Asks the reload thread to read the file now.
    pub fn trigger(&self) {
        self.notify.notify_one();
    }
}

/// Starts the reload thread for `reloader`: it reads the file on [`ReloadHandle::trigger`]
/// (SIGHUP) and when the file's modification time or size changes.
pub fn spawn(mut reloader: Reloader) -> anyhow::Result<ReloadHandle> {
    let reloads = Arc::new(Reloads::default());
    let notify = Arc::new(tokio::sync::Notify::new());
    let handle = ReloadHandle {
        reloads: reloads.clone(),
        notify: notify.clone(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .context("starting the reload thread")?;
    std::thread::Builder::new()
        .name("reload".into())
        .spawn(move || {
            runtime.block_on(async move {
                let mut tick = tokio::time::interval(WATCH_INTERVAL);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    let cause = tokio::select! {
                        _ = tick.tick() => {
                            if !reloader.file_changed() {
                                continue;
                            }
                            "file changed"
                        }
                        _ = notify.notified() => "requested",
                    };
                    tracing::info!(cause, path = %reloader.path.display(), "reading the config again");
                    match reloader.check() {
                        Check::Unchanged => {
                            tracing::info!("strategies unchanged; nothing to apply")
                        }
                        Check::Changed(json) => {
                            let versions = reloader.versions().to_string();
                            reloads.offer(Pending { json, versions });
                        }
                        Check::Rejected(reason) => {
                            reloads.record(ReloadEvent::Rejected { reason })
                        }
                    }
                }
            })
        })
        .context("starting the reload thread")?;
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::load_config;

    fn write(path: &Path, text: &str) {
        // A different size or a later mtime: make both differ for the watcher.
        std::fs::write(path, text).unwrap();
    }

    /// The default config with the multi-lending threshold lowered from 3 to 2.
    fn edited() -> String {
        let text = riskwatch_model::config::DEFAULT_CONFIG.replacen(
            "distinct_lenders_30d >= 3",
            "distinct_lenders_30d >= 2",
            1,
        );
        assert_ne!(text, riskwatch_model::config::DEFAULT_CONFIG);
        text
    }

    fn setup(name: &str) -> (PathBuf, Reloader) {
        let dir =
            std::env::temp_dir().join(format!("riskwatch-reload-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("riskwatch.toml");
        write(&path, riskwatch_model::config::DEFAULT_CONFIG);
        let (config, compiled) = load_config(Some(&path)).unwrap();
        let r = Reloader::new(&path, &config, &compiled).unwrap();
        (path, r)
    }

    #[test]
    fn an_unchanged_file_is_no_change() {
        let (path, mut r) = setup("same");
        assert!(!r.file_changed());
        // Rewritten with the same strategies, reformatted: no change.
        write(
            &path,
            &format!("{}\n# a comment\n", riskwatch_model::config::DEFAULT_CONFIG),
        );
        assert!(r.file_changed());
        assert_eq!(r.check(), Check::Unchanged);
        assert!(!r.file_changed());
    }

    #[test]
    fn a_changed_threshold_is_a_change_once() {
        let (path, mut r) = setup("threshold");
        let before = r.versions().to_string();
        write(&path, &edited());
        let Check::Changed(json) = r.check() else {
            panic!("expected a change")
        };
        assert!(json.contains("distinct_lenders_30d >= 2"));
        // The version is a content hash: a new one.
        assert!(before.starts_with("baseline@"), "{before}");
        assert_ne!(r.versions(), before);
        // The same file again: in force already.
        assert_eq!(r.check(), Check::Unchanged);
    }

    #[test]
    fn a_broken_file_is_rejected_with_the_key_and_the_old_one_stays() {
        let (path, mut r) = setup("broken");
        let before = r.current.clone();
        write(&path, "[time]\ntick = \"banana\"\n");
        let Check::Rejected(reason) = r.check() else {
            panic!("expected a rejection")
        };
        assert!(reason.contains("time.tick"), "{reason}");
        assert_eq!(r.current, before);
        write(&path, "this is not toml [");
        assert!(matches!(r.check(), Check::Rejected(_)));
        // Back to the original: unchanged, since the broken ones never took effect.
        write(&path, riskwatch_model::config::DEFAULT_CONFIG);
        assert_eq!(r.check(), Check::Unchanged);
    }

    #[test]
    fn restart_only_sections_reject_the_whole_file() {
        let (path, mut r) = setup("restart");
        let text = edited().replacen(
            "brokers = \"127.0.0.1:9092\"",
            "brokers = \"elsewhere:9092\"",
            1,
        );
        write(&path, &text);
        let Check::Rejected(reason) = r.check() else {
            panic!("expected a rejection")
        };
        assert!(reason.contains("\"kafka\""), "{reason}");
        assert!(reason.contains("restart"), "{reason}");
    }

    #[test]
    fn the_thread_reads_a_changed_file_and_offers_it() {
        let (path, r) = setup("thread");
        let before = r.versions().to_string();
        let handle = spawn(r).unwrap();
        let text = edited();
        // A later modification time and another size: picked up without a trigger.
        write(&path, &text);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let pending = loop {
            if let Some(p) = handle.reloads.take() {
                break p;
            }
            assert!(std::time::Instant::now() < deadline, "never offered");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(pending.json.contains("distinct_lenders_30d >= 2"));
        assert_ne!(pending.versions, before);
        // A broken file: recorded as rejected, nothing offered.
        write(&path, "[strategy]\nname = 1\n");
        handle.trigger();
        let events = handle.reloads.wait_for(1, Duration::from_secs(10));
        assert!(
            matches!(&events[..], [ReloadEvent::Rejected { .. }]),
            "{events:?}"
        );
        assert!(handle.reloads.take().is_none());
    }
}
