//! A deterministic cluster simulator: random histories of joins, crashes, restarts, partitions,
//! lossy links and graceful leaves, run as real `ClusteredActorSystem`s in turmoil's simulated
//! network and time, and checked against the rules of membership.
//!
//! - [`plan`] makes a history from a seed.
//! - [`runner`] runs it and checks the rules on the nodes' views as it goes.
//! - [`checks`] holds the rules, as pure functions over what the nodes recorded.
//! - [`entities`] is the sharded entity type every node runs under traffic, and the record of
//!   its entities' lives, checked for two incarnations of one entity running at once.

pub mod checks;
pub mod entities;
pub mod plan;
pub mod runner;

pub use checks::{Kind, Life, Observed};

/// Holds the process's one simulation slot: simulations run one at a time.
///
/// Simulations running at once in one process share process-wide state (the counter of actor
/// uids, for one) and may perturb one another, so a seed that ran beside others might not replay
/// alone as it ran. Every simulation takes this slot first; a test binary's simulations then run
/// in turn, each exactly as its seed says.
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static SLOT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SLOT.lock().unwrap_or_else(|e| e.into_inner())
}
pub use plan::{Action, Plan, Step};
pub use runner::{run, run_then, Outcome};
