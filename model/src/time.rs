//! Event-time arithmetic: ticks, expiry granules, and human-readable durations.
//!
//! Timely timestamps are event time in milliseconds rounded up to a tick; a window of
//! length `W` with granularity `g` counts an event at `e` during `[ceil_tick(e), ceil_g(e + W))`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Milliseconds in one second.
pub const MS_PER_SECOND: u64 = 1_000;
/// Milliseconds in one minute.
pub const MS_PER_MINUTE: u64 = 60 * MS_PER_SECOND;
/// Milliseconds in one hour.
pub const MS_PER_HOUR: u64 = 60 * MS_PER_MINUTE;
/// Milliseconds in one day.
pub const MS_PER_DAY: u64 = 24 * MS_PER_HOUR;
/// The largest timestamp the contracts allow (year 3000).
pub const MAX_TS: u64 = 32_503_680_000_000;

/// Rounds `t` up to the next multiple of `g` (`t` itself when already a multiple).
///
/// `g` must be positive. Saturates instead of overflowing.
#[inline]
pub fn ceil_to(t: u64, g: u64) -> u64 {
    debug_assert!(g > 0, "granularity must be positive");
    match t % g {
        0 => t,
        r => t.saturating_add(g - r),
    }
}

/// Days past due at time `t` of an installment due at `due_ts` (loan.schema.json):
/// 0 while `t <= due_ts`, else `ceil((t - due_ts) / 1 day)`.
#[inline]
pub fn days_past_due(due_ts: u64, t: u64) -> u64 {
    if t <= due_ts {
        0
    } else {
        (t - due_ts).div_ceil(MS_PER_DAY)
    }
}

/// Epoch milliseconds as RFC 3339 UTC with milliseconds, e.g. `2024-03-01T08:30:00.250Z`
/// (proleptic Gregorian, no leap seconds: what every JSON consumer parses).
pub fn rfc3339_ms(ts: u64) -> String {
    let days = ts / MS_PER_DAY;
    let ms_of_day = ts % MS_PER_DAY;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (never negative here).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, rem) = (ms_of_day / MS_PER_HOUR, ms_of_day % MS_PER_HOUR);
    let (m, rem) = (rem / MS_PER_MINUTE, rem % MS_PER_MINUTE);
    let (s, ms) = (rem / MS_PER_SECOND, rem % MS_PER_SECOND);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
}

/// An instant given on a command line: epoch milliseconds (`1767225600000`), a UTC date
/// (`2026-01-01`, its midnight) or an RFC 3339 UTC time (`2026-01-01T12:00:00Z`, optionally
/// with `.sss` milliseconds). The inverse of [`rfc3339_ms`] for its own output.
pub fn parse_instant(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse()
            .map_err(|_| format!("{t:?} is too large for epoch milliseconds"));
    }
    let bad = || {
        format!(
            "{t:?} is not epoch milliseconds, a date (2026-01-01) or an RFC 3339 UTC time \
             (2026-01-01T12:00:00Z)"
        )
    };
    let num = |s: &str| -> Result<i64, String> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    let (date, time) = match t.split_once('T') {
        Some((d, rest)) => (d, Some(rest.strip_suffix('Z').ok_or_else(bad)?)),
        None => (t, None),
    };
    let mut parts = date.splitn(3, '-');
    let (y, m, d) = (
        num(parts.next().unwrap_or(""))?,
        num(parts.next().unwrap_or(""))?,
        num(parts.next().unwrap_or(""))?,
    );
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    // Howard Hinnant's days_from_civil.
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let mut ms = days * MS_PER_DAY as i64;
    if let Some(time) = time {
        let (hms, frac) = match time.split_once('.') {
            Some((a, b)) if b.len() == 3 => (a, num(b)?),
            Some(_) => return Err(bad()),
            None => (time, 0),
        };
        let mut hms = hms.splitn(3, ':');
        let (h, mi, s) = (
            num(hms.next().unwrap_or(""))?,
            num(hms.next().unwrap_or(""))?,
            num(hms.next().unwrap_or(""))?,
        );
        if h > 23 || mi > 59 || s > 59 {
            return Err(bad());
        }
        ms += ((h * 60 + mi) * 60 + s) * 1000 + frac;
    }
    // A day that does not exist (2026-02-30) does not round-trip.
    let back = rfc3339_ms(ms as u64);
    if back[..10] != *date {
        return Err(bad());
    }
    Ok(ms as u64)
}

/// A duration in milliseconds, written in config as a number and a unit: `"10ms"`, `"10s"`,
/// `"5m"` (or `"5min"`), `"1h"`, `"7d"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(pub u64);

impl Millis {
    /// The duration in milliseconds.
    pub fn ms(self) -> u64 {
        self.0
    }

