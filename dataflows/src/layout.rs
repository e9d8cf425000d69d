//! Which slot of [`Slots`](crate::slots::Slots) holds which window × measure, and how the
//! named features are read from slots and account state.
//!
//! Built once from the config; immutable afterwards and shared by all operators.

use crate::slots::MAX_SLOTS;
use riskwatch_model::config::{Config, ConfigError, Measure, MeasureKind, ACCOUNT_FEATURES};

/// One window's slots.
#[derive(Clone, Debug)]
pub struct WindowLayout {
    /// The window's name (feature-name suffix).
    pub name: String,
    /// Length in ms.
    pub length: u64,
    /// Expiry granularity in ms.
    pub granularity: u64,
    /// Summed measures and their slots.
    pub sums: Vec<(Measure, usize)>,
    /// Distinct-count measures and their slots.
    pub distincts: Vec<(Measure, usize)>,
    /// Bit mask of all this window's slots.
    pub mask: u64,
}

/// Where a named feature's value comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FeatureSource {
    /// Index into [`ACCOUNT_FEATURES`], computed from account state and time.
    Account(usize),
    /// A slot's value.
    Slot(usize),
    /// `cash / spend`, null when spend is 0.
    Ratio {
        /// Numerator slot.
        num: usize,
        /// Denominator slot.
        den: usize,
    },
    /// Sum of three slots.
    Sum3([usize; 3]),
}

/// The feature layout of a configuration.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Windows in config order.
    pub windows: Vec<WindowLayout>,
    /// Feature names, account features first; the index is the feature id.
    pub names: Vec<String>,
    /// How each feature is computed.
    pub sources: Vec<FeatureSource>,
    /// Number of slots in use.
    pub slots: usize,
}

impl Layout {
    /// Assigns slots in config order: per window, summed then distinct measures.
    pub fn new(config: &Config) -> Result<Layout, ConfigError> {
        let mut windows = Vec::new();
        let mut names: Vec<String> = ACCOUNT_FEATURES.iter().map(|s| s.to_string()).collect();
        let mut sources: Vec<FeatureSource> = (0..ACCOUNT_FEATURES.len())
            .map(FeatureSource::Account)
            .collect();
        let mut next = 0usize;
        for (i, w) in config.windows.iter().enumerate() {
            let mut wl = WindowLayout {
                name: w.name.clone(),
                length: w.length.ms(),
                granularity: w.granularity.ms(),
                sums: Vec::new(),
                distincts: Vec::new(),
                mask: 0,
            };
            for m in &w.features {
                if m.kind() == MeasureKind::Derived {
                    continue;
                }
                if next >= MAX_SLOTS {
                    return Err(ConfigError::new(
                        format!("window[{i}].features"),
                        format!("more than {MAX_SLOTS} summed or distinct features in all windows"),
                    ));
                }
                match m.kind() {
                    MeasureKind::Sum => wl.sums.push((*m, next)),
                    _ => wl.distincts.push((*m, next)),
                }
                wl.mask |= 1 << next;
                next += 1;
            }
            let slot_of = |m: Measure| -> usize {
                wl.sums
                    .iter()
                    .chain(wl.distincts.iter())
                    .find(|(x, _)| *x == m)
                    .map(|(_, s)| *s)
                    .expect("validated: derived measures have their inputs")
            };
            for m in &w.features {
                names.push(format!("{}_{}", m.name(), w.name));
                sources.push(match m {
                    Measure::CashRatio => FeatureSource::Ratio {
                        num: slot_of(Measure::Cash),
                        den: slot_of(Measure::Spend),
                    },
                    Measure::IdentityChanges => FeatureSource::Sum3([
                        slot_of(Measure::PhoneChanges),
                        slot_of(Measure::ContactChanges),
                        slot_of(Measure::DeviceChanges),
                    ]),
                    m => FeatureSource::Slot(slot_of(*m)),
                });
            }
            windows.push(wl);
        }
        Ok(Layout {
            windows,
            names,
            sources,
            slots: next,
        })
    }

    /// The feature id of a name.
    pub fn feature(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// True when `other` has the same windows, slots and features: the condition for a
    /// strategy change to apply while running (window state is in flight).
    pub fn same_shape(&self, other: &Layout) -> bool {
        self.names == other.names
            && self.slots == other.slots
            && format!("{:?}", self.windows) == format!("{:?}", other.windows)
    }

    /// The longest window, in ms (0 without windows).
    pub fn longest_window(&self) -> u64 {
        self.windows.iter().map(|w| w.length).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_layout_fits_and_names_features() {
        let layout = Layout::new(&Config::default()).unwrap();
        assert!(layout.slots <= MAX_SLOTS);
        let spend = layout.feature("spend_30d").unwrap();
        assert!(matches!(layout.sources[spend], FeatureSource::Slot(_)));
        let ratio = layout.feature("cash_ratio_30d").unwrap();
        assert!(matches!(layout.sources[ratio], FeatureSource::Ratio { .. }));
        assert_eq!(layout.feature("utilisation"), Some(2));
        // Masks of different windows are disjoint and cover the used slots.
        let mut all = 0u64;
        for w in &layout.windows {
            assert_eq!(all & w.mask, 0);
            all |= w.mask;
        }
        assert_eq!(all, (1u64 << layout.slots) - 1);
    }
}
