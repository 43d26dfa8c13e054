//! A deterministic cluster simulator: random histories of joins, crashes, restarts, partitions,
//! lossy links and graceful leaves, run as real `ClusteredActorSystem`s in turmoil's simulated
//! network and time, and checked against the rules of membership.
//!
//! - [`plan`] makes a history from a seed.
//! - [`runner`] runs it and checks the rules on the nodes' views as it goes.
//! - [`checks`] holds the rules, as pure functions over what the nodes recorded.

pub mod checks;
pub mod plan;
pub mod runner;

pub use checks::{Kind, Observed};
pub use plan::{Action, Plan, Step};
pub use runner::{run, Outcome};
