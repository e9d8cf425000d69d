//! How the workers of a replay agree on where to stop when a signal asks them to.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A stop asked of a running replay (a signal), and the time the workers agree to stop
/// at.
///
/// Each worker publishes the time its input has reached after every chunk. The first worker
/// to see the flag picks the largest published time `T` as the stop time; every worker then
/// feeds what it has before `T` and no more, so every output at a time before `T` is complete
/// and the run ends at `T - 1` within about one chunk of work.
#[derive(Debug)]
pub(crate) struct Stop {
    flag: Arc<AtomicBool>,
    agreed: Mutex<Agreement>,
}

/// What the workers have fed and the stop time, changed under one lock so that no worker
/// can advance its input past a stop time another worker has just picked.
#[derive(Debug)]
struct Agreement {
    /// The agreed stop time; `u64::MAX` before a stop was asked for.
    at: u64,
    /// How far each worker has advanced its input ([`FINISHED`] once it fed everything).
    fed: Vec<u64>,
}

/// What a worker publishes once it has fed its whole share.
const FINISHED: u64 = u64::MAX - 1;

impl Agreement {
    /// Picks the stop time once the flag is up: the furthest any worker has advanced to.
    fn decide(&mut self, asked: bool) {
        if asked && self.at == u64::MAX {
            // Workers that fed their whole share need no cut.
            self.at = self
                .fed
                .iter()
                .copied()
                .filter(|&f| f != FINISHED)
                .max()
                .unwrap_or(FINISHED)
                .max(1);
        }
    }
}

impl Stop {
    pub(crate) fn new(flag: Arc<AtomicBool>, workers: usize) -> Stop {
        Stop {
            flag,
            agreed: Mutex::new(Agreement {
                at: u64::MAX,
                fed: vec![0; workers],
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Agreement> {
        let mut a = self
            .agreed
            .lock()
            .expect("no worker panicked holding the stop lock");
        a.decide(self.flag.load(Ordering::Relaxed));
        a
    }

    /// The agreed stop time, once a stop was asked for; `u64::MAX` before.
    pub(crate) fn time(&self) -> u64 {
        self.lock().at
    }

    /// Worker `index` wants to advance its input to `upto`: returns how far it may, which is
    /// never past an agreed stop time (unless it is there already) and never backwards.
    pub(crate) fn advance(&self, index: usize, upto: u64) -> u64 {
        let mut a = self.lock();
        let fed = a.fed[index];
        let upto = upto.min(a.at).max(fed);
        a.fed[index] = upto;
        upto
    }

    /// Worker `index` has fed its whole share.
    pub(crate) fn finish(&self, index: usize) {
        self.lock().fed[index] = FINISHED;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_worker_advances_past_the_time_picked_from_what_the_others_fed() {
        let flag = Arc::new(AtomicBool::new(false));
        let stop = Stop::new(flag.clone(), 2);
        assert_eq!(stop.advance(0, 100), 100);
        assert_eq!(stop.advance(1, 40), 40);
        assert_eq!(stop.time(), u64::MAX);
        flag.store(true, Ordering::SeqCst);
        // Worker 1 asks for more before it has seen the flag: it is held at 100.
        assert_eq!(stop.advance(1, 250), 100);
        assert_eq!(stop.time(), 100);
        // Worker 0 is there already and is never moved backwards.
        assert_eq!(stop.advance(0, 300), 100);
        assert_eq!(stop.advance(0, 50), 100);
    }

    #[test]
    fn a_worker_that_fed_everything_does_not_set_the_stop_time() {
        let flag = Arc::new(AtomicBool::new(false));
        let stop = Stop::new(flag.clone(), 2);
        assert_eq!(stop.advance(0, 1_000), 1_000);
        stop.finish(0);
        assert_eq!(stop.advance(1, 70), 70);
        flag.store(true, Ordering::SeqCst);
        assert_eq!(stop.time(), 70);
        assert_eq!(stop.advance(1, 90), 70);
    }

    #[test]
    fn a_stop_before_any_input_stops_at_the_first_time() {
        let flag = Arc::new(AtomicBool::new(true));
        let stop = Stop::new(flag, 3);
        assert_eq!(stop.time(), 1);
        assert_eq!(stop.advance(2, 500), 1);
    }

    #[test]
    fn when_every_worker_finished_nothing_is_cut() {
        let flag = Arc::new(AtomicBool::new(false));
        let stop = Stop::new(flag.clone(), 2);
        stop.finish(0);
        stop.finish(1);
        flag.store(true, Ordering::SeqCst);
        assert_eq!(stop.time(), FINISHED);
    }
}
