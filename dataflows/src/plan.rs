//! Compiles a [`Config`] into the pieces the graph needs, failing with the config key.

use crate::evaluate::Strategies;
use crate::layout::Layout;
use crate::strategy::Strategy;
use riskwatch_model::config::{Config, ConfigError, ConfigWarning, Role};

/// Everything compiled from a config; `Send`, so it can be built once and cloned into
/// every worker (which wraps it into an `Rc`-based [`crate::graph::Plan`]).
#[derive(Clone, Debug)]
pub struct Compiled {
    /// Feature layout.
    pub layout: Layout,
    /// Strategies.
    pub strategies: Strategies,
    /// Tick in ms.
    pub tick: u64,
    /// Duplicate horizon in ms.
    pub dedupe_horizon: u64,
    /// Extra DPD wake-ups (days past due).
    pub wake_at_dpd: Vec<u32>,
    /// Fraud-ring settings.
    pub rings: riskwatch_model::config::RingsConfig,
    /// What loads but probably is not meant (a level table no score reaches level 0 of),
    /// in config order; `check-config` prints them. Nothing here stops a run.
    pub warnings: Vec<ConfigWarning>,
}

/// Compiles `config`; `read` loads files a config refers to (imported scorecards).
pub fn compile(
    config: &Config,
    read: impl Fn(&str) -> Result<String, String>,
) -> Result<Compiled, ConfigError> {
    config.validate()?;
    let layout = Layout::new(config)?;
    let mut list = Vec::new();
    let mut warnings = Vec::new();
    for (i, s) in config.strategies.iter().enumerate() {
        let strategy = Strategy::compile(s, i, &layout, &read)?;
        warnings.extend(strategy.warnings(s, i));
        list.push(strategy);
    }
    let champion = list
        .iter()
        .position(|s| s.role == Role::Champion)
        .expect("validated: one champion");
    let tick = config.time.tick.ms();
    let mut policies = Vec::new();
    let mut cases = Vec::new();
    for (i, s) in config.strategies.iter().enumerate() {
        policies.push(crate::actions::Policy::compile(s, i, tick)?);
        cases.push(crate::cases::CasesPolicy::compile(s, i)?);
    }
    Ok(Compiled {
        layout,
        strategies: Strategies {
            list,
            mode: config.experiment.mode,
            champion,
            policies,
            cases,
        },
        tick: config.time.tick.ms(),
        dedupe_horizon: config.dedupe_horizon(),
        wake_at_dpd: config.delinquency.wake_at_dpd.clone(),
        rings: config.rings.clone(),
        warnings,
    })
}

impl Compiled {
    /// The per-worker plan.
    pub fn plan(&self) -> crate::graph::Plan {
        crate::graph::Plan {
            layout: std::rc::Rc::new(self.layout.clone()),
            strategies: std::rc::Rc::new(self.strategies.clone()),
            tick: self.tick,
            dedupe_horizon: self.dedupe_horizon,
            wake_at_dpd: self.wake_at_dpd.clone(),
            rings: self.rings.clone(),
            trace: None,
        }
    }
}
