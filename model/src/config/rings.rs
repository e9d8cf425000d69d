//! Fraud-ring detection settings: which shared identifiers link customers, for how long,
//! and which components count as rings.

use super::{check_granularity, ConfigError};
use crate::time::{Millis, MS_PER_DAY};
use serde::{Deserialize, Serialize};

/// Fraud-ring detection: customers linked by a shared device, IP or phone within the link
/// window form a graph whose connected components are rings (DESIGN.md, Fraud rings).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RingsConfig {
    /// An identifier linked to more than this many distinct customers within the window is
    /// a hub (a carrier-NAT IP, public Wi-Fi) and links nobody. At least 2.
    pub max_customers_per_identifier: u32,
    /// Components with at least this many customers are rings. At least 2.
    pub min_ring_size: u32,
    /// How long a shared identifier links customers after it was last seen (and how long
    /// a customer counts as new).
    pub link_window: Millis,
    /// Expiry granularity of links, as for windows: a link expires at the next multiple of
    /// this at or after `last seen + link_window`. Must divide 1d and be a multiple of the
    /// tick.
    pub link_granularity: Millis,
}

impl Default for RingsConfig {
    fn default() -> Self {
        RingsConfig {
            max_customers_per_identifier: 50,
            min_ring_size: 3,
            link_window: Millis(30 * MS_PER_DAY),
            link_granularity: Millis(90 * 60_000),
        }
    }
}

impl RingsConfig {
    /// Checks the ring settings of a config with tick `tick`; the error names the key.
    pub(super) fn validate(&self, tick: Millis) -> Result<(), ConfigError> {
        if self.max_customers_per_identifier < 2 {
            return Err(ConfigError::new(
                "rings.max_customers_per_identifier",
                format!("{} must be at least 2", self.max_customers_per_identifier),
            ));
        }
        if self.min_ring_size < 2 {
            return Err(ConfigError::new(
                "rings.min_ring_size",
                format!("{} must be at least 2", self.min_ring_size),
            ));
        }
        // Link expiries are rounded up to it (a modulo by zero when it is 0), and must fall
        // on ticks, the dataflow's times.
        check_granularity("rings.link_granularity".into(), self.link_granularity, tick)?;
        Ok(())
    }
}
