//! The custom timely operators of the riskwatch graph, one per file.

pub mod dedupe;
pub mod deferred;
pub mod evaluate;
pub mod ledger;
pub mod ready;
