//! Shared helpers for casty's integration tests.

use std::time::Duration;

pub mod bank;
pub mod remote_kit;
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

/// Waits until `check` holds, polling every few milliseconds, for at most [`T`]. For state that
/// has no event to wait on (gauges, counters).
///
/// # Panics
///
/// If `check` still fails after [`T`], with `what` in the message.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + T;
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "not within {T:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
