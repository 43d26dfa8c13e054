//! A phi-accrual failure detector for one monitored node.
//!
//! [`PhiAccrual`] keeps the intervals between the heartbeats it was given and turns the time
//! since the last one into *phi*: how unlikely it is, on a log10 scale, that a node still alive
//! has been silent that long, if intervals follow a normal distribution with the mean and
//! standard deviation of the history. Phi 1 means a 10 % chance that the silence is normal,
//! phi 8 a chance of 10⁻⁸. The node is *available* while phi is below the threshold.
//!
//! Shape and invariants:
//! - before the first heartbeat phi is 0: a node never heard from is not suspected;
//! - the first heartbeat seeds the history with two intervals around the first estimate `m`,
//!   `m − m/4` and `m + m/4`, so that the detector has a mean and a spread from the start;
//! - the history holds at most `max_sample_size` intervals (at least one); the oldest is dropped
//!   when a new one comes. Intervals are whole nanoseconds, and their sum and sum of squares are
//!   kept as integers beside them, so the mean and variance cost nothing per call and never
//!   drift however long the detector runs. An interval longer than [`MAX_RECORDED_INTERVAL`] is
//!   recorded as that, which keeps the integer sums from overflowing;
//! - an interval is recorded only if the node was still available when the heartbeat came: the
//!   first heartbeat after a long pause does not teach the detector that such pauses are normal;
//! - the standard deviation used is at least `min_std_deviation` (and at least one microsecond,
//!   so that a zero setting cannot divide by zero), and the acceptable pause is added to the mean;
//! - phi uses the logistic approximation of the normal distribution that Akka's detector uses,
//!   written as `log10(1 + e^t)` and computed so that it never overflows and never decreases,
//!   not even by an ulp: it is finite, never NaN, and non-decreasing in the time elapsed.
//!
//! # The deadline
//!
//! Because phi never decreases while no heartbeat comes, there is a first instant at which the
//! node becomes unavailable: [`PhiAccrual::suspected_at`]. It is computed once per heartbeat,
//! so that a driver can check the node at exactly that instant instead of polling phi. The
//! formula is inverted in closed form first: phi equals the threshold `φ` where
//! `t = ln(10^φ − 1)`, so where `y·(1.5976 + 0.070566·y²) = t`, a cubic with one real root `y*`
//! (5.226 for φ = 8), so at `mean + acceptable pause + y*·σ` after the last heartbeat. Rounding
//! can put that a few nanoseconds off, so the answer is then settled by a search over whole
//! nanoseconds on the phi function itself: the deadline `d` is exact, phi is below the
//! threshold at `d − 1 ns` and not below it at `d`, and [`PhiAccrual::is_available`] is true
//! exactly before it. A heartbeat usually moves the deadline later; one much earlier than the
//! history's intervals can bring it forward, since the history then says the node is quicker.
//!
//! The detector reads no clock: time comes in as [`Instant`]s, so the driver (or a test) decides
//! what "now" is.

use std::collections::VecDeque;
use std::f64::consts::LN_10;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::FailureDetectorConfig;

/// The longest interval recorded as it is (2⁴⁷ ns, about 39 hours); longer ones are recorded as
/// this. Only a node given an acceptable pause of that order could have one recorded at all.
pub const MAX_RECORDED_INTERVAL: Duration = Duration::from_nanos(1 << 47);

/// The floor on the standard deviation whatever the configuration says, in seconds.
const SIGMA_FLOOR_SECS: f64 = 1e-6;

/// How far from the mean, in standard deviations, phi is evaluated. Far beyond where phi crosses
/// any useful threshold (8 is reached at 5.2); keeps phi finite for any input.
const Y_LIMIT: f64 = 1e6;

