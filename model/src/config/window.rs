//! Sliding windows (`[[window]]`), the measure catalogue, and the account features that
//! belong to no window.

use super::{check_granularity, ConfigError};
use crate::time::Millis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One sliding window and the features computed over it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// Suffix of its feature names: measure `spend` over window `30d` is `spend_30d`.
    pub name: String,
    /// Window length.
    pub length: Millis,
    /// Expiry granularity: an event is retracted at the next multiple of this at or after
    /// `ts + length`. Must divide 1 day and be a multiple of the tick.
    pub granularity: Millis,
    /// Measures computed over this window (see [`Measure`]).
    pub features: Vec<Measure>,
}

impl WindowConfig {
    /// Checks window `index` of a config with tick `tick`; `names` collects the window
    /// names seen so far (they must be unique). The error names the key.
    pub(super) fn validate(
        &self,
        index: usize,
        tick: Millis,
        names: &mut BTreeSet<String>,
    ) -> Result<(), ConfigError> {
        let key = |k: &str| format!("window[{index}].{k}");
        if self.name.is_empty() || !self.name.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(ConfigError::new(
                key("name"),
                "must be non-empty ASCII alphanumeric",
            ));
        }
        if !names.insert(self.name.clone()) {
            return Err(ConfigError::new(
                key("name"),
                format!("\"{}\" is used twice", self.name),
            ));
        }
        if self.length.ms() == 0 {
            return Err(ConfigError::new(key("length"), "must be positive"));
        }
        check_granularity(key("granularity"), self.granularity, tick)?;
        let mut seen = BTreeSet::new();
        for m in &self.features {
            if !seen.insert(*m) {
                return Err(ConfigError::new(
                    key("features"),
                    format!("\"{}\" is listed twice", m.name()),
                ));
            }
            for input in m.inputs() {
                if !self.features.contains(input) {
                    return Err(ConfigError::new(
                        key("features"),
                        format!(
                            "\"{}\" needs \"{}\" in the same window",
                            m.name(),
                            input.name()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A measure that can be computed over a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Sum of approved purchase and cash_withdrawal amounts (minor units).
    Spend,
    /// Sum of approved cash_withdrawal amounts.
    Cash,
    /// `cash / spend`; null when spend is 0. Needs `spend` and `cash` in the same window.
    CashRatio,
    /// Count of approved transactions of any type.
    ApprovedCount,
    /// Count of declined transactions of any type.
    DeclinedCount,
    /// Count of `login_failed` events.
    FailedLogins,
    /// Count of `phone_changed` events.
    PhoneChanges,
    /// Count of `contact_changed` events.
    ContactChanges,
    /// Count of `device_bound` events.
    DeviceChanges,
    /// `phone_changes + contact_changes + device_changes`; needs all three.
    IdentityChanges,
    /// Count of `credit_inquiry` events.
    Inquiries,
    /// Count of approved repayments.
    Repayments,
    /// Sum of approved repayment amounts.
    RepaymentAmount,
    /// Count of approved salary credits.
    SalaryCredits,
    /// Sum of approved salary credit amounts.
    SalaryAmount,
    /// Count of approved drawdowns.
    Drawdowns,
    /// Distinct `merchant_id`s among transactions.
    DistinctMerchants,
    /// Distinct `device_id`s among transactions and behaviour events.
    DistinctDevices,
    /// Distinct `lender_id`s among credit inquiries (multi-lending).
    DistinctLenders,
}

impl Measure {
    /// Every measure, in declaration order.
    pub const ALL: [Measure; 19] = [
        Measure::Spend,
        Measure::Cash,
        Measure::CashRatio,
        Measure::ApprovedCount,
        Measure::DeclinedCount,
        Measure::FailedLogins,
        Measure::PhoneChanges,
        Measure::ContactChanges,
        Measure::DeviceChanges,
        Measure::IdentityChanges,
        Measure::Inquiries,
        Measure::Repayments,
        Measure::RepaymentAmount,
        Measure::SalaryCredits,
        Measure::SalaryAmount,
        Measure::Drawdowns,
        Measure::DistinctMerchants,
        Measure::DistinctDevices,
        Measure::DistinctLenders,
    ];

    /// The snake_case name used in feature names.
    pub fn name(self) -> &'static str {
        match self {
            Measure::Spend => "spend",
            Measure::Cash => "cash",
            Measure::CashRatio => "cash_ratio",
            Measure::ApprovedCount => "approved_count",
            Measure::DeclinedCount => "declined_count",
            Measure::FailedLogins => "failed_logins",
            Measure::PhoneChanges => "phone_changes",
            Measure::ContactChanges => "contact_changes",
            Measure::DeviceChanges => "device_changes",
            Measure::IdentityChanges => "identity_changes",
            Measure::Inquiries => "inquiries",
            Measure::Repayments => "repayments",
            Measure::RepaymentAmount => "repayment_amount",
            Measure::SalaryCredits => "salary_credits",
            Measure::SalaryAmount => "salary_amount",
            Measure::Drawdowns => "drawdowns",
            Measure::DistinctMerchants => "distinct_merchants",
            Measure::DistinctDevices => "distinct_devices",
            Measure::DistinctLenders => "distinct_lenders",
        }
    }

    /// How the measure is computed.
    pub fn kind(self) -> MeasureKind {
        match self {
            Measure::CashRatio | Measure::IdentityChanges => MeasureKind::Derived,
            Measure::DistinctMerchants | Measure::DistinctDevices | Measure::DistinctLenders => {
                MeasureKind::Distinct
            }
            _ => MeasureKind::Sum,
        }
    }

    /// The measures a derived measure is computed from.
    pub fn inputs(self) -> &'static [Measure] {
        match self {
            Measure::CashRatio => &[Measure::Spend, Measure::Cash],
            Measure::IdentityChanges => &[
                Measure::PhoneChanges,
                Measure::ContactChanges,
                Measure::DeviceChanges,
            ],
            _ => &[],
        }
    }
}

/// How a measure is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeasureKind {
    /// A sum of per-event contributions (a slot of the window vector).
    Sum,
    /// A distinct count of identifiers (`distinct` then count).
    Distinct,
    /// Computed from other measures of the same window when rules are evaluated.
    Derived,
}

/// Features that do not belong to a window, always available to rules.
pub const ACCOUNT_FEATURES: [&str; 10] = [
    "balance",
    "credit_limit",
    "utilisation",
    "apr_bps",
    "dpd",
    "bucket",
    "dpd_90_plus",
    "ring_size",
    "ring_delinquent",
    "ring_new_members",
];
