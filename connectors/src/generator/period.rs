//! The generated period as a sequence of UTC days: day starts, due timestamps, day of
//! month, and clamping of event times into the period.

use super::config::{GenConfig, DAY_MS};

/// Marks "no day" in day-indexed plans.
pub(crate) const NO_DAY: u32 = u32::MAX;

/// The period `[start_ms, end_ms)` cut into UTC days, day 0 being the day of `start_ms`.
#[derive(Clone, Debug)]
pub(crate) struct Period {
    /// First millisecond of the period.
    pub start_ms: u64,
    /// End of the period (exclusive).
    pub end_ms: u64,
    /// Midnight (UTC) of day 0.
    pub day0_ms: u64,
    /// Number of (possibly partial) days.
    pub days: u32,
    /// Last day whose due timestamp (its last millisecond) lies inside the period.
    pub last_due_day: Option<u32>,
    /// Day of month (1..=31) of each day.
    pub dom: Vec<u8>,
}

impl Period {
    /// The period of a (validated) config.
    pub fn new(cfg: &GenConfig) -> Period {
        let start_ms = cfg.start_ms;
        let end_ms = cfg.end_ms();
        let day0_ms = start_ms - start_ms % DAY_MS;
        let days = (end_ms - day0_ms).div_ceil(DAY_MS) as u32;
        let last_due_day = (0..days)
            .rev()
            .find(|d| day0_ms + *d as u64 * DAY_MS + DAY_MS - 1 < end_ms);
        let first_epoch_day = (day0_ms / DAY_MS) as i64;
        let dom = (0..days)
            .map(|d| civil_from_days(first_epoch_day + d as i64).2 as u8)
            .collect();
        Period {
            start_ms,
            end_ms,
            day0_ms,
            days,
            last_due_day,
            dom,
        }
    }

    /// Midnight (UTC) of day `d`.
    #[inline]
    pub fn day_start(&self, d: u32) -> u64 {
        self.day0_ms + d as u64 * DAY_MS
    }

    /// The last millisecond of day `d`: the `due_ts` of an installment due that day.
    #[inline]
    pub fn due_ts(&self, d: u32) -> u64 {
        self.day_start(d) + DAY_MS - 1
    }

    /// Event time `ms_in_day` into day `d`, clamped into the day and the period.
    #[inline]
    pub fn ts(&self, d: u32, ms_in_day: u64) -> u64 {
        let t = self.day_start(d) + ms_in_day.min(DAY_MS - 1);
        t.clamp(self.start_ms, self.end_ms - 1)
    }

    /// Whether day `d` can carry a due date (its due timestamp is inside the period).
    #[inline]
    pub fn can_be_due(&self, d: u32) -> bool {
        self.last_due_day.is_some_and(|last| d <= last)
    }
}

/// (year, month, day) of a count of days since 1970-01-01 (H. Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
        assert_eq!(civil_from_days(20_454 + 59), (2026, 3, 1));
    }

    #[test]
    fn period_days_and_due() {
        let cfg = GenConfig {
            days: 90,
            ..GenConfig::default()
        };
        let p = Period::new(&cfg);
        assert_eq!(p.days, 90);
        assert_eq!(p.last_due_day, Some(89));
        assert_eq!(p.dom[0], 1);
        assert_eq!(p.dom[31], 1);
        assert_eq!(p.due_ts(0), cfg.start_ms + 86_399_999);
        assert_eq!(p.ts(89, u64::MAX), cfg.end_ms() - 1);
    }
}
