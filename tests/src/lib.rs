//! Shared helpers for casty's integration tests.

use std::time::Duration;

pub mod bank;
pub mod remote_proto;

/// The deadline for anything that should happen promptly.
pub const T: Duration = Duration::from_secs(5);

/// A window in which nothing should happen.
pub const QUIET: Duration = Duration::from_millis(150);

/// An error type for handlers that fail on purpose.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Boom(pub String);

impl Boom {
    /// A `Boom` with this text.
    pub fn new(s: &str) -> Self {
        Boom(s.to_string())
    }
}