/// A phi-accrual failure detector for one monitored node: feed it the arrival time of each
/// heartbeat, ask it how suspicious the silence since the last one is.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use casty::cluster::PhiAccrual;
/// use casty::config::FailureDetectorConfig;
/// use tokio::time::Instant;
///
/// let mut fd = PhiAccrual::new(&FailureDetectorConfig::default());
/// let t0 = Instant::now();
/// assert_eq!(fd.phi(t0), 0.0); // never heard from: not suspected
/// for i in 0..10 {
///     fd.heartbeat(t0 + Duration::from_secs(i));
/// }
/// let last = t0 + Duration::from_secs(9);
/// assert!(fd.is_available(last + Duration::from_secs(1)));
/// assert!(!fd.is_available(last + Duration::from_secs(5)));
/// assert!(fd.phi(last + Duration::from_secs(5)) > fd.phi(last + Duration::from_secs(2)));
/// ```
#[derive(Debug, Clone)]
pub struct PhiAccrual {
    threshold: f64,
    max_samples: usize,
    min_std_deviation_secs: f64,
    pause_secs: f64,
    first_estimate: Duration,
    /// Intervals in nanoseconds, oldest first; never longer than `max_samples`.
    intervals: VecDeque<u64>,
    /// The sum of `intervals`.
    sum: u128,
    /// The sum of the squares of `intervals`.
    squared_sum: u128,
    /// When the last heartbeat came; `None` before the first.
    last: Option<Instant>,
    /// The silence after `last` at which phi reaches the threshold: `None` before the first
    /// heartbeat, or if phi never reaches it within `u64::MAX` nanoseconds.
    suspect_after: Option<Duration>,
}

impl PhiAccrual {
    /// A detector with the parameters of `cfg` that has not heard from its node yet.
    pub fn new(cfg: &FailureDetectorConfig) -> Self {
        let max_samples = (cfg.max_sample_size as usize).max(1);
        PhiAccrual {
            threshold: cfg.threshold,
            max_samples,
            min_std_deviation_secs: cfg.min_std_deviation.as_secs_f64(),
            pause_secs: cfg.acceptable_heartbeat_pause.as_secs_f64(),
            first_estimate: cfg.first_heartbeat_estimate,
            // Sized once: the history never grows past this, so a full history recycles its
            // slots. A huge setting grows on demand instead of reserving it all up front.
            intervals: VecDeque::with_capacity(max_samples.min(1024)),
            sum: 0,
            squared_sum: 0,
            last: None,
            suspect_after: None,
        }
    }

    /// Records a heartbeat that arrived at `now`.
    ///
    /// The first one seeds the history (see the module documentation); each later one adds the
    /// interval since the previous one, unless the node was no longer available at `now`. A
    /// `now` earlier than the previous heartbeat counts as the same instant.
    pub fn heartbeat(&mut self, now: Instant) {
        match self.last {
            None => {
                let m = nanos(self.first_estimate);
                let quarter = m / 4;
                self.record(m - quarter);
                self.record(m + quarter);
                self.last = Some(now);
            }
            Some(last) => {
                if self.is_available(now) {
                    self.record(nanos(now.saturating_duration_since(last)));
                }
                self.last = Some(now.max(last));
            }
        }
        self.suspect_after = self.silence_at_threshold();
    }

    /// How suspicious the silence from the last heartbeat to `now` is: 0 before the first
    /// heartbeat, then a finite value that never decreases as `now` moves on.
    pub fn phi(&self, now: Instant) -> f64 {
        match self.last {
            None => 0.0,
            Some(last) => self.phi_after(now.saturating_duration_since(last)),
        }
    }

    /// Whether the node is still considered alive at `now`: phi below the threshold.
    pub fn is_available(&self, now: Instant) -> bool {
        self.phi(now) < self.threshold
    }

    /// The first instant at which the node is unavailable if no heartbeat comes before it.
    ///
    /// `None` before the first heartbeat (a node never heard from is never suspected), or if
    /// phi cannot reach the threshold within any representable time. Otherwise
    /// [`is_available`](Self::is_available) is true at every instant before it and false at it
    /// and after it (see the module documentation).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use casty::cluster::PhiAccrual;
    /// use casty::config::FailureDetectorConfig;
    /// use tokio::time::Instant;
    ///
    /// // Heartbeats every 500 ms, deviation floor 100 ms, threshold 8, no acceptable pause.
    /// let cfg = FailureDetectorConfig {
    ///     max_sample_size: 10,
    ///     ..FailureDetectorConfig::default()
    /// };
    /// let mut fd = PhiAccrual::new(&cfg);
    /// let t0 = Instant::now();
    /// for i in 0..20 {
    ///     fd.heartbeat(t0 + Duration::from_millis(500 * i));
    /// }
    /// let last = t0 + Duration::from_millis(500 * 19);
    /// // Mean 500 ms plus 5.226 times the 100 ms floor.
    /// let deadline = fd.suspected_at().unwrap();
    /// assert_eq!((deadline - last).as_millis(), 1022);
    /// assert!(fd.is_available(deadline - Duration::from_nanos(1)));
    /// assert!(!fd.is_available(deadline));
    /// ```
    pub fn suspected_at(&self) -> Option<Instant> {
        self.last?.checked_add(self.suspect_after?)
    }

