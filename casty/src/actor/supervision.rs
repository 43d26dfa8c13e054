//! Supervision: what happens when an actor fails.
//!
//! A [`OneForOneStrategy`] wraps a behavior (through `Behaviors::supervise`). When the actor fails,
//! its `decider` picks a [`Directive`]. A restart is rate-limited by a sliding window kept per actor
//! (L6): past `max_restarts` within `within`, the actor is stopped instead. An optional [`Backoff`]
//! delays each restart exponentially; messages that arrive meanwhile wait in the mailbox (L5).
//!
//! The restart window is pure bookkeeping ([`RestartWindow`]) with time passed in, so it is tested
//! without sleeping.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::actor::failure::Failure;

/// What to do with a failed actor.
///
/// # Examples
///
/// ```
/// use casty::Directive;
/// assert_ne!(Directive::Restart, Directive::Stop);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Directive {
    /// Restart with the initial behavior: state is reset and `setup` runs again.
    Restart,
    /// Stop the actor for good.
    Stop,
    /// Stop the actor and fail its parent with a `ChildFailed` cause.
    Escalate,
    /// Keep the current behavior and state, and go on with the next message.
    Resume,
}

/// Exponential backoff between restarts.
///
/// The n-th consecutive restart waits `min * 2^(n-1)`, capped at `max`, plus up to `jitter` × that
/// delay at random. The count resets after `reset_after` (default: `max`) without a failure.
///
/// # Examples
///
/// ```
/// use casty::Backoff;
/// use std::time::Duration;
/// let b = Backoff::exponential(Duration::from_millis(10), Duration::from_secs(1));
/// assert_eq!(b.delay(1), Duration::from_millis(10));
/// assert_eq!(b.delay(3), Duration::from_millis(40));
/// assert_eq!(b.delay(30), Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    jitter: f64,
    reset_after: Option<Duration>,
}