    /// Parses `"<integer><unit>"` with unit one of `ms`, `s`, `m`, `min`, `h`, `d`.
    pub fn parse(text: &str) -> Result<Millis, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("duration \"{text}\" has no unit (ms, s, m, h, d)"))?;
        let (num, unit) = text.split_at(split);
        let too_large = || format!("duration \"{text}\" is too large (at most {}ms)", u64::MAX);
        let n: u64 = num.parse().map_err(|e: std::num::ParseIntError| {
            if *e.kind() == std::num::IntErrorKind::PosOverflow {
                too_large()
            } else {
                format!("duration \"{text}\" does not start with a whole number")
            }
        })?;
        let factor = match unit.trim() {
            "ms" => 1,
            "s" => MS_PER_SECOND,
            "m" | "min" => MS_PER_MINUTE,
            "h" => MS_PER_HOUR,
            "d" => MS_PER_DAY,
            other => return Err(format!("duration \"{text}\" has unknown unit \"{other}\"")),
        };
        n.checked_mul(factor).map(Millis).ok_or_else(too_large)
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        for (unit, size) in [
            ("d", MS_PER_DAY),
            ("h", MS_PER_HOUR),
            ("m", MS_PER_MINUTE),
            ("s", MS_PER_SECOND),
        ] {
            if ms >= size && ms.is_multiple_of(size) {
                return write!(f, "{}{unit}", ms / size);
            }
        }
        write!(f, "{ms}ms")
    }
}

impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Millis, D::Error> {
        let text = String::deserialize(d)?;
        Millis::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn instants_parse_as_epoch_ms_dates_and_rfc3339_and_round_trip() {
        use super::{parse_instant, rfc3339_ms};
        assert_eq!(parse_instant("1767225600000"), Ok(1_767_225_600_000));
        assert_eq!(parse_instant("2026-01-01"), Ok(1_767_225_600_000));
        assert_eq!(
            parse_instant("2026-01-01T00:00:01.250Z"),
            Ok(1_767_225_601_250)
        );
        assert_eq!(parse_instant("2024-02-29T23:59:59Z"), Ok(1_709_251_199_000));
        for ts in [0, 951_782_400_000, 1_767_225_601_250, 4_102_444_799_999] {
            assert_eq!(parse_instant(&rfc3339_ms(ts)), Ok(ts));
        }
        for bad in [
            "",
            "2026-02-30",
            "2026-13-01",
            "2026-01-01T25:00:00Z",
            "yesterday",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00.5Z",
            "-5",
        ] {
            let e = parse_instant(bad).expect_err(bad);
            assert!(e.contains("not epoch milliseconds"), "{bad}: {e}");
        }
    }

    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_709_281_800_250), "2024-03-01T08:30:00.250Z");
        assert_eq!(rfc3339_ms(MAX_TS), "3000-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_735_689_599_999), "2024-12-31T23:59:59.999Z");
    }

    #[test]
    fn ceil_is_identity_on_multiples_and_rounds_up_otherwise() {
        assert_eq!(ceil_to(0, 10), 0);
        assert_eq!(ceil_to(1, 10), 10);
        assert_eq!(ceil_to(10, 10), 10);
        assert_eq!(ceil_to(11, 10), 20);
        assert_eq!(ceil_to(u64::MAX, 10), u64::MAX);
    }

    #[test]
    fn dpd_follows_the_loan_contract() {
        let due = 10 * MS_PER_DAY - 1;
        assert_eq!(days_past_due(due, due), 0);
        assert_eq!(days_past_due(due, due + 1), 1);
        assert_eq!(days_past_due(due, due + MS_PER_DAY), 1);
        assert_eq!(days_past_due(due, due + MS_PER_DAY + 1), 2);
        assert_eq!(days_past_due(due, due + 30 * MS_PER_DAY), 30);
        assert_eq!(days_past_due(due, due + 30 * MS_PER_DAY + 1), 31);
    }

    #[test]
    fn durations_round_trip() {
        for (text, ms) in [
            ("10ms", 10),
            ("10s", 10_000),
            ("5m", 300_000),
            ("5min", 300_000),
            ("90m", 5_400_000),
            ("1h", 3_600_000),
            ("7d", 604_800_000),
        ] {
            assert_eq!(Millis::parse(text), Ok(Millis(ms)), "{text}");
            assert_eq!(Millis::parse(&Millis(ms).to_string()), Ok(Millis(ms)));
        }
        assert!(Millis::parse("10").is_err());
        assert!(Millis::parse("10y").is_err());
        assert!(Millis::parse("h").is_err());
    }

    /// Issue 8: a duration too large for u64 said it "does not start with a whole number".
    #[test]
    fn durations_too_large_for_u64_milliseconds_say_so() {
        let most = "(at most 18446744073709551615ms)";
        assert_eq!(
            Millis::parse("99999999999999999999d"),
            Err(format!(
                "duration \"99999999999999999999d\" is too large {most}"
            ))
        );
        // Fits in u64 as a number, overflows once multiplied by its unit.
        assert_eq!(
            Millis::parse("213503982335d"),
            Err(format!("duration \"213503982335d\" is too large {most}"))
        );
        assert_eq!(
            Millis::parse("18446744073709551615ms"),
            Ok(Millis(u64::MAX))
        );
        assert_eq!(
            Millis::parse("x5d"),
            Err("duration \"x5d\" does not start with a whole number".to_string())
        );
    }
}
