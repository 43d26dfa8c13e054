//! Supervision: what happens when an actor fails.
//!
//! A [`SupervisorStrategy`] wraps a behavior (through `Behaviors::supervise`). When the actor fails,
//! its `decider` picks a [`Directive`]. A restart is rate-limited by a sliding window kept per actor
//! (L6): past `max_restarts` within `within`, the actor is stopped instead. An optional [`Backoff`]
//! delays each restart exponentially; messages that arrive meanwhile wait in the mailbox (L5).
//!
//! What to do with one failure is decided by [`decide`], a function of the strategy, the failure,
//! the restart window and the current time, with no effects: the cell then logs and restarts or
//! stops. The restart window is pure bookkeeping ([`RestartWindow`]) with time passed in, so both
//! are tested without sleeping. Time is tokio's, so a runtime with paused time controls backoff
//! and restart windows.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

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

/// How one actor is supervised (Akka Typed's `SupervisorStrategy`), given to
/// `Behaviors::supervise`: a decider picks a [`Directive`] for each failure, restarts are limited
/// to `max_restarts` within a sliding window of `within` (past that, the actor is stopped), and an
/// optional [`Backoff`] delays them. Each actor is supervised independently of its siblings; the
/// group strategies of an OTP supervisor are `casty::otp::Strategy`.
///
/// The default decider restarts on every failure.
///
/// # Examples
///
/// ```
/// use casty::{Backoff, Directive, SupervisorStrategy};
/// use std::time::Duration;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("fatal")]
/// struct Fatal;
///
/// let s = SupervisorStrategy::new(5, Duration::from_secs(60))
///     .decider(|f| if f.is::<Fatal>() { Directive::Stop } else { Directive::Restart })
///     .backoff(Backoff::exponential(Duration::from_millis(10), Duration::from_secs(1)).jitter(0.2));
/// assert_eq!(s.decide(&Fatal.into()), Directive::Stop);
/// ```
#[derive(Clone)]
pub struct SupervisorStrategy {
    max_restarts: u32,
    within: Duration,
    decider: Arc<Decider>,
    backoff: Option<Backoff>,
}