    /// The silence after the last heartbeat at which the node becomes unavailable: the
    /// [`suspected_at`](Self::suspected_at) deadline minus the last heartbeat's time. `None`
    /// before the first heartbeat or if phi never reaches the threshold.
    pub fn suspect_after(&self) -> Option<Duration> {
        self.suspect_after
    }

    /// Whether a heartbeat has been recorded yet.
    pub fn is_monitoring(&self) -> bool {
        self.last.is_some()
    }

    /// When the last heartbeat came, if any did.
    pub fn last_heartbeat(&self) -> Option<Instant> {
        self.last
    }

    /// How many intervals the history holds (0 before the first heartbeat, then at most
    /// `max_sample_size`).
    pub fn sample_count(&self) -> usize {
        self.intervals.len()
    }

    /// The mean interval of the history (zero before the first heartbeat), without the
    /// acceptable pause.
    pub fn mean(&self) -> Duration {
        Duration::from_secs_f64(self.mean_secs())
    }

    /// The standard deviation of the history, before the `min_std_deviation` floor.
    pub fn std_deviation(&self) -> Duration {
        Duration::from_secs_f64(self.std_deviation_secs())
    }

    /// Phi after `elapsed` of silence, for a detector that has had its first heartbeat.
    fn phi_after(&self, elapsed: Duration) -> f64 {
        let mean = self.mean_secs() + self.pause_secs;
        phi_of((elapsed.as_secs_f64() - mean) / self.sigma_secs())
    }

    /// Whether phi after `elapsed` of silence is below the threshold.
    fn available_after(&self, elapsed: Duration) -> bool {
        self.phi_after(elapsed) < self.threshold
    }

    /// The standard deviation phi uses: the history's, with the floors applied.
    fn sigma_secs(&self) -> f64 {
        self.std_deviation_secs()
            .max(self.min_std_deviation_secs)
            .max(SIGMA_FLOOR_SECS)
    }