impl Backoff {
    /// Backoff doubling from `min` up to `max`.
    pub fn exponential(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max: max.max(min),
            jitter: 0.0,
            reset_after: None,
        }
    }

    /// Adds up to `factor` × the delay of random jitter (clamped to `0.0..=1.0`).
    pub fn jitter(mut self, factor: f64) -> Self {
        self.jitter = if factor.is_finite() {
            factor.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// After this long without a failure, the next restart starts again from `min`.
    pub fn reset_after(mut self, quiet: Duration) -> Self {
        self.reset_after = Some(quiet);
        self
    }

    /// The delay before the `n`-th consecutive restart (`n` ≥ 1), without jitter.
    pub fn delay(&self, n: u32) -> Duration {
        let exp = n.saturating_sub(1).min(31);
        let d = self.min.saturating_mul(1u32 << exp);
        d.min(self.max)
    }

    pub(crate) fn delay_with_jitter(&self, n: u32) -> Duration {
        let d = self.delay(n);
        if self.jitter > 0.0 {
            d + d.mul_f64(self.jitter * fastrand::f64())
        } else {
            d
        }
    }

    pub(crate) fn quiet_period(&self) -> Duration {
        self.reset_after.unwrap_or(self.max)
    }
}

type Decider = dyn Fn(&Failure) -> Directive + Send + Sync;

/// Supervises one actor independently of its siblings: restart it up to `max_restarts` times within
/// a sliding window of `within`, then stop it.
///
/// The default decider restarts on every failure.
///
/// # Examples
///
/// ```
/// use casty::{Backoff, Directive, OneForOneStrategy};
/// use std::time::Duration;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("fatal")]
/// struct Fatal;
///
/// let s = OneForOneStrategy::new(5, Duration::from_secs(60))
///     .decider(|f| if f.is::<Fatal>() { Directive::Stop } else { Directive::Restart })
///     .backoff(Backoff::exponential(Duration::from_millis(10), Duration::from_secs(1)).jitter(0.2));
/// assert_eq!(s.decide(&Fatal.into()), Directive::Stop);
/// ```
#[derive(Clone)]
pub struct OneForOneStrategy {
    max_restarts: u32,
    within: Duration,
    decider: Arc<Decider>,
    backoff: Option<Backoff>,
}

impl OneForOneStrategy {
    /// At most `max_restarts` restarts within any window of `within`.
    pub fn new(max_restarts: u32, within: Duration) -> Self {
        OneForOneStrategy {
            max_restarts,
            within,
            decider: Arc::new(|_| Directive::Restart),
            backoff: None,
        }
    }

    /// Sets the function that picks a directive for each failure.
    pub fn decider(mut self, f: impl Fn(&Failure) -> Directive + Send + Sync + 'static) -> Self {
        self.decider = Arc::new(f);
        self
    }

    /// Delays restarts with exponential backoff.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// Asks the decider about a failure (without the restart limit).
    pub fn decide(&self, failure: &Failure) -> Directive {
        (self.decider)(failure)
    }

    /// The restart limit.
    pub fn max_restarts(&self) -> u32 {
        self.max_restarts
    }

    /// The length of the sliding window.
    pub fn within(&self) -> Duration {
        self.within
    }

    pub(crate) fn backoff_config(&self) -> Option<&Backoff> {
        self.backoff.as_ref()
    }
}

impl Default for OneForOneStrategy {
    /// Three restarts within a minute, restarting on every failure (the seed's defaults).
    fn default() -> Self {
        OneForOneStrategy::new(3, Duration::from_secs(60))
    }
}

impl fmt::Debug for OneForOneStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OneForOneStrategy")
            .field("max_restarts", &self.max_restarts)
            .field("within", &self.within)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

/// The sliding window of restart times for one actor, plus the backoff streak.
#[derive(Debug, Default)]
pub(crate) struct RestartWindow {
    times: VecDeque<Instant>,
    streak: u32,
    last_failure: Option<Instant>,
}

impl RestartWindow {
    /// Records a restart request at `now`. Returns `false` when the limit is exceeded.
    pub(crate) fn allow(&mut self, now: Instant, max: u32, within: Duration) -> bool {
        while let Some(t) = self.times.front() {
            if now.saturating_duration_since(*t) > within {
                self.times.pop_front();
            } else {
                break;
            }
        }
        if self.times.len() as u32 >= max {
            return false;
        }
        self.times.push_back(now);
        true
    }

    /// The position of this restart in the current backoff streak (1 for the first).
    pub(crate) fn next_streak(&mut self, now: Instant, quiet: Duration) -> u32 {
        if let Some(last) = self.last_failure {
            if now.saturating_duration_since(last) >= quiet {
                self.streak = 0;
            }
        }
        self.last_failure = Some(now);
        self.streak = self.streak.saturating_add(1);
        self.streak
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_limits_restarts() {
        let mut w = RestartWindow::default();
        let t0 = Instant::now();
        let within = Duration::from_secs(10);
        assert!(w.allow(t0, 3, within));
        assert!(w.allow(t0 + Duration::from_secs(1), 3, within));
        assert!(w.allow(t0 + Duration::from_secs(2), 3, within));
        assert!(!w.allow(t0 + Duration::from_secs(3), 3, within));
    }

    #[test]
    fn window_slides() {
        let mut w = RestartWindow::default();
        let t0 = Instant::now();
        let within = Duration::from_secs(10);
        assert!(w.allow(t0, 2, within));
        assert!(w.allow(t0 + Duration::from_secs(5), 2, within));
        assert!(!w.allow(t0 + Duration::from_secs(9), 2, within));
        // The first restart leaves the window after 10 s.
        assert!(w.allow(t0 + Duration::from_secs(11), 2, within));
    }

    #[test]
    fn zero_restarts_means_stop() {
        let mut w = RestartWindow::default();
        assert!(!w.allow(Instant::now(), 0, Duration::from_secs(1)));
    }

    #[test]
    fn backoff_grows_and_resets() {
        let b = Backoff::exponential(Duration::from_millis(100), Duration::from_millis(350));
        assert_eq!(b.delay(1), Duration::from_millis(100));
        assert_eq!(b.delay(2), Duration::from_millis(200));
        assert_eq!(b.delay(3), Duration::from_millis(350));
        let mut w = RestartWindow::default();
        let t0 = Instant::now();
        assert_eq!(w.next_streak(t0, b.quiet_period()), 1);
        assert_eq!(
            w.next_streak(t0 + Duration::from_millis(10), b.quiet_period()),
            2
        );
        assert_eq!(
            w.next_streak(t0 + Duration::from_secs(5), b.quiet_period()),
            1
        );
    }

    #[test]
    fn jitter_stays_in_bounds() {
        let b =
            Backoff::exponential(Duration::from_millis(100), Duration::from_secs(1)).jitter(0.5);
        for _ in 0..100 {
            let d = b.delay_with_jitter(1);
            assert!(
                d >= Duration::from_millis(100) && d <= Duration::from_millis(150),
                "{d:?}"
            );
        }
    }
}
