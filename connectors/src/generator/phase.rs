//! The phase a customer is in on a day (normal, declining, defaulted, busting, …) as
//! daily event rates, and the device and IP of an app session.

use super::archetypes::Customer;
use super::config::Archetype;
use super::period::NO_DAY;
use super::records::{hub_code, own, ring_code};
use super::rng::Rng;

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Rev {
    Full,
    Min,
    Stop,
}

/// Daily rates and switches of a customer's current phase.
pub(crate) struct Rates {
    pub purchase: f64,
    pub pmult: f64,
    pub cash: f64,
    pub cmult: f64,
    pub app_open: f64,
    pub login: f64,
    pub limit_viewed: f64,
    /// Share of limit views and app opens at night (00:00–05:00).
    pub night: f64,
    /// Probability that a login is preceded by a failed attempt.
    pub failed: f64,
    pub restraint: bool,
    pub rev: Rev,
    /// Salary in percent of the usual amount.
    pub salary_pct: u64,
    pub bust: bool,
}

pub(crate) fn rates(c: &Customer, d: u32) -> Rates {
    let mut r = Rates {
        purchase: c.purchase_rate,
        pmult: 1.0,
        cash: c.cash_rate,
        cmult: 1.0,
        app_open: 0.55,
        login: 0.25,
        limit_viewed: 0.07,
        night: 0.03,
        failed: 0.03,
        restraint: true,
        rev: Rev::Full,
        salary_pct: 100,
        bust: false,
    };
    let turned = c.turn_day != NO_DAY && d >= c.turn_day;
    match c.arch {
        Archetype::Deteriorating if turned && c.stop_day != NO_DAY => {
            let (s, f) = (c.turn_day, c.stop_day);
            r.restraint = false;
            r.night = 0.3;
            if d < f {
                let x = (d - s) as f64 / (f - s) as f64;
                r.purchase *= 1.0 + 0.5 * x;
                r.pmult = 1.0 + 0.5 * x;
                r.cash += 0.05 + 0.35 * x;
                r.cmult = 1.0 + x;
                r.app_open *= 1.0 + 0.3 * x;
                r.limit_viewed += 0.4 * x;
                r.failed += 0.15 * x;
                r.rev = Rev::Min;
                r.salary_pct = if d >= c.salary_stop { 0 } else { 60 };
            } else {
                r.purchase *= 0.4;
                r.cash = 0.15;
                r.app_open = 0.3;
                r.login = 0.1;
                r.limit_viewed = 0.2;
                r.failed = 0.1;
                r.rev = Rev::Stop;
                r.salary_pct = 0;
            }
        }
        Archetype::BustOut | Archetype::FraudRing if turned => {
            let len = if c.arch == Archetype::BustOut { 3 } else { 2 };
            r.restraint = false;
            r.rev = Rev::Stop;
            r.salary_pct = 0;
            if d < c.turn_day + len {
                r.bust = true;
                r.app_open = 1.5;
                r.login = 0.8;
                r.limit_viewed = 0.5;
            } else {
                r.purchase = 0.1;
                r.cash = 0.05;
                r.app_open = 0.15;
                r.login = 0.05;
                r.limit_viewed = 0.1;
            }
        }
        Archetype::Cured | Archetype::CuredTwice
            if c.turn_day != NO_DAY && d + 10 >= c.turn_day && d < c.stop_day =>
        {
            r.cash += 0.08;
            r.limit_viewed *= 3.0;
            r.night = 0.15;
            r.restraint = false;
            r.rev = Rev::Min;
            r.salary_pct = 0;
        }
        Archetype::SilentDefaulter if turned => {
            // Walked away: no repayment, no income, a trickle of activity.
            r.purchase *= 0.2;
            r.cash = 0.0;
            r.app_open = 0.1;
            r.login = 0.03;
            r.limit_viewed = 0.02;
            r.rev = Rev::Stop;
            r.salary_pct = 0;
        }
        Archetype::Stretched => {
            r.purchase *= 1.2;
            r.limit_viewed = 0.15;
            r.night = 0.08;
            r.rev = Rev::Min;
        }
        _ => {}
    }
    r
}

/// Device and IP of one app session.
pub(crate) fn session(c: &Customer, cust: u32, d: u32, rng: &mut Rng) -> (u32, u32) {
    let turned = c.turn_day != NO_DAY && d >= c.turn_day;
    if c.ring > 0 && !turned && rng.chance(0.25) {
        let [devs, ips, _] = c.ring_shared;
        return (
            ring_code(c.ring, c.member % devs),
            ring_code(c.ring, c.member % ips),
        );
    }
    if matches!(c.arch, Archetype::BustOut | Archetype::FraudRing) && turned && rng.chance(0.8) {
        return bust_ids(c, cust);
    }
    let device = if c.devices != 0 && rng.chance(0.35) {
        c.devices
    } else {
        0
    };
    let ip = if rng.chance(0.6) {
        own(cust, 0)
    } else if c.hub > 0 {
        hub_code(c.hub - 1)
    } else {
        own(cust, 1)
    };
    (own(cust, device), ip)
}

/// The device and IP of a bust: a new own device (bust-out) or the ring's.
pub(crate) fn bust_ids(c: &Customer, cust: u32) -> (u32, u32) {
    if c.ring > 0 {
        let [devs, ips, _] = c.ring_shared;
        (
            ring_code(c.ring, c.member % devs),
            ring_code(c.ring, c.member % ips),
        )
    } else {
        (own(cust, 2), own(cust, 2))
    }
}
