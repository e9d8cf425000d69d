//! What one delivery attempt's result means, and when to try again: the status-code
//! classification, exponential backoff with full jitter, and `Retry-After`.
//!
//! | result | outcome | reason |
//! |---|---|---|
//! | 2xx | delivered | |
//! | 408, 429 | retry | `http_408`, `http_429` |
//! | 5xx | retry | `http_5xx:<code>` |
//! | other 4xx | dead at once | `http_4xx:<code>` |
//! | 3xx (redirects are not followed) | dead at once | `http_3xx:<code>` |
//! | timeout | retry | `timeout` |
//! | connection refused, reset, DNS | retry | `connect`, `connection` |
//! | TLS (certificate, handshake) | dead at once | `tls:<detail>` |
//!
//! Reasons are fixed codes: they go into dead letters and log fields, never a URL or a
//! body.

use std::time::{Duration, SystemTime};

/// The longest `Retry-After` honoured; a larger one waits this long.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// What an attempt's result means for the event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx: the receiver has it.
    Delivered,
    /// A transient failure: try again after the backoff, and not before `retry_after`.
    Retry {
        /// A fixed reason code.
        reason: String,
        /// The response's `Retry-After`, if it had one.
        retry_after: Option<Duration>,
    },
    /// A permanent failure: dead-letter now.
    Dead {
        /// A fixed reason code.
        reason: String,
    },
}

/// The outcome of an HTTP response with `status` and `Retry-After` value `retry_after`.
pub fn classify_status(status: u16, retry_after: Option<&str>, now: SystemTime) -> Outcome {
    let retry = |reason: String| Outcome::Retry {
        reason,
        retry_after: retry_after.and_then(|v| parse_retry_after(v, now)),
    };
    match status {
        200..=299 => Outcome::Delivered,
        408 | 429 => retry(format!("http_{status}")),
        300..=399 => Outcome::Dead {
            reason: format!("http_3xx:{status}"),
        },
        400..=499 => Outcome::Dead {
            reason: format!("http_4xx:{status}"),
        },
        500..=599 => retry(format!("http_5xx:{status}")),
        _ => retry(format!("http_other:{status}")),
    }
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP-date (RFC 9110 §10.2.3), as a
/// wait from `now` (zero for a date in the past), at most [`MAX_RETRY_AFTER`]. `None` for
/// anything else.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// Exponential backoff with full jitter: before retry `n` (1 = the first retry) wait a
/// uniformly random time in `[0, min(max, initial × 2^(n-1))]`, and never less than a
/// `Retry-After`.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    rng: u64,
}

impl Backoff {
    /// A schedule from `initial` doubling up to `max`; `seed` drives the jitter.
    pub fn new(initial: Duration, max: Duration, seed: u64) -> Backoff {
        Backoff {
            initial,
            max: max.max(initial),
            rng: seed,
        }
    }

    /// The ceiling of the wait before retry `n` (1-based).
    pub fn ceiling(&self, n: u32) -> Duration {
        let factor = 1u32
            .checked_shl(n.saturating_sub(1).min(31))
            .unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The wait before retry `n` (1-based): full jitter under the ceiling, raised to
    /// `retry_after` when that is longer.
    pub fn delay(&mut self, n: u32, retry_after: Option<Duration>) -> Duration {
        let ceiling = self.ceiling(n).as_millis() as u64;
        let jitter = Duration::from_millis(self.next() % (ceiling + 1));
        jitter.max(retry_after.unwrap_or(Duration::ZERO))
    }

    /// SplitMix64.
    fn next(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_classify_as_the_table_says() {
        let now = SystemTime::now();
        assert_eq!(classify_status(204, None, now), Outcome::Delivered);
        for (code, reason) in [
            (404, "http_4xx:404"),
            (410, "http_4xx:410"),
            (301, "http_3xx:301"),
        ] {
            assert_eq!(
                classify_status(code, Some("5"), now),
                Outcome::Dead {
                    reason: reason.into()
                }
            );
        }
        for (code, reason) in [(408, "http_408"), (429, "http_429"), (503, "http_5xx:503")] {
            assert_eq!(
                classify_status(code, Some("7"), now),
                Outcome::Retry {
                    reason: reason.into(),
                    retry_after: Some(Duration::from_secs(7))
                }
            );
        }
    }

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("99999999", now), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter_below_the_ceiling() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(300), 7);
        assert_eq!(b.ceiling(1), Duration::from_millis(500));
        assert_eq!(b.ceiling(2), Duration::from_secs(1));
        assert_eq!(b.ceiling(4), Duration::from_secs(4));
        assert_eq!(b.ceiling(20), Duration::from_secs(300));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(300));
        let mut distinct = std::collections::BTreeSet::new();
        for n in 1..=12 {
            for _ in 0..50 {
                let d = b.delay(n, None);
                assert!(d <= b.ceiling(n));
                distinct.insert(d);
            }
        }
        assert!(distinct.len() > 100, "jitter spreads the waits");
        let floor = Duration::from_secs(2);
        for _ in 0..50 {
            assert!(b.delay(1, Some(floor)) >= floor);
        }
    }
}
