//! The test kit: probes and helpers for testing actors, the same tools casty's own tests use.
//!
//! A [`TestProbe<M>`] is an `ActorRef<M>` whose messages a test can assert on, with deadlines instead
//! of sleeps. A [`TestKit`] owns a system and hands out probes. Assertion methods panic with a clear
//! message on failure, as test assertions do. A [`FailingJournal`] wraps any journal with gates
//! and failure switches, to test how event-sourced entities handle a slow or failing journal.

#[cfg(feature = "cluster")]
mod cluster;
mod failing_journal;
#[cfg(feature = "remote")]
mod faults;
pub mod journal_suite;
mod kit;
mod probe;
#[cfg(feature = "simulation")]
mod sim;

#[cfg(feature = "cluster")]
pub use cluster::{fast_cluster_node, fast_sharding};
pub use failing_journal::{FailingJournal, JournalGate};
#[cfg(feature = "remote")]
pub use faults::{Direction, FaultyTransport};
pub use kit::TestKit;
pub use probe::{FishingOutcome, TestProbe};
#[cfg(feature = "simulation")]
pub use sim::SimTransport;