impl SupervisorStrategy {
    /// At most `max_restarts` restarts within any window of `within`.
    pub fn new(max_restarts: u32, within: Duration) -> Self {
        SupervisorStrategy {
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

impl Default for SupervisorStrategy {
    /// Three restarts within a minute, restarting on every failure, as in Casty (Python).
    fn default() -> Self {
        SupervisorStrategy::new(3, Duration::from_secs(60))
    }
}

impl fmt::Debug for SupervisorStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupervisorStrategy")
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

/// What the cell does with one failure: the outcome of [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Keep the behavior and its state.
    Resume,
    /// Stop the actor.
    Stop,
    /// Stop the actor and fail its parent.
    Escalate,
    /// Restart, after `delay` if a backoff is configured. `instead_of_resume` says the decider
    /// asked to resume a behavior whose state was lost to a panic.
    Restart {
        delay: Option<Duration>,
        instead_of_resume: bool,
    },
    /// A restart was called for, but the restart limit is reached: stop the actor.
    LimitExceeded { instead_of_resume: bool },
}

/// Decides what to do with `failure` at `now`: asks the strategy's decider (no strategy, or a
/// decider that panics, means stop); a resume of a `poisoned` behavior (its state was lost to a
/// panic) becomes a restart; a restart past the limit of the sliding window becomes
/// [`Decision::LimitExceeded`]; an allowed restart is recorded in `window` and gets the backoff
/// delay of its place in the current streak (with jitter, if configured).
pub(crate) fn decide(
    strategy: Option<&SupervisorStrategy>,
    failure: &Failure,
    poisoned: bool,
    window: &mut RestartWindow,
    now: Instant,
) -> Decision {
    let Some(strategy) = strategy else {
        return Decision::Stop;
    };
    let directive =
        catch_unwind(AssertUnwindSafe(|| strategy.decide(failure))).unwrap_or(Directive::Stop);
    let instead_of_resume = match directive {
        Directive::Resume if poisoned => true,
        Directive::Resume => return Decision::Resume,
        Directive::Stop => return Decision::Stop,
        Directive::Escalate => return Decision::Escalate,
        Directive::Restart => false,
    };
    if !window.allow(now, strategy.max_restarts(), strategy.within()) {
        return Decision::LimitExceeded { instead_of_resume };
    }
    let delay = strategy.backoff_config().map(|b| {
        let n = window.next_streak(now, b.quiet_period());
        b.delay_with_jitter(n)
    });
    Decision::Restart {
        delay,
        instead_of_resume,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boom() -> Failure {
        Failure::supervisor("boom".into())
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn restart(delay: Option<Duration>) -> Decision {
        Decision::Restart {
            delay,
            instead_of_resume: false,
        }
    }

    #[test]
    fn without_a_strategy_a_failure_stops_the_actor() {
        let mut w = RestartWindow::default();
        assert_eq!(
            decide(None, &boom(), false, &mut w, Instant::now()),
            Decision::Stop
        );
    }

    #[test]
    fn the_deciders_directive_is_followed() {
        let t0 = Instant::now();
        for (directive, expected) in [
            (Directive::Resume, Decision::Resume),
            (Directive::Stop, Decision::Stop),
            (Directive::Escalate, Decision::Escalate),
            (Directive::Restart, restart(None)),
        ] {
            let s = SupervisorStrategy::new(3, Duration::from_secs(60)).decider(move |_| directive);
            let mut w = RestartWindow::default();
            assert_eq!(decide(Some(&s), &boom(), false, &mut w, t0), expected);
        }
    }

    #[test]
    fn a_panicking_decider_stops_the_actor() {
        let s = SupervisorStrategy::new(3, Duration::from_secs(60))
            .decider(|_| panic!("decider panicked"));
        let mut w = RestartWindow::default();
        assert_eq!(
            decide(Some(&s), &boom(), false, &mut w, Instant::now()),
            Decision::Stop
        );
    }

    #[test]
    fn resuming_a_poisoned_behavior_restarts_it_instead() {
        let s = SupervisorStrategy::new(1, Duration::from_secs(60)).decider(|_| Directive::Resume);
        let mut w = RestartWindow::default();
        let t0 = Instant::now();
        assert_eq!(
            decide(Some(&s), &boom(), true, &mut w, t0),
            Decision::Restart {
                delay: None,
                instead_of_resume: true
            }
        );
        // The replacing restart counts against the limit like any other.
        assert_eq!(
            decide(Some(&s), &boom(), true, &mut w, t0 + ms(1)),
            Decision::LimitExceeded {
                instead_of_resume: true
            }
        );
        // A healthy behavior is resumed, whatever the window says.
        assert_eq!(
            decide(Some(&s), &boom(), false, &mut w, t0 + ms(2)),
            Decision::Resume
        );
    }

    #[test]
    fn restarts_past_the_limit_within_the_window_stop_the_actor() {
        let s = SupervisorStrategy::new(2, Duration::from_secs(10));
        let mut w = RestartWindow::default();
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        assert_eq!(
            decide(Some(&s), &boom(), false, &mut w, at(0)),
            restart(None)
        );
        assert_eq!(
            decide(Some(&s), &boom(), false, &mut w, at(5)),
            restart(None)
        );
        assert_eq!(
            decide(Some(&s), &boom(), false, &mut w, at(10)),
            Decision::LimitExceeded {
                instead_of_resume: false
            }
        );
        // The restart at 0 s has left the window by 11 s; the one at 5 s has not.
        assert_eq!(
            decide(Some(&s), &boom(), false, &mut w, at(11)),
            restart(None)
        );
        assert_eq!(
            decide(Some(&s), &boom(), false, &mut w, at(12)),
            Decision::LimitExceeded {
                instead_of_resume: false
            }
        );
    }

    #[test]
    fn backoff_delays_double_per_restart_in_a_streak_up_to_the_maximum() {
        let s = SupervisorStrategy::new(10, Duration::from_secs(60))
            .backoff(Backoff::exponential(ms(100), ms(1000)));
        let mut w = RestartWindow::default();
        let t0 = Instant::now();
        let delays: Vec<Decision> = (0..6)
            .map(|i| decide(Some(&s), &boom(), false, &mut w, t0 + ms(i)))
            .collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800, 1000, 1000].map(|d| restart(Some(ms(d))))
        );
    }

    #[test]
    fn backoff_starts_again_from_the_minimum_after_a_quiet_period() {
        let s = SupervisorStrategy::new(10, Duration::from_secs(60))
            .backoff(Backoff::exponential(ms(100), ms(1000)).reset_after(ms(500)));
        let mut w = RestartWindow::default();
        let t0 = Instant::now();
        let mut at = |t: u64| decide(Some(&s), &boom(), false, &mut w, t0 + ms(t));
        assert_eq!(at(0), restart(Some(ms(100))));
        assert_eq!(at(100), restart(Some(ms(200))));
        // 499 ms after the last failure: still the same streak.
        assert_eq!(at(599), restart(Some(ms(400))));
        // 500 ms after the last failure: a new streak.
        assert_eq!(at(1099), restart(Some(ms(100))));
        assert_eq!(at(1100), restart(Some(ms(200))));
    }

    #[test]
    fn without_reset_after_the_quiet_period_is_the_maximum_delay() {
        let s = SupervisorStrategy::new(10, Duration::from_secs(60))
            .backoff(Backoff::exponential(ms(100), ms(300)));
        let mut w = RestartWindow::default();
        let t0 = Instant::now();
        let mut at = |t: u64| decide(Some(&s), &boom(), false, &mut w, t0 + ms(t));
        assert_eq!(at(0), restart(Some(ms(100))));
        assert_eq!(at(299), restart(Some(ms(200))));
        assert_eq!(at(599), restart(Some(ms(100))));
    }

    #[test]
    fn a_restart_refused_by_the_limit_does_not_advance_the_backoff_streak() {
        let s = SupervisorStrategy::new(1, Duration::from_secs(10))
            .backoff(Backoff::exponential(ms(100), ms(1000)).reset_after(Duration::from_secs(60)));
        let mut w = RestartWindow::default();
        let t0 = Instant::now();
        let mut at = |t: u64| decide(Some(&s), &boom(), false, &mut w, t0 + ms(t));
        assert_eq!(at(0), restart(Some(ms(100))));
        assert_eq!(
            at(10),
            Decision::LimitExceeded {
                instead_of_resume: false
            }
        );
        // The window has room again after 10 s; still within the streak, this is its second
        // restart, not its third.
        assert_eq!(at(10_001), restart(Some(ms(200))));
    }

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
