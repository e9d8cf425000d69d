//! The progress line of a replay on stderr: events fed, events/s, memory, and (when the
//! input's size is known) the share read and an ETA.
//!
//! On a terminal the line is redrawn in place twice a second; off a terminal (CI logs,
//! journald) one plain line is printed every five seconds. `--quiet` leaves it out.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A running progress line; clones share it.
#[derive(Clone, Debug)]
pub struct Progress {
    fed: Arc<AtomicU64>,
    read: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
}

impl Progress {
    /// Starts the thread that prints the line until [`Progress::finish`]; `total_bytes` is
    /// the input's size (0 when unknown).
    pub fn start(total_bytes: u64) -> Progress {
        let p = Progress {
            fed: Arc::new(AtomicU64::new(0)),
            read: Arc::new(AtomicU64::new(0)),
            done: Arc::new(AtomicBool::new(false)),
        };
        let (fed, read, done) = (p.fed.clone(), p.read.clone(), p.done.clone());
        let terminal = std::io::stderr().is_terminal();
        let every = if terminal {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(5)
        };
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut last = Instant::now();
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                if last.elapsed() < every {
                    continue;
                }
                last = Instant::now();
                let line = status(
                    fed.load(Ordering::Relaxed),
                    read.load(Ordering::Relaxed),
                    total_bytes,
                    start.elapsed(),
                    resident_mb(),
                );
                if terminal {
                    eprint!("\r  {line}   ");
                } else {
                    eprintln!("progress: {line}");
                }
            }
            if terminal {
                eprintln!();
            }
        });
        p
    }

    /// Events fed into the dataflow.
    pub fn add(&self, n: u64) {
        self.fed.fetch_add(n, Ordering::Relaxed);
    }

    /// Where the reader's count of input bytes read goes.
    pub fn bytes_read(&self) -> Arc<AtomicU64> {
        self.read.clone()
    }

    /// Stops the line.
    pub fn finish(&self) {
        self.done.store(true, Ordering::Relaxed);
    }
}

/// The text of the line.
fn status(fed: u64, read: u64, total: u64, elapsed: Duration, rss_mb: Option<u64>) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let mut s = format!("{fed} events, {:.0} events/s", fed as f64 / secs);
    if total > 0 && read > 0 {
        let share = (read as f64 / total as f64).min(1.0);
        let eta = secs * (1.0 - share) / share;
        s.push_str(&format!(", {:.0}% read, ETA {:.0} s", share * 100.0, eta));
    }
    if let Some(mb) = rss_mb {
        s.push_str(&format!(", {mb} MB resident"));
    }
    s
}

/// This process's resident memory (VmRSS), MB; `None` where /proc does not say.
fn resident_mb() -> Option<u64> {
    status_kb("/proc/self/status", "VmRSS").map(|kb| kb / 1024)
}

/// A `kB` field of a /proc `status` file (`VmRSS`, `VmHWM`, …); `None` when the file or the
/// field is not there.
pub fn status_kb(path: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_gives_rate_share_eta_and_memory_when_known() {
        let s = status(1_000, 250, 1_000, Duration::from_secs(10), Some(512));
        assert_eq!(
            s,
            "1000 events, 100 events/s, 25% read, ETA 30 s, 512 MB resident"
        );
        assert_eq!(
            status(50, 0, 0, Duration::from_secs(1), None),
            "50 events, 50 events/s"
        );
    }
}
