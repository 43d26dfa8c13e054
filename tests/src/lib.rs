//! Shared helpers for casty's integration tests.

use std::time::Duration;

pub mod bank;
pub mod cluster_kit;
pub mod remote_kit;
pub mod remote_proto;
pub mod sharding_kit;
pub mod sim;

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

/// Numbers and prints the steps of a multi-process test, one line each on stderr (`step 3:
/// SIGKILL node B (pid 1234)`), so the captured output of a failing test shows how far it got.
/// Write the steps with [`step!`].
///
/// A test's own `eprintln!` output is captured and shown when the test fails. A child process
/// that inherits stderr prints straight to it; its steps carry its name and pid
/// ([`Steps::in_process`]).
///
/// # Examples
///
/// ```
/// use casty_tests::{step, Steps};
/// let steps = Steps::new();
/// step!(steps, "start node B as a process (pid {})", 1234);
/// step!(steps, "SIGKILL node B");
/// assert_eq!(steps.taken(), 2);
/// ```
#[derive(Debug, Default)]
pub struct Steps {
    prefix: String,
    taken: std::sync::atomic::AtomicUsize,
}

impl Steps {
    /// Steps of a test, printed as `step <n>: <what>`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Steps of a helper process, printed as `<name> (pid <pid>) step <n>: <what>`.
    pub fn in_process(name: &str) -> Self {
        Steps {
            prefix: format!("{name} (pid {}) ", std::process::id()),
            taken: Default::default(),
        }
    }

    /// Prints the next step. [`step!`] calls this with its formatted arguments.
    pub fn step(&self, what: std::fmt::Arguments<'_>) {
        let n = self
            .taken
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        // Formatted first and printed in one write, so the lines of a child process sharing the
        // terminal do not cut into it.
        let line = format!("{}step {n}: {what}\n", self.prefix);
        eprint!("{line}");
    }

    /// How many steps have been printed.
    pub fn taken(&self) -> usize {
        self.taken.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Prints the next step of a [`Steps`]: `step!(steps, "SIGKILL node B (pid {pid})")`.
#[macro_export]
macro_rules! step {
    ($steps:expr, $($what:tt)+) => {
        $steps.step(::std::format_args!($($what)+))
    };
}

/// The complete example configuration file, `examples/config/casty.toml`, with every section and
/// key: the configuration tests start from it.
pub const FULL_CONFIG_FILE: &str = include_str!("../../examples/config/casty.toml");

/// An actor that answers `(delay_ms, reply_to)` with `delay_ms`, after sleeping that long: the
/// slow target of the ask timeout tests.
pub fn slow_echo() -> casty::Behavior<(u64, casty::ActorRef<u64>)> {
    casty::Behaviors::receive_async(|_ctx, (delay_ms, r): (u64, casty::ActorRef<u64>)| {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            r.tell(delay_ms);
            casty::Behaviors::same()
        })
    })
}
