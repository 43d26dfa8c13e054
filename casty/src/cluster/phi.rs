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
    }

    /// How suspicious the silence from the last heartbeat to `now` is: 0 before the first
    /// heartbeat, then a finite value that never decreases as `now` moves on.
    pub fn phi(&self, now: Instant) -> f64 {
        let Some(last) = self.last else {
            return 0.0;
        };
        let elapsed = now.saturating_duration_since(last).as_secs_f64();
        let mean = self.mean_secs() + self.pause_secs;
        let sigma = self
            .std_deviation_secs()
            .max(self.min_std_deviation_secs)
            .max(SIGMA_FLOOR_SECS);
        phi_of((elapsed - mean) / sigma)
    }

    /// Whether the node is still considered alive at `now`: phi below the threshold.
    pub fn is_available(&self, now: Instant) -> bool {
        self.phi(now) < self.threshold
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