    /// The shortest silence, in whole nanoseconds, after which phi is not below the threshold;
    /// `None` if even `u64::MAX` nanoseconds is not enough, or before the first heartbeat.
    ///
    /// Starts from the closed-form estimate, gallops outward to bracket the answer between a
    /// silence that is still available and one that is not, then bisects. Phi never decreases
    /// with the silence, so the bracket and the bisection are sound; each step at most doubles
    /// or halves, so this takes at most about 130 evaluations of phi, and a handful when the
    /// estimate is good, as it is unless the inputs are extreme.
    fn silence_at_threshold(&self) -> Option<Duration> {
        self.last?;
        // The same test as `is_available`, negated: the node is not available after `ns`.
        let reached = |ns: u64| !self.available_after(Duration::from_nanos(ns));
        if reached(0) {
            return Some(Duration::ZERO);
        }
        let guess_secs =
            self.mean_secs() + self.pause_secs + y_at(self.threshold) * self.sigma_secs();
        // A NaN guess casts to 0; anything past the end of u64 saturates.
        let guess = (guess_secs * 1e9).clamp(0.0, u64::MAX as f64) as u64;
        // Invariant from here on: `!reached(lo) && reached(hi)`.
        let (mut lo, mut hi);
        if reached(guess) {
            hi = guess;
            let mut step = 1u64;
            loop {
                let candidate = guess.saturating_sub(step);
                if !reached(candidate) {
                    lo = candidate;
                    break;
                }
                hi = candidate;
                // `reached(0)` is false, so this ends at 0 at the latest.
                step = step.saturating_mul(2);
            }
        } else {
            lo = guess;
            let mut step = 1u64;
            loop {
                let candidate = guess.saturating_add(step);
                if reached(candidate) {
                    hi = candidate;
                    break;
                }
                if candidate == u64::MAX {
                    return None;
                }
                lo = candidate;
                step = step.saturating_mul(2);
            }
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if reached(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        debug_assert!(!reached(lo) && reached(hi));
        Some(Duration::from_nanos(hi))
    }

    fn record(&mut self, interval: u64) {
        if self.intervals.len() == self.max_samples {
            if let Some(old) = self.intervals.pop_front() {
                self.sum -= u128::from(old);
                self.squared_sum -= u128::from(old) * u128::from(old);
            }
        }
        self.intervals.push_back(interval);
        self.sum += u128::from(interval);
        self.squared_sum += u128::from(interval) * u128::from(interval);
        debug_assert!(self.intervals.len() <= self.max_samples);
    }

    fn mean_secs(&self) -> f64 {
        if self.intervals.is_empty() {
            return 0.0;
        }
        self.sum as f64 / self.intervals.len() as f64 / 1e9
    }

    fn std_deviation_secs(&self) -> f64 {
        if self.intervals.is_empty() {
            return 0.0;
        }
        let n = self.intervals.len() as f64;
        let mean = self.sum as f64 / n;
        // Rounding can take an exact zero a hair below it.
        let variance = (self.squared_sum as f64 / n - mean * mean).max(0.0);
        variance.sqrt() / 1e9
    }
}

/// A duration in whole nanoseconds, capped at [`MAX_RECORDED_INTERVAL`].
fn nanos(d: Duration) -> u64 {
    d.min(MAX_RECORDED_INTERVAL).as_nanos() as u64
}

/// How many standard deviations past the (shifted) mean phi reaches `threshold`, in closed form:
/// the real root of `y·(1.5976 + 0.070566·y²) = t` with `t = ln(10^threshold − 1)`, by
/// Cardano's formula (the cubic rises everywhere, so it has exactly one real root).
///
/// An estimate only: `t` is computed as `threshold·ln 10 + ln(1 − 10^−threshold)` so that it
/// does not overflow for large thresholds, and the result may be off by rounding, or NaN or
/// infinite for thresholds at or below 0 or absurdly large ones; the caller settles the exact
/// answer on phi itself.
fn y_at(threshold: f64) -> f64 {
    let t = threshold * LN_10 + (-(10f64.powf(-threshold))).ln_1p();
    let (a, b) = (0.070566, 1.5976);
    // y³ + p·y + q = 0.
    let (p, q) = (b / a, -t / a);
    let root = (q * q / 4.0 + p * p * p / 27.0).sqrt();
    (-q / 2.0 + root).cbrt() + (-q / 2.0 - root).cbrt()
}

/// Past this `t`, `ln(1 + e^t)` and `t` are the same double: `e^−t` is below half an ulp of `t`.
const SOFTPLUS_LINEAR_FROM: f64 = 40.0;

/// Phi for a silence `y` standard deviations past the (shifted) mean.
///
/// The normal distribution's CDF is approximated by the logistic `F(y) = 1 / (1 + e^−t)` with
/// `t = y·(1.5976 + 0.070566·y²)`, and phi is `−log10(1 − F(y))`, which simplifies to
/// `log10(1 + e^t) = ln(1 + e^t) / ln 10`. Up to `t = 40` that is computed as written (`e^40`
/// is far from overflowing); beyond, it is `t` to the last bit. Every step is a non-decreasing
/// function of the one before (a sum of a rising and a falling term, as in the usual stable
/// form `t + ln(1 + e^−t)`, is not, by an ulp here and there), so phi never decreases as `y`
/// grows.
fn phi_of(y: f64) -> f64 {
    let y = y.clamp(-Y_LIMIT, Y_LIMIT);
    let t = y * (1.5976 + 0.070566 * y * y);
    let softplus = if t > SOFTPLUS_LINEAR_FROM {
        t
    } else {
        t.exp().ln_1p()
    };
    softplus / LN_10
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::f64::consts::LOG10_2;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn config() -> FailureDetectorConfig {
        FailureDetectorConfig::default()
    }

    /// A detector whose history is four intervals of exactly 1 s: mean 1 s, deviation 0, so
    /// the 100 ms floor is the deviation used. Returns it with the time of its last heartbeat.
    fn regular_one_second() -> (PhiAccrual, Instant) {
        let cfg = FailureDetectorConfig {
            max_sample_size: 4,
            ..config()
        };
        let mut fd = PhiAccrual::new(&cfg);
        let t0 = Instant::now();
        for i in 0..=4 {
            fd.heartbeat(t0 + Duration::from_secs(i));
        }
        (fd, t0 + Duration::from_secs(4))
    }

    #[test]
    fn phi_is_zero_and_the_node_available_before_the_first_heartbeat() {
        let fd = PhiAccrual::new(&config());
        let t = Instant::now();
        assert_eq!(fd.phi(t + Duration::from_secs(3600)), 0.0);
        assert!(fd.is_available(t));
        assert!(!fd.is_monitoring());
        assert_eq!(fd.sample_count(), 0);
    }

    #[test]
    fn the_first_heartbeat_seeds_two_intervals_around_the_first_estimate() {
        let mut fd = PhiAccrual::new(&config());
        fd.heartbeat(Instant::now());
        assert!(fd.is_monitoring());
        assert_eq!(fd.sample_count(), 2);
        // 750 ms and 1250 ms.
        assert_eq!(fd.mean(), ms(1000));
        assert_eq!(fd.std_deviation(), ms(250));
    }

    #[test]
    fn phi_has_the_exact_values_of_the_logistic_approximation() {
        let (fd, last) = regular_one_second();
        assert_eq!(fd.mean(), ms(1000));
        assert_eq!(fd.std_deviation(), Duration::ZERO);
        // Mean 1 s, deviation 0.1 s: elapsed 1 s is y = 0, where phi is log10(2) = 0.30103.
        let at = |elapsed_ms: u64| fd.phi(last + ms(elapsed_ms));
        assert!((at(1000) - LOG10_2).abs() < 1e-12);
        assert!((at(900) - 0.075_033_032_140_939_9).abs() < 1e-6);
        assert!((at(1100) - 0.799_508_320_839_559_8).abs() < 1e-6);
        assert!((at(1200) - 1.642_827_885_487_112_3).abs() < 1e-6);
        assert!((at(1500) - 7.299_947_394_460_206).abs() < 1e-6);
        assert!((at(1600) - 10.782_600_858_295_707).abs() < 1e-6);
    }

    #[test]
    fn the_seeded_history_gives_phi_with_a_quarter_of_the_estimate_as_deviation() {
        let mut fd = PhiAccrual::new(&config());
        let t0 = Instant::now();
        fd.heartbeat(t0);
        // Mean 1 s, deviation 250 ms: 2 s of silence is y = 4.
        assert!((fd.phi(t0 + ms(2000)) - 4.736_694_582_705_181).abs() < 1e-6);
        assert!((fd.phi(t0 + ms(1000)) - LOG10_2).abs() < 1e-12);
    }

    #[test]
    fn phi_grows_with_silence_until_the_node_is_suspected() {
        let (fd, last) = regular_one_second();
        let mut previous = fd.phi(last);
        for elapsed in (100..=3000).step_by(100) {
            let phi = fd.phi(last + ms(elapsed));
            assert!(phi > previous, "phi at {elapsed} ms did not grow");
            previous = phi;
        }
        // Phi crosses 8 at 5.226 deviations past the mean: between 1.5 s and 1.6 s.
        assert!(fd.is_available(last + ms(1500)));
        assert!(fd.is_available(last + ms(1522)));
        assert!(!fd.is_available(last + ms(1523)));
        assert!(!fd.is_available(last + ms(1600)));
    }

    #[test]
    fn the_acceptable_pause_shifts_the_mean() {
        let cfg = FailureDetectorConfig {
            max_sample_size: 4,
            acceptable_heartbeat_pause: ms(3000),
            ..config()
        };
        let mut fd = PhiAccrual::new(&cfg);
        let t0 = Instant::now();
        for i in 0..=4 {
            fd.heartbeat(t0 + Duration::from_secs(i));
        }
        let last = t0 + Duration::from_secs(4);
        assert!((fd.phi(last + ms(4000)) - LOG10_2).abs() < 1e-12);
        assert!(fd.is_available(last + ms(4522)));
        assert!(!fd.is_available(last + ms(4523)));
    }

    #[test]
    fn phi_stays_finite_for_any_silence_and_any_deviation() {
        let (fd, last) = regular_one_second();
        let huge = fd.phi(last + Duration::from_secs(100 * 365 * 24 * 3600));
        assert!(huge.is_finite() && huge > 1e10);
        // A zero deviation floor and a perfectly regular history: still no division by zero.
        let cfg = FailureDetectorConfig {
            max_sample_size: 2,
            min_std_deviation: Duration::ZERO,
            first_heartbeat_estimate: Duration::ZERO,
            ..config()
        };
        let mut fd = PhiAccrual::new(&cfg);
        let t0 = Instant::now();
        fd.heartbeat(t0);
        for elapsed in [0, 1, 1000, 1_000_000_000] {
            let phi = fd.phi(t0 + Duration::from_nanos(elapsed));
            assert!(phi.is_finite() && phi >= 0.0, "{elapsed}: {phi}");
        }
        assert!((fd.phi(t0) - LOG10_2).abs() < 1e-12);
    }

    #[test]
    fn the_history_never_holds_more_than_max_sample_size_intervals() {
        let cfg = FailureDetectorConfig {
            max_sample_size: 10,
            ..config()
        };
        let mut fd = PhiAccrual::new(&cfg);
        let t0 = Instant::now();
        for i in 0..100u64 {
            fd.heartbeat(t0 + ms(500 * i));
            assert_eq!(fd.sample_count(), (i as usize + 2).min(10));
        }
        // The seeded intervals are long gone: only 500 ms ones remain.
        assert_eq!(fd.mean(), ms(500));
        assert_eq!(fd.std_deviation(), Duration::ZERO);
    }

    #[test]
    fn a_zero_max_sample_size_keeps_one_interval() {
        let cfg = FailureDetectorConfig {
            max_sample_size: 0,
            ..config()
        };
        let mut fd = PhiAccrual::new(&cfg);
        fd.heartbeat(Instant::now());
        assert_eq!(fd.sample_count(), 1);
        assert_eq!(fd.mean(), ms(1250));
    }

    #[test]
    fn a_heartbeat_after_a_pause_that_made_the_node_unavailable_is_not_recorded() {
        let (mut fd, last) = regular_one_second();
        let back = last + Duration::from_secs(10);
        assert!(!fd.is_available(back));
        fd.heartbeat(back);
        assert_eq!((fd.sample_count(), fd.mean()), (4, ms(1000)));
        assert_eq!(fd.std_deviation(), Duration::ZERO);
        // The detector counts from the late heartbeat and records the next regular interval.
        assert!((fd.phi(back + ms(1000)) - LOG10_2).abs() < 1e-12);
        fd.heartbeat(back + ms(1200));
        assert_eq!(fd.sample_count(), 4);
        assert_eq!(fd.mean(), ms(1050));
    }

    #[test]
    fn a_late_heartbeat_while_still_available_is_recorded() {
        let (mut fd, last) = regular_one_second();
        fd.heartbeat(last + ms(1400));
        assert_eq!(fd.mean(), ms(1100));
    }

    #[test]
    fn a_heartbeat_dated_before_the_previous_one_counts_as_the_same_instant() {
        let (mut fd, last) = regular_one_second();
        fd.heartbeat(last - ms(500));
        assert_eq!(fd.last_heartbeat(), Some(last));
        assert_eq!(fd.mean(), ms(750));
    }

    #[test]
    fn phi_never_decreases_between_adjacent_doubles() {
        // Where t crosses the linear cut-off.
        let mut lo = 0.0f64;
        let mut hi = 10.0f64;
        for _ in 0..200 {
            let mid = (lo + hi) / 2.0;
            if mid * (1.5976 + 0.070566 * mid * mid) > SOFTPLUS_LINEAR_FROM {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        // Around y = 0, the threshold of 8, the cut-off and far out, every double in turn.
        for centre in [-5.0, -1e-3, 0.0, 1e-3, 0.5, 5.226, lo, 40.0] {
            let mut y = centre;
            for _ in 0..20_000 {
                y = y.next_down();
            }
            let mut previous = phi_of(y);
            for _ in 0..40_000 {
                y = y.next_up();
                let phi = phi_of(y);
                assert!(
                    phi >= previous,
                    "phi fell from {previous:e} to {phi:e} at y = {y:e}"
                );
                previous = phi;
            }
        }
    }

    /// A detector with the default settings given `n` heartbeats 500 ms apart after the first.
    fn default_settings_after(n: u64) -> (PhiAccrual, Instant) {
        let mut fd = PhiAccrual::new(&config());
        let t0 = Instant::now();
        for i in 0..=n {
            fd.heartbeat(t0 + ms(500 * i));
        }
        (fd, t0 + ms(500 * n))
    }

    #[test]
    fn phi_reaches_eight_at_5_226_deviations_past_the_mean() {
        let y = y_at(8.0);
        assert!((y - 5.225_99).abs() < 1e-5, "{y}");
        assert!((phi_of(y) - 8.0).abs() < 1e-9);
        // A threshold of log10(2) is reached at the mean.
        assert!(y_at(LOG10_2).abs() < 1e-9);
    }

    #[test]
    fn there_is_no_deadline_before_the_first_heartbeat() {
        let fd = PhiAccrual::new(&config());
        assert_eq!((fd.suspected_at(), fd.suspect_after()), (None, None));
    }

    #[test]
    fn the_deadline_is_the_first_nanosecond_at_which_the_node_is_unavailable() {
        let (fd, last) = regular_one_second();
        let deadline = fd.suspected_at().unwrap();
        // Mean 1 s plus 5.226 times the 100 ms floor.
        assert_eq!(deadline - last, fd.suspect_after().unwrap());
        assert_eq!((deadline - last).as_micros(), 1_522_598);
        assert!(fd.is_available(deadline - Duration::from_nanos(1)));
        assert!(fd.phi(deadline - Duration::from_nanos(1)) < 8.0);
        assert!(fd.phi(deadline) >= 8.0);
        assert!(!fd.is_available(deadline));
    }

    #[test]
    fn the_acceptable_pause_moves_the_deadline_by_as_much() {
        let cfg = FailureDetectorConfig {
            max_sample_size: 4,
            acceptable_heartbeat_pause: ms(3000),
            ..config()
        };
        let mut fd = PhiAccrual::new(&cfg);
        let t0 = Instant::now();
        for i in 0..=4 {
            fd.heartbeat(t0 + Duration::from_secs(i));
        }
        let (plain, _) = regular_one_second();
        let shift = fd.suspect_after().unwrap() - plain.suspect_after().unwrap();
        // Equal up to the rounding of seconds as doubles.
        assert!(
            shift.abs_diff(ms(3000)) <= Duration::from_nanos(2),
            "{shift:?}"
        );
    }

    #[test]
    fn the_first_heartbeat_sets_a_deadline_from_the_first_estimate() {
        let mut fd = PhiAccrual::new(&config());
        let t0 = Instant::now();
        fd.heartbeat(t0);
        // Mean 1 s, deviation 250 ms: 1 s + 5.226 × 250 ms.
        assert_eq!(fd.suspect_after().unwrap().as_millis(), 2306);
        assert_eq!(fd.suspected_at(), Some(t0 + fd.suspect_after().unwrap()));
    }

    #[test]
    fn with_the_default_settings_the_deadline_settles_as_the_estimate_leaves_the_history() {
        // Heartbeats every 500 ms; the two intervals seeded around the 1 s estimate stay in the
        // history of 200 until 199 real ones have come. With n real ones the mean is
        // 500 + 1000 / (n + 2) ms and the deviation sqrt(625000 / (n + 2) − 10⁶ / (n + 2)²) ms.
        let after = |n| {
            default_settings_after(n)
                .0
                .suspect_after()
                .unwrap()
                .as_millis()
        };
        assert_eq!(after(6), 1_931); // 3 s: mean 625 ms, deviation 250 ms
        assert_eq!(after(20), 1_393); // 10 s: mean 545 ms, deviation 162 ms
        assert_eq!(after(60), 1_038); // 30 s: deviation 99 ms, below the floor
        assert_eq!(after(198), 1_027); // mean 505 ms
        assert_eq!(after(200), 1_022); // only 500 ms intervals: 500 + 5.226 × 100 ms
        assert_eq!(after(1000), 1_022);
    }

    #[test]
    fn a_heartbeat_much_earlier_than_usual_can_bring_the_deadline_forward() {
        // One interval of history: a heartbeat 1 ms after the last says intervals are 1 ms.
        let cfg = FailureDetectorConfig {
            max_sample_size: 1,
            ..config()
        };
        let mut fd = PhiAccrual::new(&cfg);
        let t0 = Instant::now();
        fd.heartbeat(t0);
        fd.heartbeat(t0 + ms(1000));
        let before = fd.suspected_at().unwrap();
        fd.heartbeat(t0 + ms(1001));
        assert!(fd.suspected_at().unwrap() < before);
        assert!(fd.suspected_at().unwrap() > t0 + ms(1001));
    }

    #[test]
    fn an_infinite_threshold_is_never_reached_and_a_zero_one_at_once() {
        let never = FailureDetectorConfig {
            threshold: f64::INFINITY,
            ..config()
        };
        let mut fd = PhiAccrual::new(&never);
        let t0 = Instant::now();
        fd.heartbeat(t0);
        assert_eq!(fd.suspected_at(), None);
        let at_once = FailureDetectorConfig {
            threshold: 0.0,
            ..config()
        };
        let mut fd = PhiAccrual::new(&at_once);
        fd.heartbeat(t0);
        assert_eq!(fd.suspected_at(), Some(t0));
        assert!(!fd.is_available(t0));
    }

    #[test]
    fn a_huge_threshold_gives_a_deadline_far_out_but_exact() {
        let cfg = FailureDetectorConfig {
            threshold: 1e9,
            ..config()
        };
        let mut fd = PhiAccrual::new(&cfg);
        let t0 = Instant::now();
        fd.heartbeat(t0);
        let after = fd.suspect_after().unwrap();
        assert!(after > Duration::from_secs(100));
        assert!(fd.phi_after(after - Duration::from_nanos(1)) < 1e9);
        assert!(fd.phi_after(after) >= 1e9);
    }

    proptest! {
        #[test]
        fn phi_never_decreases_with_elapsed_time_and_is_never_nan(
            intervals in prop::collection::vec(0u64..5_000_000_000, 0..30),
            min_std_ms in 0u64..500,
            pause_ms in 0u64..5_000,
            mut probes in prop::collection::vec(0u64..(1u64 << 62), 1..40),
            near in 0u64..6_000_000_000,
            steps in prop::collection::vec(0u64..1_000, 1..40),
        ) {
            // Probes spread over any silence, and probes nanoseconds apart around one instant.
            let cfg = FailureDetectorConfig {
                max_sample_size: 8,
                min_std_deviation: ms(min_std_ms),
                acceptable_heartbeat_pause: ms(pause_ms),
                ..config()
            };
            let mut fd = PhiAccrual::new(&cfg);
            let mut t = Instant::now();
            fd.heartbeat(t);
            for i in intervals {
                t += Duration::from_nanos(i);
                fd.heartbeat(t);
            }
            probes.extend(steps.iter().map(|s| near + s));
            probes.sort_unstable();
            let mut previous = 0.0;
            for p in probes {
                let phi = fd.phi(t + Duration::from_nanos(p));
                prop_assert!(phi.is_finite() && phi >= 0.0, "phi {} at {}", phi, p);
                prop_assert!(phi >= previous, "phi fell from {} to {} at {}", previous, phi, p);
                previous = phi;
            }
        }

        #[test]
        fn the_node_is_available_exactly_until_the_deadline(
            threshold in 0.05f64..40.0,
            intervals in prop::collection::vec(0u64..5_000_000_000, 0..30),
            max_samples in 1u32..16,
            min_std_ms in 0u64..500,
            pause_ms in 0u64..5_000,
            estimate_ms in 0u64..3_000,
            probes in prop::collection::vec(0u64..20_000_000_000, 1..20),
        ) {
            let cfg = FailureDetectorConfig {
                threshold,
                max_sample_size: max_samples,
                min_std_deviation: ms(min_std_ms),
                acceptable_heartbeat_pause: ms(pause_ms),
                first_heartbeat_estimate: ms(estimate_ms),
            };
            let mut fd = PhiAccrual::new(&cfg);
            let mut t = Instant::now();
            fd.heartbeat(t);
            for i in intervals {
                t += Duration::from_nanos(i);
                fd.heartbeat(t);
            }
            let deadline = fd.suspected_at().expect("a finite threshold is reached");
            prop_assert!(deadline >= t);
            prop_assert!(fd.phi(deadline) >= threshold);
            prop_assert!(!fd.is_available(deadline));
            if deadline > t {
                let just_before = deadline - Duration::from_nanos(1);
                prop_assert!(fd.phi(just_before) < threshold);
                prop_assert!(fd.is_available(just_before));
            }
            for p in probes {
                let at = t + Duration::from_nanos(p);
                prop_assert_eq!(fd.is_available(at), at < deadline, "probe {}", p);
            }
        }

        #[test]
        fn regular_heartbeats_push_the_deadline_later(
            jitter in prop::collection::vec(0u64..=200, 1..300),
        ) {
            // Heartbeats every 500 ms ± 100 ms with the default settings, from the first one.
            let mut fd = PhiAccrual::new(&config());
            let mut t = Instant::now();
            fd.heartbeat(t);
            let mut deadline = fd.suspected_at().unwrap();
            for j in jitter {
                t += ms(400 + j);
                prop_assert!(t < deadline);
                fd.heartbeat(t);
                let next = fd.suspected_at().unwrap();
                prop_assert!(next > deadline, "{:?} then {:?}", deadline - t, next - t);
                deadline = next;
            }
        }

        #[test]
        fn regular_heartbeats_with_jitter_are_never_suspected(
            jitter in prop::collection::vec(0u64..=200, 1..300),
        ) {
            // 1 s ± 100 ms with the default settings: the mean stays at 900 ms or more and the
            // deviation used at 100 ms or more, so a heartbeat comes at most two deviations
            // past the mean, where phi is 1.64, far below the threshold of 8.
            let mut fd = PhiAccrual::new(&config());
            let mut t = Instant::now();
            fd.heartbeat(t);
            for j in jitter {
                t += ms(900 + j);
                let phi = fd.phi(t);
                prop_assert!(phi < 1.65, "phi {} just before a heartbeat", phi);
                prop_assert!(fd.is_available(t));
                fd.heartbeat(t);
            }
            prop_assert!(fd.sample_count() <= 200);
        }
    }
}
